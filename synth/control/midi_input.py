"""Live MIDI input: a mido input port (python-rtmidi) whose callback turns messages into events.

The port is a system MIDI port chosen by name (or part of it), or a virtual input port named
"synth-host" that other programs (a DAW, a keyboard bridge) connect to. Each message becomes events
through `synth.control.midi.midi_to_events` (notes, the preset's [midi.cc] controllers, CC 120 and
123 release every voice) and is handed to `Host.post` from rtmidi's callback thread: it never waits
for the audio thread, and an event the engine's full queue refuses is counted as dropped. Live
messages take effect at the start of the next block (MIDI carries no timetag to schedule by).

MIDI APIs: "alsa" (the ALSA sequencer, /dev/snd/seq), "jack" (JACK MIDI; needs a running JACK
server), "coremidi" (macOS), "winmm" (Windows), or "auto": the platform's own, and on Linux JACK
when the ALSA sequencer cannot be opened. Every failure to open is one SynthError sentence.

Open and close ports while the audio stream is stopped. python-rtmidi holds the GIL while a JACK
MIDI client opens or closes, the JACK server waits for every client's cycle meanwhile, and our
PortAudio client's cycle needs the GIL: each such call stalls the stream for up to JACK's client
timeout (measured: 0.5 s per client operation, with underflows). `synth play` does it in that order.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

from synth.control.midi import midi_to_events
from synth.errors import SynthError
from synth.events import IMMEDIATE

VIRTUAL = "virtual"
CLIENT_NAME = "synth-host"
MIDI_APIS = {"alsa": "LINUX_ALSA", "jack": "UNIX_JACK", "coremidi": "MACOSX_CORE", "winmm": "WINDOWS_MM"}
API_CHOICES = ("auto", *MIDI_APIS)
SETUP_HINT = {
    "alsa": "the ALSA sequencer (/dev/snd/seq) cannot be opened (load it: `modprobe snd-seq`)",
    "jack": "no JACK server is running (start one: `jackd -d alsa`, or `jackd -d dummy`)",
    "coremidi": "CoreMIDI cannot be opened",
    "winmm": "Windows MIDI cannot be opened",
}


@dataclass
class MidiCounters:
    """received: messages read; applied: messages that gave events; ignored: messages that give no
    event (clock, sysex, unmapped controllers); invalid: a mapped controller the running chain
    lacks (after a preset load); dropped: events the engine's full queue refused."""

    received: int = 0
    applied: int = 0
    ignored: int = 0
    invalid: int = 0
    dropped: int = 0


def rtmidi_backend(api: str):
    """mido's python-rtmidi backend for one MIDI API name (see MIDI_APIS); SynthError in one
    sentence when python-rtmidi is not installed or was built without that API."""
    import mido

    try:
        backend = mido.Backend("mido.backends.rtmidi", api=MIDI_APIS[api], load=True)
    except ImportError:
        raise SynthError("Live MIDI input needs python-rtmidi (pip install python-rtmidi).") from None
    if MIDI_APIS[api] not in backend.module.get_api_names():
        raise SynthError(f"This python-rtmidi was built without {api} MIDI "
                         f"(it has: {', '.join(backend.module.get_api_names())}).")
    return backend


def candidate_apis(api: str) -> list[str]:
    """The MIDI APIs to try, in order, for an --midi-api choice ("auto" or one of MIDI_APIS)."""
    if api != "auto":
        if api not in MIDI_APIS:
            raise SynthError(f"MIDI API {api!r} must be one of: {', '.join(API_CHOICES)}")
        return [api]
    if sys.platform.startswith("linux"):
        return ["alsa", "jack"]
    return ["coremidi"] if sys.platform == "darwin" else ["winmm"]


def resolve_port(wanted: str, names: list[str]) -> str:
    """The one input port name that equals `wanted` or contains it (case-insensitive);
    SynthError listing the ports when none or several match."""
    if wanted in names:
        return wanted
    matches = [name for name in names if wanted.lower() in name.lower()]
    if len(matches) == 1:
        return matches[0]
    listed = ", ".join(repr(name) for name in names) or "none"
    if not matches:
        raise SynthError(f"No MIDI input port matches {wanted!r} (ports: {listed}; or use --midi virtual).")
    raise SynthError(f"MIDI port {wanted!r} matches several ports ({', '.join(map(repr, matches))}); name one.")


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence what C libraries print on file descriptor 2 (libasound and libjack explain their
    failures there; ours is the SynthError). For the port opening only, on the calling thread."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            sys.stderr.flush()
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class MidiInput:
    """Feed `host` from a MIDI input port; open on construction, close with close() or `with`.

    port: a port name or part of one, or "virtual" for a virtual input port called "synth-host".
    cc_map: controller number -> (slot id, parameter), a preset's [midi.cc]. api: see API_CHOICES.
    After opening, `port_name` is the port's full name and `api` the MIDI API that opened it.
    """

    def __init__(self, host, port: str, cc_map: dict[int, tuple[str, str]] | None = None, api: str = "auto"):
        self.host = host
        self.cc_map = dict(cc_map or {})
        self.counters = MidiCounters()
        self._port = None
        failures = []
        for name in candidate_apis(api):
            backend = rtmidi_backend(name)
            try:
                with quiet_native_stderr():
                    self._port = self._open(backend, port)
            except SynthError as error:
                if "No MIDI input port" in str(error) or "several ports" in str(error):
                    raise
                failures.append(str(error))
                continue
            self.api = name
            self.port_name = self._port.name
            return
        raise SynthError(f"Cannot open MIDI input: {', and '.join(failures)}.")

    def _open(self, backend, port: str):
        api = next(name for name, rt_name in MIDI_APIS.items() if rt_name == backend.api)
        try:
            if port == VIRTUAL:
                return backend.open_input(CLIENT_NAME, client_name=CLIENT_NAME, callback=self.handle)
            name = resolve_port(port, backend.get_input_names())
            return backend.open_input(name, callback=self.handle)
        except backend.module.rtmidi.UnsupportedOperationError:
            raise SynthError(f"{api} MIDI has no virtual ports; name an existing port") from None
        except (OSError, RuntimeError, ValueError):  # rtmidi: SystemError (an OSError) when the API is down
            raise SynthError(SETUP_HINT[api]) from None

    def handle(self, message) -> None:
        """rtmidi's callback thread: one mido Message -> events posted to the host. Never raises,
        never waits: everything that goes wrong is counted."""
        self.counters.received += 1
        try:
            events = midi_to_events(message, IMMEDIATE, self.host.chain, self.cc_map)
        except SynthError:
            self.counters.invalid += 1
            return
        if not events:
            self.counters.ignored += 1
            return
        self.counters.applied += 1
        for event in events:
            if not self.host.post(event):
                self.counters.dropped += 1

    def close(self) -> None:
        """Close the port (its callback stops first); safe to call twice."""
        if self._port is not None:
            port, self._port = self._port, None
            port.close()

    def __enter__(self) -> MidiInput:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def summary(self) -> str:
        c = self.counters
        return (f"MIDI ({self.api}, {self.port_name!r}): {c.received} messages, {c.applied} applied, "
                f"{c.ignored} ignored, {c.invalid} invalid, {c.dropped} dropped")
