"""The result of a sinusoidal analysis (`Partials`) and its file format (`.partials.npz`).

### Partials file format (`.partials.npz`, version 1)

A NumPy `.npz` archive (a zip of `.npy` arrays) holding no pickled objects: it is read with
`np.load(path, allow_pickle=False)`, and every array is checked on load (presence, dtype, shape,
finite values, ranges); a bad file raises `SynthError` naming the file and the key.

| key | dtype | shape | meaning |
|---|---|---|---|
| `format_version` | int64 | scalar | `1` |
| `kind` | unicode | scalar | `"synth.partials"` |
| `sample_rate` | int64 | scalar | sample rate of the analysed audio (Hz) |
| `hop_samples` | int64 | scalar | frame `t` is centred on sample `t * hop_samples` |
| `n_samples` | int64 | scalar | length of the analysed audio (samples) |
| `harmonic` | bool | scalar | true: track `k` is harmonic number `k + 1` of `f0_hz` |
| `freq_hz` | float32 | [frames, tracks] | frequency of each track (Hz, 0 <= f <= sample_rate / 2); 0 where silent |
| `amp` | float32 | [frames, tracks] | linear peak amplitude of the sinusoid (1.0 = full scale); 0 where silent |
| `phase_rad` | float32 | [frames, tracks] | optional: phase at the frame centre (radians, -pi..pi); absent when phases are not kept |
| `f0_hz` | float32 | [frames] | fundamental frequency (Hz); 0 where unvoiced or unknown |
| `noise_band_edges_hz` | float32 | [bands + 1] | edges of the residual's bands (Hz, increasing, 0..sample_rate / 2) |
| `noise_db` | float32 | [frames, bands] | RMS level of the residual (input minus sinusoids) in each band around each frame (dBFS, >= -160) |

Frame `t` describes the sound around sample `t * hop_samples`; `synth analyze` writes
`frames = ceil(n_samples / hop_samples) + 1` so that the last frame reaches the end of the audio.
A track (column) sounds where its amplitude is above 0; a track that starts or stops fades in or out
over one hop. Band level `noise_db` is `10 log10` of the residual's mean square in the band, so the
band powers add up to the residual's mean square (0 dBFS: a mean square of 1).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth.errors import SynthError
from synth.io.atomic import atomic_path

FORMAT_VERSION = 1
KIND = "synth.partials"
NOISE_FLOOR_DB = -160.0
_NOISE_CEILING_DB = 60.0
_PHASE_LIMIT = np.pi + 1e-3  # float32 rounding of a wrapped phase
_SCALARS = ("sample_rate", "hop_samples", "n_samples")
_ARRAYS = ("freq_hz", "amp", "phase_rad", "f0_hz", "noise_band_edges_hz", "noise_db")


@dataclass(frozen=True)
class Partials:
    """A sinusoidal analysis: tracks of frequency/amplitude/phase per frame, an f0 track and the
    residual's band levels. See the module docstring for units and shapes."""

    sample_rate: int
    hop_samples: int
    n_samples: int
    freq_hz: np.ndarray
    amp: np.ndarray
    phase_rad: np.ndarray | None
    f0_hz: np.ndarray
    harmonic: bool
    noise_band_edges_hz: np.ndarray
    noise_db: np.ndarray

    @property
    def frames(self) -> int:
        """Number of analysis frames."""
        return int(self.freq_hz.shape[0])

    @property
    def tracks(self) -> int:
        """Number of tracks (columns)."""
        return int(self.freq_hz.shape[1])

    @property
    def sounding_tracks(self) -> int:
        """Number of tracks that sound in at least one frame (the columns after them may be empty)."""
        return int((self.amp > 0).any(axis=0).sum())

    @property
    def duration_s(self) -> float:
        """Length of the analysed audio in seconds."""
        return self.n_samples / self.sample_rate

    @property
    def frame_times_s(self) -> np.ndarray:
        """float64 [frames]: the time of each frame's centre (s)."""
        return np.arange(self.frames) * (self.hop_samples / self.sample_rate)


