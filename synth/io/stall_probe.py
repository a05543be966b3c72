"""Telling the machine's stalls from the engine's glitches, for realtime tests and benchmarks.

On a shared virtual machine a CPU sometimes stops running anything for several milliseconds (the
hypervisor runs someone else). Measured here on an idle 2-core machine: a 1 ms sleep overshooting by
3 to 5 ms a few times in 20 s, and by 10 ms or more now and then. A stream with 5.3 ms blocks
underflows then, whatever the engine does.

`StallProbe` runs one small process per CPU, pinned to it, at the highest realtime priority where
permitted (so no process of ours can delay it; at raised niceness elsewhere). Each sleeps 1 ms at a
time and notes every wake-up later than a threshold: a time when that CPU was taken from us. An
underflow is counted as the engine's only when no such stall explains it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE_RT_PRIORITY = 90  # above the audio thread's SCHED_FIFO priority (synth.io.stream)

_PROBE = """
import json, os, sys, threading, time
cpu, threshold = int(sys.argv[1]), float(sys.argv[2])
os.sched_setaffinity(0, {cpu})
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(int(sys.argv[3])))
except OSError:
    try:
        os.nice(-20)
    except OSError:
        pass
stalls, done = [], threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
print("ready", flush=True)
t = time.monotonic()
while not done.is_set():
    time.sleep(0.001)
    now = time.monotonic()
    if now - t - 0.001 > threshold:
        stalls.append((t, now))
    t = now
print(json.dumps(stalls), flush=True)
"""


class StallProbe:
    """with StallProbe(threshold_s) as probe: ...; afterwards probe.stalls is a list of
    (start, end) intervals in time.monotonic() seconds (a system-wide clock, so comparable with the
    stream's underflow times), merged over every CPU.

    threshold_s: a wake-up later than this (seconds) is a stall.
    """

    def __init__(self, threshold_s: float = 0.002):
        self.threshold_s = threshold_s
        self.stalls: list[tuple[float, float]] = []
        self._processes: list[subprocess.Popen] = []

    def __enter__(self) -> StallProbe:
        for cpu in sorted(os.sched_getaffinity(0)):
            self._processes.append(subprocess.Popen(
                [sys.executable, "-c", _PROBE, str(cpu), str(self.threshold_s), str(PROBE_RT_PRIORITY)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for process in self._processes:
            process.stdout.readline()  # "ready"
        return self

    def __exit__(self, *exc) -> None:
        stalls = []
        for process in self._processes:
            out, _ = process.communicate(timeout=10)
            stalls += [tuple(s) for s in json.loads(out.strip() or "[]")]
        self.stalls = sorted(stalls)
        self._processes = []

    def unexplained(self, event_times, before_s: float = 0.006, after_s: float = 0.05) -> list[float]:
        """The event times (time.monotonic() seconds) that no stall explains: an event explained
        lies within a stall, or up to `after_s` after one ends (the underflow is reported by a
        later callback, and the server may run late cycles back to back to catch up), or up to
        `before_s` before one starts (the two clocks are read a little apart)."""
        return [t for t in event_times
                if not any(start - before_s <= t <= end + after_s for start, end in self.stalls)]
