"""Monotonic alignment search and the aligner: durations measured from the audio."""

import numpy as np
import pytest
import torch

from models.alignment import Aligner, align, even_durations, frame_log_likelihood
from synth.errors import SynthError


def brute_force_best(log_likelihood):
    """The best monotonic path's total by trying every composition of T into N positive parts."""
    tokens, frames = log_likelihood.shape

    def best(i, t):
        if i == tokens:
            return 0.0 if t == frames else -np.inf
        result = -np.inf
        for length in range(1, frames - t - (tokens - i - 1) + 1):
            result = max(result, log_likelihood[i, t:t + length].sum() + best(i + 1, t + length))
        return result

    return best(0, 0)


@pytest.mark.parametrize("tokens, frames", [(1, 1), (1, 7), (3, 3), (3, 9), (4, 11)])
def test_the_path_is_the_best_monotonic_one(tokens, frames):
    rng = np.random.default_rng(tokens * 100 + frames)
    likelihood = rng.standard_normal((tokens, frames))
    durations = align(likelihood)
    assert durations.min() >= 1 and durations.sum() == frames
    path = np.repeat(np.arange(tokens), durations)
    assert likelihood[path, np.arange(frames)].sum() == pytest.approx(brute_force_best(likelihood))


def test_it_recovers_the_durations_of_noisy_frames():
    rng = np.random.default_rng(0)
    true = np.array([3, 10, 5, 1, 12, 9])
    means = rng.standard_normal((true.size, 16)) * 3
    frames = means[np.repeat(np.arange(true.size), true)] + 0.5 * rng.standard_normal((true.sum(), 16))
    likelihood = frame_log_likelihood(torch.from_numpy(means), torch.from_numpy(frames)).numpy()
    np.testing.assert_array_equal(align(likelihood), true)


def test_even_durations_and_errors():
    np.testing.assert_array_equal(even_durations(4, 10), [2, 3, 3, 2])
    assert even_durations(3, 3).tolist() == [1, 1, 1]
    with pytest.raises(SynthError, match="5 tokens cannot fit in 4 frames"):
        align(np.zeros((5, 4)))


def test_the_aligner_learns_to_find_token_boundaries():
    """Three tokens whose frames differ: after a short training on the found alignments the
    aligner's durations match the truth of an utterance it never saw."""
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    prototypes = rng.standard_normal((5, 128)).astype(np.float32) * 2
    aligner = Aligner(5, width=32)
    optimizer = torch.optim.Adam(aligner.parameters(), lr=1e-2)

    def utterance():
        ids = rng.integers(2, 5, size=6)
        durations = rng.integers(2, 9, size=6)
        frames = prototypes[np.repeat(ids, durations)] + 0.3 * rng.standard_normal((durations.sum(), 128))
        return ids, durations, frames.astype(np.float32)

    for step in range(150):
        ids, _, frames = utterance()
        means = aligner(torch.from_numpy(ids)[None])[0]
        likelihood = frame_log_likelihood(means, torch.from_numpy(frames))
        durations = even_durations(6, frames.shape[0]) if step < 15 else align(likelihood.detach().numpy())
        path = np.repeat(np.arange(6), durations)
        loss = -likelihood[path, np.arange(frames.shape[0])].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    ids, truth, frames = utterance()
    with torch.no_grad():
        found = align(frame_log_likelihood(aligner(torch.from_numpy(ids)[None])[0], torch.from_numpy(frames)).numpy())
    # neighbours with the same token cannot be told apart: compare the boundaries between different ones
    boundaries = lambda d: {int(b) for b, a, c in zip(np.cumsum(d)[:-1], ids[:-1], ids[1:]) if a != c}  # noqa: E731
    assert boundaries(found) == boundaries(truth)
