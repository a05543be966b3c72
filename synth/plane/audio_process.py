"""The audio plane: a spawned process that owns the PortAudio stream and the Engine.

`run` is the process's whole life, driven by the control plane over a pipe (life cycle only):
1. open nothing yet, but resolve the device (a missing device fails fast, in one sentence);
   build the preset's engine and prepare it (buffers, compiled kernels); reply "prepared" with
   the chain's latency, or "failed" with the sentence;
2. on "start" (with the score's first event records): schedule them, freeze and disable the cyclic
   garbage collector, open the stream; reply "started" with the stream's latencies;
3. wait in a system call with no timeout (the interpreter lock stays free for the callback) for
   "load" (a preset load: the new chain is built and prepared here, between callbacks, and swapped
   in at the start of a block) or "stop"; stop too when the pipe closes (the control plane died);
4. close the stream, publish the last counters, and exit (the control plane joins us).

The callback (`AudioPlane.render`) drains the event ring into the engine's scheduler (records of
a newer chain generation wait in the ring until that chain is swapped in, and a loaded chain is
swapped in only once the records sent before it have been applied to the one it replaces), renders
the block, and
publishes counters, the clock anchor and parameter values into shared memory. Payload handles
the engine no longer needs are marked released there.
"""

from __future__ import annotations

import gc
import importlib
import signal
import sys
import time

import numpy as np

from synth.engine import Engine
from synth.errors import SynthError
from synth.events import Lyric, ParamChange, TempoChange, Utterance
from synth.io.stream import AudioStream
from synth.lv2 import worker as lv2_worker
from synth.plane.payloads import PayloadViews
from synth.plane.records import LYRIC, PRESET_LOAD, UTTERANCE, EventCodec
from synth.plane.shared import COUNTER, GAUGE, SCHEDULING, Layout, SharedState

MAX_RECORDS_PER_BLOCK = 4096  # the rest waits in the ring for the next block
# Records are read from the ring this many at a time, the intake budget checked between chunks: a
# chunk costs microseconds, where reading 4096 at once (a tuple each) can cost a slow CPU a
# millisecond before the first is applied. The first chunk is always taken, so a flood cannot
# starve the intake however late a callback starts.
RECORDS_PER_CHUNK = 32
# The share of a block's period (1 = the whole period) one callback may spend taking records from
# the event ring; applying them costs one to two times as much again. A burst (the control plane
# catching up after the machine held it back, or a TCP read of many frames) then spreads over the
# next blocks instead of overrunning one: immediate events move a block later, timed ones count as
# late. At 0.15 a 256-frame block takes in 300 to 600 records, some 60,000 to 120,000 a second.
EVENT_INTAKE_BUDGET = 0.15
GIL_SWITCH_INTERVAL_S = 0.0001  # a preset load building here hands the interpreter back this often


class AppliedEvents:
    """The engine's `applied_log`: notes that parameter values changed (a parameter or the tempo
    can move others, as a synced delay time), releases payloads the engine lets go, and (when
    recording) copies each applied event into the applied ring."""

    def __init__(self, shared: SharedState, views: PayloadViews, codec: EventCodec, recording: bool):
        self.shared, self.views, self.codec, self.recording = shared, views, codec, recording
        self.held: dict[tuple[str, type], int] = {}  # (slot id, Utterance or Lyric) -> payload handle
        self.params_changed = False
        self.count = 0  # events applied since the stream started

    def append(self, item) -> None:
        sample, event = item
        self.count += 1
        if isinstance(event, (ParamChange, TempoChange)):
            self.params_changed = True
        elif isinstance(event, (Utterance, Lyric)):
            key = (event.slot_id, type(event))
            self.views.release(self.held.get(key, -1))
            self.held[key] = event.handle
        if self.recording:
            kind, _, generation, a, b, c, value = self.codec.encode(event, getattr(event, "handle", -1))
            self.push((kind, sample, generation, a, b, c, value))

    def push(self, record) -> None:
        if not self.shared.applied_ring.push(record):
            self.shared.counters[COUNTER["unrecorded_events"]] += 1

    def release_all(self) -> None:
        for handle in self.held.values():
            self.views.release(handle)
        self.held.clear()


