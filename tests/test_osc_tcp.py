"""OSC over TCP on 127.0.0.1 (size-prefixed and SLIP frames), beside UDP on the same port, with the
engine streaming through JACK's dummy backend; and the stream framings on their own."""

import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pythonosc.osc_message import OscMessage

from conftest import JACK_PERIOD, JACK_RATE, realtime_trials
from synth.cli import main
from synth.control.osc_tcp import (MAX_PACKET, FramingError, OscTcpServer, SizePrefixDecoder, SlipDecoder,
                                   encode_size_prefixed, encode_slip)
from synth.errors import SynthError
from synth.host import Host
from synth.presets import load_preset
from test_osc import Client as UdpClient
from test_osc import wait_for
from test_osc_wire import bundle, message

END, ESC = 0xC0, 0xDB


def slip_frames(data: bytes) -> list[bytes]:
    """Decode SLIP by hand (independently of the decoder under test)."""
    frames = []
    for chunk in data.split(bytes([END])):
        if chunk:
            frames.append(chunk.replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb"))
    return frames


class TcpClient:
    """A controller on one TCP connection: framed sends, framed replies."""

    def __init__(self, port, framing="size", receive_buffer=None):
        self.framing = framing
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.socket.settimeout(3.0)
        self.socket.connect(("127.0.0.1", port))
        self._buffer = b""

    def frame(self, packet):
        return encode_size_prefixed(packet) if self.framing == "size" else encode_slip(packet)

    def send(self, *packets):
        self.socket.sendall(b"".join(self.frame(p) for p in packets))

    def send_raw(self, data):
        self.socket.sendall(data)

    def replies(self, count=1):
        found = []
        while len(found) < count:
            if self.framing == "size":
                while len(self._buffer) >= 4 and len(self._buffer) >= 4 + struct.unpack(">i", self._buffer[:4])[0]:
                    size = struct.unpack(">i", self._buffer[:4])[0]
                    found.append(OscMessage(self._buffer[4 : 4 + size]))
                    self._buffer = self._buffer[4 + size :]
            else:
                cut = self._buffer.rfind(bytes([END]))
                if cut >= 0:
                    found += [OscMessage(f) for f in slip_frames(self._buffer[: cut + 1])]
                    self._buffer = self._buffer[cut + 1 :]
            if len(found) < count:
                data = self.socket.recv(65536)
                assert data, "the server closed the connection"
                self._buffer += data
        return found

    def closed_by_server(self, timeout=3.0):
        """True when the server ends this connection (EOF or reset) within `timeout`."""
        self.socket.settimeout(timeout)
        try:
            while self.socket.recv(65536):
                pass
            return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self):
        self.socket.close()


# --- framings on their own ------------------------------------------------------------------

PACKETS = [message("/note/on", 60, 100), message("/param/osc/cutoff_hz", 440.0),
           bundle(None, message("/notes/off")), bytes([END, ESC, 0xDC, 0xDD, END, 0, 0, 0]) * 3]


@pytest.mark.parametrize("encode, decoder", [(encode_size_prefixed, SizePrefixDecoder), (encode_slip, SlipDecoder)])
@pytest.mark.parametrize("chunk", [1, 3, 63, 64, 65, 257, 100000])
def test_frames_survive_any_split_of_the_stream(encode, decoder, chunk):
    stream = b"".join(encode(p) for p in PACKETS)
    d = decoder()
    got = []
    for start in range(0, len(stream), chunk):
        got += d.feed(stream[start : start + chunk])
    assert got == PACKETS and d.pending == 0


def test_slip_tolerates_empty_frames_and_escapes_split_across_reads():
    d = SlipDecoder()
    assert d.feed(bytes([END, END]) + b"/a\x00\x00" + bytes([ESC])) == []
    assert d.pending == 5
    assert d.feed(bytes([0xDC, END])) == [b"/a\x00\x00\xc0"]


@pytest.mark.parametrize("decoder, data, kind", [
    (SizePrefixDecoder, struct.pack(">i", MAX_PACKET + 1), "oversize"),
    (SizePrefixDecoder, b"GET / HTTP/1.1\r\n", "oversize"),
    (SizePrefixDecoder, struct.pack(">i", -8), "garbage"),
    (SizePrefixDecoder, struct.pack(">i", 0), "garbage"),
    (SlipDecoder, b"/a" + bytes([ESC, 0x41]), "garbage"),
    (SlipDecoder, b"/a" + bytes([ESC, ESC, 0xDC]), "garbage"),
    (SlipDecoder, b"/a" + bytes([ESC, END]), "garbage"),
    (SlipDecoder, b"x" * (MAX_PACKET + 1), "oversize"),
])
def test_streams_that_are_no_frames_are_refused(decoder, data, kind):
    with pytest.raises(FramingError, match="frame|SLIP") as error:
        decoder().feed(data)
    assert error.value.kind == kind


