"""Filtered noise for the decoder: white noise shaped by a frame's band magnitudes (DDSP-style).

One frame's `noise_bands` (NB) magnitudes, linear, sampled at 0, sr/(2*(NB-1)), ..., sr/2 Hz, define
a zero-phase FIR by frequency sampling: the inverse real DFT of the magnitudes gives L = 2*(NB-1)
taps centred on tap 0; rolled by NB-1 and multiplied by a periodic Hann window of length L, they
become a causal filter whose centre, and so its group delay, is NB-1 samples (64 samples, 1.33 ms at
48 kHz for the default 65 bands). Each block of white noise is convolved with its frame's filter
and the convolution tails overlap-add into the next blocks, so the output has no seams.

`filtered_noise_block` is the realtime twin of models.ddsp_synth.filtered_noise: called once per
hop with frame k's magnitudes on block k of the same white noise it gives the same samples (float32
rounding). Calling it on consecutive sub-blocks with the same magnitudes gives the same result as
one call on the whole block, so the caller's block size need not be the hop.
"""

import math

import numpy as np
from numba import njit

from synth.errors import SynthError

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


def noise_filter_length(noise_bands: int) -> int:
    """Taps of the filter made from `noise_bands` magnitudes: 2 * (noise_bands - 1)."""
    return 2 * (int(noise_bands) - 1)


def noise_delay_samples(noise_bands: int) -> int:
    """Group delay (samples) of the filtered noise against its frames: noise_bands - 1."""
    return int(noise_bands) - 1


def make_noise_state(noise_bands: int) -> tuple[np.ndarray, np.ndarray]:
    """(taps_scratch float64 [3 * L], overlap_state float64 [L - 1]) for one voice, L the filter
    length; the state starts silent. Raises SynthError unless noise_bands is an integer >= 2."""
    if isinstance(noise_bands, bool) or not isinstance(noise_bands, (int, np.integer)) or noise_bands < 2:
        raise SynthError(f"filtered_noise: noise_bands={noise_bands!r} must be an integer >= 2")
    length = noise_filter_length(noise_bands)
    return np.zeros(3 * length), np.zeros(length - 1)


def filtered_noise_block(out, n, white, magnitudes, taps_scratch, overlap_state):
    """Add (+=) n samples of filtered noise into out[0:n] (float32 [>= n]).

    white: float32 [>= n] white noise of this block (samples 0..n-1 are used).
    magnitudes: float32 [NB] linear band magnitudes of the frame (NB >= 2, DC to Nyquist).
    taps_scratch: float64 [>= 3 * L], L = 2 * (NB - 1): cosine table, window and taps (scratch).
    overlap_state: float64 [L - 1]: the tails of earlier blocks' convolutions that fall on the
    samples after them (state in, state out: zeros at the start of a note).
    The output lags the noise and its frame by noise_delay_samples(NB) = NB - 1 samples. Allocates
    nothing; raises SynthError on wrong shapes or dtypes (checked before any work).
    """
    bands = magnitudes.shape[0] if magnitudes.ndim == 1 else 0
    length = 2 * (bands - 1)
    if not (out.ndim == 1 and white.ndim == 1 and bands >= 2 and 0 <= n <= out.shape[0]
            and n <= white.shape[0] and out.dtype is _F32 and white.dtype is _F32
            and magnitudes.dtype is _F32 and taps_scratch.dtype is _F64 and overlap_state.dtype is _F64
            and taps_scratch.ndim == 1 and taps_scratch.shape[0] >= 3 * length
            and overlap_state.ndim == 1 and overlap_state.shape[0] == length - 1
            and out.flags.c_contiguous and white.flags.c_contiguous and magnitudes.flags.c_contiguous
            and taps_scratch.flags.c_contiguous and overlap_state.flags.c_contiguous):
        _check_inputs(out, n, white, magnitudes, taps_scratch, overlap_state)
    filtered_noise_kernel(out, int(n), white, magnitudes, taps_scratch, overlap_state)