def frame_count(n_samples: int, hop_samples: int) -> int:
    """Frames an analysis of `n_samples` samples has at hop `hop_samples`: ceil(n / hop) + 1."""
    return -(-n_samples // hop_samples) + 1


def check_partials(p: Partials, where: str = "partials") -> None:
    """Raise SynthError (naming `where` and the field) unless `p` is a well-formed analysis."""
    for key in _SCALARS:
        value = getattr(p, key)
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise SynthError(f"{where}: key '{key}' is {value!r}, expected a positive integer")
    if not 1000 <= p.sample_rate <= 768000:
        raise SynthError(f"{where}: key 'sample_rate' is {p.sample_rate}, expected 1000..768000 Hz")
    if not isinstance(p.harmonic, (bool, np.bool_)):
        raise SynthError(f"{where}: key 'harmonic' is {p.harmonic!r}, expected true or false")
    for key in _ARRAYS:
        value = getattr(p, key)
        if value is None and key == "phase_rad":
            continue
        if not isinstance(value, np.ndarray) or value.dtype != np.float32:
            got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise SynthError(f"{where}: key '{key}' has dtype {got}, expected float32")
        if not np.all(np.isfinite(value)):
            raise SynthError(f"{where}: key '{key}' holds NaN or infinite values, expected finite numbers")
    nyquist = p.sample_rate / 2
    if p.freq_hz.ndim != 2:
        raise SynthError(f"{where}: key 'freq_hz' has shape {p.freq_hz.shape}, expected [frames, tracks]")
    frames, tracks = p.freq_hz.shape
    if frames < 1:
        raise SynthError(f"{where}: key 'freq_hz' has no frames, expected at least 1")
    for key in ("amp", "phase_rad"):
        value = getattr(p, key)
        if value is not None and value.shape != (frames, tracks):
            raise SynthError(f"{where}: key '{key}' has shape {value.shape}, expected {(frames, tracks)} like freq_hz")
    if p.f0_hz.shape != (frames,):
        raise SynthError(f"{where}: key 'f0_hz' has shape {p.f0_hz.shape}, expected ({frames},) [frames]")
    edges = p.noise_band_edges_hz
    if edges.ndim != 1 or edges.size < 2:
        raise SynthError(f"{where}: key 'noise_band_edges_hz' has shape {edges.shape}, expected [bands + 1] with bands >= 1")
    if p.noise_db.shape != (frames, edges.size - 1):
        raise SynthError(f"{where}: key 'noise_db' has shape {p.noise_db.shape}, expected {(frames, edges.size - 1)} [frames, bands]")
    if np.any(np.diff(edges) <= 0) or edges[0] < 0 or edges[-1] > nyquist + 1e-3:
        raise SynthError(f"{where}: key 'noise_band_edges_hz' must increase within 0..{nyquist:g} Hz")
    for key, array, low, high, unit in (("freq_hz", p.freq_hz, 0.0, nyquist, "Hz"), ("amp", p.amp, 0.0, 1e6, ""),
                                        ("f0_hz", p.f0_hz, 0.0, nyquist, "Hz"),
                                        ("noise_db", p.noise_db, NOISE_FLOOR_DB - 1e-3, _NOISE_CEILING_DB, "dB")):
        if array.size and (array.min() < low or array.max() > high):
            bad = array.min() if array.min() < low else array.max()
            raise SynthError(f"{where}: key '{key}' has value {bad:g}, expected {low:g}..{high:g} {unit}".rstrip())
    if p.phase_rad is not None and p.phase_rad.size and np.abs(p.phase_rad).max() > _PHASE_LIMIT:
        raise SynthError(f"{where}: key 'phase_rad' has value {np.abs(p.phase_rad).max():g}, expected -pi..pi radians")
    if np.any((p.amp > 0) & (p.freq_hz <= 0)):
        raise SynthError(f"{where}: key 'amp' is above 0 where freq_hz is 0, expected a frequency wherever a track sounds")


def save_partials(partials: Partials, path: str | os.PathLike) -> Path:
    """Write `partials` to `path` (.npz, format above) atomically; returns the path written."""
    path = Path(path)
    check_partials(partials, str(path))
    if not path.parent.is_dir():
        raise SynthError(f"{path.parent}: no such folder for the analysis file")
    arrays = {
        "format_version": np.int64(FORMAT_VERSION), "kind": np.str_(KIND),
        "sample_rate": np.int64(partials.sample_rate), "hop_samples": np.int64(partials.hop_samples),
        "n_samples": np.int64(partials.n_samples), "harmonic": np.bool_(partials.harmonic),
        "freq_hz": partials.freq_hz, "amp": partials.amp, "f0_hz": partials.f0_hz,
        "noise_band_edges_hz": partials.noise_band_edges_hz, "noise_db": partials.noise_db}
    if partials.phase_rad is not None:
        arrays["phase_rad"] = partials.phase_rad
    with atomic_path(path) as temp:
        with open(temp, "wb") as handle:  # a file object: np.savez would append .npz to a name
            np.savez_compressed(handle, **arrays)
    return path


def _read_key(archive, path: Path, key: str, required: bool = True):
    if key not in archive.files:
        if required:
            raise SynthError(f"{path}: key {key!r} is missing, expected it in a {KIND} file")
        return None
    try:
        return archive[key]
    except ValueError as error:
        if "allow_pickle" in str(error):  # object arrays need pickle, which is refused
            raise SynthError(f"{path}: key {key!r} holds a pickled object array, expected plain numbers") from None
        raise SynthError(f"{path}: key {key!r} cannot be read ({error})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise SynthError(f"{path}: key {key!r} cannot be read ({error})") from None


def _scalar(archive, path: Path, key: str, kinds: str):
    value = _read_key(archive, path, key)
    if value.shape != () or value.dtype.kind not in kinds:
        expected = {"iu": "an integer", "b": "a boolean", "U": "a string"}[kinds]
        raise SynthError(f"{path}: key {key!r} is {value.dtype} {value.shape}, expected {expected} scalar")
    return value.item()


def load_partials(path: str | os.PathLike) -> Partials:
    """Read and validate a .partials.npz file written by `save_partials`.

    Raises SynthError naming the file and the key for a missing file, a file that is not an npz
    archive, an unsupported version, a missing key, a wrong dtype or shape, a non-finite or
    out-of-range value, or a pickled object array.
    """
    path = Path(path)
    if not path.is_file():
        raise SynthError(f"{path}: no such analysis file")
    not_analysis = f"{path}: not an analysis file (a .partials.npz that `synth analyze` writes)"
    if not zipfile.is_zipfile(path):
        raise SynthError(not_analysis)
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise SynthError(f"{not_analysis}: {error}") from None
    with archive:
        version = _scalar(archive, path, "format_version", "iu")
        if version != FORMAT_VERSION:
            raise SynthError(f"{path}: key 'format_version' is {version}, expected {FORMAT_VERSION} (unsupported version)")
        kind = _scalar(archive, path, "kind", "U")
        if kind != KIND:
            raise SynthError(f"{path}: key 'kind' is {kind!r}, expected {KIND!r}")
        scalars = {key: int(_scalar(archive, path, key, "iu")) for key in _SCALARS}
        harmonic = bool(_scalar(archive, path, "harmonic", "b"))
        arrays = {key: _read_key(archive, path, key, required=key != "phase_rad") for key in _ARRAYS}
    for key, value in arrays.items():
        if value is not None and value.dtype != np.float32:
            raise SynthError(f"{path}: key {key!r} has dtype {value.dtype}, expected float32")
    partials = Partials(harmonic=harmonic, **scalars, **arrays)
    check_partials(partials, str(path))
    return partials
