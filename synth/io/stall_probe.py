"""Telling the machine's stalls from the engine's glitches, for realtime tests and benchmarks.

On a shared virtual machine a CPU sometimes stops running anything for several milliseconds (the
hypervisor runs someone else). Measured here on an idle 2-core machine: a 1 ms sleep overshooting by
3 to 5 ms a few times in 20 s, and by 10 ms or more now and then. A stream with 5.3 ms blocks
underflows then, whatever the engine does.

`StallProbe` runs one small process per CPU, pinned to it, at the highest realtime priority where
permitted (so no process of ours can delay it; at raised niceness elsewhere). Each sleeps 1 ms at a
time and notes every wake-up later than a threshold: a time when that CPU was taken from us. An
underflow is counted as the engine's only when no such stall explains it.

Stalls shorter than the threshold add up: the CPU running the audio thread and the one running the
server can each lose a millisecond or two in the same cycle, and no single wake-up then looks
late, though together they starve the stream (seen on an AMD EPYC guest, the run pinned to one
CPU: a callback charged 3.2 ms of CPU time, whose code never takes over 0.5 ms offline, and an
underflow, with no 2 ms stall). So the probe also notes the small delays, and an underflow is
explained, too, when the delays of the last few cycles before it add up to a good part of one
block period. The probes outrank every thread of ours, so an engine that blocks or overruns delays
none of them: its underflows stay unexplained.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

LOST_WINDOW_BLOCKS = 3  # block periods before an underflow whose small delays may explain it
LOST_FRACTIONS = (0.25, 0.5, 1.0, 2.0)  # ...when they add up to this much of one period: the least of these
MAX_EXCUSED_SHARE = 0.1  # ...that would excuse at most this share of the run's instants
SLEEP_S = 0.001  # each probe's sleep: a wake-up this long after the last one is on time
PROBE_RT_PRIORITY = 90  # above the audio thread's SCHED_FIFO priority (synth.io.stream)

_PROBE = """
import json, os, sys, threading, time
cpu, noted_s, sleep_s = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[4])
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
    time.sleep(sleep_s)
    now = time.monotonic()
    if now - t - sleep_s > noted_s:
        stalls.append((t, now))
    t = now
