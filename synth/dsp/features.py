"""Conditioning features for the neural decoder: f0 (Hz), A-weighted loudness (dB) and log-mel
bands per frame.

Frame convention (shared with the synthesiser and the data sets): hop `hop_samples`; frame k
describes samples [k*hop, (k+1)*hop) and holds the value reached at the END of that block, sample
(k+1)*hop, because controls glide linearly from frame k-1 to frame k over block k. Offline features
of frame k therefore come from a window CENTRED on sample (k+1)*hop, with zeros outside the signal;
an input of n samples has n // hop frames.

Loudness reference: `loudness_db` is the A-weighted mean square of the Hann-windowed signal
(Parseval: the mean over the window's FFT bins of the A-weighted power, divided by the window's
energy), in dB relative to a full-scale DC level. A full-scale (amplitude 1.0) 1 kHz sine reads
-3.01 dB; amplitude 0.5 reads -9.03 dB; digital silence reads the -120 dB floor.

`StreamingFeatures` is the causal, allocation-free tracker for live input (timbre transfer): its
window ends at the newest sample, so its estimates lag the input by `latency_samples` = window/2.
"""

from __future__ import annotations

import math
import warnings

import librosa
import numpy as np
from numba import njit

from synth.errors import SynthError

LOUDNESS_FLOOR_DB = -120.0
_FLOOR_POWER = 10.0 ** (LOUDNESS_FLOOR_DB / 10.0)
_REFINE_CENTS = 50.0  # a YIN trough replaces pyin's 10-cent grid value only this close to it
_CHUNK_FRAMES = 512


def _check_audio(audio) -> np.ndarray:
    if not isinstance(audio, np.ndarray) or audio.ndim != 1:
        shape = getattr(audio, "shape", type(audio).__name__)
        raise SynthError(f"audio must be a 1-D numpy array of samples, got {shape}")
    if not np.issubdtype(audio.dtype, np.floating):
        raise SynthError(f"audio must be floating point (float32, full scale 1.0), got {audio.dtype}")
    if not np.all(np.isfinite(audio)):
        raise SynthError("audio contains NaN or infinite samples")
    return audio


def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (high is not None and value > high):
        limit = f"{low}..{high}" if high is not None else f">= {low}"
        raise SynthError(f"{name}={value!r} must be an integer {limit}")
    return int(value)


def _check_range(sample_rate: int, fmin_hz: float, fmax_hz: float) -> None:
    if not 0 < fmin_hz < fmax_hz <= sample_rate / 2:
        raise SynthError(f"fmin_hz={fmin_hz!r} and fmax_hz={fmax_hz!r} must satisfy 0 < fmin_hz < fmax_hz <= "
                         f"{sample_rate / 2:g} Hz (half the sample rate)")


def hann_window(window_samples: int) -> np.ndarray:
    """Periodic Hann window, float64 [window_samples] (0.5 - 0.5 cos(2 pi n / N))."""
    n = np.arange(window_samples)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / window_samples)


