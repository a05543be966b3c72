"""Sinusoidal analysis of a recording: spectral peaks, partial tracks, harmonics and the residual.

0. f0: pYIN (synth.dsp.pyin) at 16 kHz, coarse (20 ms, half-semitone steps), moved down an octave where the
   spectrum shows the waveform repeats at f0 / 2 (an organ's 16' rank), held 60 ms past its
   voiced runs; the analysis window is 4.5 periods of the median f0 (20..100 ms).
1. Peaks: a zero-phase Blackman-Harris (92 dB) STFT, zero-padded; every local maximum above the
   thresholds is refined by a parabola through the log magnitudes (frequency and amplitude, the
   amplitude corrected for the window's gain) and its phase is read at the refined frequency.
2. Tracks (default): each frame's peaks, strongest first, continue the nearest track within
   `max_deviation_cents`; unmatched peaks start tracks, unmatched tracks sleep up to
   `max_sleep_frames` frames (the gap is then filled in) and otherwise die; tracks shorter than
   `min_track_frames` are dropped. Harmonic mode instead puts the peak nearest k * f0 in column
   k - 1, f0 being refined per frame from the peaks themselves.
3. Refinement (analysis by synthesis): the tracks are resynthesised with their phases, and the
   residual's sinusoid at each track's frequency, read from the residual's STFT, is added back to
   the track (amplitude and phase), `refine_passes` times.
4. Residual: the input minus the resynthesised tracks, measured as RMS levels in mel-spaced bands
   (see synth.dsp.partials for units).
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
from numba import njit
from scipy import fft
from tqdm import tqdm

from synth.dsp.partials import NOISE_FLOOR_DB, Partials, frame_count
from synth.dsp.pyin import pyin
from synth.dsp.resynth import band_of_bins, noise_fft_size, synthesize_sines
from synth.errors import SynthError, SynthWarning

_CHUNK_FRAMES = 256
_PYIN_RATE = 16000
_PYIN_HOP_S = 0.02
_OCTAVE_STRIDE = 2  # pyin frames between octave checks


def _positive_int(name: str, value, low: int = 1, high: int | None = None) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low or (high and value > high):
        raise SynthError(f"{name}={value!r} must be an integer in {low}..{high or 'inf'}")
    return int(value)


# ---------------------------------------------------------------- peaks

@njit(nogil=True, cache=True)
def pick_peaks(mag_db, phase, first_bin, threshold_db, relative_db, bin_hz, gain_db,
               peak_freq, peak_amp, peak_phase, peak_count, row0):
    """Spectral peaks of each frame of a chunk, strongest first.

    mag_db, phase: float [chunk, bins] (dB of |X|, radians) of a zero-phase STFT. A peak is a local
    maximum at or above bin first_bin, above threshold_db (dB of |X|) and within relative_db of the
    frame's loudest bin; a parabola through log magnitudes refines bin and level. Writes rows
    row0.. of peak_freq (Hz), peak_amp (linear, level minus gain_db), peak_phase (radians) [frames,
    max_peaks] and peak_count [frames]; bin_hz is the bin spacing (Hz).
    """
    chunk, bins = mag_db.shape
    max_peaks = peak_freq.shape[1]
    cand_bin = np.empty(bins)
    cand_db = np.empty(bins)
    cand_phase = np.empty(bins)
    for r in range(chunk):
        row = mag_db[r]
        floor = threshold_db
        loudest = row.max()
        if loudest + relative_db > floor:
            floor = loudest + relative_db
        count = 0
        for k in range(max(first_bin, 1), bins - 1):
            b = row[k]
            if b <= floor or b <= row[k - 1] or b < row[k + 1]:
                continue
            a = row[k - 1]
            c = row[k + 1]
            denom = a - 2.0 * b + c
            p = 0.5 * (a - c) / denom if denom < 0.0 else 0.0
            cand_bin[count] = k + p
            cand_db[count] = b - 0.25 * (a - c) * p
            other = k + 1 if p > 0.0 else k - 1
            step = phase[r, other] - phase[r, k]
            step -= 2.0 * math.pi * math.floor(step / (2.0 * math.pi) + 0.5)
            ph = phase[r, k] + abs(p) * step
            cand_phase[count] = ph - 2.0 * math.pi * math.floor(ph / (2.0 * math.pi) + 0.5)
            count += 1
        order = np.argsort(-cand_db[:count])
        kept = min(count, max_peaks)
        for j in range(kept):
            i = order[j]
            peak_freq[row0 + r, j] = cand_bin[i] * bin_hz
            peak_amp[row0 + r, j] = 10.0 ** ((cand_db[i] - gain_db) / 20.0)
            peak_phase[row0 + r, j] = cand_phase[i]
        peak_count[row0 + r] = kept


class _Stft:
    """A zero-phase Blackman-Harris STFT of one signal, frame t centred on sample t * hop.

    Spectra come in chunks of frames (complex [rows, size // 2 + 1]); their phase is the phase at
    the frame centre, and a sinusoid of amplitude A peaks at A * gain."""

    def __init__(self, audio, hop, window_samples, zero_pad, frames):
        self.hop, self.frames, self.half = hop, frames, window_samples // 2
        self.window = _blackman_harris(window_samples)
        self.size = 1 << math.ceil(math.log2(window_samples * zero_pad))
        self.gain = self.window.sum() / 2.0
        self.shift = np.exp(2j * np.pi * np.arange(self.size // 2 + 1) * self.half / self.size)
        self.padded = np.zeros(self.half + (frames - 1) * hop + self.half + 1)
        self.padded[self.half: self.half + len(audio)] = audio

    def chunks(self):
        """(first frame, complex spectra [rows, bins]) for consecutive chunks of frames."""
        offsets = np.arange(len(self.window))
        for row0 in range(0, self.frames, _CHUNK_FRAMES):
            starts = (row0 + np.arange(min(_CHUNK_FRAMES, self.frames - row0))) * self.hop
            yield row0, fft.rfft(self.padded[starts[:, None] + offsets] * self.window, n=self.size, axis=1) * self.shift

    def lobe_table(self, points=65):
        """float64 [points]: the window's transform over 0..0.5 bin off a bin, relative to its peak."""
        n = np.arange(len(self.window)) - self.half
        offsets = np.linspace(0.0, 0.5, points)
        return np.cos(2.0 * np.pi * np.outer(offsets, n) / self.size) @ self.window / self.window.sum()


def _stft_peaks(stft, sample_rate, min_db, relative_db, min_freq_hz, max_peaks, progress):
    """Peaks of every frame: (freq_hz, amp, phase_rad) float64 [frames, max_peaks], count int64 [frames]."""
    frames = stft.frames
    gain_db = 20.0 * math.log10(stft.gain)
    freq = np.zeros((frames, max_peaks))
    amp = np.zeros((frames, max_peaks))
    phase = np.zeros((frames, max_peaks))
    count = np.zeros(frames, dtype=np.int64)
    first_bin = int(min_freq_hz * stft.size / sample_rate)
    with tqdm(total=frames, desc="peaks", unit="frame", disable=not progress, leave=False) as bar:
        for row0, spectrum in stft.chunks():
            mag_db = 20.0 * np.log10(np.abs(spectrum) + 1e-30)
            pick_peaks(mag_db, np.angle(spectrum), first_bin, min_db + gain_db, relative_db,
                       sample_rate / stft.size, gain_db, freq, amp, phase, count, row0)
            bar.update(len(spectrum))
    return freq, amp, phase, count


@njit(nogil=True, cache=True)
def correct_tracks(spectrum, row0, bin_hz, gain, lobe, freq, amp, phase):
    """Add to each sounding track of frames row0.. the residual's sinusoid at its frequency.

    spectrum: complex [rows, bins], the residual's zero-phase STFT; the bin nearest the track is
    divided by the window's gain and by its lobe value at that offset (lobe: [points] over 0..0.5
    bin), which is exact for a steady sinusoid. amp, phase [frames, tracks] are updated in place.
    """
    rows, bins = spectrum.shape
    step = 0.5 / (lobe.shape[0] - 1)
    for r in range(rows):
        t = row0 + r
        for c in range(freq.shape[1]):
            if amp[t, c] <= 0.0:
                continue
            exact = freq[t, c] / bin_hz
            k = int(exact + 0.5)
            if k >= bins:
                continue
            pos = abs(k - exact) / step
            i = min(int(pos), lobe.shape[0] - 2)
            level = lobe[i] + (pos - i) * (lobe[i + 1] - lobe[i])
            z = spectrum[r, k] / (gain * level)
            z += amp[t, c] * complex(math.cos(phase[t, c]), math.sin(phase[t, c]))
            amp[t, c] = max(abs(z), 1e-12)
            phase[t, c] = math.atan2(z.imag, z.real)


# ---------------------------------------------------------------- tracking

@njit(nogil=True, cache=True)
def track_peaks(peak_freq, peak_amp, peak_phase, peak_count, max_ratio, min_dev_hz, max_sleep,
                out_freq, out_amp, out_phase, last_freq, sleep):
    """Link peaks into tracks (columns of out_* [frames, max_tracks], zeroed by the caller).

    Peaks of a frame (strongest first) continue the unmatched live track nearest in frequency,
    within max(min_dev_hz, f * (max_ratio - 1)); the rest start tracks in free columns. A track with
    no peak sleeps; after max_sleep frames asleep its column is freed (reused only after a silent
    frame). State: last_freq (Hz) and sleep (frames asleep, -1 free) float64/int64 [max_tracks],
    owned by the caller. Returns the number of columns used.
    """
    frames = peak_freq.shape[0]
    max_tracks = out_freq.shape[1]
    used = 0
    matched = np.zeros(max_tracks, dtype=np.bool_)
    for t in range(frames):
        matched[:] = False
        for j in range(peak_count[t]):
            f = peak_freq[t, j]
            best = -1
            best_dist = 0.0
            for c in range(used):
                if sleep[c] < 0 or matched[c]:
                    continue
                dist = abs(f - last_freq[c])
                limit = max(min_dev_hz, last_freq[c] * (max_ratio - 1.0))
                if dist <= limit and (best < 0 or dist < best_dist):
                    best = c
                    best_dist = dist
            if best < 0:  # birth: a free column silent in the previous frame, or a new one
                for c in range(used):
                    if sleep[c] < 0 and not matched[c] and (t == 0 or out_amp[t - 1, c] == 0.0):
                        best = c
                        break
                if best < 0:
                    if used == max_tracks:
                        continue
                    best = used
                    used += 1
            matched[best] = True
            sleep[best] = 0
            last_freq[best] = f
            out_freq[t, best] = f
            out_amp[t, best] = peak_amp[t, j]
            out_phase[t, best] = peak_phase[t, j]
        for c in range(used):
            if not matched[c] and sleep[c] >= 0:
                sleep[c] += 1
                if sleep[c] > max_sleep:
                    sleep[c] = -1
    return used


@njit(nogil=True, cache=True)
def fill_gaps(freq, amp, phase, max_gap, hop_samples, sample_rate):
    """Bridge silent gaps of at most max_gap frames inside each track (in place): frequency and
    amplitude linearly, phase by integrating the frequency. Arrays: float32 [frames, tracks]."""
    frames, tracks = freq.shape
    scale = 2.0 * math.pi * hop_samples / sample_rate
    for c in range(tracks):
        last = -1
        for t in range(frames):
            if amp[t, c] <= 0.0:
                continue
            gap = t - last - 1
            if last >= 0 and 0 < gap <= max_gap:
                ph = float(phase[last, c])
                for g in range(1, gap + 1):
                    w = g / (gap + 1.0)
                    freq[last + g, c] = freq[last, c] + w * (freq[t, c] - freq[last, c])
                    amp[last + g, c] = amp[last, c] + w * (amp[t, c] - amp[last, c])
                    ph += 0.5 * scale * (freq[last + g - 1, c] + freq[last + g, c])
                    ph -= 2.0 * math.pi * math.floor(ph / (2.0 * math.pi) + 0.5)
                    phase[last + g, c] = ph
            last = t


@njit(nogil=True, cache=True)
def drop_short_runs(freq, amp, phase, min_frames):
    """Silence (in place) every run of sounding frames shorter than min_frames in each track."""
    frames, tracks = freq.shape
    for c in range(tracks):
        t = 0
        while t < frames:
            if amp[t, c] <= 0.0:
                t += 1
                continue
            start = t
            while t < frames and amp[t, c] > 0.0:
                t += 1
            if t - start < min_frames:
                for u in range(start, t):
                    freq[u, c] = 0.0
                    amp[u, c] = 0.0
                    phase[u, c] = 0.0


# ---------------------------------------------------------------- harmonics

@njit(nogil=True, cache=True)
def _best_f0(freq, amp, count, guess, search_cents, step_cents):
    """The f0 (Hz) within search_cents of guess (a grid of step_cents) whose first ten harmonics sit
    closest to the 24 strongest peaks (freq, amp: sorted strongest first). Each peak scores its
    amplitude times 1 - d / (0.05 f0), d being its distance to the nearest harmonic."""
    best = guess
    best_score = -1.0
    steps = int(search_cents / step_cents)
    for i in range(-steps, steps + 1):
        f0 = guess * 2.0 ** (i * step_cents / 1200.0)
        score = 0.0
        for j in range(min(count, 24)):  # the strongest peaks decide
            if freq[j] > 10.5 * f0:
                continue
            k = max(1.0, math.floor(freq[j] / f0 + 0.5))
            closeness = 1.0 - abs(freq[j] - k * f0) / (0.05 * f0)
            if closeness > 0.0:
                score += amp[j] * closeness
        if score > best_score:
            best_score = score
            best = f0
    return best


@njit(nogil=True, cache=True)
def assign_harmonics(peak_freq, peak_amp, peak_phase, peak_count, f0_guess, tolerance, nyquist_hz,
                     out_freq, out_amp, out_phase, f0_out):
    """Put the peak nearest each harmonic k * f0 in column k - 1 of out_* [frames, harmonics].

    f0_guess: float [frames] coarse f0 (Hz, 0 unvoiced). The guess is first moved (within 60 cents)
    to where its harmonics best fit the peaks; harmonics are then taken in ascending order, and after
    each f0 is re-estimated as the amplitude*k weighted mean of f_k / k over the harmonics found
    within 0.1 * f0 of their prediction, so high harmonics are predicted from a precise f0. A peak
    qualifies within tolerance * f0 of the prediction.
    f0_out [frames] receives the refined f0 (Hz), 0 where no harmonic was found.
    """
    frames = peak_freq.shape[0]
    harmonics = out_freq.shape[1]
    for t in range(frames):
        f0_out[t] = 0.0
        count = peak_count[t]
        if f0_guess[t] <= 0.0 or count == 0:
            continue
        f0 = _best_f0(peak_freq[t], peak_amp[t], count, f0_guess[t], 60.0, 5.0)
        num = 0.0
        den = 0.0
        found = 0
        used = np.zeros(count, dtype=np.bool_)
        for k in range(1, harmonics + 1):
            target = k * f0
            if target > nyquist_hz:
                break
            best = -1
            best_dist = tolerance * f0
            for j in range(count):
                dist = abs(peak_freq[t, j] - target)
                if not used[j] and dist < best_dist:
                    best = j
                    best_dist = dist
            if best < 0:
                continue
            used[best] = True
            out_freq[t, k - 1] = peak_freq[t, best]
            out_amp[t, k - 1] = peak_amp[t, best]
            out_phase[t, k - 1] = peak_phase[t, best]
            if best_dist < 0.1 * f0:  # far-off peaks are kept but do not steer f0
                weight = peak_amp[t, best] * k
                num += weight * peak_freq[t, best] / k
                den += weight
                f0 = num / den
            found += 1
        f0_out[t] = f0 if found else 0.0


@functools.lru_cache(maxsize=64)
def _blackman_harris(length: int) -> np.ndarray:
    """The symmetric 4-term Blackman-Harris window (92 dB sidelobes) of `length` samples."""
    if length == 1:
        return np.ones(1)
    phase = 2.0 * np.pi * np.arange(length) / (length - 1)
    return 0.35875 - 0.48829 * np.cos(phase) + 0.14128 * np.cos(2 * phase) - 0.01168 * np.cos(3 * phase)


def _octave_evidence_db(audio, sample_rate, centre, f0_hz, harmonics=12):
    """dB ratio of the spectral peaks at (k - 1/2) * f0 to those at k * f0 (k = 1..harmonics) in a
    Blackman-Harris window of 9 periods centred on sample `centre`: high when f0 / 2 is the true f0."""
    length = int(min(9.0 * sample_rate / f0_hz, 0.25 * sample_rate)) | 1
    start = centre - length // 2
    segment = np.zeros(length)
    lo, hi = max(start, 0), min(start + length, len(audio))
    if hi <= lo:
        return -np.inf
    segment[lo - start: hi - start] = audio[lo:hi]
    size = 1 << math.ceil(math.log2(2 * length))
    power = np.abs(fft.rfft(segment * _blackman_harris(length), n=size)) ** 2
    bin_hz = sample_rate / size
    reach = max(1, int(0.15 * f0_hz / bin_hz))
    whole = half = 0.0
    for k in range(1, harmonics + 1):
        for target, is_half in ((k * f0_hz, False), ((k - 0.5) * f0_hz, True)):
            centre_bin = int(round(target / bin_hz))
            if centre_bin + reach >= len(power):
                continue
            peak = power[max(centre_bin - reach, 0): centre_bin + reach + 1].max()
            if is_half:
                half += peak
            else:
                whole += peak
    return 10.0 * math.log10((half + 1e-300) / (whole + 1e-300))


def _runs(mask):
    """(start, stop) index pairs of the runs of True in a boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return list(zip(edges[::2], edges[1::2]))


def coarse_f0(audio, sample_rate, hop_samples, frames, fmin_hz, fmax_hz, octave_db=-20.0, extend_s=0.06):
    """float64 [frames]: f0 (Hz) at each frame centre from pYIN (synth.dsp.pyin) at 16 kHz and half-semitone
    resolution (coarse: analyze refines it from the peaks); 0 where pyin finds no voice.

    pyin can settle on the octave above when the true fundamental is weak (an organ's 16' rank):
    a voiced run whose peaks at odd multiples of f0 / 2 reach octave_db (dB) against those at
    multiples of f0 (a vote of every other frame, weighted by energy) is moved down an octave. Voiced
    runs are extended by extend_s seconds each side, holding their end values, so a note's attack
    and release are followed before pyin is sure of them."""
    import soxr

    rate = _PYIN_RATE
    low = audio.astype(np.float64) if sample_rate == rate else soxr.resample(audio.astype(np.float64), sample_rate,
                                                                              rate, quality="HQ")
    hop = int(rate * _PYIN_HOP_S)
    length = 1 << math.ceil(math.log2(max(4 * rate / fmin_hz, 512)))
    f0, voiced, _ = pyin(low, rate, fmin_hz, min(fmax_hz, rate / 4), length, hop, bins_per_semitone=2)
    good = voiced & np.isfinite(f0)
    # each pYIN frame's mean power (centred, zero padded as pYIN's frames are)
    squares = np.concatenate(([0.0], np.cumsum(np.pad(low, length // 2) ** 2)))
    starts = np.arange(len(f0)) * hop
    energy = (squares[starts + length] - squares[starts]) / length
    for start, stop in _runs(good):
        votes = total = 0.0
        for i in range(start, stop, _OCTAVE_STRIDE):
            if f0[i] / 2 >= fmin_hz * 0.9:
                centre = int(round(i * hop * sample_rate / rate))
                votes += energy[i] * (_octave_evidence_db(audio, sample_rate, centre, f0[i]) > octave_db)
            total += energy[i]
        if votes > 0.5 * total:
            f0[start:stop] /= 2
    reach = int(round(extend_s * rate / hop))
    held = np.where(good, f0, 0.0)
    for start, stop in _runs(good):
        lo, hi = max(start - reach, 0), min(stop + reach, len(f0))
        held[lo:start] = np.where(held[lo:start] > 0, held[lo:start], f0[start])
        held[stop:hi] = np.where(held[stop:hi] > 0, held[stop:hi], f0[stop - 1])
    good = held > 0
    times = np.arange(frames) * hop_samples / sample_rate
    pyin_times = np.arange(len(f0)) * hop / rate
    nearest = np.clip(np.rint(times / (hop / rate)).astype(int), 0, len(f0) - 1)
    out = np.zeros(frames)
    if good.any():
        log_f0 = np.interp(times, pyin_times[good], np.log2(held[good]))
        out = np.where(good[nearest], 2.0 ** log_f0, 0.0)
    return out


# ---------------------------------------------------------------- residual

def noise_band_edges(sample_rate: int, bands: int, fft_size: int) -> np.ndarray:
    """float32 [bands + 1]: band edges (Hz) equally spaced in mel (HTK) from 0 to sample_rate / 2,
    each band at least two bins of an fft_size-point FFT wide (low edges pushed up as needed)."""
    top = 2595.0 * math.log10(1.0 + sample_rate / 2 / 700.0)
    edges = 700.0 * (10.0 ** (np.linspace(0.0, top, bands + 1) / 2595.0) - 1.0)
    min_width = 2.0 * sample_rate / fft_size
    for i in range(1, bands + 1):
        edges[i] = max(edges[i], edges[i - 1] + min_width)
    if edges[-1] > sample_rate / 2 + 1e-6:
        raise SynthError(f"bands={bands} are too many for sample_rate={sample_rate} Hz")
    edges[-1] = sample_rate / 2
    return edges.astype(np.float32)


def residual_band_db(residual, sample_rate, hop_samples, frames, edges_hz, fft_size):
    """float32 [frames, bands]: 10 log10 of the residual's mean square in each band around each frame
    centre (Hann window of fft_size samples), floored at NOISE_FLOOR_DB."""
    half = fft_size // 2
    window = np.hanning(fft_size + 2)[1:-1]
    padded = np.zeros(half + (frames - 1) * hop_samples + half + 1)
    padded[half: half + len(residual)] = residual
    band = band_of_bins(edges_hz.astype(np.float64), fft_size, sample_rate)
    bands = len(edges_hz) - 1
    out = np.empty((frames, bands))
    scale = 2.0 / (fft_size * np.sum(window ** 2))
    for row0 in range(0, frames, _CHUNK_FRAMES):
        rows = min(_CHUNK_FRAMES, frames - row0)
        starts = (row0 + np.arange(rows)) * hop_samples
        power = np.abs(fft.rfft(padded[starts[:, None] + np.arange(fft_size)] * window, axis=1)) ** 2
        for b in range(bands):
            out[row0: row0 + rows, b] = power[:, band == b].sum(axis=1) * scale
    return np.maximum(10.0 * np.log10(out + 1e-300), NOISE_FLOOR_DB).astype(np.float32)


# ---------------------------------------------------------------- entry point

def analyze(audio: np.ndarray, sample_rate: int, *, hop_samples: int | None = None, harmonic: bool = False,
            max_tracks: int = 100, min_db: float = -100.0, relative_db: float = -80.0,
            window_samples: int | None = None, window_periods: float = 4.5, zero_pad: int = 2,
            max_deviation_cents: float = 100.0, max_sleep_frames: int = 2, min_track_frames: int = 2,
            fmin_hz: float = 40.0, fmax_hz: float = 2100.0, harmonic_tolerance: float = 0.3,
            refine_passes: int = 1, noise_bands: int = 28, keep_phases: bool = True, track_f0: bool = True,
            progress: bool = False, where: str | None = None) -> Partials:
    """Sinusoidal analysis of mono audio (float [n_samples], full scale 1.0) at sample_rate (Hz).

    hop_samples: frame spacing (default sample_rate / 375: 128 at 48 kHz). harmonic: column k - 1 is
    harmonic k of f0 (for pitched sounds). max_tracks: most columns (harmonics in harmonic mode).
    min_db: weakest peak kept (dBFS, the sinusoid's amplitude); relative_db: weakest peak against the
    frame's loudest (dB, negative). window_samples: analysis window length (default window_periods
    periods of the median f0, 20..100 ms; 2048 samples at 48 kHz, scaled, where no f0 is found);
    zero_pad: FFT size over window length. max_deviation_cents: how far a track moves between frames
    (at least 3 Hz); max_sleep_frames: longest gap bridged inside a track; min_track_frames: shorter
    tracks are dropped. fmin_hz, fmax_hz: f0 search range; harmonic_tolerance: a harmonic's peak lies
    within this fraction of f0 of its prediction. refine_passes: times the residual's sinusoid at each
    track is added back to the track (analysis by synthesis; each pass costs one resynthesis).
    noise_bands: residual bands (mel-spaced). keep_phases: store phase_rad. track_f0: estimate f0_hz
    (always done in harmonic mode). progress: tqdm bars on stderr. where: what a warning names
    (the sound's file; default none).
    Returns Partials (see synth.dsp.partials for units and shapes).
    """
    audio = np.asarray(audio)
    if audio.ndim != 1 or audio.size == 0 or audio.dtype.kind != "f":
        raise SynthError(f"audio has shape {audio.shape} and dtype {audio.dtype}, expected float [n_samples] mono")
    if not np.all(np.isfinite(audio)):
        raise SynthError("audio holds NaN or infinite samples, expected finite numbers")
    sample_rate = _positive_int("sample_rate", sample_rate, 1000, 768000)
    hop = _positive_int("hop_samples", round(sample_rate / 375) if hop_samples is None else hop_samples, 1, 65536)
    max_tracks = _positive_int("max_tracks", max_tracks, 1, 4096)
    zero_pad = _positive_int("zero_pad", zero_pad, 1, 16)
    noise_bands = _positive_int("noise_bands", noise_bands, 1, 256)
    refine_passes = _positive_int("refine_passes", refine_passes, 0, 8)
    min_track_frames = _positive_int("min_track_frames", min_track_frames, 1)
    max_sleep_frames = _positive_int("max_sleep_frames", max_sleep_frames, 0)
    if not 0 < fmin_hz < fmax_hz:
        raise SynthError(f"fmin_hz={fmin_hz!r} and fmax_hz={fmax_hz!r} must satisfy 0 < fmin_hz < fmax_hz")
    if not min_db < 0 or not relative_db < 0:
        raise SynthError(f"min_db={min_db!r} and relative_db={relative_db!r} must be negative (dB)")
    audio = audio.astype(np.float64)
    n_samples = len(audio)
    frames = frame_count(n_samples, hop)
    f0_guess = coarse_f0(audio, sample_rate, hop, frames, fmin_hz, fmax_hz) if harmonic or track_f0 else None
    if window_samples is None:
        voiced = f0_guess[f0_guess > 0] if f0_guess is not None else np.zeros(0)
        seconds = np.clip(window_periods / np.median(voiced), 0.02, 0.1) if voiced.size else 2048 / 48000
        window_samples = int(seconds * sample_rate)
    window_samples = _positive_int("window_samples", window_samples, 16, 1 << 20) | 1
    if n_samples < window_samples:
        warnings.warn(f"{where + ': ' if where else ''}the sound lasts {n_samples} sample{'s' * (n_samples != 1)} "
                      f"({1000 * n_samples / sample_rate:.2f} ms), shorter than one analysis window "
                      f"({window_samples} samples, {1000 * window_samples / sample_rate:.1f} ms): "
                      "its tracks are the window's, not the sound's", SynthWarning, stacklevel=2)
    stft = _Stft(audio, hop, window_samples, zero_pad, frames)
    peaks = _stft_peaks(stft, sample_rate, min_db, relative_db, fmin_hz / 2 if harmonic else 0.0,
                        min(2 * max_tracks, 1024), progress)
    freq = np.zeros((frames, max_tracks), dtype=np.float32)
    amp, phase = np.zeros_like(freq), np.zeros_like(freq)
    f0_hz = np.zeros(frames, dtype=np.float32)
    if f0_guess is not None:  # outside harmonic mode the harmonics are wanted only for their f0
        targets = (freq, amp, phase) if harmonic else (np.zeros_like(freq), np.zeros_like(amp), np.zeros_like(phase))
        assign_harmonics(*peaks, f0_guess, harmonic_tolerance, sample_rate / 2, *targets, f0_hz)
    if harmonic:
        sounding = np.flatnonzero(amp.any(axis=0))
        used = int(sounding[-1]) + 1 if sounding.size else 0
    else:
        used = track_peaks(*peaks, 2.0 ** (max_deviation_cents / 1200.0), 3.0, max_sleep_frames,
                           freq, amp, phase, np.zeros(max_tracks), np.zeros(max_tracks, dtype=np.int64))
    freq, amp, phase = (np.ascontiguousarray(a[:, :used]) for a in (freq, amp, phase))
    fill_gaps(freq, amp, phase, max_sleep_frames, hop, float(sample_rate))
    drop_short_runs(freq, amp, phase, min_track_frames)
    placeholder = (np.array([0.0, sample_rate / 2], dtype=np.float32), np.zeros((frames, 1), dtype=np.float32))
    partials = Partials(sample_rate, hop, n_samples, freq, amp, phase, f0_hz, bool(harmonic), *placeholder)
    residual = audio - synthesize_sines(partials)
    lobe = stft.lobe_table()
    with tqdm(total=refine_passes * frames, desc="refine", unit="frame", disable=not progress, leave=False) as bar:
        for _ in range(refine_passes):
            residual_stft = _Stft(residual, hop, window_samples, zero_pad, frames)
            for row0, spectrum in residual_stft.chunks():
                correct_tracks(spectrum, row0, sample_rate / stft.size, stft.gain, lobe, freq, amp, phase)
                bar.update(len(spectrum))
            residual = audio - synthesize_sines(partials)
    noise_size = noise_fft_size(sample_rate, hop)
    edges = noise_band_edges(sample_rate, noise_bands, noise_size)
    noise_db = residual_band_db(residual, sample_rate, hop, frames, edges, noise_size)
    return Partials(sample_rate, hop, n_samples, freq, amp, phase if keep_phases else None, f0_hz, bool(harmonic),
                    edges, noise_db)
