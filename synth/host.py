"""Host: the control plane's handle on the audio plane (synth.plane): start and stop it, hand it
events, load presets, read its counters, clock, parameter values and captured take.

The audio plane is a spawned process that owns the stream and the engine; this process keeps a
copy of the chain (`Host.chain`, built from the same preset, never rendered) for what control
needs: addresses, parameter specs, the timbre spaces of /latent, the speech models of /say and
/sing. Events cross as fixed-size records through a lock-free ring in shared memory; this process
never waits for the audio plane, nor it for us.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from synth.engine import Engine, EngineCounters, check_stream_format
from synth.errors import SynthError
from synth.events import Event, Lyric, Utterance
from synth.plane import audio_process
from synth.plane.payloads import PayloadPool
from synth.plane.records import LYRIC, PRESET_LOAD, RECORD, UTTERANCE, EventCodec
from synth.plane.shared import COUNTERS, SCHEDULING, Layout, SharedState
from synth.presets import PresetSpec

START_TIMEOUT_S = 120.0  # spawning, importing and compiling on a cold cache takes this long at most
LOAD_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 1.5  # then the audio plane is killed: Ctrl-C stops both within 2 s


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


class AudioPlaneError(SynthError):
    """The audio plane could not start, or stopped on its own."""


class Host:
    """Plays `preset` live in an audio plane process. Use as a context manager, or start()/stop().

    sample_rate (Hz), block_size (frames), channels, input_channels: the stream's format; device
    and latency (s) as for synth.io.stream.AudioStream; capture_frames > 0 keeps the first that
    many output frames (`capture()`); recording=True sends every applied event back
    (`take_applied()`, for synth.control.recorder); plugin_modules are imported in the audio plane
    first (modules that register plugins the preset uses).
    """

    def __init__(self, preset: PresetSpec, sample_rate: int = 48000, block_size: int = 256, channels: int = 2,
                 input_channels: int = 0, device: int | str | None = None, latency: float | None = None,
                 capture_frames: int = 0, recording: bool = False, plugin_modules: Iterable[str] = ()):
        check_stream_format(sample_rate, block_size, channels)
        self.preset = preset
        self.sample_rate, self.block_size, self.channels = sample_rate, block_size, channels
        self.input_channels = input_channels
        self.chain: Engine = preset.build_engine(sample_rate, block_size, channels, input_channels)
        self.generation = 0
        self._codec = EventCodec(self.chain, 0)
        self._codecs = {0: self._codec}  # chain generation -> its codec, for reading applied records
        self._settings = {"sample_rate": sample_rate, "block_size": block_size, "channels": channels,
                          "input_channels": input_channels, "device": device, "latency": latency,
                          "recording": recording}
        self.capture_frames = capture_frames
        self._layout = Layout(channels=channels)
        self._plugin_modules = tuple(plugin_modules)
        # the ring has one producer and the pipe one writer: OSC, MIDI and main threads take turns
        self._post_lock = threading.Lock()
        self._recording = recording
        self._texts: dict[int, str] = {}  # payload handle -> its utterance or lyric text, while recording
        self._preset_names = {0: Path(preset.source).stem}  # chain generation -> the preset file, for recording
        self._shared: SharedState | None = None
        self._process = None
        self._connection = None
        self._started_at = 0.0
        self.latency_samples = 0
        self.latency_details: list[str] = []
        self.output_latency_s = self.input_latency_s = 0.0
        self.dropped_posts = 0
        self._final = {"counters": dict.fromkeys(COUNTERS, 0), "tempo_bpm": 0.0, "applied": [],
                       "params": np.zeros(self._layout.max_params), "capture": np.zeros((0, channels), np.float32),
                       "durations": np.zeros(0), "underflow_times": np.zeros(0)}  # what reads give when not running

    # --- life cycle ----------------------------------------------------------------------------

    def start(self, events: Iterable[Event] = ()) -> None:
        """Spawn the audio plane, wait until its engine is prepared, hand it `events` (a score)
        and start the stream. AudioPlaneError in one sentence when it cannot."""
        self._layout = Layout(channels=self.channels, capture_frames=self.capture_frames)
        self._shared = SharedState.create(self._layout)
        self.pool = PayloadPool(self._shared.pool, self._shared.payload_table, self._shared.released)
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=audio_process.run, name="synth-audio-plane", daemon=True,
            args=(child, self._shared.name, self._layout.to_dict(), self.preset, self._settings, self._plugin_modules))
        try:
            self._process.start()
            child.close()
            info = self._expect("prepared", START_TIMEOUT_S)
            self.latency_samples = info["latency_samples"]
            self.latency_details = info["latency_details"]
            records = np.array([self._record(event) for event in events], dtype=RECORD)
            self._connection.send(("start", records.tobytes()))
            info = self._expect("started", START_TIMEOUT_S)
        except BaseException:
            self._shut_down()
            raise
        self.output_latency_s, self.input_latency_s = info["output_latency_s"], info["input_latency_s"]
        self._started_at = time.monotonic()

    def _expect(self, reply: str, timeout_s: float) -> dict:
        """The audio plane's next reply, which must be `reply`; AudioPlaneError otherwise."""
        deadline = time.monotonic() + timeout_s
        while not self._connection.poll(0.1):
            if not self._process.is_alive():
                raise AudioPlaneError(f"the audio plane process exited with code {self._process.exitcode} "
                                      "before it was ready")
            if time.monotonic() > deadline:
                raise AudioPlaneError(f"the audio plane was not {reply} within {timeout_s:.0f} s")
        try:
            message = self._connection.recv()
        except (EOFError, OSError):
            self._process.join(1.0)
            raise AudioPlaneError(f"the audio plane process exited with code {self._process.exitcode} "
                                  "before it was ready") from None
        if message[0] == "failed":
            raise AudioPlaneError(message[1])
        if message[0] != reply:
            raise AudioPlaneError(f"the audio plane answered {message[0]!r} instead of {reply!r}")
        return message[1] if len(message) > 1 else {}

    def stop(self) -> None:
        """Stop the stream and the audio plane (killed after STOP_TIMEOUT_S) and remove the shared
        memory; the counters, capture and status stay readable. Safe to call twice."""
        if self._process is None:
            return
        with self._post_lock:
            try:
                self._connection.send(("stop",))
            except OSError:
                pass
        self._process.join(STOP_TIMEOUT_S)
        self._shut_down()

    def _shut_down(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.is_alive():
            process.kill()
            process.join(1.0)
        if process is not None:
            process.close()
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._shared is not None:
            applied = self.take_applied()
            self._final = self._snapshot()
            self._final["applied"] = applied
            self._shared.close()
            self._shared = None

    def __enter__(self) -> Host:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def failure(self) -> str | None:
        """None while the audio plane runs; else one sentence saying that it stopped."""
        if self._process is None or self._process.is_alive():
            return None
        return f"the audio plane process stopped unexpectedly (exit code {self._process.exitcode})"

    # --- events --------------------------------------------------------------------------------

    def _record(self, event: Event) -> tuple:
        """The event's record; an utterance's audio or a lyric's table goes into the payload pool."""
        handle = -1
        if isinstance(event, Utterance):
            handle = self.pool.put_utterance(event.audio)
        elif isinstance(event, Lyric):
            handle = self.pool.put_lyric(event.table)
        if handle >= 0 and self._recording:
            self._texts[handle] = event.text
        return self._codec.encode(event, handle)

    def post(self, event: Event) -> bool:
        """Hand an event to the audio plane (any thread; never waits for the audio plane). False,
        and counted, when the ring or the payload pool is full."""
        with self._post_lock:
            if self._shared is None:
                self.dropped_posts += 1
                return False
            try:
                record = self._record(event)
            except SynthError:  # no room in the payload pool
                self.dropped_posts += 1
                return False
            if self._shared.event_ring.push(record):
                return True
            if record[0] in (UTTERANCE, LYRIC):
                self.pool.release(record[4])
                self._texts.pop(record[4], None)
            self.dropped_posts += 1
            return False

    def load_preset(self, preset: PresetSpec) -> None:
        """Switch to `preset` at a block boundary: its chain is built here (for control) and in the
        audio plane (between callbacks); events posted from now on are for the new chain and wait
        in the ring until it plays. SynthError if the preset cannot be built."""
        chain = preset.build_engine(self.sample_rate, self.block_size, self.channels, self.input_channels)
        with self._post_lock:
            self.generation += 1
            self._preset_names[self.generation] = Path(preset.source).stem
            self._connection.send(("load", preset, self.generation))
            self.preset, self.chain = preset, chain
            self._codec = self._codecs[self.generation] = EventCodec(chain, self.generation)

    @property
    def loaded(self) -> bool:
        """Whether the audio plane plays the latest chain handed to load_preset."""
        shared = self._shared
        return shared is None or shared.counter("generation") == self.generation or \
            shared.counter("failed_generation") == self.generation

    def take_applied(self) -> list[tuple[int, Event | str]]:
        """What the engine applied since the last call, in order, as (sample, event), and a preset
        load as (sample, the preset's name). Hosts made with recording=True only."""
        shared = self._shared
        if shared is None:
            applied, self._final["applied"] = self._final["applied"], []
            return applied
        ring = shared.applied_ring
        records = ring.peek(ring.capacity)
        ring.consume(len(records))
        applied = []
        for record in records:
            kind, sample, generation = record[0], record[1], record[2]
            if kind == PRESET_LOAD:
                applied.append((sample, self._preset_names[generation]))
                continue
            text = self._texts.pop(record[4], "") if kind in (UTTERANCE, LYRIC) else ""
            applied.append((sample, self._codecs[generation].decode(record, text)))
        return applied

    # --- what the audio plane reports ----------------------------------------------------------

    def _counter(self, name: str) -> int:
        if self._shared is None:
            return self._final["counters"][name]
        return self._shared.counter(name)

    def clock_anchor(self) -> tuple[int, float]:
        """(engine sample at the start of the latest block, Unix time its callback began)."""
        return self._shared.read_anchor() if self._shared else (0, time.time())

    def sample_for(self, unix_time_s: float, anchor: tuple[int, float] | None = None) -> int:
        """The engine sample that reaches the output at `unix_time_s` (a bundle's timetag), from
        `anchor` (a clock_anchor() reading; a fresh one by default)."""
        anchor_sample, anchor_time = anchor or self.clock_anchor()
        delay_s = unix_time_s - anchor_time - self.output_latency_s
        return anchor_sample + round(delay_s * self.sample_rate)

    def param_value(self, slot_id: str, name: str) -> float:
        """The value parameter `name` of chain slot `slot_id` is heading to in the audio plane."""
        index = self._codec.flat_param(slot_id, name)
        values = self._shared.param_values if self._shared is not None else self._final["params"]
        return float(values[index])

    def sync_chain(self) -> None:
        """Give this process's copy of the chain the audio plane's parameter values (before
        rendering speech with the voice's current gains, or listing parameters)."""
        for slot in self.chain.slots:
            for spec in slot.plugin.param_specs:
                slot.plugin.params[spec.name].set(self.param_value(slot.id, spec.name))

    @property
    def applied_events(self) -> int:
        """Events the engine has applied since the stream started."""
        return self._counter("applied_events")

    @property
    def unrecorded_events(self) -> int:
        """Applied events a recording host could not send back (its applied ring was full)."""
        return self._counter("unrecorded_events")

    @property
    def deferred_blocks(self) -> int:
        """Blocks that left event records in the ring for later ones, their intake budget spent."""
        return self._counter("deferred_blocks")

    @property
    def active_voices(self) -> int:
        return self._counter("active_voices")

    @property
    def tempo_bpm(self) -> float:
        return self._shared.gauge("tempo_bpm") if self._shared else self._final["tempo_bpm"]

    @property
    def counters(self) -> EngineCounters:
        c = self._counter
        return EngineCounters(c("blocks"), c("late_events"), c("worst_late_samples"), c("nonfinite_blocks"),
                              c("clamped_samples"), c("stolen_voices"), c("dropped_events") + self.dropped_posts)

    @property
    def underflows(self) -> int:
        return self._counter("underflows")

    @property
    def callbacks(self) -> int:
        return self._counter("callbacks")

    @property
    def captured_frames(self) -> int:
        return self._counter("captured_frames")

    @property
    def scheduling(self) -> str | None:
        code = self._counter("scheduling")
        return SCHEDULING[code] if code else None

    @property
    def block_period_s(self) -> float:
        return self.block_size / self.sample_rate

    def capture(self) -> np.ndarray:
        """The output frames captured so far (a copy), float32 [frames, channels]."""
        if self._shared is None:
            return self._final["capture"]
        return self._shared.capture[: self.captured_frames].copy()

    def durations_s(self) -> np.ndarray:
        """The most recent callback durations in seconds (a copy)."""
        if self._shared is None:
            return self._final["durations"]
        count = min(self.callbacks, self._layout.timing_slots)
        return self._shared.durations_s[:count].copy()

    def underflow_times(self) -> np.ndarray:
        """time.monotonic() of the callbacks that reported the first underflows (a copy)."""
        if self._shared is None:
            return self._final["underflow_times"]
        return self._shared.underflow_times[: min(self.underflows, self._layout.underflow_slots)].copy()

    def _snapshot(self) -> dict:
        """Everything readable after stop, copied out of the shared memory before it goes."""
        shared = self._shared
        counters = {name: shared.counter(name) for name in COUNTERS}
        return {"counters": counters, "tempo_bpm": shared.gauge("tempo_bpm"), "params": shared.param_values.copy(),
                "capture": shared.capture[: counters["captured_frames"]].copy(),
                "durations": shared.durations_s[: min(counters["callbacks"], self._layout.timing_slots)].copy(),
                "underflow_times": shared.underflow_times[: min(counters["underflows"],
                                                                self._layout.underflow_slots)].copy()}

    def status(self) -> HostStatus:
        durations = self.durations_s()
        period = self.block_period_s
        if len(durations):
            p50, p99, worst = np.percentile(durations, [50, 99]).tolist() + [float(durations.max())]
            mean = float(durations.mean())
        else:
            p50 = p99 = worst = mean = 0.0
        counters = self.counters
        uptime = time.monotonic() - self._started_at if self._started_at else 0.0
        return HostStatus(uptime, mean / period, worst / period, 1000 * p50, 1000 * p99, 1000 * worst, 1000 * period,
                          self.active_voices, self.underflows, self._counter("overflows"), counters.late_events,
                          1000 * counters.worst_lateness_samples / self.sample_rate, counters.nonfinite_blocks,
                          counters.dropped_events, 1000 * self.latency_samples / self.sample_rate,
                          1000 * self.input_latency_s, 1000 * self.output_latency_s)
