"""Audio files: atomic, repeatable writing (soundfile / libsndfile: WAV, FLAC, Ogg Vorbis) and reading."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile

from synth.errors import SynthError
from synth.io.atomic import atomic_path

# --format -> (libsndfile container, sample type, the file name's ending)
FORMATS = {"float32": ("WAV", "FLOAT", ".wav"), "pcm16": ("WAV", "PCM_16", ".wav"), "pcm24": ("WAV", "PCM_24", ".wav"),
           "flac": ("FLAC", "PCM_24", ".flac"), "ogg": ("OGG", "VORBIS", ".ogg")}
_SFC_SET_ADD_PEAK_CHUNK = 0x1050  # libsndfile command id (sndfile.h)


def check_format(path: Path, fmt: str) -> tuple[str, str]:
    """(libsndfile container, sample type) of format `fmt`; SynthError unless it is one of FORMATS
    and the name of `path` ends as the format's files do."""
    if fmt not in FORMATS:
        raise SynthError(f"format {fmt!r} must be one of {', '.join(FORMATS)}")
    container, subtype, ending = FORMATS[fmt]
    if path.suffix.lower() != ending:
        endings = sorted({e for _, _, e in FORMATS.values()})
        hint = "" if path.suffix.lower() in endings else f" (the formats write {', '.join(endings)} files)"
        raise SynthError(f"{path}: the {fmt} format writes files ending in {ending}{hint}")
    return container, subtype


@contextlib.contextmanager
def wav_writer(path: str | Path, sample_rate: int, channels: int, fmt: str = "float32") -> Iterator[soundfile.SoundFile]:
    """An open audio file whose `write(frames)` takes float32 [frames, channels]: WAV for the
    formats float32, pcm16 and pcm24, FLAC (24-bit) for flac, Ogg Vorbis for ogg; the file name
    must end as the format's does.

    The file appears at `path` whole when the block exits cleanly and not at all otherwise.
    The PEAK chunk libsndfile adds to float WAV files carries a timestamp, so it is turned off:
    the same audio then always gives the same bytes.
    """
    path = Path(path)
    container, subtype = check_format(path, fmt)
    if not path.parent.is_dir():
        raise SynthError(f"{path.parent}: no such folder for the output file")
    with atomic_path(path) as temp:
        with soundfile.SoundFile(temp, "w", sample_rate, channels, subtype, format=container) as audio_file:
            if container == "WAV":
                # soundfile has no public call for this libsndfile command; _snd/_file are its handles
                soundfile._snd.sf_command(audio_file._file, _SFC_SET_ADD_PEAK_CHUNK, soundfile._ffi.NULL, 0)
            yield audio_file


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int, fmt: str = "float32") -> Path:
    """Write float32 [frames, channels] to a WAV file atomically (see wav_writer); returns the path.
    Samples beyond +-1 are clipped in PCM formats by libsndfile."""
    with wav_writer(path, sample_rate, audio.shape[1], fmt) as wav:
        wav.write(audio)
    return Path(path)


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """(float32 [frames, channels], sample rate in Hz) of an audio file (WAV, FLAC, Ogg, AIFF...).
    Raises SynthError naming the file when it is missing, not audio libsndfile reads, empty, or
    holds NaN or infinite samples."""
    path = Path(path)
    if not path.exists():
        raise SynthError(f"{path}: no such audio file")
    if not path.is_file():
        raise SynthError(f"{path}: a folder, expected an audio file")
    try:
        data, sample_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except soundfile.LibsndfileError as error:
        raise SynthError(f"{path}: not an audio file libsndfile reads ({error.error_string.rstrip('.')})") from None
    except (OSError, RuntimeError) as error:
        raise SynthError(f"{path}: cannot read audio: {error}") from None
    if data.shape[0] == 0:
        raise SynthError(f"{path}: the file holds no samples")
    if not np.all(np.isfinite(data)):
        raise SynthError(f"{path}: the file holds NaN or infinite samples")
    return data, sample_rate
