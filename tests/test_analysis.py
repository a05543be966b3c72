"""Sinusoidal analysis, the partials file format, resynthesis, soundfont notes and the analysis plot.

Real instrument notes are rendered from the TimGM6mb General MIDI soundfont with fluidsynth.
"""

from __future__ import annotations

import functools
import math
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import soundfile

from conftest import harmonic_analysis
from synth.dsp.analysis import analyze, residual_band_db
from synth.dsp.partials import Partials, frame_count, load_partials, save_partials
from synth.dsp.resynth import noise_fft_size, resynthesize, synthesize_noise, synthesize_sines
from synth.errors import SynthError, SynthWarning
from synth.io.soundfont import GM_PROGRAMS, find_soundfont, render_note

RATE = 48000


@functools.lru_cache(maxsize=None)
def note(instrument: str, pitch: int) -> np.ndarray:
    """A 1 s note (velocity 100) plus 0.3 s of release from TimGM6mb, float32 mono at 48 kHz."""
    try:
        find_soundfont("timgm6mb")
    except SynthError as error:
        pytest.skip(f"{error}: the instrument tests render real soundfont notes")
    return render_note(GM_PROGRAMS[instrument], pitch, 100, 1.0, sample_rate=RATE, release_s=0.3)


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Waveform SNR: 10 log10(sum x^2 / sum (x - y)^2)."""
    x = reference.astype(np.float64)
    return 10.0 * math.log10(np.sum(x ** 2) / np.sum((x - estimate) ** 2))


# ---------------------------------------------------------------- real instruments

NOTES = [("violin", 55), ("violin", 79), ("cello", 43), ("cello", 57), ("trumpet", 58), ("trumpet", 72),
         ("church_organ", 48), ("church_organ", 60)]


@pytest.mark.parametrize("instrument, pitch", NOTES)
def test_sine_resynthesis_of_real_notes_reaches_25_db(instrument, pitch):
    audio = note(instrument, pitch)
    partials = analyze(audio, RATE)
    assert snr_db(audio, synthesize_sines(partials)) >= 25.0


@pytest.mark.parametrize("instrument, pitch", [("violin", 55), ("trumpet", 58), ("church_organ", 60)])
def test_harmonic_resynthesis_of_real_notes_reaches_25_db(instrument, pitch):
    audio = note(instrument, pitch)
    partials = analyze(audio, RATE, harmonic=True)
    assert partials.harmonic
    assert snr_db(audio, synthesize_sines(partials)) >= 25.0


def test_harmonic_mode_puts_harmonic_k_in_column_k_minus_1_on_a_violin():
    partials = analyze(note("violin", 55), RATE, harmonic=True)
    sustain = slice(int(0.2 * RATE / partials.hop_samples), int(0.9 * RATE / partials.hop_samples))
    f0 = partials.f0_hz[sustain]
    assert abs(1200 * math.log2(np.median(f0) / 196.0)) < 10  # G3, within 10 cents
    checked = 0
    for column in range(min(partials.tracks, 20)):
        on = partials.amp[sustain, column] > 0
        ratio = partials.freq_hz[sustain, column][on] / f0[on]
        if ratio.size:
            assert np.all(np.abs(ratio - (column + 1)) < 0.01 * (column + 1)), column
            checked += 1
    assert checked >= 15


def test_harmonic_mode_finds_an_organ_sub_octave():
    """TimGM6mb's church organ sounds a 16' rank: middle C's waveform repeats at 130.8 Hz."""
    partials = analyze(note("church_organ", 60), RATE, harmonic=True)
    sustain = slice(100, 300)
    assert abs(1200 * math.log2(np.median(partials.f0_hz[sustain]) / 130.81)) < 10
    assert abs(np.median(partials.freq_hz[sustain, 1]) - 261.63) < 2.0


