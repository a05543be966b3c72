"""OSC over TCP, beside the UDP server on the same port number, on the same single thread.

A TCP byte stream needs packet boundaries. Two framings are spoken:
- "size" (OSC 1.0): each packet is preceded by its length as a 4-byte big-endian integer;
- "slip" (OSC 1.1): each packet is SLIP-encoded (RFC 1055) and ends with the END byte 0xC0.

Every packet goes through the UDP server's own dispatch, counters and allow-list; replies (/status,
/params, /notify echoes) go back on the connection they answer, in the same framing. Everything a
client can do wrong is bounded, counted, and ends only that client's connection: a frame larger
than MAX_PACKET, a frame left half-sent for PARTIAL_TIMEOUT_S, a connection closed mid-frame,
bytes that are no frame or no OSC packet, replies left unread past MAX_BACKLOG_BYTES, and clients
past `max_clients` (MAX_CLIENTS). One selector thread serves every socket without blocking on any of them, and it
hands events to the audio plane through `Host.post` (never waiting for it).
"""

from __future__ import annotations

import selectors
import socket
import struct
import time
from dataclasses import dataclass, field

from synth.control.osc import MAX_PACKET, OscServer
from synth.errors import SynthError

FRAMINGS = ("size", "slip")
MAX_CLIENTS = 16
PARTIAL_TIMEOUT_S = 2.0  # a frame begun and not finished within this is abandoned with its connection
MAX_BACKLOG_BYTES = 1 << 20  # replies a client has not read; past this it is disconnected
SEND_BUFFER_BYTES = 65536  # the kernel's send buffer per connection (bounded, like our backlog)
READ_BYTES = 65536
LISTEN_BACKLOG = 16
PORT_TRIES = 32  # port 0: tries at a UDP port number that is also free for TCP

SLIP_END, SLIP_ESC, SLIP_ESC_END, SLIP_ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD


class FramingError(SynthError):
    """A byte stream that is not a sequence of frames. kind: "oversize" or "garbage"."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class SizePrefixDecoder:
    """OSC 1.0 stream framing: int32 big-endian size, then that many bytes of packet.

    feed(bytes) -> complete packets; FramingError for a size of 0, below 0 or above max_packet
    (an HTTP request or random bytes read as a size is nearly always one of these).
    """

    def __init__(self, max_packet: int = MAX_PACKET):
        self.max_packet = max_packet
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held of a frame not yet complete (0 between frames)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        packets = []
        while len(self._buffer) >= 4:
            (size,) = struct.unpack_from(">i", self._buffer, 0)
            if size <= 0 or size > self.max_packet:
                raise FramingError("oversize" if size > self.max_packet else "garbage",
                                   f"frame size {size} is not in 1..{self.max_packet} bytes")
            if len(self._buffer) < 4 + size:
                break
            packets.append(bytes(self._buffer[4 : 4 + size]))
            del self._buffer[: 4 + size]
        return packets


class SlipDecoder:
    """OSC 1.1 stream framing: SLIP (RFC 1055) frames ending in END (0xC0); ESC (0xDB) escapes
    END as ESC ESC_END and ESC as ESC ESC_ESC. Empty frames (a leading END) are skipped.

    feed(bytes) -> complete packets; FramingError for a frame longer than max_packet or an ESC
    followed by anything but ESC_END / ESC_ESC.
    """

    def __init__(self, max_packet: int = MAX_PACKET):
        self.max_packet = max_packet
        self._frame = bytearray()
        self._escaped = False

    @property
    def pending(self) -> int:
        """Bytes held of a frame not yet complete (0 between frames)."""
        return len(self._frame) + self._escaped

    def feed(self, data: bytes) -> list[bytes]:
        packets = []
        start = 0
        while start < len(data):
            end = data.find(SLIP_END, start)
            chunk = data[start:] if end < 0 else data[start:end]
            self._unescape(chunk)
            if end < 0:
                break
            if self._escaped:
                raise FramingError("garbage", "SLIP frame ends inside an escape")
            if self._frame:
                packets.append(bytes(self._frame))
                self._frame.clear()
            start = end + 1
        return packets

    def _unescape(self, chunk: bytes) -> None:
        if self._escaped and chunk:
            self._frame.append(_slip_escaped(chunk[0]))
            chunk, self._escaped = chunk[1:], False
        parts = chunk.split(bytes([SLIP_ESC]))
        self._frame += parts[0]
        for index, part in enumerate(parts[1:], start=2):
            if not part:
                if index < len(parts):
                    raise FramingError("garbage", "SLIP escape followed by another escape")
                self._escaped = True  # ESC was the last byte read: its partner comes with the next read
                continue
            self._frame.append(_slip_escaped(part[0]))
            self._frame += part[1:]
        if len(self._frame) > self.max_packet:
            raise FramingError("oversize", f"SLIP frame longer than {self.max_packet} bytes")


def _slip_escaped(byte: int) -> int:
    if byte == SLIP_ESC_END:
        return SLIP_END
    if byte == SLIP_ESC_ESC:
        return SLIP_ESC
    raise FramingError("garbage", f"SLIP escape followed by 0x{byte:02X}")


def encode_size_prefixed(packet: bytes) -> bytes:
    """One OSC 1.0 stream frame: the packet's length (int32 big-endian), then the packet."""
    return struct.pack(">i", len(packet)) + packet


