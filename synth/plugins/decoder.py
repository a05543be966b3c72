"""`decoder`: a polyphonic instrument played by the neural waveform decoder.

Each voice turns its note into conditioning once a frame (f0 from the note with glide and
vibrato; loudness from velocity and the envelope), the decoder (synth.dsp.decoder_runtime, no
torch) turns the conditioning of every voice into controls in one step, and the oscillator bank
plus filtered noise render them. Each voice keeps its own recurrent state.

Frames: the model's hop (256 samples at 48 kHz, 5.33 ms). The instrument renders one frame at a
time into a buffer and hands it out in whatever block sizes the engine asks for, so the result
does not depend on the block size. A note starting inside a frame begins sounding at the next
frame boundary (at most one hop later), and a parameter change takes effect there too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synth.dsp.decoder_runtime import DecoderRuntime, load_runtime
from synth.dsp.decoder_synth import DecoderSynth
from synth.dsp.decoder_voices import add_samples, advance_envelopes, copy_samples, fill_rows, voice_conditioning
from synth.dsp.oscillators import midi_to_hz
from synth.dsp.timbre_space import Z_LIMIT, load_timbre_space
from synth.errors import SynthError
from synth.params import LOG, float_param
from synth.plugins.poly import PolyInstrument, envelope_params


def open_model(model, runtime: DecoderRuntime | None, voices: int, instrument: str | None) -> tuple[DecoderRuntime, str | None]:
    """(runtime, instrument) for a decoder plugin: `runtime` if given, else one for `voices` voices
    loaded from the model file `model` (its .json, .safetensors or stem); instrument: one of the
    model's timbres (None: its first, or None for a model without named timbres). SynthError naming
    the setting otherwise."""
    if runtime is None:
        if model is None:
            raise SynthError('a decoder plugin needs a model file (files = { model = "....json" })')
        runtime = load_runtime(Path(model).with_suffix(""), voices)
    instruments = list(runtime.config.get("instruments", []))
    if instrument is not None and instrument not in instruments:
        raise SynthError(f"settings.instrument: {instrument!r} is not one of the model's instruments "
                         f"({', '.join(instruments) or 'none'})")
    return runtime, instrument or (instruments[0] if instruments else None)


def check_model_rate(model_rate: int, sample_rate: float, what: str = "decoder model") -> None:
    """SynthError unless the engine runs at the rate (Hz) the model was trained at."""
    if int(sample_rate) != model_rate:
        raise SynthError(f"the {what} runs at {model_rate} Hz; the engine runs at {int(sample_rate)} Hz")


MAX_LATENT_DIMS = 16


def latent_param_names(dims: int) -> list[str]:
    """The names of the first `dims` timbre latent parameters: z1, z2, ..."""
    return [f"z{i + 1}" for i in range(dims)]


LATENT_PARAMS = tuple(float_param(name, -Z_LIMIT, Z_LIMIT, 0, doc="timbre latent component (with files.vae)")
                      for name in latent_param_names(MAX_LATENT_DIMS))


class DecoderTimbre:
    """The model a decoder plugin plays and how its timbre is chosen: by instrument name (a model
    with an instrument table), or by z from the plugin's parameters z1..zD (with a timbre model,
    `vae`; `model` then defaults to the decoder it names, and settings.instrument sets z1..zD to
    that instrument's centroid unless `values` sets them). SynthError naming the file or setting."""

    def __init__(self, plugin, model, vae, runtime: DecoderRuntime | None, voices: int, instrument: str | None,
                 values: dict):
        self.space = load_timbre_space(vae) if vae is not None else None
        if self.space is None:
            self.runtime, self.instrument = open_model(model, runtime, voices, instrument)
            return
        space = self.space
        self.runtime, _ = open_model(model or space.decoder_path, runtime, voices, None)
        if self.runtime.latent_dims != space.latent_dims:
            raise SynthError(f"files.vae: the timbre model's z has {space.latent_dims} dimensions, the decoder "
                             f"takes {self.runtime.latent_dims}")
        if instrument is not None and instrument not in space.instruments:
            raise SynthError(f"settings.instrument: {instrument!r} is not one of the timbre model's instruments "
                             f"({', '.join(space.instruments)})")
        self.instrument = instrument or space.instruments[0]
        for name, value in zip(latent_param_names(space.latent_dims), space.centroid(self.instrument)):
            if name not in values:
                plugin.params[name].set(float(value))

    def allocate(self, params: dict) -> None:
        """Buffers for the z parameters (plugin.params), every voice on the instrument (without a
        timbre model), and the runtime's kernels compiled."""
        dims = self.space.latent_dims if self.space is not None else 0
        self._z = np.zeros(dims, dtype=np.float32)
        self._z_params = [params[name] for name in latent_param_names(dims)]
        if self.instrument is not None and self.space is None:
            for v in range(self.runtime.voices):
                self.runtime.set_voice_instrument(v, self.instrument)
        self.runtime.warm_up()

    def advance(self, hop: int) -> None:
        """With a timbre model: every voice's z becomes the z parameters' values one hop on."""
        if self._z_params:
            for i, param in enumerate(self._z_params):
                self._z[i] = param.ramp(hop)[1]
            fill_rows(self.runtime.latent, self._z)


