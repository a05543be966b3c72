"""Token durations from audio: a learned aligner and monotonic alignment search (MAS).

The aligner predicts, for each text token, the mean of the (standardised) log-mel frames it
sounds as, with unit variance; the log-likelihood of frame t under token i is then
-||x_t - mu_i||^2 / 2 (up to a constant). MAS finds the monotonic alignment (every token at
least one frame, in order, the first frame on the first token, the last on the last) that
maximises the summed log-likelihood, by dynamic programming (`monotonic_alignment`, numba). The
aligner trains on the alignment it finds (EM-like, as in Glow-TTS), starting from an even spread
of the frames over the tokens for its first steps. Its durations (frames per token) are what the
text-to-mel model learns to predict: computed from the recording, never guessed.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit
from torch import nn

from synth.errors import SynthError

_NEG = -1e30


@njit(nogil=True, cache=True)
def monotonic_alignment(log_likelihood, durations):
    """Fill durations [N] (int64, frames per token, each >= 1, summing to T) with the monotonic
    path through log_likelihood [N, T] (float32/64; N <= T) of the highest total. Returns the total."""
    tokens, frames = log_likelihood.shape
    value = np.full((tokens, frames), _NEG)
    value[0, 0] = log_likelihood[0, 0]
    for t in range(1, frames):
        first = max(0, tokens - (frames - t))
        for i in range(first, min(t + 1, tokens)):
            stay = value[i, t - 1]
            move = value[i - 1, t - 1] if i > 0 else _NEG
            value[i, t] = log_likelihood[i, t] + (stay if stay >= move else move)
    for i in range(tokens):
        durations[i] = 0
    i = tokens - 1
    for t in range(frames - 1, -1, -1):
        durations[i] += 1
        if t > 0 and i > 0 and (i == t or value[i - 1, t - 1] > value[i, t - 1]):
            i -= 1
    return value[tokens - 1, frames - 1]


def even_durations(tokens: int, frames: int) -> np.ndarray:
    """int64 [tokens] spreading `frames` as evenly as possible (each >= 1; tokens <= frames)."""
    edges = np.round(np.linspace(0, frames, tokens + 1)).astype(np.int64)
    return np.maximum(np.diff(edges), 1)


class Aligner(nn.Module):
    """Tokens [B, N] (int64, 0 = padding) -> per-token mel means [B, N, mel_bands]: an embedding and
    three 1-D convolutions (kernel 5) with LayerNorm and ReLU, then a linear layer."""

    def __init__(self, vocabulary_size: int, mel_bands: int = 128, width: int = 192):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, width, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(width, width, 5, padding=2) for _ in range(3))
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(3))
        self.out = nn.Linear(width, mel_bands)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embedding(tokens)
        for conv, norm in zip(self.convs, self.norms):
            x = torch.relu(norm(conv(x.transpose(1, 2)).transpose(1, 2))) + x
        return self.out(x)


def frame_log_likelihood(means: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
    """[N, T]: -||mel_t - means_i||^2 / 2 of standardised mel [T, M] under token means [N, M]."""
    return -0.5 * torch.cdist(means, mel).pow(2)


def expand(values: torch.Tensor, durations: torch.Tensor) -> torch.Tensor:
    """Repeat row i of values [N, ...] durations[i] times: [sum(durations), ...]."""
    return torch.repeat_interleave(values, durations, dim=0)


def align(log_likelihood: np.ndarray) -> np.ndarray:
    """Durations (int64 [N]) of the best monotonic path through log_likelihood [N, T]."""
    tokens, frames = log_likelihood.shape
    if tokens > frames:
        raise SynthError(f"alignment: {tokens} tokens cannot fit in {frames} frames (one frame each at least)")
    durations = np.zeros(tokens, dtype=np.int64)
    monotonic_alignment(np.ascontiguousarray(log_likelihood, dtype=np.float64), durations)
    return durations
