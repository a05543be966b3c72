"""Offline resynthesis of an analysis (synth.dsp.partials.Partials): sinusoids plus shaped noise.

Sinusoids: between two frames a track's amplitude moves linearly. With phases kept, its phase
follows the McAulay-Quatieri cubic that meets both frames' measured phase and frequency, the 2*pi
multiple chosen for the smoothest frequency path, so the output lines up with the analysed
waveform. Without phases the frequency is interpolated linearly and integrated (phase continuous,
starting at 0). A track that starts fades in over the hop before its first frame; one that stops
fades out over the hop after its last frame, at constant frequency.

Noise: white noise shaped, frame by frame, to the residual's band levels in the STFT domain,
Hann-windowed and overlap-added with a gain that keeps the level right wherever frames overlap.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy import fft
from tqdm import tqdm

from synth.dsp.partials import Partials

_TWO_PI = 2.0 * math.pi
TRACKS_PER_STEP = 8  # tracks rendered per call of render_sines: a progress step, and each track is independent
NOISE_FRAMES_PER_STEP = 256  # noise frames shaped per batch of FFTs


@njit(nogil=True, cache=True)
def render_sines(out, freq_hz, amp, phase_rad, use_phases, sample_rate, hop_samples):
    """Add every track of an analysis into out (float32 [n_samples]; the caller zeroes it).

    freq_hz, amp, phase_rad: float32 [frames, tracks] (Hz, linear amplitude, radians at each frame
    centre; phase_rad is read only when use_phases). Frame t is centred on sample t * hop_samples;
    samples past the last frame hear its tracks fade out over one hop. Keeps no state.
    """
    n_out = out.shape[0]
    frames, tracks = freq_hz.shape
    hop = hop_samples
    omega_scale = _TWO_PI / sample_rate
    inv_hop = 1.0 / hop
    for k in range(tracks):
        running = 0.0  # integrated phase (radians) when phases are not used
        for t in range(frames):
            start = t * hop
            if start >= n_out:
                break
            stop = min(start + hop, n_out)
            a0 = amp[t, k]
            w0 = freq_hz[t, k] * omega_scale
            if t + 1 < frames:
                a1 = amp[t + 1, k]
                w1 = freq_hz[t + 1, k] * omega_scale
            else:
                a1 = 0.0
                w1 = w0
            if a0 <= 0.0 and a1 <= 0.0:
                continue
            if a0 <= 0.0:  # birth: fade in at the new track's frequency, ending on its phase
                if use_phases:
                    p0 = phase_rad[t + 1, k] - w1 * hop
                else:
                    p0 = running = 0.0
                w0 = w1
                alpha = beta = 0.0
            elif a1 <= 0.0:  # death: fade out at the last frequency
                w1 = w0
                p0 = phase_rad[t, k] if use_phases else running
                alpha = beta = 0.0
            elif use_phases:  # McAulay-Quatieri cubic phase
                p0 = phase_rad[t, k]
                p1 = phase_rad[t + 1, k]
                turns = ((p0 + w0 * hop - p1) + (w1 - w0) * hop * 0.5) / _TWO_PI
                p1 += _TWO_PI * math.floor(turns + 0.5)
                gap = p1 - p0 - w0 * hop
                alpha = 3.0 * gap * inv_hop * inv_hop - (w1 - w0) * inv_hop
                beta = -2.0 * gap * inv_hop * inv_hop * inv_hop + (w1 - w0) * inv_hop * inv_hop
            else:  # linear frequency, integrated
                p0 = running
                alpha = 0.5 * (w1 - w0) * inv_hop
                beta = 0.0
            da = (a1 - a0) * inv_hop
            # e^{j theta(n)} by three nested rotations (the phase cubic's differences): no trig per sample
            d1 = w0 + alpha + beta
            d2 = 2.0 * alpha + 6.0 * beta
            d3 = 6.0 * beta
            zr, zi = math.cos(p0), math.sin(p0)
            rr, ri = math.cos(d1), math.sin(d1)
            qr, qi = math.cos(d2), math.sin(d2)
            sr, si = math.cos(d3), math.sin(d3)
            level = a0
            for i in range(start, stop):
                out[i] += level * zr
                level += da
                zr, zi = zr * rr - zi * ri, zr * ri + zi * rr
                rr, ri = rr * qr - ri * qi, rr * qi + ri * qr
                qr, qi = qr * sr - qi * si, qr * si + qi * sr
            if not use_phases:
                running = p0 + hop * (w0 + hop * alpha)
                running -= _TWO_PI * math.floor(running / _TWO_PI)


def synthesize_sines(partials: Partials, *, use_phases: bool = True, progress: bool = False) -> np.ndarray:
    """The analysis' sinusoids as audio: float32 [n_samples] at partials.sample_rate.

    use_phases: follow the measured phases (cubic phase interpolation; needs partials.phase_rad);
    when False or when the analysis kept no phases, integrate the frequency instead.
    progress: a tqdm bar over the tracks on stderr.
    """
    out = np.zeros(partials.n_samples, dtype=np.float32)
    with_phases = use_phases and partials.phase_rad is not None
    unused_phases = np.zeros((1, 1), dtype=np.float32)
    with tqdm(total=partials.tracks, desc="sines", unit="track", disable=not progress, leave=False) as bar:
        for first in range(0, partials.tracks, TRACKS_PER_STEP):
            tracks = slice(first, min(first + TRACKS_PER_STEP, partials.tracks))
            phases = np.ascontiguousarray(partials.phase_rad[:, tracks]) if with_phases else unused_phases
            render_sines(out, np.ascontiguousarray(partials.freq_hz[:, tracks]),
                         np.ascontiguousarray(partials.amp[:, tracks]), phases, with_phases,
                         float(partials.sample_rate), partials.hop_samples)
            bar.update(tracks.stop - tracks.start)
    return out


def band_of_bins(edges_hz: np.ndarray, fft_size: int, sample_rate: int) -> np.ndarray:
    """int64 [fft_size // 2 + 1]: the band index of each rfft bin (by its centre frequency), -1 for
    DC and for bins outside the edges. edges_hz: float [bands + 1] (Hz, increasing)."""
    bins_hz = np.arange(fft_size // 2 + 1) * (sample_rate / fft_size)
    band = np.searchsorted(edges_hz, bins_hz, side="right") - 1
    band[bins_hz == edges_hz[-1]] = len(edges_hz) - 2  # the top edge belongs to the last band
    band[(band < 0) | (band >= len(edges_hz) - 1)] = -1
    band[0] = -1
    return band


def noise_fft_size(sample_rate: int, hop_samples: int, edges_hz: np.ndarray | None = None) -> int:
    """FFT size (samples, a power of two) for measuring and rendering the residual: at least
    20 ms, 4 hops, and (given band edges in Hz) two bins in the narrowest band; at most 65536."""
    need = max(4 * hop_samples, 0.02 * sample_rate, 256)
    if edges_hz is not None:
        narrowest_hz = float(np.min(np.diff(np.asarray(edges_hz, dtype=np.float64))))
        need = max(need, 2.0 * sample_rate / max(narrowest_hz, 1.0))
    return 1 << min(16, math.ceil(math.log2(need)))


def synthesize_noise(partials: Partials, seed: int = 0, progress: bool = False) -> np.ndarray:
    """The residual's band levels (noise_db) rendered as filtered noise: float32 [n_samples].

    Each frame is an independent block of seeded white noise, shaped in the STFT domain so each band
    holds its level (power spread evenly over the band's bins), Hann-windowed and overlap-added;
    the sum is divided by the root of the summed squared windows, so every sample has the frames'
    weighted mean power. The same seed gives the same output. progress: a tqdm bar over the frames
    on stderr.
    """
    n_samples, hop = partials.n_samples, partials.hop_samples
    size = noise_fft_size(partials.sample_rate, hop, partials.noise_band_edges_hz)
    half = size // 2
    band = band_of_bins(partials.noise_band_edges_hz.astype(np.float64), size, partials.sample_rate)
    bands = partials.noise_db.shape[1]
    counts = np.bincount(band[band >= 0], minlength=bands).astype(np.float64)
    power = 10.0 ** (partials.noise_db.astype(np.float64) / 10.0)  # [frames, bands] mean square
    density = np.where(counts > 0, power * (size / 2.0) / np.maximum(counts, 1.0), 0.0)
    gains = np.zeros((partials.frames, half + 1))
    gains[:, band >= 0] = np.sqrt(density[:, band[band >= 0]])
    window = np.hanning(size + 2)[1:-1]
    frames_needed = min(partials.frames, -(-(n_samples + half) // hop))
    total = np.zeros(max(n_samples + size, (frames_needed - 1) * hop + size))
    weight = np.zeros_like(total)
    rng = np.random.default_rng(seed)
    with tqdm(total=frames_needed, desc="noise", unit="frame", disable=not progress, leave=False) as bar:
        for first in range(0, frames_needed, NOISE_FRAMES_PER_STEP):
            last = min(first + NOISE_FRAMES_PER_STEP, frames_needed)
            white = rng.standard_normal((last - first, size))
            shaped = fft.irfft(fft.rfft(white, axis=1) * gains[first:last], n=size, axis=1) * window
            for t in range(first, last):
                offset = t * hop  # buffer index of sample (t * hop - half) is offset
                total[offset: offset + size] += shaped[t - first]
                weight[offset: offset + size] += window * window
            bar.update(last - first)
    total, weight = total[half: half + n_samples], weight[half: half + n_samples]
    return np.where(weight > 1e-12, total / np.sqrt(np.maximum(weight, 1e-12)), 0.0).astype(np.float32)


def resynthesize(partials: Partials, sines_only: bool = False, seed: int = 0, progress: bool = False) -> np.ndarray:
    """Sinusoids (phases as kept) plus, unless sines_only, the residual noise: float32 [n_samples].
    progress: tqdm bars on stderr."""
    audio = synthesize_sines(partials, progress=progress)
    if not sines_only:
        audio += synthesize_noise(partials, seed=seed, progress=progress)
    return audio
