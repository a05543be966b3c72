"""`noise`: a polyphonic filtered-noise source (breath, wind, percussion, pitched noise)."""

from __future__ import annotations

import numpy as np

from synth.dsp.filters import FILTER_MODES
from synth.dsp.noise import render_noise_voices, seed_states
from synth.params import LOG, choice_param, float_param
from synth.plugins.poly import PolyInstrument, envelope_params


class NoiseSource(PolyInstrument):
    """White noise through a per-voice state-variable filter. Parameters:

    mode: lowpass, bandpass or highpass.
    cutoff_hz: 20..20000 Hz at middle C; key_tracking 0..1 makes the cutoff follow the note
    (1 = the cutoff moves with the keyboard, so a narrow bandpass sounds pitched).
    resonance: 0..1. seed: 0..65535, the noise sequence (renders are repeatable).
    attack_ms, decay_ms, sustain, release_ms, level_db: see synth.plugins.poly.envelope_params.
    """

    name = "noise"
    param_specs = (
        choice_param("mode", FILTER_MODES, "bandpass", "filter type"),
        float_param("cutoff_hz", 20, 20000, 1000, "Hz", LOG, 30, "filter cutoff at middle C"),
        float_param("key_tracking", 0, 1, 1, "", smoothing_ms=0, doc="how far the cutoff follows the note"),
        float_param("resonance", 0, 1, 0.5, "", smoothing_ms=30, doc="filter resonance"),
        float_param("seed", 0, 65535, 0, "", smoothing_ms=0, doc="noise sequence; applied on reset"),
    ) + envelope_params(attack_ms=20.0, release_ms=300.0)

    def allocate(self) -> None:
        super().allocate()
        size = self.voices.size
        self._rng = seed_states(0, size)
        self._ic1 = np.zeros(size)
        self._ic2 = np.zeros(size)

    def start_voice(self, v: int, was_idle: bool) -> None:
        if was_idle:
            self._ic1[v] = 0.0
            self._ic2[v] = 0.0

    def clear_voice_state(self) -> None:
        self._rng[:] = seed_states(int(self.params["seed"].target), self.voices.size)
        self._ic1[:] = 0.0
        self._ic2[:] = 0.0

    def render_voices(self, mono: np.ndarray, n: int, envelope: tuple) -> None:
        p = self.params
        cutoff_start, cutoff_end = p["cutoff_hz"].ramp(n)
        _, resonance = p["resonance"].ramp(n)
        attack_inc, decay_coef, sustain, release_coef = envelope
        pool = self.voices
        render_noise_voices(
            mono, n, self.sample_rate, int(p["mode"].target), pool.stage, pool.level, pool.velocity,
            pool.note, p["key_tracking"].target, self._rng, self._ic1, self._ic2,
            cutoff_start, cutoff_end, resonance, attack_inc, decay_coef, sustain, release_coef,
        )
