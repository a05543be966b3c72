"""A sounddevice (PortAudio) stream whose callback renders with one function, plus counters.

`AudioStream` is a context manager. Its callback does three things: call `render(out, live_input)`
on PortAudio's buffers, count the underflows and overflows PortAudio reports, and write its own
duration into a preallocated ring (and, when asked, the rendered frames into a preallocated capture
buffer). Nothing else runs there. With input channels it is a duplex stream.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import numpy as np

from synth.errors import SynthError

AUDIO_THREAD_RT_PRIORITY = 70  # SCHED_FIFO priority (1..99) of the callback thread, where permitted
AUDIO_THREAD_NICENESS = -15  # the fallback where realtime scheduling is not permitted
TIMING_SLOTS = 8192  # callback durations kept for the percentiles (43 s of 256-frame blocks at 48 kHz)
UNDERFLOW_SLOTS = 256  # time.monotonic() of the first underflows, to tell their cause afterwards


def raise_thread_priority() -> str:
    """Give the calling thread realtime scheduling (Linux SCHED_FIFO, as JACK gives its clients'
    process threads), else a higher niceness, else nothing; returns which: "realtime", "nice" or
    "normal". A JACK server run without realtime scheduling leaves client threads at normal
    priority, where any busy process on the machine can make the callback late."""
    thread_id = threading.get_native_id()
    try:
        if os.sched_getscheduler(thread_id) in (os.SCHED_FIFO, os.SCHED_RR):
            return "realtime"  # a realtime JACK server gave its client thread realtime priority already
        os.sched_setscheduler(thread_id, os.SCHED_FIFO, os.sched_param(AUDIO_THREAD_RT_PRIORITY))
        return "realtime"
    except (OSError, AttributeError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, thread_id, AUDIO_THREAD_NICENESS)
        return "nice"
    except (OSError, AttributeError):
        return "normal"


def sounddevice_module():
    """The sounddevice module with PortAudio running (started again where `close_portaudio`
    stopped it), or SynthError when the PortAudio library is missing."""
    try:
        import sounddevice
    except OSError:
        raise SynthError("PortAudio is not installed; install the Debian package libportaudio2.") from None
    if not sounddevice._initialized:  # sounddevice has no public call for this state
        sounddevice._initialize()
    return sounddevice


def close_portaudio() -> None:
    """Stop PortAudio in this process until it is needed again. While a JACK server runs, PortAudio
    keeps a client in every process that started it, and the server wakes each client every cycle:
    one late wake-up of even an idle client is an xrun, reported to every stream. A process that
    only looked for a device (a test, a control plane) should not keep one."""
    import sounddevice

    while sounddevice._initialized:
        sounddevice._terminate()


def list_devices() -> list[dict]:
    """Every audio device: index, name, host API, input/output channels, default rate (Hz)."""
    sd = sounddevice_module()
    apis = sd.query_hostapis()
    return [{"index": index, "name": d["name"], "hostapi": apis[d["hostapi"]]["name"],
             "inputs": d["max_input_channels"], "outputs": d["max_output_channels"],
             "default_rate": d["default_samplerate"]} for index, d in enumerate(sd.query_devices())]


def resolve_device(device: int | str | None, sample_rate: int, channels: int, kind: str = "output") -> int:
    """The index of a usable `kind` ("output" or "input") device (None: the default);
    SynthError in one sentence if there is none or it cannot take these settings."""
    sd = sounddevice_module()
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    try:
        info = sd.query_devices(device, kind=kind) if device is not None else sd.query_devices(kind=kind)
    except (ValueError, sd.PortAudioError):
        if device is None:
            raise SynthError(f"No audio {kind} device was found (is a sound card or JACK server running?).") from None
        raise SynthError(f"No {kind} device matches {device!r}; `synth devices` lists them.") from None
    index = list(sd.query_devices()).index(info)
    available = info[f"max_{kind}_channels"]
    if available < channels:
        raise SynthError(f"Device {info['name']!r} has {available} {kind} channels, not {channels}.")
    check = sd.check_output_settings if kind == "output" else sd.check_input_settings
    try:
        check(index, channels=channels, dtype="float32", samplerate=sample_rate)
    except sd.PortAudioError as error:
        verb = "play" if kind == "output" else "record"
        raise SynthError(f"Device {info['name']!r} cannot {verb} {channels} channels at {sample_rate} Hz ({error}).") from None
    return index


class AudioStream:
    """A stream that calls `render(out, live_input)` each block: out is float32 [frames, channels],
    live_input float32 [frames, input_channels] or None when the stream has no input.

    sample_rate: Hz; block_size: frames per callback; latency: seconds or None for the device's
    low default. The arrays it writes may be given (shared memory, synth.plane.shared), else they
    are made here: capture float32 [frames, channels] keeps the first that many rendered frames
    (for checks and takes; none by default), durations float64 [slots] the latest callback
    durations (s), underflow_times float64 [slots] when the first underflows happened.
    Counters while it runs: callbacks, underflows, overflows; `durations_s()` gives recent
    callback durations.
    """

    def __init__(self, render: Callable[[np.ndarray, np.ndarray | None], None], sample_rate: int, block_size: int,
                 channels: int = 2, device: int | str | None = None, latency: float | None = None,
                 input_channels: int = 0, capture: np.ndarray | None = None, durations: np.ndarray | None = None,
                 underflow_times: np.ndarray | None = None):
        self._sd = sounddevice_module()
        self.device = resolve_device(device, sample_rate, channels, "output")
        self.input_device = resolve_device(device, sample_rate, input_channels, "input") if input_channels else None
        self.sample_rate, self.block_size, self.channels = sample_rate, block_size, channels
        self.input_channels = input_channels
        self._render = render
        self._latency = "low" if latency is None else latency
        # np.zeros maps pages lazily; writing them now keeps page faults out of the callback
        self._durations = np.zeros(TIMING_SLOTS) if durations is None else durations
        self._durations.fill(1.0)
        self._capture = np.zeros((0, channels), dtype=np.float32) if capture is None else capture
        self._capture.fill(1.0)
        self.captured_frames = 0
        self.callbacks = 0
        self.underflows = 0
        self.overflows = 0
        self.scheduling: str | None = None  # "realtime", "nice" or "normal": set by the first callback
        self._underflow_times = np.zeros(UNDERFLOW_SLOTS) if underflow_times is None else underflow_times
        self._underflow_times.fill(1.0)
        self._stream = None

    @property
    def block_period_s(self) -> float:
        return self.block_size / self.sample_rate

    def _output_callback(self, outdata, frames, time_info, status) -> None:
        self._callback(None, outdata, frames, time_info, status)

    def _callback(self, indata, outdata, frames, time_info, status) -> None:
        started = time.perf_counter()
        if self.scheduling is None:  # once, on PortAudio's audio thread: system calls, no allocation after
            self.scheduling = raise_thread_priority()
        if status.output_underflow:
            if self.underflows < self._underflow_times.shape[0]:
                self._underflow_times[self.underflows] = time.monotonic()
            self.underflows += 1
        if status.input_overflow:
            self.overflows += 1
        self._render(outdata, indata)
        room = self._capture.shape[0] - self.captured_frames
        if room > 0:
            take = min(room, frames)
            self._capture[self.captured_frames : self.captured_frames + take] = outdata[:take]
            self.captured_frames += take
        self._durations[self.callbacks % self._durations.shape[0]] = time.perf_counter() - started
        self.callbacks += 1

    def start(self) -> None:
        try:
            if self.input_channels:
                self._stream = self._sd.Stream(
                    samplerate=self.sample_rate, blocksize=self.block_size, device=(self.input_device, self.device),
                    channels=(self.input_channels, self.channels), dtype="float32", latency=self._latency,
                    callback=self._callback)
            else:
                self._stream = self._sd.OutputStream(
                    samplerate=self.sample_rate, blocksize=self.block_size, device=self.device,
                    channels=self.channels, dtype="float32", latency=self._latency, callback=self._output_callback)
            self._stream.start()
        except self._sd.PortAudioError as error:
            self.close()
            raise SynthError(f"Could not open the audio stream: {error}.") from None

    @property
    def latency_s(self) -> float:
        """Output latency PortAudio reports for the open stream (seconds)."""
        if self._stream is None:
            return 0.0
        latency = self._stream.latency
        return float(latency[1] if isinstance(latency, tuple) else latency)

    @property
    def input_latency_s(self) -> float:
        """Input latency PortAudio reports for the open stream (seconds; 0 without input)."""
        if self._stream is None or not isinstance(self._stream.latency, tuple):
            return 0.0
        return float(self._stream.latency[0])

    def close(self) -> None:
        """Stop and close the stream (safe to call twice)."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.stop()
            stream.close()

    def __enter__(self) -> AudioStream:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def durations_s(self) -> np.ndarray:
        """The most recent callback durations in seconds (up to TIMING_SLOTS, a copy)."""
        count = min(self.callbacks, TIMING_SLOTS)
        return self._durations[:count].copy()

    def underflow_times(self) -> np.ndarray:
        """time.monotonic() of the callbacks that reported the first UNDERFLOW_SLOTS underflows (a copy)."""
        return self._underflow_times[: min(self.underflows, UNDERFLOW_SLOTS)].copy()

    def capture(self) -> np.ndarray:
        """The frames captured so far (a copy), float32 [frames, channels]."""
        return self._capture[: self.captured_frames].copy()
