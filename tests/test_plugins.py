import sys
import textwrap

import numpy as np
import pytest

from conftest import make_engine, run
from synth import plugins
from synth.errors import SynthError
from synth.events import NoteOn, ParamChange, TempoChange
from synth.plugins import Delay, GainPan, NoiseSource, Oscillator, plugin_class


def _spectrum_db(signal, sample_rate):
    window = np.hanning(len(signal))
    magnitude = np.abs(np.fft.rfft(signal * window))
    freqs = np.fft.rfftfreq(len(signal), 1 / sample_rate)
    return freqs, 20 * np.log10(magnitude / magnitude.max() + 1e-12)


def _play(plugin, note=69, frames=48000, sample_rate=48000, channels=2, block=256):
    engine = make_engine(plugin, sample_rate=sample_rate, channels=channels, max_block=block)
    engine.schedule(NoteOn(0, note, 127))
    return run(engine, frames, block)[:, 0]


@pytest.mark.parametrize("waveform", ["sine", "triangle", "saw", "square"])
def test_oscillator_pitch_is_the_note(waveform):
    out = _play(Oscillator(waveform=waveform, cutoff_hz=20000, attack_ms=0.1, sustain=1.0))
    freqs, spectrum = _spectrum_db(out[4800:], 48000)
    assert freqs[np.argmax(spectrum)] == pytest.approx(440, abs=2)


def test_saw_is_band_limited():
    """A high saw (note 100, 2637 Hz) at 48 kHz against a naive saw of the same pitch: aliases
    (energy between the harmonics) below 8 kHz stay under -50 dB, and the worst alias anywhere is
    at least 15 dB lower than the naive one's (measured: -58 dB and -38 dB vs -24 dB and -20 dB)."""
    f0 = 440 * 2 ** ((100 - 69) / 12)
    out = _play(Oscillator(waveform="saw", cutoff_hz=20000, resonance=0, attack_ms=0.1, sustain=1.0), note=100)
    phase = np.arange(len(out)) * f0 / 48000
    naive = 2 * (phase % 1.0) - 1

    def aliases(signal):
        freqs, spectrum = _spectrum_db(signal[4800:], 48000)
        between = (np.abs(freqs / f0 - np.round(freqs / f0)) * f0 > 60) & (freqs > 100)
        return spectrum[between & (freqs < 8000)].max(), spectrum[between].max()

    low, worst = aliases(out)
    _, naive_worst = aliases(naive)
    assert low < -50
    assert worst < naive_worst - 15


def test_lowpass_cutoff_darkens_the_sound():
    bright = _play(Oscillator(waveform="saw", cutoff_hz=16000, sustain=1.0), note=45)
    dark = _play(Oscillator(waveform="saw", cutoff_hz=400, sustain=1.0), note=45)

    def centroid(x):
        spectrum = np.abs(np.fft.rfft(x[4800:]))
        return np.sum(np.fft.rfftfreq(len(x) - 4800, 1 / 48000) * spectrum) / np.sum(spectrum)

    assert centroid(dark) < 0.5 * centroid(bright)


def test_noise_bandpass_tracks_the_key_and_is_seeded():
    high = _play(NoiseSource(mode="bandpass", resonance=0.95, cutoff_hz=261.63, key_tracking=1, sustain=1), note=84)
    freqs, spectrum = _spectrum_db(high[4800:], 48000)
    smooth = np.convolve(spectrum, np.ones(31) / 31, mode="same")
    assert freqs[np.argmax(smooth)] == pytest.approx(1046.5, rel=0.1)
    again = _play(NoiseSource(mode="bandpass", resonance=0.95, cutoff_hz=261.63, key_tracking=1, sustain=1), note=84)
    other_seed = _play(NoiseSource(mode="bandpass", resonance=0.95, cutoff_hz=261.63, seed=5, sustain=1), note=84)
    assert np.array_equal(high, again) and not np.array_equal(high, other_seed)


