"""The OSC server over real UDP on 127.0.0.1, with the engine streaming through JACK's dummy backend."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pythonosc.osc_message import OscMessage

from conftest import JACK_PERIOD, JACK_RATE, realtime_trials
from synth.control.osc import OscServer
from synth.control.recorder import SessionRecorder
from synth.events import PresetLoad
from synth.host import Host
from synth.presets import ChainEntry, PresetSpec, load_preset
from synth.render import render_array
from synth.scores import load_score
from test_osc_wire import bundle, message


class Client:
    """A controller: a UDP socket on 127.0.0.1 that sends packets and reads replies."""

    def __init__(self, port):
        self.port = port
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(2.0)

    def send(self, packet):
        self.socket.sendto(packet, ("127.0.0.1", self.port))

    def replies(self, count=1):
        return [OscMessage(self.socket.recvfrom(65536)[0]) for _ in range(count)]

    def close(self):
        self.socket.close()


def wait_for(condition, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def served(jack):
    """A running host (warm-pad preset) with its OSC server on a free port, and a client."""
    preset = load_preset("warm-pad")
    host = Host(preset, JACK_RATE, JACK_PERIOD, device=jack)
    host.start()
    server = OscServer(host, port=0, osc_map=preset.osc_map)
    server.start()
    client = Client(server.port)
    yield host, server, client
    client.close()
    server.stop()
    host.stop()


def test_notes_and_parameters_arrive(served):
    host, server, client = served
    client.send(message("/note/on", 60, 100))
    wait_for(lambda: host.active_voices == 1)
    client.send(message("/param/osc/cutoff_hz", 440))
    client.send(message("/param/delay/mix/norm", 1.0))
    client.send(message("/param/out/gain_db", True))  # booleans count as numbers
    client.send(message("/1/fader1", 0.0))  # the preset's [osc.map]
    wait_for(lambda: server.counters.applied == 5)
    wait_for(lambda: host.param_value("osc", "cutoff_hz") == 20.0)
    assert host.param_value("delay", "mix") == 1.0
    assert host.param_value("out", "gain_db") == 1.0
    client.send(message("/note/on", 60, 0))  # velocity 0 is a note-off
    wait_for(lambda: host.active_voices == 0)  # released: the 900 ms release runs out


def test_address_patterns_reach_every_match(served):
    host, server, client = served
    client.send(message("/param/{osc,delay}/*/norm", 0.0))
    wait_for(lambda: host.param_value("osc", "cutoff_hz") == 20.0 and host.param_value("delay", "time_ms") == 1.0)
    assert host.param_value("osc", "waveform") == 0 and host.param_value("delay", "feedback") == 0.0


def test_status_params_and_notify_reply_to_the_sender(served):
    host, server, client = served
    client.send(message("/status"))
    (status,) = client.replies()
    assert status.address == "/status/reply"
    (load, peak, rate, voices, underflows, late, worst_ms, dropped, refused, malformed, uptime,
     chain_latency_ms, input_latency_ms, output_latency_ms) = status.params
    assert rate == JACK_RATE and underflows == host.underflows and 0 <= load <= peak and uptime > 0
    assert chain_latency_ms == 0.0 and input_latency_ms == 0.0 and output_latency_ms > 0  # no input, no transfer
    client.send(message("/params"))
    count = sum(len(slot.plugin.param_specs) for slot in host.chain.slots)
    replies = client.replies(count)
    first = replies[0].params
    assert first[:6] == ["/param/osc/waveform", 0.0, 3.0, 2.0, "", "linear"]
    assert first[7:] == ["sine", "triangle", "saw", "square"]  # a choice's names follow its index
    assert {r.params[0] for r in replies} >= {"/param/osc/cutoff_hz", "/param/delay/mix", "/param/out/pan"}
    client.send(message("/notify", 1))
    wait_for(lambda: server.subscribers)
    client.send(message("/param/out/pan", -0.5))
    (echo,) = client.replies()
    assert (echo.address, echo.params) == ("/param/out/pan", [-0.5])


def test_reaper_keyboard_tempo_and_preset_load(served):
    host, server, client = served
    client.send(message("/vkb_midi/0/note/64", 90.0))
    wait_for(lambda: host.active_voices == 1)
    client.send(message("/param/delay/sync", "1/4"))
    client.send(message("/tempo/raw", 96.0))
    client.send(message("/play", 1))
    wait_for(lambda: host.tempo_bpm == 96.0 and server.playing)
    assert host.param_value("delay", "time_ms") == pytest.approx(625.0)  # a beat at 96 bpm
    client.send(message("/preset/load", "pluck-lead"))
    wait_for(lambda: host.param_value("osc", "waveform") == 3)  # square
    for hostile in ("../../etc/passwd", "/etc/passwd", "../presets/warm-pad", "nope"):
        client.send(message("/preset/load", hostile))
    wait_for(lambda: server.counters.invalid == 4)
    assert server.preset_name == "Pluck Lead"


def test_hostile_packets_are_counted_and_change_nothing(served):
    host, server, client = served
    deep = message("/notes/off")
    for _ in range(3000):
        deep = bundle(None, deep)
    hostile = [b"\xff" * 100, b"", b"/note/on\x00\x00\x00\x00,ii\x00\x00\x00\x00\x3c",
               b"/note/on\x00\x00\x00\x00,zz\x00", deep[:65000], bundle(None, deep[:400])]
    for packet in hostile:
        client.send(packet)
    invalid = [message("/note/on", float("nan"), 100), message("/note/on", 60, float("inf")),
               message("/note/on", "C4", 100), message("/note/on", 60), message("/param/osc/cutoff_hz", "x" * 60000)]
    unknown = [message("/synth/explode"), message("/param/osc/nope", 1.0), message("/param/ghost/gain_db", 1.0)]
    for packet in invalid + unknown:
        client.send(packet)
    client.send(message("/param/out/gain_db", 1e9))  # out of range: clamped, not refused
    wait_for(lambda: server.counters.packets == len(hostile) + len(invalid) + len(unknown) + 1)
    c = server.counters
    assert (c.malformed, c.invalid, c.unknown) == (len(hostile), len(invalid), len(unknown))
    wait_for(lambda: host.param_value("out", "gain_db") == 24.0)
    assert host.active_voices == 0
    client.send(message("/status"))
    assert client.replies()[0].params[9] == len(hostile)  # malformed, reported by /status


def test_no_message_stops_the_server(jack):
    """Every address the server answers, fed garbage of every OSC type, and the /say texts that
    once raised inside the model: each is counted, and the server keeps serving."""
    host = Host(load_preset("speech-voice"), JACK_RATE, JACK_PERIOD, device=jack)
    with host, OscServer(host, port=0) as server:
        client = Client(server.port)
        garbage = [[], [float("nan")], [float("-inf")], ["x" * 3000], [b"\x00\xff"], [True, "a", 2, 3.5, b"z"] * 10]
        addresses = server.addresses() + ["/*", "/param/*/*", "/{say,sing}", "/latent/[xy]*"]
        packets = [message(address, *args) for address in addresses for args in garbage]
        packets += [message("/say", text) for text in ("...", "🎹🎶", " - ", "\u3053\u3093\u306b\u3061\u306f")]
        for packet in packets:
            client.send(packet)
            time.sleep(0.0005)
        wait_for(lambda: server.counters.received == len(packets), timeout=120)
        client.close()
        fresh = Client(server.port)
        fresh.send(message("/status"))
        assert fresh.replies()[0].address == "/status/reply"
        fresh.send(message("/notes/off"))
        fresh.send(message("/note/on", 60, 100))
        wait_for(lambda: host.active_voices == 1, timeout=10)
        fresh.close()
    c = server.counters
    assert c.malformed == 0 and c.applied + c.invalid + c.unknown == len(packets) + 3


def test_only_allowed_senders_control(jack):
    host = Host(load_preset("warm-pad"), JACK_RATE, JACK_PERIOD, device=jack)
    with host, OscServer(host, port=0, allow=frozenset({"127.0.0.2"})) as server:
        client = Client(server.port)
        client.send(message("/note/on", 60, 100))
        wait_for(lambda: server.counters.refused == 1)
        assert host.active_voices == 0
        client.close()


def impulse_host(jack, capture_frames):
    preset = PresetSpec("impulses", [ChainEntry("test_impulse", "imp", {"level": 0.5}), ChainEntry("gain_pan", "out")])
    return Host(preset, JACK_RATE, JACK_PERIOD, device=jack, capture_frames=capture_frames,
                plugin_modules=["conftest"])


def test_datagrams_the_socket_buffer_could_not_hold_are_counted_as_socket_drops():
    """Nothing reads the socket of a server not yet started: what its receive buffer (asked for
    4 MB) cannot hold the kernel drops, and socket_drops() has every datagram the server never read."""
    server = OscServer(Host(load_preset("warm-pad")), port=0)
    client = Client(server.port)
    try:
        assert server.socket_drops() == 0
        packet = message("/param/delay/mix", b"x" * 8000)
        sent = 2500  # 20 MB: more than any receive buffer the kernel gives (8 MB at most by default)
        for _ in range(sent):
            client.send(packet)
        drops = server.socket_drops()
        server.start()
        wait_for(lambda: server.counters.packets + drops == sent)
        assert 0 < drops < sent and server.socket_drops() == drops
    finally:
        client.close()
        server.stop()
    assert server.socket_drops() == drops  # kept for the summary after the socket closed


def test_bundles_land_on_their_sample_and_late_ones_are_counted(jack):
    host = impulse_host(jack, JACK_RATE * 2)
    with host, OscServer(host, port=0) as server:
        client = Client(server.port)
        time.sleep(0.2)
        now = time.time()
        client.send(bundle(now + 0.5, message("/note/on", 60, 100), bundle(now + 0.6, message("/note/on", 61, 100))))
        client.send(message("/note/on", 62, 100))  # no timetag: the start of the next block
        client.send(bundle(now - 1.0, message("/note/on", 63, 100)))  # a second late
        wait_for(lambda: host.captured_frames >= JACK_RATE * 2)
        client.close()
    audio = host.capture()[:, 0]
    hits = list(np.flatnonzero(audio))
    # the message without a timetag and the late bundle both apply at the start of the next block
    assert len(hits) == 3 and hits[0] % JACK_PERIOD == 0
    assert audio[hits[0]] == pytest.approx(10 ** (-0.3 / 20))  # two impulses at once, at the ceiling
    # the timed ones are placed to reach the output half a second after sending: in samples, 0.5 s
    # less the output latency (one period here) and less the wait for the block the immediate one
    # took; and exactly 0.1 s apart (one clock reading for both)
    assert 0.5 * JACK_RATE - 3 * JACK_PERIOD <= hits[1] - hits[0] <= 0.5 * JACK_RATE
    assert hits[2] - hits[1] == round(0.1 * JACK_RATE)
    assert host.counters.late_events == 1
    assert host.status().worst_late_ms == pytest.approx(1000, abs=60)


def test_recorded_session_renders_to_the_same_samples(jack, tmp_path):
    """A session with notes, mapped faders, timed bundles and a preset load in the middle: the
    recording re-renders offline to the very samples the stream played, and building the loaded
    chain in the audio plane starved the stream of nothing (no underflow a machine stall does not
    explain)."""
    seconds = 4.0
    frames = round(seconds * JACK_RATE)
    preset = load_preset("warm-pad")
    session = tmp_path / "session.jsonl"

    def trial():
        host = Host(preset, JACK_RATE, JACK_PERIOD, device=jack, capture_frames=frames, recording=True)
        recorder = SessionRecorder(host, session)
        host.start()
        recorder.start()
        with OscServer(host, port=0, osc_map=preset.osc_map) as server:
            client = Client(server.port)
            for step in range(16):
                if step == 8:
                    client.send(message("/preset/load", "pluck-lead"))
                client.send(message("/note/on", 48 + 3 * step, 100))
                client.send(message("/1/fader1" if step < 8 else "/param/osc/cutoff_hz/norm", step / 16))
                if step % 3 == 2:
                    client.send(bundle(time.time() + 0.05, message("/note/off", 48 + 3 * (step - 2))))
                time.sleep(0.15)
            client.send(message("/notes/off"))
            wait_for(lambda: host.captured_frames >= frames, timeout=10)
            client.close()
        host.stop()
        recorder.stop()
        return host.underflow_times(), (host, server)

    host, server = realtime_trials(trial)
    assert server.counters.invalid == 0 and server.counters.unknown == 0
    live = host.capture()
    recorded = session.read_text().splitlines()
    assert sum('"/preset/load"' in line for line in recorded) == 1
    events = load_score(session, preset.build_engine(JACK_RATE, JACK_PERIOD), preset.osc_map)
    assert len(events) >= 16 * 2 + 5
    offline = render_array(preset.build_engine(JACK_RATE, JACK_PERIOD), events, frames, JACK_PERIOD)
    assert np.max(np.abs(live)) > 0.01
    loaded_at = next(e.time_samples for e in events if isinstance(e, PresetLoad))
    assert np.max(np.abs(live[loaded_at:])) > 0.01  # the loaded preset played
    assert np.array_equal(live, offline)


FLOOD_SENDER = """
import socket, sys, time
sys.path.insert(0, sys.argv[3])
from test_osc_wire import message
port, rate, seconds = int(sys.argv[1]), int(sys.argv[2]), 5.0
packets = [message("/param/osc/cutoff_hz/norm", (i % 100) / 100) for i in range(100)]
packets += [message("/note/on", 40 + i % 40, 80) for i in range(50)] + [message("/notes/off")] * 50
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent, started = 0, time.monotonic()
while sent < rate * seconds:
    target = min(int((time.monotonic() - started) * rate), int(rate * seconds))
    while sent < target:
        sock.sendto(packets[sent % len(packets)], ("127.0.0.1", port))
        sent += 1
    time.sleep(0.001)