def test_resynthesis_without_phases_keeps_duration_and_pitch():
    audio = note("violin", 67)
    partials = analyze(audio, RATE, keep_phases=False)
    assert partials.phase_rad is None
    free = synthesize_sines(partials)
    assert free.shape == audio.shape and free.dtype == np.float32
    assert np.array_equal(free, synthesize_sines(analyze(audio, RATE), use_phases=False))
    again = analyze(free, RATE)
    sustain = slice(100, 330)
    cents = 1200 * math.log2(np.median(again.f0_hz[sustain]) / np.median(partials.f0_hz[sustain]))
    assert abs(cents) < 3
    level_db = 10 * math.log10(np.mean(free[6000:42000] ** 2) / np.mean(audio[6000:42000] ** 2))
    assert abs(level_db) < 1.0


# ---------------------------------------------------------------- synthetic signals

PARTIALS = [  # (start Hz, glide Hz/s, amplitude, phase at t = 0)
    (220.0, 0.0, 0.3, 0.4), (563.3, 0.0, 0.1, 1.1), (1234.5, 0.0, 0.05, -2.0),
    (3000.0, 300.0, 0.03, 0.3), (2000.0, -150.0, 0.02, 0.0), (7777.0, 0.0, 0.01, 2.5)]


def synthetic(n_samples: int) -> np.ndarray:
    t = np.arange(n_samples) / RATE
    return sum(a * np.cos(2 * np.pi * (f * t + 0.5 * glide * t ** 2) + ph) for f, glide, a, ph in PARTIALS)


