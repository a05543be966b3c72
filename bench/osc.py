"""OSC control figures on a real stream: latency from send to applied, and the highest rate with no loss.

A JACK dummy server (started here, its period equal to the block) paces a real PortAudio stream
playing the warm-pad preset; the OSC server listens on 127.0.0.1 (UDP, or TCP with --tcp).

Latency: messages `/param/delay/mix <v>` (each v unique) are sent one at a time at random moments
(so they land at every phase of the block). "Applied" is when the engine applied the event: the
audio plane's applied ring (`Host.take_applied`) gives the sample it took effect on, and the Unix
time of the callback that rendered that block (`Host.clock_anchor`, polled every millisecond)
turns it into wall time. Printed:
p50/p99/max of send -> applied in ms and in blocks, and send -> at the output (applied plus the
stream's reported output latency).

Rate: a separate sender process sends a mix of parameter and note messages at a fixed rate for
--seconds; a step passes when every message sent was read by the server, every resulting event was
applied by the engine, none was dropped (by the kernel for a full socket receive buffer: "sock drop",
UDP only; or by a full event ring: "dropped") or left unsent (a sender
that cannot keep the rate over TCP is being held back by the server), and the stream did not
underflow once. The rate doubles until a step fails, then is bisected to within 10%. A per-CPU
stall probe (synth.io.stall_probe) runs beside each step: the underflows that no machine stall
explains are printed beside all of them, and the stalls seen. A step that fails only by underflows
that stalls explain says nothing about the engine: it is run again, up to 3 times.

Usage: .venv/bin/python bench/osc.py [--block 256] [--messages 1000] [--seconds 2] [--tcp]
"""

from __future__ import annotations

import argparse
import random
import socket
import subprocess
import sys
import threading
import time

import numpy as np
from pythonosc.osc_message_builder import OscMessageBuilder

from synth.control.osc import OscServer
from synth.control.osc_tcp import OscTcpServer, encode_size_prefixed
from synth.events import ParamChange
from synth.host import Host
from synth.io.jackserver import JackDummyServer
from synth.io.stall_probe import StallProbe
from synth.presets import load_preset

SAMPLE_RATE = 48000
TAG_SCALE = 2 ** 20  # v = i / 2**20 is exact in float32, so the applied value names its message
MAX_RATE = 1_000_000
STEP_TRIES = 3  # runs of one rate step when only machine stalls fail it
STALL_THRESHOLD_S = 0.002  # a later wake-up is a stall; lower for short blocks (3/4 of one), as in bench/realtime.py


def message(address: str, *args) -> bytes:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


class AppliedLog:
    """Drains a recording host's applied ring every 10 ms (it holds 65,536 records) into `events`."""

    def __init__(self, host: Host):
        self.host, self.events = host, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> AppliedLog:
        self.host.take_applied()  # what came before is not ours
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.events += self.host.take_applied()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.events += self.host.take_applied()


class AnchorLog:
    """Polls Host.clock_anchor every millisecond: block start sample -> Unix time of its callback."""

    def __init__(self, host: Host):
        self.host, self.times = host, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> AnchorLog:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            sample, unix_time = self.host.clock_anchor()
            self.times[sample] = unix_time

    def wall_time(self, sample: int) -> float:
        """Unix time at which the engine rendered `sample` (its block's callback time, plus the
        offset within the block; from the nearest earlier block seen if that one was missed)."""
        if sample in self.times:
            return self.times[sample]
        earlier = max(s for s in self.times if s <= sample)
        return self.times[earlier] + (sample - earlier) / SAMPLE_RATE


class Sender:
    """The bench's own controller socket (UDP datagrams or size-prefixed TCP frames)."""

    def __init__(self, port: int, tcp: bool):
        self.tcp = tcp
        if tcp:
            self.socket = socket.create_connection(("127.0.0.1", port))
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.port = port

    def send(self, packet: bytes) -> None:
        if self.tcp:
            self.socket.sendall(encode_size_prefixed(packet))
        else:
            self.socket.sendto(packet, ("127.0.0.1", self.port))