# --- the server ------------------------------------------------------------------------------

@pytest.fixture
def host(jack):
    preset = load_preset("warm-pad")
    host = Host(preset, JACK_RATE, JACK_PERIOD, device=jack)
    host.start()
    yield host
    host.stop()


def tcp_server(host, **settings):
    return OscTcpServer(host, port=0, osc_map=load_preset("warm-pad").osc_map, **settings)


@pytest.mark.parametrize("framing", ["size", "slip"])
def test_messages_arrive_and_replies_return_on_the_same_connection(host, framing):
    with tcp_server(host, framing=framing) as server:
        client = TcpClient(server.port, framing)
        note = client.frame(message("/note/on", 60, 100))
        for byte in note:  # one byte per write: the server must reassemble the frame
            client.send_raw(bytes([byte]))
            time.sleep(0.0005)
        client.send(message("/param/osc/cutoff_hz", 440.0), message("/1/fader2", 1.0),
                    bundle(time.time() + 0.05, message("/param/out/pan", -0.25)))  # one write, three frames
        wait_for(lambda: server.counters.applied == 4)
        wait_for(lambda: host.param_value("osc", "cutoff_hz") == 440.0 and host.param_value("delay", "mix") == 1.0)
        wait_for(lambda: host.param_value("out", "pan") == -0.25)
        assert host.active_voices == 1
        client.send(message("/status"))
        (status,) = client.replies()
        assert status.address == "/status/reply" and status.params[2] == JACK_RATE
        client.send(message("/params"))
        count = sum(len(slot.plugin.param_specs) for slot in host.chain.slots)
        replies = client.replies(count)
        assert {r.params[0] for r in replies} >= {"/param/osc/cutoff_hz", "/param/delay/mix"}
        client.send(message("/notify", 1), message("/param/out/gain_db", -3.0))
        (echo,) = client.replies()
        assert (echo.address, echo.params) == ("/param/out/gain_db", [-3.0])
        client.close()
        wait_for(lambda: not server.clients and not server.subscribers)
    assert server.tcp_counters.connections == 1 and server.counters.malformed == 0


def test_udp_and_tcp_are_one_server(host):
    with tcp_server(host) as server:
        udp, tcp = UdpClient(server.port), TcpClient(server.port)
        tcp.send(message("/preset/load", "pluck-lead"))
        wait_for(lambda: server.preset_name == "Pluck Lead")
        udp.send(message("/param/osc/waveform", 1))  # UDP now reaches the preset TCP loaded
        wait_for(lambda: host.param_value("osc", "waveform") == 1)
        udp.send(message("/status"))
        assert udp.replies()[0].address == "/status/reply"
        tcp.send(message("/status"))
        assert tcp.replies()[0].params[2] == JACK_RATE
        wait_for(lambda: server.counters.applied == 4)  # counted just after the reply is sent
        assert server.counters.received == 4
        udp.close()
        tcp.close()


def test_every_misbehaving_client_is_counted_and_closed_while_others_are_served(host):
    with tcp_server(host, partial_timeout_s=0.3) as server:
        good = TcpClient(server.port)
        hostile = {
            "oversize": struct.pack(">i", MAX_PACKET + 1) + b"x" * 100,
            "http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "negative": struct.pack(">i", -4),
            "garbage": encode_size_prefixed(b"\xff" * 12),
            "not osc": encode_size_prefixed(b"#bundle\x00" + b"\x00" * 4),
        }
        for name, data in hostile.items():
            client = TcpClient(server.port)
            client.send_raw(data)
            assert client.closed_by_server(), name
            client.close()
        stalled = TcpClient(server.port)
        stalled.send_raw(encode_size_prefixed(message("/note/on", 60, 100))[:9])  # and then nothing
        truncated = TcpClient(server.port)
        truncated.send_raw(encode_size_prefixed(message("/note/on", 61, 100))[:9])
        truncated.socket.shutdown(socket.SHUT_WR)  # closed mid-frame
        assert stalled.closed_by_server(timeout=2.0)
        assert truncated.closed_by_server()
        good.send(message("/note/on", 62, 100), message("/status"))
        assert good.replies()[0].address == "/status/reply"
        wait_for(lambda: host.active_voices == 1)  # only the good client's note
        for client in (good, stalled, truncated):
            client.close()
        t = server.tcp_counters
        wait_for(lambda: not server.clients)
    assert (t.oversize, t.garbage, t.stalled, t.truncated) == (2, 3, 1, 1)
    assert server.counters.malformed == 5 and server.counters.invalid == 0


