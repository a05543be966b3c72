"""Sinusoidal analysis and resynthesis against sms-tools' sineModel, on real instrument notes.

Notes: 7 General MIDI instruments x 3 pitches from the TimGM6mb soundfont (fluidsynth), each held
1 s plus 0.3 s of release, 48 kHz mono. For each note both systems analyse the audio (hop 128
samples) and resynthesise the sinusoids with the measured phases; the table gives the waveform SNR
(10 log10 sum x^2 / sum (x - y)^2 over the whole note), the analysis time and the synthesis time
(best of --repeats runs, one thread each), and the ratios (sms-tools time / ours, so > 1 means we
are faster).

sms-tools is given every advantage we could: the Blackman-Harris window length our analysis chose
from the note's f0 (it has no f0-driven choice of its own), the same zero padding (FFT >= 2x the
window), the same -100 dB threshold and 100-track limit, and its SNR is taken at the best
alignment within +-2 samples. Its synthesis is its own sineModelSynth (512-point spectral OLA).

Usage: .venv/bin/python bench/analysis.py [--repeats 3] [--harmonic] [--instruments violin,flute]

sms-tools is not a dependency of the project. Its PyPI release (1.2) pins numpy<2 and its compiled
extension does not import with numpy 2; build it against the virtualenv's numpy instead:
    .venv/bin/pip install cython && .venv/bin/pip wheel --no-build-isolation --no-deps sms-tools -w /tmp/sms
    .venv/bin/pip install --no-deps /tmp/sms/sms_tools-*.whl
Without it the bench prints our figures only.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from synth.dsp.analysis import analyze
from synth.dsp.resynth import synthesize_sines
from synth.io.soundfont import GM_PROGRAMS, render_note

SAMPLE_RATE = 48000
HOP = 128
NOTES = {  # three pitches in each instrument's comfortable range (MIDI numbers)
    "violin": (55, 67, 79), "cello": (43, 50, 57), "flute": (67, 74, 81), "trumpet": (58, 65, 72),
    "clarinet": (50, 62, 69), "voice_oohs": (55, 62, 69), "church_organ": (48, 60, 72)}


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """10 log10(sum x^2 / sum (x - y)^2), y zero-padded or cut to x's length."""
    x = reference.astype(np.float64)
    y = np.zeros_like(x)
    y[: min(len(x), len(estimate))] = estimate[: len(x)]
    return 10.0 * math.log10(np.sum(x ** 2) / np.sum((x - y) ** 2))


def best_time(function, repeats: int):
    """(result of the last run, shortest wall time in seconds over `repeats` runs)."""
    best, result = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return result, best


def window_of(partials) -> int:
    """The analysis window analyze() chose for these partials (4.5 periods of the median f0, 20..100 ms)."""
    voiced = partials.f0_hz[partials.f0_hz > 0]
    seconds = np.clip(4.5 / np.median(voiced), 0.02, 0.1) if voiced.size else 2048 / 48000
    return int(seconds * partials.sample_rate) | 1


def run_sms(sms, audio: np.ndarray, window_samples: int, repeats: int):
    """(snr dB, analysis s, synthesis s) of sms-tools' sineModel on `audio`."""
    from scipy.signal import get_window

    x = audio.astype(np.float64)
    window = get_window("blackmanharris", window_samples)
    size = 1 << math.ceil(math.log2(2 * window_samples))
    tracks, analysis_s = best_time(lambda: sms.sineModelAnal(x, SAMPLE_RATE, window, size, HOP, -100, maxnSines=100,
                                                             minSineDur=0.01, freqDevOffset=20, freqDevSlope=0.01),
                                   repeats)
    out, synthesis_s = best_time(lambda: sms.sineModelSynth(*tracks, 4 * HOP, HOP, SAMPLE_RATE), repeats)
    snr = max(snr_db(x, np.roll(out, lag)) for lag in range(-2, 3))
    return snr, analysis_s, synthesis_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timing runs per note (best is kept)")
    parser.add_argument("--harmonic", action="store_true", help="run our analysis in harmonic mode")
    parser.add_argument("--instruments", default=",".join(NOTES), help="comma-separated subset of " + ",".join(NOTES))
    args = parser.parse_args(argv)
    names = args.instruments.split(",")
    unknown = [name for name in names if name not in NOTES]
    if unknown:
        parser.error(f"unknown instruments {unknown}; choose from {', '.join(NOTES)}")
    try:
        from smstools.models import sineModel as sms
    except Exception as error:  # a build against another numpy raises ValueError, not ImportError
        sms = None
        print(f"sms-tools cannot be imported ({type(error).__name__}: {error}); showing ours only", file=sys.stderr)

    warm = render_note(GM_PROGRAMS["flute"], 72, 100, 0.2, sample_rate=SAMPLE_RATE)
    synthesize_sines(analyze(warm, SAMPLE_RATE, hop_samples=HOP))  # JIT caches loaded before timing
    mode = "harmonic" if args.harmonic else "tracks"
    print(f"ours: analyze(hop {HOP}, {mode}) + synthesize_sines; sms-tools {'sineModelAnal + sineModelSynth' if sms else '-'}")
    print(f"{'note':<17}{'SNR dB ours':>12}{'sms':>7}{'diff':>7} | {'analysis s ours':>16}{'sms':>7}{'ratio':>7}"
          f" | {'synthesis s ours':>17}{'sms':>7}{'ratio':>7}")
    rows = []
    for name in names:
        for pitch in NOTES[name]:
            audio = render_note(GM_PROGRAMS[name], pitch, 100, 1.0, sample_rate=SAMPLE_RATE, release_s=0.3)
            partials, ours_a = best_time(lambda: analyze(audio, SAMPLE_RATE, hop_samples=HOP, harmonic=args.harmonic),
                                         args.repeats)
            out, ours_s = best_time(lambda: synthesize_sines(partials), args.repeats)
            ours_snr = snr_db(audio, out)
            theirs = run_sms(sms, audio, window_of(partials), args.repeats) if sms else (math.nan,) * 3
            rows.append((ours_snr, theirs[0], ours_a, theirs[1], ours_s, theirs[2]))
            print(f"{name + ' ' + str(pitch):<17}{ours_snr:>12.1f}{theirs[0]:>7.1f}{ours_snr - theirs[0]:>+7.1f} | "
                  f"{ours_a:>16.3f}{theirs[1]:>7.3f}{theirs[1] / ours_a:>7.2f} | "
                  f"{ours_s:>17.4f}{theirs[2]:>7.4f}{theirs[2] / ours_s:>7.2f}", flush=True)
    table = np.array(rows)
    print(f"{'mean SNR / total':<17}{table[:, 0].mean():>12.1f}{table[:, 1].mean():>7.1f}"
          f"{table[:, 0].mean() - table[:, 1].mean():>+7.1f} | {table[:, 2].sum():>16.3f}{table[:, 3].sum():>7.3f}"
          f"{table[:, 3].sum() / table[:, 2].sum():>7.2f} | {table[:, 4].sum():>17.4f}{table[:, 5].sum():>7.4f}"
          f"{table[:, 5].sum() / table[:, 4].sum():>7.2f}")
    print(f"{'min SNR':<17}{table[:, 0].min():>12.1f}{table[:, 1].min():>7.1f}")
    print(f"notes at or above 25 dB: ours {int((table[:, 0] >= 25).sum())}/{len(table)}, "
          f"sms-tools {int((table[:, 1] >= 25).sum())}/{len(table)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
