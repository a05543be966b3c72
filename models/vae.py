"""The timbre VAE: an encoder from a sound's mel frames to a timbre latent z that conditions the decoder.

The encoder reads log-mel frames (models.data.log_mel), removes each frame's level (its mean over
the bands) so z describes spectral shape rather than loudness, passes each frame through two
LayerNorm + LeakyReLU layers, averages the frames that lie within 40 dB of the excerpt's loudest,
and outputs the posterior mean and log variance of z (latent_dims, 2..16). One z holds for a whole
excerpt or note: it is the instrument, not the note's pitch or loudness (the decoder gets those).

Training (models.train_vae) is a beta-VAE with KL warm-up and free bits, jointly with the decoder.
A timbre model is two files like a decoder's: `<stem>.safetensors` (the encoder's float32 weights)
and `<stem>.json` (kind "synth.timbre_vae": the config, the decoder it conditions, each training
instrument's centroid and family, the principal axes of the training posterior means, those means
themselves for plotting, the KL per dimension). synth.dsp.timbre_space reads the JSON and
synth.dsp.timbre_encoder runs the encoder without torch (`synth encode`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from synth.dsp.decoder_runtime import LAYER_NORM_EPS, LEAKY_SLOPE, model_paths
from synth.dsp.timbre_encoder import LEVEL_RANGE_NATS, LOG_VARIANCE_RANGE, MEL_SCALE, check_encoder_config
from synth.dsp.timbre_space import VAE_FORMAT_VERSION, VAE_KIND, check_vae_metadata
from synth.errors import SynthError



@dataclass
class VaeConfig:
    """latent_dims: size of z (2..16); mel_bands: log-mel bands read (models.data's 128);
    hidden: width of the frame layers."""

    latent_dims: int = 8
    mel_bands: int = 128
    hidden: int = 128

    def __post_init__(self) -> None:
        check_encoder_config(asdict(self), "vae config")

    def to_dict(self) -> dict:
        return asdict(self)


class TimbreEncoder(nn.Module):
    """Log-mel frames [B, T, mel_bands] -> (posterior mean [B, D], log variance [B, D])."""

    def __init__(self, config: VaeConfig):
        super().__init__()
        self.config = config
        self.frame1 = nn.Linear(config.mel_bands, config.hidden)
        self.frame1_norm = nn.LayerNorm(config.hidden, eps=LAYER_NORM_EPS)
        self.frame2 = nn.Linear(config.hidden, config.hidden)
        self.frame2_norm = nn.LayerNorm(config.hidden, eps=LAYER_NORM_EPS)
        self.head = nn.Linear(config.hidden, 2 * config.latent_dims)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if mel.dim() != 3 or mel.shape[-1] != self.config.mel_bands or mel.shape[1] == 0:
            raise SynthError(f"timbre encoder: mel must be [batch, frames >= 1, {self.config.mel_bands}], "
                             f"got {list(mel.shape)}")
        level = mel.mean(dim=-1, keepdim=True)
        shape = (mel - level) / MEL_SCALE
        h = nn.functional.leaky_relu(self.frame1_norm(self.frame1(shape)), LEAKY_SLOPE)
        h = nn.functional.leaky_relu(self.frame2_norm(self.frame2(h)), LEAKY_SLOPE)
        loud = (level[..., 0] >= level[..., 0].amax(dim=1, keepdim=True) - LEVEL_RANGE_NATS).to(h.dtype)
        pooled = (h * loud[..., None]).sum(dim=1) / loud.sum(dim=1, keepdim=True)
        mean, log_variance = self.head(pooled).chunk(2, dim=-1)
        return mean, log_variance.clamp(*LOG_VARIANCE_RANGE)


def kl_per_dimension(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) of each latent dimension averaged over the batch, nats [D]."""
    return (0.5 * (mean ** 2 + log_variance.exp() - 1.0 - log_variance)).mean(dim=0)


def principal_axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean [D], axes [D, D] (rows, by falling variance, each with its largest entry positive),
    std [D] along each axis) of points [N, D]."""
    mean = points.mean(axis=0)
    _, singular, vt = np.linalg.svd(points - mean, full_matrices=True)
    signs = np.sign(vt[np.arange(vt.shape[0]), np.argmax(np.abs(vt), axis=1)])
    axes = vt * signs[:, None]
    std = np.zeros(points.shape[1])  # fewer points than dimensions: the last axes have no spread
    std[:singular.size] = singular / np.sqrt(max(points.shape[0] - 1, 1))
    return mean, axes, std


def save_vae(encoder: TimbreEncoder, path_stem, space: dict, extra_metadata: dict | None = None) -> tuple[Path, Path]:
    """Write `<stem>.safetensors` (encoder weights) and `<stem>.json` (kind synth.timbre_vae; the
    config plus `space`: decoder (path relative to the JSON), instruments {name: {family,
    centroid}}, mean, axes, axis_std, posterior_means, labels, kl_per_dim), each atomically."""
    from models.model_files import write_model_files

    meta = {"format_version": VAE_FORMAT_VERSION, "kind": VAE_KIND, "config": encoder.config.to_dict(), **space,
            **(extra_metadata or {})}
    check_vae_metadata(meta, str(model_paths(path_stem)[1]))
    return write_model_files(path_stem, encoder, meta)


def load_vae(path_stem) -> tuple[TimbreEncoder, dict]:
    """(encoder in eval mode, metadata) from the files at `path_stem`; never unpickles. SynthError
    naming the file and key that do not fit."""
    from models.model_files import load_weights_into
    from synth.dsp.decoder_runtime import read_metadata

    weights_path, json_path = model_paths(path_stem)
    meta = read_metadata(json_path)
    check_vae_metadata(meta, str(json_path))
    return load_weights_into(TimbreEncoder(VaeConfig(**meta["config"])), weights_path).eval(), meta