@pytest.mark.parametrize("hop", [63, 64, 65, 257])
def test_analysis_recovers_known_partials(hop):
    """Frequency within 0.05 Hz, amplitude within 0.05 dB, phase within 0.01 rad, away from the ends."""
    audio = synthetic(RATE)
    partials = analyze(audio, RATE, hop_samples=hop, track_f0=False)
    assert partials.frames == math.ceil(RATE / hop) + 1
    t = np.arange(partials.frames) * hop / RATE
    inner = (t > 0.1) & (t < 0.9)
    rows = np.flatnonzero(inner)
    for f, glide, a, ph in PARTIALS:
        true_hz = f + glide * t[inner]
        column = np.abs(partials.freq_hz[inner] - true_hz[:, None]).argmin(axis=1)
        assert len(set(column)) == 1, f"{f} Hz is split over tracks {set(column)}"
        freq = partials.freq_hz[rows, column]
        amp = partials.amp[rows, column]
        phase = partials.phase_rad[rows, column]
        true_phase = 2 * np.pi * (f * t[inner] + 0.5 * glide * t[inner] ** 2) + ph
        assert np.abs(freq - true_hz).max() < 0.05
        assert np.abs(20 * np.log10(amp / a)).max() < 0.05
        assert np.abs(np.angle(np.exp(1j * (phase - true_phase)))).max() < 0.01
    inside = slice(RATE // 10, RATE - RATE // 10)
    assert snr_db(audio[inside], synthesize_sines(partials)[inside]) > 60


@pytest.mark.parametrize("hop", [63, 257])
def test_harmonic_mode_on_a_synthetic_tone_skips_a_missing_harmonic(hop):
    t = np.arange(RATE) / RATE
    amps = {k: 0.3 / k for k in range(1, 13) if k != 3}
    audio = sum(a * np.cos(2 * np.pi * 220.0 * k * t + 0.3 * k) for k, a in amps.items())
    partials = analyze(audio, RATE, hop_samples=hop, harmonic=True)
    inner = slice(math.ceil(0.1 * RATE / hop), int(0.9 * RATE / hop))
    assert np.abs(partials.f0_hz[inner] - 220.0).max() < 0.01
    assert not partials.amp[inner, 2].any(), "harmonic 3 is absent from the tone"
    for k, a in amps.items():
        assert np.abs(partials.freq_hz[inner, k - 1] - 220.0 * k).max() < 0.05, k
        assert np.abs(20 * np.log10(partials.amp[inner, k - 1] / a)).max() < 0.05, k


@pytest.mark.parametrize("n_samples", [1, 63, 64, 65, 257])
def test_short_audio_gives_whole_frames_and_same_length_output(n_samples):
    audio = synthetic(n_samples)
    with pytest.warns(SynthWarning, match=f"the sound lasts {n_samples} samples? .*, shorter than one analysis window"):
        partials = analyze(audio, RATE, hop_samples=64)
    assert partials.frames == frame_count(n_samples, 64) == math.ceil(n_samples / 64) + 1
    assert partials.n_samples == n_samples
    out = resynthesize(partials)
    assert out.shape == (n_samples,) and np.all(np.isfinite(out))


def test_kernel_meets_each_frame_s_phase_and_fades_births_and_deaths():
    """One track: the output at each frame centre is amp * cos(phase); a track born at frame 2
    ramps in from silence over the hop before it and dies out over the hop after frame 4."""
    hop, frames = 65, 7
    freq = np.zeros((frames, 2), np.float32)
    amp = np.zeros_like(freq)
    phase = np.zeros_like(freq)
    freq[:, 0] = np.linspace(400, 460, frames)
    amp[:, 0] = np.linspace(0.5, 0.2, frames)
    phase[:, 0] = np.array([0.1, -2.0, 3.0, 1.0, -0.5, 2.2, -3.0])
    freq[2:5, 1], amp[2:5, 1], phase[2:5, 1] = 3000.0, 0.25, [0.5, 1.5, -1.0]
    p = Partials(RATE, hop, (frames - 1) * hop + 1, freq, amp, phase, np.zeros(frames, np.float32), False,
                 np.array([0, 24000], np.float32), np.zeros((frames, 1), np.float32))
    only_first = synthesize_sines(replace(p, freq_hz=freq[:, :1].copy(), amp=amp[:, :1].copy(), phase_rad=phase[:, :1].copy()))
    centres = np.arange(frames) * hop
    assert np.abs(only_first[centres] - amp[:, 0] * np.cos(phase[:, 0])).max() < 1e-5
    both = synthesize_sines(p)
    second = both - only_first
    assert not second[: hop].any() and not second[5 * hop + 1:].any()
    n = np.arange(hop)
    w = 2 * np.pi * 3000.0 / RATE
    ramp_in = 0.25 * n / hop * np.cos(0.5 - w * (hop - n))
    assert np.abs(second[hop: 2 * hop] - ramp_in).max() < 1e-5
    ramp_out = 0.25 * (1 - n / hop) * np.cos(-1.0 + w * n)
    assert np.abs(second[4 * hop: 5 * hop] - ramp_out).max() < 1e-5


# ---------------------------------------------------------------- noise

def test_noise_synthesis_holds_the_band_levels_it_is_given():
    frames, hop = 400, 128
    edges = np.array([0, 500, 1000, 2000, 4000, 8000, 24000], np.float32)
    levels = np.array([-50, -40, -45, -35, -45, -60], np.float32)
    p = Partials(RATE, hop, (frames - 1) * hop, np.zeros((frames, 0), np.float32), np.zeros((frames, 0), np.float32),
                 None, np.zeros(frames, np.float32), False, edges, np.tile(levels, (frames, 1)))
    noise = synthesize_noise(p, seed=3)
    measured = residual_band_db(noise, RATE, hop, frames, edges, noise_fft_size(RATE, hop, edges))[20:-20].mean(axis=0)
    assert np.abs(measured - levels).max() < 1.0
    assert np.array_equal(noise, synthesize_noise(p, seed=3))
    assert not np.array_equal(noise, synthesize_noise(p, seed=4))


def test_noisy_sound_resynthesises_at_its_level_and_sum_is_sines_plus_noise():
    rng = np.random.default_rng(7)
    audio = synthetic(RATE // 2) + 0.02 * rng.standard_normal(RATE // 2)
    partials = analyze(audio, RATE, track_f0=False, max_tracks=8)
    out = resynthesize(partials, seed=5)
    assert np.array_equal(out, synthesize_sines(partials) + synthesize_noise(partials, seed=5))
    assert np.array_equal(resynthesize(partials, sines_only=True), synthesize_sines(partials))
    residual = audio - synthesize_sines(partials)
    noise = synthesize_noise(partials, seed=5)
    inside = slice(4800, -4800)
    assert abs(10 * math.log10(np.mean(noise[inside] ** 2) / np.mean(residual[inside] ** 2))) < 1.0


# ---------------------------------------------------------------- files

@pytest.fixture(scope="module")
def small_analysis() -> Partials:
    return analyze(synthetic(RATE // 4), RATE, hop_samples=65)


def test_save_load_round_trip(small_analysis, tmp_path):
    for partials in (small_analysis, replace(small_analysis, phase_rad=None)):
        path = save_partials(partials, tmp_path / "a.partials.npz")
        loaded = load_partials(path)
        for key in ("sample_rate", "hop_samples", "n_samples", "harmonic"):
            assert getattr(loaded, key) == getattr(partials, key)
        for key in ("freq_hz", "amp", "phase_rad", "f0_hz", "noise_band_edges_hz", "noise_db"):
            original, back = getattr(partials, key), getattr(loaded, key)
            assert (original is None and back is None) or (back.dtype == np.float32 and np.array_equal(original, back))
    assert [p.name for p in tmp_path.iterdir()] == ["a.partials.npz"]  # no temporary file left behind


def _arrays(path) -> dict:
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


BAD_FILES = [
    ("wrong version", lambda a: a.update(format_version=np.int64(2)), r"'format_version' is 2, expected 1"),
    ("wrong kind", lambda a: a.update(kind=np.str_("something.else")), r"key 'kind' is 'something.else'"),
    ("missing key", lambda a: a.pop("amp"), r"key 'amp' is missing"),
    ("wrong shape", lambda a: a.update(amp=a["amp"][:, :-1]), r"key 'amp' has shape .*, expected"),
    ("NaN", lambda a: a["freq_hz"].__setitem__((3, 0), np.nan), r"key 'freq_hz' holds NaN"),
    ("wrong dtype", lambda a: a.update(noise_db=a["noise_db"].astype(np.float64)), r"key 'noise_db' has dtype float64"),
    ("out of range", lambda a: a["freq_hz"].__setitem__((3, 0), 30000.0), r"key 'freq_hz' has value 30000"),
    ("negative amplitude", lambda a: a["amp"].__setitem__((3, 0), -1.0), r"key 'amp' has value -1"),
    ("bad scalar", lambda a: a.update(hop_samples=np.float64(65.0)), r"key 'hop_samples' is float64"),
    ("pickled object array", lambda a: a.update(f0_hz=np.array([{"x": 1}], dtype=object)),
     r"key 'f0_hz' holds a pickled object array"),
]


@pytest.mark.parametrize("label, change, message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_partials_files_name_file_and_key(small_analysis, tmp_path, label, change, message):
    arrays = _arrays(save_partials(small_analysis, tmp_path / "good.partials.npz"))
    change(arrays)
    bad = tmp_path / "bad.partials.npz"
    with open(bad, "wb") as handle:
        np.savez(handle, **arrays)  # np.savez pickles object arrays; load must refuse them
    with pytest.raises(SynthError, match=r"bad\.partials\.npz: .*" + message):
        load_partials(bad)


def test_missing_and_non_npz_files(tmp_path):
    with pytest.raises(SynthError, match=r"nothing\.npz: no such analysis file"):
        load_partials(tmp_path / "nothing.npz")
    text = tmp_path / "text.npz"
    text.write_text("not numbers")
    not_analysis = r": not an analysis file \(a \.partials\.npz that `synth analyze` writes\)$"
    with pytest.raises(SynthError, match=r"text\.npz" + not_analysis):
        load_partials(text)
    single = tmp_path / "single.npz"
    with open(single, "wb") as handle:
        np.save(handle, np.zeros(3, np.float32))
    with pytest.raises(SynthError, match=r"single\.npz" + not_analysis):
        load_partials(single)
    wav = tmp_path / "tone.wav"  # a sound where its analysis is wanted: numpy would speak of pickles
    soundfile.write(wav, np.zeros(480, np.float32), 48000)
    with pytest.raises(SynthError, match=r"tone\.wav" + not_analysis):
        load_partials(wav)
    broken = tmp_path / "broken.npz"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("format_version.npy", b"\x93NUMPY garbage")
    with pytest.raises(SynthError, match=r"broken\.npz: key 'format_version' cannot be read"):
        load_partials(broken)


def test_saving_refuses_bad_data(small_analysis, tmp_path):
    bad = replace(small_analysis, amp=small_analysis.amp.astype(np.float64))
    with pytest.raises(SynthError, match=r"key 'amp' has dtype float64, expected float32"):
        save_partials(bad, tmp_path / "x.partials.npz")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("audio, kwargs, message", [
    (np.zeros((100, 2), np.float32), {}, r"audio has shape \(100, 2\).*expected float \[n_samples\] mono"),
    (np.array([0.0, np.nan]), {}, r"audio holds NaN"),
    (np.zeros(100), {"hop_samples": 0}, r"hop_samples=0 must be an integer in 1\.\.65536"),
    (np.zeros(100), {"fmin_hz": 500.0, "fmax_hz": 100.0}, r"fmin_hz=500.0 and fmax_hz=100.0"),
])
def test_analyze_rejects_bad_input(audio, kwargs, message):
    with pytest.raises(SynthError, match=message):
        analyze(audio, RATE, **kwargs)


# ---------------------------------------------------------------- soundfont and plot

def test_render_note_is_mono_float_of_the_asked_length():
    audio = note("flute", 72)
    assert audio.dtype == np.float32 and audio.shape == (int(1.3 * RATE),)
    assert np.sqrt(np.mean(audio[4800:48000] ** 2)) > 0.005  # sounding while held
    assert np.abs(audio[-2400:]).max() < 0.01 * np.abs(audio).max()  # released by the end


def test_soundfont_errors_say_what_is_wrong():
    with pytest.raises(SynthError, match=r"soundfont 'nope' must be one of timgm6mb, fluidr3"):
        find_soundfont("nope")
    with pytest.raises(SynthError, match=r"program=128 must be an integer in 0\.\.127"):
        render_note(128, 60, 100, 1.0)
    with pytest.raises(SynthError, match=r"missing\.sf2: no such soundfont file"):
        render_note(0, 60, 100, 0.1, soundfont="/nowhere/missing.sf2")


def test_plot_writes_a_png(tmp_path):
    audio = note("clarinet", 62)
    partials = analyze(audio, RATE, harmonic=True)
    from synth.plotting import plot_partials

    path = plot_partials(partials, audio, tmp_path / "clarinet.png", source_name="clarinet D4")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    with pytest.raises(SynthError, match=r"plot\.jpg: plot files end in \.png"):
        plot_partials(partials, audio, tmp_path / "plot.jpg")


@pytest.mark.parametrize("extra", [["--transpose", "3"], ["--morph-to", "{silent}", "--morph", "0.5"]])
def test_resynthesizing_an_analysis_of_silence_is_one_sentence(extra, tmp_path, capsys):
    """An analysis of a silent WAV has no track; `resynth` used to fail on numpy's argmax."""
    import soundfile as sf

    from synth.cli import main

    sf.write(tmp_path / "silence.wav", np.zeros(48000, np.float32), 48000)
    silent = tmp_path / "silence.partials.npz"
    assert main(["analyze", str(tmp_path / "silence.wav"), "-o", str(silent), "--quiet"]) == 0
    source = silent if "--transpose" in extra else tmp_path / "tone.partials.npz"
    if source != silent:
        save_partials(harmonic_analysis(), source)
    args = ["resynth", str(source), "-o", str(tmp_path / "out.wav")] + [a.format(silent=silent) for a in extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{silent}: the analysis holds no sounding partial" in err and "Traceback" not in err
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize("make, sentence", [
    (None, "{wav}: no such audio file"),
    (lambda wav: wav.write_bytes(b"RIFF and then nothing"), "{wav}: not an audio file libsndfile reads (Format not recognised)"),
    (lambda wav: soundfile.write(wav, np.zeros(0, np.float32), 48000), "{wav}: the file holds no samples"),
    (lambda wav: soundfile.write(wav, np.array([0.1, np.nan, 0.2], np.float32), 48000, subtype="FLOAT"),
     "{wav}: the file holds NaN or infinite samples"),
])
def test_analyzing_a_bad_sound_file_names_it(make, sentence, tmp_path, capsys):
    from synth.cli import main

    wav = tmp_path / "in.wav"
    if make is not None:
        make(wav)
    assert main(["analyze", str(wav), "-o", str(tmp_path / "x.partials.npz"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"synth: error: {sentence.format(wav=wav)}\n" == err
    assert not (tmp_path / "x.partials.npz").exists()


def test_a_sound_shorter_than_the_window_is_analysed_with_a_warning(tmp_path, capsys):
    """A 1-sample WAV used to give 65 tracks (the window's own lobes) and no word of warning. A
    click has no pitch, so the window is the default one."""
    from synth.cli import main

    soundfile.write(tmp_path / "click.wav", np.array([0.5], np.float32), 48000)
    out = tmp_path / "click.partials.npz"
    assert main(["analyze", str(tmp_path / "click.wav"), "-o", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert (f"synth: warning: {tmp_path / 'click.wav'}: the sound lasts 1 sample (0.02 ms), shorter than one "
            "analysis window (2049 samples, 42.7 ms): its tracks are the window's, not the sound's\n") == err
    assert load_partials(out).n_samples == 1


def test_the_plot_title_counts_the_tracks_the_summary_counts(tmp_path):
    """The title used to count columns (76) where the terminal counted sounding tracks (74)."""
    from synth.analysis_cli import analyze_file
    from synth.plotting import analysis_title

    audio = 0.3 * np.sin(2 * np.pi * 440 * np.arange(24000) / 48000).astype(np.float32)
    audio[12000:] += 0.2 * np.sin(2 * np.pi * 1234 * np.arange(12000) / 48000).astype(np.float32)
    soundfile.write(tmp_path / "two.wav", audio, 48000)
    out = tmp_path / "two.partials.npz"
    summary = analyze_file(tmp_path / "two.wav", out, progress=False)[0]
    partials = load_partials(out)
    sounding = partials.sounding_tracks
    assert sounding < partials.tracks  # some columns hold no sound in any frame
    assert summary.endswith(f", {sounding} tracks") and analysis_title(partials, "two").endswith(f", {sounding} tracks")


def test_sines_rendered_a_few_tracks_at_a_time_equal_all_tracks_at_once():
    """synthesize_sines steps through the tracks (for its progress bar); each track is independent."""
    from synth.dsp.resynth import TRACKS_PER_STEP, render_sines

    partials = harmonic_analysis(seconds=0.5, harmonics=TRACKS_PER_STEP * 2 + 3, decay_s=0.2)
    partials = replace(partials, phase_rad=np.random.default_rng(1).uniform(
        -np.pi, np.pi, partials.freq_hz.shape).astype(np.float32))
    whole = np.zeros(partials.n_samples, np.float32)
    render_sines(whole, partials.freq_hz, partials.amp, partials.phase_rad, True, float(partials.sample_rate),
                 partials.hop_samples)
    np.testing.assert_allclose(synthesize_sines(partials), whole, atol=1e-6)


@pytest.mark.parametrize("extra", [[], ["--transpose", "2"]])
def test_resynth_shows_its_progress_unless_quiet(extra, tmp_path, capsys):
    from synth.cli import main

    analysis = save_partials(harmonic_analysis(seconds=1.0, harmonics=20), tmp_path / "tone.partials.npz")
    assert main(["resynth", str(analysis), "-o", str(tmp_path / "out.wav"), *extra]) == 0
    shown = capsys.readouterr().err
    assert ("sines:" in shown and "/20 " in shown and "noise:" in shown) if not extra else "render:" in shown
    assert main(["resynth", str(analysis), "-o", str(tmp_path / "quiet.wav"), "--quiet", *extra]) == 0
    assert capsys.readouterr().err == ""
