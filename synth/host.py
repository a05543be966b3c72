"""Host: one Engine and one audio stream, started and stopped together, with a status report."""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from synth.engine import Engine
from synth.events import Event
from synth.io.stream import AudioStream

GIL_SWITCH_INTERVAL_S = 0.0001  # other Python threads hand the GIL back to the audio thread this often


@dataclass
class HostStatus:
    """A snapshot for the status line, /status and reports. Loads are shares of the block period."""

    uptime_s: float
    load_mean: float
    load_peak: float
    callback_p50_ms: float
    callback_p99_ms: float
    callback_max_ms: float
    block_period_ms: float
    voices: int
    underflows: int
    overflows: int
    late_events: int
    worst_late_ms: float
    nonfinite_blocks: int
    dropped_events: int
    plugin_latency_ms: float  # how far the chain's output lags live input it follows (timbre transfer)
    input_latency_ms: float  # the stream's input and output latencies as PortAudio reports them
    output_latency_ms: float

    @property
    def round_trip_ms(self) -> float:
        """Live input to output: the stream's input and output latencies plus the chain's own."""
        return self.input_latency_ms + self.plugin_latency_ms + self.output_latency_ms

    def line(self) -> str:
        return (f"DSP {100 * self.load_mean:4.1f}% (peak {100 * self.load_peak:5.1f}%)  voices {self.voices:3d}  "
                f"underflows {self.underflows}  overflows {self.overflows}  late {self.late_events}  NaN blocks {self.nonfinite_blocks}")


class Host:
    """Runs `engine` on a live output stream. Use as a context manager, or start()/stop().

    While running, the cyclic garbage collector is off (existing objects frozen first): a
    collection on any thread holds the GIL, and measured gen-2 collections here took up to 77 ms,
    many block periods, while the callback waits. Reference counting still frees everything that is
    not a cycle. Python's thread switch interval is shortened too. Both are restored on stop.
    """

    def __init__(self, engine: Engine, device: int | str | None = None, latency: float | None = None,
                 capture_frames: int = 0):
        self.engine = engine
        self.stream = AudioStream(self._render, engine.sample_rate, engine.max_block, engine.channels,
                                  device, latency, capture_frames, engine.input_channels)
        self.clock_anchor = (0, time.time())  # (engine sample at a block's start, Unix time of its callback)
        self._next_engine: Engine | None = None
        self._started_at = 0.0
        self._switch_interval = sys.getswitchinterval()
        self._gc_was_enabled = gc.isenabled()

    def start(self, events: Iterable[Event] = ()) -> None:
        """Prepare the engine (buffers, compiled kernels), schedule `events`, open the stream."""
        self.engine.prepare()
        for event in events:
            self.engine.schedule(event)
        gc.collect()
        gc.freeze()
        self._gc_was_enabled = gc.isenabled()
        gc.disable()
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        self._started_at = time.monotonic()
        try:
            self.stream.start()
        except BaseException:
            self._restore()
            raise

    def _render(self, out: np.ndarray, live_input: np.ndarray | None) -> None:
        """The stream's callback body: switch engines if one is waiting, then render the block."""
        if self._next_engine is not None:
            self._switch_engine()
        self.clock_anchor = (self.engine.sample_time, time.time())
        self.engine.process(out, live_input)

    def _switch_engine(self) -> None:
        old, new = self.engine, self._next_engine
        new.sample_time = old.sample_time
        new.tempo_bpm = old.tempo_bpm
        for slot in new.slots:
            slot.plugin.set_tempo(old.tempo_bpm)
        new.counters = old.counters
        new.applied_log = old.applied_log
        self.engine = new
        self._next_engine = None

    def replace_engine(self, engine: Engine) -> None:
        """Swap in another engine (a preset load) at the next block; prepared here, off the audio
        thread. It must have the running one's rate, block size and channels."""
        old = self.engine
        if (engine.sample_rate, engine.max_block, engine.channels, engine.input_channels) != \
                (old.sample_rate, old.max_block, old.channels, old.input_channels):
            raise ValueError("a replacement engine must match the stream's format")
        engine.prepare()
        self._next_engine = engine

    def post(self, event: Event) -> bool:
        """Hand an event to the engine that will render the next block (thread-safe, bounded)."""
        return (self._next_engine or self.engine).post(event)

    def sample_for(self, unix_time_s: float) -> int:
        """The engine sample that reaches the output at `unix_time_s` (a bundle's timetag)."""
        anchor_sample, anchor_time = self.clock_anchor
        delay_s = unix_time_s - anchor_time - self.stream.latency_s
        return anchor_sample + round(delay_s * self.engine.sample_rate)

    def stop(self) -> None:
        self.stream.close()
        self._restore()

    def _restore(self) -> None:
        sys.setswitchinterval(self._switch_interval)
        gc.unfreeze()
        if self._gc_was_enabled:
            gc.enable()

    def __enter__(self) -> Host:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def status(self) -> HostStatus:
        durations = self.stream.durations_s()
        period = self.stream.block_period_s
        if len(durations):
            p50, p99, worst = np.percentile(durations, [50, 99]).tolist() + [float(durations.max())]
            mean = float(durations.mean())
        else:
            p50 = p99 = worst = mean = 0.0
        counters = self.engine.counters
        return HostStatus(time.monotonic() - self._started_at, mean / period, worst / period, 1000 * p50,
                          1000 * p99, 1000 * worst, 1000 * period, self.engine.active_voices,
                          self.stream.underflows, self.stream.overflows, counters.late_events,
                          1000 * counters.worst_lateness_samples / self.engine.sample_rate, counters.nonfinite_blocks,
                          counters.dropped_events, 1000 * self.engine.latency_samples / self.engine.sample_rate,
                          1000 * self.stream.input_latency_s, 1000 * self.stream.latency_s)
