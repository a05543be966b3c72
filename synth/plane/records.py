"""The numeric form of every Event: one fixed-size record, so that events cross between processes
through shared memory with no pickling.

A record is (kind, time_samples, generation, a, b, c, value):
- NOTE_ON: a note, b velocity, c channel (0: every channel)
- NOTE_OFF: a note, c channel
- ALL_NOTES_OFF
- PARAM: a slot index, b parameter index (in the slot's param_specs), value native units
- TEMPO: value bpm
- UTTERANCE, LYRIC: a slot index, b payload handle (synth.plane.payloads)
- PRESET_LOAD (applied records only): the chain of `generation` took over at `time_samples`
`generation` numbers the chain the indices refer to: it grows by one with each preset load.
Slots and parameters are numbered in chain order, so both planes, building the same preset,
agree on them.
"""

from __future__ import annotations

import numpy as np

from synth.engine import Engine
from synth.events import AllNotesOff, Event, Lyric, NoteOff, NoteOn, ParamChange, TempoChange, Utterance

NOTE_ON, NOTE_OFF, ALL_NOTES_OFF, PARAM, TEMPO, UTTERANCE, LYRIC, PRESET_LOAD = range(1, 9)
RECORD = np.dtype([("kind", "<i8"), ("time", "<i8"), ("generation", "<i8"), ("a", "<i8"), ("b", "<i8"),
                   ("c", "<i8"), ("value", "<f8")])
Record = tuple[int, int, int, int, int, int, float]


class EventCodec:
    """Events of one chain <-> records. `payloads` turns an utterance or lyric handle back into
    what the plugin plays (the audio plane's pool views); None where only encoding is needed."""

    def __init__(self, engine: Engine, generation: int = 0, payloads=None):
        self.generation = generation
        self.payloads = payloads
        self.slot_ids = [slot.id for slot in engine.slots]
        self._slot_index = {slot_id: index for index, slot_id in enumerate(self.slot_ids)}
        self.param_names = [[spec.name for spec in slot.plugin.param_specs] for slot in engine.slots]
        self._param_index = [{name: index for index, name in enumerate(names)} for names in self.param_names]
        offsets = np.cumsum([0] + [len(names) for names in self.param_names])
        self.flat_offset = [int(offset) for offset in offsets[:-1]]  # slot index -> its first flat parameter
        self.param_count = int(offsets[-1])

    def flat_param(self, slot_id: str, name: str) -> int:
        """The parameter's position in chain order (the shared value table's index)."""
        slot = self._slot_index[slot_id]
        return self.flat_offset[slot] + self._param_index[slot][name]

    def encode(self, event: Event, handle: int = -1) -> Record:
        """The record of `event`; utterances and lyrics name the payload `handle` their data is in."""
        g = self.generation
        match event:
            case NoteOn(time_samples=t, note=note, velocity=velocity, channel=channel):
                return (NOTE_ON, t, g, note, velocity, channel or 0, 0.0)
            case NoteOff(time_samples=t, note=note, channel=channel):
                return (NOTE_OFF, t, g, note, 0, channel or 0, 0.0)
            case AllNotesOff(time_samples=t):
                return (ALL_NOTES_OFF, t, g, 0, 0, 0, 0.0)
            case ParamChange(time_samples=t, slot_id=slot_id, name=name, value=value):
                slot = self._slot_index[slot_id]
                return (PARAM, t, g, slot, self._param_index[slot][name], 0, float(value))
            case TempoChange(time_samples=t, bpm=bpm):
                return (TEMPO, t, g, 0, 0, 0, float(bpm))
            case Utterance(time_samples=t, slot_id=slot_id):
                return (UTTERANCE, t, g, self._slot_index[slot_id], handle, 0, 0.0)
            case Lyric(time_samples=t, slot_id=slot_id):
                return (LYRIC, t, g, self._slot_index[slot_id], handle, 0, 0.0)
        raise TypeError(f"not an event: {event!r}")

    def decode(self, record: Record, text: str = "") -> Event:
        """The event of `record`. Utterances and lyrics carry their payload (when this codec has a
        pool) and `text` (the control plane keeps the texts; the audio plane needs none)."""
        kind, t, _, a, b, c, value = record
        if kind == NOTE_ON:
            return NoteOn(t, a, b, c or None)
        if kind == NOTE_OFF:
            return NoteOff(t, a, c or None)
        if kind == ALL_NOTES_OFF:
            return AllNotesOff(t)
        if kind == PARAM:
            return ParamChange(t, self.slot_ids[a], self.param_names[a][b], value)
        if kind == TEMPO:
            return TempoChange(t, value)
        if kind == UTTERANCE:
            audio = self.payloads.utterance(b) if self.payloads is not None else None
            return Utterance(t, self.slot_ids[a], text, audio, b)
        if kind == LYRIC:
            table = self.payloads.lyric(b) if self.payloads is not None else None
            return Lyric(t, self.slot_ids[a], text, table, b)
        raise ValueError(f"not an event record: {record!r}")
