"""`transfer`: live timbre transfer. Live input's pitch and loudness drive the neural decoder.

Each completed hop of input (256 samples at 48 kHz) is analysed by the causal tracker
synth.dsp.features.StreamingFeatures (YIN f0 and A-weighted loudness over the newest 1024
samples), the decoder runtime turns the frame into controls with one voice, and DecoderSynth
renders the hop, exactly as the note-playing `decoder` instrument renders its voices.

Latency (`latency_samples`), all of it fixed and computed at prepare():
- analysis: the tracker's window ends at the newest sample, so its estimate describes the input
  window/2 samples ago (512 samples, 10.67 ms at 48 kHz);
- frames: synthesis of a hop can start only when its input hop is complete. The engine hands this
  plugin each block's whole input before rendering the block (`reads_block_input`), so with blocks of
  B frames a hop's audio is ready in time when the output runs hop - gcd(B, hop) samples behind:
  0 for B = 256 or 512, 128 for B = 128, 192 for B = 64 (4 ms).
The total is at most 512 + 255 samples (16 ms) at 48 kHz, whatever the block size. The noise part
comes a further noise_bands - 1 samples (1.3 ms) later, the centre of its filter, as in the
`decoder` instrument. The audio interface's own input and output buffers come on top (see
`synth play`, which prints all three).
If blocks of other sizes than max_block arrive (an offline render's last block), a hop may not be
ready in time: those samples are silent and counted in `starved_samples`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from synth.dsp.decoder_runtime import DecoderRuntime
from synth.dsp.decoder_synth import DecoderSynth
from synth.dsp.features import StreamingFeatures
from synth.dsp.mix import add_mono
from synth.dsp.sample_ring import gather_channel, ring_read, ring_write
from synth.errors import SynthError
from synth.params import float_param
from synth.plugins.base import SOURCE, Plugin
from synth.plugins.decoder import LATENT_PARAMS, DecoderTimbre, check_model_rate

ANALYSIS_WINDOW_S = 0.021  # rounded up to a power of two: 1024 samples (21.3 ms) at 48 kHz, long enough for 60 Hz
ANALYSIS_RANGE_HZ = (60.0, 1500.0)  # f0 search range of the live tracker
MAX_INPUT_CHANNEL = 32


class LiveTransfer(Plugin):
    """Files: `model` (the decoder's .json) and optionally `vae` (a timbre model: z from z1..zD, as
    in the `decoder` plugin, so /latent, /latent/xy and /latent/morph move the live voice too).
    Settings: `instrument` (one of the model's timbres, default its first), `input_channel`
    (1-based channel of the live input to follow, default 1). Parameters:

    pitch_shift_semitones: -24..24, transposition of the input's pitch.
    loudness_offset_db: -40..40 dB added to the input's measured loudness (a quiet microphone
    reads well below the model's training range).
    gate_db: -100..-20 dB; input quieter than this (after the offset) gives silence.
    harmonics_db, noise_db: -60..12 dB, gains of the harmonic and noise parts; level_db: output level.
    z1..z16: -6..6, the timbre latent (only with `vae`).
    """

    name = "transfer"
    kind = SOURCE
    reads_block_input = True
    file_keys = ("model", "vae")
    setting_keys = ("instrument", "input_channel")
    param_specs = (
        float_param("pitch_shift_semitones", -24, 24, 0, "semitones", doc="transposition of the input's pitch"),
        float_param("loudness_offset_db", -40, 40, 0, "dB", doc="added to the input's loudness"),
        float_param("gate_db", -100, -20, -70, "dB", smoothing_ms=0, doc="quieter input is silent"),
        float_param("harmonics_db", -60, 12, 0, "dB", doc="gain of the harmonic part"),
        float_param("noise_db", -60, 12, 0, "dB", doc="gain of the filtered-noise part"),
        float_param("level_db", -60, 12, 0, "dB", doc="output level"),
    ) + LATENT_PARAMS

    def __init__(self, model: str | Path | None = None, instrument: str | None = None, input_channel: int = 1,
                 runtime: DecoderRuntime | None = None, vae: str | Path | None = None, **values: object):
        super().__init__(**values)
        if (isinstance(input_channel, bool) or not isinstance(input_channel, (int, float))
                or input_channel != int(input_channel) or not 1 <= input_channel <= MAX_INPUT_CHANNEL):
            raise SynthError(f"settings.input_channel: {input_channel!r} must be a channel number 1..{MAX_INPUT_CHANNEL}")
        self.input_channel = int(input_channel)
        self.timbre = DecoderTimbre(self, model, vae, runtime, 1, instrument, values)
        self.runtime, self.instrument, self.timbre_space = self.timbre.runtime, self.timbre.instrument, self.timbre.space
        config = self.runtime.config
        self.hop = int(config["hop_samples"])
        self.model_rate = int(config["sample_rate"])
        self.loudness_floor_db = float(config["loudness_range_db"][0])
        window = 1 << math.ceil(math.log2(ANALYSIS_WINDOW_S * self.model_rate))
        self.tracker = StreamingFeatures(self.model_rate, self.hop, window, *ANALYSIS_RANGE_HZ)
        self.frame_delay_samples = 0
        self.starved_samples = 0

    @property
    def latency_samples(self) -> int:
        """Output lag behind the input (samples): the analysis' window / 2 plus the frame delay."""
        return self.tracker.latency_samples + self.frame_delay_samples

    def latency_detail(self) -> str:
        to_ms = 1000.0 / self.model_rate
        return (f"analysis window {self.tracker.latency_samples * to_ms:.1f} ms + frames "
                f"{self.frame_delay_samples * to_ms:.1f} ms")

    def prepare(self, sample_rate: float, max_block: int, channels: int) -> None:
        check_model_rate(self.model_rate, sample_rate)
        super().prepare(sample_rate, max_block, channels)
        self.starved_samples = 0

    def allocate(self) -> None:
        hop, block = self.hop, self.max_block
        self.frame_delay_samples = hop - math.gcd(block, hop)
        self._input_block = np.zeros(block, dtype=np.float32)
        frames_per_block = (hop - 1 + block) // hop
        self._f0_frames = np.zeros(frames_per_block)
        self._loudness_frames = np.zeros(frames_per_block)
        self._ring = np.zeros(1 << (self.frame_delay_samples + block + 2 * hop).bit_length(), dtype=np.float32)
        self._frame = np.zeros(hop, dtype=np.float32)
        self._mono = np.zeros(block, dtype=np.float32)
        self._f0 = np.zeros(1, dtype=np.float32)
        self._loudness = np.zeros(1, dtype=np.float32)
        self._active = np.zeros(1, dtype=bool)
        self._synth = DecoderSynth(self.runtime)
        self.timbre.allocate(self.params)
        self._read_position = 0
        self._written_until = self.frame_delay_samples
        self._was_active = False

    def warm_up(self) -> None:
        """Compile every kernel: restart the voice (as sound after silence does), feed silence until
        a frame has been rendered, then read a block."""
        self._synth.restart_voice(0)
        silence = np.zeros((self.max_block, self.input_channel), dtype=np.float32)
        while self._written_until == self.frame_delay_samples:
            self.begin_input(silence, 0, self.max_block)
            self.begin_input(None, 0, self.max_block)
        self.process(np.zeros((self.channels, self.max_block), dtype=np.float32), self.max_block)

    def reset(self) -> None:
        super().reset()
        self.tracker.reset()
        self._synth.reset()
        self._ring.fill(0.0)
        self._read_position = 0
        self._written_until = self.frame_delay_samples
        self._was_active = False

    def begin_input(self, live_input: np.ndarray | None, start: int, n: int) -> None:
        if live_input is None:
            self._input_block.fill(0.0)
        else:
            gather_channel(live_input, start, n, self.input_channel - 1, self._input_block)
        frames = self.tracker.process(self._input_block, self._f0_frames, self._loudness_frames, n)
        for i in range(frames):
            self._render_frame(self._f0_frames[i], self._loudness_frames[i])

    def _render_frame(self, f0_hz: float, loudness_db: float) -> None:
        """Decode one frame of input features and append its hop of audio to the ring."""
        p, hop = self.params, self.hop
        loudness_db += p["loudness_offset_db"].ramp(hop)[1]
        active = f0_hz > 0.0 and loudness_db >= max(p["gate_db"].target, self.loudness_floor_db)
        if active and not self._was_active:
            self._synth.restart_voice(0)
        self._was_active = active
        self._f0[0] = f0_hz * 2.0 ** (p["pitch_shift_semitones"].ramp(hop)[1] / 12.0)
        self._loudness[0] = loudness_db
        self._active[0] = active
        self.timbre.advance(hop)
        self.runtime.step(self._f0, self._loudness, None, self._active)
        self._frame.fill(0.0)
        self._synth.render_frame(self._frame, self._frame, self._f0, self._active,
                                 10.0 ** (p["harmonics_db"].ramp(hop)[1] / 20.0),
                                 10.0 ** (p["noise_db"].ramp(hop)[1] / 20.0))
        ring_write(self._ring, self._written_until, self._frame, hop)
        self._written_until += hop

    def process(self, bus: np.ndarray, n: int) -> None:
        self.starved_samples += ring_read(self._ring, self._read_position, self._mono, n, self._written_until)
        self._read_position += n
        level_start, level_end = self.params["level_db"].ramp(n)
        add_mono(bus, self._mono, n, level_start, level_end)
