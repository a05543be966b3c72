"""The conditioned waveform decoder: per frame, (f0 in Hz, loudness in dB, timbre z) -> synthesis
controls (amplitude, harmonic distribution, noise band magnitudes), DDSP-style, strictly causal.

Frames: hop_samples apart at sample_rate; frame k's controls are the values the synthesiser reaches
at the end of block k (models.ddsp_synth). The network (in1, in2 -> GRU -> out1 on the GRU output
beside in2's output, out2 -> head) and its output nonlinearities are written down once in
synth.dsp.decoder_runtime, whose numpy runtime must give the same numbers; the constants come from
there. One call serves a whole sequence or a streaming chunk: pass the returned state back in.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from synth.dsp.decoder_runtime import (
    EXP_SIGMOID_EXPONENT,
    EXP_SIGMOID_FLOOR,
    EXP_SIGMOID_MAX,
    F0_FLOOR_HZ,
    LAYER_NORM_EPS,
    LEAKY_SLOPE,
    MEL_CENTER,
    MEL_SPREAD,
    NOISE_BIAS,
    check_config,
)
from synth.errors import SynthError


@dataclass
class DecoderConfig:
    """sample_rate (Hz) and hop_samples (samples per frame) of the frames; harmonics (H) and
    noise_bands (NB) of the controls; hidden: GRU and MLP width; latent_dims: size of z (0: none);
    instruments: names with a learned z each (instrument_embedding) when latent_dims > 0;
    f0_range_hz, loudness_range_db: the ranges seen in training, which the inputs are scaled by;
    mel_bands: log-mel bands read each frame beside f0 and loudness (0: none; speech needs them)."""

    sample_rate: int = 48000
    hop_samples: int = 256
    harmonics: int = 64
    noise_bands: int = 65
    hidden: int = 192
    latent_dims: int = 0
    instruments: list[str] = field(default_factory=list)
    f0_range_hz: tuple[float, float] = (30.0, 2000.0)
    loudness_range_db: tuple[float, float] = (-80.0, 0.0)
    mel_bands: int = 0

    @property
    def frame_rate_hz(self) -> float:
        """Frames per second: sample_rate / hop_samples."""
        return self.sample_rate / self.hop_samples

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (ranges as lists)."""
        data = asdict(self)
        data["instruments"] = list(self.instruments)
        data["f0_range_hz"] = [float(x) for x in self.f0_range_hz]
        data["loudness_range_db"] = [float(x) for x in self.loudness_range_db]
        return data

    @classmethod
    def from_dict(cls, data: dict, where: str = "decoder config") -> DecoderConfig:
        """Config from a dict like to_dict()'s; SynthError naming `where` and the key if invalid."""
        clean = check_config(data, where)
        clean["f0_range_hz"] = tuple(clean["f0_range_hz"])
        clean["loudness_range_db"] = tuple(clean["loudness_range_db"])
        return cls(**clean)


def exp_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """2 * sigmoid(x) ** ln(10) + 1e-7: a positive, bounded scale (0 .. 2) spanning decades."""
    return EXP_SIGMOID_MAX * torch.sigmoid(x) ** EXP_SIGMOID_EXPONENT + EXP_SIGMOID_FLOOR


def nyquist_masked_softmax(logits: torch.Tensor, f0_hz: torch.Tensor, sample_rate: float) -> torch.Tensor:
    """Softmax over the last axis of logits [B, T, H]; harmonic h (1-based) of f0_hz [B, T] (Hz) at
    or above sample_rate / 2 set to 0 and the rest renormalised to sum 1 (all 0 if none is below)."""
    numbers = torch.arange(1, logits.shape[-1] + 1, device=logits.device, dtype=f0_hz.dtype)
    below = (f0_hz[..., None] * numbers < 0.5 * sample_rate).to(logits.dtype)
    masked = torch.softmax(logits, dim=-1) * below
    total = masked.sum(dim=-1, keepdim=True)
    return masked / (total + (total == 0).to(total.dtype))


