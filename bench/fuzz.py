"""A longer fuzzing run: the properties of tests/test_fuzz.py with --scale times as many cases as
CI runs, drawn at random (CI's are fixed), and the cases per target and their time printed.

A failure prints Hypothesis's smallest failing input; make it a regression test before fixing it.

Usage: .venv/bin/python bench/fuzz.py [--scale 20] [-k PATTERN]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=20, help="times CI's cases per target (default 20)")
    parser.add_argument("-k", dest="pattern", help="only the targets whose test name matches (pytest -k)")
    args = parser.parse_args()
    command = [sys.executable, "-m", "pytest", str(ROOT / "tests" / "test_fuzz.py"), "-q", "-p", "no:cacheprovider",
               "--hypothesis-show-statistics"] + (["-k", args.pattern] if args.pattern else [])
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "SYNTH_FUZZ_SCALE": str(args.scale)},
                          capture_output=True, text=True)
    took_s = time.perf_counter() - started
    print(f"{'target':72} {'cases':>7} {'s':>7}")
    target, seconds = None, 0.0
    for line in done.stdout.splitlines():
        if match := re.match(r"tests/test_fuzz\.py::(\w+):", line):
            target, seconds = match.group(1), 0.0
        elif match := re.search(r"phase \(([\d.]+) seconds", line):
            seconds += float(match.group(1))
        elif target and (match := re.search(r"(\d+) passing, (\d+) failing", line)):
            failing = int(match.group(2))
            print(f"{target:72} {int(match.group(1)) + failing:7d} {seconds:7.1f}" + ("  FAILING" if failing else ""))
    print(f"total {took_s:.0f} s, scale {args.scale}x CI")
    if done.returncode:
        print(done.stdout[-6000:])
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
