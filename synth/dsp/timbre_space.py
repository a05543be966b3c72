"""The timbre space of a trained VAE (models.vae), read from its JSON without torch.

A performer moves through z in three ways, all of which this class turns into a z vector:
- the whole vector (`/latent f f ...`), each component clamped to -Z_LIMIT..Z_LIMIT;
- a point (x, y) in 0..1 on the plane of the two principal axes of the training posterior means
  (`/latent/xy`): 0.5, 0.5 is their mean and 0 / 1 lie XY_SPAN_STD standard deviations either side;
- a mix of two instruments' centroids (`/latent/morph a b t`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from synth.dsp.decoder_runtime import check_kind, model_paths, read_metadata
from synth.errors import SynthError

VAE_FORMAT_VERSION = 1
VAE_KIND = "synth.timbre_vae"
XY_SPAN_STD = 2.5  # /latent/xy 0 and 1 lie this many standard deviations from the mean along an axis
Z_LIMIT = 6.0  # a z component may go this far either side of 0 (a unit-normal prior's 6 sigma)


def _vector(value, size: int, where: str, key: str) -> np.ndarray:
    ok = (isinstance(value, list) and len(value) == size
          and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value))
    if not ok:
        raise SynthError(f"{where}: key '{key}' must be a list of {size} finite numbers")
    return np.asarray(value, dtype=np.float64)


def check_vae_metadata(meta: dict, where: str) -> dict:
    """Check a timbre model's JSON (format_version, kind, config, instruments, mean, axes,
    axis_std, posterior_means, labels); returns it. SynthError naming `where` and the key."""
    check_kind(meta, where, VAE_KIND, VAE_FORMAT_VERSION)
    for key in ("decoder", "instruments", "mean", "axes", "axis_std", "posterior_means", "labels"):
        if key not in meta:
            raise SynthError(f"{where}: key '{key}' is missing")
    config = meta["config"]
    dims = config.get("latent_dims") if isinstance(config, dict) else None
    if isinstance(dims, bool) or not isinstance(dims, int) or not 2 <= dims <= 16:
        raise SynthError(f"{where}: key 'config.latent_dims' must be an integer in 2..16")
    decoder = meta["decoder"]
    if not isinstance(decoder, str) or Path(decoder).is_absolute() or ".." in Path(decoder).parts:
        raise SynthError(f"{where}: key 'decoder'={decoder!r} must be a path relative to the JSON's folder")
    instruments = meta["instruments"]
    if not isinstance(instruments, dict) or not instruments:
        raise SynthError(f"{where}: key 'instruments' must be an object of name -> {{family, centroid}}")
    for name, entry in instruments.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("family"), str):
            raise SynthError(f"{where}: key 'instruments.{name}.family' must be a string")
        _vector(entry.get("centroid"), dims, where, f"instruments.{name}.centroid")
    _vector(meta["mean"], dims, where, "mean")
    _vector(meta["axis_std"], dims, where, "axis_std")
    if not isinstance(meta["axes"], list) or len(meta["axes"]) != dims:
        raise SynthError(f"{where}: key 'axes' must be {dims} lists of {dims} numbers")
    for i, axis in enumerate(meta["axes"]):
        _vector(axis, dims, where, f"axes[{i}]")
    means, labels = meta["posterior_means"], meta["labels"]
    if not isinstance(means, list) or not isinstance(labels, list) or len(means) != len(labels) or not means:
        raise SynthError(f"{where}: keys 'posterior_means' and 'labels' must be lists of the same length")
    for i, (point, label) in enumerate(zip(means, labels)):
        _vector(point, dims, where, f"posterior_means[{i}]")
        if label not in instruments:
            raise SynthError(f"{where}: key 'labels[{i}]'={label!r} is not one of the instruments")
    return meta


class TimbreSpace:
    """z vectors from names, plane positions and mixes (see the module docstring).

    latent_dims; instruments: names in the model's order; families: name -> family; mean [D];
    axes [D, D] (rows, by falling variance); axis_std [D]; posterior_means [N, D] and labels [N]:
    the training notes'; decoder_path: the decoder model this space conditions.
    """

    def __init__(self, meta: dict, json_path: Path):
        self.json_path = Path(json_path)
        self.latent_dims = int(meta["config"]["latent_dims"])
        self.instruments = list(meta["instruments"])
        self.families = {name: entry["family"] for name, entry in meta["instruments"].items()}
        self._centroids = {name: np.asarray(entry["centroid"], np.float64) for name, entry in meta["instruments"].items()}
        self.mean = np.asarray(meta["mean"], np.float64)
        self.axes = np.asarray(meta["axes"], np.float64)
        self.axis_std = np.asarray(meta["axis_std"], np.float64)
        self.posterior_means = np.asarray(meta["posterior_means"], np.float64)
        self.labels = list(meta["labels"])
        self.decoder_path = self.json_path.parent / meta["decoder"]
        self.metadata = meta

    def centroid(self, name: str) -> np.ndarray:
        """The mean z [D] of instrument `name`'s training notes; SynthError naming the known ones."""
        if name not in self._centroids:
            raise SynthError(f"timbre space: no instrument {name!r} (known: {', '.join(self.instruments)})")
        return self._centroids[name].copy()

    def clamp(self, z) -> np.ndarray:
        """z [D], each component clamped to -Z_LIMIT..Z_LIMIT."""
        z = np.asarray(z, np.float64)
        if z.shape != (self.latent_dims,) or not np.all(np.isfinite(z)):
            raise SynthError(f"timbre space: z must be {self.latent_dims} finite numbers, got {z.tolist()}")
        return np.clip(z, -Z_LIMIT, Z_LIMIT)

    def from_xy(self, x: float, y: float) -> np.ndarray:
        """z [D] at plane position (x, y), each 0..1 (clamped): the mean plus (x - 0.5) * 2 *
        XY_SPAN_STD standard deviations along the first axis, likewise y along the second."""
        x, y = min(max(float(x), 0.0), 1.0), min(max(float(y), 0.0), 1.0)
        z = self.mean.copy()
        for position, axis, std in ((x, self.axes[0], self.axis_std[0]), (y, self.axes[1], self.axis_std[1])):
            z += (position - 0.5) * 2.0 * XY_SPAN_STD * std * axis
        return self.clamp(z)

    def to_xy(self, z) -> tuple[float, float]:
        """The plane position (x, y) of z [D] (not clamped: outside 0..1 is beyond the span)."""
        offset = np.asarray(z, np.float64) - self.mean
        return tuple(float(0.5 + offset @ self.axes[i] / (2.0 * XY_SPAN_STD * max(self.axis_std[i], 1e-9)))
                     for i in (0, 1))

    def morph(self, first: str, second: str, amount: float) -> np.ndarray:
        """(1 - amount) * centroid(first) + amount * centroid(second), amount clamped to 0..1."""
        amount = min(max(float(amount), 0.0), 1.0)
        return self.clamp((1.0 - amount) * self.centroid(first) + amount * self.centroid(second))

    def nearest(self, z, count: int = 3) -> list[tuple[str, float]]:
        """The `count` instruments whose centroids are nearest z: (name, Euclidean distance)."""
        z = np.asarray(z, np.float64)
        ranked = sorted((float(np.linalg.norm(c - z)), name) for name, c in self._centroids.items())
        return [(name, distance) for distance, name in ranked[:count]]


def load_timbre_space(path) -> TimbreSpace:
    """The TimbreSpace of the model at `path` (its .json, .safetensors or stem)."""
    _, json_path = model_paths(path)
    meta = read_metadata(json_path)
    check_vae_metadata(meta, str(json_path))
    return TimbreSpace(meta, json_path)
