"""Numba kernels and pure array functions. Kernels keep no hidden state: callers pass state arrays
in, and the kernels update them in place. All audio buffers are float32; `n` is the number of
samples to process, starting at index 0, so callers never slice (no allocation on the audio path).
"""
