"""The OSC server: UDP packets from controllers and DAWs -> engine events, plus replies.

It runs on its own thread in the control plane and never waits for the audio plane: each message
becomes events handed to `Host.post` (a bounded shared-memory ring; a full ring drops the event
and counts it). A message outside a
bundle takes effect at the start of the next block; a bundle's timetag becomes the engine sample
that reaches the output at that time (`Host.sample_for`), and a bundle that arrives too late is
applied at once and counted late by the engine. Malformed packets, refused senders, unknown
addresses and bad values are counted and ignored; nothing a packet holds can stop the server: an
exception while handling one message is counted (invalid) and the next message is served.

Addresses beyond the score ones (synth.control.addresses): /status, /params, /notify,
/preset/load, /vkb_midi/<channel>/note/<note>, /tempo/raw, /play, and /fxparam/<n>/value (the n-th
parameter in /params order, from 0..1: what REAPER sends for the focused FX's parameters). The
README has the table. OSC over TCP, beside this UDP server: synth.control.osc_tcp.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pythonosc.osc_message_builder import OscMessageBuilder

from synth.control.addresses import MessageTranslator
from synth.control.osc_wire import is_pattern, match_addresses, parse_packet
from synth.errors import SynthError, UnknownName
from synth.events import IMMEDIATE, NoteOff, NoteOn, ParamChange
from synth.host import Host
from synth.presets import SHIPPED_PRESETS, load_preset_by_name

MAX_PACKET = 65536
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024  # asked of the kernel for the UDP socket (capped at net.core.rmem_max)
TRANSLATED_ADDRESSES = ("/latent", "/latent/xy", "/latent/morph", "/say", "/sing")  # synth.control.addresses
SERVER_ADDRESSES = ("/status", "/params", "/notify", "/preset/load", "/tempo/raw", "/play")


@dataclass
class OscCounters:
    """received: messages read; applied: messages that gave events or replies; the rest were
    malformed (unparsable packets), refused (sender not allowed), unknown (no such address),
    invalid (wrong arguments or values), dropped (the engine's queue was full)."""

    packets: int = 0
    received: int = 0
    applied: int = 0
    malformed: int = 0
    refused: int = 0
    unknown: int = 0
    invalid: int = 0
    dropped: int = 0


@dataclass
class OscServer:
    """Serve `host` on UDP `bind`:`port`. allow: client IP addresses that may control it (None: any
    sender that can reach the bound interface). preset_folders: where /preset/load looks."""

    host: Host
    port: int = 9000
    bind: str = "127.0.0.1"
    allow: frozenset[str] | None = None
    preset_folders: list[Path] = field(default_factory=lambda: [SHIPPED_PRESETS])
    osc_map: dict = field(default_factory=dict)
    counters: OscCounters = field(default_factory=OscCounters)

    def __post_init__(self) -> None:
        self.playing = False
        self.subscribers: set[tuple[str, int]] = set()
        self.preset_name = ""
        self._translator = MessageTranslator(self.host.chain, self.osc_map, strict=False)
        self._socket = self._open_udp(self.port)
        self.port = self._socket.getsockname()[1]
        self._socket_inode = str(os.fstat(self._socket.fileno()).st_ino)
        self._drops_at_close: int | None = None
        self._running = False
        self._thread: threading.Thread | None = None

    def _open_udp(self, port: int) -> socket.socket:
        """A UDP socket bound to `bind`:`port` (0: a free port); SynthError naming both if taken."""
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        try:
            udp.bind((self.bind, port))
        except OSError as error:
            udp.close()
            raise SynthError(f"Cannot listen for OSC on {self.bind}:{port} ({error.strerror}).") from None
        udp.settimeout(0.1)
        return udp

    # --- lifetime ----------------------------------------------------------------------------

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._serve, name="osc-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._socket.fileno() >= 0:
            self._drops_at_close = self.socket_drops()
        self._socket.close()

    def __enter__(self) -> OscServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _serve(self) -> None:
        while self._running:
            try:
                packet, sender = self._socket.recvfrom(MAX_PACKET)
            except TimeoutError:
                continue
            except OSError:
                if self._running:
                    continue
                return
            self.handle(packet, sender)

    # --- messages ----------------------------------------------------------------------------

    def handle(self, packet: bytes, sender: tuple[str, int]) -> None:
        """Act on one packet from `sender`; every failure is counted, none is raised."""
        self.counters.packets += 1
        if self.allow is not None and sender[0] not in self.allow:
            self.counters.refused += 1
            return
        self.handle_allowed(packet, sender)

    def handle_allowed(self, packet: bytes, sender) -> bool:
        """Act on one packet from a sender already allowed (replies go to `sender`, an (ip, port)
        pair or a TCP connection). False when the packet could not be parsed (counted malformed)."""
        try:
            messages = parse_packet(packet)
        except SynthError:
            self.counters.malformed += 1
            return False
        anchor = self.host.clock_anchor()  # one clock reading for the whole packet: its timetags keep their spacing
        first_time, first_sample = None, 0
        for unix_time, address, arguments in messages:
            self.counters.received += 1
            if unix_time is None:
                time_samples = IMMEDIATE
            else:
                # each timetag is placed from the packet's first: a Unix time as a float is good to
                # 0.24 us only, but the difference of two is exact, so tags 0.1 s apart stay 4800
                # samples apart (rounded once, not twice)
                if first_time is None:
                    first_time, first_sample = unix_time, self.host.sample_for(unix_time, anchor)
                time_samples = first_sample + round((unix_time - first_time) * self.host.sample_rate)
            try:
                self._dispatch(address, arguments, time_samples, sender)
            except UnknownName:
                self.counters.unknown += 1
            except SynthError:
                self.counters.invalid += 1
            except Exception:  # whatever a handler (or a model it runs) raises: counted, and on to the next
                self.counters.invalid += 1
        return True

    def addresses(self) -> list[str]:
        """Every concrete address this server answers (for pattern matching)."""
        engine = self._translator.engine  # after /preset/load, the new chain (the audio plane follows at a block)
        params = []
        for slot in engine.slots:
            for spec in slot.plugin.param_specs:
                params += [f"/param/{slot.id}/{spec.name}", f"/param/{slot.id}/{spec.name}/norm"]
        indexed = [f"/fxparam/{number}/value" for number in range(1, len(self._flat_params()) + 1)]
        return ["/note/on", "/note/off", "/notes/off", *params, *indexed, *self.osc_map, *TRANSLATED_ADDRESSES,
                *SERVER_ADDRESSES]

    def _flat_params(self) -> list[tuple[str, str]]:
        """(slot id, parameter) for every parameter of the chain, in /params order."""
        return [(slot.id, spec.name) for slot in self._translator.engine.slots for spec in slot.plugin.param_specs]

    def _dispatch(self, address: str, arguments: list, time_samples: int, sender) -> None:
        targets = match_addresses(address, self.addresses()) if is_pattern(address) else [address]
        if not targets:
            raise UnknownName(f"{address}: unknown address")
        for target in targets:
            self._apply(target, arguments, time_samples, sender)
        self.counters.applied += 1

    def _apply(self, address: str, arguments: list, time_samples: int, sender) -> None:
        if address == "/status":
            self._reply(sender, "/status/reply", self.status_values())
        elif address == "/params":
            self._send_params(sender)
        elif address == "/notify":
            self._notify(arguments, sender)
        elif address == "/preset/load":
            self._load_preset(arguments)
        elif address == "/play":
            self.playing = bool(arguments[0]) if arguments else True
        elif address.startswith("/vkb_midi/"):
            self._post(_vkb_event(address, arguments, time_samples))
        elif address.startswith("/fxparam/"):
            self._apply(self._indexed_param(address), arguments, time_samples, sender)
        else:
            if address == "/say":
                self.host.sync_chain()  # the speech is rendered with the voice's current gains
            for event in self._translator.translate(address, arguments, time_samples):
                self._post(event)
                if isinstance(event, ParamChange) and self.subscribers:
                    self._broadcast(event)

    def _indexed_param(self, address: str) -> str:
        """/fxparam/<n>/value -> /param/<id>/<name>/norm of the n-th parameter (1-based)."""
        parts = address.split("/")
        params = self._flat_params()
        if len(parts) != 4 or parts[3] != "value" or not parts[2].isdigit() or not 1 <= int(parts[2]) <= len(params):
            raise UnknownName(f"{address}: unknown address (the chain has {len(params)} parameters)")
        slot_id, name = params[int(parts[2]) - 1]
        return f"/param/{slot_id}/{name}/norm"

    def socket_drops(self) -> int | None:
        """Datagrams the kernel dropped for this server's UDP socket because its receive buffer was
        full (never read, so no other counter has them); from /proc/net/udp, None where that is
        not available (not Linux). After stop(): the count when the socket closed."""
        if self._socket.fileno() < 0:
            return self._drops_at_close
        try:
            with open("/proc/net/udp", encoding="ascii") as table:
                for line in table:
                    fields = line.split()
                    if len(fields) >= 13 and fields[9] == self._socket_inode:
                        return int(fields[-1])
        except (OSError, ValueError):
            return None
        return None

    def _post(self, event) -> None:
        if not self.host.post(event):
            self.counters.dropped += 1

    # --- replies -----------------------------------------------------------------------------

    def status_values(self) -> list:
        """/status/reply arguments, in order: mean and peak DSP load (%), sample rate (Hz), voices,
        underflows, late events, worst lateness (ms), dropped, refused, malformed, uptime (s), then
        latencies (ms): the chain's behind live input (timbre transfer; 0 without), the stream's input,
        the stream's output."""
        status = self.host.status()
        return [100 * status.load_mean, 100 * status.load_peak, self.host.sample_rate, status.voices,
                status.underflows, status.late_events, status.worst_late_ms, status.dropped_events,
                self.counters.refused, self.counters.malformed, status.uptime_s, status.plugin_latency_ms,
                status.input_latency_ms, status.output_latency_ms]

    def _send_params(self, sender) -> None:
        """One /params/reply per parameter: address, minimum, maximum, default, unit, scale, value,
        and for a choice parameter its choice names after them (value is the chosen one's index)."""
        for slot in self.host.chain.slots:
            for spec in slot.plugin.param_specs:
                value = self.host.param_value(slot.id, spec.name)
                self._reply(sender, "/params/reply", [f"/param/{slot.id}/{spec.name}", spec.minimum, spec.maximum,
                                                      spec.default_value, spec.unit, spec.scale, value, *spec.choices])

    def _notify(self, arguments: list, sender) -> None:
        on = bool(arguments[0]) if arguments else True
        (self.subscribers.add if on else self.subscribers.discard)(sender)

    def _broadcast(self, event: ParamChange) -> None:
        for subscriber in list(self.subscribers):
            self._reply(subscriber, f"/param/{event.slot_id}/{event.name}", [event.value])

    def _reply(self, target, address: str, values: list) -> None:
        builder = OscMessageBuilder(address)
        for value in values:
            builder.add_arg(value)
        self._send_packet(builder.build().dgram, target)

    def _send_packet(self, packet: bytes, target) -> None:
        """Send one packet to a UDP sender, (ip, port); never raises."""
        try:
            self._socket.sendto(packet, target)
        except OSError:
            pass  # an unreachable controller must not stop the server

    def _load_preset(self, arguments: list) -> None:
        if len(arguments) != 1 or not isinstance(arguments[0], str):
            raise SynthError("/preset/load: expected one preset name")
        preset = load_preset_by_name(arguments[0], self.preset_folders)
        self.host.load_preset(preset)
        self.osc_map = preset.osc_map
        self._translator = MessageTranslator(self.host.chain, self.osc_map, strict=False)
        self.preset_name = preset.name


def _vkb_event(address: str, arguments: list, time_samples: int):
    """REAPER's virtual keyboard: /vkb_midi/<channel 0..15>/note/<note> velocity (0 = off)."""
    parts = address.split("/")
    if len(parts) != 5 or parts[3] != "note" or not parts[2].isdigit() or not parts[4].isdigit():
        raise UnknownName(f"{address}: unknown address")
    channel, note = int(parts[2]), int(parts[4])
    if not (0 <= channel <= 15 and 0 <= note <= 127) or len(arguments) != 1 or isinstance(arguments[0], str):
        raise SynthError(f"{address}: expected channel 0..15, note 0..127 and one velocity")
    velocity = round(float(arguments[0]))
    if not 0 <= velocity <= 127:
        raise SynthError(f"{address}: velocity must be 0..127")
    if velocity == 0:
        return NoteOff(time_samples, note, channel + 1)
    return NoteOn(time_samples, note, velocity, channel + 1)