class AudioPlane:
    """The engine, its codec and the shared state, with the callback body `render`."""

    def __init__(self, shared: SharedState, engine: Engine, recording: bool):
        self.shared = shared
        self.views = PayloadViews(shared.pool, shared.payload_table, shared.released)
        self.engine = engine
        self.codec = EventCodec(engine, 0, self.views)
        self.applied = AppliedEvents(shared, self.views, self.codec, recording)
        engine.applied_log = self.applied
        self.pending: tuple[Engine, EventCodec] | None = None  # a loaded chain waiting for the next block
        self.retired: Engine | None = None  # the chain it replaced, freed by the main thread, not the callback
        self.stream: AudioStream | None = None
        self.publish_params()

    def publish_params(self) -> None:
        """Every parameter's value, in chain order, into the shared table."""
        values, index = self.shared.param_values, 0
        for slot in self.engine.slots:
            for param in slot.plugin.params.values():
                values[index] = param.target
                index += 1
        self.applied.params_changed = False

    def schedule_records(self, records: np.ndarray) -> None:
        """Before the stream starts: the score's events, straight into the scheduler."""
        for record in records.tolist():
            self.engine.schedule(self.codec.decode(record))

    def render(self, out: np.ndarray, live_input: np.ndarray | None) -> None:
        """The stream callback's body."""
        started_s = time.perf_counter()
        shared, engine = self.shared, self.engine
        if self.pending is not None and not self._current_records_waiting():
            engine = self._swap()
        shared.write_anchor(engine.sample_time, time.time())
        deadline_s = started_s + EVENT_INTAKE_BUDGET * len(out) / engine.sample_rate
        shared.event_ring.consume(self.take_records(engine, deadline_s))
        engine.process(out, live_input)
        if self.applied.params_changed:
            self.publish_params()
        self._publish()

    def _current_records_waiting(self) -> bool:
        """Whether the ring's oldest record is for the chain playing now (a burst the intake budget
        spread over blocks): a loaded chain waits for those, sent before the load, to be applied."""
        head = self.shared.event_ring.peek(1)
        return bool(head) and head[0][2] == self.codec.generation

    def take_records(self, engine: Engine, deadline_s: float) -> int:
        """Schedule records from the event ring, chunk by chunk, until it is empty, the intake's
        deadline (perf_counter s) has passed (the block is counted as deferred), or a record is for
        a chain still being built (it waits); returns how many were taken."""
        shared, ring = self.shared, self.shared.event_ring
        generation, failed = self.codec.generation, shared.counter("failed_generation")
        taken = 0
        while taken < MAX_RECORDS_PER_BLOCK:
            records = ring.peek(RECORDS_PER_CHUNK, skip=taken)
            for record in records:
                if record[2] != generation:
                    if record[2] > generation and record[2] != failed:
                        return taken  # for a chain still being built: it waits in the ring
                    self._drop(record)  # its chain could not be built, or was replaced: dropped (counted)
                else:
                    engine.schedule(self.codec.decode(record))
                taken += 1
            if len(records) < RECORDS_PER_CHUNK:
                return taken
            if time.perf_counter() > deadline_s:
                if len(ring) > taken:
                    shared.counters[COUNTER["deferred_blocks"]] += 1
                return taken
        return taken

    def _drop(self, record) -> None:
        if record[0] in (UTTERANCE, LYRIC):
            self.views.release(record[4])
        self.engine.counters.dropped_events += 1

    def _swap(self) -> Engine:
        old = self.engine
        new, codec = self.pending
        new.take_over_from(old)
        self.applied.release_all()
        self.applied.codec = codec
        new.applied_log = self.applied
        self.retired = old  # its buffers are released off the audio thread (_serve)
        self.engine, self.codec, self.pending = new, codec, None
        self.publish_params()
        if self.applied.recording:
            self.applied.push((PRESET_LOAD, new.sample_time, codec.generation, 0, 0, 0, 0.0))
        self.shared.set_counter("generation", codec.generation)
        return new

    def _publish(self) -> None:
        counters, values = self.engine.counters, self.shared.counters
        values[COUNTER["sample_time"]] = self.engine.sample_time
        values[COUNTER["blocks"]] = counters.blocks
        values[COUNTER["late_events"]] = counters.late_events
        values[COUNTER["worst_late_samples"]] = counters.worst_lateness_samples
        values[COUNTER["nonfinite_blocks"]] = counters.nonfinite_blocks
        values[COUNTER["clamped_samples"]] = counters.clamped_samples
        values[COUNTER["stolen_voices"]] = counters.stolen_voices
        values[COUNTER["dropped_events"]] = counters.dropped_events
        values[COUNTER["applied_events"]] = self.applied.count
        values[COUNTER["active_voices"]] = self.engine.active_voices
        self.shared.gauges[GAUGE["tempo_bpm"]] = self.engine.tempo_bpm
        if self.stream is not None:
            self.publish_stream(self.stream.callbacks + 1)  # this callback, still running, counts

    def publish_stream(self, callbacks: int) -> None:
        """The stream's counters (after it closed: what its last callback could not publish)."""
        stream, values = self.stream, self.shared.counters
        values[COUNTER["callbacks"]] = callbacks
        values[COUNTER["underflows"]] = stream.underflows
        values[COUNTER["overflows"]] = stream.overflows
        values[COUNTER["captured_frames"]] = stream.captured_frames
        values[COUNTER["scheduling"]] = SCHEDULING.index(stream.scheduling or "not started")


