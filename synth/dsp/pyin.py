"""Probabilistic YIN (pYIN: Mauch & Dixon 2014, as the pYIN Vamp plugin and librosa.pyin do it) in
numba, so that a command which needs a coarse f0 pays neither scipy.signal's nor scipy.stats'
import (about a second each) nor librosa's first-call compilation.

Per frame (centred, zero padding at the ends): the difference function d(tau) from the linear
autocorrelation (numpy's FFT), its cumulative mean normalised form d'(tau) for tau in the period
range, and parabolic interpolation of each trough. Every trough below a threshold drawn from a
Beta(2, 18) prior over 100 thresholds takes a share of that threshold's probability by a
Boltzmann prior over the troughs' order (smaller periods first); with no trough below a
threshold, a small share (NO_TROUGH_PROB) goes to the deepest trough. The troughs' probabilities
land in pitch bins (bins_per_semitone per semitone from fmin_hz); the unvoiced twin of every bin
gets (1 - voiced probability) / bins. A Viterbi pass over voiced and unvoiced bins (a triangular
pitch transition of +-MAX_TRANSITION_OCTAVES_PER_S, SWITCH_PROB between voiced and unvoiced)
gives the track. The result agrees with librosa.pyin frame for frame (tests/test_pyin.py).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from synth.errors import SynthError

THRESHOLDS = 100
BETA_A, BETA_B = 2, 18  # the threshold prior's Beta parameters (integers: its CDF is a binomial sum)
BOLTZMANN = 2.0  # the troughs' prior: exp(-BOLTZMANN * order)
NO_TROUGH_PROB = 0.01
SWITCH_PROB = 0.01  # voiced <-> unvoiced per frame
MAX_TRANSITION_OCTAVES_PER_S = 35.92  # the widest pitch move the track makes from frame to frame, per second
_TINY = float(np.finfo(np.float64).tiny)  # added before logs and divisions, as librosa does
_CHUNK_FRAMES = 256  # frames whose FFTs are taken at once (bounds the memory of long files)


def _beta_cdf(x: np.ndarray, a: int, b: int) -> np.ndarray:
    """The regularised incomplete beta function I_x(a, b) for integer a, b >= 1 (float64)."""
    n = a + b - 1
    return sum(math.comb(n, j) * x ** j * (1.0 - x) ** (n - j) for j in range(a, n + 1))


def thresholds() -> tuple[np.ndarray, np.ndarray]:
    """(float64 [THRESHOLDS] thresholds k / THRESHOLDS for k = 1.., the prior probability of each)."""
    edges = np.linspace(0.0, 1.0, THRESHOLDS + 1)
    return edges[1:], np.diff(_beta_cdf(edges, BETA_A, BETA_B))


def pitch_bins(fmin_hz: float, fmax_hz: float, bins_per_semitone: int) -> np.ndarray:
    """float64 [bins]: the centre frequency (Hz) of each pitch bin, from fmin_hz up."""
    count = int(np.floor(12 * bins_per_semitone * np.log2(fmax_hz / fmin_hz))) + 1
    return fmin_hz * 2.0 ** (np.arange(count) / (12 * bins_per_semitone))


def transition_log(bins: int, width: int) -> np.ndarray:
    """float64 [2 * bins, 2 * bins]: log transition probabilities, voiced bins then unvoiced ones.
    Within each half a triangle `width` bins wide around the bin (rows normalised where the
    edges cut it); between halves the same, times SWITCH_PROB."""
    half = width // 2
    if width % 2:
        triangle = 1.0 - np.abs(np.arange(width) - half) / ((width + 1) / 2)
    else:
        triangle = 1.0 - np.abs(np.arange(width) - (width - 1) / 2) / (width / 2)
    local = np.zeros((bins, bins))
    for i in range(bins):
        lo, hi = max(0, i - half), min(bins, i + half + 1)
        local[i, lo:hi] = triangle[lo - (i - half): hi - (i - half)]
    local /= local.sum(axis=1, keepdims=True)
    switch = np.array([[1.0 - SWITCH_PROB, SWITCH_PROB], [SWITCH_PROB, 1.0 - SWITCH_PROB]])
    return np.log(np.kron(switch, local) + _TINY)


def pyin(audio: np.ndarray, sample_rate: int, fmin_hz: float, fmax_hz: float, frame_samples: int,
         hop_samples: int, bins_per_semitone: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(f0_hz float64 [frames], voiced bool [frames], voiced_prob float64 [frames]) of float audio
    [n]: frame t is centred on sample t * hop_samples (1 + n // hop_samples frames); f0 is the
    decoded bin's centre (NaN where unvoiced). fmin_hz..fmax_hz: the search range (Hz);
    frame_samples: the analysis frame (longer than the longest period searched)."""
    if not 0.0 < fmin_hz < fmax_hz <= sample_rate / 2:
        raise SynthError(f"pyin: the range {fmin_hz}..{fmax_hz} Hz must lie within 0..{sample_rate / 2} Hz")
    min_period = int(np.floor(sample_rate / fmax_hz))
    max_period = min(int(np.ceil(sample_rate / fmin_hz)), frame_samples - 1)
    if max_period - min_period < 2:
        raise SynthError(f"pyin: frames of {frame_samples} samples leave no period range for {fmin_hz}..{fmax_hz} Hz")
    padded = np.pad(np.asarray(audio, np.float64), frame_samples // 2)
    frames = 1 + (padded.size - frame_samples) // hop_samples
    bins = pitch_bins(fmin_hz, fmax_hz, bins_per_semitone)
    observation = np.zeros((frames, 2 * bins.size))
    voiced_prob = np.zeros(frames)
    levels, beta = thresholds()
    fft_size = 1 << int(np.ceil(np.log2(2 * frame_samples)))
    for start in range(0, frames, _CHUNK_FRAMES):
        count = min(_CHUNK_FRAMES, frames - start)
        index = (start + np.arange(count))[:, None] * hop_samples + np.arange(frame_samples)[None, :]
        framed = padded[index]
        spectrum = np.fft.rfft(framed, fft_size, axis=1)
        autocorrelation = np.fft.irfft(spectrum.real ** 2 + spectrum.imag ** 2, fft_size, axis=1)[:, :max_period + 1]
        _observe(framed, autocorrelation, min_period, max_period, float(sample_rate), fmin_hz, bins.size,
                 bins_per_semitone, levels, beta, observation[start:start + count], voiced_prob[start:start + count])
    max_bins = round(MAX_TRANSITION_OCTAVES_PER_S * 12 * hop_samples / sample_rate) * bins_per_semitone + 1
    states = _viterbi(np.log(observation + _TINY), transition_log(bins.size, max_bins))
    voiced = states < bins.size
    f0 = np.where(voiced, bins[states % bins.size], np.nan)
    return f0, voiced, voiced_prob


@njit(nogil=True, cache=True)
def _observe(framed, autocorrelation, min_period, max_period, sample_rate, fmin_hz, bins, bins_per_semitone,
             levels, beta, observation, voiced_prob):
    """Fill observation [frames, 2 * bins] and voiced_prob [frames] from framed audio and its
    autocorrelation (lags 0..max_period) (see the module docstring)."""
    lags = max_period - min_period + 1
    difference = np.empty(max_period + 1)
    normalised = np.empty(lags)
    shift = np.empty(lags)
    trough = np.empty(lags, np.int64)
    probability = np.empty(lags)
    for f in range(framed.shape[0]):
        # d(tau) = 2 (r(0) - r(tau)) - sum of the first tau squared samples; then d(tau) over the
        # running mean of d(1..tau)
        energy = 0.0
        difference[0] = 0.0
        for tau in range(1, max_period + 1):
            energy += framed[f, tau - 1] * framed[f, tau - 1]
            difference[tau] = 2.0 * (autocorrelation[f, 0] - autocorrelation[f, tau]) - energy
        running = 0.0
        for tau in range(1, max_period + 1):
            running += difference[tau]
            if tau >= min_period:
                normalised[tau - min_period] = difference[tau] / (running / tau + _TINY)
        shift[0] = 0.0
        shift[lags - 1] = 0.0
        for k in range(1, lags - 1):
            a = normalised[k + 1] + normalised[k - 1] - 2.0 * normalised[k]
            b = 0.5 * (normalised[k + 1] - normalised[k - 1])
            shift[k] = 0.0 if abs(b) >= abs(a) else -b / a
        troughs = 0
        for k in range(lags):
            if k == 0:
                is_trough = normalised[0] < normalised[1]
            elif k == lags - 1:
                is_trough = normalised[k] < normalised[k - 1]
            else:
                is_trough = normalised[k] < normalised[k - 1] and normalised[k] <= normalised[k + 1]
            if is_trough:
                trough[troughs] = k
                troughs += 1
        if troughs == 0:
            voiced_prob[f] = 0.0
            for b in range(bins, 2 * bins):
                observation[f, b] = 1.0 / bins
            continue
        for j in range(troughs):
            probability[j] = 0.0
        deepest = 0
        for j in range(1, troughs):
            if normalised[trough[j]] < normalised[trough[deepest]]:
                deepest = j
        below_deepest = 0
        for m in range(levels.size):
            threshold = levels[m]
            under = 0
            for j in range(troughs):
                if normalised[trough[j]] < threshold:
                    under += 1
            if normalised[trough[deepest]] >= threshold:
                below_deepest += 1
            if under == 0:
                continue
            norm = (1.0 - math.exp(-BOLTZMANN)) / (1.0 - math.exp(-BOLTZMANN * under))
            order = 0
            for j in range(troughs):
                if normalised[trough[j]] < threshold:
                    probability[j] += norm * math.exp(-BOLTZMANN * order) * beta[m]
                    order += 1
        no_trough = 0.0
        for m in range(below_deepest):
            no_trough += beta[m]
        probability[deepest] += NO_TROUGH_PROB * no_trough
        for j in range(troughs):
            if probability[j] > 0.0:
                k = trough[j]
                f0 = sample_rate / (min_period + k + shift[k])
                position = np.rint(12.0 * bins_per_semitone * math.log2(f0 / fmin_hz))
                observation[f, int(min(max(position, 0.0), float(bins)))] = probability[j]
        total = 0.0
        for b in range(bins):
            total += observation[f, b]
        voiced_prob[f] = min(max(total, 0.0), 1.0)
        for b in range(bins, 2 * bins):
            observation[f, b] = (1.0 - voiced_prob[f]) / bins


@njit(nogil=True, cache=True)
def _viterbi(log_observation, log_transition):
    """int64 [frames]: the most likely state sequence (uniform start; ties to the lower state)."""
    frames, states = log_observation.shape
    value = np.empty(states)
    previous = np.empty(states)
    pointer = np.empty((frames, states), np.int64)
    start = math.log(1.0 / states + _TINY)
    for s in range(states):
        value[s] = log_observation[0, s] + start
    for t in range(1, frames):
        previous[:] = value
        for s in range(states):
            best, best_from = previous[0] + log_transition[0, s], 0
            for r in range(1, states):
                candidate = previous[r] + log_transition[r, s]
                if candidate > best:
                    best, best_from = candidate, r
            value[s] = best + log_observation[t, s]
            pointer[t, s] = best_from
    path = np.empty(frames, np.int64)
    best = 0
    for s in range(1, states):
        if value[s] > value[best]:
            best = s
    path[frames - 1] = best
    for t in range(frames - 1, 0, -1):
        path[t - 1] = pointer[t, path[t]]
    return path
