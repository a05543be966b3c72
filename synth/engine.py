"""Engine: a chain of plugins, their voices and a sample-accurate scheduler; `process` fills a block.

The callback contract. `Engine.process(out)` runs on the audio thread (PortAudio's callback) and
everything it reaches keeps to these rules:
- it allocates no arrays: every buffer is made in `prepare()`; kernels take a sample count `n` and
  work from index 0, so nothing is sliced;
- it does no file or network I/O, takes no lock another thread may hold, and never logs;
- it never compiles: `prepare()` runs every kernel once (numba's cache makes later starts quick);
- it always fills the whole output buffer, whatever a plugin does;
- it counts what goes wrong (late events, non-finite blocks, clamped samples, dropped events)
  instead of raising.
Events arrive through `schedule()` on the thread that calls process (live, the audio plane's
callback drains the control plane's ring into it: synth.plane). An event timed before the block
it arrives in (other than IMMEDIATE) is applied at once and counted late. When `applied_log` is
set (anything with an `append`), every applied event is appended to it as (sample it took effect
on, event): the audio plane keeps parameter values and recordings from it.

Per block: cut the block into chunks of at most max_block
frames and hand each chunk's live input to the plugins that analyse it (`reads_block_input`)
before rendering it; split the chunk at each event's sample time and apply the event there; for
each segment, sum the instruments into the bus, run the effects in order, then the master safety
stage (non-finite output -> silence, counted, plugin reset; a hard
ceiling the output cannot pass).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from synth.dsp.mix import add_into, all_finite, clear, deinterleave, write_output
from synth.errors import SynthError, UnknownName
from synth.limits import MAX_BLOCK, MAX_SAMPLE_RATE, MIN_BLOCK, MIN_SAMPLE_RATE
from synth.events import (IMMEDIATE, AllNotesOff, Event, Lyric, NoteOff, NoteOn, ParamChange, Scheduler, TempoChange,
                          Utterance)
from synth.params import ParamSpec
from synth.plugins import INSTRUMENT, SOURCE, Instrument, Plugin

DEFAULT_CEILING_DB = -0.3
DEFAULT_TEMPO_BPM = 120.0


@dataclass
class Slot:
    """One plugin in the chain. id names it in addresses (/param/<id>/<name>); channel 1..16
    limits an instrument to notes on that MIDI channel (None: every channel)."""

    id: str
    plugin: Plugin
    channel: int | None = None
    nonfinite_segments: int = 0


@dataclass
class EngineCounters:
    """What went wrong (or was worth counting) since the engine started."""

    blocks: int = 0
    late_events: int = 0
    worst_lateness_samples: int = 0
    nonfinite_blocks: int = 0
    clamped_samples: int = 0
    stolen_voices: int = 0
    dropped_events: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Engine:
    """The chain and its clock. Call `prepare()` once, then `process(out)` per block.

    sample_rate: Hz. max_block: the most frames one process call renders at a time (longer calls
    are split). channels: 1 or 2. ceiling_db: the master stage's hard ceiling in dBFS.
    input_channels: live input channels handed to `process` (0: none); source plugins that take
    input (`uses_input`) read them from the engine's input bus.
    """

    slots: list[Slot]
    sample_rate: int = 48000
    max_block: int = 512
    channels: int = 2
    ceiling_db: float = DEFAULT_CEILING_DB
    input_channels: int = 0
    counters: EngineCounters = field(default_factory=EngineCounters)

    def __post_init__(self) -> None:
        check_stream_format(self.sample_rate, self.max_block, self.channels)
        ids = [slot.id for slot in self.slots]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise SynthError(f"chain ids must be unique; repeated: {', '.join(duplicates)}")
        self._by_id = {slot.id: slot for slot in self.slots}
        if not 0 <= self.input_channels <= 32:
            raise SynthError(f"input channels {self.input_channels!r} must be in 0..32")
        self._sources = [s for s in self.slots if s.plugin.kind in (INSTRUMENT, SOURCE)]
        self._instruments = [s for s in self.slots if isinstance(s.plugin, Instrument)]
        self._effects = [s for s in self.slots if s.plugin.kind not in (INSTRUMENT, SOURCE)]
        self._block_readers = [s for s in self.slots if s.plugin.reads_block_input]
        self._ceiling = 10.0 ** (self.ceiling_db / 20.0)
        self._scheduler = Scheduler()
        self._immediate: deque[Event] = deque()  # IMMEDIATE events, in the order they came: no heap needed
        self.sample_time = 0
        self.tempo_bpm = DEFAULT_TEMPO_BPM
        self.applied_log = None

    # --- set-up (not on the audio thread) -------------------------------------------------

    def prepare(self) -> None:
        """Make every buffer and compile every kernel; safe to call again (resets the engine)."""
        self._bus = np.zeros((self.channels, self.max_block), dtype=np.float32)
        self._source = np.zeros((self.channels, self.max_block), dtype=np.float32)
        self._input = np.zeros((max(self.input_channels, 1), self.max_block), dtype=np.float32)
        for slot in self.slots:
            if getattr(slot.plugin, "uses_input", False):
                slot.plugin.connect_input(self._input)
            slot.plugin.prepare(self.sample_rate, self.max_block, self.channels)
        warm_out = np.zeros((self.max_block, self.channels), dtype=np.float32)
        clear(self._bus, 1)
        add_into(self._bus, self._source, 1)
        all_finite(self._bus, 1)
        write_output(self._bus, warm_out, 0, 1, self._ceiling)
        deinterleave(np.zeros((1, self._input.shape[0]), dtype=np.float32), 0, 1, self._input)
        self._scheduler.clear()
        self._immediate.clear()
        self.sample_time = 0
        self.tempo_bpm = DEFAULT_TEMPO_BPM
        for slot in self.slots:
            slot.plugin.set_tempo(self.tempo_bpm)
        self.counters = EngineCounters()

    def take_over_from(self, running: Engine) -> None:
        """Continue where `running` is (a preset load; this engine is prepared): its clock, tempo
        and counters carry on here; its voices and pending events are left behind with it."""
        self.sample_time = running.sample_time
        self.tempo_bpm = running.tempo_bpm
        for slot in self.slots:
            slot.plugin.set_tempo(running.tempo_bpm)
        self.counters = running.counters

    def schedule(self, event: Event) -> None:
        """Queue an event, from the thread that calls process."""
        if event.time_samples == IMMEDIATE:
            self._immediate.append(event)
        else:
            self._scheduler.push(event)

    def slot(self, slot_id: str) -> Slot:
        """The chain slot called `slot_id`; SynthError naming the chain otherwise."""
        try:
            return self._by_id[slot_id]
        except KeyError:
            raise UnknownName(f"no plugin {slot_id!r} in the chain (it has: {', '.join(self._by_id)})") from None

    def param_spec(self, slot_id: str, name: str) -> ParamSpec:
        """Spec of parameter `name` of chain slot `slot_id` (SynthError if either is unknown)."""
        return type(self.slot(slot_id).plugin).param_spec(name)

    @property
    def latency_samples(self) -> int:
        """The most any plugin's output lags the live input driving it (samples; 0 without one)."""
        return max((slot.plugin.latency_samples for slot in self.slots), default=0)

    @property
    def active_voices(self) -> int:
        return sum(slot.plugin.active_voices for slot in self._instruments)

    # --- the audio thread -------------------------------------------------------------------

    def process(self, out: np.ndarray, live_input: np.ndarray | None = None) -> None:
        """Fill `out` (float32 [frames, channels], C-contiguous) with the next frames of audio.

        live_input: float32 [frames, input_channels] captured with this block, or None (silence).
        """
        frames = out.shape[0]
        block_start = self.sample_time
        self._block_fault = False
        cursor = 0
        chunk_end = 0
        while cursor < frames:
            if cursor == chunk_end:  # a new chunk of at most max_block frames: input readers see all of it first
                chunk_end = min(frames, cursor + self.max_block)
                for slot in self._block_readers:
                    slot.plugin.begin_input(live_input, cursor, chunk_end - cursor)
            now = block_start + cursor
            if cursor == 0:  # immediate events first: they sort before any timed one
                self._apply_immediate(now)
            next_time = self._scheduler.next_time()
            while next_time is not None and next_time <= now:
                event = self._scheduler.pop()
                if event.time_samples < block_start:  # a timed event that came too late
                    self.counters.late_events += 1
                    lateness = block_start - event.time_samples
                    if lateness > self.counters.worst_lateness_samples:
                        self.counters.worst_lateness_samples = lateness
                self._apply(event)
                if self.applied_log is not None:
                    self.applied_log.append((now, event))
                next_time = self._scheduler.next_time()
            end = chunk_end
            if next_time is not None and next_time - block_start < end:
                end = next_time - block_start
            self._render_segment(out, live_input, cursor, end - cursor)
            cursor = end
        self.sample_time += frames
        self.counters.blocks += 1
        if self._block_fault:
            self.counters.nonfinite_blocks += 1

    def _apply_immediate(self, now: int) -> None:
        immediate = self._immediate
        while immediate:
            event = immediate.popleft()
            self._apply(event)
            if self.applied_log is not None:
                self.applied_log.append((now, event))

    def _apply(self, event: Event) -> None:
        match event:  # the commonest live events first
            case ParamChange(slot_id=slot_id, name=name, value=value):
                self._by_id[slot_id].plugin.set_param(name, value)
            case NoteOn(note=note, velocity=velocity, channel=channel):
                for slot in self._instruments:
                    if slot.channel is None or channel is None or slot.channel == channel:
                        if slot.plugin.note_on(note, velocity):
                            self.counters.stolen_voices += 1
            case NoteOff(note=note, channel=channel):
                for slot in self._instruments:
                    if slot.channel is None or channel is None or slot.channel == channel:
                        slot.plugin.note_off(note)
            case AllNotesOff():
                for slot in self._instruments:
                    slot.plugin.all_notes_off()
            case TempoChange(bpm=bpm):
                self.tempo_bpm = bpm
                for slot in self.slots:
                    slot.plugin.set_tempo(bpm)
            case Utterance(slot_id=slot_id, audio=audio):
                self._by_id[slot_id].plugin.speak(audio)
            case Lyric(slot_id=slot_id, table=table):
                self._by_id[slot_id].plugin.arm_lyric(table)

    def _render_segment(self, out: np.ndarray, live_input, offset: int, n: int) -> None:
        bus, source = self._bus, self._source
        if live_input is None:
            clear(self._input, n)
        else:
            deinterleave(live_input, offset, n, self._input)
        clear(bus, n)
        for slot in self._sources:
            clear(source, n)
            slot.plugin.process(source, n)
            if all_finite(source, n):
                add_into(bus, source, n)
            else:
                self._fault(slot)
        for slot in self._effects:
            slot.plugin.process(bus, n)
            if not all_finite(bus, n):
                self._fault(slot)
                clear(bus, n)
        self.counters.clamped_samples += write_output(bus, out, offset, n, self._ceiling)

    def _fault(self, slot: Slot) -> None:
        """A plugin produced NaN/inf: its output for this segment is dropped and its state reset."""
        slot.nonfinite_segments += 1
        self._block_fault = True
        slot.plugin.reset()


def check_stream_format(sample_rate: int, block_size: int, channels: int) -> None:
    """SynthError unless the rate (Hz), block size (frames) and channel count are usable."""
    if not (isinstance(sample_rate, int) and MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE):
        raise SynthError(f"sample rate {sample_rate!r} must be an integer in {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz")
    if not (isinstance(block_size, int) and MIN_BLOCK <= block_size <= MAX_BLOCK):
        raise SynthError(f"block size {block_size!r} must be an integer in {MIN_BLOCK}..{MAX_BLOCK} frames")
    if channels not in (1, 2):
        raise SynthError(f"channels {channels!r} must be 1 (mono) or 2 (stereo)")


def dbfs(amplitude: float) -> float:
    """Peak amplitude -> dBFS (-inf for silence)."""
    return 20.0 * math.log10(amplitude) if amplitude > 0 else -math.inf
