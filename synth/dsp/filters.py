"""State-variable filter (trapezoidal integration), one sample at a time, for use inside kernels.

The topology is the well-known TPT/"zero-delay feedback" SVF: stable under fast cutoff modulation,
which per-sample smoothed cutoffs need. Modes: 0 lowpass, 1 bandpass (unity gain at the centre),
2 highpass.
"""

import math

from numba import njit

LOWPASS = 0
BANDPASS = 1
HIGHPASS = 2
FILTER_MODES = ("lowpass", "bandpass", "highpass")


@njit(nogil=True, cache=True, inline="always")
def svf_gain(cutoff_hz, sample_rate):
    """Prewarped integrator gain g for a cutoff (clamped just below Nyquist)."""
    fc = min(cutoff_hz, 0.49 * sample_rate)
    return math.tan(math.pi * fc / sample_rate)


@njit(nogil=True, cache=True, inline="always")
def svf_damping(resonance):
    """Damping k (2 = no resonance) from resonance 0..1; kept above 0.05 so it never self-oscillates."""
    return max(2.0 - 1.95 * resonance, 0.05)


@njit(nogil=True, cache=True, inline="always")
def svf_tick(x, g, k, mode, ic1, ic2):
    """Filter one sample; returns (output, ic1, ic2) with the new integrator states."""
    a1 = 1.0 / (1.0 + g * (g + k))
    a2 = g * a1
    a3 = g * a2
    v3 = x - ic2
    v1 = a1 * ic1 + a2 * v3
    v2 = ic2 + a2 * ic1 + a3 * v3
    ic1 = 2.0 * v1 - ic1
    ic2 = 2.0 * v2 - ic2
    if mode == LOWPASS:
        y = v2
    elif mode == BANDPASS:
        y = k * v1
    else:
        y = x - k * v1 - v2
    return y, ic1, ic2
