"""The shared memory between the planes: the event ring, the numeric event form, the payload pool,
the clock anchor; and the audio plane's callback body without a stream."""

import threading
import time

import numpy as np
import pytest

from conftest import assert_process_allocates_nothing, traced_allocation_bytes
from synth.errors import SynthError
from synth.events import IMMEDIATE, AllNotesOff, Lyric, NoteOff, NoteOn, ParamChange, TempoChange, Utterance
from synth.plane.audio_process import AudioPlane
from synth.plane.payloads import PayloadPool, PayloadViews
from synth.plane.records import PARAM, EventCodec
from synth.plane.shared import Layout, SharedState
from synth.plugins.voice import LyricTable
from synth.presets import load_preset


@pytest.fixture
def shared():
    state = SharedState.create(Layout(event_capacity=8, applied_capacity=8, pool_floats=1000, max_payloads=4,
                                      capture_frames=16))
    yield state
    state.close()


def test_the_ring_keeps_order_across_the_wrap_and_refuses_when_full(shared):
    ring = shared.event_ring
    for round_ in range(3):  # 24 records through 8 slots
        for k in range(8):
            assert ring.push((PARAM, round_ * 8 + k, 0, 0, 0, 0, 0.5))
        assert not ring.push((PARAM, 99, 0, 0, 0, 0, 0.0))  # full: nothing written
        first = ring.peek(3)
        assert [r[1] for r in first] == [round_ * 8, round_ * 8 + 1, round_ * 8 + 2]
        ring.consume(3)
        rest = ring.peek(100)
        assert [r[1] for r in rest] == list(range(round_ * 8 + 3, round_ * 8 + 8))
        ring.consume(len(rest))
        assert len(ring) == 0 and ring.peek(5) == []


def test_the_ring_passes_every_record_between_threads_in_order(shared):
    """One producer thread, one consumer thread, no lock between them: 20,000 records arrive once each, in order."""
    ring, total, seen = shared.event_ring, 20000, []

    def produce():
        sent = 0
        while sent < total:
            if ring.push((PARAM, sent, 0, 0, 0, 0, float(sent))):
                sent += 1
            else:
                time.sleep(0)  # full: let the consumer have the interpreter lock

    producer = threading.Thread(target=produce)
    producer.start()
    while len(seen) < total:
        records = ring.peek(5)
        ring.consume(len(records))
        seen += [r[1] for r in records]
        if not records:
            time.sleep(0)
    producer.join()
    assert seen == list(range(total))


def test_every_event_survives_its_numeric_form(shared):
    engine = load_preset("speech-voice").build_engine(48000, 256)
    views = PayloadViews(shared.pool, shared.payload_table, shared.released)
    codec = EventCodec(engine, 3, views)
    events = [NoteOn(10, 60, 100), NoteOn(11, 61, 1, 16), NoteOff(IMMEDIATE, 60), NoteOff(12, 60, 2), AllNotesOff(13),
              ParamChange(14, "voice", "vibrato_cents", 12.5), ParamChange(15, "out", "pan", -0.25),
              TempoChange(16, 96.5)]
    for event in events:
        record = codec.encode(event)
        assert record[2] == 3 and codec.decode(record) == event
    assert codec.flat_param("out", "pan") == len(engine.slots[0].plugin.param_specs) + \
        len(engine.slots[1].plugin.param_specs) + 1


def test_payloads_go_by_handle_and_come_back_once_released(shared):
    pool = PayloadPool(shared.pool, shared.payload_table, shared.released)
    views = PayloadViews(shared.pool, shared.payload_table, shared.released)
    speech = np.linspace(-1, 1, 300, dtype=np.float32)
    first = pool.put_utterance(speech)
    np.testing.assert_array_equal(views.utterance(first), speech)
    table = LyricTable("la la", np.arange(30, dtype=np.float32).reshape(3, 10), np.array([-20, -10, -30], np.float32),
                       np.array([0, 1]), np.array([0, 1]), np.array([1, 2]), np.array([1, 3]))
    second = pool.put_lyric(table)
    back = views.lyric(second)
    np.testing.assert_array_equal(back.mel, table.mel)
    np.testing.assert_array_equal(back.loudness_db, table.loudness_db)
    assert back.syllables == 2 and [int(v) for v in back.end] == [1, 3] and int(back.vowel_start[1]) == 1
    assert pool.live == 2
    with pytest.raises(SynthError, match="no room for an utterance"):
        pool.put_utterance(np.zeros(700, np.float32))  # 300 + 76 of 1000 floats are taken
    views.release(first)  # the audio plane let go of it
    assert pool.live == 1
    third = pool.put_utterance(np.ones(600, np.float32))  # fits again
    np.testing.assert_array_equal(views.utterance(third), np.ones(600, np.float32))
    np.testing.assert_array_equal(views.lyric(second).mel, table.mel)  # untouched by the new one


def test_the_clock_anchor_is_never_read_half_written(shared):
    stop = threading.Event()

    def write():
        sample = 0
        while not stop.is_set():
            sample += 256
            shared.write_anchor(sample, sample / 1000.0)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(20000):
            sample, unix_s = shared.read_anchor()
            assert unix_s == sample / 1000.0
    finally:
        stop.set()
        writer.join()


