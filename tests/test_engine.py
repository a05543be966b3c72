import numba
import numpy as np
import pytest

from conftest import (ConstantInstrument, ImpulseInstrument, NanEffect, assert_process_allocates_nothing, harmonic_analysis,
                      make_engine, run)
from synth import dsp
from synth.dsp import additive, delay, envelopes, mix, noise, oscbank, oscillators
from synth.engine import Engine, Slot
from synth.errors import SynthError
from synth.events import AllNotesOff, NoteOff, NoteOn, ParamChange, seconds_to_samples
from synth.plugins import Additive, Delay, GainPan, NoiseSource, Oscillator
from synth.plugins import additive as additive_plugin
from synth import voices

SAMPLE_RATES = (22050, 44100, 48000, 96000)
BLOCKS = (16, 17, 64, 65, 256, 4096)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("block", BLOCKS)
def test_note_on_starts_exactly_at_round_t_times_sr(sample_rate, block):
    engine = make_engine(ImpulseInstrument(), sample_rate=sample_rate, max_block=block)
    times = [0.0, 0.0123, 0.25, 0.2500104, 0.7]
    for time_s in times:
        engine.schedule(NoteOn(seconds_to_samples(time_s, sample_rate), 60, 100))
    out = run(engine, sample_rate, block)
    assert list(np.flatnonzero(out[:, 0])) == sorted({round(t * sample_rate) for t in times})
    assert np.array_equal(out[:, 0], out[:, 1])