def measure_latency(host: Host, server, count: int, tcp: bool) -> np.ndarray:
    """send -> applied, in seconds, for `count` messages sent one at a time."""
    sender = Sender(server.port, tcp)
    sent = {}
    with AnchorLog(host) as anchors, AppliedLog(host) as log:
        time.sleep(0.1)
        for i in range(1, count + 1):
            packet = message("/param/delay/mix", i / TAG_SCALE)
            sent[i] = time.time()
            sender.send(packet)
            time.sleep(random.uniform(0.002, 0.012))
        time.sleep(0.2)
    sender.socket.close()
    latencies = []
    for sample, event in log.events:
        if isinstance(event, ParamChange) and event.name == "mix":
            i = round(event.value * TAG_SCALE)
            if i in sent:
                latencies.append(anchors.wall_time(sample) - sent.pop(i))
    if sent:
        print(f"  {len(sent)} of {count} latency messages were never applied")
    return np.array(latencies)


RATE_SENDER = r"""
import socket, struct, sys, time
from pythonosc.osc_message_builder import OscMessageBuilder
port, rate, seconds, tcp = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "tcp"
def message(address, *args):
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram
packets = [message("/param/osc/cutoff_hz/norm", (i % 100) / 100) for i in range(100)]
packets += [message("/note/on", 40 + i % 40, 80) for i in range(50)] + [message("/note/off", 40 + i % 40) for i in range(50)]
if tcp:
    packets = [struct.pack(">i", len(p)) + p for p in packets]
    sock = socket.create_connection(("127.0.0.1", port))
else:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
total, sent, started = int(rate * seconds), 0, time.monotonic()
while sent < total:
    target = min(int((time.monotonic() - started) * rate), total)
    if tcp:
        sock.sendall(b"".join(packets[i % 200] for i in range(sent, target)))
        sent = target
    else:
        while sent < target:
            sock.sendto(packets[sent % 200], ("127.0.0.1", port))
            sent += 1
    time.sleep(0.0005)
print(sent, time.monotonic() - started)
"""


def rate_step(host: Host, server, rate: int, seconds: float, tcp: bool) -> tuple[bool, bool, str]:
    """Send at `rate` messages/s for `seconds`; (passed, failed only by underflows that machine
    stalls explain, one line of figures)."""
    settle(server)
    before = dict(server.counters.__dict__)
    dropped_before, underflows, applied_before = host.counters.dropped_events, host.underflows, host.applied_events
    socket_drops_before = server.socket_drops() or 0
    with StallProbe(min(STALL_THRESHOLD_S, 0.75 * host.block_size / host.sample_rate)) as probe:
        result = subprocess.run([sys.executable, "-c", RATE_SENDER, str(server.port), str(rate), str(seconds),
                                 "tcp" if tcp else "udp"], capture_output=True, text=True, timeout=seconds * 10 + 30)
    sent, elapsed = result.stdout.split()
    sent, elapsed = int(sent), float(elapsed)
    deadline = time.monotonic() + 0.5  # a server that needs longer did not keep the rate
    while server.counters.received - before["received"] < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)
    received = server.counters.received - before["received"]
    dropped = host.counters.dropped_events - dropped_before  # every post refused, from any source
    applied = host.applied_events - applied_before
    underflowed = host.underflows - underflows
    socket_dropped = (server.socket_drops() or 0) - socket_drops_before
    unexplained = len(probe.unexplained(host.underflow_times()[underflows:]))
    kept_pace = elapsed <= seconds * 1.1
    kept_up = received == sent == round(rate * seconds) and applied == sent and dropped == 0 and kept_pace
    passed = kept_up and underflowed == 0
    line = (f"{rate:9d} {sent:9d} {elapsed:7.2f} {received:9d} {socket_dropped:9d} {applied:9d} {dropped:8d} "
            f"{underflowed:10d} {unexplained:11d} {len(probe.stalls):6d}  {'pass' if passed else 'FAIL'}")
    return passed, kept_up and unexplained == 0, line


