"""The additive instrument and the offline transformations, on analyses whose content is known."""

import numpy as np
import pytest

from conftest import harmonic_analysis
from synth.dsp.partials import Partials
from synth.engine import Engine, Slot
from synth.errors import SynthError
from synth.events import NoteOff, NoteOn, ParamChange
from synth.plugins.additive import Additive
from synth.presets import parse_preset
from synth.render import render_array
from synth.resynthesis import Transform, render_sines_transformed

SR = 48000
HOP = 256


def play(plugin, events, seconds, block=256):
    engine = Engine([Slot("add", plugin)], sample_rate=SR, max_block=block, channels=1)
    return render_array(engine, events, int(seconds * SR), block)[:, 0]


def magnitude_at(audio, freq_hz):
    """Amplitude of the sinusoid at freq_hz in `audio` (Hann window, exact bin of a 1 Hz grid)."""
    window = np.hanning(len(audio))
    t = np.arange(len(audio)) / SR
    return 2 * abs(np.sum(audio * window * np.exp(-2j * np.pi * freq_hz * t))) / window.sum()


def peak_hz(audio, low_hz, high_hz):
    """Frequency (Hz) of the strongest spectral peak between low_hz and high_hz (0.1 Hz grid)."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), n=10 * SR))
    bins = np.arange(int(low_hz * 10), int(high_hz * 10))
    return bins[np.argmax(spectrum[bins])] / 10


def steady(audio, start_s=0.3, end_s=0.8):
    return audio[int(start_s * SR) : int(end_s * SR)]


def test_each_note_transposes_relative_to_the_analysis_pitch():
    plugin = Additive(analysis=harmonic_analysis(), level_db=0, loop="on", velocity_tilt_db=0)
    for note, f0 in ((57, 220.0), (69, 440.0), (52, 220.0 * 2 ** (-5 / 12))):
        audio = steady(play(plugin, [NoteOn(0, note, 127)], 1.0))
        spectrum = [magnitude_at(audio, f0 * h) for h in (1, 2, 3)]
        assert spectrum[0] == pytest.approx(0.3, rel=0.05), note
        assert spectrum[1] == pytest.approx(0.15, rel=0.05) and spectrum[2] == pytest.approx(0.1, rel=0.05)
        assert magnitude_at(audio, f0 * 1.5) < 1e-3  # nothing between the harmonics


def test_velocity_sets_level_and_brightness():
    plugin = Additive(analysis=harmonic_analysis(), level_db=0, velocity_tilt_db=6)
    loud = steady(play(plugin, [NoteOn(0, 57, 127)], 1.0))
    soft = steady(play(plugin, [NoteOn(0, 57, 64)], 1.0))
    gain = magnitude_at(soft, 220) / magnitude_at(loud, 220)
    assert gain == pytest.approx((64 / 127) ** 2, rel=0.05)
    # the soft note is darker: its 4th harmonic is lower relative to the fundamental, by 2 octaves of tilt
    darker_db = 20 * np.log10((magnitude_at(soft, 880) / magnitude_at(soft, 220)) / (magnitude_at(loud, 880) / magnitude_at(loud, 220)))
    assert darker_db == pytest.approx(-2 * 6 * (1 - 64 / 127), abs=0.3)


def test_transpose_keeping_formants_keeps_the_spectral_envelope():
    analysis = harmonic_analysis()
    shifted = steady(play(Additive(analysis=analysis, level_db=0, transpose_semitones=12, velocity_tilt_db=0),
                          [NoteOn(0, 57, 127)], 1.0))
    kept = steady(play(Additive(analysis=analysis, level_db=0, transpose_semitones=12, keep_formants="on",
                                velocity_tilt_db=0), [NoteOn(0, 57, 127)], 1.0))
    # plain shift: the new fundamental (440 Hz) keeps harmonic 1's level; with formants kept it takes
    # the level the envelope had at 440 Hz, which is harmonic 2's
    assert magnitude_at(shifted, 440) == pytest.approx(0.3, rel=0.05)
    assert magnitude_at(kept, 440) == pytest.approx(0.15, rel=0.05)
    assert magnitude_at(kept, 880) == pytest.approx(0.3 / 4, rel=0.05)
    assert magnitude_at(kept, 220) < 1e-3


def test_partial_filters_odd_even_harmonics_only_and_tilt():
    analysis = harmonic_analysis(inharmonic_hz=333.0)
    odd = steady(play(Additive(analysis=analysis, level_db=0, odd_even=-1, velocity_tilt_db=0), [NoteOn(0, 57, 127)], 1.0))
    assert magnitude_at(odd, 660) == pytest.approx(0.1, rel=0.05) and magnitude_at(odd, 440) < 1e-3
    assert magnitude_at(odd, 333) == pytest.approx(0.1, rel=0.05)  # not a harmonic: untouched
    pure = steady(play(Additive(analysis=analysis, level_db=0, harmonics_only="on", velocity_tilt_db=0), [NoteOn(0, 57, 127)], 1.0))
    assert magnitude_at(pure, 333) < 1e-3 and magnitude_at(pure, 440) == pytest.approx(0.15, rel=0.05)
    tilted = steady(play(Additive(analysis=analysis, level_db=0, tilt_db_per_octave=-6, velocity_tilt_db=0), [NoteOn(0, 57, 127)], 1.0))
    assert 20 * np.log10(magnitude_at(tilted, 880) / 0.075) == pytest.approx(-12, abs=0.3)


def test_time_stretch_keeps_pitch_and_scales_duration():
    analysis = harmonic_analysis(seconds=1.0, decay_s=0.25)
    for stretch in (0.5, 2.0):
        audio = render_sines_transformed(analysis, Transform(stretch=stretch))
        assert len(audio) == pytest.approx(analysis.n_samples * stretch, abs=1)
        envelope = np.sqrt(np.convolve(audio ** 2, np.ones(480) / 480, "same"))
        # the decay is stretched: the level at time t*stretch equals the original's at t
        t = 0.4
        assert envelope[int(t * stretch * SR)] / envelope[int(0.1 * stretch * SR)] == pytest.approx(
            np.exp(-(t - 0.1) / 0.25), rel=0.02)
        assert peak_hz(audio[: int(0.4 * SR)], 150, 300) == pytest.approx(220, abs=0.5)


def test_pitch_shift_offline_moves_every_partial():
    audio = render_sines_transformed(harmonic_analysis(), Transform(transpose_semitones=-12))
    part = steady(audio)
    assert magnitude_at(part, 110) == pytest.approx(0.3, rel=0.05) and magnitude_at(part, 220) == pytest.approx(0.15, rel=0.05)


def test_freeze_holds_one_frame_and_morph_reaches_the_target():
    decaying = harmonic_analysis(seconds=1.0, decay_s=0.2)
    frozen = render_sines_transformed(decaying, Transform(freeze_position=0.25))
    level_early, level_late = (magnitude_at(frozen[int(a * SR) : int(b * SR)], 220) for a, b in ((0.1, 0.3), (0.7, 0.9)))
    assert level_early == pytest.approx(level_late, rel=0.02)
    assert level_early == pytest.approx(0.3 * np.exp(-0.25 * (decaying.frames - 1) * HOP / SR / 0.2), rel=0.05)
    bright = harmonic_analysis(f0_hz=330.0)  # a different pitch: morphing keeps the analysis' own
    bright_amp = bright.amp.copy()
    bright_amp[:, 0] = 0.0  # no fundamental
    target = Partials(**{**bright.__dict__, "amp": bright_amp})
    morphed = steady(render_sines_transformed(harmonic_analysis(), Transform(morph=1.0), morph_target=target))
    assert magnitude_at(morphed, 220) < 1e-3 and magnitude_at(morphed, 440) == pytest.approx(0.15, rel=0.05)


def test_parameters_are_live_and_smoothed():
    plugin = Additive(analysis=harmonic_analysis(), level_db=0, velocity_tilt_db=0)
    audio = play(plugin, [NoteOn(0, 57, 127), ParamChange(SR // 2, "add", "transpose_semitones", 12.0)], 1.0)
    assert magnitude_at(audio[int(0.2 * SR) : int(0.45 * SR)], 220) > 0.25
    assert magnitude_at(audio[int(0.6 * SR) : int(0.95 * SR)], 440) > 0.25
    # no click: the signal never moves faster than its steepest harmonic sum allows at 440 Hz
    steepest = sum(0.3 / k * 2 * np.pi * 440 * k / SR for k in range(1, 13))
    assert np.max(np.abs(np.diff(audio))) < 1.02 * steepest


def test_a_voice_ends_with_its_release_or_with_the_analysis():
    plugin = Additive(analysis=harmonic_analysis(seconds=0.5), level_db=0, loop="off")
    audio = play(plugin, [NoteOn(0, 57, 127)], 1.0)
    assert plugin.active_voices == 0 and np.max(np.abs(audio[int(0.55 * SR) :])) == 0.0
    looping = Additive(analysis=harmonic_analysis(seconds=0.5), level_db=0, loop="on", release_ms=50)
    audio = play(looping, [NoteOn(0, 57, 127), NoteOff(int(1.5 * SR), 57)], 2.0)
    assert magnitude_at(audio[int(1.0 * SR) : int(1.4 * SR)], 220) > 0.25  # held beyond the analysis
    assert looping.active_voices == 0


def test_preset_files_are_checked(tmp_path):
    def preset(files):
        return {"format_version": 1, "chain": [{"plugin": "additive", "files": files}]}

    with pytest.raises(SynthError, match=r"chain\[0\]\.files\.analysis: expected a path relative"):
        parse_preset(preset({"analysis": "/etc/passwd"}), str(tmp_path / "p.toml"))
    with pytest.raises(SynthError, match=r"chain\[0\]\.files\.analysis: expected a path relative.*'\.\./x'"):
        parse_preset(preset({"analysis": "../x"}), str(tmp_path / "p.toml"))
    with pytest.raises(SynthError, match=r"chain\[0\]\.files\.sample: plugin 'additive' reads no file 'sample'"):
        parse_preset(preset({"sample": "x.npz"}), str(tmp_path / "p.toml"))
    with pytest.raises(SynthError, match=r"chain\[0\]\.files\.analysis: no such file"):
        parse_preset(preset({"analysis": "missing.partials.npz"}), str(tmp_path / "p.toml"))
    (tmp_path / "bad.partials.npz").write_bytes(b"not an npz")
    spec = parse_preset(preset({"analysis": "bad.partials.npz"}), str(tmp_path / "p.toml"))
    with pytest.raises(SynthError, match=r"p\.toml: chain\[0\]: .*bad\.partials\.npz"):
        spec.build_engine()
    with pytest.raises(SynthError, match="needs an analysis file"):
        Additive()


def test_harmonic_bank_renders_model_frames_with_continuous_glides():
    """The path a neural model drives: per-voice f0 and harmonic amplitudes once a frame."""
    from synth.dsp.harmonic_bank import HarmonicBank

    bank = HarmonicBank(voices=2, harmonics=4)
    hop = 240  # 200 frames a second
    frames = 200
    out = np.zeros(frames * hop, dtype=np.float32)
    f0 = np.linspace(200.0, 400.0, frames)  # voice 0 glides an octave up over the second
    for t in range(frames):
        bank.set_frame(0, f0[t], np.array([0.4, 0.2, 0.0, 0.0]))
        bank.set_frame(1, 1000.0, np.array([0.1, 0.0, 0.0, 0.0]))
        bank.render(out[t * hop :], hop, SR)
    # reference in float64: every control glides linearly from frame t-1 to frame t over hop t
    # (frame -1 is silence at 0 Hz), and each phase is the running sum of its frequency
    ramp = np.arange(hop) / hop

    def glide(values):
        previous = np.concatenate([[0.0], values[:-1]])
        return np.concatenate([a + (b - a) * ramp for a, b in zip(previous, values)])

    def partial(freq_hz, amp):
        phase = 2 * np.pi * np.concatenate([[0.0], np.cumsum(freq_hz)[:-1]]) / SR
        return amp * np.sin(phase)

    expected = (partial(glide(f0), glide(np.full(frames, 0.4))) + partial(glide(2 * f0), glide(np.full(frames, 0.2)))
                + partial(glide(np.full(frames, 1000.0)), glide(np.full(frames, 0.1))))
    assert np.max(np.abs(out - expected)) < 1e-4
    bank.reset()
    silent = np.zeros(hop, dtype=np.float32)
    bank.render(silent, hop, SR)
    assert np.max(np.abs(silent)) == 0.0