def encode_slip(packet: bytes) -> bytes:
    """One OSC 1.1 SLIP frame: END, the escaped packet, END (the leading END flushes line noise)."""
    escaped = packet.replace(bytes([SLIP_ESC]), bytes([SLIP_ESC, SLIP_ESC_ESC]))
    escaped = escaped.replace(bytes([SLIP_END]), bytes([SLIP_ESC, SLIP_ESC_END]))
    return bytes([SLIP_END]) + escaped + bytes([SLIP_END])


DECODERS = {"size": SizePrefixDecoder, "slip": SlipDecoder}
ENCODERS = {"size": encode_size_prefixed, "slip": encode_slip}


@dataclass
class TcpCounters:
    """connections: accepted; rejected: turned away past the client limit; oversize: frames over
    MAX_PACKET; garbage: bytes that were no frame or no OSC packet; truncated: closed mid-frame by
    the client; stalled: a frame left unfinished for PARTIAL_TIMEOUT_S; slow: replies left unread
    past MAX_BACKLOG_BYTES. Every one but `connections` ended that client's connection."""

    connections: int = 0
    rejected: int = 0
    oversize: int = 0
    garbage: int = 0
    truncated: int = 0
    stalled: int = 0
    slow: int = 0


class TcpClient:
    """One connection: its socket, peer address, frame decoder and unsent replies."""

    def __init__(self, sock: socket.socket, address: tuple[str, int], framing: str):
        self.socket = sock
        self.address = address
        self.decoder = DECODERS[framing]()
        self.outgoing = bytearray()
        self.partial_since: float | None = None  # time.monotonic() when the unfinished frame began

    def __repr__(self) -> str:
        return f"TcpClient({self.address[0]}:{self.address[1]})"


