"""How lenient the realtime judgement is on this machine: the stall probe's rates, and how often
each rule would explain an underflow that the machine had no part in.

The probe (synth.io.stall_probe) runs for --seconds on the idle machine. Then --times instants are
drawn at random over that span, as if an underflow of the engine's own had been reported at each,
and judged by the stall rule alone (the peer: a stall within the window around it) and by the full
rule (a stall, or the delays of the three block periods before it adding up to a quarter of a
period). The share of random instants a rule explains is the chance that it would excuse one
underflow of a real engine fault; a fault of ours gives several in a run, and runs repeat.

Usage: .venv/bin/python bench/stall_probe.py [--seconds 20] [--times 2000] [--block 256]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from synth.io.stall_probe import LOST_WINDOW_BLOCKS, StallProbe

SAMPLE_RATE = 48000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the probe listens (s)")
    parser.add_argument("--times", type=int, default=2000, help="random instants judged")
    parser.add_argument("--block", type=int, default=256, help="block size (samples at 48 kHz)")
    args = parser.parse_args()
    period_s = args.block / SAMPLE_RATE
    with StallProbe() as probe:
        started_s = time.monotonic()
        time.sleep(args.seconds)
        ended_s = time.monotonic()
    times = np.random.default_rng(0).uniform(started_s + 0.1, ended_s - 0.1, args.times)
    by_stalls = args.times - len(probe.unexplained(times))
    by_both = args.times - len(probe.unexplained(times, block_period_s=period_s))
    lost_ms = np.array([probe.lost_s(t - LOST_WINDOW_BLOCKS * period_s, t) for t in times]) * 1e3
    print(f"{args.seconds:.0f} s idle, {args.block}-frame blocks ({period_s * 1e3:.2f} ms): "
          f"stalls {len(probe.stalls) / args.seconds:.1f}/s, delays {len(probe.delays) / args.seconds:.1f}/s")
    print(f"random instants explained: by stalls alone {by_stalls / args.times:.1%}, "
          f"by stalls or summed delays {by_both / args.times:.1%} (ratio {by_both / max(by_stalls, 1):.2f})")
    print(f"time lost in the 3 periods before an instant: p50 {np.median(lost_ms):.2f} ms, "
          f"p99 {np.percentile(lost_ms, 99):.2f} ms, max {lost_ms.max():.2f} ms")


if __name__ == "__main__":
    main()
