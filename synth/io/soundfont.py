"""Real instrument notes: General MIDI soundfonts rendered offline with the fluidsynth CLI.

`render_note` writes a one-note standard MIDI file (mido) into a temporary folder and renders it
with `fluidsynth -ni -R 0 -C 0 -F out.wav` (no audio driver, no MIDI input, no shell, reverb and
chorus off), then reads the float WAV back with soundfile and downmixes it to mono.

GM programs are 0-based here (General MIDI lists them from 1): see `GM_PROGRAMS`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import mido
import numpy as np
import soundfile

from synth.errors import SynthError

SOUNDFONT_DIR = Path("/usr/share/sounds/sf2")
# name -> (file in SOUNDFONT_DIR, Debian package that ships it)
SOUNDFONTS = {
    "timgm6mb": ("TimGM6mb.sf2", "timgm6mb-soundfont"),
    "fluidr3": ("FluidR3_GM.sf2", "fluid-soundfont-gm"),
}
# a few sustained General MIDI instruments, 0-based program numbers
GM_PROGRAMS = {
    "church_organ": 19,
    "violin": 40,
    "cello": 42,
    "voice_oohs": 53,
    "trumpet": 56,
    "clarinet": 71,
    "flute": 73,
}
_TICKS_PER_BEAT = 480
_TEMPO_US_PER_BEAT = 500_000  # 120 bpm: one tick = 1/960 s
_RENDER_TIMEOUT_S = 120


def find_soundfont(name: str = "timgm6mb") -> Path:
    """Path of an installed GM soundfont: `name` is "timgm6mb" (small) or "fluidr3" (large).

    Raises SynthError naming the Debian package to install when the file is missing.
    """
    if name not in SOUNDFONTS:
        raise SynthError(f"soundfont {name!r} must be one of {', '.join(SOUNDFONTS)}")
    file_name, package = SOUNDFONTS[name]
    path = SOUNDFONT_DIR / file_name
    if not path.is_file():
        raise SynthError(f"{path}: soundfont {name!r} is not installed (apt-get install {package})")
    return path


def soundfont_file(soundfont: str | Path) -> Path:
    """The .sf2 file `soundfont` names: a path ending in .sf2, or a name for `find_soundfont`;
    SynthError when it is not there."""
    sf2 = Path(soundfont) if str(soundfont).endswith(".sf2") else find_soundfont(str(soundfont))
    if not sf2.is_file():
        raise SynthError(f"{sf2}: no such soundfont file")
    return sf2


def _seconds_to_ticks(seconds: float) -> int:
    return int(round(seconds * 1e6 / _TEMPO_US_PER_BEAT * _TICKS_PER_BEAT))


def _write_note_midi(path: Path, program: int, note: int, velocity: int, seconds: float, release_s: float):
    """One-track MIDI file: program change, note on at 0, note off at `seconds`, end after the release."""
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=_TEMPO_US_PER_BEAT, time=0))
    track.append(mido.Message("program_change", channel=0, program=program, time=0))
    track.append(mido.Message("note_on", channel=0, note=note, velocity=velocity, time=0))
    note_ticks = _seconds_to_ticks(seconds)
    track.append(mido.Message("note_off", channel=0, note=note, velocity=0, time=note_ticks))
    end_ticks = _seconds_to_ticks(seconds + release_s) - note_ticks
    track.append(mido.MetaMessage("end_of_track", time=max(end_ticks, 1)))
    midi = mido.MidiFile(ticks_per_beat=_TICKS_PER_BEAT)
    midi.tracks.append(track)
    midi.save(path)


def render_note(program: int, note: int, velocity: int, seconds: float, sample_rate: int = 48000,
                soundfont: str | Path = "timgm6mb", release_s: float = 0.5, gain: float = 0.5) -> np.ndarray:
    """Render one held note of a GM instrument; returns float32 mono [round((seconds + release_s) * sample_rate)].

    program: GM program 0..127 (0-based, e.g. violin 40; see GM_PROGRAMS). note: MIDI note 0..127.
    velocity: 1..127. seconds: how long the key is held (s). release_s: silence-to-be after the note
    off that is still rendered, so the release tail is kept (s). soundfont: a name for
    `find_soundfont` or a path to an .sf2 file. gain: fluidsynth's master gain (its -g, 0..10).
    The note starts at sample 0 (plus the soundfont's own attack).
    """
    for key, value, low, high in (("program", program, 0, 127), ("note", note, 0, 127), ("velocity", velocity, 1, 127)):
        if not isinstance(value, (int, np.integer)) or not low <= value <= high:
            raise SynthError(f"{key}={value!r} must be an integer in {low}..{high}")
    if not seconds > 0 or not release_s >= 0:
        raise SynthError(f"seconds={seconds!r} must be > 0 and release_s={release_s!r} >= 0")
    if not isinstance(sample_rate, (int, np.integer)) or not 8000 <= sample_rate <= 192000:
        raise SynthError(f"sample_rate={sample_rate!r} must be an integer in 8000..192000 Hz")
    if not 0 < gain <= 10:
        raise SynthError(f"gain={gain!r} must be in (0, 10]")
    sf2 = soundfont_file(soundfont)
    binary = shutil.which("fluidsynth")
    if binary is None:
        raise SynthError("fluidsynth is not installed (apt-get install fluidsynth)")
    with tempfile.TemporaryDirectory(prefix="synth-note-") as folder:
        midi_path = Path(folder) / "note.mid"
        wav_path = Path(folder) / "note.wav"
        _write_note_midi(midi_path, int(program), int(note), int(velocity), float(seconds), float(release_s))
        command = [binary, "-ni", "-q", "-R", "0", "-C", "0", "-g", str(gain), "-r", str(sample_rate),
                   "-O", "float", "-T", "wav", "-F", str(wav_path), str(sf2), str(midi_path)]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=_RENDER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise SynthError(f"fluidsynth took over {_RENDER_TIMEOUT_S} s rendering {sf2}") from None
        if result.returncode != 0 or not wav_path.is_file():
            raise SynthError(f"fluidsynth failed on {sf2} (exit {result.returncode}): {result.stderr.strip()[-300:]}")
        data, rate = soundfile.read(wav_path, dtype="float32", always_2d=True)
    if rate != sample_rate:
        raise SynthError(f"fluidsynth wrote {rate} Hz, expected {sample_rate} Hz")
    mono = data.mean(axis=1, dtype=np.float64).astype(np.float32)
    n_samples = int(round((seconds + release_s) * sample_rate))
    out = np.zeros(n_samples, dtype=np.float32)
    out[: min(n_samples, mono.size)] = mono[:n_samples]
    return out
