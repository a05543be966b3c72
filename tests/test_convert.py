"""synth convert: JSON Lines scores and sessions to standard MIDI files and back."""

import json
import re
from collections import Counter

import mido
import numpy as np
import pytest

from synth.cli import main
from synth.events import AllNotesOff, NoteOff, NoteOn, ParamChange, PresetLoad, TempoChange
from synth.io.audiofile import read_audio
from synth.presets import load_preset
from synth.render import render_file
from synth.scores import load_score

SAMPLE_RATE = 48000
ONE_MS_SAMPLES = SAMPLE_RATE // 1000
SESSION = [  # as synth.control.recorder writes one: times are sample / sample rate
    {"time": 0.0, "address": "/note/on", "args": [57, 80]},
    {"time": 0.0, "address": "/note/on", "args": [60, 100, 2]},
    {"time": 5445 / 44100, "address": "/param/osc/cutoff_hz", "args": [900.0]},
    {"time": 0.25, "address": "/param/delay/mix/norm", "args": [0.33]},
    {"time": 0.3, "address": "/1/fader1", "args": [0.5]},              # warm-pad's [osc.map]: osc/cutoff_hz
    {"time": 0.31, "address": "/param/osc/attack_ms", "args": [20.0]},  # no controller maps it
    {"time": 0.5, "address": "/tempo/raw", "args": [97]},
    {"time": 0.777777, "address": "/note/off", "args": [57]},
    {"time": 0.9, "address": "/note/on", "args": [60, 0, 2]},
    {"time": 1.0, "address": "/preset/load", "args": ["pluck-lead"]},
    {"time": 1.2, "address": "/note/on", "args": [64, 127]},
    {"time": 1.3, "address": "/param/osc/cutoff_hz", "args": [5000.0]},
    {"time": 1.4, "address": "/param/delay/mix", "args": [0.5]},       # pluck-lead maps no controller to it
    {"time": 2.0001, "address": "/tempo/raw", "args": [20]},
    {"time": 3.5, "address": "/note/off", "args": [64]},
    {"time": 3.5, "address": "/notes/off", "args": []},
]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def score_events(path):
    """The events `synth render warm-pad PATH` plays."""
    preset = load_preset("warm-pad")
    return load_score(path, preset.build_engine(SAMPLE_RATE), preset.osc_map, preset.midi_cc, Counter())


def test_a_session_comes_back_from_midi_with_its_notes_controllers_tempo_and_preset_loads(tmp_path, capsys):
    session = write_jsonl(tmp_path / "session.jsonl", SESSION)
    midi_path, back = tmp_path / "session.mid", tmp_path / "back.jsonl"

    assert main(["convert", str(session), str(midi_path), "--preset", "warm-pad"]) == 0
    assert capsys.readouterr().out == (
        f"wrote {midi_path}: 3 notes, 5 controller changes, 2 tempo changes, 1 preset load; skipped 2 with no "
        "counterpart: /param/delay/mix (1), /param/osc/attack_ms (1)\n")
    midi = mido.MidiFile(midi_path)
    assert [m.text for m in midi.tracks[0] if m.type == "marker"] == ["/preset/load pluck-lead"]
    assert {(m.channel, m.note) for m in midi.tracks[0] if m.type == "note_on"} == {(0, 57), (1, 60), (0, 64)}
    assert sorted({m.control for m in midi.tracks[0] if m.type == "control_change"}) == [74, 91, 123]

    assert main(["convert", str(midi_path), str(back), "--preset", "warm-pad"]) == 0
    assert capsys.readouterr().out == (
        f"wrote {back}: 3 notes, 5 controller changes, 2 tempo changes, 1 preset load\n")

    spec = load_preset("warm-pad").build_engine().param_spec
    unmapped = {(round(0.31 * SAMPLE_RATE), "osc", "attack_ms"), (round(1.4 * SAMPLE_RATE), "delay", "mix")}
    expected = [event for event in score_events(session)
                if not (isinstance(event, ParamChange) and (event.time_samples, event.slot_id, event.name) in unmapped)]
    returned = score_events(back)
    assert [type(event) for event in returned] == [type(event) for event in expected]
    for before, after in zip(expected, returned):
        assert abs(after.time_samples - before.time_samples) <= ONE_MS_SAMPLES, (before, after)
        match before:
            case NoteOn():
                assert (after.note, after.velocity, after.channel) == (before.note, before.velocity, before.channel or 1)
            case NoteOff():
                assert (after.note, after.channel) == (before.note, before.channel or 1)
            case ParamChange():
                assert (after.slot_id, after.name) == (before.slot_id, before.name)
                position = spec(before.slot_id, before.name).to_normalized
                assert abs(position(after.value) - position(before.value)) <= 1 / 127
            case TempoChange():
                assert after.bpm == pytest.approx(before.bpm, abs=1e-3)
            case PresetLoad():
                assert after.name == before.name
            case _:
                assert isinstance(after, AllNotesOff)