print(sent, time.monotonic() - started)
"""


def test_a_flood_of_messages_never_glitches_the_stream(jack):
    """20,000 messages a second for 5 s from another process (a fader storm plus notes) while the
    stream plays: no underflow, the server keeps answering, and what it read is accounted for."""
    def trial():
        host = Host(load_preset("warm-pad"), JACK_RATE, JACK_PERIOD, device=jack)
        with host, OscServer(host, port=0) as server:
            sender = subprocess.run([sys.executable, "-c", FLOOD_SENDER, str(server.port), "20000",
                                     str(Path(__file__).parent)], capture_output=True, text=True, timeout=60)
            sent, elapsed = sender.stdout.split()
            time.sleep(0.5)
            client = Client(server.port)
            underflows_before = host.underflows
            client.send(message("/status"))
            (status,) = client.replies()
            underflows = (underflows_before, host.underflows)  # the stream plays on while /status is asked
            client.close()
        c = server.counters
        print(f"flood: sent {sent} in {float(elapsed):.2f} s, read {c.received}, applied {c.applied}, "
              f"dropped by the event ring {c.dropped}, peak load {100 * host.status().load_peak:.0f}%, "
              f"underflows {host.underflows}, blocks that deferred events {host.deferred_blocks}")
        assert int(sent) == 100_000 and float(elapsed) < 7.5
        return host.underflow_times(), (host, server, status, underflows)

    host, server, status, (underflows_before, underflows_after) = realtime_trials(trial)
    c = server.counters
    assert underflows_before <= status.params[4] <= underflows_after  # /status reports them
    assert c.malformed == 0 and c.invalid == 0 and c.received > 0
