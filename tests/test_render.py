import json
import os
import signal
import subprocess
import sys
import time

import mido
import numpy as np
import pytest
import soundfile

from conftest import as_in_a_terminal
from synth.cli import main
from synth.io.audiofile import read_audio
from synth.presets import load_preset
from synth.render import render_file

NOTES = [(0.0, 60, 100, 0.5), (0.25, 64, 90, 1.0), (0.5, 67, 80, 0.75), (1.0, 72, 127, 0.25)]


def write_jsonl(path, notes=NOTES):
    with open(path, "w") as f:
        for start, note, velocity, length in notes:
            f.write(json.dumps({"time": start, "address": "/note/on", "args": [note, velocity]}) + "\n")
            f.write(json.dumps({"time": start + length, "address": "/note/off", "args": [note]}) + "\n")
    return path


def write_midi(path, notes=NOTES):
    """The same notes as a standard MIDI file at 120 bpm, 480 ticks a beat (1 tick = 1/960 s)."""
    timeline = sorted([(round(s * 960), "note_on", n, v) for s, n, v, _ in notes]
                      + [(round((s + d) * 960), "note_off", n, 0) for s, n, _, d in notes], key=lambda e: e[0])
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    now = 0
    for tick, kind, note, velocity in timeline:
        track.append(mido.Message(kind, note=note, velocity=velocity, time=tick - now))
        now = tick
    midi.save(path)
    return path


def test_two_renders_are_byte_identical(tmp_path):
    score = write_jsonl(tmp_path / "s.jsonl")
    for preset in ("warm-pad", "wind-noise"):
        a, b = tmp_path / f"{preset}-a.wav", tmp_path / f"{preset}-b.wav"
        render_file(load_preset(preset), score, a, progress=False)
        time.sleep(1.1)  # a timestamp in the file would now differ
        render_file(load_preset(preset), score, b, progress=False)
        assert a.read_bytes() == b.read_bytes()
        assert np.max(np.abs(read_audio(a)[0])) > 0.01


def test_midi_and_jsonl_scores_give_the_same_audio(tmp_path):
    preset = load_preset("pluck-lead")
    render_file(preset, write_jsonl(tmp_path / "s.jsonl"), tmp_path / "j.wav", progress=False)
    render_file(preset, write_midi(tmp_path / "s.mid"), tmp_path / "m.wav", progress=False)
    jsonl_audio, midi_audio = read_audio(tmp_path / "j.wav")[0], read_audio(tmp_path / "m.wav")[0]
    assert np.max(np.abs(jsonl_audio)) > 0.01
    assert np.array_equal(jsonl_audio, midi_audio)


@pytest.mark.parametrize("fmt, subtype", [("float32", "FLOAT"), ("pcm16", "PCM_16"), ("pcm24", "PCM_24")])
def test_formats_rates_channels_and_tail(tmp_path, fmt, subtype):
    out = tmp_path / "o.wav"
    summary = render_file(load_preset("warm-pad"), write_jsonl(tmp_path / "s.jsonl"), out, sample_rate=44100,
                          fmt=fmt, tail_s=0.5, channels=1, block_size=100, progress=False)
    info = soundfile.info(out)
    assert (info.subtype, info.samplerate, info.channels) == (subtype, 44100, 1)
    assert info.frames == round(1.25 * 44100) + round(0.5 * 44100) == summary.frames
    assert summary.peak <= 10 ** (-0.3 / 20)


