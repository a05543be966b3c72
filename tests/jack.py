"""Starting and stopping JACK's dummy backend for realtime tests (a real PortAudio device, no card)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

SAMPLE_RATE = 48000
PERIOD = 256


def refresh_portaudio():
    """PortAudio lists devices when it starts; restart it so it sees a server started since.
    sounddevice has no public call for this, so its own _terminate/_initialize are used."""
    import sounddevice

    sounddevice._terminate()
    sounddevice._initialize()


def jack_device_index() -> int | None:
    import sounddevice

    for index, device in enumerate(sounddevice.query_devices()):
        if "JACK" in sounddevice.query_hostapis(device["hostapi"])["name"] and device["max_output_channels"] >= 2:
            return index
    return None


def start_jack():
    """Start `jackd -d dummy` in its own process group; returns (process, PortAudio device index)."""
    if shutil.which("jackd") is None:
        pytest.skip("jackd is not installed (Debian package jackd2); realtime tests need its dummy backend")
    process = subprocess.Popen(["jackd", "--no-realtime", "-d", "dummy", "-r", str(SAMPLE_RATE), "-p", str(PERIOD)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jackd exited: {process.stderr.read().decode(errors='replace')}")
        time.sleep(0.3)
        refresh_portaudio()
        index = jack_device_index()
        if index is not None:
            return process, index
    stop_jack(process)
    raise RuntimeError("jackd started but PortAudio shows no JACK device")


def stop_jack(process):
    """Stop the server we started, by its own process id (never by name).

    PortAudio's JACK host API holds a client on the server; it is closed first, since libjack
    aborts the whole process when its server vanishes under an open client."""
    import sounddevice

    sounddevice._terminate()
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    sounddevice._initialize()