def test_clients_past_the_limit_are_turned_away_until_one_leaves(host):
    with tcp_server(host, max_clients=3) as server:
        clients = [TcpClient(server.port) for _ in range(3)]
        wait_for(lambda: len(server.clients) == 3)
        extra = [TcpClient(server.port) for _ in range(4)]
        assert all(client.closed_by_server() for client in extra)
        assert server.tcp_counters.rejected == 4
        for index, client in enumerate(clients):
            client.send(message("/note/on", 60 + index, 100))
        wait_for(lambda: host.active_voices == 3)
        clients.pop().close()
        wait_for(lambda: len(server.clients) == 2)
        late = TcpClient(server.port)
        late.send(message("/status"))
        assert late.replies()[0].address == "/status/reply"
        for client in clients + [late] + extra:
            client.close()


def test_a_client_that_never_reads_its_replies_is_disconnected(host):
    with tcp_server(host, max_backlog_bytes=65536) as server:
        reader = TcpClient(server.port)
        sluggard = TcpClient(server.port, receive_buffer=4096)
        request = encode_size_prefixed(message("/params"))
        sluggard.send_raw(request * 2000)  # about 2 MB of replies, never read
        wait_for(lambda: server.tcp_counters.slow == 1, timeout=10)
        assert sluggard not in server.clients
        reader.send(message("/status"))
        assert reader.replies()[0].address == "/status/reply"
        reader.close()
        sluggard.close()


def test_only_allowed_addresses_may_connect(host):
    with OscTcpServer(host, port=0, allow=frozenset({"127.0.0.2"})) as server:
        client = TcpClient(server.port)
        assert client.closed_by_server()
        client.close()
        assert server.counters.refused == 1 and server.tcp_counters.connections == 0


def test_unknown_framing_and_a_taken_port_are_clear_errors(host):
    with pytest.raises(SynthError, match="framing 'cobs' must be one of: size, slip"):
        OscTcpServer(host, port=0, framing="cobs")
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        with pytest.raises(SynthError, match=f"Cannot listen for OSC over TCP on 127.0.0.1:{taken.getsockname()[1]}"):
            OscTcpServer(host, port=taken.getsockname()[1])
    finally:
        taken.close()


TCP_FLOOD = """
import socket, struct, sys, time
sys.path.insert(0, sys.argv[3])
from test_osc_wire import message
port, rate, seconds = int(sys.argv[1]), int(sys.argv[2]), 2.0
packets = [message("/param/osc/cutoff_hz/norm", (i % 100) / 100) for i in range(100)]
packets += [message("/note/on", 40 + i % 40, 80) for i in range(50)] + [message("/notes/off")] * 50
frames = [struct.pack(">i", len(p)) + p for p in packets]
sock = socket.create_connection(("127.0.0.1", port))
sent, started = 0, time.monotonic()
while sent < rate * seconds:
    target = min(int((time.monotonic() - started) * rate), int(rate * seconds))
    burst = b"".join(frames[i % len(frames)] for i in range(sent, target))
    sock.sendall(burst)
    sent = target
    time.sleep(0.001)
sock.close()
print(sent)
"""


def test_a_tcp_flood_never_glitches_the_stream(jack):
    """20,000 messages a second for 2 s over one TCP connection from another process while the
    stream plays: every message is read (TCP loses none), none is malformed, and no underflow
    happens that a machine stall does not explain (the probe starts before the stream)."""
    def trial():
        host = Host(load_preset("warm-pad"), JACK_RATE, JACK_PERIOD, device=jack)
        with host, tcp_server(host) as server:
            sender = subprocess.run([sys.executable, "-c", TCP_FLOOD, str(server.port), "20000",
                                     str(Path(__file__).parent)], capture_output=True, text=True, timeout=30)
            wait_for(lambda: server.counters.received == int(sender.stdout), timeout=10)
        c, status = server.counters, host.status()
        print(f"TCP flood: read {c.received}, applied {c.applied}, dropped by the event ring {c.dropped}, "
              f"peak load {100 * status.load_peak:.0f}%, underflows {host.underflows}")
        assert int(sender.stdout) == 40000 and c.malformed == 0 and c.invalid == 0
        assert c.applied == c.received
        return host.underflow_times(), None

    realtime_trials(trial)


def test_serve_with_osc_tcp_from_the_command_line(jack, capsys):
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    replies = []

    def controller():
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            try:
                client = TcpClient(port, "slip")
                break
            except ConnectionRefusedError:
                time.sleep(0.05)
        client.send(message("/note/on", 60, 100), message("/status"))
        replies.extend(client.replies())
        client.close()

    thread = threading.Thread(target=controller)
    thread.start()
    code = main(["serve", "warm-pad", "--device", str(jack), "--osc-port", str(port), "--osc-tcp",
                 "--osc-tcp-framing", "slip", "--duration", "1.5"])
    thread.join()
    err = capsys.readouterr().err
    assert code == 0
    assert f"OSC on udp://127.0.0.1:{port} and tcp://127.0.0.1:{port} (slip framing)" in err
    assert "OSC: 2 messages, 2 applied" in err and "OSC over TCP: 1 connections" in err
    assert replies[0].address == "/status/reply"
