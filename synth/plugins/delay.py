"""`delay`: a feedback delay (echo) with damping in the feedback path."""

from __future__ import annotations

import numpy as np

from synth.dsp.delay import feedback_delay
from synth.params import LOG, float_param
from synth.plugins.base import Plugin

MAX_DELAY_MS = 2000.0


class Delay(Plugin):
    """time_ms: 1..2000 ms (changes glide over 100 ms, like tape). feedback: 0..0.95.
    mix: 0..1 wet share. damping: 0..0.95, how much each repeat loses its highs.
    """

    name = "delay"
    param_specs = (
        float_param("time_ms", 1, MAX_DELAY_MS, 350, "ms", LOG, 100, "delay time"),
        float_param("feedback", 0, 0.95, 0.35, "", doc="share of each repeat fed back"),
        float_param("mix", 0, 1, 0.25, "", doc="wet share of the output"),
        float_param("damping", 0, 0.95, 0.3, "", smoothing_ms=0, doc="high-frequency loss per repeat"),
    )

    def allocate(self) -> None:
        length = int(MAX_DELAY_MS * self.sample_rate / 1000.0) + 4
        self._line = np.zeros((self.channels, length), dtype=np.float32)
        self._damp = np.zeros(self.channels)
        self._write = 0

    def reset(self) -> None:
        super().reset()
        self._line[:] = 0.0
        self._damp[:] = 0.0
        self._write = 0

    def process(self, bus: np.ndarray, n: int) -> None:
        p, ms = self.params, self.sample_rate / 1000.0
        time_start, time_end = p["time_ms"].ramp(n)
        fb_start, fb_end = p["feedback"].ramp(n)
        mix_start, mix_end = p["mix"].ramp(n)
        self._write = feedback_delay(
            bus, n, self._line, self._write, self._damp, time_start * ms, time_end * ms,
            fb_start, fb_end, mix_start, mix_end, p["damping"].target,
        )
