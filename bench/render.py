"""Realtime factor of an offline render: 60 s of a 16-voice preset at 48 kHz.

Prints synth-host's figure and, measured in the same run on the same notes, fluidsynth's
(Debian package fluidsynth with the timgm6mb soundfont, one core, fast file render) and the ratio.
Usage: .venv/bin/python bench/render.py [--seconds 60] [--preset warm-pad]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mido

from synth.presets import load_preset
from synth.render import render_file

SAMPLE_RATE = 48000
VOICES = 16
SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")


def sixteen_voice_notes(seconds: float) -> list[tuple[float, int, float]]:
    """(start s, note, length s): 16 notes always held, each retaken every 4 s (staggered)."""
    notes = []
    for voice in range(VOICES):
        start = voice * 0.25
        while start < seconds:
            notes.append((start, 40 + 2 * voice, min(3.9, seconds - start)))
            start += 4.0
    return notes


def write_scores(notes, folder: Path) -> tuple[Path, Path]:
    jsonl, midi_path = folder / "bench.jsonl", folder / "bench.mid"
    events = sorted([(s, "note_on", n) for s, n, _ in notes] + [(s + d, "note_off", n) for s, n, d in notes])
    with open(jsonl, "w") as f:
        for t, kind, note in events:
            address, args = ("/note/on", [note, 100]) if kind == "note_on" else ("/note/off", [note])
            f.write(json.dumps({"time": t, "address": address, "args": args}) + "\n")
    midi = mido.MidiFile(ticks_per_beat=960)  # 120 bpm: 1920 ticks a second
    track = mido.MidiTrack()
    midi.tracks.append(track)
    now = 0
    for t, kind, note in events:
        tick = round(t * 1920)
        track.append(mido.Message(kind, note=note, velocity=100 if kind == "note_on" else 0, time=tick - now))
        now = tick
    midi.save(midi_path)
    return jsonl, midi_path


def time_fluidsynth(midi_path: Path, out: Path) -> float | None:
    if shutil.which("fluidsynth") is None or not SOUNDFONT.exists():
        return None
    started = time.perf_counter()
    subprocess.run(["fluidsynth", "-ni", "-q", "-r", str(SAMPLE_RATE), "-o", "synth.cpu-cores=1",
                    "-o", f"synth.polyphony={VOICES * 4}", "-F", str(out), str(SOUNDFONT), str(midi_path)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--preset", default="warm-pad")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        jsonl, midi_path = write_scores(sixteen_voice_notes(args.seconds), folder)
        preset = load_preset(args.preset)
        render_file(preset, jsonl, folder / "warm-up.wav", tail_s=0.1, progress=False)  # compile cache
        summary = render_file(preset, jsonl, folder / "synth.wav", tail_s=0.0, progress=False)
        print(f"synth-host  {args.preset}: {summary.duration_s:.1f} s of audio, {summary.max_voices} voices at most, "
              f"{summary.wall_s:.2f} s wall -> {summary.realtime_factor:.1f}x realtime")
        peer_s = time_fluidsynth(midi_path, folder / "fluid.wav")
        if peer_s is None:
            print("fluidsynth  not installed (apt-get install fluidsynth timgm6mb-soundfont): no peer figure")
            return
        peer_rtf = summary.duration_s / peer_s
        print(f"fluidsynth  TimGM6mb, same notes: {peer_s:.2f} s wall (start-up included) -> {peer_rtf:.1f}x realtime")
        print(f"ratio       synth-host / fluidsynth = {summary.realtime_factor / peer_rtf:.2f}")


if __name__ == "__main__":
    sys.exit(main())
