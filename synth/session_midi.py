"""Converting between JSON Lines scores (recorded sessions included) and standard MIDI files.

JSON Lines -> MIDI (a type 0 file, TICKS_PER_BEAT ticks a beat):
- /note/on and /note/off: note_on and note_off, velocity kept, on the line's channel (a line
  without one goes to MIDI channel 1, i.e. mido's channel 0);
- a parameter line (/param/<id>/<name>, .../norm, an [osc.map] address): a control_change on the
  controller the preset's [midi.cc] maps to that parameter (the lowest, where several do), its
  value the parameter's 0..1 position times 127, rounded, as synth.control.midi reads it back;
- /notes/off: controller 123 (all notes off); /tempo/raw: a set_tempo meta message;
- /preset/load NAME: a marker meta message whose text is `/preset/load NAME`; the lines after it
  map through that preset's [midi.cc].
Times become ticks on the tempo map being written (120 bpm until the first tempo line), each
within half a tick (at most 0.4 ms, at 20 bpm) of the line's time.

MIDI -> JSON Lines: the inverse, with the times of the MIDI file to the last bit, so that
`synth render` plays the written score exactly as it plays the MIDI file. Notes keep their channel
(1..16); controllers the preset's [midi.cc] maps become /param/<id>/<name> lines in native units.

Lines and messages with no counterpart (a parameter no controller maps to, /say, an unmapped
controller, pitch bend...) are counted by address or message type in the summary. Meta messages
other than tempo and `/preset/load` markers (track names, time signatures) carry no sound and are
passed over.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import mido

from synth.control.addresses import MAX_BPM, MIN_BPM, event_to_message
from synth.control.midi import ALL_NOTES_OFF, midi_to_events
from synth.engine import DEFAULT_TEMPO_BPM, Engine
from synth.errors import SynthError
from synth.events import AllNotesOff, NoteOff, NoteOn, ParamChange, PresetLoad, TempoChange
from synth.io.atomic import atomic_path
from synth.presets import SHIPPED_PRESETS, PresetSpec, load_preset_by_name
from synth.scores import JSONL_SUFFIXES, MAX_SCORE_S, MIDI_SUFFIXES, load_score, midi_messages

TICKS_PER_BEAT = 3840  # half a tick is 0.39 ms at the slowest tempo a score may set (20 bpm)
MAX_DELTA_TICKS = 0x0FFFFFFF  # the longest gap between two messages a standard MIDI file can hold
PRESET_MARKER = "/preset/load "  # a marker's text before the preset's name
SAMPLE_RATE = 48000  # Hz: the clock JSON Lines times are read on (one sample is 0.02 ms)


@dataclass
class ConversionSummary:
    """What one conversion wrote: counts of notes (note-ons), controller changes (all notes off
    included), tempo changes and preset loads; skipped: lines (or MIDI messages) with no
    counterpart, by address (or message type)."""

    path: Path
    notes: int = 0
    controllers: int = 0
    tempo_changes: int = 0
    preset_loads: int = 0
    skipped: Counter = field(default_factory=Counter)

    def written(self) -> int:
        """How many messages (or lines) the output holds."""
        return self.notes + self.controllers + self.tempo_changes + self.preset_loads

    def line(self) -> str:
        """The one-line report `synth convert` prints."""
        text = (f"wrote {self.path}: {_count(self.notes, 'note')}, {_count(self.controllers, 'controller change')}, "
                f"{_count(self.tempo_changes, 'tempo change')}, {_count(self.preset_loads, 'preset load')}")
        if self.skipped:
            text += (f"; skipped {sum(self.skipped.values())} with no counterpart: "
                     + ", ".join(f"{key} ({count})" for key, count in sorted(self.skipped.items())))
        return text


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'s' * (number != 1)}"


def convert_file(in_path: str | Path, out_path: str | Path, preset: PresetSpec | None = None) -> ConversionSummary:
    """Convert a JSON Lines score to a standard MIDI file or back, the direction chosen by the two
    file suffixes; `preset` gives the [midi.cc] and [osc.map] mapping (None: parameter lines and
    controllers are skipped). The output is written whole or not at all; SynthError, with nothing
    written, for a wrong pair of suffixes, a missing input or a bad file."""
    in_path, out_path = Path(in_path), Path(out_path)
    in_suffix, out_suffix = in_path.suffix.lower(), out_path.suffix.lower()
    if in_suffix in JSONL_SUFFIXES and out_suffix in MIDI_SUFFIXES:
        convert = jsonl_to_midi
    elif in_suffix in MIDI_SUFFIXES and out_suffix in JSONL_SUFFIXES:
        convert = midi_to_jsonl
    else:
        raise SynthError(f"cannot convert {in_path.name} to {out_path.name}: one file must be a JSON Lines score "
                         f"({', '.join(sorted(JSONL_SUFFIXES))}) and the other a MIDI file "
                         f"({', '.join(sorted(MIDI_SUFFIXES))})")
    if not in_path.is_file():
        raise SynthError(f"{in_path}: no such file")
    return convert(in_path, out_path, preset)


def _engine(preset: PresetSpec | None) -> Engine:
    """The chain parameter lines and controllers are read for (an empty one without a preset)."""
    return preset.build_engine(SAMPLE_RATE) if preset is not None else Engine([], sample_rate=SAMPLE_RATE)


def _controllers(midi_cc: dict[int, tuple[str, str]]) -> dict[tuple[str, str], int]:
    """(slot id, parameter) -> the lowest controller number [midi.cc] maps to it."""
    return {target: cc for cc, target in sorted(midi_cc.items(), reverse=True)}


def jsonl_to_midi(in_path: Path, out_path: Path, preset: PresetSpec | None) -> ConversionSummary:
    """Write the JSON Lines score `in_path` as the standard MIDI file `out_path` (see the module)."""
    engine = _engine(preset)
    summary = ConversionSummary(out_path)
    events = load_score(in_path, engine, preset.osc_map if preset else None, skipped=summary.skipped)
    controllers = _controllers(preset.midi_cc if preset else {})
    track = mido.MidiTrack()
    tick_time_s = 0.0  # the time of the last message written, as a reader computes it from its ticks
    seconds_per_tick = 60.0 / DEFAULT_TEMPO_BPM / TICKS_PER_BEAT
    for event in events:
        match event:
            case NoteOn(note=note, velocity=velocity, channel=channel):
                message = mido.Message("note_on", note=note, velocity=velocity, channel=(channel or 1) - 1)
                summary.notes += 1
            case NoteOff(note=note, channel=channel):
                message = mido.Message("note_off", note=note, channel=(channel or 1) - 1)
            case AllNotesOff():
                message = mido.Message("control_change", control=ALL_NOTES_OFF, value=0)
                summary.controllers += 1
            case ParamChange(slot_id=slot_id, name=name, value=value) if (slot_id, name) in controllers:
                position = engine.param_spec(slot_id, name).to_normalized(value)
                message = mido.Message("control_change", control=controllers[slot_id, name], value=round(position * 127))
                summary.controllers += 1
            case TempoChange(bpm=bpm):
                message = mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))
                summary.tempo_changes += 1
            case PresetLoad(name=name, engine=loaded):
                message = mido.MetaMessage("marker", text=PRESET_MARKER + name)
                engine = loaded
                controllers = _controllers(load_preset_by_name(name, [SHIPPED_PRESETS]).midi_cc)
                summary.preset_loads += 1
            case _:  # a parameter no controller maps to, /say, /sing
                summary.skipped[event_to_message(event)[0]] += 1
                continue
        time_s = event.time_samples / SAMPLE_RATE
        delta_ticks = max(0, round((time_s - tick_time_s) / seconds_per_tick))
        if delta_ticks > MAX_DELTA_TICKS:
            raise SynthError(f"{in_path}: the gap before the line at {time_s:g} s is longer than a MIDI file can "
                             f"hold at {60.0 / TICKS_PER_BEAT / seconds_per_tick:.4g} bpm")
        message.time = delta_ticks
        track.append(message)
        tick_time_s += delta_ticks * seconds_per_tick
        if message.type == "set_tempo":
            seconds_per_tick = message.tempo / 1e6 / TICKS_PER_BEAT
    _refuse_empty(in_path, summary)
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)
    with atomic_path(out_path) as temp:
        midi.save(temp)
    return summary


def midi_to_jsonl(in_path: Path, out_path: Path, preset: PresetSpec | None) -> ConversionSummary:
    """Write the standard MIDI file `in_path` as the JSON Lines score `out_path` (see the module)."""
    engine = _engine(preset)
    cc_map = preset.midi_cc if preset else {}
    summary = ConversionSummary(out_path)
    lines = []
    time_s = 0.0
    for message in midi_messages(in_path):
        time_s += message.time
        if time_s > MAX_SCORE_S:
            raise SynthError(f"{in_path}: a message at {time_s:g} s; a score may last at most {MAX_SCORE_S:g} s")
        if message.type == "set_tempo":
            bpm = mido.tempo2bpm(message.tempo)
            if not MIN_BPM <= bpm <= MAX_BPM:
                summary.skipped[f"set_tempo outside {MIN_BPM:g}..{MAX_BPM:g} bpm"] += 1
                continue
            lines.append((time_s, "/tempo/raw", [bpm]))
            summary.tempo_changes += 1
        elif message.type == "marker" and message.text.startswith(PRESET_MARKER):
            name = message.text[len(PRESET_MARKER):]
            try:
                loaded = load_preset_by_name(name, [SHIPPED_PRESETS])
            except SynthError as error:
                raise SynthError(f"{in_path}: the marker at {time_s:g} s: {error}") from None
            engine, cc_map = _engine(loaded), loaded.midi_cc
            lines.append((time_s, "/preset/load", [name]))
            summary.preset_loads += 1
        elif not message.is_meta:
            events = midi_to_events(message, 0, engine, cc_map)
            if not events:
                kind = message.type
                summary.skipped[f"{kind} {message.control}" if kind == "control_change" else kind] += 1
            for event in events:
                lines.append((time_s, *event_to_message(event)))
                summary.notes += isinstance(event, NoteOn)
                summary.controllers += isinstance(event, (ParamChange, AllNotesOff))
    _refuse_empty(in_path, summary)
    text = "".join(json.dumps({"time": line_time_s, "address": address, "args": args}) + "\n"
                   for line_time_s, address, args in lines)
    with atomic_path(out_path) as temp:
        temp.write_text(text, encoding="utf-8")
    return summary


def _refuse_empty(in_path: Path, summary: ConversionSummary) -> None:
    """SynthError when nothing of `in_path` has a counterpart (an empty output is of no use)."""
    if not summary.written():
        raise SynthError(f"{in_path}: nothing to convert: no notes, mapped controllers, tempo changes or preset loads"
                         + (f" (skipped: {', '.join(sorted(summary.skipped))})" if summary.skipped else ""))
