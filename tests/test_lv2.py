"""LV2 plugins in the chain, on lilv, with real installed plugins (Debian lv2-examples, swh-lv2,
dragonfly-reverb-lv2; the README's set-up installs them)."""

import json
import time

import numpy as np
import pytest

from conftest import JACK_PERIOD, JACK_RATE, assert_process_allocates_nothing, realtime_trials
from synth.cli import main
from synth.errors import SynthError
from synth.events import NoteOff, NoteOn
from synth.lv2.catalog import installed
from synth.presets import load_preset, parse_preset, save_preset
from synth.render import render_array, render_file
from synth.scores import load_score

AMP = "http://lv2plug.in/plugins/eg-amp"
LOWPASS = "http://plugin.org.uk/swh-plugins/buttlow_iir"
GVERB = "http://plugin.org.uk/swh-plugins/gverb"
EARLY = "urn:dragonfly:early"
SR = 48000

def _installed() -> list[str]:
    try:
        return installed()
    except SynthError:  # no lilv: the README's set-up installs it
        return []


pytestmark = pytest.mark.skipif(AMP not in _installed(), reason="the README's set-up installs lilv and the LV2 test plugins")


def preset_with(*slots, name="t"):
    chain = [{"plugin": "oscillator", "id": "osc", "params": {"waveform": "saw", "release_ms": 50.0}}, *slots]
    return parse_preset({"format_version": 1, "name": name, "chain": chain})


def lv2_slot(slot_id, uri, **params):
    return {"plugin": "lv2", "id": slot_id, "settings": {"uri": uri}, "params": params}


def render(preset, events, frames, block=256, channels=2):
    engine = preset.build_engine(SR, block, channels)
    engine.prepare()
    return render_array(engine, events, frames, block)


def rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


