"""MIDI channel messages (mido) -> engine Events."""

from __future__ import annotations

import mido

from synth.events import AllNotesOff, Event, NoteOff, NoteOn, ParamChange
from synth.engine import Engine

ALL_SOUND_OFF = 120
ALL_NOTES_OFF = 123


def midi_to_events(message: mido.Message, time_samples: int, engine: Engine,
                   cc_map: dict[int, tuple[str, str]]) -> list[Event]:
    """Events for one MIDI message. Channels become 1..16; note-on with velocity 0 is a note-off;
    mapped controllers set their parameter from value/127; CC 120 and 123 release every voice.
    Other messages give no event."""
    kind = message.type
    if kind == "note_on" and message.velocity > 0:
        return [NoteOn(time_samples, message.note, message.velocity, message.channel + 1)]
    if kind in ("note_on", "note_off"):
        return [NoteOff(time_samples, message.note, message.channel + 1)]
    if kind == "control_change":
        if message.control in (ALL_SOUND_OFF, ALL_NOTES_OFF):
            return [AllNotesOff(time_samples)]
        if message.control in cc_map:
            slot_id, name = cc_map[message.control]
            spec = engine.param_spec(slot_id, name)
            return [ParamChange(time_samples, slot_id, name, spec.from_normalized(message.value / 127.0))]
    return []
