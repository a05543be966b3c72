import json

import mido
import pytest

from synth.errors import SynthError
from synth.events import AllNotesOff, NoteOff, NoteOn, ParamChange, TempoChange
from synth.presets import load_preset
from synth.scores import load_score


@pytest.fixture
def engine():
    return load_preset("warm-pad").build_engine(48000, 256)


def jsonl(tmp_path, *records, raw=None):
    path = tmp_path / "score.jsonl"
    path.write_text(raw if raw is not None else "\n".join(json.dumps(r) for r in records) + "\n")
    return path


def test_jsonl_messages_become_timed_events(tmp_path, engine):
    path = jsonl(tmp_path,
                 {"time": 0.5, "address": "/note/on", "args": [60, 100]},
                 {"time": 0.25, "address": "/note/on", "args": [62.0, 90, 2]},
                 {"time": 1, "address": "/note/on", "args": [60, 0]},
                 {"time": 1.5, "address": "/note/off", "args": [62]},
                 {"time": 2, "address": "/param/osc/cutoff_hz", "args": [440]},
                 {"time": 2, "address": "/param/osc/cutoff_hz/norm", "args": [1.0]},
                 {"time": 2, "address": "/param/osc/waveform", "args": ["sine"]},
                 {"time": 2, "address": "/1/fader1", "args": [0]},
                 {"time": 2.5, "address": "/tempo/raw", "args": [96]},
                 {"time": 3, "address": "/notes/off"})
    events = load_score(path, engine, osc_map={"/1/fader1": ("osc", "cutoff_hz")})
    assert events == [
        NoteOn(12000, 62, 90, 2), NoteOn(24000, 60, 100), NoteOff(48000, 60), NoteOff(72000, 62),
        ParamChange(96000, "osc", "cutoff_hz", 440.0), ParamChange(96000, "osc", "cutoff_hz", 20000.0),
        ParamChange(96000, "osc", "waveform", 0.0), ParamChange(96000, "osc", "cutoff_hz", 20.0),
        TempoChange(120000, 96.0), AllNotesOff(144000),
    ]


def test_midi_notes_controllers_and_tempo(tmp_path, engine):
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120)))
    track.append(mido.Message("note_on", note=60, velocity=100, channel=1, time=480))      # 0.5 s
    track.append(mido.Message("control_change", control=74, value=127, time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60), time=480))         # 1.0 s
    track.append(mido.Message("note_on", note=60, velocity=0, channel=1, time=480))         # 2.0 s
    track.append(mido.Message("control_change", control=123, value=0, time=0))
    path = tmp_path / "song.mid"
    midi.save(path)
    events = load_score(path, engine, midi_cc={74: ("osc", "cutoff_hz")})
    assert events == [TempoChange(0, 120.0), NoteOn(24000, 60, 100, 2), ParamChange(24000, "osc", "cutoff_hz", 20000.0),
                      TempoChange(48000, 60.0), NoteOff(96000, 60, 2), AllNotesOff(96000)]