def test_cli_render_prints_a_summary(tmp_path, capsys):
    out = tmp_path / "o.wav"
    assert main(["render", "warm-pad", str(write_jsonl(tmp_path / "s.jsonl")), "-o", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed
    assert "duration 3.25 s at 48000 Hz" in printed and "dBFS" in printed and "x realtime" in printed
    assert "stolen 0, non-finite blocks 0" in printed


@pytest.mark.parametrize("args, message", [
    (["render", "no-such-preset", "s.jsonl", "-o", "o.wav"], "no preset called 'no-such-preset'"),
    (["render", "warm-pad", "missing.jsonl", "-o", "o.wav"], "missing.jsonl: no such score file"),
    (["render", "warm-pad", "s.jsonl", "-o", "o.mp3"],
     "o.mp3: the float32 format writes files ending in .wav (the formats write .flac, .ogg, .wav files)"),
    (["render", "warm-pad", "s.jsonl", "-o", "o.wav", "--format", "flac"], "o.wav: the flac format writes files ending in .flac"),
    (["render", "warm-pad", "s.jsonl", "-o", "nowhere/o.wav"], "the folder 'nowhere' does not exist (make it first)"),
    (["render", "warm-pad", "s.jsonl", "-o", "o.wav", "--sample-rate", "1000"],
     "argument --sample-rate: expected an integer in 8000..192000 Hz, got '1000'"),
    (["render", "warm-pad", "s.jsonl", "-o", "o.wav", "--block-size", "0"],
     "argument --block-size: expected an integer in 1..8192 frames, got '0'"),
    (["render", "warm-pad", "s.jsonl", "-o", "o.wav", "--tail", "-1"], "argument --tail: expected a number in 0..600 s, got '-1'"),
])
def test_cli_errors_are_one_clear_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "s.jsonl")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.wav")) and not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_interrupted_render_leaves_no_file(tmp_path, sig, code, word):
    """Ctrl-C (SIGINT) or SIGTERM in the middle of a long render: exit 130 or 143, no WAV, no
    temporary file."""
    notes = [(i * 0.25, 48 + i % 24, 100, 2.0) for i in range(2400)]  # 10 minutes, ~8 voices
    score = write_jsonl(tmp_path / "long.jsonl", notes)
    out = tmp_path / "long.wav"
    process = subprocess.Popen([sys.executable, "-m", "synth", "render", "warm-pad", str(score), "-o", str(out),
                                "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=as_in_a_terminal)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".long.wav.*.partial")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    time.sleep(0.5)
    assert list(tmp_path.glob(".long.wav.*.partial"))[0].stat().st_size > 0
    process.send_signal(sig)
    _, err = process.communicate(timeout=30)
    assert process.returncode == code, err
    assert f"{word}; no partial output was left behind" in err and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["long.jsonl"]


@pytest.mark.parametrize("fmt, ending, tolerance", [("flac", ".flac", 2 ** -22), ("ogg", ".ogg", 0.01)])
def test_render_writes_flac_and_ogg(fmt, ending, tolerance, tmp_path):
    """FLAC holds the render to 24 bits and repeats byte for byte; Ogg Vorbis is lossy, but close,
    and repeats sample for sample (libsndfile draws each file's Ogg stream serial number at random)."""
    score = write_jsonl(tmp_path / "s.jsonl")
    wav, out, again = tmp_path / "x.wav", tmp_path / f"x{ending}", tmp_path / f"y{ending}"
    assert main(["render", "warm-pad", str(score), "-o", str(wav), "--quiet"]) == 0
    assert main(["render", "warm-pad", str(score), "-o", str(out), "--format", fmt, "--quiet"]) == 0
    assert main(["render", "warm-pad", str(score), "-o", str(again), "--format", fmt, "--quiet"]) == 0
    reference, _ = soundfile.read(wav, dtype="float32")
    coded, rate = soundfile.read(out, dtype="float32")
    assert rate == 48000 and coded.shape == reference.shape
    assert np.sqrt(np.mean((coded - reference) ** 2)) <= tolerance  # RMS of the coding error
    if fmt == "flac":
        assert out.read_bytes() == again.read_bytes()
    assert np.array_equal(soundfile.read(again, dtype="float32")[0], coded)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(umask, mode, tmp_path):
    score = write_jsonl(tmp_path / "s.jsonl")
    previous = os.umask(umask)
    try:
        assert main(["render", "warm-pad", str(score), "-o", str(tmp_path / "x.wav"), "--quiet"]) == 0
    finally:
        os.umask(previous)
    assert (tmp_path / "x.wav").stat().st_mode & 0o777 == mode


def test_the_command_line_offers_every_audio_format():
    from synth.cli import AUDIO_FORMATS
    from synth.io.audiofile import FORMATS

    assert AUDIO_FORMATS == tuple(FORMATS)


def test_loudness_and_true_peak_read_known_signals():
    """A 997 Hz sine at amplitude 0.1 in both channels reads -20 LUFS (BS.1770's reference: a
    full-scale one is 0 LUFS in stereo); a sine at a quarter of the rate sampled 45 degrees off its
    crests peaks 3 dB above its samples, which only the oversampled true peak sees."""
    from synth.io.loudness import integrated_lufs, true_peak_dbtp

    t = np.arange(3 * 48000) / 48000
    sine = 0.1 * np.sin(2 * np.pi * 997 * t)
    assert integrated_lufs(np.stack([sine, sine], axis=1), 48000) == pytest.approx(-20.0, abs=0.1)
    off_crest = np.sin(2 * np.pi * 12000 * t + np.pi / 4)[:, None]
    assert 20 * np.log10(np.max(np.abs(off_crest))) == pytest.approx(-3.01, abs=0.01)
    assert true_peak_dbtp(off_crest) == pytest.approx(0.0, abs=0.2)  # the 4x interpolator ripples a little
    assert integrated_lufs(np.zeros((48000, 2)), 48000) == -np.inf and true_peak_dbtp(np.zeros((10, 2))) == -np.inf


def test_k_weighting_is_bs1770s_table_at_48khz_and_the_meter_reads_like_pyloudnorm():
    """The biquads at 48 kHz are BS.1770-4's coefficients; on noise, tones and a loud-then-quiet
    signal (the relative gate at work) at three rates our meter and pyloudnorm agree within 0.1 LU
    (pyloudnorm's own filter design differs from the table by a few hundredths), and the true peak
    agrees with scipy's 4x resample_poly within 0.05 dB."""
    import pyloudnorm
    from scipy.signal import resample_poly

    from synth.io.loudness import integrated_lufs, k_weighting, true_peak_dbtp

    (shelf_b, shelf_a), (high_b, high_a) = k_weighting(48000)
    np.testing.assert_allclose(shelf_b, [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-12)
    np.testing.assert_allclose(shelf_a, [1.0, -1.69065929318241, 0.73248077421585], atol=1e-12)
    np.testing.assert_allclose(high_b, [1.0, -2.0, 1.0])
    np.testing.assert_allclose(high_a, [1.0, -1.99004745483398, 0.99007225036621], atol=1e-12)
    rng = np.random.default_rng(1)
    t = np.arange(3 * 48000) / 48000
    signals = {"noise": 0.1 * rng.standard_normal((5 * 48000, 2)),
               "low tone": 0.3 * np.sin(2 * np.pi * 60 * t)[:, None],
               "high tones": np.stack([0.2 * np.sin(2 * np.pi * 5000 * t), 0.05 * np.sin(2 * np.pi * 9000 * t)], axis=1),
               "loud then quiet": np.concatenate([0.3 * rng.standard_normal((96000, 2)),
                                                  0.003 * rng.standard_normal((192000, 2))])}
    for name, audio in signals.items():
        for rate in (44100, 48000, 96000):
            ours, theirs = integrated_lufs(audio, rate), pyloudnorm.Meter(rate).integrated_loudness(audio)
            assert ours == pytest.approx(theirs, abs=0.1), (name, rate)
        reference = 20 * np.log10(np.max(np.abs(resample_poly(audio, 4, 1, axis=0))))
        assert true_peak_dbtp(audio) == pytest.approx(reference, abs=0.05), name


@pytest.mark.parametrize("target, held", [(-14.0, False), (-1.0, True)])
def test_normalize_reaches_the_loudness_target_and_keeps_the_ceiling(target, held, tmp_path, capsys):
    from synth.io.loudness import integrated_lufs, true_peak_dbtp

    score = write_jsonl(tmp_path / "s.jsonl")
    out = tmp_path / "x.wav"
    assert main(["render", "warm-pad", str(score), "-o", str(out), "--normalize", str(target), "--quiet"]) == 0
    printed = capsys.readouterr().out
    audio, rate = soundfile.read(out, dtype="float32", always_2d=True)
    assert true_peak_dbtp(audio) <= -0.3 + 0.01
    if held:
        assert integrated_lufs(audio, rate) < target and "held below the target by the ceiling" in printed
    else:
        assert integrated_lufs(audio, rate) == pytest.approx(target, abs=0.1)
        assert f"loudness {target:.1f} LUFS" in printed and "normalised by" in printed


def test_skip_unknown_leaves_out_and_lists_lines_at_addresses_the_preset_lacks(tmp_path, capsys):
    score = tmp_path / "s.jsonl"
    score.write_text("\n".join(json.dumps(line) for line in [
        {"time": 0.0, "address": "/note/on", "args": [60, 100]},
        {"time": 0.1, "address": "/param/nosuch/gain_db", "args": [-6]},
        {"time": 0.2, "address": "/param/osc/nosuch", "args": [1]},
        {"time": 0.3, "address": "/param/nosuch/gain_db", "args": [-3]},
        {"time": 0.5, "address": "/note/off", "args": [60]}]) + "\n")
    out = tmp_path / "x.wav"
    assert main(["render", "warm-pad", str(score), "-o", str(out)]) == 2
    assert "s.jsonl:2: /param/nosuch/gain_db: no plugin 'nosuch' in the chain" in capsys.readouterr().err
    assert main(["render", "warm-pad", str(score), "-o", str(out), "--skip-unknown", "--quiet"]) == 0
    assert ("skipped 3 lines at addresses this preset does not have: /param/nosuch/gain_db (2), /param/osc/nosuch (1)"
            in capsys.readouterr().out)
    assert out.exists()