def judged_step(host: Host, server, rate: int, seconds: float, tcp: bool) -> bool:
    """A rate step, repeated (up to STEP_TRIES times) while it fails only by underflows that machine
    stalls explain: on a shared machine one such run says nothing about the engine."""
    for _ in range(STEP_TRIES):
        passed, machine_only, line = rate_step(host, server, rate, seconds, tcp)
        print(line + ("  (machine stalls only: again)" if machine_only and not passed else ""), flush=True)
        if passed or not machine_only:
            return passed
    return False


def settle(server, quiet_s: float = 0.3) -> None:
    """Wait until the server has read nothing for `quiet_s` (a previous step's backlog is gone)."""
    last = -1
    while server.counters.received != last:
        last = server.counters.received
        time.sleep(quiet_s)


def highest_rate(host: Host, server, seconds: float, tcp: bool) -> int | None:
    print(f"{'rate/s':>9} {'sent':>9} {'send s':>7} {'read':>9} {'sock drop':>9} {'applied':>9} {'dropped':>8} {'underflows':>10} "
          f"{'unexplained':>11} {'stalls':>6}")
    best, failed, rate = None, None, 1000
    while rate <= MAX_RATE:
        if not judged_step(host, server, rate, seconds, tcp):
            failed = rate
            break
        best, rate = rate, rate * 2
    while best and failed and failed - best > best // 10:
        middle = (best + failed) // 2
        best, failed = (middle, failed) if judged_step(host, server, middle, seconds, tcp) else (best, middle)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", type=int, default=256, help="frames per block and JACK period (default 256)")
    parser.add_argument("--messages", type=int, default=1000, help="messages for the latency figures")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per rate step")
    parser.add_argument("--tcp", action="store_true", help="OSC over TCP (size-prefixed frames) instead of UDP")
    args = parser.parse_args()
    transport = "TCP" if args.tcp else "UDP"
    preset = load_preset("warm-pad")
    server_class = OscTcpServer if args.tcp else OscServer
    with JackDummyServer(SAMPLE_RATE, args.block) as jack:
        # latency: a recording host, whose applied ring says when each message took effect
        with Host(preset, SAMPLE_RATE, args.block, device=jack.device, recording=True) as host, \
                server_class(host, port=0, osc_map=preset.osc_map) as server:
            period_ms = 1000 * args.block / SAMPLE_RATE
            output_ms = 1000 * host.output_latency_s
            latencies = 1000 * measure_latency(host, server, args.messages, args.tcp)
        p50, p99, worst = np.percentile(latencies, [50, 99]).tolist() + [float(latencies.max())]
        print(f"OSC over {transport}, block {args.block} frames ({period_ms:.2f} ms) at {SAMPLE_RATE} Hz, "
              f"{len(latencies)} messages")
        print(f"send -> applied:   p50 {p50:6.2f} ms ({p50 / period_ms:4.2f} blocks)  "
              f"p99 {p99:6.2f} ms ({p99 / period_ms:4.2f} blocks)  max {worst:6.2f} ms")
        print(f"send -> at output: p50 {p50 + output_ms:6.2f} ms  p99 {p99 + output_ms:6.2f} ms "
              f"(plus the stream's output latency, {output_ms:.2f} ms)")
        # rate: a host as `synth serve` runs one, counting applied events
        with Host(preset, SAMPLE_RATE, args.block, device=jack.device) as host, \
                server_class(host, port=0, osc_map=preset.osc_map) as server:
            best = highest_rate(host, server, args.seconds, args.tcp)
        print(f"highest rate with nothing lost or dropped and no underflow: {best if best else 'none'} "
              f"messages/s over {transport}")


if __name__ == "__main__":
    main()
