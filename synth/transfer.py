"""Timbre transfer, offline: any monophonic recording played back by a decoder model's instrument.

The input's pitch (pyin) and A-weighted loudness are measured per frame (synth.dsp.features), the
decoder runtime turns them, frame by frame and with one voice, into harmonic and noise controls,
and the oscillator bank plus the filtered-noise kernel render them, exactly as the `decoder`
instrument does live (synth.plugins.decoder). No torch is needed.

Alignment (output sample i belongs to input sample i):
- Features: frame k is measured on a window centred on sample (k+1)*hop. The synthesiser reaches
  frame k's controls at the end of block k, which is that same sample (k+1)*hop, and glides to
  them linearly over the block. So the harmonic part needs no shift: at every sample it follows
  the input's features interpolated at that sample (the analysis windows being centred, this
  uses up to half a window of look-ahead, which is fine offline).
- Noise: the filtered noise lags its frame by noise_bands - 1 samples (the centre of its FIR,
  synth.dsp.filtered_noise). It is rendered that many samples further and read that much later.
  As in training (models.ddsp_synth), block k's noise takes frame k's filter for the whole block
  rather than gliding to it.
- Resampling (input rate != model rate) uses scipy's polyphase filter, which is zero-phase.
- The input is zero-padded at the end so the last partial frame and the noise look-ahead are
  covered; the result is cut to the input's length.

Gate: frames whose loudness (after loudness_offset_db) is below max(gate_db, the model's lowest
training loudness) are rendered silent (the voice is inactive): background hiss and silence
give silence whatever the model would make of them; when sound resumes the voice starts afresh (zero recurrent state, phases, noise tail), as
a new note does in the instrument.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm import tqdm

from synth.dsp.decoder_runtime import DecoderRuntime, load_runtime, model_paths
from synth.dsp.decoder_synth import DecoderSynth
from synth.dsp.features import f0_pyin, loudness_db
from synth.dsp.filtered_noise import noise_delay_samples
from synth.dsp.timbre_space import load_timbre_space
from synth.errors import SynthError

DEFAULT_GATE_DB = -70.0  # frames quieter than this (A-weighted dB) are rendered silent
PYIN_LIMITS_HZ = (30.0, 2100.0)  # pyin never searches outside this
_PYIN_MARGIN = 2.0 ** (1.0 / 12.0)  # the search range is the model's f0 range widened a semitone


def render_frames(runtime: DecoderRuntime, f0_hz: np.ndarray, loudness_db_: np.ndarray,
                  active: np.ndarray | None = None, harmonics_db: float = 0.0, noise_db: float = 0.0,
                  seed: int = 0, mel: np.ndarray | None = None, progress: bool = False) -> np.ndarray:
    """Audio of voice 0 of `runtime` driven by per-frame features, with the noise delay removed.

    f0_hz, loudness_db_: float [F] (Hz, dB), frame k being the value at sample (k+1)*hop (the
    features convention); active: bool [F] (None: all), inactive frames are silent and the
    voice restarts (zero recurrent state, phases, noise tail) when they end. harmonics_db,
    noise_db: gains (dB) of the two parts; seed: the white noise's seed. The runtime must have
    at least one voice; its voice 0 is reset first and keeps its latent (set_voice_instrument).
    mel: float [F, mel_bands] log-mel frames, required by a model with mel_bands > 0 (speech).
    progress: a tqdm bar over the frames on stderr (the decoder's run, then the synthesis).
    Returns float32 [F * hop]: sample t holds the harmonics following frame k at t = (k+1)*hop,
    and the noise of those frames advanced by noise_bands - 1 samples; the noise of the last
    such samples comes from holding the last frame.
    """
    f0_hz = np.asarray(f0_hz, dtype=np.float32)
    loudness_db_ = np.asarray(loudness_db_, dtype=np.float32)
    frames = f0_hz.shape[0] if f0_hz.ndim == 1 else -1
    if frames < 0 or loudness_db_.shape != f0_hz.shape:
        raise SynthError(f"render_frames: f0_hz {f0_hz.shape} and loudness_db {loudness_db_.shape} must both "
                         "be [frames]")
    active = np.ones(frames, dtype=bool) if active is None else np.asarray(active, dtype=bool)
    if active.shape != f0_hz.shape:
        raise SynthError(f"render_frames: active {active.shape} must be [frames] like f0_hz {f0_hz.shape}")
    config = runtime.config
    hop = int(config["hop_samples"])
    delay = noise_delay_samples(int(config["noise_bands"]))
    if frames == 0:
        return np.zeros(0, dtype=np.float32)
    extra = -(-delay // hop)  # frames rendered past the end for the noise's look-ahead
    total = frames + extra
    held = np.concatenate([np.arange(frames), np.full(extra, frames - 1)])
    f0_all, loud_all, active_all = f0_hz[held], loudness_db_[held], active[held]
    mel_all = None
    if runtime.mel_bands:
        if mel is None or np.shape(mel) != (frames, runtime.mel_bands):
            raise SynthError(f"render_frames: this model reads mel frames [{frames}, {runtime.mel_bands}], got "
                             f"{None if mel is None else np.shape(mel)}")
        mel_all = np.asarray(mel, dtype=np.float32)[held]
    runtime.reset()
    with tqdm(total=2 * total, desc="decoder", unit="frame", disable=not progress, leave=False) as bar:
        amplitude, harmonics, noise = runtime.run_sequence(f0_all, loud_all, active_all, mel_all)
        bar.update(total)  # the network runs over all frames at once
        bar.set_description_str("synthesis")
        f0_v, on_v = np.zeros(1, np.float32), np.zeros(1, dtype=bool)
        synth = DecoderSynth(runtime, seed)
        harmonic_gain, noise_gain = 10.0 ** (harmonics_db / 20.0), 10.0 ** (noise_db / 20.0)
        harmonic_out = np.zeros(total * hop, np.float32)
        noise_out = np.zeros(total * hop, np.float32)
        was_on = False
        for k in range(total):
            f0_v[0], on_v[0] = f0_all[k], active_all[k]
            if on_v[0] and not was_on:
                synth.restart_voice(0)
            was_on = bool(on_v[0])
            block = slice(k * hop, (k + 1) * hop)
            synth.render_frame(harmonic_out[block], noise_out[block], f0_v, on_v, harmonic_gain, noise_gain,
                               (amplitude[k:k + 1], harmonics[k:k + 1], noise[k:k + 1]))
            if k % 256 == 255 or k == total - 1:
                bar.update(k % 256 + 1)
    return harmonic_out[:frames * hop] + noise_out[delay:delay + frames * hop]


def _check_audio(audio, sample_rate) -> tuple[np.ndarray, int]:
    if not isinstance(audio, np.ndarray) or audio.ndim != 1 or not np.issubdtype(audio.dtype, np.floating):
        raise SynthError(f"transfer: audio must be a 1-D float array of samples (mono, full scale 1.0), got "
                         f"{getattr(audio, 'dtype', type(audio).__name__)} {getattr(audio, 'shape', '')}")
    if not np.all(np.isfinite(audio)):
        raise SynthError("transfer: audio contains NaN or infinite samples")
    if (isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer))
            or not 1000 <= sample_rate <= 768000):
        raise SynthError(f"transfer: sample_rate={sample_rate!r} must be an integer number of Hz in 1000..768000")
    return audio, int(sample_rate)


def resample_audio(audio: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Zero-phase polyphase resampling (scipy) of float [n]; float64 out."""
    if from_hz == to_hz:
        return audio.astype(np.float64)
    from scipy.signal import resample_poly

    ratio = Fraction(to_hz, from_hz)
    return resample_poly(audio.astype(np.float64), ratio.numerator, ratio.denominator)


def pyin_range_hz(runtime: DecoderRuntime, pitch_shift_semitones: float) -> tuple[float, float]:
    """pyin's search range (Hz) for a transfer: the model's training f0 range moved down by the
    pitch shift (the input is measured before it is shifted), widened by a semitone each side
    and kept within PYIN_LIMITS_HZ."""
    low, high = runtime.config["f0_range_hz"]
    shift = 2.0 ** (pitch_shift_semitones / 12.0)
    fmin = min(max(low / shift / _PYIN_MARGIN, PYIN_LIMITS_HZ[0]), PYIN_LIMITS_HZ[1] / 2.0)
    fmax = max(min(high / shift * _PYIN_MARGIN, PYIN_LIMITS_HZ[1]), 2.0 * fmin)
    return fmin, fmax


def transfer_runtime(runtime: DecoderRuntime, audio: np.ndarray, sample_rate: int, instrument: str | None = None,
                     pitch_shift_semitones: float = 0.0, loudness_offset_db: float = 0.0,
                     gate_db: float = DEFAULT_GATE_DB, harmonics_db: float = 0.0, noise_db: float = 0.0,
                     seed: int = 0, progress: bool = False) -> np.ndarray:
    """`transfer` with a runtime already loaded (see transfer for the arguments); uses voice 0.
    progress: say on stderr when pyin starts, and show a bar over the decoder's frames."""
    audio, sample_rate = _check_audio(audio, sample_rate)
    for name, value in (("pitch_shift_semitones", pitch_shift_semitones), ("loudness_offset_db", loudness_offset_db),
                        ("gate_db", gate_db), ("harmonics_db", harmonics_db), ("noise_db", noise_db)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not math.isfinite(value):
            raise SynthError(f"transfer: {name}={value!r} must be a finite number")
    if abs(pitch_shift_semitones) > 48:
        raise SynthError(f"transfer: pitch_shift_semitones={pitch_shift_semitones!r} must be within -48..48")
    instruments = list(runtime.instruments)
    if instrument is not None and instrument not in instruments:
        raise SynthError(f"transfer: instrument={instrument!r} is not one of the model's instruments "
                         f"({', '.join(instruments) or 'none'})")
    name = instrument or (instruments[0] if instruments else None)
    if name is not None and runtime.latent_dims > 0:
        runtime.set_voice_instrument(0, name)
    n = audio.shape[0]
    model_rate, hop = int(runtime.config["sample_rate"]), int(runtime.config["hop_samples"])
    signal = resample_audio(audio, sample_rate, model_rate)
    n_model = signal.shape[0]
    delay = noise_delay_samples(int(runtime.config["noise_bands"]))
    frames = -(-(n_model + delay) // hop)
    padded = np.zeros(frames * hop)
    padded[:n_model] = signal
    if progress:  # pyin is one long call (about 1 s per second of audio) with no progress of its own
        tqdm.write(f"transfer: following the pitch of {n / sample_rate:.1f} s of audio (pyin)...", file=sys.stderr)
    f0, _ = f0_pyin(padded, model_rate, hop, *pyin_range_hz(runtime, pitch_shift_semitones))
    loud = loudness_db(padded, model_rate, hop) + np.float32(loudness_offset_db)
    floor_db = max(float(gate_db), float(runtime.config["loudness_range_db"][0]))
    shifted = f0 * np.float32(2.0 ** (pitch_shift_semitones / 12.0))
    out = render_frames(runtime, shifted, loud, loud >= floor_db, harmonics_db, noise_db, seed,
                        progress=progress)[:n_model]
    if model_rate != sample_rate:
        out = resample_audio(out, model_rate, sample_rate)
    result = np.zeros(n, dtype=np.float32)
    result[:min(n, out.shape[0])] = out[:n]
    return result


def transfer(audio: np.ndarray, sample_rate: int, model_stem, instrument: str | None = None,
             pitch_shift_semitones: float = 0.0, loudness_offset_db: float = 0.0, *,
             gate_db: float = DEFAULT_GATE_DB, harmonics_db: float = 0.0, noise_db: float = 0.0,
             seed: int = 0) -> np.ndarray:
    """Re-play a monophonic recording with a decoder model's instrument (see the module docstring).

    audio: float [n] mono samples (full scale 1.0) at sample_rate (Hz); model_stem: the model's
    path without suffix (or its .json / .safetensors); instrument: one of the model's timbres
    (default its first); pitch_shift_semitones: transposition of the measured f0 (-48..48);
    loudness_offset_db: added to the measured loudness (dB), e.g. to bring a quiet recording into
    the model's range; gate_db: frames quieter than this (after the offset, dB) are silent;
    harmonics_db, noise_db: part gains (dB); seed: the noise's seed.
    Returns float32 [n] at sample_rate, sample i aligned with input sample i.
    Cost: pyin, about 1 s per second of audio for a wide f0 range, plus well under that for synthesis.
    """
    runtime = load_runtime(model_stem, 1)
    return transfer_runtime(runtime, audio, sample_rate, instrument, pitch_shift_semitones, loudness_offset_db,
                            gate_db=gate_db, harmonics_db=harmonics_db, noise_db=noise_db, seed=seed)


def _decoder_entry(spec):
    """(index, ChainEntry) of the first `decoder` slot of a PresetSpec; SynthError if it has none."""
    for index, entry in enumerate(spec.chain):
        if entry.plugin == "decoder":
            if "model" not in entry.files and "vae" not in entry.files:
                raise SynthError(f"{spec.source}: the decoder slot {entry.id!r} has no files.model (or files.vae)")
            return index, entry
    plugins = ", ".join(entry.plugin for entry in spec.chain)
    raise SynthError(f"{spec.source}: the preset has no decoder plugin in its chain ({plugins}); timbre transfer "
                     "needs a preset with a decoder slot, or a model file")


def _as_spec(preset):
    from synth.presets import PresetSpec, load_preset

    return preset if isinstance(preset, PresetSpec) else load_preset(preset)


def decoder_from_preset(preset) -> tuple[Path, str | None, float, float]:
    """(model stem, instrument or None, harmonics_db, noise_db) of the first `decoder` slot of a
    preset (a synth.presets.PresetSpec, or a preset name/path to load); SynthError if it has none."""
    spec = _as_spec(preset)
    _, entry = _decoder_entry(spec)
    if "model" in entry.files:
        stem = (spec.folder / entry.files["model"]).with_suffix("")
    else:
        stem = load_timbre_space(spec.folder / entry.files["vae"]).decoder_path.with_suffix("")
    instrument = entry.settings.get("instrument")
    return (stem, None if instrument is None else str(instrument),
            float(entry.params.get("harmonics_db", 0.0)), float(entry.params.get("noise_db", 0.0)))


def preset_latent(preset, instrument: str | None = None) -> np.ndarray | None:
    """The z (float32 [D]) of the first decoder slot of a preset with a timbre model (files.vae):
    `instrument`'s centroid if given, else the slot's z1..zD parameters where the preset sets them
    over its instrument's centroid; None without a timbre model."""
    spec = _as_spec(preset)
    _, entry = _decoder_entry(spec)
    if "vae" not in entry.files:
        return None
    space = load_timbre_space(spec.folder / entry.files["vae"])
    if instrument is not None:
        return space.centroid(instrument).astype(np.float32)
    z = space.centroid(str(entry.settings.get("instrument", space.instruments[0])))
    for i in range(space.latent_dims):
        z[i] = float(entry.params.get(f"z{i + 1}", z[i]))
    return z.astype(np.float32)


def live_transfer_preset(preset):
    """The preset `synth play PRESET --input` plays: the first `decoder` slot becomes a `transfer`
    slot (synth.plugins.transfer) with the same id, model (and timbre model), instrument and
    harmonics_db / noise_db / level_db / z1..zD, so live input drives the model; the other slots stay. OSC and MIDI CC mappings onto
    decoder parameters the transfer plugin lacks (vibrato, envelope...) are dropped. A preset that
    already has a `transfer` slot is returned as it is. preset: a PresetSpec or a name/path."""
    import dataclasses

    from synth.plugins.transfer import LiveTransfer
    from synth.presets import ChainEntry

    spec = _as_spec(preset)
    if any(entry.plugin == LiveTransfer.name for entry in spec.chain):
        return spec
    index, entry = _decoder_entry(spec)
    kept = {spec_.name for spec_ in LiveTransfer.param_specs}
    settings = {key: value for key, value in entry.settings.items() if key in LiveTransfer.setting_keys}
    slot = ChainEntry(LiveTransfer.name, entry.id, {k: v for k, v in entry.params.items() if k in kept},
                      None, dict(entry.files), settings)
    chain = spec.chain[:index] + [slot] + spec.chain[index + 1:]

    def mapping(table: dict) -> dict:
        return {key: (slot_id, name) for key, (slot_id, name) in table.items() if slot_id != entry.id or name in kept}

    return dataclasses.replace(spec, name=f"{spec.name} (live transfer)", chain=chain,
                               osc_map=mapping(spec.osc_map), midi_cc=mapping(spec.midi_cc))


def transfer_file(in_wav, preset_or_model, out_wav, instrument: str | None = None,
                  pitch_shift_semitones: float = 0.0, loudness_offset_db: float = 0.0,
                  fmt: str = "float32", progress: bool = False) -> tuple[Path, float]:
    """`synth transfer IN.wav PRESET -o OUT.wav`: read an audio file (mixed to mono), transfer it
    and write a mono WAV at the input's rate (atomically). preset_or_model: a preset name or .toml
    path whose chain holds a `decoder` slot (its files.model, settings.instrument and params
    harmonics_db / noise_db are used), or a model's .json / .safetensors / stem. instrument
    overrides the preset's. fmt: an audio format of synth.io.audiofile. progress: as for
    transfer_runtime. Returns (output path, duration in s)."""
    from synth.io.audiofile import read_audio, write_wav

    target = Path(str(preset_or_model))
    weights, meta = model_paths(target)
    latent = None
    if target.suffix in (".json", ".safetensors") or (target.suffix != ".toml" and meta.is_file()):
        stem, preset_instrument, harmonics_db, noise_db = weights.with_suffix(""), None, 0.0, 0.0
    else:
        stem, preset_instrument, harmonics_db, noise_db = decoder_from_preset(str(preset_or_model))
        latent = preset_latent(str(preset_or_model), instrument)
    data, sample_rate = read_audio(in_wav)
    mono = data.mean(axis=1, dtype=np.float64).astype(np.float32)
    if latent is None:
        out = transfer_runtime(load_runtime(stem, 1), mono, sample_rate, instrument or preset_instrument,
                               pitch_shift_semitones, loudness_offset_db, harmonics_db=harmonics_db, noise_db=noise_db,
                               progress=progress)
    else:  # a timbre model's decoder: z instead of an instrument name
        runtime = load_runtime(stem, 1)
        runtime.latent[0] = latent
        out = transfer_runtime(runtime, mono, sample_rate, None, pitch_shift_semitones, loudness_offset_db,
                               harmonics_db=harmonics_db, noise_db=noise_db, progress=progress)
    path = write_wav(out_wav, out[:, None], sample_rate, fmt)
    return path, out.shape[0] / sample_rate
