"""Voice allocation for polyphonic instruments: a fixed pool, note on/off, stealing.

The pool owns each voice's envelope stage and level, which the instrument's numba kernel advances;
a voice whose release has fallen silent is marked IDLE by the kernel and is free again.
Stealing when every voice is busy: the voice released longest ago, else the oldest held voice.
A note that is already sounding is retriggered on its own voice. A retriggered or stolen voice
restarts its attack from its current level, so the envelope never jumps.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from synth.dsp.envelopes import ATTACK, IDLE, RELEASE

ANY_NOTE = -1  # release_voices: every held note


@njit(nogil=True, cache=True)
def choose_voice(stage, note, started_order, released_order, new_note):
    """Index of the voice that should play `new_note` (see the module docstring for the order)."""
    for v in range(stage.shape[0]):
        if stage[v] != IDLE and note[v] == new_note:
            return v
    for v in range(stage.shape[0]):
        if stage[v] == IDLE:
            return v
    best = -1
    for v in range(stage.shape[0]):
        if stage[v] == RELEASE and (best < 0 or released_order[v] < released_order[best]):
            best = v
    if best >= 0:
        return best
    best = 0
    for v in range(1, stage.shape[0]):
        if started_order[v] < started_order[best]:
            best = v
    return best


@njit(nogil=True, cache=True)
def release_voices(stage, note, released_order, clock, released_note):
    """Release every held voice playing `released_note` (every held voice where it is ANY_NOTE),
    stamping each with the next value of `clock`; returns the clock after the last stamp."""
    for v in range(stage.shape[0]):
        if stage[v] != IDLE and stage[v] != RELEASE and (released_note == ANY_NOTE or note[v] == released_note):
            clock += 1
            released_order[v] = clock
            stage[v] = RELEASE
    return clock


@njit(nogil=True, cache=True)
def count_sounding(stage):
    """How many voices are not IDLE."""
    count = 0
    for v in range(stage.shape[0]):
        if stage[v] != IDLE:
            count += 1
    return count


class VoicePool:
    """A fixed number of voices; arrays are made once, here, and never reallocated."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError("a voice pool needs at least one voice")
        self.size = size
        self.stage = np.zeros(size, dtype=np.int32)
        self.level = np.zeros(size, dtype=np.float64)
        self.note = np.full(size, -1, dtype=np.int32)
        self.velocity = np.zeros(size, dtype=np.float64)
        self._started_order = np.zeros(size, dtype=np.int64)
        self._released_order = np.zeros(size, dtype=np.int64)
        self._clock = 0
        self.stolen_count = 0

    def start(self, note: int, velocity: float) -> tuple[int, bool, bool]:
        """Give `note` a voice with gain `velocity` (0..1).

        Returns (voice index, whether the voice was idle, whether another sounding note was stolen).
        """
        v = choose_voice(self.stage, self.note, self._started_order, self._released_order, note)
        was_idle = self.stage[v] == IDLE
        stolen = not was_idle and self.note[v] != note
        if stolen:
            self.stolen_count += 1
        self._clock += 1
        self._started_order[v] = self._clock
        self.note[v] = note
        self.velocity[v] = velocity
        self.stage[v] = ATTACK
        return v, was_idle, stolen

    def release(self, note: int) -> None:
        """Release every held voice playing `note` (0..127)."""
        self._clock = release_voices(self.stage, self.note, self._released_order, self._clock, note)

    def release_all(self) -> None:
        """Release every held voice."""
        self._clock = release_voices(self.stage, self.note, self._released_order, self._clock, ANY_NOTE)

    def warm_up(self) -> None:
        """Run the release and counting kernels once, so that they are compiled before audio
        starts (the plugin's prepare calls this, and resets the pool after)."""
        self.release(0)
        self.release_all()
        count_sounding(self.stage)

    def silence(self) -> None:
        """End every voice at once (reset)."""
        self.stage[:] = IDLE
        self.level[:] = 0.0
        self.note[:] = -1

    @property
    def active_count(self) -> int:
        """Voices sounding (attack, sustain or release)."""
        return count_sounding(self.stage)
