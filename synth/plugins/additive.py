"""`additive`: plays a sinusoidal analysis across the keyboard through the oscillator bank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit

from synth.dsp.additive import additive_block_controls, empty_scratch
from synth.dsp.oscbank import make_workspace, render_partials
from synth.dsp.partials import Partials, load_partials
from synth.dsp.playback_table import PlaybackTable, build_table
from synth.errors import SynthError
from synth.params import LOG, choice_param, float_param
from synth.plugins.poly import PolyInstrument, envelope_params

OFF_ON = ("off", "on")


@njit(nogil=True, cache=True)
def start_voice_partials(phase_rad, v, initial_phase_rad):
    """Set voice v's partial phases (radians) to the analysis' phases at its first frame."""
    tracks = initial_phase_rad.shape[0]
    for k in range(tracks):
        phase_rad[v * tracks + k] = initial_phase_rad[k]


class Additive(PolyInstrument):
    """Each note plays the analysis from its start, transposed from the analysis' own pitch to the
    note; velocity sets level and brightness. Files: `analysis` (a .partials.npz from `synth analyze`),
    optionally `morph_to` (a second one). Parameters (all live and smoothed where continuous):

    stretch: 0.25..4, playback time-stretch (2 = twice as long, same pitch).
    transpose_semitones: -24..24, on top of the note. keep_formants: off/on, keep the spectral
    envelope in place when transposing. morph: 0..1 from the analysis to `morph_to`.
    freeze: off/on, hold the frame at freeze_position (0..1 of the analysis' duration).
    loop: off/on, while a key is held travel back and forth between loop_start and loop_end (0..1).
    harmonics_only: off/on, silence partials that are not harmonics of f0. odd_even: -1 (odd
    harmonics only) .. 0 (both) .. 1 (even only). tilt_db_per_octave: -12..12 dB per octave above
    the root. velocity_tilt_db: 0..12 dB per octave darker at the softest velocity.
    attack_ms, decay_ms, sustain, release_ms, level_db: the note's envelope (synth.plugins.poly).
    """

    name = "additive"
    file_keys = ("analysis", "morph_to")
    param_specs = (
        float_param("stretch", 0.25, 4, 1, "x", LOG, 50, "time-stretch of the playback, pitch unchanged"),
        float_param("transpose_semitones", -24, 24, 0, "semitones", doc="pitch shift on top of the note"),
        choice_param("keep_formants", OFF_ON, "off", "keep the spectral envelope when transposing"),
        float_param("morph", 0, 1, 0, "", doc="0 the analysis, 1 the morph target"),
        choice_param("freeze", OFF_ON, "off", "hold one frame"),
        float_param("freeze_position", 0, 1, 0.5, "", doc="frame held by freeze, as a share of the duration"),
        choice_param("loop", OFF_ON, "on", "loop back and forth while the key is held"),
        float_param("loop_start", 0, 1, 0.3, "", smoothing_ms=0, doc="loop start, share of the duration"),
        float_param("loop_end", 0, 1, 0.7, "", smoothing_ms=0, doc="loop end, share of the duration"),
        choice_param("harmonics_only", OFF_ON, "off", "silence partials that are not harmonics"),
        float_param("odd_even", -1, 1, 0, "", doc="-1 odd harmonics only, 1 even only"),
        float_param("tilt_db_per_octave", -12, 12, 0, "dB/oct", doc="brightness tilt above the root"),
        float_param("velocity_tilt_db", 0, 12, 3, "dB/oct", smoothing_ms=0, doc="darkening at the softest velocity"),
    ) + envelope_params(attack_ms=2.0, decay_ms=2000.0, sustain=1.0, release_ms=250.0, level_db=-6.0)

    def __init__(self, voice_limit: int = 16, analysis: str | Path | Partials | None = None,
                 morph_to: str | Path | Partials | None = None, **values: object):
        super().__init__(voice_limit, **values)
        if analysis is None:
            raise SynthError("the additive plugin needs an analysis file (files = { analysis = \"....partials.npz\" })")
        self.table: PlaybackTable = build_table(_partials(analysis), None if morph_to is None else _partials(morph_to))

    def allocate(self) -> None:
        super().allocate()
        size, tracks = self.voices.size, self.table.tracks
        self._position = np.zeros(size)
        self._direction = np.ones(size)
        self._phase = np.zeros(size * tracks)
        self._freq_start = np.zeros(size * tracks, dtype=np.float32)
        self._freq_end = np.zeros(size * tracks, dtype=np.float32)
        self._amp_start = np.zeros(size * tracks, dtype=np.float32)
        self._amp_end = np.zeros(size * tracks, dtype=np.float32)
        self._scratch = empty_scratch(tracks)
        self._workspace = make_workspace(size * tracks)

    def start_voice(self, v: int, was_idle: bool) -> None:
        self._position[v] = 0.0
        self._direction[v] = 1.0
        if was_idle:
            start_voice_partials(self._phase, v, self.table.initial_phase_rad)

    def clear_voice_state(self) -> None:
        self._position[:] = 0.0
        self._direction[:] = 1.0
        self._phase[:] = 0.0
        self._amp_start[:] = 0.0
        self._amp_end[:] = 0.0

    def render_voices(self, mono: np.ndarray, n: int, envelope: tuple) -> None:
        p, t = self.params, self.table
        transpose = p["transpose_semitones"].ramp(n)
        morph = p["morph"].ramp(n)
        odd_even = p["odd_even"].ramp(n)
        tilt = p["tilt_db_per_octave"].ramp(n)
        _, stretch = p["stretch"].ramp(n)
        _, freeze_position = p["freeze_position"].ramp(n)
        last = t.frames - 1
        pool = self.voices
        frame_freq, frame_amp, frame_harmonic, order = self._scratch
        additive_block_controls(
            n, t.frames_per_second / self.sample_rate, pool.stage, pool.level, pool.velocity, pool.note,
            self._position, self._direction, t.freq_a, t.amp_a, t.freq_b, t.amp_b, t.harmonic,
            t.root_note, t.root_hz, *envelope, stretch, transpose[0], transpose[1], morph[0], morph[1],
            p["keep_formants"].target >= 1, p["freeze"].target >= 1, freeze_position * last,
            p["loop"].target >= 1, p["loop_start"].target * last, p["loop_end"].target * last,
            p["harmonics_only"].target >= 1, odd_even[0], odd_even[1], tilt[0], tilt[1],
            p["velocity_tilt_db"].target, frame_freq, frame_amp, frame_harmonic, order,
            self._freq_start, self._freq_end, self._amp_start, self._amp_end)
        mono.fill(0.0)
        render_partials(mono, n, self._freq_start, self._freq_end, self._amp_start, self._amp_end,
                        self._phase, self.sample_rate, self._workspace)


def _partials(source: str | Path | Partials) -> Partials:
    return source if isinstance(source, Partials) else load_partials(source)
