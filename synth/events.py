"""Event types and the sample-accurate scheduler.

Every event carries `time_samples`, an absolute sample index on the engine's clock (sample 0 is the
first sample the engine renders). A score time t seconds becomes round(t * sample_rate).
IMMEDIATE means "at the start of the next block" (a live message outside a timed bundle).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NoteOn:
    """Start a note. note: MIDI number 0..127; velocity: 1..127; channel: 1..16 or None (all)."""

    time_samples: int
    note: int
    velocity: int
    channel: int | None = None


@dataclass(frozen=True, slots=True)
class NoteOff:
    """Release every held voice playing `note` on instruments listening to `channel`."""

    time_samples: int
    note: int
    channel: int | None = None


@dataclass(frozen=True, slots=True)
class AllNotesOff:
    """Release every voice of every instrument (panic)."""

    time_samples: int


@dataclass(frozen=True, slots=True)
class ParamChange:
    """Set parameter `name` of the chain slot `slot_id` to `value` (native units, validated)."""

    time_samples: int
    slot_id: str
    name: str
    value: float


@dataclass(frozen=True, slots=True)
class TempoChange:
    """The song's tempo (beats per minute, 20..999) from this sample on, for tempo-synced parameters."""

    time_samples: int
    bpm: float


@dataclass(frozen=True, slots=True, eq=False)
class Utterance:
    """Chain slot `slot_id` (a `voice`) speaks `audio` from this sample on: float32 [samples] at
    the engine's rate, rendered from `text` off the audio thread (synth.speech)."""

    time_samples: int
    slot_id: str
    text: str
    audio: object
    handle: int = -1  # where `audio` lies in an audio plane's payload pool (-1: not there)


@dataclass(frozen=True, slots=True, eq=False)
class Lyric:
    """Chain slot `slot_id` (a `voice`) sings the syllables of `text` on its next notes, one a
    note; `table` holds them, prepared off the audio thread (synth.plugins.voice.LyricTable)."""

    time_samples: int
    slot_id: str
    text: str
    table: object
    handle: int = -1  # where `table` lies in an audio plane's payload pool (-1: not there)


@dataclass(frozen=True, slots=True, eq=False)
class PresetLoad:
    """A score's `/preset/load`: from the first block that starts at or after this sample,
    `engine` (built from the preset called `name`, not yet prepared) plays instead of the running
    one (synth.render). Not an engine event: the renderer acts on it."""

    time_samples: int
    name: str
    engine: object


Event = NoteOn | NoteOff | AllNotesOff | ParamChange | TempoChange | Utterance | Lyric
IMMEDIATE = -(2**62)  # below any real sample time, even of a bundle timed before the engine started


def seconds_to_samples(time_s: float, sample_rate: float) -> int:
    """The sample index at which an event at `time_s` seconds takes effect."""
    return round(time_s * sample_rate)


class Scheduler:
    """Pending events ordered by time; events at the same time keep the order they came in."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Event]] = []
        self._order = itertools.count()

    def push(self, event: Event) -> None:
        heapq.heappush(self._heap, (event.time_samples, next(self._order), event))

    def next_time(self) -> int | None:
        """Sample time of the earliest pending event, or None when empty."""
        return self._heap[0][0] if self._heap else None

    def pop(self) -> Event:
        return heapq.heappop(self._heap)[2]

    def clear(self) -> None:
        self._heap.clear()

    def __len__(self) -> int:
        return len(self._heap)
