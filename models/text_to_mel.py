"""Text to mel, f0 and loudness: a small non-autoregressive model of the FastSpeech 2 family.

tokens [N] -> embedding + sinusoidal positions -> encoder (feed-forward transformer blocks: self
attention, then two 1-D convolutions) -> variance adaptor: per token, predictors of the log
duration (frames), the mean log f0 of its voiced frames and its mean loudness, the last two
embedded and added back (FastPitch's token-level variant of FastSpeech 2's) -> length regulator
(each token repeated for its duration) -> decoder (convolution blocks on frames) -> per frame: 128
log-mel bands, log f0 (standardised), a voicing logit and loudness (standardised).

So one forward pass gives what the waveform decoder needs: mel + f0 (Hz) + loudness (dB). The
durations it learns are the aligner's (models.alignment): measured on the recordings.

Model files: `<stem>.safetensors` + `<stem>.json` (kind "synth.text_to_mel": the config with the
vocabulary and the feature statistics, the training command), loaded without unpickling.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from synth.dsp.decoder_runtime import check_kind, model_paths, read_metadata
from synth.errors import SynthError

TTS_KIND = "synth.text_to_mel"
TTS_FORMAT_VERSION = 1
MEL_BANDS = 128
STRESS_LEVELS = 3  # none, primary, secondary (models.text.split_stress)


@dataclass
class TextToMelConfig:
    """vocabulary: models.text.Vocabulary.to_dict(); width: model width; heads; encoder_blocks,
    decoder_blocks; kernel, decoder_kernel: the encoder's and the frame decoder's first convolution
    widths; expansion: its channels over the width; dropout; statistics:
    log_f0_mean, log_f0_std (natural log of Hz over voiced frames), loudness_mean_db,
    loudness_std_db, mel_mean and mel_std [128] (per band), frame_rate_hz; stress: whether each
    token's stress level (models.text.split_stress: 0 none, 1 primary, 2 secondary) is embedded
    beside it, the vocabulary holding plain phonemes (False: the stress marks are joined to the
    phonemes in the vocabulary, as in the first shipped model)."""

    vocabulary: dict = field(default_factory=dict)
    width: int = 128
    heads: int = 2
    encoder_blocks: int = 3
    decoder_blocks: int = 3
    kernel: int = 3
    decoder_kernel: int = 9
    expansion: int = 2
    dropout: float = 0.1
    statistics: dict = field(default_factory=dict)
    stress: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def sinusoids(length: int, width: int, device=None) -> torch.Tensor:
    """[length, width] sinusoidal position codes."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / width))
    codes = torch.zeros(length, width, device=device)
    codes[:, 0::2] = torch.sin(position * rate)
    codes[:, 1::2] = torch.cos(position * rate)
    return codes


