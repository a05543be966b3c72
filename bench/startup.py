"""Start-up of the command-line tools: wall time of each command from exec to exit (warm caches).

Every command runs --runs times in a fresh interpreter (after one unmeasured run that fills the
numba kernel cache and the page cache); the median and the fastest are printed beside peers measured
in the same run: a bare interpreter, `import numba` and `import torch`, so a figure on another CPU
reads as a ratio. The commands: `synth --help`, `synth presets`, a 10 s render of warm-pad (the
demo score), `synth encode` of that render, `synth analyze` of a 4 s note.

Usage: .venv/bin/python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent


def wall_times(command: list[str], runs: int) -> list[float]:
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs of each command (default 5)")
    args = parser.parse_args()
    python = sys.executable
    synth = [python, "-m", "synth"]
    with tempfile.TemporaryDirectory() as folder:
        render_wav, note_wav = Path(folder) / "demo.wav", Path(folder) / "note.wav"
        t = np.arange(4 * 48000) / 48000
        note = 0.3 * np.sin(2 * np.pi * 220 * t) * np.exp(-t) * sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 4))
        soundfile.write(note_wav, note.astype(np.float32), 48000)
        commands = {
            "import torch (peer)": [python, "-c", "import torch"],
            "python -c pass (peer)": [python, "-c", "pass"],
            "import numba (peer)": [python, "-c", "import numba"],
            "synth --help": synth + ["--help"],
            "synth presets": synth + ["presets"],
            "synth render warm-pad demo (10 s)": synth + ["render", "warm-pad", "presets/scores/demo.jsonl", "-o",
                                                          str(render_wav), "--quiet"],
            "synth encode demo.wav": synth + ["encode", str(render_wav)],
            "synth analyze note.wav (4 s)": synth + ["analyze", str(note_wav), "-o", str(Path(folder) / "note.partials.npz"),
                                                     "--quiet"],
        }
        print(f"{'command':40} {'median s':>9} {'fastest s':>10} {'/ import torch':>15}")
        torch_s = None
        for name, command in commands.items():
            times = wall_times(command, args.runs)
            median = statistics.median(times)
            torch_s = torch_s or median  # the first command is the torch import
            print(f"{name:40} {median:9.2f} {min(times):10.2f} {median / torch_s:15.2f}", flush=True)


if __name__ == "__main__":
    main()
