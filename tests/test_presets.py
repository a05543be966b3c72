import os
import subprocess
import sys
import tomllib

import pytest

from synth.errors import SynthError
from synth.presets import SHIPPED_PRESETS, list_presets, load_preset, resolve_preset_path, save_preset

GOOD = '''
format_version = 1
voice_limit = 4
[[chain]]
plugin = "oscillator"
id = "osc"
params = { cutoff_hz = 900.0, waveform = "square" }
[[chain]]
plugin = "delay"
[osc.map]
"/fader/1" = "osc/cutoff_hz"
[midi.cc]
74 = "delay/mix"
'''


def write(tmp_path, text, name="p.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_at_least_three_shipped_presets_load_and_build():
    names = list_presets()
    assert len(names) >= 3
    for name in names:
        spec = load_preset(name)
        engine = spec.build_engine(48000, 128)  # the decoder presets run at their model's 48 kHz
        engine.prepare()
        assert spec.description


def test_a_valid_preset_is_read_completely(tmp_path):
    spec = load_preset(write(tmp_path, GOOD))
    assert spec.voice_limit == 4 and spec.name == "p"
    assert [e.id for e in spec.chain] == ["osc", "delay"]
    assert spec.chain[0].params == {"cutoff_hz": 900.0, "waveform": "square"}
    assert spec.osc_map == {"/fader/1": ("osc", "cutoff_hz")}
    assert spec.midi_cc == {74: ("delay", "mix")}


@pytest.mark.parametrize("change, message", [
    (("plugin = \"delay\"", "plugin = \"dealy\""), r"chain\[1\]\.plugin: unknown plugin 'dealy'; available:"),
    (("voice_limit = 4", "voice_limit = 4\ncolour = 1"), r"colour: unknown key \(allowed: chain, description"),
    (("id = \"osc\"", "id = \"osc\"\nvolume = 3"), r"chain\[0\]\.volume: unknown key"),
    (("cutoff_hz = 900.0", "cutoff_hz = \"bright\""), r"chain\[0\]\.params\.cutoff_hz: expected a number in 20\.\.20000 Hz, got 'bright'"),
    (("cutoff_hz = 900.0", "cutoff_hz = 90000.0"), r"chain\[0\]\.params\.cutoff_hz: expected a number in 20\.\.20000 Hz, got 90000\.0"),
    (("waveform = \"square\"", "waveform = \"wobble\""), r"chain\[0\]\.params\.waveform: expected one of 'sine', 'triangle', 'saw', 'square', got 'wobble'"),
    (("cutoff_hz = 900.0", "cutof_hz = 900.0"), r"chain\[0\]\.params\.cutof_hz: plugin 'oscillator' has no parameter 'cutof_hz'"),
    (("voice_limit = 4", "voice_limit = 0"), r"voice_limit: expected an integer in 1\.\.256, got 0"),
    (("voice_limit = 4", "voice_limit = true"), r"voice_limit: expected an integer in 1\.\.256, got True"),
    (("format_version = 1", "format_version = 2"), r"format_version: expected 1, got 2"),
    (("id = \"osc\"", "id = \"Osc 1\""), r"chain\[0\]\.id: expected a lowercase identifier"),
    (("id = \"osc\"", "id = \"delay\""), r"chain\[1\]\.id: id 'delay' is already used"),
    (("plugin = \"delay\"", "plugin = \"delay\"\nchannel = 2"), r"chain\[1\]\.channel: only instruments take a MIDI channel"),
    (("id = \"osc\"", "id = \"osc\"\nchannel = 17"), r"chain\[0\]\.channel: expected an integer in 1\.\.16, got 17"),
    (("\"/fader/1\" = \"osc/cutoff_hz\"", "\"/fader/1\" = \"filter/cutoff_hz\""), r"osc\.map\.'/fader/1': no chain slot 'filter'"),
    (("\"/fader/1\" = \"osc/cutoff_hz\"", "\"fader\" = \"osc/cutoff_hz\""), r"osc\.map\.'fader': expected an OSC address"),
    (("74 = \"delay/mix\"", "200 = \"delay/mix\""), r"midi\.cc\.'200': expected a controller number 0\.\.127"),
    (("74 = \"delay/mix\"", "74 = \"delay/wet\""), r"midi\.cc\.'74': plugin 'delay' has no parameter 'wet'"),
])
def test_each_kind_of_mistake_names_the_file_and_key(tmp_path, change, message):
    old, new = change
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(SynthError, match=rf"{path}: {message}"):
        load_preset(path)


def test_every_problem_is_reported_at_once(tmp_path):
    text = GOOD.replace("voice_limit = 4", "voice_limit = -1").replace("900.0", "1.0")
    with pytest.raises(SynthError, match=r"\(2 problems\):\n  .*voice_limit.*\n  .*cutoff_hz"):
        load_preset(write(tmp_path, text))


def test_syntax_errors_and_missing_chain(tmp_path):
    with pytest.raises(SynthError, match=r"p\.toml: not valid TOML: .*line 1"):
        load_preset(write(tmp_path, "format_version = = 1"))
    with pytest.raises(SynthError, match=r"q\.toml: chain: expected at least one \[\[chain\]\] table"):
        load_preset(write(tmp_path, "format_version = 1", "q.toml"))


def test_names_cannot_escape_the_preset_folder(tmp_path):
    for name in ("../../etc/passwd", "/etc/passwd", "..", "a/b"):
        with pytest.raises(SynthError):
            load_preset(name, folders=[tmp_path])
    with pytest.raises(SynthError, match=r"no preset called 'nope' \(available: .*warm-pad"):
        resolve_preset_path("nope")


def test_save_round_trips_and_is_atomic(tmp_path):
    spec = load_preset(write(tmp_path, GOOD))
    target = tmp_path / "saved.toml"
    save_preset(spec, target)
    again = load_preset(target)
    assert (again.chain, again.osc_map, again.midi_cc, again.voice_limit) == (spec.chain, spec.osc_map, spec.midi_cc, 4)
    target.write_text("precious")
    spec.chain[0].params["cutoff_hz"] = object()  # cannot be written as TOML: the save fails midway
    with pytest.raises(TypeError):
        save_preset(spec, target)
    assert target.read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["p.toml", "saved.toml"]


def test_shipped_presets_declare_the_format_version():
    for path in SHIPPED_PRESETS.glob("*.toml"):
        assert tomllib.loads(path.read_text())["format_version"] == 1


def test_settings_reach_the_plugin_and_bad_ones_name_the_key(tmp_path):
    text = """format_version = 1
[[chain]]
plugin = "test_impulse"
settings = { polarity = "negative" }
"""
    engine = load_preset(write(tmp_path, text)).build_engine()
    assert engine.slot("test_impulse").plugin.sign == -1.0
    with pytest.raises(SynthError, match=r"chain\[0\]\.settings\.colour: plugin 'test_impulse' takes no setting 'colour' \(it takes: polarity\)"):
        load_preset(write(tmp_path, text.replace("polarity", "colour")))
    with pytest.raises(SynthError, match=r"p\.toml: chain\[0\]: settings\.polarity: expected 'positive' or 'negative', got 'sideways'"):
        load_preset(write(tmp_path, text.replace('"negative"', '"sideways"'))).build_engine()
    saved = save_preset(load_preset(write(tmp_path, text)), tmp_path / "again.toml")
    assert load_preset(saved).chain[0].settings == {"polarity": "negative"}


def test_synth_addresses_prints_a_preset_s_address_table(capsys):
    from synth.cli import main

    assert main(["addresses", "pluck-hall"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split()[0] == "/param/osc/waveform" and "one of 'sine', 'triangle', 'saw', 'square'; now 'square'"
               in line for line in lines if line.strip())
    assert any("/param/osc/cutoff_hz" in line and "20..20000 Hz, log scale; now 3000.0 (default 8000.0)" in line
               for line in lines)
    assert any("/param/hall/revtime" in line and "0.1..30" in line for line in lines)  # the LV2 reverb's ports
    assert "  /1/fader2                      -> /param/hall/taillevel" in lines


def test_synth_addresses_reads_the_plugin_classes_and_loads_no_model():
    """The speaking preset's table comes without building its Voice (whose text-to-mel model takes
    torch and seconds to load): in a fresh interpreter, torch is never imported."""
    script = ("import sys; from synth.cli import main; assert main(['addresses', 'speech-voice']) == 0; "
              "assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "/param/voice/vibrato_rate_hz" in done.stdout and "0.1..12 Hz, log scale; now 5.5" in done.stdout


def _speaks(spec) -> bool:
    return any(entry.plugin == "voice" for entry in spec.chain)


SHIPPED_SCORES = sorted((SHIPPED_PRESETS / "scores").glob("*.jsonl"))
SCORE_KINDS = [(preset, score) for preset in list_presets() for score in SHIPPED_SCORES
               if _speaks(load_preset(preset)) == score.name.startswith("speech")]


def test_every_shipped_instrument_preset_answers_the_shared_faders():
    """/1/fader1 (the preset's main timbre control) and /1/fader2 (its effect amount): the two
    addresses the shipped instrument scores move, so that each plays on every instrument preset."""
    for name in list_presets():
        spec = load_preset(name)
        if not _speaks(spec):
            assert {"/1/fader1", "/1/fader2"} <= set(spec.osc_map), name


@pytest.mark.parametrize("preset, score", SCORE_KINDS, ids=[f"{p}-{s.stem}" for p, s in SCORE_KINDS])
def test_every_shipped_score_plays_on_every_shipped_preset_of_its_kind(preset, score, tmp_path):
    """Instrument scores on every instrument preset, speech scores on every speaking one: every
    line at an address the preset has (no --skip-unknown needed). The warm-pad pairs are rendered
    too (the other chains render in their own tests)."""
    from synth.render import render_file
    from synth.scores import load_score

    spec = load_preset(preset)
    engine = spec.build_engine()
    assert load_score(score, engine, spec.osc_map)
    if preset == "warm-pad":
        summary = render_file(spec, score, tmp_path / "out.wav", progress=False, tail_s=0.5)
        assert summary.peak > 0.01 and summary.loudness_lufs > -50 and summary.skipped == {}
