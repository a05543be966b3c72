"""The shared memory between the control plane and the audio plane: one segment, laid out by
`Layout`, seen by both as numpy arrays (`SharedState`).

What lies there:
- `events`: the control plane's events for the audio plane (a `Ring`; the control plane writes,
  the callback reads), and `applied`: the events the engine applied, with their sample, for
  `--record` (the callback writes, the recorder reads);
- `counters` (int64) and `gauges` (float64) by name (COUNTERS, GAUGES): what /status reports;
- the clock anchor (engine sample at a block's start, Unix time of its callback) behind a
  sequence number, so that a reader never mixes two blocks' halves;
- `durations_s` and `underflow_times` (rings of callback durations and underflow times),
  `param_values` (each parameter's current value, in chain order), the payload pool with its
  table and `released` flags, and the captured take.

Single producer, single consumer: each ring has one writer of its head and one of its tail, and a
record is written before the head moves past it (stores keep their order on x86 and under the
interpreter), so neither side ever waits for the other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from multiprocessing import shared_memory

import numpy as np

from synth.io.stream import TIMING_SLOTS, UNDERFLOW_SLOTS
from synth.plane.records import RECORD, Record

COUNTERS = ("sample_time", "blocks", "callbacks", "underflows", "overflows", "late_events", "worst_late_samples",
            "nonfinite_blocks", "clamped_samples", "stolen_voices", "dropped_events", "deferred_blocks",
            "applied_events", "unrecorded_events", "active_voices", "captured_frames", "generation", "failed_generation", "scheduling", "anchor_sequence",
            "anchor_sample")
GAUGES = ("anchor_unix_s", "tempo_bpm")
COUNTER = {name: index for index, name in enumerate(COUNTERS)}  # name -> its index in `counters`
GAUGE = {name: index for index, name in enumerate(GAUGES)}  # name -> its index in `gauges`
SCHEDULING = ("not started", "realtime", "nice", "normal")  # the `scheduling` counter indexes this
ALIGN = 64


@dataclass(frozen=True)
class Layout:
    """Sizes of everything in the segment (both planes compute the same offsets from it)."""

    channels: int = 2
    capture_frames: int = 0
    event_capacity: int = 16384  # records
    applied_capacity: int = 65536  # records (recording only)
    max_params: int = 4096
    pool_floats: int = 8 * 1024 * 1024  # 32 MiB: 170 s of speech at 48 kHz
    max_payloads: int = 64
    timing_slots: int = TIMING_SLOTS
    underflow_slots: int = UNDERFLOW_SLOTS

    def arrays(self) -> list[tuple[str, np.dtype, tuple[int, ...]]]:
        return [("events_index", np.dtype("<i8"), (2,)), ("events", RECORD, (self.event_capacity,)),
                ("applied_index", np.dtype("<i8"), (2,)), ("applied", RECORD, (self.applied_capacity,)),
                ("counters", np.dtype("<i8"), (len(COUNTERS),)), ("gauges", np.dtype("<f8"), (len(GAUGES),)),
                ("durations_s", np.dtype("<f8"), (self.timing_slots,)),
                ("underflow_times", np.dtype("<f8"), (self.underflow_slots,)),
                ("param_values", np.dtype("<f8"), (self.max_params,)),
                ("payload_table", np.dtype("<i8"), (self.max_payloads, 4)),
                ("released", np.dtype("<i8"), (self.max_payloads,)),
                ("pool", np.dtype("<f4"), (self.pool_floats,)),
                ("capture", np.dtype("<f4"), (self.capture_frames, self.channels))]

    def offsets(self) -> tuple[dict[str, int], int]:
        offsets, size = {}, 0
        for name, dtype, shape in self.arrays():
            offsets[name] = size
            size += -(-dtype.itemsize * int(np.prod(shape)) // ALIGN) * ALIGN
        return offsets, max(size, ALIGN)

    def to_dict(self) -> dict:
        return asdict(self)


class Ring:
    """A bounded single-producer / single-consumer queue of records over shared arrays.
    index[0] is the head (records ever written; the producer's), index[1] the tail (records ever
    read; the consumer's)."""

    def __init__(self, index: np.ndarray, records: np.ndarray):
        self.index, self.records = index, records
        self.capacity = records.shape[0]

    def push(self, record: Record) -> bool:
        """Producer: append one record; False when the ring is full (nothing is written)."""
        head = int(self.index[0])
        if head - int(self.index[1]) >= self.capacity:
            return False
        self.records[head % self.capacity] = record
        self.index[0] = head + 1
        return True

    def peek(self, limit: int, skip: int = 0) -> list[Record]:
        """Consumer: up to `limit` of the oldest unread records (as tuples), after the first `skip`
        of them, without taking them."""
        head, tail = int(self.index[0]), int(self.index[1]) + skip
        count = min(head - tail, limit)
        if count <= 0:
            return []
        start = tail % self.capacity
        end = start + count
        if end <= self.capacity:
            return self.records[start:end].tolist()
        return self.records[start:].tolist() + self.records[: end - self.capacity].tolist()

    def consume(self, count: int) -> None:
        """Consumer: the `count` oldest records are read; their space is the producer's again."""
        self.index[1] = int(self.index[1]) + count

    def __len__(self) -> int:
        return int(self.index[0]) - int(self.index[1])


class SharedState:
    """The segment as arrays. `SharedState.create(layout)` in the control plane (which owns and
    unlinks it); `SharedState.attach(name, layout)` in the audio plane."""

    def __init__(self, memory: shared_memory.SharedMemory, layout: Layout, owner: bool):
        self.memory, self.layout, self.owner = memory, layout, owner
        offsets, _ = layout.offsets()
        for name, dtype, shape in layout.arrays():
            count = int(np.prod(shape))
            setattr(self, name, np.ndarray(shape, dtype, buffer=memory.buf, offset=offsets[name]) if count else
                    np.zeros(shape, dtype))
        self.event_ring = Ring(self.events_index, self.events)
        self.applied_ring = Ring(self.applied_index, self.applied)

    @classmethod
    def create(cls, layout: Layout) -> SharedState:
        _, size = layout.offsets()
        memory = shared_memory.SharedMemory(create=True, size=size)
        state = cls(memory, layout, owner=True)
        for name, _, _ in layout.arrays():  # touch every page now, so none faults in the callback
            getattr(state, name).fill(0)
        state.gauges.fill(0.0)
        return state

    @classmethod
    def attach(cls, name: str, layout: Layout) -> SharedState:
        return cls(shared_memory.SharedMemory(name=name), layout, owner=False)

    @property
    def name(self) -> str:
        return self.memory.name

    def counter(self, name: str) -> int:
        return int(self.counters[COUNTER[name]])

    def set_counter(self, name: str, value: int) -> None:
        self.counters[COUNTER[name]] = value

    def gauge(self, name: str) -> float:
        return float(self.gauges[GAUGE[name]])

    def set_gauge(self, name: str, value: float) -> None:
        self.gauges[GAUGE[name]] = value

    def write_anchor(self, sample: int, unix_s: float) -> None:
        """Audio plane: the block starting at engine `sample` was asked for at `unix_s`."""
        index = COUNTER["anchor_sequence"]
        sequence = int(self.counters[index])
        self.counters[index] = sequence + 1  # odd: being written
        self.counters[COUNTER["anchor_sample"]] = sample
        self.gauges[GAUGE["anchor_unix_s"]] = unix_s
        self.counters[index] = sequence + 2

    def read_anchor(self) -> tuple[int, float]:
        """Control plane: the latest (sample, Unix time) pair, never half of one and half of another."""
        index = COUNTER["anchor_sequence"]
        while True:
            before = int(self.counters[index])
            sample, unix_s = self.counter("anchor_sample"), self.gauge("anchor_unix_s")
            if before % 2 == 0 and int(self.counters[index]) == before:
                return sample, unix_s

    def close(self) -> None:
        """Let go of the segment (and, for its owner, remove it from /dev/shm)."""
        for name, _, _ in self.layout.arrays():
            setattr(self, name, None)
        self.event_ring = self.applied_ring = None
        self.memory.close()
        if self.owner:
            self.memory.unlink()
