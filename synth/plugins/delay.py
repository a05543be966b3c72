"""`delay`: a feedback delay (echo) with damping in the feedback path."""

from __future__ import annotations

import numpy as np

from synth.dsp.delay import feedback_delay
from synth.params import LOG, choice_param, float_param
from synth.plugins.base import Plugin

MAX_DELAY_MS = 2000.0
SYNC_BEATS = {"off": 0.0, "1/16": 0.25, "1/8": 0.5, "1/8 dotted": 0.75, "1/4": 1.0, "1/4 dotted": 1.5,
              "1/2": 2.0, "1 bar": 4.0}  # note values in beats (quarter notes)
_SYNC_BEAT_VALUES = tuple(SYNC_BEATS.values())  # by choice index


class Delay(Plugin):
    """time_ms: 1..2000 ms (changes glide over 100 ms, like tape). sync: off, or a note value
    (1/16 .. 1 bar of 4/4) that sets time_ms from the song's tempo and follows its changes.
    feedback: 0..0.95. mix: 0..1 wet share. damping: 0..0.95, how much each repeat loses its highs.
    """

    name = "delay"
    param_specs = (
        float_param("time_ms", 1, MAX_DELAY_MS, 350, "ms", LOG, 100, "delay time"),
        choice_param("sync", tuple(SYNC_BEATS), "off", "tempo-synced delay time (sets time_ms)"),
        float_param("feedback", 0, 0.95, 0.35, "", doc="share of each repeat fed back"),
        float_param("mix", 0, 1, 0.25, "", doc="wet share of the output"),
        float_param("damping", 0, 0.95, 0.3, "", smoothing_ms=0, doc="high-frequency loss per repeat"),
    )

    def __init__(self, **values: object):
        self.tempo_bpm = 120.0
        super().__init__(**values)
        self._follow_tempo()

    def set_param(self, name: str, value: float) -> None:
        super().set_param(name, value)
        if name == "sync":
            self._follow_tempo()

    def set_tempo(self, bpm: float) -> None:
        self.tempo_bpm = bpm
        self._follow_tempo()

    def _follow_tempo(self) -> None:
        """While synced, glide time_ms to the note value at the current tempo."""
        beats = _SYNC_BEAT_VALUES[int(self.params["sync"].target)]
        if beats:
            self.params["time_ms"].set(beats * 60000.0 / self.tempo_bpm)

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