def run(connection, shared_name: str, layout: dict, preset, settings: dict, plugin_modules: tuple[str, ...]) -> None:
    """The audio plane process (multiprocessing target, spawned). settings: sample_rate,
    block_size, channels, input_channels, device, latency, recording."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the control plane stops us
    lv2_worker.threaded = True  # LV2 plugins' slow jobs run off the audio thread here
    shared = SharedState.attach(shared_name, Layout(**layout))
    try:
        plane = _prepare(connection, shared, preset, settings, plugin_modules)
        if plane is None:
            return
        try:
            message = connection.recv()
        except (EOFError, OSError):  # the control plane went away before starting us
            return
        if message[0] != "start":
            return
        plane.schedule_records(np.frombuffer(message[1], dtype=shared.events.dtype))
        gc.collect()
        gc.freeze()
        gc.disable()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        try:
            plane.stream.start()
        except SynthError as error:
            connection.send(("failed", str(error)))
            return
        connection.send(("started", {"output_latency_s": plane.stream.latency_s,
                                     "input_latency_s": plane.stream.input_latency_s}))
        _serve(connection, plane, settings)
        plane.stream.close()
        plane.publish_stream(plane.stream.callbacks)
    finally:
        plane = None
        shared.close()


def _prepare(connection, shared: SharedState, preset, settings: dict, plugin_modules) -> AudioPlane | None:
    """Resolve the device, build and prepare the engine; reply "prepared" or "failed"."""
    try:
        for module in plugin_modules:
            importlib.import_module(module)
        engine = _build(preset, settings)
        plane = AudioPlane(shared, engine, settings["recording"])
        plane.stream = AudioStream(plane.render, settings["sample_rate"], settings["block_size"],
                                   settings["channels"], settings["device"], settings["latency"],
                                   settings["input_channels"], capture=shared.capture, durations=shared.durations_s,
                                   underflow_times=shared.underflow_times)
        engine.prepare()
        plane.publish_params()
    except SynthError as error:
        connection.send(("failed", str(error)))
        return None
    connection.send(("prepared", {"latency_samples": engine.latency_samples,
                                  "latency_details": [d for s in engine.slots if (d := s.plugin.latency_detail())],
                                  "param_count": sum(len(s.plugin.param_specs) for s in engine.slots)}))
    return plane


def _build(preset, settings: dict) -> Engine:
    return preset.build_engine(settings["sample_rate"], settings["block_size"], settings["channels"],
                               settings["input_channels"])


def _serve(connection, plane: AudioPlane, settings: dict) -> None:
    """Wait for commands until "stop" or the pipe closing (the control plane stopped or died).

    The wait has no timeout: a thread that woke now and then would take the interpreter lock
    from the callback, and at normal priority it may then wait for a CPU while holding it."""
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        plane.retired = None  # a chain an earlier preset load replaced: freed here, between callbacks
        if message[0] == "stop":
            return
        if message[0] == "load":
            _, new_preset, generation = message
            try:
                engine = _build(new_preset, settings)
                engine.prepare()
            except SynthError as error:
                plane.shared.set_counter("failed_generation", generation)
                connection.send(("load-failed", generation, str(error)))
                continue
            codec = EventCodec(engine, generation, plane.views)
            while plane.pending is not None:  # an earlier load not yet swapped in
                time.sleep(0.001)
            plane.retired = None
            plane.pending = (engine, codec)
