"""Voices of harmonic partials driven by control frames, the way a neural model drives the synth.

A model (the conditioned decoder) emits, per voice and per frame, an f0 (Hz) and the linear
amplitudes of harmonics 1..H. `HarmonicBank` keeps each voice's last frame and its next one; each
`render` glides every harmonic from the one to the other over the block (frequency and amplitude
linear per sample, in synth.dsp.oscbank) with phases continuous, then the next frame becomes the
start. Nothing is allocated after construction.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from synth.dsp.oscbank import make_workspace, render_partials


@njit(nogil=True, cache=True)
def harmonic_controls(f0_hz, amplitudes, freq_out, amp_out):
    """Flatten one frame of every voice into partial controls: freq_out[v*H + k] = (k+1) * f0_hz[v]
    (Hz), amp_out[v*H + k] = amplitudes[v, k] (linear). f0_hz float [voices], amplitudes float
    [voices, H], outputs float32 [voices * H]."""
    harmonics = amplitudes.shape[1]
    for v in range(amplitudes.shape[0]):
        for k in range(harmonics):
            freq_out[v * harmonics + k] = (k + 1) * f0_hz[v]
            amp_out[v * harmonics + k] = amplitudes[v, k]


class HarmonicBank:
    """`voices` voices of `harmonics` harmonics. set_frame(v, f0_hz, amplitudes) sets a voice's next
    frame; render(out, n, sample_rate) adds n samples gliding from the previous frames to these."""

    def __init__(self, voices: int, harmonics: int):
        size = voices * harmonics
        self.f0_hz = np.zeros(voices)
        self.amplitudes = np.zeros((voices, harmonics))
        self._freq_start = np.zeros(size, dtype=np.float32)
        self._amp_start = np.zeros(size, dtype=np.float32)
        self._freq_end = np.zeros(size, dtype=np.float32)
        self._amp_end = np.zeros(size, dtype=np.float32)
        self._phase = np.zeros(size)
        self._workspace = make_workspace(size)

    def set_frame(self, voice: int, f0_hz: float, amplitudes: np.ndarray) -> None:
        """Voice `voice`'s next frame: f0 in Hz and harmonic amplitudes (linear, [harmonics])."""
        self.f0_hz[voice] = f0_hz
        self.amplitudes[voice] = amplitudes

    def render(self, out: np.ndarray, n: int, sample_rate: float) -> None:
        """Add n samples (float32 out[:n]) gliding from the previous frames to the ones set since."""
        harmonic_controls(self.f0_hz, self.amplitudes, self._freq_end, self._amp_end)
        render_partials(out, n, self._freq_start, self._freq_end, self._amp_start, self._amp_end,
                        self._phase, sample_rate, self._workspace)
        self._freq_start[:] = self._freq_end
        self._amp_start[:] = self._amp_end

    def reset(self) -> None:
        """Silence every voice: amplitudes and phases to zero."""
        self.amplitudes[:] = 0.0
        self._amp_start[:] = 0.0
        self._phase[:] = 0.0
