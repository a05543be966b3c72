"""JACK's dummy backend as a real audio device on machines without a sound card (tests, benches,
headless servers): a JACK server paced like a card, which PortAudio's JACK host API then offers."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time

from synth.errors import SynthError
from synth.io.stream import close_portaudio, sounddevice_module


def refresh_portaudio() -> None:
    """PortAudio lists devices when it starts; restart it so it sees a server started since."""
    close_portaudio()
    sounddevice_module()


def jack_device_index() -> int | None:
    """PortAudio's index of the JACK device with stereo output, or None."""
    sd = sounddevice_module()
    for index, device in enumerate(sd.query_devices()):
        if "JACK" in sd.query_hostapis(device["hostapi"])["name"] and device["max_output_channels"] >= 2:
            return index
    return None


SERVER_NICENESS = -15
SERVER_RT_PRIORITY = 80  # above the callback threads (synth.io.stream), below the stall probe


def realtime_permitted() -> bool:
    """Whether this process may give threads SCHED_FIFO priority SERVER_RT_PRIORITY (root, or an
    rtprio limit that high)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_RTPRIO)
    return os.geteuid() == 0 or soft == resource.RLIM_INFINITY or soft >= SERVER_RT_PRIORITY


def server_command(sample_rate: int, period: int, realtime: bool) -> list[str]:
    """jackd with the dummy backend: realtime (as on a sound card, whose interrupts do not wait for
    a busy CPU: a late wake-up of the dummy driver's thread is an xrun for every client, on a
    loaded machine without realtime scheduling the most common cause of underflows here), or
    `--no-realtime`, at raised niceness where allowed."""
    mode = ["-R", "-P", str(SERVER_RT_PRIORITY)] if realtime else ["--no-realtime"]
    return ["jackd", *mode, "-d", "dummy", "-r", str(sample_rate), "-p", str(period)]


def _raise_priority() -> None:
    """In the server's process before exec: a higher niceness where allowed (the fallback)."""
    try:
        os.nice(SERVER_NICENESS)
    except OSError:
        pass


class JackDummyServer:
    """`jackd -d dummy -r RATE -p PERIOD` (`server_command`), started and stopped by its own process id.

    with JackDummyServer(48000, 256) as server: ... server.device is PortAudio's device index.
    """

    def __init__(self, sample_rate: int = 48000, period: int = 256):
        self.sample_rate, self.period = sample_rate, period
        self.process: subprocess.Popen | None = None
        self.device: int | None = None
        self._log = None  # the server's messages: a file, as a pipe nobody reads while it runs could fill and block it

    def start(self, timeout_s: float = 15.0) -> int:
        """Start the server, realtime where permitted (else, or if a realtime server will not run
        here, without); PortAudio's device index of it."""
        if shutil.which("jackd") is None:
            raise SynthError("jackd is not installed (Debian package jackd2)")
        if realtime_permitted():
            try:
                return self._start(True, timeout_s)
            except SynthError:
                self.stop()
        return self._start(False, timeout_s)

    def _start(self, realtime: bool, timeout_s: float) -> int:
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            server_command(self.sample_rate, self.period, realtime),
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_raise_priority)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SynthError(f"jackd exited: {self.messages().strip()}")
            time.sleep(0.3)
            refresh_portaudio()
            self.device = jack_device_index()
            close_portaudio()  # the processes that open streams on it start PortAudio themselves
            if self.device is not None:
                return self.device
        self.stop()
        raise SynthError("jackd started but PortAudio shows no JACK device")

    def messages(self) -> str:
        """What the server has printed so far."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        """Close PortAudio's JACK client first (libjack aborts the whole process when its server
        vanishes under an open client), then stop the server. PortAudio starts again when next used."""
        close_portaudio()
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> JackDummyServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
