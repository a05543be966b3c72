"""Loudness as broadcasters and streaming services read it: integrated loudness (ITU-R BS.1770-4:
K-weighted, gated, in LUFS) and true peak (dBTP, from the signal oversampled 4 times, as BS.1770's
annex 2 does it).

Written on numpy and numba alone because `synth render` prints both after every render and
scipy.signal (what pyloudnorm and resample_poly stand on) takes 0.7 s to import, more than a short
render itself; the tests hold these against pyloudnorm and scipy's resample_poly.

K-weighting: a high shelf (+4 dB above about 1.7 kHz, the head's effect) then a high-pass (about
38 Hz), each a biquad from the bilinear transform of the analog prototype whose 48 kHz digital
form is the coefficient table of BS.1770, so every sample rate gets the same curve. Gating: 400 ms
blocks every 100 ms; blocks under -70 LUFS are dropped, then those more than 10 LU under the
loudness of the rest; the channels' mean squares are summed with weight 1 (mono and stereo).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

TRUE_PEAK_OVERSAMPLING = 4
TRUE_PEAK_HALF_TAPS = 12  # the interpolating filter spans this many input samples either side
TRUE_PEAK_KAISER_BETA = 8.0
MIN_LOUDNESS_S = 0.4  # one gating block: shorter audio has no integrated loudness
GATE_BLOCK_S, GATE_STEP_S = 0.4, 0.1
ABSOLUTE_GATE_LUFS, RELATIVE_GATE_LU = -70.0, -10.0
LOUDNESS_OFFSET_DB = -0.691  # BS.1770: a 997 Hz full-scale sine in one front channel reads -3.01 LUFS
# analog prototypes of the two K-weighting stages (their bilinear transforms at 48 kHz are BS.1770's table)
SHELF_HZ, SHELF_GAIN_DB, SHELF_Q, SHELF_BANDWIDTH_EXPONENT = 1681.974450955533, 3.999843853973347, \
    0.7071752369554196, 0.4996667741545416
HIGHPASS_HZ, HIGHPASS_Q = 38.13547087602444, 0.5003270373238773


def k_weighting(sample_rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two K-weighting biquads at `sample_rate` (Hz), each (b [3], a [3]) with a[0] = 1."""
    k = math.tan(math.pi * SHELF_HZ / sample_rate)
    high_gain = 10.0 ** (SHELF_GAIN_DB / 20.0)
    band_gain = high_gain ** SHELF_BANDWIDTH_EXPONENT
    norm = 1.0 + k / SHELF_Q + k * k
    shelf = (np.array([high_gain + band_gain * k / SHELF_Q + k * k, 2.0 * (k * k - high_gain),
                       high_gain - band_gain * k / SHELF_Q + k * k]) / norm,
             np.array([1.0, 2.0 * (k * k - 1.0) / norm, (1.0 - k / SHELF_Q + k * k) / norm]))
    k = math.tan(math.pi * HIGHPASS_HZ / sample_rate)
    norm = 1.0 + k / HIGHPASS_Q + k * k
    highpass = (np.array([1.0, -2.0, 1.0]), np.array([1.0, 2.0 * (k * k - 1.0) / norm, (1.0 - k / HIGHPASS_Q + k * k) / norm]))
    return [shelf, highpass]


@njit(nogil=True, cache=True)
def _biquad(x, b, a, out):
    """out[n] = the biquad (b, a; a[0] = 1) of x [n] from rest (transposed direct form II, float64)."""
    s1 = 0.0
    s2 = 0.0
    for n in range(x.size):
        y = b[0] * x[n] + s1
        s1 = b[1] * x[n] - a[1] * y + s2
        s2 = b[2] * x[n] - a[2] * y
        out[n] = y


def integrated_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (LUFS) of float [frames, channels]; -inf for silence or audio shorter
    than one 400 ms gating block."""
    frames = audio.shape[0]
    block, step = round(GATE_BLOCK_S * sample_rate), round(GATE_STEP_S * sample_rate)
    if frames < block or not np.any(audio):
        return -math.inf
    starts = np.arange(0, frames - block + 1, step)
    block_power = np.zeros(starts.size)
    weighted, filtered = np.empty(frames), np.empty(frames)
    for channel in range(audio.shape[1]):
        weighted[:] = audio[:, channel]
        for b, a in k_weighting(sample_rate):
            _biquad(weighted, b, a, filtered)
            weighted, filtered = filtered, weighted
        energy = np.concatenate(([0.0], np.cumsum(weighted * weighted)))
        block_power += (energy[starts + block] - energy[starts]) / block
    with np.errstate(divide="ignore"):
        block_lufs = LOUDNESS_OFFSET_DB + 10.0 * np.log10(block_power)
    kept = block_power[block_lufs > ABSOLUTE_GATE_LUFS]
    if kept.size == 0:
        return -math.inf
    relative_gate = LOUDNESS_OFFSET_DB + 10.0 * math.log10(kept.mean()) + RELATIVE_GATE_LU
    kept = block_power[block_lufs > max(relative_gate, ABSOLUTE_GATE_LUFS)]
    return LOUDNESS_OFFSET_DB + 10.0 * math.log10(kept.mean())


def interpolation_filter() -> np.ndarray:
    """The true-peak interpolator, float64 [phases, 2 * TRUE_PEAK_HALF_TAPS]: a Kaiser-windowed
    sinc low-pass at the input's Nyquist frequency, split into one sub-filter per output phase:
    row p, applied to the input up to sample n (taps[p, k] weighs x[n - k]), gives the signal at
    time n - (TRUE_PEAK_HALF_TAPS - 1) - p / phases (samples)."""
    phases, half = TRUE_PEAK_OVERSAMPLING, TRUE_PEAK_HALF_TAPS
    offsets = np.arange(-half + 1, half + 1)[None, :] - np.arange(phases)[:, None] / phases  # input samples
    window = np.kaiser(2 * half * phases + 1, TRUE_PEAK_KAISER_BETA)
    window_at = np.interp(offsets, np.linspace(-half, half, window.size), window)
    return np.sinc(offsets) * window_at


@njit(nogil=True, cache=True, fastmath=True)  # fastmath: the sums may be reordered into SIMD lanes
def _oversampled_peak(padded, reversed_taps):
    """The largest magnitude of the interpolated signal: padded is x with reversed_taps.shape[1] - 1
    zeros before it (and some after, for the interpolation up to its last sample); reversed_taps:
    interpolation_filter()'s rows reversed, so each sum runs forward through memory."""
    phases, width = reversed_taps.shape
    peak = 0.0
    for n in range(width - 1, padded.size):
        first = n - width + 1
        for p in range(phases):
            acc = 0.0
            for j in range(width):
                acc += reversed_taps[p, j] * padded[first + j]
            peak = max(peak, abs(acc))
    return peak


def true_peak_dbtp(audio: np.ndarray) -> float:
    """True peak (dBTP) of float [frames, channels]: the largest magnitude of the signal
    oversampled 4 times (or of its samples, if larger); -inf for silence."""
    if not np.any(audio):
        return -math.inf
    reversed_taps = np.ascontiguousarray(interpolation_filter()[:, ::-1])
    width = reversed_taps.shape[1]
    peak = float(np.max(np.abs(audio)))
    padded = np.zeros(audio.shape[0] + width - 1 + width // 2)
    for channel in range(audio.shape[1]):
        padded[width - 1:width - 1 + audio.shape[0]] = audio[:, channel]
        peak = max(peak, _oversampled_peak(padded, reversed_taps))
    return 20.0 * math.log10(peak)