@pytest.mark.parametrize("line, message", [
    ("{not json", r":1: not valid JSON"),
    ('[1, 2]', r":1: expected an object with time, address and args"),
    ('{"time": -1, "address": "/note/on", "args": [60, 1]}', r":1: time: expected seconds in 0..86400, got -1"),
    ('{"time": "soon", "address": "/note/on", "args": [60, 1]}', r":1: time: expected seconds in 0..86400, got 'soon'"),
    ('{"time": 0, "address": "note/on", "args": [60, 1]}', r":1: address: expected a string starting with '/'"),
    ('{"time": 0, "address": "/note/on", "args": 60}', r":1: args: expected a list, got 60"),
    ('{"time": 0, "address": "/note/on", "args": [60]}', r":1: /note/on: expected 2\.\.3 arguments, got 1"),
    ('{"time": 0, "address": "/note/on", "args": [128, 1]}', r":1: /note/on note: expected an integer in 0\.\.127, got 128"),
    ('{"time": 0, "address": "/note/on", "args": [60.5, 1]}', r":1: /note/on note: expected an integer in 0\.\.127, got 60\.5"),
    ('{"time": 0, "address": "/note/on", "args": [60, 300]}', r":1: /note/on velocity: expected 0\.\.127, got 300"),
    ('{"time": 0, "address": "/note/on", "args": [60, 1, 0]}', r":1: /note/on channel: expected an integer in 1\.\.16, got 0"),
    ('{"time": 0, "address": "/note/on", "args": ["C4", 1]}', r":1: /note/on note: expected a finite number, got 'C4'"),
    ('{"time": 0, "address": "/synth/explode", "args": []}', r":1: /synth/explode: unknown address"),
    ('{"time": 0, "address": "/param/reverb/size", "args": [1]}', r":1: /param/reverb/size: no plugin 'reverb' in the chain \(it has: osc, delay, out\)"),
    ('{"time": 0, "address": "/param/osc/size", "args": [1]}', r":1: /param/osc/size: plugin 'oscillator' has no parameter 'size'"),
    ('{"time": 0, "address": "/param/osc/cutoff_hz", "args": [1]}', r":1: /param/osc/cutoff_hz: expected a number in 20\.\.20000 Hz, got 1"),
    ('{"time": 0, "address": "/param/osc/cutoff_hz/norm", "args": [1.5]}', r":1: /param/osc/cutoff_hz/norm: expected a position in 0\.\.1, got 1\.5"),
    ('{"time": 0, "address": "/notes/off", "args": [], "when": 3}', r":1: unknown key 'when'"),
    ('{"time": 0, "address": "/tempo/raw", "args": [5000]}', r":1: /tempo/raw: expected a tempo in 20\.\.999 bpm, got 5000"),
    ('{"time": 0, "address": "/preset/load", "args": [3]}', r":1: /preset/load: expected one preset name"),
    ('{"time": 0, "address": "/preset/load", "args": []}', r":1: /preset/load: expected one preset name"),
    ('{"time": 0, "address": "/preset/load", "args": ["../etc/passwd"]}',
     r":1: preset name '\.\./etc/passwd' refused: only bare names from the preset folder"),
    ('{"time": 0, "address": "/preset/load", "args": ["/etc/passwd"]}',
     r":1: preset name '/etc/passwd' refused: only bare names from the preset folder"),
    ('{"time": 0, "address": "/preset/load", "args": ["nope"]}', r":1: no preset called 'nope'"),
])
def test_bad_jsonl_lines_name_the_line_and_problem(tmp_path, engine, line, message):
    path = jsonl(tmp_path, raw=line + "\n")
    with pytest.raises(SynthError, match=rf"score\.jsonl{message}"):
        load_score(path, engine)


def test_a_preset_load_switches_the_chain_later_lines_are_read_for(tmp_path, engine):
    from synth.events import PresetLoad

    path = jsonl(tmp_path,
                 {"time": 1.0, "address": "/param/voice/vibrato_cents", "args": [30]},  # after the load in time
                 {"time": 0.5, "address": "/preset/load", "args": ["speech-voice"]},
                 {"time": 0.0, "address": "/param/osc/cutoff_hz", "args": [440]})
    first, load, later = load_score(path, engine)
    assert first == ParamChange(0, "osc", "cutoff_hz", 440.0)
    assert isinstance(load, PresetLoad) and (load.time_samples, load.name) == (24000, "speech-voice")
    assert later == ParamChange(48000, "voice", "vibrato_cents", 30.0)
    with pytest.raises(SynthError, match=r"score\.jsonl:1: /param/osc/cutoff_hz: no plugin 'osc'"):
        load_score(jsonl(tmp_path, {"time": 0.5, "address": "/param/osc/cutoff_hz", "args": [440]},
                         {"time": 0.0, "address": "/preset/load", "args": ["speech-voice"]}), engine)


def test_bad_files(tmp_path, engine):
    garbage = tmp_path / "noise.mid"
    garbage.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(SynthError, match=r"noise\.mid: not a standard MIDI file \(MThd not found"):
        load_score(garbage, engine)
    truncated = tmp_path / "truncated.mid"  # a header cut short: mido's EOFError has no text
    truncated.write_bytes(b"MThd\x00\x00\x00\x06\x00")
    with pytest.raises(SynthError, match=r"truncated\.mid: the MIDI file ends early \(truncated, or a track is missing\)$"):
        load_score(truncated, engine)
    with pytest.raises(SynthError, match=r"missing\.jsonl: no such score file"):
        load_score(tmp_path / "missing.jsonl", engine)
    other = tmp_path / "score.txt"
    other.write_text("hello")
    with pytest.raises(SynthError, match=r"score\.txt: unknown score type"):
        load_score(other, engine)
    with pytest.raises(SynthError, match=r"score\.jsonl: the score holds no events"):
        load_score(jsonl(tmp_path, raw="\n\n"), engine)


def test_an_event_a_day_or_more_into_the_score_is_refused(tmp_path, engine):
    """A time of 1e12 s used to be read, and the render then wrote until the disk filled."""
    path = jsonl(tmp_path, {"time": 1e12, "address": "/note/on", "args": [60, 100]})
    with pytest.raises(SynthError, match=r"score.jsonl:1: time: expected seconds in 0..86400, got 1000000000000.0"):
        load_score(path, engine)
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=100, time=480 * 2 * 90_000)])  # 90,000 s at 120 BPM
    midi.tracks.append(track)
    midi.save(tmp_path / "long.mid")
    with pytest.raises(SynthError, match=r"long.mid: a message at 90000 s; a score may last at most 86400 s"):
        load_score(tmp_path / "long.mid", engine)
