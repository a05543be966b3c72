"""Loudness as broadcasters and streaming services read it: integrated loudness (ITU-R BS.1770,
K-weighted and gated, in LUFS, through pyloudnorm) and true peak (dBTP, from the signal
oversampled 4 times, as BS.1770's annex 2 does it)."""

from __future__ import annotations

import math

import numpy as np

TRUE_PEAK_OVERSAMPLING = 4
MIN_LOUDNESS_S = 0.4  # one gating block: shorter audio has no integrated loudness


def integrated_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (LUFS) of float [frames, channels]; -inf for silence or audio shorter
    than one 400 ms gating block."""
    import pyloudnorm

    if audio.shape[0] < MIN_LOUDNESS_S * sample_rate or not np.any(audio):
        return -math.inf
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(audio.astype(np.float64)))


def true_peak_dbtp(audio: np.ndarray) -> float:
    """True peak (dBTP) of float [frames, channels]: the largest magnitude of the signal
    oversampled 4 times; -inf for silence."""
    from scipy.signal import resample_poly

    if not np.any(audio):
        return -math.inf
    oversampled = resample_poly(audio.astype(np.float64), TRUE_PEAK_OVERSAMPLING, 1, axis=0)
    return 20.0 * math.log10(max(float(np.max(np.abs(oversampled))), float(np.max(np.abs(audio)))))
