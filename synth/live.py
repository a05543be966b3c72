"""`synth play` and `synth serve`: a preset on a live stream, optionally performing a score, with
OSC control (serve), session recording, and a status line."""

from __future__ import annotations

import signal
import sys
import time

from synth.engine import check_stream_format
from synth.errors import SynthError
from synth.control.midi_input import MidiInput
from synth.control.osc import OscServer
from synth.control.osc_tcp import OscTcpServer
from synth.control.recorder import SessionRecorder
from synth.host import Host
from synth.io.audiofile import wav_writer
from synth.presets import load_preset
from synth.render import total_frames
from synth.scores import load_score
from synth.transfer import live_transfer_preset

STATUS_INTERVAL_S = 0.25


def latency_line(host: Host) -> str:
    """What live input goes through before it is heard, in ms: the stream's input buffer, the
    chain's analysis and frame delay (timbre transfer), the stream's output buffer."""
    status = host.status()
    detail = f" ({'; '.join(host.latency_details)})" if host.latency_details else ""
    return (f"live input latency: {status.plugin_latency_ms:.1f} ms added by the chain{detail}; with the stream's "
            f"input {status.input_latency_ms:.1f} ms and output {status.output_latency_ms:.1f} ms, "
            f"{status.round_trip_ms:.1f} ms from input to output")


def play(preset_name, score=None, *, device=None, sample_rate=48000, block_size=256, latency=None, channels=2,
         duration_s=None, tail_s=2.0, capture=None, input_channels=0, osc=None, record=None, midi=None,
         transfer_input=False) -> int:
    """Play until the score (plus tail) or `duration_s` ends, or Ctrl-C / SIGTERM; returns the exit code.

    osc: None, or a dict of OscServer settings (port, bind, allow) to serve control over OSC; with a
    "framing" key ("size" or "slip") TCP is served too, on the same port number.
    record: a path for the session's applied events (JSON Lines, re-renderable).
    midi: None, or {"port": name, part of one, or "virtual"; "api": see synth.control.midi_input}.
    transfer_input: live timbre transfer; the preset's decoder follows the live input
    (synth.transfer.live_transfer_preset), which opens at least one input channel.
    """
    check_stream_format(sample_rate, block_size, channels)
    preset = load_preset(preset_name)
    if transfer_input:
        preset = live_transfer_preset(preset)
        input_channels = max(input_channels, 1)
    host = Host(preset, sample_rate, block_size, channels, input_channels, device, latency, recording=bool(record))
    events = load_score(score, host.chain, preset.osc_map, preset.midi_cc) if score else []
    if duration_s is None and events:
        duration_s = total_frames(events, sample_rate, tail_s) / sample_rate
    if capture and duration_s is None:
        raise SynthError("--capture needs a score or --duration, so the take has a known length")
    capture_frames = host.capture_frames = round(duration_s * sample_rate) if capture else 0
    midi_input = MidiInput(host, midi["port"], preset.midi_cc, midi.get("api", "auto")) if midi else None
    try:
        server = None
        if osc is not None:
            server = (OscTcpServer if "framing" in osc else OscServer)(host, osc_map=preset.osc_map, **osc)
    except BaseException:
        if midi_input:
            midi_input.close()
        raise
    recorder = SessionRecorder(host, record) if record else None

    # the handler only sets a flag: it runs on the main thread, between any two bytecodes, so taking
    # a lock there (Event.set) can deadlock against the same thread inside Event.wait
    stop = {"requested": False}
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.update(requested=True))
    tty = sys.stderr.isatty()
    try:
        host.start(events)
    except BaseException:
        if server:
            server.stop()
        if midi_input:
            midi_input.close()
        if recorder:
            recorder.stop()
        signal.signal(signal.SIGTERM, previous)
        raise
    if recorder:
        recorder.start()
    if server:
        server.start()
        tcp = f" and tcp://{server.bind}:{server.port} ({server.framing} framing)" if isinstance(server, OscTcpServer) else ""
        print(f"OSC on udp://{server.bind}:{server.port}{tcp}", file=sys.stderr)
    if midi_input:
        print(f"MIDI from {midi_input.port_name!r} ({midi_input.api})", file=sys.stderr)
    print(f"playing {preset.name} at {sample_rate} Hz, {block_size}-frame blocks, "
          f"output latency {1000 * host.output_latency_s:.1f} ms; Ctrl-C stops", file=sys.stderr)
    if host.latency_samples:
        print(latency_line(host), file=sys.stderr)
    failure = None
    try:
        started = time.monotonic()
        while not stop["requested"]:
            failure = host.failure()
            if failure:
                break
            if duration_s is not None and time.monotonic() - started >= duration_s:
                if host.captured_frames >= capture_frames:
                    break
            time.sleep(STATUS_INTERVAL_S)
            if tty:
                print("\r" + host.status().line(), end="", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        if server:
            server.stop()
        host.stop()
        if midi_input:
            midi_input.close()  # with the stream stopped: a JACK MIDI client closing waits on the JACK graph
        if recorder:
            recorder.stop()
        signal.signal(signal.SIGTERM, previous)
    status = host.status()
    print(("\n" if tty else "") + status.line(), file=sys.stderr)
    print(f"callback p50 {status.callback_p50_ms:.2f} ms, p99 {status.callback_p99_ms:.2f} ms, "
          f"max {status.callback_max_ms:.2f} ms of a {status.block_period_ms:.2f} ms block; "
          f"audio thread scheduling: {host.scheduling or 'not started'}", file=sys.stderr)
    if server:
        c = server.counters
        print(f"OSC: {c.received} messages, {c.applied} applied, {c.malformed} malformed, {c.refused} refused, "
              f"{c.unknown} unknown, {c.invalid} invalid, {c.dropped} dropped", file=sys.stderr)
        socket_drops = server.socket_drops()
        if socket_drops:
            print(f"OSC over UDP: {socket_drops} datagrams lost before they were read (the socket's receive buffer "
                  f"was full: raise net.core.rmem_max, or send less)", file=sys.stderr)
        if isinstance(server, OscTcpServer):
            t = server.tcp_counters
            print(f"OSC over TCP: {t.connections} connections; closed for {t.oversize} oversize, {t.garbage} garbage, "
                  f"{t.truncated} truncated, {t.stalled} stalled, {t.slow} slow; {t.rejected} over the client limit",
                  file=sys.stderr)
    if midi_input:
        print(midi_input.summary(), file=sys.stderr)
    if recorder:
        lost = f"; {host.unrecorded_events} applied events were lost (the applied ring was full)" \
            if host.unrecorded_events else ""
        print(f"recorded {recorder.written} events to {recorder.path}{lost}", file=sys.stderr)
    if failure:
        print(f"{failure}; the stream stopped.", file=sys.stderr)
        return 1
    if capture:
        taken = host.capture()
        with wav_writer(capture, sample_rate, channels) as wav:
            wav.write(taken)
        print(f"captured {len(taken) / sample_rate:.2f} s to {capture}", file=sys.stderr)
    return 0
