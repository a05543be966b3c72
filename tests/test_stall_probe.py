"""The stall probe, which tells a machine's stalls from the engine's underflows in realtime tests."""

import os
import signal
import time

import pytest

from synth.io.stall_probe import LOST_FRACTIONS, LOST_WINDOW_BLOCKS, SLEEP_S, StallProbe

PERIOD_S = 256 / 48000


def test_a_probe_that_loses_its_cpu_notes_a_stall_and_a_short_loss_as_a_delay():
    """Stopping the probes (SIGSTOP, as a hypervisor stops a CPU) for 20 ms, then for 1.5 ms
    (a delay of 0.5 to 1.5 ms, whatever the phase of the probes' sleep)."""
    stops = []
    with StallProbe() as probe:
        time.sleep(0.05)
        for stopped_s in (0.02, 0.0015):
            for process in probe._processes:
                os.kill(process.pid, signal.SIGSTOP)
            stops.append(time.monotonic())
            time.sleep(stopped_s)
            for process in probe._processes:
                os.kill(process.pid, signal.SIGCONT)
            time.sleep(0.05)
    first, second = stops
    assert any(first - SLEEP_S <= a <= first and b - a > 0.015 for a, b in probe.stalls)
    assert probe.lost_s(first, first + 0.03) >= 0.015 * len(os.sched_getaffinity(0))  # on every CPU
    assert any(second - SLEEP_S <= a <= second for a, _ in probe.delays)
    assert all(b - a - SLEEP_S > probe.delay_s for a, b in probe.delays)


def judged(delays, underflow_s):
    probe = StallProbe()
    probe.delays = delays
    probe.stalls = [(a, b) for a, b in delays if b - a - SLEEP_S > probe.threshold_s]
    return probe.unexplained([underflow_s], block_period_s=PERIOD_S) == []


def test_an_underflow_is_explained_by_a_stall_or_by_small_delays_that_add_up():
    t = 100.0
    assert judged([(t - 0.02, t - 0.02 + SLEEP_S + 0.003)], t)  # one 3 ms stall, 17 ms before
    # three 0.8 ms delays on the two CPUs in the cycles before: 2.4 ms lost, no stall
    small = [(t - 0.012, t - 0.012 + SLEEP_S + 0.0008), (t - 0.009, t - 0.009 + SLEEP_S + 0.0008),
             (t - 0.004, t - 0.004 + SLEEP_S + 0.0008)]
    assert sum(b - a - SLEEP_S for a, b in small) >= LOST_FRACTIONS[0] * PERIOD_S
    assert judged(small, t)
    assert not judged(small[:1], t)  # 0.8 ms: not enough
    early = [(a - LOST_WINDOW_BLOCKS * PERIOD_S - 0.01, b - LOST_WINDOW_BLOCKS * PERIOD_S - 0.01) for a, b in small]
    assert not judged(early, t)  # the same delays, long over before the cycles that starved
    assert not judged([], t)


@pytest.mark.parametrize("start_s, end_s, lost_ms", [(0.0, 30.0, 1.5), (10.0015, 10.0065, 0.5), (10.0, 10.001, 0.0),
                                                     (0.0, 1.0, 0.0)])
def test_lost_time_counts_only_the_lateness_inside_the_window(start_s, end_s, lost_ms):
    """Delays of 1 ms (at 10 s) and 0.5 ms (at 20 s): each wake-up's first SLEEP_S was on time."""
    probe = StallProbe()
    probe.delays = [(10.0, 10.0 + SLEEP_S + 0.001), (20.0, 20.0 + SLEEP_S + 0.0005)]
    assert probe.lost_s(start_s, end_s) * 1e3 == pytest.approx(lost_ms, abs=1e-6)


def test_the_excused_share_is_small_on_a_quiet_machine_and_near_all_when_time_is_lost_throughout():
    t = 100.0
    quiet = StallProbe()
    quiet.delays = [(t + 0.5, t + 0.5 + SLEEP_S + 0.003)]  # one 3 ms stall in 2 s
    quiet.stalls = list(quiet.delays)
    quiet.span_s = (t, t + 2.0)
    assert 0.0 < quiet.excused_share(PERIOD_S) < 0.05
    busy = StallProbe()  # 0.5 ms lost every 2 ms on each of 2 CPUs: no stall at all
    busy.delays = [(t + k * 0.002, t + k * 0.002 + SLEEP_S + 0.0005) for k in range(1000) for _ in range(2)]
    busy.span_s = (t, t + 2.0)
    assert busy.excused_share(PERIOD_S) > 0.95
    idle = StallProbe()
    idle.span_s = (t, t + 2.0)
    assert idle.excused_share(PERIOD_S) == 0.0


def test_where_time_is_lost_all_along_only_a_loss_rare_in_the_run_explains_an_underflow():
    """0.5 ms lost every 3 ms on each of 2 CPUs (a packet flood's kernel work): about 7 ms lost in
    any window an underflow is judged by, so a quarter, a half and a whole period would excuse any
    instant; two periods (10.7 ms) excuse none. An underflow after 6 ms more of stall-free loss is
    explained; one in the steady loss alone is not."""
    t0 = 100.0
    busy = StallProbe()
    busy.delays = [(t0 + k * 0.003, t0 + k * 0.003 + SLEEP_S + 0.0005) for k in range(667) for _ in range(2)]
    underflow = t0 + 1.0
    busy.delays += [(underflow - 0.010 + k * 0.0015, underflow - 0.010 + k * 0.0015 + SLEEP_S + 0.0015)
                    for k in range(4)]  # 4 more wake-ups 1.5 ms late (below the 2 ms stall threshold)
    busy.delays.sort()
    busy.span_s = (t0, t0 + 2.0)
    assert busy.stalls == []
    assert busy.lost_threshold_s(PERIOD_S) == pytest.approx(LOST_FRACTIONS[-1] * PERIOD_S)
    assert busy.unexplained([underflow, t0 + 1.5], block_period_s=PERIOD_S) == [t0 + 1.5]
