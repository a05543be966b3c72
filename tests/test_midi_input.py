"""Live MIDI input through real MIDI ports: JACK MIDI on the JACK dummy server the realtime tests
run (this machine has no ALSA sequencer; where one exists, the ALSA test opens a real port), into
an engine streaming through PortAudio. The sender is another mido/rtmidi client.

Every JACK MIDI port here is opened and closed while the stream is stopped (see
synth.control.midi_input: a JACK client opening in this process stalls our own stream).
"""

import contextlib
import os
import subprocess
import sys
import time

import mido
import pytest

from conftest import JACK_PERIOD, JACK_RATE, realtime_trials
from synth.cli import main
from synth.control.midi_input import MidiInput, candidate_apis, resolve_port
from synth.errors import SynthError
from synth.host import Host
from synth.presets import load_preset
from test_osc import wait_for


@pytest.fixture
def jack_midi(jack):
    """mido's JACK MIDI backend (python-rtmidi), for the test's own sending ports."""
    return mido.Backend("mido.backends.rtmidi", api="UNIX_JACK", load=True)


@pytest.fixture
def idle(jack):
    """A host for the warm-pad preset, not yet streaming, and the preset."""
    preset = load_preset("warm-pad")
    return Host(preset, JACK_RATE, JACK_PERIOD, device=jack), preset


@contextlib.contextmanager
def streaming(host):
    host.start()
    try:
        yield host
    finally:
        host.stop()


def output_to(backend, part):
    """An output port connected to the one input port whose name contains `part`."""
    deadline = time.monotonic() + 3
    while not (names := [n for n in backend.get_output_names() if part in n]):
        assert time.monotonic() < deadline, f"no port {part!r}"
        time.sleep(0.05)
    return backend.open_output(names[0])


def test_virtual_port_plays_the_engine(jack, jack_midi):
    preset = load_preset("warm-pad")

    def trial():
        host = Host(preset, JACK_RATE, JACK_PERIOD, device=jack)
        with MidiInput(host, "virtual", preset.midi_cc, api="jack") as midi:
            assert midi.port_name == "synth-host" and midi.api == "jack"
            keys = output_to(jack_midi, "synth-host")
            with streaming(host):
                keys.send(mido.Message("note_on", note=60, velocity=100, channel=2))
                keys.send(mido.Message("note_on", note=64, velocity=100))
                wait_for(lambda: host.active_voices == 2)
                keys.send(mido.Message("control_change", control=74, value=0))  # [midi.cc] 74 = osc/cutoff_hz
                keys.send(mido.Message("control_change", control=91, value=127))  # 91 = delay/mix
                wait_for(lambda: host.param_value("osc", "cutoff_hz") == 20.0 and host.param_value("delay", "mix") == 1.0)
                keys.send(mido.Message("note_on", note=64, velocity=0))  # velocity 0 is a note-off
                keys.send(mido.Message("control_change", control=7, value=90))  # not mapped: no event
                keys.send(mido.Message("clock"))
                keys.send(mido.Message("control_change", control=123, value=0))  # all notes off
                wait_for(lambda: midi.counters.received == 8)
                wait_for(lambda: host.active_voices == 0)  # all released: the 900 ms release runs out
            keys.close()
        return host.underflow_times(), midi

    midi = realtime_trials(trial)
    c = midi.counters
    assert (c.applied, c.ignored, c.invalid, c.dropped) == (6, 2, 0, 0)
    assert midi.summary() == "MIDI (jack, 'synth-host'): 8 messages, 6 applied, 2 ignored, 0 invalid, 0 dropped"


def test_a_port_is_found_by_part_of_its_name(idle, jack_midi):
    host, preset = idle
    keyboard = jack_midi.open_output("keys-under-test", virtual=True)
    try:
        with MidiInput(host, "UNDER-TEST", preset.midi_cc, api="jack") as midi:
            assert midi.port_name.endswith(":keys-under-test")
            with pytest.raises(SynthError, match=r"No MIDI input port matches 'nope' \(ports: .*keys-under-test"):
                MidiInput(host, "nope", api="jack")
            with streaming(host):
                time.sleep(0.05)  # the JACK server makes the connection
                keyboard.send(mido.Message("note_on", note=57, velocity=90))
                wait_for(lambda: host.active_voices == 1)
    finally:
        keyboard.close()


