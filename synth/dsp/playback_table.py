"""An analysis (synth.dsp.partials.Partials) made ready for playback by the additive instrument.

Built once, off the audio thread: the frame tables the kernels in synth.dsp.additive read, the
analysis' root pitch (so each key transposes relative to it), harmonic numbers for harmonic
filtering, and the morph target resampled onto the analysis' frame grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synth.dsp.partials import Partials

HARMONIC_TOLERANCE = 0.08  # a partial within this many harmonic spacings of k*f0 is harmonic k


@dataclass(frozen=True)
class PlaybackTable:
    """freq_a, amp_a: the analysis [frames, tracks] (Hz, linear); freq_b, amp_b: the morph target on
    the same grid (the analysis itself when there is none); harmonic: int16 harmonic numbers (0: none);
    initial_phase_rad: float64 [tracks] phases at the first frame (0 where not kept);
    frames_per_second: frame rate of the analysis; root_hz, root_note: its pitch (Hz, MIDI, fractional)."""

    freq_a: np.ndarray
    amp_a: np.ndarray
    freq_b: np.ndarray
    amp_b: np.ndarray
    harmonic: np.ndarray
    initial_phase_rad: np.ndarray
    frames_per_second: float
    root_hz: float

    @property
    def root_note(self) -> float:
        return 69.0 + 12.0 * math.log2(self.root_hz / 440.0)

    @property
    def frames(self) -> int:
        return self.freq_a.shape[0]

    @property
    def tracks(self) -> int:
        return self.freq_a.shape[1]

    @property
    def duration_s(self) -> float:
        return (self.frames - 1) / self.frames_per_second


def root_frequency(partials: Partials) -> float:
    """The analysis' pitch (Hz): the median f0 of voiced frames, else the median frequency of the
    loudest track (for inharmonic sounds such as bells)."""
    voiced = partials.f0_hz[partials.f0_hz > 0]
    if voiced.size:
        return float(np.median(voiced))
    loudest = int(np.argmax(partials.amp.sum(axis=0)))
    sounding = partials.freq_hz[:, loudest][partials.amp[:, loudest] > 0]
    return float(np.median(sounding)) if sounding.size else 440.0


def harmonic_numbers(partials: Partials) -> np.ndarray:
    """int16 [frames, tracks]: the harmonic number of each partial where it lies near k*f0, else 0."""
    if partials.harmonic:
        numbers = np.broadcast_to(np.arange(1, partials.freq_hz.shape[1] + 1), partials.freq_hz.shape)
        return np.where(partials.amp > 0, numbers, 0).astype(np.int16)
    f0 = partials.f0_hz[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(f0 > 0, partials.freq_hz / np.where(f0 > 0, f0, 1.0), 0.0)
    nearest = np.rint(ratio)
    harmonic = (nearest >= 1) & (np.abs(ratio - nearest) < HARMONIC_TOLERANCE) & (partials.amp > 0)
    return np.where(harmonic, nearest, 0).astype(np.int16)


def _pad_tracks(array: np.ndarray, tracks: int) -> np.ndarray:
    padded = np.zeros((array.shape[0], tracks), dtype=np.float32)
    padded[:, : array.shape[1]] = array
    return padded


def _resample_frames(freq: np.ndarray, amp: np.ndarray, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Stretch a table to `frames` frames (same start and end), interpolating each track linearly;
    a track silent on one side of an interpolation takes the other side's frequency."""
    source = np.linspace(0.0, freq.shape[0] - 1, frames)
    i = np.minimum(source.astype(int), max(freq.shape[0] - 2, 0))
    j = np.minimum(i + 1, freq.shape[0] - 1)
    w = (source - i)[:, None]
    f0, f1, a0, a1 = freq[i], freq[j], amp[i], amp[j]
    f0 = np.where(a0 > 0, f0, f1)
    f1 = np.where(a1 > 0, f1, f0)
    return (f0 + (f1 - f0) * w).astype(np.float32), (a0 + (a1 - a0) * w).astype(np.float32)


def build_table(analysis: Partials, morph_target: Partials | None = None) -> PlaybackTable:
    """The playback table of `analysis`, with `morph_target` (optional) transposed to its root,
    stretched onto its frame grid (start to start, end to end) and paired track by track (harmonic
    analyses pair harmonic k with harmonic k)."""
    root_hz = root_frequency(analysis)
    tracks = analysis.freq_hz.shape[1] if morph_target is None else max(analysis.freq_hz.shape[1],
                                                                      morph_target.freq_hz.shape[1])
    freq_a = _pad_tracks(analysis.freq_hz, tracks)
    amp_a = _pad_tracks(analysis.amp, tracks)
    harmonic = np.zeros((freq_a.shape[0], tracks), dtype=np.int16)
    harmonic[:, : analysis.freq_hz.shape[1]] = harmonic_numbers(analysis)
    if morph_target is None:
        freq_b, amp_b = freq_a, amp_a
    else:
        scale = root_hz / root_frequency(morph_target)
        freq_b, amp_b = _resample_frames(_pad_tracks(morph_target.freq_hz * scale, tracks),
                                         _pad_tracks(morph_target.amp, tracks), freq_a.shape[0])
    phase = np.zeros(tracks)
    if analysis.phase_rad is not None:
        phase[: analysis.freq_hz.shape[1]] = analysis.phase_rad[0]
    return PlaybackTable(np.ascontiguousarray(freq_a), np.ascontiguousarray(amp_a), np.ascontiguousarray(freq_b),
                         np.ascontiguousarray(amp_b), harmonic, phase,
                         analysis.sample_rate / analysis.hop_samples, root_hz)