class Block(nn.Module):
    """Self attention (heads > 0) and a two-layer convolution, each residual with LayerNorm after
    it. The frame decoder's blocks have no attention (heads 0): on hundreds of frames it cost most
    of a training step, and the wide convolutions see 150 ms around each frame."""

    def __init__(self, width: int, heads: int, kernel: int, expansion: int, dropout: float):
        super().__init__()
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True) if heads else None
        self.norm1 = nn.LayerNorm(width)
        self.conv1 = nn.Conv1d(width, expansion * width, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(expansion * width, width, 1)
        self.norm2 = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        if self.attention is not None:
            attended, _ = self.attention(x, x, x, key_padding_mask=padding, need_weights=False)
            x = self.norm1(x + self.dropout(attended))
        y = self.conv2(torch.relu(self.conv1(x.transpose(1, 2)))).transpose(1, 2)
        x = self.norm2(x + self.dropout(y))
        return x.masked_fill(padding[..., None], 0.0)


class Predictor(nn.Module):
    """Two convolutions with ReLU, LayerNorm and dropout, then one value per position."""

    def __init__(self, width: int, kernel: int = 3, dropout: float = 0.1):
        super().__init__()
        self.conv1 = nn.Conv1d(width, width, kernel, padding=kernel // 2)
        self.norm1 = nn.LayerNorm(width)
        self.conv2 = nn.Conv1d(width, width, kernel, padding=kernel // 2)
        self.norm2 = nn.LayerNorm(width)
        self.out = nn.Linear(width, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        y = self.dropout(self.norm1(torch.relu(self.conv1(x.transpose(1, 2)).transpose(1, 2))))
        y = self.dropout(self.norm2(torch.relu(self.conv2(y.transpose(1, 2)).transpose(1, 2))))
        return self.out(y)[..., 0].masked_fill(padding, 0.0)


def regulate(x: torch.Tensor, durations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeat token i of x [B, N, W] durations[b, i] times: (frames [B, T, W], padding [B, T])."""
    lengths = durations.sum(dim=1)
    longest = int(lengths.max()) if lengths.numel() else 0
    out = x.new_zeros(x.shape[0], max(longest, 1), x.shape[2])
    for b in range(x.shape[0]):
        expanded = torch.repeat_interleave(x[b], durations[b], dim=0)
        out[b, :expanded.shape[0]] = expanded
    padding = torch.arange(out.shape[1], device=x.device)[None] >= lengths[:, None]
    return out, padding


class TextToMel(nn.Module):
    """See the module docstring. forward(tokens [B, N], durations, token_f0, token_loudness, stress)
    teacher-forces the three (training); infer() predicts them. stress [B, N] int64 levels, for
    a config with stress (None: unstressed throughout)."""

    def __init__(self, config: TextToMelConfig):
        super().__init__()
        self.config = config
        symbols = len(config.vocabulary.get("symbols", []))
        if symbols < 3:
            raise SynthError("text-to-mel config: the vocabulary needs symbols beyond <pad> and <unk>")
        w = config.width
        self.embedding = nn.Embedding(symbols, w, padding_idx=0)
        self.stress_embedding = nn.Embedding(STRESS_LEVELS, w) if config.stress else None
        self.encoder = nn.ModuleList(Block(w, config.heads, config.kernel, config.expansion, config.dropout)
                                     for _ in range(config.encoder_blocks))
        self.duration = Predictor(w, dropout=config.dropout)
        self.pitch = Predictor(w, dropout=config.dropout)
        self.energy = Predictor(w, dropout=config.dropout)
        self.pitch_embedding = nn.Conv1d(1, w, 3, padding=1)
        self.energy_embedding = nn.Conv1d(1, w, 3, padding=1)
        self.decoder = nn.ModuleList(Block(w, 0, config.decoder_kernel, config.expansion, config.dropout)
                                     for _ in range(config.decoder_blocks))
        self.head = nn.Linear(w, MEL_BANDS + 3)

    def encode(self, tokens: torch.Tensor, stress: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        padding = tokens == 0
        x = self.embedding(tokens) + sinusoids(tokens.shape[1], self.config.width, tokens.device)[None]
        if self.stress_embedding is not None:
            x = x + self.stress_embedding(stress if stress is not None else torch.zeros_like(tokens))
        for block in self.encoder:
            x = block(x, padding)
        return x, padding

    def _decode(self, x, padding, token_f0, token_loudness, durations) -> dict:
        x = x + self.pitch_embedding(token_f0[:, None, :]).transpose(1, 2)
        x = x + self.energy_embedding(token_loudness[:, None, :]).transpose(1, 2)
        frames, frame_padding = regulate(x, durations)
        frames = frames + sinusoids(frames.shape[1], self.config.width, frames.device)[None]
        for block in self.decoder:
            frames = block(frames, frame_padding)
        out = self.head(frames)
        return {"mel": out[..., :MEL_BANDS], "log_f0": out[..., MEL_BANDS], "voiced_logit": out[..., MEL_BANDS + 1],
                "loudness": out[..., MEL_BANDS + 2], "frame_padding": frame_padding}

    def forward(self, tokens, durations, token_f0, token_loudness, stress=None) -> dict:
        """Training pass. tokens [B, N] int64; durations [B, N] int64 frames; token_f0,
        token_loudness [B, N] standardised targets. Returns the frame outputs (standardised: mel
        per band, log f0, loudness) plus the token predictions log_duration, token_f0, token_loudness."""
        x, padding = self.encode(tokens, stress)
        predictions = {"log_duration": self.duration(x, padding), "token_f0": self.pitch(x, padding),
                       "token_loudness": self.energy(x, padding)}
        return self._decode(x, padding, token_f0, token_loudness, durations) | predictions

    @torch.no_grad()
    def infer(self, tokens: torch.Tensor, rate: float = 1.0, pitch_shift_semitones: float = 0.0,
              durations: torch.Tensor | None = None, token_f0: torch.Tensor | None = None,
              stress: torch.Tensor | None = None) -> dict:
        """One utterance: tokens [1, N]. rate: speaking speed (durations divided by it);
        pitch_shift_semitones moves the predicted pitch; durations / token_f0 [1, N] override the
        predictions (singing: the notes' timing and pitch, token_f0 standardised). Returns
        standardised outputs as forward() does, and the durations used. stress [1, N] as forward's."""
        x, padding = self.encode(tokens, stress)
        if durations is None:
            predicted = torch.exp(self.duration(x, padding)) - 1.0
            durations = torch.clamp(torch.round(predicted / rate), min=1).long().masked_fill(padding, 0)
        if token_f0 is None:
            shift = math.log(2.0) * pitch_shift_semitones / 12.0 / self.config.statistics["log_f0_std"]
            token_f0 = self.pitch(x, padding) + shift
        out = self._decode(x, padding, token_f0, self.energy(x, padding), durations)
        out["durations"] = durations
        return out


def to_features(config: TextToMelConfig, out: dict) -> dict[str, np.ndarray]:
    """The standardised frame outputs of one utterance as the waveform decoder's inputs: mel
    float32 [T, 128] (log power), f0_hz [T] (held through unvoiced frames), voiced bool [T],
    loudness_db [T]."""
    stats = config.statistics
    mel = out["mel"][0].numpy() * np.asarray(stats["mel_std"], np.float32) + np.asarray(stats["mel_mean"], np.float32)
    f0 = np.exp(out["log_f0"][0].numpy() * stats["log_f0_std"] + stats["log_f0_mean"]).astype(np.float32)
    voiced = out["voiced_logit"][0].numpy() > 0.0
    loudness = (out["loudness"][0].numpy() * stats["loudness_std_db"] + stats["loudness_mean_db"]).astype(np.float32)
    return {"mel": mel.astype(np.float32), "f0_hz": f0, "voiced": voiced, "loudness_db": loudness}


def save_text_to_mel(model: TextToMel, path_stem, extra_metadata: dict | None = None) -> tuple[Path, Path]:
    """Write `<stem>.safetensors` and `<stem>.json` (kind synth.text_to_mel), each atomically."""
    from models.model_files import write_model_files

    meta = {"format_version": TTS_FORMAT_VERSION, "kind": TTS_KIND, "config": model.config.to_dict(),
            **(extra_metadata or {})}
    return write_model_files(path_stem, model, meta)


def load_text_to_mel(path_stem) -> tuple[TextToMel, dict]:
    """(model in eval mode, metadata) from the files at `path_stem`; never unpickles. SynthError
    naming the file and the key or weight that does not fit."""
    from models.model_files import load_weights_into

    weights_path, json_path = model_paths(path_stem)
    meta = read_metadata(json_path)
    check_kind(meta, str(json_path), TTS_KIND, TTS_FORMAT_VERSION)
    try:
        model = TextToMel(TextToMelConfig(**meta["config"]))
    except TypeError as error:
        raise SynthError(f"{json_path}: key 'config' does not fit: {error}") from None
    for key in ("log_f0_mean", "log_f0_std", "loudness_mean_db", "loudness_std_db", "mel_mean", "mel_std"):
        if key not in model.config.statistics:
            raise SynthError(f"{json_path}: key 'config.statistics.{key}' is missing")
    return load_weights_into(model, weights_path).eval(), meta
