"""Seeded white noise (xorshift64*) and filtered-noise voices.

Each voice owns one 64-bit generator state, so renders are repeatable and voices are uncorrelated.
"""

import math

import numpy as np
from numba import njit

from synth.dsp.envelopes import IDLE, adsr_step
from synth.dsp.filters import svf_damping, svf_gain, svf_tick
from synth.dsp.oscillators import midi_to_hz

_MULTIPLIER = np.uint64(0x2545F4914F6CDD1D)
_INV_2_63 = 1.0 / 9223372036854775808.0
MIDDLE_C_HZ = 261.6255653005986


def seed_states(seed: int, count: int) -> np.ndarray:
    """`count` distinct non-zero generator states derived from `seed`."""
    states = np.random.SeedSequence(seed).generate_state(count, dtype=np.uint64)
    states[states == 0] = 1
    return states


@njit(nogil=True, cache=True, inline="always")
def white_noise(states, v):
    """Next sample in [-1, 1) from generator states[v] (advanced in place)."""
    x = states[v]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    states[v] = x
    return float(x * _MULTIPLIER) * _INV_2_63 - 1.0


@njit(nogil=True, cache=True)
def render_noise_voices(out, n, sample_rate, mode, stage, level, velocity, note, key_tracking,
                        rng_states, filter_ic1, filter_ic2, cutoff_start_hz, cutoff_end_hz, resonance,
                        attack_inc, decay_coef, sustain, release_coef):
    """Sum every active filtered-noise voice into out[0:n] (overwritten).

    A voice's cutoff is cutoff_hz * (note_hz / 261.63 Hz) ** key_tracking: at middle C it is
    cutoff_hz; with key_tracking 1 it follows the keyboard. mode: 0 lowpass, 1 bandpass,
    2 highpass. rng_states: uint64 [voices]. Other arguments as in render_oscillator_voices.
    """
    for i in range(n):
        out[i] = 0.0
    log_c0 = math.log(cutoff_start_hz)
    log_step = (math.log(cutoff_end_hz) - log_c0) / n if n > 1 else 0.0
    k = svf_damping(resonance)
    for v in range(stage.shape[0]):
        if stage[v] == IDLE:
            continue
        st = stage[v]
        lev = level[v]
        ic1 = filter_ic1[v]
        ic2 = filter_ic2[v]
        gain = velocity[v]
        ratio = (midi_to_hz(note[v]) / MIDDLE_C_HZ) ** key_tracking
        for i in range(n):
            g = svf_gain(ratio * math.exp(log_c0 + log_step * i), sample_rate)
            y, ic1, ic2 = svf_tick(white_noise(rng_states, v), g, k, mode, ic1, ic2)
            st, lev = adsr_step(st, lev, attack_inc, decay_coef, sustain, release_coef)
            out[i] += y * lev * gain
            if st == IDLE:
                break
        stage[v] = st
        level[v] = lev
        filter_ic1[v] = ic1
        filter_ic2[v] = ic2
