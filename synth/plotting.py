"""Pictures of an analysis: the spectrogram with the partial tracks drawn over it (matplotlib).

matplotlib is imported only when a plot is made, with the non-interactive Agg backend, so the
rest of the package neither needs nor starts a display.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy import signal

from synth.dsp.partials import Partials
from synth.errors import SynthError
from synth.io.atomic import atomic_path

_FLOOR_DB = -120.0


def _spectrogram_db(audio: np.ndarray, sample_rate: int, hop_samples: int):
    """(times_s [frames], freqs_hz [bins], level_db [bins, frames]) of a Hann STFT, in dBFS of a
    sinusoid's amplitude (a full-scale sine reads 0 dB at its peak)."""
    size = 1 << max(8, math.ceil(math.log2(0.04 * sample_rate)))
    hop = max(1, min(hop_samples, size // 4))
    window = signal.windows.hann(size, sym=False)
    freqs, times, spec = signal.stft(audio, sample_rate, window=window, nperseg=size, noverlap=size - hop,
                                     boundary="zeros", padded=True, scaling="spectrum")
    level = 20.0 * np.log10(np.abs(spec) * 2.0 + 1e-12)
    return times, freqs, np.maximum(level, _FLOOR_DB)


def analysis_title(partials: Partials, name: str) -> str:
    """The plot's title: the sound's name, rate, hop and sounding tracks (as `synth analyze` counts them)."""
    rate, hop = partials.sample_rate, partials.hop_samples
    return (f"{name}: {rate} Hz, hop {hop} samples ({1000 * hop / rate:.2f} ms), {partials.sounding_tracks} tracks"
            + (" (harmonic)" if partials.harmonic else ""))


def plot_partials(partials: Partials, audio: np.ndarray, path: str | Path, *, source_name: str | None = None,
                  max_freq_hz: float | None = None, range_db: float = 90.0) -> Path:
    """Write a PNG: the spectrogram of `audio` (float [n_samples], at partials.sample_rate) in dB,
    with every partial track drawn over it (colour: the track's level in dB) and f0 dashed.

    source_name: what the title calls the sound (default: the PNG's name). max_freq_hz: top of the
    frequency axis (default: the highest track frequency plus 10%, at most sample_rate / 2).
    range_db: dB shown below the loudest spectrogram cell. Returns the path written (atomically).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise SynthError(f"{path}: plot files end in .png")
    if not path.parent.is_dir():
        raise SynthError(f"{path.parent}: no such folder for the plot")
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 1 or audio.size == 0:
        raise SynthError(f"audio has shape {audio.shape}, expected [n_samples] mono")
    rate = partials.sample_rate
    sounding = partials.amp > 0
    if max_freq_hz is None:
        top = float(partials.freq_hz[sounding].max()) * 1.1 if sounding.any() else rate / 2
        max_freq_hz = min(rate / 2, max(top, 1000.0))
    times, freqs, level = _spectrogram_db(audio, rate, partials.hop_samples)
    shown = freqs <= max_freq_hz
    peak = float(level[shown].max())

    fig, ax = plt.subplots(figsize=(12, 6.5), dpi=110, layout="constrained")
    half_bin = (freqs[1] - freqs[0]) / 2
    image = ax.imshow(level[shown], origin="lower", aspect="auto", interpolation="antialiased", cmap="gray_r",
                      extent=(times[0], times[-1], freqs[0] - half_bin, freqs[shown][-1] + half_bin),
                      vmin=peak - range_db, vmax=peak)
    fig.colorbar(image, ax=ax, pad=0.01).set_label("spectrogram level (dBFS)")

    frame_s = partials.frame_times_s
    segments, levels = [], []
    for track in range(partials.tracks):
        on = sounding[:, track]
        both = on[:-1] & on[1:]  # draw a segment where the track sounds at both ends
        for t in np.flatnonzero(both):
            segments.append(((frame_s[t], partials.freq_hz[t, track]), (frame_s[t + 1], partials.freq_hz[t + 1, track])))
            levels.append(20.0 * math.log10(max(float(partials.amp[t, track]), 1e-12)))
    if segments:
        lines = LineCollection(segments, cmap="plasma", linewidths=0.8, capstyle="butt")
        lines.set_array(np.asarray(levels))
        lines.set_clim(max(levels) - 80.0, max(levels))
        ax.add_collection(lines)
        fig.colorbar(lines, ax=ax, pad=0.01).set_label("partial amplitude (dBFS)")
    voiced = partials.f0_hz > 0
    if voiced.any():
        f0 = np.where(voiced, partials.f0_hz, np.nan)
        ax.plot(frame_s, f0, color="tab:cyan", linestyle="--", linewidth=1.0, label="f0")
        ax.legend(loc="upper right")
    name = source_name or path.stem
    ax.set_title(analysis_title(partials, name))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    ax.set_xlim(0.0, partials.duration_s)
    ax.set_ylim(0.0, max_freq_hz)
    with atomic_path(path) as temp:
        fig.savefig(temp, format="png")
    plt.close(fig)
    return path
