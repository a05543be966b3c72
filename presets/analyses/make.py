"""Makes the analyses the additive presets play, from Debian's timgm6mb General MIDI soundfont.

Each note is rendered with fluidsynth (synth.io.soundfont.render_note: no reverb or chorus, 48 kHz),
scaled to a peak of -6 dBFS, and analysed exactly as `synth analyze NOTE.wav -o NAME.partials.npz --harmonic --max-tracks 64` would.
Run from the repository root:  .venv/bin/python presets/analyses/make.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import soundfile

from synth.analysis_cli import analyze_file
from synth.io.soundfont import render_note

HERE = Path(__file__).resolve().parent
PEAK = 0.5  # -6 dBFS
# name: (General MIDI program, 0-based; MIDI note; velocity; seconds held)
NOTES = {
    "violin-a4": (40, 69, 100, 2.0),
    "flute-a4": (73, 69, 100, 2.0),
    "organ-c3": (19, 48, 100, 2.0),
}


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        for name, (program, note, velocity, seconds) in NOTES.items():
            wav = Path(folder) / f"{name}.wav"
            audio = render_note(program, note, velocity, seconds)
            soundfile.write(wav, audio * (PEAK / abs(audio).max()), 48000, subtype="FLOAT")
            for line in analyze_file(wav, HERE / f"{name}.partials.npz", harmonic=True, max_tracks=64,
                                     progress=False):
                print(f"{name}: {line}")


if __name__ == "__main__":
    main()