def test_port_names_resolve_exactly_or_by_one_part():
    names = ["Midi Through:Midi Through Port-0 14:0", "USB Keys:USB Keys MIDI 1 20:0", "USB Pads:Pads 24:0"]
    assert resolve_port("usb keys", names) == names[1]
    assert resolve_port(names[2], names) == names[2]
    with pytest.raises(SynthError, match=r"'USB' matches several ports \('USB Keys.*', 'USB Pads.*'\); name one"):
        resolve_port("USB", names)
    with pytest.raises(SynthError, match=r"No MIDI input port matches 'drum' \(ports: 'Midi Through"):
        resolve_port("drum", names)
    with pytest.raises(SynthError, match="MIDI API 'oss' must be one of: auto, alsa, jack"):
        candidate_apis("oss")


def test_events_for_an_audio_plane_not_running_are_dropped_and_counted(jack, jack_midi):
    """The host is not started: the callback thread must refuse every event at once and count it."""
    preset = load_preset("warm-pad")
    host = Host(preset, JACK_RATE, JACK_PERIOD, device=jack)
    with MidiInput(host, "virtual", preset.midi_cc, api="jack") as midi:
        keys = output_to(jack_midi, "synth-host")
        for note in range(40, 60):
            keys.send(mido.Message("note_on", note=note, velocity=80))
        wait_for(lambda: midi.counters.received == 20)
        keys.close()
    assert (midi.counters.applied, midi.counters.dropped, host.counters.dropped_events) == (20, 20, 20)


def test_a_mapped_controller_the_chain_lacks_is_counted_invalid(idle, jack_midi):
    host, preset = idle
    with MidiInput(host, "virtual", {1: ("ghost", "gain_db")}, api="jack") as midi:
        keys = output_to(jack_midi, "synth-host")
        with streaming(host):
            keys.send(mido.Message("control_change", control=1, value=64))
            wait_for(lambda: midi.counters.received == 1)
        keys.close()
    assert midi.counters.invalid == 1


def test_alsa_sequencer_opens_or_is_one_clear_sentence(idle):
    host, preset = idle
    if os.path.exists("/dev/snd/seq"):
        with MidiInput(host, "virtual", preset.midi_cc, api="alsa") as midi:
            assert "synth-host" in midi.port_name
    else:
        with pytest.raises(SynthError, match=r"^Cannot open MIDI input: the ALSA sequencer \(/dev/snd/seq\) "
                                             r"cannot be opened \(load it: `modprobe snd-seq`\)\.$"):
            MidiInput(host, "virtual", api="alsa")


def test_no_jack_server_is_one_clear_sentence(idle, monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "no-such-server")  # libjack looks for this server name
    with pytest.raises(SynthError, match=r"^Cannot open MIDI input: no JACK server is running"):
        MidiInput(idle[0], "virtual", api="jack")


def test_without_python_rtmidi_the_error_says_what_to_install(idle, monkeypatch):
    monkeypatch.setitem(sys.modules, "rtmidi", None)  # as if it were not installed: import fails
    monkeypatch.delitem(sys.modules, "mido.backends.rtmidi", raising=False)
    with pytest.raises(SynthError, match=r"^Live MIDI input needs python-rtmidi \(pip install python-rtmidi\)\.$"):
        MidiInput(idle[0], "virtual", api="jack")


KEYBOARD = """
import sys, time, mido
backend = mido.Backend("mido.backends.rtmidi", api="UNIX_JACK", load=True)
deadline = time.monotonic() + 10
while not (names := [n for n in backend.get_output_names() if "synth-host" in n]):
    assert time.monotonic() < deadline, "no synth-host port"
    time.sleep(0.05)
keys = backend.open_output(names[0])
time.sleep(0.2)
for data in sys.argv[1:]:
    keys.send(mido.Message.from_hex(data))
time.sleep(0.1)
keys.close()
"""


def test_play_with_midi_from_the_command_line(jack, capsys):
    """`synth play --midi virtual` while another program (a process, as a DAW would be) plays it."""
    keyboard = subprocess.Popen([sys.executable, "-c", KEYBOARD, "90 3C 64", "B0 4A 40", "80 3C 00"],
                                stderr=subprocess.PIPE, text=True)
    code = main(["play", "warm-pad", "--device", str(jack), "--midi", "virtual", "--midi-api", "jack",
                 "--duration", "1.5"])
    keyboard.wait(timeout=10)
    err = capsys.readouterr().err
    assert code == 0 and keyboard.returncode == 0, err + keyboard.stderr.read()
    assert "MIDI from 'synth-host' (jack)" in err
    assert "MIDI (jack, 'synth-host'): 3 messages, 3 applied, 0 ignored, 0 invalid, 0 dropped" in err


def test_command_line_midi_errors_are_one_line_and_exit_2(jack, capsys):
    code = main(["play", "warm-pad", "--device", str(jack), "--midi", "nope-port", "--midi-api", "jack",
                 "--duration", "0.2"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("synth: error: No MIDI input port matches 'nope-port'") and err.count("\n") == 1