print(json.dumps(stalls), flush=True)
"""


class StallProbe:
    """with StallProbe(threshold_s) as probe: ...; afterwards probe.stalls is a list of
    (start, end) intervals in time.monotonic() seconds (a system-wide clock, so comparable with the
    stream's underflow times), merged over every CPU, and probe.delays the same for every wake-up
    late by more than delay_s (stalls included).

    threshold_s: a wake-up later than this (seconds) is a stall.
    delay_s: a wake-up later than this (seconds) is a delay, counted in `lost_s`.
    """

    def __init__(self, threshold_s: float = 0.002, delay_s: float = 0.0003):
        self.threshold_s = threshold_s
        self.delay_s = min(delay_s, threshold_s)
        self.stalls: list[tuple[float, float]] = []
        self.delays: list[tuple[float, float]] = []
        self.span_s: tuple[float, float] | None = None  # (start, end) time.monotonic() of the listening
        self._sorted = np.zeros((0, 2))  # the delays as a sorted array, for lost_s
        self._sorted_for: list | None = None
        self._longest_s = 0.0
        self._processes: list[subprocess.Popen] = []

    def __enter__(self) -> StallProbe:
        for cpu in sorted(os.sched_getaffinity(0)):
            self._processes.append(subprocess.Popen(
                [sys.executable, "-c", _PROBE, str(cpu), str(self.delay_s), str(PROBE_RT_PRIORITY), str(SLEEP_S)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for process in self._processes:
            process.stdout.readline()  # "ready"
        self.span_s = (time.monotonic(), time.monotonic())
        return self

    def __exit__(self, *exc) -> None:
        stalls = []
        for process in self._processes:
            out, _ = process.communicate(timeout=10)
            stalls += [tuple(s) for s in json.loads(out.strip() or "[]")]
        self.delays = sorted(stalls)
        self.stalls = [(start, end) for start, end in self.delays if end - start - SLEEP_S > self.threshold_s]
        self._processes = []
        self.span_s = (self.span_s[0], time.monotonic())

    def lost_s(self, start: float, end: float) -> float:
        """Seconds the CPUs lost to delays (summed over every CPU) between two time.monotonic() times."""
        if not self.delays:
            return 0.0
        if self._sorted_for is not self.delays or len(self._sorted) != len(self.delays):  # delays set anew
            self._sorted = np.asarray(sorted(self.delays), dtype=np.float64).reshape(-1, 2)
            self._longest_s = float(np.max(self._sorted[:, 1] - self._sorted[:, 0]))
            self._sorted_for = self.delays
        starts = self._sorted[:, 0]
        near = self._sorted[np.searchsorted(starts, start - self._longest_s):np.searchsorted(starts, end)]
        return float(np.sum(np.maximum(0.0, np.minimum(end, near[:, 1]) - np.maximum(start, near[:, 0] + SLEEP_S))))

    def unexplained(self, event_times, before_s: float = 0.006, after_s: float = 0.05,
                    block_period_s: float | None = None) -> list[float]:
        """The event times (time.monotonic() seconds) that no stall explains: an event explained
        lies within a stall, or up to `after_s` after one ends (the underflow is reported by a
        later callback, and the server may run late cycles back to back to catch up), or up to
        `before_s` before one starts (the two clocks are read a little apart). Given the stream's
        `block_period_s`, an event is explained too when the delays of the LOST_WINDOW_BLOCKS
        periods before it (the cycle that starved, the one that reports it and the one between)
        add up to `lost_threshold_s`: the least of LOST_FRACTIONS of a period that would excuse at
        most MAX_EXCUSED_SHARE of the instants the probe listened through. Where the CPUs lose a
        little time all along (a packet flood: the kernel's work for it) small losses explain
        nothing, as they would excuse any instant, but a loss that is rare in the run still does."""
        threshold_s = self.lost_threshold_s(block_period_s) if block_period_s is not None else None
        return [t for t in event_times if not self._explained(t, before_s, after_s, block_period_s, threshold_s)]

    def lost_threshold_s(self, block_period_s: float) -> float | None:
        """The least CPU time lost (s, over every CPU, in the LOST_WINDOW_BLOCKS periods before an
        instant) that explains an underflow in this run: the smallest of LOST_FRACTIONS of a
        period that would excuse at most MAX_EXCUSED_SHARE of its instants; None if none would."""
        for fraction in LOST_FRACTIONS:
            if self.excused_share(block_period_s, fraction * block_period_s) <= MAX_EXCUSED_SHARE:
                return fraction * block_period_s
        return None

    def _explained(self, t: float, before_s: float, after_s: float, block_period_s: float | None,
                   threshold_s: float | None) -> bool:
        if any(start - before_s <= t <= end + after_s for start, end in self.stalls):
            return True
        return threshold_s is not None and self.lost_s(
            t - LOST_WINDOW_BLOCKS * block_period_s, t + before_s) >= threshold_s

    def excused_share(self, block_period_s: float, threshold_s: float | None = None, before_s: float = 0.006,
                      after_s: float = 0.05) -> float:
        """The share of the instants the probe listened through (one a block period) that stalls
        or delays adding up to threshold_s (default: the least of LOST_FRACTIONS of a period) would
        explain: how little an explained underflow says about the engine. On a quiet machine a few
        per cent; when the machine, or the kernel's work for a flood of packets, takes time from the
        CPUs all along, nearly all at small thresholds."""
        threshold_s = LOST_FRACTIONS[0] * block_period_s if threshold_s is None else threshold_s
        instants = np.arange(*self.span_s, block_period_s) if self.span_s else ()
        if not len(instants):
            return 0.0
        return sum(self._explained(t, before_s, after_s, block_period_s, threshold_s) for t in instants) / len(instants)
