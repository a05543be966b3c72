"""The most voices that play for N seconds with zero underflows, per block size, at 48 kHz.

A real PortAudio stream on JACK's dummy backend (started here, one server per block size, its
period equal to the block). Voices are `additive` voices playing the shipped 64-partial church
organ analysis (looping while held, formants kept), all held at once, in stacks of up to 64 notes,
followed by a delay. For each block size it prints the most voices that passed, the callback
duration percentiles at that count, and, as the peer measured in the same run, the voices the same
machine renders offline in realtime (offline throughput): the ratio shows how much of the raw speed
survives the live path. A per-CPU stall probe runs beside each trial (synth.io.stall_probe): an
underflow that a stall of the virtual machine explains does not fail the trial; the stalls seen
are printed.
Usage: .venv/bin/python bench/realtime.py [--seconds 20] [--blocks 64 128 256]
"""

from __future__ import annotations

import argparse
import time

from dataclasses import replace

from synth.dsp.partials import load_partials
from synth.engine import Engine, Slot
from synth.events import NoteOn
from synth.host import Host, HostStatus
from synth.io.jackserver import JackDummyServer
from synth.io.stall_probe import StallProbe
from synth.plugins import Additive, Delay
from synth.presets import SHIPPED_PRESETS
from synth.render import render_array

SAMPLE_RATE = 48000
STEP = 16  # voice counts are searched to this resolution; above 64, whole stacks of 64 notes
MAX_VOICES = 8192
PARTIALS = 64
ANALYSIS = load_partials(SHIPPED_PRESETS / "analyses" / "organ-c3.partials.npz")
ANALYSIS = replace(ANALYSIS, freq_hz=ANALYSIS.freq_hz[:, :PARTIALS], amp=ANALYSIS.amp[:, :PARTIALS],
                   phase_rad=None if ANALYSIS.phase_rad is None else ANALYSIS.phase_rad[:, :PARTIALS])


def additive_engine(voices: int, block: int) -> tuple[Engine, list[NoteOn]]:
    """An engine sounding `voices` additive voices of PARTIALS partials: up to 64 held notes on
    each of a stack of additive slots, plus a delay; and the note-ons that start them."""
    notes = min(voices, 64)
    # every slot hears every note: a slot with fewer voices steals at the start and then holds them
    limits = [64] * (voices // 64) + ([voices % 64] if voices % 64 else [])
    slots = [Slot(f"add{k}", Additive(voice_limit=limit, analysis=ANALYSIS, keep_formants="on", loop="on",
                                      transpose_semitones=0.1 * k, level_db=-40.0)) for k, limit in enumerate(limits)]
    engine = Engine(slots + [Slot("delay", Delay())], SAMPLE_RATE, block)
    return engine, [NoteOn(0, 36 + n, 100) for n in range(notes)]


def live_trial(device: int, voices: int, block: int, seconds: float) -> tuple[HostStatus, int, int]:
    """(status, machine stalls seen, underflows no stall explains) after `voices` held voices
    played for `seconds` on the live stream."""
    engine, events = additive_engine(voices, block)
    host = Host(engine, device=device)
    with StallProbe() as probe:
        host.start(events)
        time.sleep(seconds)
        host.stop()
    unexplained = len(probe.unexplained(host.stream.underflow_times()))
    return host.status(), len(probe.stalls), unexplained


def most_voices(trial) -> tuple[int, tuple] | None:
    """Double the voice count until a trial has an underflow no stall explains, then bisect to the
    nearest STEP voices. Returns the largest passing count with its trial result (None if even STEP
    voices fail)."""
    passed, failed = None, None
    voices = STEP
    while voices <= MAX_VOICES:
        result = trial(voices)
        if result[2]:
            failed = voices
            break
        passed = (voices, result)
        voices *= 2
    while passed and failed and failed - passed[0] > STEP:
        middle = (passed[0] + failed) // 2 // STEP * STEP
        result = trial(middle)
        if result[2]:
            failed = middle
        else:
            passed = (middle, result)
    return passed


def offline_voices_in_realtime(block: int, voices: int = 64, seconds: float = 10.0) -> float:
    """Voices the offline renderer sustains in realtime: voices x realtime factor."""
    engine, events = additive_engine(voices, block)
    render_array(engine, events, SAMPLE_RATE, block)  # warm caches
    started = time.perf_counter()
    render_array(engine, events, round(seconds * SAMPLE_RATE), block)
    return voices * seconds / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--blocks", type=int, nargs="+", default=[64, 128, 256])
    args = parser.parse_args()
    print(f"{'block':>5} {'period ms':>9} {'voices':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'mean load':>9} {'offline voices':>14} {'live/offline':>12} {'stalls':>6} {'underflows':>10}")
    for block in args.blocks:
        with JackDummyServer(SAMPLE_RATE, block) as server:
            best = most_voices(lambda voices: live_trial(server.device, voices, block, args.seconds))
        offline = offline_voices_in_realtime(block)
        if best is None:
            print(f"{block:5d}  underflows even with {STEP} voices")
            continue
        voices, (s, stalls, _) = best
        print(f"{block:5d} {s.block_period_ms:9.2f} {voices:6d} {s.callback_p50_ms:7.2f} {s.callback_p99_ms:7.2f} "
              f"{s.callback_max_ms:7.2f} {100 * s.load_mean:8.1f}% {offline:14.0f} {voices / offline:12.2f} "
              f"{stalls:6d} {s.underflows:10d}")


if __name__ == "__main__":
    main()