class NeuralDecoder(PolyInstrument):
    """Files: `model` (the decoder's .json; its .safetensors beside it) and, optionally, `vae` (a
    timbre model, models.vae: then z comes from the parameters z1..zD, and `model` defaults to
    the decoder the timbre model names). Settings: `instrument`, one of the timbres the model (or
    the timbre model) was trained on (default: its first); with a timbre model it sets z1..zD to
    that instrument's centroid unless the preset sets them. Parameters:

    glide_ms: 0..2000, how long a new note's pitch takes to slide from the last note's (0 = none).
    vibrato_rate_hz: 0.1..12; vibrato_cents: 0..100 peak depth; tune_cents: -100..100.
    dynamics_db: 6..60, how far below the model's loudest a velocity-1 note plays.
    harmonics_db, noise_db: -60..12 dB, gains of the harmonic and noise parts of the sound.
    attack_ms, decay_ms, sustain, release_ms, level_db: the loudness envelope (synth.plugins.poly).
    z1..z16: -6..6, the timbre latent (only with `vae`; the first latent_dims of them count), smoothed.
    """

    name = "decoder"
    file_keys = ("model", "vae")
    setting_keys = ("instrument",)
    param_specs = (
        float_param("glide_ms", 0, 2000, 0, "ms", smoothing_ms=0, doc="portamento from the last note"),
        float_param("vibrato_rate_hz", 0.1, 12, 5.5, "Hz", LOG, doc="vibrato speed"),
        float_param("vibrato_cents", 0, 100, 0, "cents", doc="vibrato depth (peak)"),
        float_param("tune_cents", -100, 100, 0, "cents", doc="tuning of every note"),
        float_param("dynamics_db", 6, 60, 24, "dB", smoothing_ms=0, doc="loudness range of the velocities"),
        float_param("harmonics_db", -60, 12, 0, "dB", doc="gain of the harmonic part"),
        float_param("noise_db", -60, 12, 0, "dB", doc="gain of the filtered-noise part"),
    ) + envelope_params(attack_ms=30.0, decay_ms=2000.0, sustain=0.8, release_ms=250.0, level_db=0.0) + LATENT_PARAMS

    def __init__(self, voice_limit: int = 16, model: str | Path | None = None, instrument: str | None = None,
                 runtime: DecoderRuntime | None = None, vae: str | Path | None = None, **values: object):
        super().__init__(voice_limit, **values)
        self.timbre = DecoderTimbre(self, model, vae, runtime, voice_limit, instrument, values)
        self.runtime, self.instrument, self.timbre_space = self.timbre.runtime, self.timbre.instrument, self.timbre.space
        config = self.runtime.config
        self.hop = int(config["hop_samples"])
        self.model_rate = int(config["sample_rate"])
        low, high = config["loudness_range_db"]
        self.loudness_floor_db, self.loudness_top_db = float(low), float(high)

    def prepare(self, sample_rate: float, max_block: int, channels: int) -> None:
        check_model_rate(self.model_rate, sample_rate)
        super().prepare(sample_rate, max_block, channels)

    def allocate(self) -> None:
        super().allocate()
        voices = self.voices.size
        self._f0 = np.zeros(voices, dtype=np.float32)
        self._loudness = np.zeros(voices, dtype=np.float32)
        self._active = np.zeros(voices, dtype=bool)
        self._pitch = np.zeros(voices)
        self._vibrato = np.zeros(voices)
        self._synth = DecoderSynth(self.runtime)
        self._frame = np.zeros(self.hop, dtype=np.float32)
        self._position = self.hop  # samples of the current frame already handed out
        self._every_voice = np.ones(voices, dtype=bool)
        self._starting = np.zeros(voices, dtype=bool)  # notes begun inside the current frame, not yet rendered
        self._any_starting = False
        self._onsets = np.zeros(self.hop, dtype=np.float32)
        self._last_pitch_hz = 0.0
        self.timbre.allocate(self.params)

    def warm_up(self) -> None:
        """PolyInstrument's warm-up, then a second note begun inside the frame it left in progress,
        so that the kernels of a first frame (DecoderSynth.render_onsets) are compiled too."""
        super().warm_up()
        self.note_on(64, 100)
        self.process(np.zeros((self.channels, self.max_block), dtype=np.float32), 1)

    def start_voice(self, v: int, was_idle: bool) -> None:
        glide = self.params["glide_ms"].target > 0.0 and self._last_pitch_hz > 0.0
        if was_idle:
            self._synth.restart_voice(v)
            self._vibrato[v] = 0.0
            self._pitch[v] = self._last_pitch_hz if glide else 0.0
        elif not glide:
            self._pitch[v] = 0.0
        self._last_pitch_hz = midi_to_hz(int(self.voices.note[v]))
        if was_idle and self._position < self.hop:  # mid-frame: its first frame is the rest of this one
            self._starting[v] = True
            self._any_starting = True

    def clear_voice_state(self) -> None:
        self._synth.reset()
        for array in (self._pitch, self._vibrato):
            array[...] = 0.0
        self._frame.fill(0.0)
        self._position = self.hop
        self._starting.fill(False)
        self._any_starting = False
        self._last_pitch_hz = 0.0

    def render_voices(self, mono: np.ndarray, n: int, envelope: tuple) -> None:
        if self._any_starting:
            self._render_onsets(envelope)
        done = 0
        while done < n:
            if self._position == self.hop:
                self._render_frame(envelope)
                self._position = 0
            take = min(n - done, self.hop - self._position)
            copy_samples(mono, done, self._frame, self._position, take)
            self._position += take
            done += take

    def _glide_coef(self, frame_s: float) -> float:
        """How much of the pitch's distance to its note remains after a frame of frame_s seconds."""
        glide_ms = self.params["glide_ms"].target
        return float(np.exp(-1000.0 * frame_s / glide_ms)) if glide_ms > 0.0 else 0.0

    def _render_onsets(self, envelope: tuple) -> None:
        """The first frame of the notes begun inside the frame in progress: the rest of that frame,
        from each note's own sample (DecoderSynth.render_onsets), the parameters as they stand."""
        p, pool, starting = self.params, self.voices, self._starting
        samples = self.hop - self._position
        frame_s = samples / self.sample_rate
        advance_envelopes(pool.stage, pool.level, samples, *envelope, starting)
        voice_conditioning(pool.stage, pool.level, pool.velocity, pool.note, self._pitch, self._vibrato, frame_s,
                           self._glide_coef(frame_s), 2.0 ** (p["tune_cents"].value / 1200.0),
                           p["vibrato_rate_hz"].value, p["vibrato_cents"].value, self.loudness_top_db,
                           max(self.loudness_floor_db, self.loudness_top_db - p["dynamics_db"].target),
                           self._f0, self._loudness, self._active, starting)
        self.runtime.step(self._f0, self._loudness, None, starting)
        self._onsets.fill(0.0)
        self._synth.render_onsets(self._onsets, samples, self._f0, starting, 10.0 ** (p["harmonics_db"].value / 20.0),
                                  10.0 ** (p["noise_db"].value / 20.0))
        add_samples(self._frame, self._position, self._onsets, 0, samples)
        starting.fill(False)
        self._any_starting = False

    def _render_frame(self, envelope: tuple) -> None:
        """The next hop of audio into self._frame: conditioning, one decoder step, synthesis."""
        p, hop = self.params, self.hop
        frame_s = hop / self.sample_rate
        pool = self.voices
        advance_envelopes(pool.stage, pool.level, hop, *envelope, self._every_voice)
        voice_conditioning(pool.stage, pool.level, pool.velocity, pool.note, self._pitch, self._vibrato, frame_s,
                           self._glide_coef(frame_s), 2.0 ** (p["tune_cents"].ramp(hop)[1] / 1200.0),
                           p["vibrato_rate_hz"].ramp(hop)[1], p["vibrato_cents"].ramp(hop)[1], self.loudness_top_db,
                           max(self.loudness_floor_db, self.loudness_top_db - p["dynamics_db"].target),
                           self._f0, self._loudness, self._active, self._every_voice)
        self.timbre.advance(hop)
        self.runtime.step(self._f0, self._loudness, None, self._active)
        self._frame.fill(0.0)
        self._synth.render_frame(self._frame, self._frame, self._f0, self._active,
                                 10.0 ** (p["harmonics_db"].ramp(hop)[1] / 20.0), 10.0 ** (p["noise_db"].ramp(hop)[1] / 20.0))
