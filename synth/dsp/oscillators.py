"""Band-limited oscillator voices (PolyBLEP) with ADSR and a per-voice state-variable filter.

Waveforms: 0 sine, 1 triangle, 2 saw, 3 square. Saw and square get a polynomial band-limited step
at each discontinuity; the triangle is the leaky integral of the band-limited square, so its
corners are band-limited too.
"""

import math

from numba import njit

from synth.dsp.envelopes import IDLE, adsr_step
from synth.dsp.filters import svf_damping, svf_gain, svf_tick

SINE = 0
TRIANGLE = 1
SAW = 2
SQUARE = 3
WAVEFORMS = ("sine", "triangle", "saw", "square")

_TRIANGLE_LEAK = 0.9995  # keeps the integrator from drifting; -3 dB corner far below audio


@njit(nogil=True, cache=True, inline="always")
def midi_to_hz(note):
    """Equal-tempered frequency (Hz) of a MIDI note number, A4 = 69 = 440 Hz."""
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


@njit(nogil=True, cache=True, inline="always")
def _poly_blep(t, dt):
    """Correction for a unit step at phase 0 of a waveform with phase t and increment dt."""
    if t < dt:
        t = t / dt
        return t + t - t * t - 1.0
    if t > 1.0 - dt:
        t = (t - 1.0) / dt
        return t * t + t + t + 1.0
    return 0.0


@njit(nogil=True, cache=True, inline="always")
def _square(t, dt):
    value = 1.0 if t < 0.5 else -1.0
    t2 = t + 0.5
    if t2 >= 1.0:
        t2 -= 1.0
    return value + _poly_blep(t, dt) - _poly_blep(t2, dt)


@njit(nogil=True, cache=True)
def render_oscillator_voices(out, n, sample_rate, waveform, stage, level, velocity, note, tune_ratio,
                             phase, triangle_state, filter_ic1, filter_ic2, filter_gain, cutoff_start_hz,
                             cutoff_end_hz, resonance, attack_inc, decay_coef, sustain, release_coef):
    """Sum every active voice into out[0:n] (overwritten).

    out: float32 [max_block]. Per-voice arrays (float64 unless said): stage (int32), level (0..1),
    velocity (gain 0..1), note (int32 MIDI number), phase (cycles 0..1), triangle_state,
    filter_ic1/ic2. tune_ratio: frequency multiplier (detune) for every voice.
    filter_gain: float64 [max_block] scratch for the per-sample filter coefficient.
    cutoff_*_hz: filter cutoff at the segment's first and last sample (log-interpolated).
    attack_inc, decay_coef, sustain, release_coef: see synth.dsp.envelopes.
    """
    for i in range(n):
        out[i] = 0.0
    log_c0 = math.log(cutoff_start_hz)
    log_step = (math.log(cutoff_end_hz) - log_c0) / n if n > 1 else 0.0
    for i in range(n):
        filter_gain[i] = svf_gain(math.exp(log_c0 + log_step * i), sample_rate)
    k = svf_damping(resonance)
    for v in range(stage.shape[0]):
        if stage[v] == IDLE:
            continue
        st = stage[v]
        lev = level[v]
        t = phase[v]
        dt = min(midi_to_hz(note[v]) * tune_ratio / sample_rate, 0.5)
        tri = triangle_state[v]
        ic1 = filter_ic1[v]
        ic2 = filter_ic2[v]
        gain = velocity[v]
        for i in range(n):
            if waveform == SINE:
                x = math.sin(2.0 * math.pi * t)
            elif waveform == SAW:
                x = 2.0 * t - 1.0 - _poly_blep(t, dt)
            elif waveform == SQUARE:
                x = _square(t, dt)
            else:
                tri = _TRIANGLE_LEAK * tri + 4.0 * dt * _square(t, dt)
                x = tri
            t += dt
            if t >= 1.0:
                t -= 1.0
            y, ic1, ic2 = svf_tick(x, filter_gain[i], k, 0, ic1, ic2)
            st, lev = adsr_step(st, lev, attack_inc, decay_coef, sustain, release_coef)
            out[i] += y * lev * gain
            if st == IDLE:
                break
        stage[v] = st
        level[v] = lev
        phase[v] = t
        triangle_state[v] = tri
        filter_ic1[v] = ic1
        filter_ic2[v] = ic2