@dataclass
class OscTcpServer(OscServer):
    """The OSC server on UDP and TCP at once, both on `bind`:`port` (0 picks a number free for
    both). framing: "size" (OSC 1.0) or "slip" (OSC 1.1) for every TCP connection. max_clients:
    connections served at once; partial_timeout_s: seconds a frame may stay half-sent;
    max_backlog_bytes: unread replies a client may leave before it is disconnected."""

    framing: str = "size"
    max_clients: int = MAX_CLIENTS
    partial_timeout_s: float = PARTIAL_TIMEOUT_S
    max_backlog_bytes: int = MAX_BACKLOG_BYTES
    tcp_counters: TcpCounters = field(default_factory=TcpCounters)

    def __post_init__(self) -> None:
        if self.framing not in FRAMINGS:
            raise SynthError(f"OSC TCP framing {self.framing!r} must be one of: {', '.join(FRAMINGS)}")
        self.clients: set[TcpClient] = set()
        self._selector: selectors.BaseSelector | None = None
        super().__post_init__()

    def _open_udp(self, port: int) -> socket.socket:
        """The UDP socket, and the TCP listener on the same port number."""
        for _ in range(PORT_TRIES if port == 0 else 1):
            udp = super()._open_udp(port)
            try:
                self._listener = self._open_tcp(udp.getsockname()[1])
                return udp
            except OSError as error:
                udp.close()
                failure = error
        raise SynthError(f"Cannot listen for OSC over TCP on {self.bind}:{port} ({failure.strerror}).") from None

    def _open_tcp(self, port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.bind, port))
            listener.listen(LISTEN_BACKLOG)
        except OSError:
            listener.close()
            raise
        listener.setblocking(False)
        return listener

    # --- lifetime ----------------------------------------------------------------------------

    def stop(self) -> None:
        super().stop()
        for client in list(self.clients):
            self._close(client)
        self._listener.close()

    def _serve(self) -> None:
        self._socket.setblocking(False)
        with selectors.DefaultSelector() as selector:
            self._selector = selector
            selector.register(self._socket, selectors.EVENT_READ, "udp")
            selector.register(self._listener, selectors.EVENT_READ, "accept")
            while self._running:
                for key, mask in selector.select(timeout=0.1):
                    if key.data == "udp":
                        self._read_datagrams()
                    elif key.data == "accept":
                        self._accept()
                    else:
                        self._service(key.data, mask)
                self._expire_partial_frames(time.monotonic())
            self._selector = None

    def _read_datagrams(self) -> None:
        for _ in range(64):  # then let the TCP clients have a turn
            try:
                packet, sender = self._socket.recvfrom(MAX_PACKET)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.handle(packet, sender)

    def _accept(self) -> None:
        try:
            sock, address = self._listener.accept()
        except OSError:
            return
        if self.allow is not None and address[0] not in self.allow:
            self.counters.refused += 1
            sock.close()
            return
        if len(self.clients) >= self.max_clients:
            self.tcp_counters.rejected += 1
            sock.close()
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        client = TcpClient(sock, address, self.framing)
        self.clients.add(client)
        self.tcp_counters.connections += 1
        self._selector.register(sock, selectors.EVENT_READ, client)

    # --- one connection ----------------------------------------------------------------------

    def _service(self, client: TcpClient, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush(client)
        if mask & selectors.EVENT_READ and client in self.clients:
            self._read(client)

    def _read(self, client: TcpClient) -> None:
        try:
            data = client.socket.recv(READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(client)
            return
        if not data:
            if client.decoder.pending:
                self.tcp_counters.truncated += 1
            self._close(client)
            return
        try:
            packets = client.decoder.feed(data)
        except FramingError as error:
            self.counters.malformed += 1
            setattr(self.tcp_counters, error.kind, getattr(self.tcp_counters, error.kind) + 1)
            self._close(client)
            return
        for packet in packets:
            self.counters.packets += 1
            if not self.handle_allowed(packet, client):
                self.tcp_counters.garbage += 1
                self._close(client)
                return
            if client not in self.clients:
                return  # closed while replying
        if not client.decoder.pending:
            client.partial_since = None
        elif client.partial_since is None or packets:
            client.partial_since = time.monotonic()

    def _expire_partial_frames(self, now: float) -> None:
        for client in list(self.clients):
            if client.partial_since is not None and now - client.partial_since > self.partial_timeout_s:
                self.tcp_counters.stalled += 1
                self._close(client)

    def _send_packet(self, packet: bytes, target) -> None:
        """A reply: framed onto its TCP connection, or a datagram to a UDP sender."""
        if not isinstance(target, TcpClient):
            super()._send_packet(packet, target)
            return
        if target not in self.clients:
            return
        target.outgoing += ENCODERS[self.framing](packet)
        if len(target.outgoing) > self.max_backlog_bytes:
            self.tcp_counters.slow += 1
            self._close(target)
            return
        self._flush(target)

    def _flush(self, client: TcpClient) -> None:
        """Send what the socket takes now; wait for writability for the rest, never block."""
        try:
            sent = client.socket.send(client.outgoing) if client.outgoing else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(client)
            return
        del client.outgoing[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.outgoing else 0)
        if self._selector is not None and self._selector.get_key(client.socket).events != events:
            self._selector.modify(client.socket, events, client)

    def _close(self, client: TcpClient) -> None:
        if client not in self.clients:
            return
        self.clients.discard(client)
        self.subscribers.discard(client)
        if self._selector is not None:
            try:
                self._selector.unregister(client.socket)
            except (KeyError, ValueError):
                pass
        client.socket.close()