def loudness_bin_weights(sample_rate: int, window_samples: int) -> np.ndarray:
    """Per-bin multipliers, float64 [window_samples // 2 + 1], turning the one-sided power
    |X_k|^2 of a Hann-windowed frame into its A-weighted mean square: A-weighting (librosa,
    clipped at -80 dB) times 2 for bins that stand for a +/- pair, over N * sum(window^2)."""
    freqs_hz = np.arange(window_samples // 2 + 1) * (sample_rate / window_samples)
    with np.errstate(divide="ignore"):
        weight = 10.0 ** (librosa.A_weighting(freqs_hz, min_db=-80.0) / 10.0)
    pair = np.full(freqs_hz.size, 2.0)
    pair[0] = 1.0
    if window_samples % 2 == 0:
        pair[-1] = 1.0
    energy = float(np.sum(hann_window(window_samples) ** 2))
    return weight * pair / (window_samples * energy)


def _centred_frames(audio: np.ndarray, hop_samples: int, frame_samples: int, first: int, count: int) -> np.ndarray:
    """float64 [count, frame_samples]: frames centred on samples (first + i) * hop, zeros outside."""
    half = frame_samples // 2
    start = first * hop_samples - half
    stop = (first + count - 1) * hop_samples - half + frame_samples
    padded = np.zeros(stop - start, dtype=np.float64)
    lo, hi = max(start, 0), min(stop, audio.size)
    if hi > lo:
        padded[lo - start:hi - start] = audio[lo:hi]
    view = np.lib.stride_tricks.sliding_window_view(padded, frame_samples)[::hop_samples]
    return view[:count]


def loudness_db(audio: np.ndarray, sample_rate: int, hop_samples: int = 256, window_samples: int = 1024) -> np.ndarray:
    """A-weighted loudness per frame (dB, float32 [len(audio) // hop_samples]).

    audio: float [n] at full scale 1.0. Frame k uses a Hann window of `window_samples` centred on
    sample (k+1) * hop_samples (see the module docstring for the convention and the reference:
    a full-scale 1 kHz sine reads -3.01 dB). Floored at -120 dB.
    """
    audio = _check_audio(audio)
    sample_rate = _check_int("sample_rate", sample_rate, 1000)
    hop_samples = _check_int("hop_samples", hop_samples, 1)
    window_samples = _check_int("window_samples", window_samples, 16)
    frames = audio.size // hop_samples
    weights = loudness_bin_weights(sample_rate, window_samples)
    window = hann_window(window_samples)
    out = np.empty(frames, dtype=np.float32)
    for first in range(0, frames, _CHUNK_FRAMES):
        count = min(_CHUNK_FRAMES, frames - first)
        spectrum = np.fft.rfft(_centred_frames(audio, hop_samples, window_samples, first + 1, count) * window, axis=1)
        power = (spectrum.real ** 2 + spectrum.imag ** 2) @ weights
        out[first:first + count] = 10.0 * np.log10(np.maximum(power, _FLOOR_POWER))
    return out


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min_hz: float = 0.0,
                   f_max_hz: float | None = None) -> np.ndarray:
    """Triangular mel filters, float64 [n_fft // 2 + 1, n_mels], peak 1 (no area normalisation):
    filter m rises from mel point m to m + 1 and falls to m + 2, the n_mels + 2 points spaced evenly
    on the HTK scale (mel = 2595 log10(1 + f / 700 Hz)) from f_min_hz to f_max_hz (default Nyquist)."""
    f_max_hz = sample_rate / 2.0 if f_max_hz is None else f_max_hz
    if not 0.0 <= f_min_hz < f_max_hz <= sample_rate / 2.0:
        raise SynthError(f"mel filters: need 0 <= f_min_hz < f_max_hz <= {sample_rate / 2.0:g} Hz, "
                         f"got {f_min_hz:g}..{f_max_hz:g} Hz")
    mel_low, mel_high = (2595.0 * np.log10(1.0 + f / 700.0) for f in (f_min_hz, f_max_hz))
    points_hz = 700.0 * (10.0 ** (np.linspace(mel_low, mel_high, n_mels + 2) / 2595.0) - 1.0)
    bins_hz = np.arange(n_fft // 2 + 1) * (sample_rate / n_fft)
    widths_hz = np.diff(points_hz)
    offset_hz = points_hz[None, :] - bins_hz[:, None]
    rising = -offset_hz[:, :-2] / widths_hz[:-1]
    falling = offset_hz[:, 2:] / widths_hz[1:]
    return np.maximum(0.0, np.minimum(rising, falling))


def log_mel(audio: np.ndarray, sample_rate: int, hop_samples: int = 256, n_fft: int = 2048, n_mels: int = 128,
            floor_power: float = 1e-5) -> np.ndarray:
    """Log mel spectrogram, float32 [len(audio) // hop_samples, n_mels]: the natural log of the mel
    power (|FFT|^2 of a periodic-Hann-windowed n_fft frame, unscaled, through mel_filterbank from
    0 Hz to Nyquist), floored at floor_power. Frame k is centred on sample (k+1) * hop_samples
    with zeros outside the signal, like the other features; the values are torchaudio's
    MelSpectrogram(center=True, pad_mode="constant", mel_scale="htk", norm=None) frame k + 1."""
    audio = _check_audio(audio)
    sample_rate = _check_int("sample_rate", sample_rate, 1000)
    hop_samples = _check_int("hop_samples", hop_samples, 1)
    n_fft = _check_int("n_fft", n_fft, 16)
    frames = audio.size // hop_samples
    filters = mel_filterbank(sample_rate, n_fft, _check_int("n_mels", n_mels, 1))
    window = hann_window(n_fft)
    out = np.empty((frames, n_mels), dtype=np.float32)
    for first in range(0, frames, _CHUNK_FRAMES):
        count = min(_CHUNK_FRAMES, frames - first)
        spectrum = np.fft.rfft(_centred_frames(audio, hop_samples, n_fft, first + 1, count) * window, axis=1)
        power = (spectrum.real ** 2 + spectrum.imag ** 2) @ filters
        out[first:first + count] = np.log(np.maximum(power, floor_power))
    return out


def pyin_frame_samples(sample_rate: int, fmin_hz: float) -> int:
    """pyin's frame length (samples): the smallest power of two holding two periods of fmin_hz."""
    return 1 << int(math.ceil(math.log2(2 * math.ceil(sample_rate / fmin_hz) + 1)))


def _yin_cmnd(frames: np.ndarray, max_lag: int) -> np.ndarray:
    """YIN's cumulative mean normalised difference, float64 [n, max_lag + 1], of frames [n, L]:
    at each lag the squared difference is averaged over the L - lag pairs inside the frame, whose
    midpoints are centred on the frame's centre (a fixed integration window at the frame's start
    would measure the pitch of its first part). Lag 0 holds 1. Same as `analyse_window`."""
    length = frames.shape[1]
    n_fft = 1 << int(math.ceil(math.log2(2 * length)))
    spectrum = np.fft.rfft(frames, n_fft, axis=1)
    acf = np.fft.irfft(spectrum.real ** 2 + spectrum.imag ** 2, n_fft, axis=1)[:, :max_lag + 1]
    energy = np.concatenate([np.zeros((frames.shape[0], 1)), np.cumsum(frames ** 2, axis=1)], axis=1)
    lags = np.arange(max_lag + 1)
    head = energy[:, length - lags]  # sum of x[0 : L - lag] ** 2
    tail = energy[:, length:length + 1] - energy[:, lags]  # sum of x[lag : L] ** 2
    diff = np.maximum(head + tail - 2.0 * acf, 0.0) / (length - lags)
    diff[:, 0] = 0.0
    running = np.cumsum(diff, axis=1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(running[:, 1:], 1e-30)
    return cmnd


def _refine_f0(audio, sample_rate, hop_samples, frame_samples, max_lag, f0_hz, voiced) -> np.ndarray:
    """pyin's f0 sits on a 10-cent grid; move each voiced frame's value to the parabolic-interpolated
    YIN trough nearest its period when that trough lies within 50 cents."""
    refined = f0_hz.copy()
    index = np.flatnonzero(voiced)
    for start in range(0, index.size, _CHUNK_FRAMES):
        chunk = index[start:start + _CHUNK_FRAMES]
        frames = np.stack([_centred_frames(audio, hop_samples, frame_samples, k + 1, 1)[0] for k in chunk])
        cmnd = _yin_cmnd(frames, max_lag)
        for row, k in enumerate(chunk):
            period = sample_rate / f0_hz[k]
            lo = max(int(period * 2.0 ** (-_REFINE_CENTS / 1200.0)), 2)
            hi = min(int(math.ceil(period * 2.0 ** (_REFINE_CENTS / 1200.0))), max_lag - 1)
            if hi - lo < 2:
                continue
            best = lo + int(np.argmin(cmnd[row, lo:hi + 1]))
            if best in (lo, hi):
                continue
            a, b, c = cmnd[row, best - 1], cmnd[row, best], cmnd[row, best + 1]
            curvature = a - 2.0 * b + c
            shift = 0.5 * (a - c) / curvature if curvature > 0 else 0.0
            candidate = sample_rate / (best + shift)
            if abs(1200.0 * math.log2(candidate / f0_hz[k])) < _REFINE_CENTS:
                refined[k] = candidate
    return refined


def f0_pyin(audio: np.ndarray, sample_rate: int, hop_samples: int = 256, fmin_hz: float = 30.0,
            fmax_hz: float = 2100.0, with_flag: bool = False) -> tuple[np.ndarray, ...]:
    """Fundamental frequency per frame with librosa's probabilistic YIN.

    audio: float [n], full scale 1.0. Returns (f0_hz float32 [n // hop_samples], voiced_prob
    float32 [same]) with frame k centred on sample (k+1) * hop_samples; with_flag=True adds
    pyin's Viterbi voicing decision, bool [same]. voiced_prob is pyin's per-frame probability that
    a YIN trough exists; it is not calibrated (clean bowed and brass notes read about 0.3, a flute
    0.7), so prefer the flag to pick voiced frames. pyin's frame length is
    `pyin_frame_samples(sample_rate, fmin_hz)` (4096 at 48 kHz and 30 Hz). Voiced frames are
    refined off pyin's 10-cent grid by parabolic interpolation of the YIN trough. Unvoiced frames
    carry the f0 of the nearest voiced frame (the earlier one on a tie), so f0 is continuous;
    f0 is 0 only when no frame is voiced. Cost: about 1 s per second of audio at 30..2100 Hz,
    less for a narrower range (pyin's Viterbi grows with the square of the number of pitch bins).
    """
    audio = _check_audio(audio)
    sample_rate = _check_int("sample_rate", sample_rate, 1000)
    hop_samples = _check_int("hop_samples", hop_samples, 1)
    _check_range(sample_rate, fmin_hz, fmax_hz)
    frames = audio.size // hop_samples
    if frames == 0:
        return (np.zeros(0, np.float32), np.zeros(0, np.float32)) + ((np.zeros(0, bool),) if with_flag else ())
    frame_samples = pyin_frame_samples(sample_rate, fmin_hz)
    signal = audio.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyin warns on all-silent input; silence is handled below
        f0, voiced_flag, voiced_prob = librosa.pyin(
            signal, fmin=fmin_hz, fmax=fmax_hz, sr=sample_rate, frame_length=frame_samples,
            hop_length=hop_samples, center=True, pad_mode="constant", fill_na=0.0)
    # pyin frame t is centred on sample t * hop: ours, frame k, is its frame k + 1
    f0 = np.asarray(f0[1:frames + 1], dtype=np.float64)
    voiced = np.asarray(voiced_flag[1:frames + 1], dtype=bool) & (f0 > 0)
    prob = np.asarray(voiced_prob[1:frames + 1], dtype=np.float32)
    if not voiced.any():
        return (np.zeros(frames, np.float32), prob) + ((voiced,) if with_flag else ())
    max_lag = min(int(math.ceil(sample_rate / fmin_hz)), frame_samples - 2)
    f0 = _refine_f0(signal, sample_rate, hop_samples, frame_samples, max_lag, f0, voiced)
    voiced_at = np.flatnonzero(voiced)
    right = np.clip(np.searchsorted(voiced_at, np.arange(frames)), 0, voiced_at.size - 1)
    left = np.clip(right - 1, 0, voiced_at.size - 1)
    k = np.arange(frames)
    nearest = np.where(np.abs(voiced_at[left] - k) <= np.abs(voiced_at[right] - k), voiced_at[left], voiced_at[right])
    return (f0[nearest].astype(np.float32), prob) + ((voiced,) if with_flag else ())


# ---------------------------------------------------------------- streaming (numba, causal)

@njit(nogil=True, cache=True)
def fft_inplace(re, im, n, cos_table, sin_table):
    """Forward complex FFT of re[0:n] + i im[0:n] in place (radix 2; n a power of two).

    cos_table/sin_table: float64 [m/2] with cos/sin(2 pi j / m) for some power of two m >= n.
    Sign convention as numpy.fft.fft: X_k = sum_n x_n exp(-2 pi i k n / N).
    """
    j = 0
    for i in range(1, n):
        bit = n >> 1
        while j & bit:
            j ^= bit
            bit >>= 1
        j |= bit
        if i < j:
            re[i], re[j] = re[j], re[i]
            im[i], im[j] = im[j], im[i]
    table = 2 * cos_table.shape[0]
    size = 2
    while size <= n:
        half = size // 2
        stride = table // size
        for start in range(0, n, size):
            for k in range(half):
                wr = cos_table[k * stride]
                wi = -sin_table[k * stride]
                a = start + k
                b = a + half
                tr = wr * re[b] - wi * im[b]
                ti = wr * im[b] + wi * re[b]
                re[b] = re[a] - tr
                im[b] = im[a] - ti
                re[a] += tr
                im[a] += ti
        size *= 2


@njit(nogil=True, cache=True)
def analyse_window(window, sample_rate, min_lag, max_lag, threshold, gate_db, hann, bin_weights,
                   cos_table, sin_table, re, im, cmnd, state):
    """f0 and loudness of one causal window; writes state[0] = f0_hz (held while unvoiced),
    state[1] = loudness_db, state[2] = 1.0 if this window was voiced else 0.0.

    window: float32 [L] (L a power of two), the newest L input samples. Loudness: as
    `loudness_db` (Hann window, bin_weights from `loudness_bin_weights`). f0: YIN over lags
    min_lag..max_lag with the difference at each lag averaged over its L - lag overlapping pairs
    (an autocorrelation through a 2L-point FFT), cumulative mean normalisation, the first dip
    under `threshold` (else unvoiced), and parabolic interpolation. Windows quieter than gate_db
    are unvoiced. re, im: float64 [2L] scratch; cmnd: float64 [max_lag + 2] scratch.
    """
    length = window.shape[0]
    for i in range(length):
        re[i] = window[i] * hann[i]
        im[i] = 0.0
    fft_inplace(re, im, length, cos_table, sin_table)
    power = 0.0
    for k in range(length // 2 + 1):
        power += bin_weights[k] * (re[k] * re[k] + im[k] * im[k])
    loud = 10.0 * math.log10(max(power, 1e-12))
    state[1] = loud
    state[2] = 0.0
    if loud < gate_db:
        return
    # linear autocorrelation r[lag] = sum_j x[j] x[j + lag] via |FFT|^2 of the zero-padded window
    n_fft = 2 * length
    for i in range(length):
        re[i] = window[i]
        im[i] = 0.0
    for i in range(length, n_fft):
        re[i] = 0.0
        im[i] = 0.0
    fft_inplace(re, im, n_fft, cos_table, sin_table)
    for i in range(n_fft):
        re[i] = re[i] * re[i] + im[i] * im[i]
        im[i] = 0.0
    fft_inplace(re, im, n_fft, cos_table, sin_table)  # |X|^2 is real and even: forward = n_fft * inverse
    # energies of the head window[0:L-lag] and tail window[lag:L], updated lag by lag
    total = re[0] / n_fft
    head = total
    tail = total
    running = 0.0
    cmnd[0] = 1.0
    found = -1
    for lag in range(1, max_lag + 2):
        head -= float(window[length - lag]) ** 2
        tail -= float(window[lag - 1]) ** 2
        diff = (max(head, 0.0) + max(tail, 0.0) - 2.0 * re[lag] / n_fft) / (length - lag)
        diff = max(diff, 0.0)
        running += diff
        cmnd[lag] = diff * lag / running if running > 0.0 else 1.0
    for lag in range(min_lag, max_lag + 1):
        if cmnd[lag] < threshold:
            found = lag
            while found < max_lag and cmnd[found + 1] < cmnd[found]:
                found += 1
            break
    if found < 0:
        return
    a = cmnd[found - 1]
    b = cmnd[found]
    c = cmnd[found + 1]
    curvature = a - 2.0 * b + c
    shift = 0.5 * (a - c) / curvature if curvature > 0.0 else 0.0
    if shift > 1.0 or shift < -1.0:
        shift = 0.0
    state[0] = sample_rate / (found + shift)
    state[2] = 1.0


@njit(nogil=True, cache=True)
def streaming_push(block, n, buffer, counters, hop, sample_rate, min_lag, max_lag, threshold, gate_db,
                   hann, bin_weights, cos_table, sin_table, re, im, cmnd, state, f0_out, loudness_out):
    """Feed block[0:n] to the tracker; returns the number of hops completed in it.

    buffer: float32 [L + hop], the last L samples in buffer[0:L] and the hop in progress from
    buffer[L]; counters: int64 [1], samples of the hop in progress. Each completed hop shifts the
    buffer and analyses buffer[0:L] (see analyse_window), writing its f0 and loudness to
    f0_out[i % cap] and loudness_out[i % cap] (cap = f0_out.shape[0]; cap 1 keeps the newest).
    """
    length = buffer.shape[0] - hop
    cap = f0_out.shape[0]
    done = 0
    fill = counters[0]
    for i in range(n):
        buffer[length + fill] = block[i]
        fill += 1
        if fill == hop:
            for j in range(length):
                buffer[j] = buffer[j + hop]
            fill = 0
            analyse_window(buffer[:length], sample_rate, min_lag, max_lag, threshold, gate_db, hann,
                           bin_weights, cos_table, sin_table, re, im, cmnd, state)
            f0_out[done % cap] = state[0]
            loudness_out[done % cap] = state[1]
            done += 1
    counters[0] = fill
    return done


class StreamingFeatures:
    """Causal f0 (Hz) + loudness (dB) tracker for live input, one frame per hop, allocation-free.

    sample_rate (Hz), hop_samples (>= 1), window_samples (power of two, 64..16384), f0 search
    range fmin_hz..fmax_hz; sample_rate / fmin_hz must stay under 7/8 of the window. After each
    completed hop the window holds the newest `window_samples` samples, so an estimate describes
    the input `latency_samples` = window_samples / 2 ago: frame j (ending at sample (j+1)*hop)
    equals offline frame j - window_samples / (2 hop) of `loudness_db`. Unvoiced or quiet windows
    (below `gate_db`) hold the last voiced f0 (0 before the first one); `voiced` tells which.
    The kernels are compiled in the constructor (warm-up), never in the audio thread.
    """

    def __init__(self, sample_rate: int, hop_samples: int = 256, window_samples: int = 1024,
                 fmin_hz: float = 60.0, fmax_hz: float = 1500.0, threshold: float = 0.2, gate_db: float = -70.0):
        self.sample_rate = _check_int("sample_rate", sample_rate, 1000)
        self.hop_samples = _check_int("hop_samples", hop_samples, 1)
        self.window_samples = _check_int("window_samples", window_samples, 64, 16384)
        if self.window_samples & (self.window_samples - 1):
            raise SynthError(f"window_samples={window_samples!r} must be a power of two")
        _check_range(self.sample_rate, fmin_hz, fmax_hz)
        self.min_lag = max(int(sample_rate / fmax_hz), 2)
        self.max_lag = int(math.ceil(sample_rate / fmin_hz))
        if self.max_lag >= self.window_samples * 7 // 8:
            raise SynthError(f"fmin_hz={fmin_hz!r}: its period ({self.max_lag} samples) must be under 7/8 of "
                             f"window_samples={window_samples} (raise fmin_hz or the window)")
        if not 0 < threshold < 1:
            raise SynthError(f"threshold={threshold!r} must be in (0, 1)")
        self.threshold = float(threshold)
        self.gate_db = float(gate_db)
        self.latency_samples = self.window_samples // 2
        length = self.window_samples
        self._hann = hann_window(length)
        self._weights = loudness_bin_weights(self.sample_rate, length)
        angles = 2.0 * np.pi * np.arange(length) / (2 * length)
        self._cos, self._sin = np.cos(angles), np.sin(angles)
        self._re = np.zeros(2 * length)
        self._im = np.zeros(2 * length)
        self._cmnd = np.zeros(self.max_lag + 2)
        self._buffer = np.zeros(length + self.hop_samples, dtype=np.float32)
        self._counters = np.zeros(1, dtype=np.int64)
        self._state = np.zeros(3)
        self._f0_last = np.zeros(1)
        self._loudness_last = np.zeros(1)
        self._warm_up()

    def _warm_up(self) -> None:
        self.process(np.zeros(self.hop_samples, np.float32), np.zeros(1), np.zeros(1))
        self.reset()

    def reset(self) -> None:
        """Forget all input (silence before the next sample) and the held f0."""
        self._buffer[:] = 0.0
        self._counters[0] = 0
        self._state[:] = (0.0, LOUDNESS_FLOOR_DB, 0.0)
        self._f0_last[0] = 0.0
        self._loudness_last[0] = LOUDNESS_FLOOR_DB

    @property
    def voiced(self) -> bool:
        """Whether the newest analysed window was voiced (its f0 is fresh, not held)."""
        return bool(self._state[2])

    def _check_block(self, block) -> None:
        if not isinstance(block, np.ndarray) or block.dtype != np.float32 or block.ndim != 1:
            raise SynthError(f"block must be a 1-D float32 array, got {getattr(block, 'dtype', type(block).__name__)} "
                             f"{getattr(block, 'shape', '')}")

    def process(self, block: np.ndarray, f0_out: np.ndarray, loudness_out: np.ndarray, n: int | None = None) -> int:
        """Feed the first n (default: all) samples of float32 block [>= n]; writes one (f0_hz,
        loudness_db) per completed hop into the float64 arrays f0_out / loudness_out (in order) and
        returns how many. Allocates no arrays."""
        self._check_block(block)
        count = block.shape[0] if n is None else n
        if not 0 <= count <= block.shape[0]:
            raise SynthError(f"n={n!r} must be in 0..{block.shape[0]} (the block's length)")
        needed = (int(self._counters[0]) + count) // self.hop_samples
        if f0_out.shape[0] < needed or loudness_out.shape[0] < needed:
            raise SynthError(f"f0_out and loudness_out need room for {needed} frames, "
                             f"got {f0_out.shape[0]} and {loudness_out.shape[0]}")
        return streaming_push(block, count, self._buffer, self._counters, self.hop_samples,
                              float(self.sample_rate), self.min_lag, self.max_lag, self.threshold, self.gate_db,
                              self._hann, self._weights, self._cos, self._sin, self._re, self._im, self._cmnd,
                              self._state, f0_out, loudness_out)

    def push(self, block: np.ndarray) -> tuple[float, float]:
        """Feed float32 [n] samples (usually one hop); returns the newest (f0_hz, loudness_db), which
        is the previous estimate when the block completes no hop. Allocates no arrays."""
        self._check_block(block)
        streaming_push(block, block.shape[0], self._buffer, self._counters, self.hop_samples,
                       float(self.sample_rate), self.min_lag, self.max_lag, self.threshold, self.gate_db,
                       self._hann, self._weights, self._cos, self._sin, self._re, self._im, self._cmnd,
                       self._state, self._f0_last, self._loudness_last)
        return self._f0_last[0], self._loudness_last[0]
