"""The most voices that play for N seconds with zero underflows, per block size, at 48 kHz.

A real PortAudio stream on JACK's dummy backend (started here, one server per block size, its
period equal to the block). Voices are `additive` voices playing the shipped 64-partial church
organ analysis (looping while held, formants kept), all held at once, in stacks of up to 64 notes,
followed by a delay. For each block size it prints the most voices that passed, the callback
duration percentiles at that count, and, as the peer measured in the same run, the voices the same
machine renders offline in realtime (offline throughput): the ratio shows how much of the raw speed
survives the live path. A per-CPU stall probe runs beside each trial (synth.io.stall_probe): an
underflow that a stall of the virtual machine explains does not fail the trial (a stall is a
wake-up later than 2 ms, or three quarters of the block period where that is shorter); the stalls
seen are printed.

--say BLOCK: instead, speech under load: a 32-note saw chord held on one instrument while a `/say`
of about ten seconds of speech is sent over UDP to the OSC server (rendered by the control plane,
then played by a voice slot beside the chord); prints underflows, stalls and callback figures.

--voices N: one trial at exactly N voices per block size instead of the search. Each block size
prints the most voices that passed and the fewest that failed (the trial the search stopped at).

Usage: .venv/bin/python bench/realtime.py [--seconds 20] [--blocks 64 128 256] [--voices N] [--say 128]
"""

from __future__ import annotations

import argparse
import socket
import time

from synth.control.osc import OscServer
from synth.events import NoteOn
from synth.host import Host, HostStatus
from synth.io.jackserver import JackDummyServer
from synth.io.stall_probe import StallProbe
from synth.presets import SHIPPED_PRESETS, ChainEntry, PresetSpec
from synth.render import render_array

SAMPLE_RATE = 48000
STALL_THRESHOLD_S = 0.002  # synth.io.stall_probe's default
STEP = 16  # voice counts are searched to this resolution up to 64; above, in whole stacks of 64
MAX_VOICES = 8192
ANALYSIS = "analyses/organ-c3.partials.npz"  # 64 partials, in the shipped preset folder


