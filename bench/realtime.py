"""The most voices that play for N seconds with zero underflows, per block size, at 48 kHz.

A real PortAudio stream on JACK's dummy backend (started here, one server per block size, its
period equal to the block). Voices are `oscillator` voices (saw, per-voice filter, ADSR) all held
at once, as detuned unison stacks of up to 64 notes, followed by a delay. For each block size it prints the most voices
that passed, the callback duration percentiles at that count, and, as the peer measured in the
same run, the voices the same machine renders offline in realtime (offline throughput): the ratio
shows how much of the raw speed survives the live path.
Usage: .venv/bin/python bench/realtime.py [--seconds 20] [--blocks 64 128 256]
"""

from __future__ import annotations

import argparse
import time

from synth.engine import Engine, Slot
from synth.events import NoteOn
from synth.host import Host, HostStatus
from synth.io.jackserver import JackDummyServer
from synth.plugins import Delay, Oscillator
from synth.render import render_array

SAMPLE_RATE = 48000
STEP = 64  # voice counts above 64 are whole unison stacks of 64 notes
MAX_VOICES = 8192


def unison_engine(voices: int, block: int) -> tuple[Engine, list[NoteOn]]:
    """An engine sounding `voices` oscillator voices: up to 64 held notes, each on a stack of
    detuned oscillator slots (a supersaw), plus a delay; and the note-ons that start them."""
    notes = min(voices, 64)
    stack = voices // notes
    slots = [Slot(f"osc{k}", Oscillator(voice_limit=notes, waveform="saw", detune_cents=-10 + 20 * k / max(stack - 1, 1),
                                        sustain=1.0, level_db=-40.0)) for k in range(stack)]
    engine = Engine(slots + [Slot("delay", Delay())], SAMPLE_RATE, block)
    return engine, [NoteOn(0, 32 + n, 100) for n in range(notes)]


def live_trial(device: int, voices: int, block: int, seconds: float) -> HostStatus:
    """Status after `voices` held voices played for `seconds` on the live stream."""
    engine, events = unison_engine(voices, block)
    host = Host(engine, device=device)
    host.start(events)
    time.sleep(seconds)
    host.stop()
    return host.status()


def most_voices(trial) -> tuple[int, HostStatus] | None:
    """Double the voice count until a trial underflows, then bisect to the nearest STEP voices.
    Returns the largest passing count with its status (None if even STEP voices underflow)."""
    passed, failed = None, None
    voices = STEP
    while voices <= MAX_VOICES:
        status = trial(voices)
        if status.underflows:
            failed = voices
            break
        passed = (voices, status)
        voices *= 2
    while passed and failed and failed - passed[0] > STEP:
        middle = (passed[0] + failed) // 2 // STEP * STEP
        status = trial(middle)
        if status.underflows:
            failed = middle
        else:
            passed = (middle, status)
    return passed


def offline_voices_in_realtime(block: int, voices: int = 64, seconds: float = 10.0) -> float:
    """Voices the offline renderer sustains in realtime: voices x realtime factor."""
    engine, events = unison_engine(voices, block)
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
          f"{'mean load':>9} {'offline voices':>14} {'live/offline':>12}")
    for block in args.blocks:
        with JackDummyServer(SAMPLE_RATE, block) as server:
            best = most_voices(lambda voices: live_trial(server.device, voices, block, args.seconds))
        offline = offline_voices_in_realtime(block)
        if best is None:
            print(f"{block:5d}  underflows even with {STEP} voices")
            continue
        voices, s = best
        print(f"{block:5d} {s.block_period_ms:9.2f} {voices:6d} {s.callback_p50_ms:7.2f} {s.callback_p99_ms:7.2f} "
              f"{s.callback_max_ms:7.2f} {100 * s.load_mean:8.1f}% {offline:14.0f} {voices / offline:12.2f}")


if __name__ == "__main__":
    main()