@pytest.fixture
def warm_pad_plane():
    """The audio plane's callback body on a prepared warm-pad chain (recording), without a stream,
    and a control-side codec for the same chain: (shared state, engine, plane, codec)."""
    preset = load_preset("warm-pad")
    state = SharedState.create(Layout())
    engine = preset.build_engine(48000, 256)
    engine.prepare()
    plane = AudioPlane(state, engine, recording=True)
    yield state, engine, plane, EventCodec(preset.build_engine(48000, 256))
    del plane  # its views into the segment go before the segment does
    state.close()


def test_the_callback_body_applies_ring_events_and_allocates_nothing_when_idle(warm_pad_plane):
    state, engine, plane, control = warm_pad_plane
    assert state.event_ring.push(control.encode(NoteOn(IMMEDIATE, 60, 100)))
    assert state.event_ring.push(control.encode(ParamChange(IMMEDIATE, "osc", "cutoff_hz", 440.0)))
    assert state.event_ring.push((PARAM, IMMEDIATE, 1, 0, 0, 0, 0.0))  # for a chain not built yet: it waits
    out = np.zeros((256, 2), np.float32)
    plane.render(out, None)
    assert len(state.event_ring) == 1 and state.counter("active_voices") == 1
    assert state.param_values[control.flat_param("osc", "cutoff_hz")] == 440.0
    assert state.counter("sample_time") == 256 and state.read_anchor()[0] == 0
    assert [r[0] for r in state.applied_ring.peek(10)] == [1, PARAM]  # sent back for recording
    state.event_ring.consume(1)
    plane.render(out, None)
    assert_process_allocates_nothing(engine, out, 50)  # the engine alone, as elsewhere
    _, peak = traced_allocation_bytes(lambda: plane.render(out, None), 50)
    assert peak < 4096, f"the callback body allocated up to {peak} bytes"


def test_a_burst_of_records_spreads_over_blocks_in_order(warm_pad_plane):
    """A callback takes records for a bounded share of its block: 12,000 immediate fader moves
    (more than any machine decodes in that time) are applied over several blocks, in the order
    sent, and the blocks that left some for later are counted."""
    state, _, plane, control = warm_pad_plane
    sent = [20.0 + i for i in range(12_000)]
    for value in sent:
        assert state.event_ring.push(control.encode(ParamChange(IMMEDIATE, "osc", "cutoff_hz", value)))
    out = np.zeros((256, 2), np.float32)
    blocks, applied = 0, []
    while len(state.event_ring) and blocks < 1000:
        plane.render(out, None)
        blocks += 1
        applied += [r[6] for r in state.applied_ring.peek(state.layout.applied_capacity)]
        state.applied_ring.consume(len(state.applied_ring))
    assert blocks > 1 and state.counter("deferred_blocks") == blocks - 1
    assert applied == sent
    assert state.param_values[control.flat_param("osc", "cutoff_hz")] == sent[-1]


def test_a_callback_that_starts_past_its_intake_deadline_still_takes_a_chunk(warm_pad_plane):
    """Records are read a chunk at a time, the deadline checked between chunks: a callback that
    starts late (a stall, a slow CPU) still takes the first chunk, so a flood never starves it.
    Reading 4096 records at once used to cost a slow CPU the whole intake budget before the first."""
    from synth.plane.audio_process import RECORDS_PER_CHUNK

    state, _, plane, control = warm_pad_plane
    for value in range(100):
        assert state.event_ring.push(control.encode(ParamChange(IMMEDIATE, "osc", "cutoff_hz", 100.0 + value)))
    deferred = state.counter("deferred_blocks")
    taken = plane.take_records(plane.engine, deadline_s=0.0)  # the deadline long gone
    assert taken == RECORDS_PER_CHUNK and state.counter("deferred_blocks") == deferred + 1
    state.event_ring.consume(taken)
    assert plane.take_records(plane.engine, deadline_s=float("inf")) == 100 - RECORDS_PER_CHUNK


def test_a_loaded_chain_waits_for_the_records_sent_before_it(warm_pad_plane):
    """A burst for the playing chain that the intake budget spreads over blocks is applied to that
    chain before a preset load swaps the next one in; the next chain's records then follow. (A
    swap that came first used to strand the old chain's records at the head of the ring, and every
    later record behind them, for good.)"""
    from synth.plane.audio_process import RECORDS_PER_CHUNK

    state, _, plane, control = warm_pad_plane
    preset = load_preset("pluck-lead")
    loaded = preset.build_engine(48000, 256)
    loaded.prepare()
    loaded_codec = EventCodec(loaded, 1, plane.views)
    old_values = [100.0 + i for i in range(3 * RECORDS_PER_CHUNK)]
    for value in old_values:  # for generation 0, the chain playing
        assert state.event_ring.push(control.encode(ParamChange(IMMEDIATE, "osc", "cutoff_hz", value)))
    assert state.event_ring.push(EventCodec(preset.build_engine(48000, 256), 1).encode(
        ParamChange(IMMEDIATE, "osc", "cutoff_hz", 5000.0)))
    out = np.zeros((256, 2), np.float32)
    plane.take_records(plane.engine, deadline_s=0.0)  # the budget spent: one chunk taken...
    state.event_ring.consume(RECORDS_PER_CHUNK)
    plane.pending = (loaded, loaded_codec)  # ...and then the load is ready
    blocks = 0
    while len(state.event_ring) and blocks < 10:
        plane.render(out, None)
        blocks += 1
    assert not len(state.event_ring) and plane.engine is loaded
    assert plane.retired.slot("osc").plugin.params["cutoff_hz"].target == old_values[-1]
    assert loaded.slot("osc").plugin.params["cutoff_hz"].target == 5000.0
    assert state.counter("dropped_events") == 0
