"""`synth analyze`: a sound file -> a .partials.npz analysis (and a plot), with a summary."""

from __future__ import annotations

import time
from pathlib import Path

from synth.dsp.analysis import analyze
from synth.dsp.partials import save_partials
from synth.errors import SynthError
from synth.io.audiofile import read_audio

ANALYSIS_SUFFIX = ".partials.npz"


def analyze_file(in_path: str | Path, out_path: str | Path, *, harmonic: bool = False, hop_samples: int | None = None,
                 max_tracks: int | None = None, plot: str | Path | None = None, progress: bool = True) -> list[str]:
    """Analyse a sound file (mixed to mono) and write the analysis atomically; returns summary lines."""
    out_path = Path(out_path)
    if not out_path.name.endswith(ANALYSIS_SUFFIX):
        raise SynthError(f"{out_path}: analysis files end in {ANALYSIS_SUFFIX}")
    audio, sample_rate = read_audio(in_path)
    mono = audio.mean(axis=1)
    started = time.perf_counter()
    options = {key: value for key, value in (("hop_samples", hop_samples), ("max_tracks", max_tracks)) if value is not None}
    try:
        partials = analyze(mono, sample_rate, harmonic=harmonic, progress=progress, where=str(in_path), **options)
    except SynthError as error:
        raise SynthError(f"{in_path}: {error}") from None
    took_s = time.perf_counter() - started
    save_partials(partials, out_path)
    lines = [f"analysed {len(mono) / sample_rate:.2f} s at {sample_rate} Hz in {took_s:.2f} s: {partials.frames} frames "
             f"(hop {partials.hop_samples} samples), {partials.sounding_tracks} tracks"
             + (" (harmonic)" if partials.harmonic else ""),
             f"wrote {out_path}"]
    if plot is not None:
        from synth.plotting import plot_partials

        plot_partials(partials, mono, plot)
        lines.append(f"plot: {plot}")
    return lines
