"""WAV files: atomic, repeatable writing (soundfile / libsndfile) and reading."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile

from synth.errors import SynthError
from synth.io.atomic import atomic_path

SUBTYPES = {"float32": "FLOAT", "pcm16": "PCM_16", "pcm24": "PCM_24"}
_SFC_SET_ADD_PEAK_CHUNK = 0x1050  # libsndfile command id (sndfile.h)


@contextlib.contextmanager
def wav_writer(path: str | Path, sample_rate: int, channels: int, fmt: str = "float32") -> Iterator[soundfile.SoundFile]:
    """An open WAV file whose `write(frames)` takes float32 [frames, channels].

    The file appears at `path` whole when the block exits cleanly and not at all otherwise.
    The PEAK chunk libsndfile adds to float files carries a timestamp, so it is turned off:
    the same audio then always gives the same bytes.
    """
    if fmt not in SUBTYPES:
        raise SynthError(f"format {fmt!r} must be one of {', '.join(SUBTYPES)}")
    path = Path(path)
    if path.suffix.lower() != ".wav":
        raise SynthError(f"{path}: output files end in .wav")
    if not path.parent.is_dir():
        raise SynthError(f"{path.parent}: no such folder for the output file")
    with atomic_path(path) as temp:
        with soundfile.SoundFile(temp, "w", sample_rate, channels, SUBTYPES[fmt], format="WAV") as wav:
            # soundfile has no public call for this libsndfile command; _snd/_file are its handles
            soundfile._snd.sf_command(wav._file, _SFC_SET_ADD_PEAK_CHUNK, soundfile._ffi.NULL, 0)
            yield wav


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int, fmt: str = "float32") -> Path:
    """Write float32 [frames, channels] to a WAV file atomically (see wav_writer); returns the path.
    Samples beyond +-1 are clipped in PCM formats by libsndfile."""
    with wav_writer(path, sample_rate, audio.shape[1], fmt) as wav:
        wav.write(audio)
    return Path(path)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(float32 [frames, channels], sample rate in Hz) of an audio file."""
    try:
        data, sample_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, OSError, RuntimeError) as error:
        raise SynthError(f"{path}: cannot read audio: {error}") from None
    return data, sample_rate
