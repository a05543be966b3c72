"""`oscillator`: a polyphonic band-limited oscillator voice with a resonant lowpass and an ADSR."""

from __future__ import annotations

import numpy as np

from synth.dsp.oscillators import WAVEFORMS, render_oscillator_voices
from synth.params import LOG, choice_param, float_param
from synth.plugins.poly import PolyInstrument, envelope_params


class Oscillator(PolyInstrument):
    """Subtractive voice. Parameters:

    waveform: sine, triangle, saw or square (PolyBLEP band-limited).
    detune_cents: -100..100 cents, for every voice.
    cutoff_hz: 20..20000 Hz, lowpass cutoff (log scale); resonance: 0..1.
    attack_ms, decay_ms, sustain, release_ms, level_db: see synth.plugins.poly.envelope_params.
    """

    name = "oscillator"
    param_specs = (
        choice_param("waveform", WAVEFORMS, "saw", "oscillator shape"),
        float_param("detune_cents", -100, 100, 0, "cents", doc="tuning offset of every voice"),
        float_param("cutoff_hz", 20, 20000, 8000, "Hz", LOG, 30, "lowpass filter cutoff"),
        float_param("resonance", 0, 1, 0.1, "", smoothing_ms=30, doc="lowpass resonance"),
    ) + envelope_params()

    def allocate(self) -> None:
        super().allocate()
        size = self.voices.size
        self._phase = np.zeros(size)
        self._triangle = np.zeros(size)
        self._ic1 = np.zeros(size)
        self._ic2 = np.zeros(size)
        self._filter_gain = np.zeros(self.max_block)

    def start_voice(self, v: int, was_idle: bool) -> None:
        if was_idle:
            self._phase[v] = 0.0
            self._triangle[v] = -1.0  # the integrated square starts at its trough at phase 0
            self._ic1[v] = 0.0
            self._ic2[v] = 0.0

    def clear_voice_state(self) -> None:
        for state in (self._phase, self._triangle, self._ic1, self._ic2):
            state[:] = 0.0

    def render_voices(self, mono: np.ndarray, n: int, envelope: tuple) -> None:
        p = self.params
        cutoff_start, cutoff_end = p["cutoff_hz"].ramp(n)
        _, detune_cents = p["detune_cents"].ramp(n)
        _, resonance = p["resonance"].ramp(n)
        attack_inc, decay_coef, sustain, release_coef = envelope
        pool = self.voices
        render_oscillator_voices(
            mono, n, self.sample_rate, int(p["waveform"].target), pool.stage, pool.level,
            pool.velocity, pool.note, 2.0 ** (detune_cents / 1200.0), self._phase, self._triangle,
            self._ic1, self._ic2, self._filter_gain, cutoff_start, cutoff_end, resonance,
            attack_inc, decay_coef, sustain, release_coef,
        )
