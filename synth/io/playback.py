"""Play a finished audio file on the default output device, where one exists."""

from __future__ import annotations

from pathlib import Path

from synth.io.audiofile import read_audio


def play_file(path: str | Path) -> str:
    """Play `path` to the end on the default output device; returns one sentence saying what happened."""
    try:
        import sounddevice
    except OSError:
        return "PortAudio is not installed (Debian package libportaudio2), so nothing was played."
    try:
        device = sounddevice.query_devices(kind="output")
    except (sounddevice.PortAudioError, ValueError):
        return "No audio output device was found, so nothing was played."
    data, sample_rate = read_audio(path)
    try:
        sounddevice.play(data, sample_rate, blocking=True)
    except sounddevice.PortAudioError as error:
        return f"Could not play on {device['name']!r}: {error}."
    return f"Played on {device['name']!r}."