def additive_preset(voices: int) -> tuple[PresetSpec, list[NoteOn]]:
    """A preset sounding `voices` additive voices: up to 64 held notes on each of a stack of
    additive slots (64 voices each, the last one fewer), plus a delay; and the note-ons that start
    them. Every slot hears every note: a slot with fewer voices steals at the start and then holds."""
    notes = min(voices, 64)
    slots = -(-voices // 64)
    chain = [ChainEntry("additive", f"add{k}", {"keep_formants": "on", "loop": "on", "transpose_semitones": 0.1 * k,
                                                 "level_db": -40.0}, files={"analysis": ANALYSIS})
             for k in range(slots)]
    preset = PresetSpec("additive-stack", chain + [ChainEntry("delay", "delay")], voice_limit=min(voices, 64),
                        source=str(SHIPPED_PRESETS / "additive-stack.toml"))
    return preset, [NoteOn(0, 36 + n, 100) for n in range(notes)]


def live_trial(device: int, voices: int, block: int, seconds: float) -> tuple[HostStatus, int, int]:
    """(status, machine stalls seen, underflows no stall explains) after `voices` held voices
    played for `seconds` on the live stream."""
    preset, events = additive_preset(voices)
    host = Host(preset, SAMPLE_RATE, block, device=device)
    # a stall of three quarters of a block period is enough to starve the stream
    with StallProbe(min(STALL_THRESHOLD_S, 0.75 * block / SAMPLE_RATE)) as probe:
        host.start(events)
        time.sleep(seconds)
        host.stop()
    unexplained = len(probe.unexplained(host.underflow_times()))
    return host.status(), len(probe.stalls), unexplained


def most_voices(trial) -> tuple[tuple | None, tuple | None]:
    """Double the voice count until a trial has an underflow no stall explains, then bisect to the
    nearest STEP voices. Returns (the largest passing count with its trial result, the smallest
    failing count with its result); either is None where no trial passed or none failed."""
    passed, failed = None, None
    voices = STEP
    while voices <= MAX_VOICES:
        result = trial(voices)
        if result[2]:
            failed = (voices, result)
            break
        passed = (voices, result)
        voices *= 2
    while passed and failed and failed[0] - passed[0] > STEP:
        step = STEP if failed[0] <= 64 else 64  # a preset's voice limit is one for all its slots: whole stacks
        middle = (passed[0] + failed[0]) // 2 // step * step
        if middle <= passed[0]:
            break
        result = trial(middle)
        if result[2]:
            failed = (middle, result)
        else:
            passed = (middle, result)
    return passed, failed


def offline_voices_in_realtime(block: int, voices: int = 64, seconds: float = 10.0) -> float:
    """Voices the offline renderer sustains in realtime: voices x realtime factor."""
    preset, events = additive_preset(voices)
    engine = preset.build_engine(SAMPLE_RATE, block)
    render_array(engine, events, SAMPLE_RATE, block)  # warm caches
    started = time.perf_counter()
    render_array(engine, events, round(seconds * SAMPLE_RATE), block)
    return voices * seconds / (time.perf_counter() - started)


SPEECH = ("The quick brown fox jumps over the lazy dog, while the band plays on and the crowd sings along. "
          "Nobody leaves before the very last note has faded, and then everybody cheers.")


def say_during_chord(block: int) -> None:
    """The --say figure (see the module docstring)."""
    from pythonosc.osc_message_builder import OscMessageBuilder

    speech = PresetSpec("say-over-chord", [
        ChainEntry("voice", "voice", channel=2, files={"tts": "models/slt-tts.json",
                                                       "decoder": "models/slt-decoder.json"}),
        ChainEntry("oscillator", "osc", {"waveform": "saw", "level_db": -30.0}, channel=1),
        ChainEntry("delay", "delay")], voice_limit=32, source=str(SHIPPED_PRESETS / "say-over-chord.toml"))
    chord = [NoteOn(0, 36 + 2 * n, 100, 1) for n in range(32)]
    builder = OscMessageBuilder("/say")
    builder.add_arg(SPEECH)
    with JackDummyServer(SAMPLE_RATE, block) as jack, StallProbe() as probe:
        host = Host(speech, SAMPLE_RATE, block, device=jack.device)
        host.start(chord)
        with OscServer(host, port=0) as server:
            time.sleep(1.0)
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sent = time.monotonic()
            sender.sendto(builder.build().dgram, ("127.0.0.1", server.port))
            while server.counters.applied < 1 and time.monotonic() - sent < 60:
                time.sleep(0.01)
            rendered_s = time.monotonic() - sent
            time.sleep(12.0)
            sender.close()
        status = host.status()
        host.stop()
    unexplained = len(probe.unexplained(host.underflow_times()))
    spoken_s = host.chain.slot("voice").plugin.render_speech(SPEECH).size / SAMPLE_RATE
    print(f"/say of {spoken_s:.1f} s of speech during a 32-note chord, {block}-frame blocks: rendered in "
          f"{rendered_s:.2f} s on the control plane; voices {status.voices}; underflows {status.underflows} "
          f"({unexplained} not explained by {len(probe.stalls)} machine stalls); callback p50 "
          f"{status.callback_p50_ms:.2f} ms, p99 {status.callback_p99_ms:.2f} ms, max {status.callback_max_ms:.2f} ms "
          f"of {status.block_period_ms:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--blocks", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--voices", type=int, help="one trial at this many voices instead of the search")
    parser.add_argument("--say", type=int, metavar="BLOCK", help="the speech-under-load figure at this block size")
    args = parser.parse_args()
    if args.say:
        say_during_chord(args.say)
        return
    print(f"{'block':>5} {'period ms':>9} {'voices':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'mean load':>9} {'offline voices':>14} {'live/offline':>12} {'stalls':>6} {'underflows':>10} "
          f"{'unexplained':>11}")
    for block in args.blocks:
        with JackDummyServer(SAMPLE_RATE, block) as server:
            if args.voices:
                result = (args.voices, live_trial(server.device, args.voices, block, args.seconds))
                passed, failed = (None, result) if result[1][2] else (result, None)
            else:
                passed, failed = most_voices(lambda voices: live_trial(server.device, voices, block, args.seconds))
        offline = offline_voices_in_realtime(block)
        for verdict, trial in (("most that passed", passed), ("failed", failed)):
            if trial is None:
                continue
            voices, (s, stalls, unexplained) = trial
            print(f"{block:5d} {s.block_period_ms:9.2f} {voices:6d} {s.callback_p50_ms:7.2f} {s.callback_p99_ms:7.2f} "
                  f"{s.callback_max_ms:7.2f} {100 * s.load_mean:8.1f}% {offline:14.0f} {voices / offline:12.2f} "
                  f"{stalls:6d} {s.underflows:10d} {unexplained:11d}  {verdict}")
        if passed is None:
            print(f"{block:5d}  underflows even with {args.voices or STEP} voices")

if __name__ == "__main__":
    main()