NOTE = [NoteOn(0, 57, 100), NoteOff(SR // 2, 57)]


def test_plugins_leave_the_float_environment_and_every_render_of_a_preset_is_the_same():
    """Loading Dragonfly's and mda's libraries (linked with -ffast-math) leaves subnormal floats
    working in this process, and a second render of piano-room in the same process is the first
    one, sample for sample (Dragonfly draws from C's rand(), seeded afresh at each activation)."""
    from synth.render import render_array

    tiny = np.array([2.2250738585072014e-308])  # the smallest normal float64
    preset = load_preset("piano-room")
    renders = [render_array(preset.build_engine(48000, 256, 2), [NoteOn(0, 60, 100), NoteOff(12000, 60)], 24000)
               for _ in range(2)]
    assert (tiny / 2)[0] > 0.0  # not flushed to zero
    assert np.max(np.abs(renders[0])) > 0.01
    np.testing.assert_array_equal(renders[0], renders[1])


@pytest.mark.parametrize("gain_db", [-6.0, 5.0, -20.0])
def test_a_gain_port_in_db_changes_the_level_by_that_many_db(gain_db):
    dry = render(preset_with(), NOTE, SR // 2)
    wet = render(preset_with(lv2_slot("amp", AMP, gain=gain_db)), NOTE, SR // 2)
    assert 20 * np.log10(rms(wet) / rms(dry)) == pytest.approx(gain_db, abs=0.1)


def spectral_centroid_hz(x):
    spectrum = np.abs(np.fft.rfft(x[:, 0] * np.hanning(len(x))))
    return float(np.sum(np.fft.rfftfreq(len(x), 1 / SR) * spectrum) / np.sum(spectrum))


def test_a_lowpass_cutoff_lowers_the_spectral_centroid():
    """swh's Butterworth lowpass gives its cutoff in multiples of the sample rate (lv2:sampleRate)."""
    open_ = render(preset_with(lv2_slot("lp", LOWPASS, cutoff=0.4)), NOTE, SR // 2)
    closed = render(preset_with(lv2_slot("lp", LOWPASS, cutoff=0.01)), NOTE, SR // 2)  # 480 Hz
    assert spectral_centroid_hz(closed) < 0.5 * spectral_centroid_hz(open_)
    assert spectral_centroid_hz(closed) < 1000


@pytest.mark.parametrize("uri", [GVERB, EARLY])
def test_a_reverb_adds_a_tail_after_the_dry_note_ends(uri):
    frames = 2 * SR
    dry = render(preset_with(), NOTE, frames)
    wet = render(preset_with(lv2_slot("verb", uri)), NOTE, frames)
    dry_end = int(np.flatnonzero(np.abs(dry[:, 0]) > 1e-6)[-1]) + 1
    after = slice(dry_end, dry_end + SR // 20)  # the 50 ms after the dry note's release is over
    assert rms(dry[after]) == 0.0 and rms(wet[after]) > 1e-3


def test_a_mono_plugin_runs_once_per_channel_and_keeps_the_stereo_image(tmp_path):
    pan = {"plugin": "gain_pan", "id": "pan", "params": {"pan": -1.0}}  # everything in the left channel
    out = render(preset_with(pan, lv2_slot("amp", AMP, gain=-6.0)), NOTE, SR // 4)
    assert rms(out[:, 0]) > 0.01 and rms(out[:, 1]) < 1e-6


def test_a_timed_parameter_change_takes_effect_on_its_sample(tmp_path):
    """A score's /param line at 0.25 s: the output equals the unchanged render up to that sample
    and departs from it there."""
    preset = preset_with(lv2_slot("amp", AMP, gain=0.0))
    change_at = SR // 4
    score = tmp_path / "score.jsonl"
    score.write_text("\n".join(json.dumps(line) for line in [
        {"time": 0.0, "address": "/note/on", "args": [57, 100]},
        {"time": 0.25, "address": "/param/amp/gain", "args": [-40.0]},
    ]) + "\n")
    events = load_score(score, preset.build_engine(SR, 256), preset.osc_map)
    changed = render(preset, events, SR // 2)
    unchanged = render(preset, [e for e in events if isinstance(e, NoteOn)], SR // 2)
    assert np.array_equal(changed[:change_at], unchanged[:change_at])
    assert not np.array_equal(changed[change_at:change_at + 8], unchanged[change_at:change_at + 8])
    assert rms(changed[-SR // 10:]) < 0.02 * rms(unchanged[-SR // 10:])  # -40 dB once the glide is over


def test_offline_renders_through_an_lv2_plugin_are_byte_identical(tmp_path):
    preset = preset_with(lv2_slot("verb", GVERB, roomsize=40.0))
    score = tmp_path / "score.jsonl"
    score.write_text(json.dumps({"time": 0.0, "address": "/note/on", "args": [60, 100]}) + "\n"
                     + json.dumps({"time": 0.3, "address": "/note/off", "args": [60]}) + "\n")
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"
    render_file(preset, score, first, tail_s=1.0, progress=False)
    render_file(preset, score, second, tail_s=1.0, progress=False)
    assert first.read_bytes() == second.read_bytes()


def test_engine_process_with_an_lv2_slot_allocates_nothing():
    engine = preset_with(lv2_slot("amp", AMP, gain=-3.0), lv2_slot("verb", GVERB)).build_engine(SR, 256)
    engine.prepare()
    engine.schedule(NoteOn(0, 60, 100))
    out = np.zeros((256, 2), np.float32)
    engine.process(out)
    assert_process_allocates_nothing(engine, out, 50)


def test_lv2_parameters_are_addressable_saved_and_listed(tmp_path, capsys):
    preset = preset_with(lv2_slot("verb", GVERB, revtime=2.5, drylevel=-6.0), name="verb")
    path = save_preset(preset, tmp_path / "verb.toml")
    again = load_preset(path)
    assert again.chain[1].settings == {"uri": GVERB} and again.chain[1].params["revtime"] == 2.5
    engine = again.build_engine(SR, 256)
    assert engine.param_spec("verb", "revtime").maximum == 30.0
    assert main(["plugins", "--lv2", GVERB]) == 0
    shown = capsys.readouterr().out
    assert "revtime" in shown and "0.1..30" in shown
    assert main(["plugins", "--lv2"]) == 0
    listing = capsys.readouterr().out
    assert AMP in listing and "needs state#loadDefaultState" in listing  # eg-sampler: refused by name


@pytest.mark.parametrize("slot, sentence", [
    (lv2_slot("x", "urn:dragonfly:rom"), "chain[1].settings: no installed LV2 plugin has the URI 'urn:dragonfly:rom'; "
                                           "the closest installed: urn:dragonfly:room"),
    (lv2_slot("x", AMP, volume=1.0), "chain[1].params.volume: plugin 'lv2' has no parameter 'volume' (it has: gain)"),
    (lv2_slot("x", AMP, gain=30.0), "chain[1].params.gain: expected a number in -90..24 dB, got 30.0"),
    (lv2_slot("x", "http://lv2plug.in/plugins/eg-fifths"), "has no audio output, so it cannot sit in a chain"),
    ({"plugin": "lv2", "id": "x"}, "chain[1].settings: an lv2 slot needs settings.uri"),
])
def test_bad_lv2_slots_fail_in_one_sentence_naming_the_key(slot, sentence):
    with pytest.raises(SynthError) as error:
        preset_with(slot)
    assert sentence in str(error.value)


def test_a_plugin_needing_an_unsupported_feature_is_refused_by_name():
    preset = preset_with(lv2_slot("x", "http://lv2plug.in/plugins/eg-sampler"))
    with pytest.raises(SynthError, match="needs host features this host does not provide: "
                                         "http://lv2plug.in/ns/ext/state#loadDefaultState"):
        preset.build_engine(SR, 256).prepare()


def test_a_plugin_that_needs_the_worker_plays():
    """Dragonfly's room reverb requires the worker feature."""
    frames = 2 * SR
    wet = render(preset_with(lv2_slot("room", "urn:dragonfly:room", late_level=60.0, decay=2.0)), NOTE, frames)
    assert rms(wet[int(0.7 * SR):int(1.2 * SR)]) > 1e-3


@pytest.mark.parametrize("threaded", [False, True])
def test_the_worker_runs_jobs_and_hands_back_responses_before_a_later_run(threaded, monkeypatch):
    """The host side of the worker, driven the way a plugin drives it (no installed plugin here
    schedules work while it runs): requests scheduled from the audio thread are worked (at once
    offline, on the worker thread in the audio plane), and each response reaches work_response at
    the start of a later run, in order."""
    import ctypes

    from synth.lv2 import worker as lv2_worker
    from synth.lv2.lilv import EXTENSION_DATA, RESPOND_FUNCTION, WorkerInterface

    monkeypatch.setattr(lv2_worker, "threaded", threaded)
    worked, responses, ended = [], [], []

    @ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, RESPOND_FUNCTION, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)
    def work(_instance, respond, handle, size, data):
        request = ctypes.string_at(data, size)
        worked.append(request)
        reply = request.upper()
        return respond(handle, len(reply), reply)

    @ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)
    def work_response(_instance, size, data):
        responses.append(ctypes.string_at(data, size))
        return 0

    @ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
    def end_run(_instance):
        ended.append(True)
        return 0

    interface = WorkerInterface(work, work_response, end_run)
    extension = EXTENSION_DATA(lambda uri: ctypes.addressof(interface) if uri == b"http://lv2plug.in/ns/ext/worker#interface" else None)
    host_side = lv2_worker.Worker()
    host_side.attach(None, extension)
    schedule = host_side.feature_data.schedule_work
    for request in (b"load a", b"load b"):
        assert schedule(None, len(request), request) == 0
    deadline = time.monotonic() + 5
    while len(responses) < 2 and time.monotonic() < deadline:
        host_side.deliver()  # a run's start
        host_side.end_run()
        time.sleep(0.01)
    host_side.close()
    assert worked == [b"load a", b"load b"] and responses == [b"LOAD A", b"LOAD B"] and ended


@pytest.mark.parametrize("preset", ["pluck-hall", "piano-room"])
def test_live_streaming_through_an_lv2_reverb_has_no_underflow(jack, preset):
    """The shipped LV2 presets live: GVerb after our oscillator; mda's Piano into Dragonfly's room
    reverb, whose worker runs on a thread of the audio plane."""
    from synth.host import Host

    def trial():
        with Host(load_preset(preset), JACK_RATE, JACK_PERIOD, device=jack) as host:
            for note in (57, 60, 64):
                host.post(NoteOn(0, note, 100))
            time.sleep(2.0)
            voices = host.active_voices
        return host.underflow_times(), (host, voices)

    host, voices = realtime_trials(trial)
    assert host.callbacks > 300 and host.counters.nonfinite_blocks == 0 and voices == 3


EPIANO = "http://drobilla.net/plugins/mda/EPiano"
PIANO = "http://drobilla.net/plugins/mda/Piano"  # valgrind finds no uninitialised read in it (EPiano has some)


def instrument(uri=EPIANO, *effects):
    return parse_preset({"format_version": 1, "name": "i", "chain": [lv2_slot("keys", uri), *effects]})


def test_an_lv2_instrument_plays_a_note_at_its_pitch_from_the_note_on_sample():
    """mda's EPiano (an lv2:Plugin with a MIDI input and audio outputs only: an instrument)."""
    import librosa

    start = 12_345  # not on a block boundary
    out = render(instrument(), [NoteOn(start, 69, 100), NoteOff(start + SR, 69)], 2 * SR)
    sounding = np.flatnonzero(np.abs(out[:, 0]) > 1e-4)
    assert sounding[0] == start  # its reported latency is 0
    f0, voiced, _ = librosa.pyin(out[start:start + SR // 2, 0].astype(np.float64), fmin=200, fmax=900, sr=SR,
                                 frame_length=4096, resolution=0.01)
    assert abs(1200 * np.log2(np.nanmedian(f0[voiced]) / 440.0)) < 5


def test_an_lv2_instrument_takes_chords_note_offs_and_all_notes_off():
    engine = instrument().build_engine(SR, 256)
    engine.prepare()
    keys = engine.slot("keys").plugin
    out = np.zeros((256, 2), np.float32)
    for note in (60, 64, 67):
        engine.schedule(NoteOn(engine.sample_time, note, 90))
    engine.process(out)
    assert engine.active_voices == 3 and np.max(np.abs(out)) > 0
    engine.schedule(NoteOff(engine.sample_time, 64))
    engine.process(out)
    assert engine.active_voices == 2
    from synth.events import AllNotesOff

    engine.schedule(AllNotesOff(engine.sample_time))
    for _ in range(400):  # 2 s: the release dies away
        engine.process(out)
    assert engine.active_voices == 0 and np.max(np.abs(out)) < 1e-3 and keys.dropped_midi == 0


def test_an_lv2_instrument_renders_live_as_offline(jack):
    """An LV2 instrument into an LV2 reverb, streamed through JACK with the score scheduled at
    start: the captured take equals the offline render sample for sample."""
    from synth.host import Host

    preset = instrument(PIANO, lv2_slot("verb", GVERB, revtime=1.5))
    frames = 2 * SR
    events = [NoteOn(s * SR // 4, 60 + 4 * s, 100) for s in range(4)] + [NoteOff(SR, 60 + 4 * s) for s in range(4)]

    def trial():
        host = Host(preset, JACK_RATE, JACK_PERIOD, device=jack, capture_frames=frames)
        host.start(events)
        deadline = time.monotonic() + 10
        while host.captured_frames < frames and time.monotonic() < deadline:
            time.sleep(0.1)
        host.stop()
        return host.underflow_times(), host

    live = realtime_trials(trial).capture()
    offline = render(preset, events, frames, JACK_PERIOD)
    assert np.max(np.abs(live)) > 0.05
    assert np.array_equal(live, offline)


def test_a_plugin_s_lv2_state_is_saved_with_the_preset_and_restored(tmp_path):
    """Dragonfly's room reverb has lv2:state: lilv writes it as Turtle into settings.state, the
    saved preset carries it, and a chain built from that preset restores it (saving it again gives
    the same text)."""
    from synth.presets import with_plugin_states

    preset = preset_with(lv2_slot("room", "urn:dragonfly:room", decay=3.0), name="room")
    engine = preset.build_engine(SR, 256)
    engine.prepare()
    captured = with_plugin_states(preset, engine)
    state = captured.chain[1].settings["state"]
    assert "urn:synth-host:state" in state and "urn:dragonfly:room" in state
    again = load_preset(save_preset(captured, tmp_path / "room.toml"))
    assert again.chain[1].settings["state"] == state
    restored = again.build_engine(SR, 256)
    restored.prepare()
    assert with_plugin_states(again, restored).chain[1].settings["state"] == state


def test_a_state_lilv_cannot_read_is_refused_naming_the_preset_and_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('format_version = 1\nname = "bad"\n[[chain]]\nplugin = "lv2"\nid = "room"\n'
                    'settings = { uri = "urn:dragonfly:room", state = "not turtle {{" }\n')
    with pytest.raises(SynthError, match=r"bad.toml: chain\[0\]: settings.state: not an LV2 state lilv can read"):
        load_preset(path).build_engine(SR, 256)


def test_the_latency_port_is_the_slot_s_latency_in_status(jack):
    """swh's artificial latency reports `delay` ms on its latency port; the host reports it as the
    chain's latency (in samples, and in /status and `synth play` as ms)."""
    from synth.host import Host

    preset = preset_with(lv2_slot("late", "http://plugin.org.uk/swh-plugins/artificialLatency", delay=10.0))
    engine = preset.build_engine(SR, 256)
    engine.prepare()
    assert engine.latency_samples == SR // 100
    assert "480 samples" in engine.slot("late").plugin.latency_detail()
    with Host(preset, JACK_RATE, JACK_PERIOD, device=jack) as host:
        time.sleep(0.2)
        assert host.status().plugin_latency_ms == pytest.approx(10.0)


def test_a_state_saved_from_another_plugin_is_refused(tmp_path):
    engine = preset_with(lv2_slot("room", "urn:dragonfly:room")).build_engine(SR, 256)
    engine.prepare()
    state = engine.slot("room").plugin.state()
    with pytest.raises(SynthError, match="settings.state: the state was saved from urn:dragonfly:room, not urn:dragonfly:plate"):
        preset_with({"plugin": "lv2", "id": "plate", "settings": {"uri": "urn:dragonfly:plate", "state": state}}).build_engine(SR, 256)


def test_a_plugin_without_lv2_state_saves_none():
    engine = preset_with(lv2_slot("verb", GVERB)).build_engine(SR, 256)
    engine.prepare()
    assert engine.slot("verb").plugin.state() == ""


def test_a_port_takes_normalised_positions_and_osc_map_addresses(tmp_path):
    from synth.events import ParamChange

    preset = parse_preset({"format_version": 1, "name": "m", "chain": [
        {"plugin": "oscillator", "id": "osc"}, lv2_slot("amp", AMP)], "osc": {"map": {"/1/fader1": "amp/gain"}}})
    score = tmp_path / "s.jsonl"
    score.write_text(json.dumps({"time": 0.0, "address": "/param/amp/gain/norm", "args": [1.0]}) + "\n"
                     + json.dumps({"time": 0.1, "address": "/1/fader1", "args": [0.0]}) + "\n")
    changes = [e for e in load_score(score, preset.build_engine(SR, 256), preset.osc_map) if isinstance(e, ParamChange)]
    assert [(c.slot_id, c.name, c.value) for c in changes] == [("amp", "gain", 24.0), ("amp", "gain", -90.0)]
