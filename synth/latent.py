"""`synth latent PLOT.png` and `synth encode IN.wav`: where instruments and sounds lie in the timbre space.

The timbre model (models.vae) stores every training note's posterior mean and the principal axes
of those means; the plot draws them on the plane of the first two axes, in the /latent/xy
coordinates a controller's XY pad sends, coloured by instrument family, with each instrument's
name at its centroid. Encoding a sound runs the encoder (numpy, synth.dsp.timbre_encoder) on its
log-mel frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synth.dsp.timbre_space import TimbreSpace, load_timbre_space
from synth.errors import SynthError
from synth.io.atomic import atomic_path

DEFAULT_TIMBRE_MODEL = Path(__file__).resolve().parent.parent / "presets" / "models" / "gm-vae.json"


def plot_latent(out_png, model=DEFAULT_TIMBRE_MODEL) -> Path:
    """Write a PNG of the training notes' posterior means on the plane of the two main axes
    (x, y as /latent/xy takes them), coloured by family, names at the instruments' centroids."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    space = load_timbre_space(model)
    points = np.array([space.to_xy(z) for z in space.posterior_means])
    families = sorted(set(space.families.values()))
    colours = plt.get_cmap("tab10" if len(families) <= 10 else "tab20")
    figure, axes = plt.subplots(figsize=(9, 8), dpi=110)
    for index, family in enumerate(families):
        mine = [i for i, label in enumerate(space.labels) if space.families[label] == family]
        axes.scatter(points[mine, 0], points[mine, 1], s=18, alpha=0.55, color=colours(index), label=family)
    for name in space.instruments:
        x, y = space.to_xy(space.centroid(name))
        colour = colours(families.index(space.families[name]))
        axes.scatter([x], [y], s=60, marker="x", color=colour)
        axes.annotate(name.replace("_", " "), (x, y), fontsize=8, xytext=(4, 3), textcoords="offset points")
    variance = space.axis_std ** 2
    share = variance / variance.sum()
    axes.set_xlabel(f"/latent/xy x: first principal axis ({100 * share[0]:.0f}% of the variance)")
    axes.set_ylabel(f"/latent/xy y: second principal axis ({100 * share[1]:.0f}% of the variance)")
    axes.set_title(f"Timbre space of {space.json_path.name}: {len(space.labels)} training notes, "
                   f"{len(space.instruments)} instruments")
    axes.axvspan(0, 1, color="0.95", zorder=-1)
    axes.legend(loc="best", fontsize=8, title="family")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    out_png = Path(out_png)
    if out_png.suffix.lower() != ".png":
        raise SynthError(f"{out_png}: the plot is a PNG; name it .png")
    with atomic_path(out_png) as temp:
        figure.savefig(temp, format="png")
    plt.close(figure)
    return out_png


def encode_file(in_wav, model=DEFAULT_TIMBRE_MODEL) -> list[str]:
    """Lines describing the timbre of an audio file (mixed to mono, resampled to 48 kHz): its z,
    its /latent/xy position and the nearest instruments."""
    from synth.dsp.timbre_encoder import SAMPLE_RATE_HZ, load_timbre_encoder
    from synth.io.audiofile import read_audio

    encoder = load_timbre_encoder(model)
    space = TimbreSpace(encoder.metadata, Path(model).with_suffix(".json"))
    data, rate = read_audio(in_wav)
    mono = data.mean(axis=1, dtype=np.float64)
    if rate != SAMPLE_RATE_HZ:
        from synth.transfer import resample_audio

        mono = resample_audio(mono, rate, SAMPLE_RATE_HZ)
    mean, log_variance = encoder.encode_audio(mono)
    x, y = space.to_xy(mean)
    nearest = ", ".join(f"{name} ({distance:.2f})" for name, distance in space.nearest(mean))
    return [f"z = {' '.join(f'{v:.3f}' for v in mean)}",
            f"posterior std = {' '.join(f'{v:.3f}' for v in np.exp(0.5 * log_variance))}",
            f"/latent/xy {x:.3f} {y:.3f}",
            f"nearest instruments: {nearest}",
            f"send it: /latent {' '.join(f'{v:.3f}' for v in mean)}"]