@pytest.mark.parametrize("block", (16, 65, 4096))
def test_oscillator_note_starts_at_its_sample_and_not_before(block):
    sample_rate = 44100
    engine = make_engine(Oscillator(waveform="square", attack_ms=0.1), sample_rate=sample_rate, max_block=block)
    start = seconds_to_samples(0.3333, sample_rate)
    engine.schedule(NoteOn(start, 69, 127))
    out = run(engine, sample_rate // 2, block)
    # a band-limited step is 0 at its midpoint, so the first sample of the note may be 0
    assert np.flatnonzero(out[:, 0])[0] in (start, start + 1)


def test_parameter_change_begins_on_its_sample():
    engine = make_engine(ConstantInstrument(level=0.5), GainPan(), max_block=64)
    engine.schedule(NoteOn(0, 60, 100))
    change_at = 1000
    engine.schedule(ParamChange(change_at, "gain_pan", "gain_db", -12.0))
    out = run(engine, 4000, 64)[:, 0]
    assert np.all(out[:change_at + 1] == pytest.approx(0.5))
    assert out[change_at + 1] < 0.5
    glide = round(0.020 * 48000)  # gain_db smooths over 20 ms; the last segment may stretch it
    assert out[change_at + glide - 64] > out[change_at + glide + 64]
    assert out[change_at + glide + 64:] == pytest.approx(0.5 * 10 ** (-12 / 20), rel=1e-5)
    # no zipper: each step of the glide is tiny compared with the change
    assert np.max(np.abs(np.diff(out))) < 0.5 * 0.75 / glide * 2


def test_frames_beyond_max_block_are_split_not_refused():
    engine = make_engine(ImpulseInstrument(), max_block=16)
    engine.schedule(NoteOn(100, 60, 100))
    out = np.zeros((1000, 2), dtype=np.float32)
    engine.process(out)
    assert list(np.flatnonzero(out[:, 0])) == [100]


def test_mono_output():
    engine = make_engine(Oscillator(), GainPan(pan=1.0), Delay(), channels=1)
    engine.schedule(NoteOn(0, 60, 100))
    out = run(engine, 4800, 256)
    assert out.shape == (4800, 1) and np.max(np.abs(out)) > 0.01


def test_nan_from_an_instrument_is_silenced_counted_and_reset():
    broken = ConstantInstrument(level=0.5)
    engine = make_engine(broken, ImpulseInstrument())
    engine.schedule(NoteOn(0, 60, 100))
    out = run(engine, 512, 256)
    broken.params["level"].target = float("nan")  # input paths refuse NaN, so break it directly
    out = np.concatenate([out, run(engine, 512, 256)])
    assert np.all(np.isfinite(out))
    assert np.all(out[512:] == 0.0)
    assert engine.counters.nonfinite_blocks == 1  # reset ended the held note; next block is clean
    assert engine.slot("test_constant").nonfinite_segments == 1


def test_nan_from_an_effect_is_silenced_and_counted_every_block():
    nan = NanEffect()
    engine = make_engine(ConstantInstrument(), nan)
    engine.schedule(NoteOn(0, 60, 100))
    out = run(engine, 1024, 256)
    assert np.all(out == 0.0)
    assert engine.counters.nonfinite_blocks == 4
    nan.set_param("broken", 0)
    out = run(engine, 256, 256)
    assert engine.counters.nonfinite_blocks == 4


def test_hard_ceiling_cannot_be_passed():
    engine = make_engine(ConstantInstrument(level=50.0), GainPan(gain_db=24))
    engine.schedule(NoteOn(0, 60, 100))
    out = run(engine, 1024, 256)
    ceiling = 10 ** (-0.3 / 20)
    assert np.max(np.abs(out)) == pytest.approx(ceiling, rel=1e-6)
    assert engine.counters.clamped_samples == 2048


def test_voice_limit_steals_and_counts():
    osc = Oscillator(voice_limit=2)
    engine = make_engine(osc)
    for i, note in enumerate((60, 64, 67, 72)):
        engine.schedule(NoteOn(i * 100, note, 100))
    run(engine, 1024, 256)
    assert osc.active_voices == 2
    assert engine.counters.stolen_voices == 2
    assert sorted(osc.voices.note) == [67, 72]


def test_release_tail_ends_voices_when_silent():
    osc = Oscillator(release_ms=50)
    engine = make_engine(osc)
    engine.schedule(NoteOn(0, 60, 100))
    engine.schedule(NoteOn(0, 64, 100))
    engine.schedule(NoteOff(4800, 60))
    run(engine, 4800 + 2400, 256)  # 50 ms after the note off: -60 dB, not yet -80 dB
    assert osc.active_voices == 2
    run(engine, 4800, 256)
    assert osc.active_voices == 1
    engine.schedule(AllNotesOff(engine.sample_time))
    out = run(engine, 48000, 256)
    assert osc.active_voices == 0 and np.all(out[-256:] == 0.0)


def test_note_channel_only_reaches_instruments_on_that_channel():
    a, b = ImpulseInstrument(), ConstantInstrument()
    engine = Engine([Slot("a", a, channel=1), Slot("b", b, channel=2)], 48000, 256)
    engine.prepare()
    engine.schedule(NoteOn(0, 60, 100, channel=2))
    run(engine, 256, 256)
    assert b.held == 1 and a.pending == 0


def test_events_scheduled_after_their_time_apply_at_once_and_are_counted_late():
    engine = make_engine(ImpulseInstrument())
    run(engine, 512, 256)
    engine.schedule(NoteOn(0, 60, 100))  # its time has passed: applied at once, counted late
    engine.schedule(NoteOn(600, 60, 100))
    out = run(engine, 512, 256)
    assert list(np.flatnonzero(out[:, 0])) == [0, 600 - 512]
    assert engine.counters.late_events == 1 and engine.counters.worst_lateness_samples == 512


def test_bad_stream_formats_are_refused_with_the_range():
    with pytest.raises(SynthError, match=r"sample rate 7000 must be an integer in 8000\.\.192000 Hz"):
        Engine([], sample_rate=7000)
    with pytest.raises(SynthError, match=r"block size 0 must be an integer in 1\.\.8192 frames"):
        Engine([], max_block=0)
    with pytest.raises(SynthError, match=r"channels 3 must be 1 \(mono\) or 2 \(stereo\)"):
        Engine([], channels=3)
    with pytest.raises(SynthError, match="chain ids must be unique; repeated: x"):
        Engine([Slot("x", GainPan()), Slot("x", Delay())])


def _full_engine(block):
    engine = make_engine(Oscillator(), Additive(analysis=harmonic_analysis(decay_s=0.5), keep_formants="on",
                                                transpose_semitones=3), NoiseSource(), GainPan(), Delay(), max_block=block)
    for i in range(20):
        engine.schedule(NoteOn(i * 37, 40 + i, 90))
        engine.schedule(ParamChange(i * 50, "oscillator", "cutoff_hz", 500.0 + 100 * i))
        engine.schedule(NoteOff(3000 + i * 11, 40 + i))
    return engine


def test_process_allocates_no_buffers():
    block = 4096  # one stray block-sized array would be 16 KiB per channel
    engine = _full_engine(block)
    out = np.zeros((block, 2), dtype=np.float32)
    engine.process(out)
    assert_process_allocates_nothing(engine, out, 10)


def _kernels():
    modules = (additive, additive_plugin, delay, envelopes, mix, noise, oscbank, oscillators, voices)
    return [obj for m in modules for obj in vars(m).values() if isinstance(obj, numba.core.registry.CPUDispatcher)]


def test_prepare_compiles_every_kernel_the_audio_path_uses():
    assert dsp.__doc__  # the package documents the kernel conventions
    engine = _full_engine(256)
    compiled = {kernel: len(kernel.signatures) for kernel in _kernels()}
    run(engine, 48000, 256)
    engine.schedule(NoteOn(engine.sample_time, 60, 1))
    run(engine, 4800, 100)
    assert {kernel: len(kernel.signatures) for kernel in _kernels()} == compiled


def test_live_input_flows_through_the_chain_channel_to_channel():
    from synth.plugins import AudioInput

    engine = Engine([Slot("mic", AudioInput(gain_db=-6.0)), Slot("out", GainPan())], 48000, 64, 2, input_channels=2)
    engine.prepare()
    live = np.zeros((1000, 2), dtype=np.float32)
    live[:, 0] = np.sin(np.arange(1000) * 0.05)
    out = np.zeros((1000, 2), dtype=np.float32)
    engine.process(out, live)  # longer than max_block: split, input kept in step
    assert out[:, 0] == pytest.approx(live[:, 0] * 10 ** (-6 / 20), abs=1e-6)
    assert np.all(out[:, 1] == 0.0)
    engine.process(out)  # no input this block: silence, not stale samples
    assert np.all(out == 0.0)


def test_mono_input_feeds_both_channels():
    from synth.plugins import AudioInput

    engine = Engine([Slot("mic", AudioInput())], 48000, 256, 2, input_channels=1)
    engine.prepare()
    live = np.full((256, 1), 0.25, dtype=np.float32)
    out = np.zeros((256, 2), dtype=np.float32)
    engine.process(out, live)
    assert np.all(out == 0.25)