def test_a_midi_file_as_jsonl_renders_the_same_audio_as_the_midi_file(tmp_path, capsys):
    midi = mido.MidiFile(ticks_per_beat=480)
    tempo, notes = mido.MidiTrack(), mido.MidiTrack()
    midi.tracks += [tempo, notes]
    tempo += [mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100)),
              mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(150), time=480)]
    notes += [mido.MetaMessage("track_name", name="lead"),
              mido.Message("note_on", note=60, velocity=90),
              mido.Message("control_change", control=74, value=40, time=100),
              mido.Message("control_change", control=7, value=100),          # no [midi.cc] entry
              mido.Message("pitchwheel", pitch=2000, time=10),
              mido.Message("note_on", note=64, velocity=70, channel=1, time=200),
              mido.Message("note_off", note=60, time=300),
              mido.Message("control_change", control=91, value=64),
              mido.Message("note_on", note=64, velocity=0, channel=1, time=400),
              mido.Message("control_change", control=123, value=0, time=7)]
    midi_path, score = tmp_path / "song.mid", tmp_path / "song.jsonl"
    midi.save(midi_path)

    assert main(["convert", str(midi_path), str(score), "--preset", "warm-pad"]) == 0
    assert capsys.readouterr().out == (
        f"wrote {score}: 2 notes, 3 controller changes, 2 tempo changes, 0 preset loads; skipped 2 with no "
        "counterpart: control_change 7 (1), pitchwheel (1)\n")
    preset = load_preset("warm-pad")
    render_file(preset, midi_path, tmp_path / "from-midi.wav", tail_s=0.5, progress=False)
    render_file(preset, score, tmp_path / "from-jsonl.wav", tail_s=0.5, progress=False)
    from_midi, _ = read_audio(tmp_path / "from-midi.wav")
    from_jsonl, _ = read_audio(tmp_path / "from-jsonl.wav")
    assert from_midi.shape == from_jsonl.shape and np.max(np.abs(from_midi)) > 0.01
    assert np.array_equal(from_midi, from_jsonl)


def test_without_a_preset_notes_convert_and_parameter_lines_are_listed(tmp_path, capsys):
    score = write_jsonl(tmp_path / "score.jsonl", SESSION[:5])
    out = tmp_path / "score.mid"
    assert main(["convert", str(score), str(out)]) == 0
    assert capsys.readouterr().out == (
        f"wrote {out}: 2 notes, 0 controller changes, 0 tempo changes, 0 preset loads; skipped 3 with no "
        "counterpart: /1/fader1 (1), /param/delay/mix/norm (1), /param/osc/cutoff_hz (1)\n")


def midi_file(path, *messages):
    midi = mido.MidiFile()
    midi.tracks.append(mido.MidiTrack(messages))
    midi.save(path)


def truncated_midi(path):
    midi_file(path, mido.Message("note_on", note=60, velocity=90), mido.Message("note_off", note=60, time=480))
    path.write_bytes(path.read_bytes()[:-6])


@pytest.mark.parametrize("make, argv, message", [
    (lambda d: write_jsonl(d / "in.jsonl", SESSION), ["in.jsonl", "out.wav"],
     r"cannot convert in\.jsonl to out\.wav: one file must be a JSON Lines score \(\.json, \.jsonl\) and the other "
     r"a MIDI file \(\.mid, \.midi, \.smf\)"),
    (lambda d: write_jsonl(d / "in.jsonl", SESSION), ["in.jsonl", "out.json"], r"cannot convert in\.jsonl to out\.json"),
    (lambda d: None, ["missing.mid", "out.jsonl"], r"\S*missing\.mid: no such file"),
    (lambda d: (d / "in.jsonl").write_text('{"time": 0, "address": "/note/on", "args": [60, 1]}\n{not json\n'),
     ["in.jsonl", "out.mid"], r"\S*in\.jsonl:2: not valid JSON"),
    (lambda d: write_jsonl(d / "in.jsonl", [{"time": 0, "address": "/tempo/raw", "args": [5000]}]),
     ["in.jsonl", "out.mid"], r"\S*in\.jsonl:1: /tempo/raw: expected a tempo in 20\.\.999 bpm, got 5000"),
    (lambda d: write_jsonl(d / "in.jsonl", SESSION[5:6]), ["in.jsonl", "out.mid", "--preset", "warm-pad"],
     r"\S*in\.jsonl: nothing to convert: no notes, mapped controllers, tempo changes or preset loads "
     r"\(skipped: /param/osc/attack_ms\)"),
    (lambda d: write_jsonl(d / "in.jsonl", [{"time": 0, "address": "/tempo/raw", "args": [999]},
                                            {"time": 5000, "address": "/note/on", "args": [60, 90]}]),
     ["in.jsonl", "out.mid"], r"\S*in\.jsonl: the gap before the line at 5000 s is longer than a MIDI file can hold "
                              r"at 999 bpm"),
    (lambda d: (d / "in.mid").write_bytes(b"RIFF not a MIDI file"), ["in.mid", "out.jsonl"],
     r"\S*in\.mid: not a standard MIDI file"),
    (lambda d: truncated_midi(d / "in.mid"), ["in.mid", "out.jsonl"], r"\S*in\.mid: the MIDI file ends early"),
    (lambda d: midi_file(d / "in.mid", mido.MetaMessage("marker", text="/preset/load ../secret")),
     ["in.mid", "out.jsonl"], r"\S*in\.mid: the marker at 0 s: preset name '\.\./secret' refused"),
    (lambda d: write_jsonl(d / "in.jsonl", SESSION), ["in.jsonl", "out.mid", "--preset", "no-such-preset"],
     r"no preset called 'no-such-preset'"),
])
def test_a_bad_conversion_is_one_sentence_exit_2_and_writes_nothing(tmp_path, capsys, make, argv, message):
    make(tmp_path)
    before = sorted(tmp_path.iterdir())
    assert main(["convert", *(str(tmp_path / arg) if i < 2 else arg for i, arg in enumerate(argv))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("synth: error: "), err
    assert re.match(message, err[len("synth: error: "):]), err
    assert sorted(tmp_path.iterdir()) == before  # no output, no temporary file left


def test_an_output_in_a_missing_folder_is_refused_before_anything_runs(tmp_path, capsys):
    score = write_jsonl(tmp_path / "score.jsonl", SESSION)
    assert main(["convert", str(score), str(tmp_path / "no" / "out.mid")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert sorted(tmp_path.iterdir()) == [score]