def _check_inputs(out, n, white, magnitudes, taps_scratch, overlap_state):
    """Raise SynthError naming the first wrong argument of filtered_noise_block (the slow path)."""
    for name, arr, dtype in (("out", out, np.float32), ("white", white, np.float32),
                             ("magnitudes", magnitudes, np.float32), ("taps_scratch", taps_scratch, np.float64),
                             ("overlap_state", overlap_state, np.float64)):
        if arr.ndim != 1 or arr.dtype != dtype or not arr.flags.c_contiguous:
            raise SynthError(f"filtered_noise: {name} must be a contiguous 1-D {np.dtype(dtype).name} array, "
                             f"got {arr.dtype} shape {arr.shape}")
    bands = magnitudes.shape[0]
    if bands < 2:
        raise SynthError(f"filtered_noise: magnitudes has {bands} bands, expected at least 2")
    length = 2 * (bands - 1)
    if not (0 <= n <= min(out.shape[0], white.shape[0])):
        raise SynthError(f"filtered_noise: n={n} samples must be within 0..{min(out.shape[0], white.shape[0])} "
                         f"(the lengths of out and white)")
    if taps_scratch.shape[0] < 3 * length:
        raise SynthError(f"filtered_noise: taps_scratch has {taps_scratch.shape[0]} values, expected at least "
                         f"{3 * length} for {bands} bands (make_noise_state)")
    if overlap_state.shape[0] != length - 1:
        raise SynthError(f"filtered_noise: overlap_state has {overlap_state.shape[0]} values, expected "
                         f"{length - 1} for {bands} bands (make_noise_state)")


@njit(nogil=True, cache=True)
def noise_taps(magnitudes, taps_scratch):
    """The frame's causal filter into taps_scratch[2L:3L] (L = 2*(NB-1)), computed in float64:
    tap i = h[|i - (NB-1)|] * sin(pi*i/L)**2, with h[d] = (m[0] + (-1)**d m[NB-1]
    + 2 sum_{k=1}^{NB-2} m[k] cos(2*pi*k*d/L)) / L the inverse real DFT of the magnitudes m.
    taps_scratch[0:L] and [L:2L] receive the cosine table and the window."""
    bands = magnitudes.shape[0]
    length = 2 * (bands - 1)
    centre = bands - 1
    for j in range(length):
        taps_scratch[j] = math.cos(2.0 * math.pi * j / length)
        s = math.sin(math.pi * j / length)
        taps_scratch[length + j] = s * s
    last = float(magnitudes[bands - 1])
    first = float(magnitudes[0])
    inv_length = 1.0 / length
    for d in range(centre + 1):
        acc = 0.0
        index = 0
        for k in range(1, bands - 1):
            index += d
            if index >= length:
                index -= length
            acc += float(magnitudes[k]) * taps_scratch[index]
        h = (first + (last if d % 2 == 0 else -last) + 2.0 * acc) * inv_length
        # tap centre - d and centre + d (the same tap when d is 0 or NB-1: i = 0 wraps to L)
        taps_scratch[2 * length + centre - d] = h * taps_scratch[length + centre - d]
        if centre + d < length:
            taps_scratch[2 * length + centre + d] = h * taps_scratch[length + centre + d]


@njit(nogil=True, cache=True)
def filtered_noise_kernel(out, n, white, magnitudes, taps_scratch, overlap_state):
    """filtered_noise_block without the checks: direct convolution in float64, tails carried."""
    if n <= 0:
        return
    noise_taps(magnitudes, taps_scratch)
    length = 2 * (magnitudes.shape[0] - 1)
    taps = taps_scratch[2 * length:3 * length]
    tail = length - 1
    for i in range(n):
        acc = overlap_state[i] if i < tail else 0.0
        for j in range(min(i + 1, length)):
            acc += taps[j] * white[i - j]
        out[i] += acc
    # new tail: time n + t receives what is left of the old tail there and this block's convolution
    for t in range(tail):
        i = n + t
        acc = overlap_state[i] if i < tail else 0.0
        for j in range(i - n + 1, min(i + 1, length)):
            acc += taps[j] * white[i - j]
        overlap_state[t] = acc


def compile_filtered_noise() -> None:
    """Compile (or load from numba's cache) the kernels here; call before the audio stream starts."""
    scratch, state = make_noise_state(3)
    out = np.zeros(4, dtype=np.float32)
    filtered_noise_block(out, 4, np.ones(4, dtype=np.float32), np.ones(3, dtype=np.float32), scratch, state)