def test_delay_repeats_after_its_time_and_decays_by_feedback():
    engine = make_engine(plugin_class("test_impulse")(level=0.5), Delay(time_ms=100, feedback=0.5, mix=0.5, damping=0))
    engine.schedule(NoteOn(0, 60, 100))
    out = run(engine, 48000, 256)[:, 0]
    assert out[0] == pytest.approx(0.25)
    assert out[4800] == pytest.approx(0.25, rel=1e-4)
    assert out[9600] == pytest.approx(0.125, rel=1e-4)
    assert np.count_nonzero(np.abs(out) > 1e-9) == 10  # the impulse and nine repeats in 1 s


def test_synced_delay_follows_the_tempo_from_its_sample_on():
    engine = make_engine(plugin_class("test_impulse")(level=0.5), Delay(sync="1/8", feedback=0, mix=0.5, damping=0))
    assert engine.slot("delay").plugin.get_param("time_ms") == pytest.approx(250.0)  # an eighth at 120 bpm
    engine.schedule(TempoChange(0, 150.0))  # an eighth is 200 ms: the delay glides there like tape
    engine.schedule(NoteOn(48000, 60, 100))  # long after the glide ended
    out = run(engine, 72000, 256)[:, 0]
    assert out[48000] == pytest.approx(0.25) and out[48000 + 9600] == pytest.approx(0.25, rel=1e-4)
    assert np.count_nonzero(np.abs(out[48001:]) > 1e-9) == 1
    engine.schedule(ParamChange(engine.sample_time, "delay", "sync", 0.0))  # off: time_ms stays where it is
    engine.schedule(TempoChange(engine.sample_time, 60.0))
    run(engine, 256, 256)
    assert engine.slot("delay").plugin.get_param("time_ms") == pytest.approx(200.0)


def test_pan_is_constant_power_with_unity_centre():
    engine = make_engine(plugin_class("test_constant")(level=0.5), GainPan(pan=1.0))
    engine.schedule(NoteOn(0, 60, 100))
    out = run(engine, 256, 256)
    assert out[-1, 0] == pytest.approx(0, abs=1e-7)
    assert out[-1, 1] == pytest.approx(0.5 * np.sqrt(2))


def test_reset_clears_state_but_keeps_parameters():
    delay = Delay(time_ms=10, feedback=0.9, mix=1.0)
    engine = make_engine(plugin_class("test_impulse")(), delay)
    engine.schedule(NoteOn(0, 60, 100))
    run(engine, 1024, 256)
    delay.reset()
    assert np.all(run(engine, 4800, 256) == 0)
    assert delay.get_param("time_ms") == 10


def test_unknown_plugin_and_parameter_errors_list_what_exists():
    with pytest.raises(SynthError, match=r"unknown plugin 'reverbb'; available: .*delay.*oscillator"):
        plugin_class("reverbb")
    with pytest.raises(SynthError, match=r"plugin 'delay' has no parameter 'time' \(it has: time_ms, sync, feedback"):
        Delay(time=3)
    with pytest.raises(SynthError, match=r"cutoff_hz: expected a number in 20\.\.20000 Hz, got 5"):
        Oscillator(cutoff_hz=5)


def test_plugins_declared_by_other_packages_are_found_through_entry_points(tmp_path, monkeypatch):
    package = tmp_path / "extra_synth_plugins.py"
    package.write_text(textwrap.dedent('''
        from synth.plugins import Plugin
        from synth.params import float_param

        class Inverter(Plugin):
            name = "inverter"
            param_specs = (float_param("amount", 0, 1, 1),)

            def process(self, bus, n):
                bus[:, :n] *= -1.0
    '''))
    dist = tmp_path / "extra_synth_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-synth-plugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[synth.plugins]\ninverter = extra_synth_plugins:Inverter\nbroken = extra_synth_plugins:Missing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    problems = plugins.discover(refresh=True)
    try:
        assert plugin_class("inverter").__name__ == "Inverter"
        assert len(problems) == 1 and "'broken' (extra_synth_plugins:Missing)" in problems[0]
        with pytest.raises(SynthError, match="plugins that failed to load: entry point 'broken'"):
            plugin_class("nothing")
    finally:
        plugins._registry.pop("inverter", None)
        sys.modules.pop("extra_synth_plugins", None)
        plugins.discover(refresh=True)
