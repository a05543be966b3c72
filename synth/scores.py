"""Scores for offline rendering: JSON Lines of timed messages, or standard MIDI files.

JSON Lines: one object a line, `{"time": seconds, "address": "/...", "args": [...]}`, with the
addresses of synth.control.addresses (the same the OSC server takes), and `/preset/load NAME`
(a shipped preset's bare name, as the server takes it): lines after it in time are read for that
preset's chain, and the renderer switches to it (synth.events.PresetLoad). Blank lines are skipped.
MIDI: note on/off on any channel, controllers mapped by the preset's [midi.cc], tempo changes.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import mido

from synth.control.addresses import MessageTranslator
from synth.control.midi import midi_to_events
from synth.engine import Engine
from synth.errors import SynthError, UnknownName
from synth.events import Event, PresetLoad, TempoChange, seconds_to_samples
from synth.io.json_lines import read_json_lines
from synth.presets import SHIPPED_PRESETS, load_preset_by_name

JSONL_SUFFIXES = {".jsonl", ".json"}
MIDI_SUFFIXES = {".mid", ".midi", ".smf"}
_LINE_KEYS = {"time", "address", "args"}
MAX_SCORE_S = 24 * 3600.0  # a score's last event at most a day in (later times are typos, or files of another kind)


def load_score(path: str | Path, engine: Engine, osc_map=None, midi_cc=None,
               skipped: Counter | None = None) -> list[Event | PresetLoad]:
    """Every event of a score file, timed on the engine's sample clock (sorted by time; a JSON
    Lines score may hold preset loads). skipped: when given, JSON Lines at addresses the chain does
    not have are left out and counted there by address (else they are an error)."""
    path = Path(path)
    if not path.is_file():
        raise SynthError(f"{path}: no such score file")
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        events = read_jsonl_score(path, engine, osc_map, skipped)
    elif suffix in MIDI_SUFFIXES:
        events = read_midi_score(path, engine, midi_cc or {})
    else:
        raise SynthError(f"{path}: unknown score type; use .jsonl (timed messages) or .mid (standard MIDI file)")
    if not events:
        raise SynthError(f"{path}: the score holds no events")
    return sorted(events, key=lambda event: event.time_samples)


def read_jsonl_score(path: Path, engine: Engine, osc_map=None, skipped: Counter | None = None) -> list[Event | PresetLoad]:
    """The events of a JSON Lines score, read in time order (lines at one time in file order),
    each for the chain playing then: `engine`'s, or that of the latest /preset/load."""
    sample_rate = engine.sample_rate
    timed = []  # (sample, where, address, args) of every line
    for _, where, record in read_json_lines(path):
        if not isinstance(record, dict):
            raise SynthError(f"{where}: expected an object with time, address and args")
        unknown = set(record) - _LINE_KEYS
        if unknown:
            raise SynthError(f"{where}: unknown key {sorted(unknown)[0]!r} (allowed: address, args, time)")
        time_s = record.get("time")
        if (isinstance(time_s, bool) or not isinstance(time_s, (int, float)) or not math.isfinite(time_s)
                or not 0 <= time_s <= MAX_SCORE_S):
            raise SynthError(f"{where}: time: expected seconds in 0..{MAX_SCORE_S:g}, got {time_s!r}")
        address = record.get("address")
        if not isinstance(address, str) or not address.startswith("/"):
            raise SynthError(f"{where}: address: expected a string starting with '/', got {address!r}")
        args = record.get("args", [])
        if not isinstance(args, list):
            raise SynthError(f"{where}: args: expected a list, got {args!r}")
        timed.append((seconds_to_samples(time_s, sample_rate), where, address, args))
    translator = MessageTranslator(engine, osc_map, strict=True)
    events: list[Event | PresetLoad] = []
    for time_samples, where, address, args in sorted(timed, key=lambda line: line[0]):
        try:
            if address == "/preset/load":
                load, load_osc_map = _preset_load(address, args, time_samples, engine)
                translator = MessageTranslator(load.engine, load_osc_map, strict=True)
                events.append(load)
                continue
            events.extend(translator.translate(address, args, time_samples))
        except UnknownName as error:
            if skipped is None:
                raise UnknownName(f"{where}: {error}") from None
            skipped[address] += 1
        except SynthError as error:
            raise SynthError(f"{where}: {error}") from None
    return events


def _preset_load(address: str, args: list, time_samples: int, running: Engine) -> tuple[PresetLoad, dict]:
    """A /preset/load line: the named preset (a bare name from the shipped folder only, so a
    score cannot read outside it) built for the running engine's format, and its [osc.map]."""
    if len(args) != 1 or not isinstance(args[0], str):
        raise SynthError(f"{address}: expected one preset name")
    preset = load_preset_by_name(args[0], [SHIPPED_PRESETS])
    engine = preset.build_engine(running.sample_rate, running.max_block, running.channels, running.input_channels)
    return PresetLoad(time_samples, args[0], engine), preset.osc_map


def midi_messages(path: Path) -> list[mido.Message]:
    """Every message of a standard MIDI file in playing order, each `time` the seconds since the
    one before (tempo changes applied). SynthError naming the file when it is not one."""
    try:
        return list(mido.MidiFile(path))
    except EOFError:
        raise SynthError(f"{path}: the MIDI file ends early (truncated, or a track is missing)") from None
    except Exception as error:  # mido raises OSError, ValueError, KeyError... on bad files
        raise SynthError(f"{path}: not a standard MIDI file ({str(error) or type(error).__name__})") from None


def read_midi_score(path: Path, engine: Engine, cc_map: dict[int, tuple[str, str]]) -> list[Event]:
    messages = midi_messages(path)
    events: list[Event] = []
    time_s = 0.0
    for message in messages:
        time_s += message.time
        if time_s > MAX_SCORE_S:
            raise SynthError(f"{path}: a message at {time_s:g} s; a score may last at most {MAX_SCORE_S:g} s")
        time_samples = seconds_to_samples(time_s, engine.sample_rate)
        if not message.is_meta:
            events.extend(midi_to_events(message, time_samples, engine, cc_map))
        elif message.type == "set_tempo":
            events.append(TempoChange(time_samples, mido.tempo2bpm(message.tempo)))
    return events


def midi_notes(path: str | Path) -> list[tuple[float, float, int, int]]:
    """(start_s, end_s, note, velocity) of every note of a MIDI file, all channels, in start order
    (tempo changes applied; a note-on with velocity 0 ends a note; a note still held at the end
    ends with the file)."""
    messages = midi_messages(Path(path))
    held: dict[int, tuple[float, int]] = {}
    notes = []
    time_s = 0.0
    for message in messages:
        time_s += message.time
        if message.type == "note_on" and message.velocity > 0:
            if message.note in held:
                start, velocity = held.pop(message.note)
                notes.append((start, time_s, message.note, velocity))
            held[message.note] = (time_s, message.velocity)
        elif message.type in ("note_off", "note_on") and message.note in held:
            start, velocity = held.pop(message.note)
            notes.append((start, time_s, message.note, velocity))
    notes.extend((start, time_s, note, velocity) for note, (start, velocity) in held.items())
    return sorted(notes)
