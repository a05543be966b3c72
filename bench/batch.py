"""Batch rendering throughput: `synth batch` on a local Ray cluster with 1 and 2 workers, beside a
shell loop of `synth render` over the same jobs (the peer, measured in the same run).

The jobs: --jobs renders of the demo score (10 s of audio each) on two presets taken in turn
(warm-pad, pluck-lead). Printed: wall time and jobs/s of each way, the speed-up of 2 workers over
1, the per-job overhead of the Ray path (its wall time less the render time the workers reported,
per job, with 1 worker; the cluster's start counted in), and a paper estimate for 100,000 jobs on
a 64-core cluster from the measured per-job cost. Then the decoder data set's build (FluidR3 notes
rendered and analysed, models.data.build_dataset) serially and on 2 Ray workers: the speed-up.

Usage: .venv/bin/python bench/batch.py [--jobs 16] [--notes 12]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synth.batch import MANIFEST, run_batch

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ("warm-pad", "pluck-lead")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16, help="renders per run (default 16)")
    parser.add_argument("--notes", type=int, default=12, help="pitches per instrument in the data-set build (default 12)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "demo.jsonl").write_text((ROOT / "presets" / "scores" / "demo.jsonl").read_text())
        jobs = [{"preset": PRESETS[i % len(PRESETS)], "score": "demo.jsonl", "out": f"job{i}.wav"}
                for i in range(args.jobs)]
        job_file = folder / "jobs.jsonl"
        job_file.write_text("".join(json.dumps(job) + "\n" for job in jobs))

        started = time.perf_counter()
        for job in jobs:
            subprocess.run([sys.executable, "-m", "synth", "render", job["preset"], str(folder / "demo.jsonl"), "-o",
                            str(folder / f"loop-{job['out']}"), "--quiet"], check=True, capture_output=True, cwd=ROOT)
        loop_s = time.perf_counter() - started
        print(f"{'way':34} {'wall s':>8} {'jobs/s':>8}")
        print(f"{'shell loop of synth render (peer)':34} {loop_s:8.2f} {args.jobs / loop_s:8.2f}", flush=True)
        walls = {}
        for workers in (1, 2):
            result = run_batch(job_file, folder / f"out{workers}", workers=workers, progress=False)
            assert result.done == args.jobs, result.lines()
            walls[workers] = result.wall_s
            print(f"{f'synth batch, {workers} worker(s)':34} {result.wall_s:8.2f} {args.jobs / result.wall_s:8.2f}",
                  flush=True)
        lines = [json.loads(line) for line in (folder / "out1" / MANIFEST).read_text().splitlines()]
        render_s = sum(line["wall_s"] for line in lines)
        overhead_ms = 1000 * (walls[1] - render_s) / args.jobs
        per_job_s = walls[2] * 2 / args.jobs  # core-seconds a job costs with both cores busy
        print(f"speed-up of 2 workers over 1: {walls[1] / walls[2]:.2f}; over the shell loop: {loop_s / walls[2]:.2f}")
        print(f"Ray path overhead per job (1 worker, cluster start included): {overhead_ms:.0f} ms; "
              f"render time per job {1000 * render_s / args.jobs:.0f} ms")
        print(f"paper estimate, 100,000 jobs on 64 cores at {per_job_s:.2f} core-s a job (the 2-worker run, its "
              f"cluster start included, so an upper bound): "
              f"{100_000 * per_job_s / 64 / 60:.0f} min")
        data_build(folder, args.notes)


def data_build(folder: Path, pitches: int) -> None:
    """The data set's build serially and on 2 Ray workers, the same notes (flute and cello, `pitches`
    each at two velocities)."""
    from models.data import build_dataset

    settings = dict(instruments=["flute", "cello"], soundfont="fluidr3", pitches=pitches, velocities=(64, 110),
                    progress=False)
    walls = {}
    for workers in (1, 2):
        started = time.perf_counter()
        build_dataset(folder / f"data{workers}", workers=workers, **settings)
        walls[workers] = time.perf_counter() - started
        print(f"data set of {4 * pitches} notes, {workers} worker(s): {walls[workers]:.1f} s", flush=True)
    print(f"data set build speed-up of 2 workers over 1: {walls[1] / walls[2]:.2f}")


if __name__ == "__main__":
    main()