class Decoder(nn.Module):
    """Conditioning frames -> controls. Weights are named as synth.dsp.decoder_runtime's
    expected_weight_shapes lists them (in1.weight, in1_norm.weight, gru.weight_ih_l0, ...)."""

    def __init__(self, config: DecoderConfig):
        super().__init__()
        config = DecoderConfig.from_dict(config.to_dict())  # validated copy
        self.config = config
        hidden = config.hidden
        self.in1 = nn.Linear(2 + config.latent_dims + config.mel_bands, hidden)
        self.in1_norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)
        self.in2 = nn.Linear(hidden, hidden)
        self.in2_norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)
        self.gru = nn.GRU(hidden, hidden, num_layers=1, batch_first=True)
        self.out1 = nn.Linear(2 * hidden, hidden)
        self.out1_norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)
        self.out2 = nn.Linear(hidden, hidden)
        self.out2_norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)
        self.head = nn.Linear(hidden, 1 + config.harmonics + config.noise_bands)
        self.instrument_embedding = (nn.Embedding(len(config.instruments), config.latent_dims)
                                     if config.instruments and config.latent_dims > 0 else None)
        self.register_buffer("_log_f0_range", torch.tensor([math.log(x) for x in config.f0_range_hz]),
                             persistent=False)
        self.register_buffer("_loudness_range", torch.tensor(list(config.loudness_range_db)), persistent=False)

    def instrument_latent(self, name: str) -> torch.Tensor:
        """The learned z [latent_dims] of instrument `name`; SynthError if the model has none."""
        if self.instrument_embedding is None or name not in self.config.instruments:
            raise SynthError(f"decoder: instrument={name!r} is not in the model (known: {self.config.instruments})")
        return self.instrument_embedding.weight[self.config.instruments.index(name)]

    def _layer(self, x: torch.Tensor, linear: nn.Linear, norm: nn.LayerNorm) -> torch.Tensor:
        return nn.functional.leaky_relu(norm(linear(x)), LEAKY_SLOPE)

    def forward(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, z: torch.Tensor | None = None,
                state: torch.Tensor | None = None, mel: torch.Tensor | None = None) -> tuple[dict, torch.Tensor]:
        """f0_hz [B, T] (Hz), loudness_db [B, T] (dB), z [B, T, latent_dims] (required when
        latent_dims > 0), state: GRU hidden [1, B, hidden] from the previous call or None (zeros),
        mel [B, T, mel_bands] log-mel frames (required when mel_bands > 0).
        Returns ({"amplitude": [B, T], "harmonics": [B, T, H], "noise": [B, T, NB]}, new state)."""
        config = self.config
        if f0_hz.dim() != 2 or loudness_db.shape != f0_hz.shape:
            raise SynthError(f"decoder: f0_hz {list(f0_hz.shape)} and loudness_db {list(loudness_db.shape)} "
                             f"must both be [batch, frames]")
        if config.latent_dims > 0:
            if z is None or z.shape != (*f0_hz.shape, config.latent_dims):
                got = None if z is None else list(z.shape)
                raise SynthError(f"decoder: z must be [batch, frames, {config.latent_dims}], got {got}")
        elif z is not None and z.shape[-1] != 0:
            raise SynthError(f"decoder: this model takes no z (latent_dims=0), got {list(z.shape)}")
        log_f0 = torch.log(f0_hz.clamp(min=F0_FLOOR_HZ))
        lo, hi = self._log_f0_range[0], self._log_f0_range[1]
        f0_norm = 2.0 * (log_f0 - lo) / (hi - lo) - 1.0
        db_lo, db_hi = self._loudness_range[0], self._loudness_range[1]
        loud_norm = 2.0 * (loudness_db - db_lo) / (db_hi - db_lo) - 1.0
        parts = [f0_norm[..., None], loud_norm[..., None]]
        if config.latent_dims > 0:
            parts.append(z.to(f0_norm.dtype))
        if config.mel_bands > 0:
            if mel is None or mel.shape != (*f0_hz.shape, config.mel_bands):
                got = None if mel is None else list(mel.shape)
                raise SynthError(f"decoder: mel must be [batch, frames, {config.mel_bands}], got {got}")
            parts.append((mel.to(f0_norm.dtype) - MEL_CENTER) / MEL_SPREAD)
        x = self._layer(torch.cat(parts, dim=-1), self.in1, self.in1_norm)
        x = self._layer(x, self.in2, self.in2_norm)
        y, new_state = self.gru(x, state)
        y = self._layer(torch.cat([y, x], dim=-1), self.out1, self.out1_norm)
        y = self._layer(y, self.out2, self.out2_norm)
        out = self.head(y)
        harmonics = config.harmonics
        controls = {
            "amplitude": exp_sigmoid(out[..., 0]),
            "harmonics": nyquist_masked_softmax(out[..., 1:1 + harmonics], f0_hz, config.sample_rate),
            "noise": exp_sigmoid(out[..., 1 + harmonics:] + NOISE_BIAS),
        }
        return controls, new_state
