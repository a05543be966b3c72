"""Timbre transfer: a recording re-played by a decoder model, aligned sample for sample."""

import numpy as np
import pytest
import soundfile
import torch

from models.ddsp_synth import filtered_noise, harmonic_synth
from models.decoder import Decoder, DecoderConfig
from models.model_files import load_model, save_model
from synth.dsp.decoder_runtime import load_runtime
from synth.dsp.noise import seed_states, white_noise
from synth.errors import SynthError
from synth.io.soundfont import render_note
from synth.transfer import render_frames, transfer, transfer_file

SR = 48000
HOP = 256
BANDS = 65  # the noise lags its frames by 64 samples


@pytest.fixture(scope="module")
def model_stem(tmp_path_factory):
    """A decoder with random weights (seeded) for two timbres, saved as a model file."""
    torch.manual_seed(5)
    config = DecoderConfig(harmonics=32, noise_bands=BANDS, hidden=48, latent_dims=4, instruments=["reed", "string"],
                           f0_range_hz=(100.0, 1000.0), loudness_range_db=(-70.0, -10.0))
    stem = tmp_path_factory.mktemp("model") / "transfer-test"
    save_model(Decoder(config), config, stem, {"training_command": "random weights for tests"})
    return stem


def glide(seconds, f_start_hz, f_end_hz, amplitude=0.3, sample_rate=SR):
    """A sine gliding exponentially from f_start_hz to f_end_hz; returns (audio, frequency per sample)."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    freq = f_start_hz * (f_end_hz / f_start_hz) ** (t / seconds)
    return (amplitude * np.sin(2 * np.pi * np.cumsum(freq) / sample_rate)).astype(np.float32), freq


def segment_f0(audio, start, length, f0_guess_hz, sample_rate=SR):
    """f0 of a segment from its strongest spectral peak (parabolic, zero-padded FFT) divided by the
    harmonic number nearest f0_guess_hz."""
    spectrum = np.abs(np.fft.rfft(audio[start:start + length] * np.hanning(length), 1 << 16))
    freqs = np.fft.rfftfreq(1 << 16, 1 / sample_rate)
    spectrum[freqs > 8000] = 0
    i = int(np.argmax(spectrum))
    a, b, c = np.log(spectrum[i - 1:i + 2])
    peak_hz = (i + 0.5 * (a - c) / (a - 2 * b + c)) * freqs[1]
    return peak_hz / max(round(peak_hz / f0_guess_hz), 1)


def test_frames_render_like_the_training_synthesiser_with_the_noise_delay_removed(model_stem):
    """render_frames = models.ddsp_synth (what the model was trained with) on the same controls
    and white noise, its noise advanced by noise_bands - 1 samples: the synthesis alignment."""
    frames, extra = 40, 1  # one frame past the end covers the 64-sample noise look-ahead
    rng = np.random.default_rng(1)
    f0 = (200.0 * 2.0 ** np.cumsum(rng.normal(0, 0.05, frames))).astype(np.float32)
    loud = rng.uniform(-60, -15, frames).astype(np.float32)
    runtime = load_runtime(model_stem, 1)
    runtime.set_voice_instrument(0, "string")
    out = render_frames(runtime, f0, loud, seed=7)
    assert out.shape == (frames * HOP,) and out.dtype == np.float32

    model, _, _ = load_model(model_stem)
    held = np.concatenate([np.arange(frames), np.full(extra, frames - 1)])
    f0_t = torch.from_numpy(f0[held])[None]
    z = model.instrument_latent("string").detach()[None, None, :].expand(1, held.size, -1)
    with torch.no_grad():
        controls, _ = model(f0_t, torch.from_numpy(loud[held])[None], z)
        states = seed_states(7, 1)
        white = torch.tensor([[white_noise(states, 0) for _ in range(held.size * HOP)]], dtype=torch.float32)
        harmonic = harmonic_synth(f0_t, controls["amplitude"], controls["harmonics"], SR, HOP)[0].numpy()
        noise = filtered_noise(controls["noise"], white, HOP)[0].numpy()
    delay = BANDS - 1
    reference = harmonic[:frames * HOP] + noise[delay:delay + frames * HOP]
    assert np.max(np.abs(reference)) > 1e-2
    assert np.max(np.abs(out - reference)) < 1e-4 * np.max(np.abs(reference))
    # and not the unshifted noise: the alignment matters at this tolerance
    unshifted = harmonic[:frames * HOP] + noise[:frames * HOP]
    assert np.max(np.abs(out - unshifted)) > 100 * np.max(np.abs(out - reference))


@pytest.mark.parametrize("n", [1, 255, 257, SR + 65])
def test_output_has_the_input_length(model_stem, n):
    audio, _ = glide(n / SR, 300.0, 300.0)
    out = transfer(audio, SR, model_stem)
    assert out.shape == (n,) and out.dtype == np.float32 and np.all(np.isfinite(out))


def test_output_follows_a_glide(model_stem):
    audio, freq = glide(1.2, 200.0, 400.0)
    out = transfer(audio, SR, model_stem, instrument="reed")
    assert np.sqrt(np.mean(out[SR // 10:] ** 2)) > 1e-3
    length = 2048
    for start in range(SR // 10, audio.size - SR // 10 - length, 4 * length):
        expected_hz = freq[start + length // 2]
        got_hz = segment_f0(out, start, length, expected_hz)
        assert abs(1200 * np.log2(got_hz / expected_hz)) < 15, (start, expected_hz, got_hz)


def test_pitch_shift_and_another_sample_rate(model_stem):
    """44.1 kHz in (resampled to the model's 48 kHz and back), a fifth up, odd length."""
    rate = 44100
    audio, _ = glide(0.8 + 7 / rate, 250.0, 250.0, sample_rate=rate)
    out = transfer(audio, rate, model_stem, pitch_shift_semitones=7)
    assert out.shape == audio.shape
    expected_hz = 250.0 * 2 ** (7 / 12)
    got_hz = segment_f0(out, rate // 4, 8192, expected_hz, rate)
    assert abs(1200 * np.log2(got_hz / expected_hz)) < 10


def test_silence_gives_silence(model_stem):
    assert np.max(np.abs(transfer(np.zeros(SR // 2, np.float32), SR, model_stem))) < 1e-6
    hiss = (1e-5 * np.random.default_rng(0).standard_normal(SR // 2)).astype(np.float32)  # -100 dB
    assert np.max(np.abs(transfer(hiss, SR, model_stem))) < 1e-6


def test_sound_sits_where_the_input_sounds(model_stem):
    """A burst in silence: the output's sound is centred on the burst (the gate opens and closes
    symmetrically around it), to within half a frame."""
    audio = np.zeros(SR, np.float32)
    start, stop = 20000, 30000
    audio[start:stop] = glide((stop - start) / SR, 330.0, 330.0)[0]
    for gains in ({"noise_db": -120.0}, {"harmonics_db": -120.0}):
        out = transfer(audio, SR, model_stem, **gains)
        sounding = np.flatnonzero(np.abs(out) > 1e-4 * np.max(np.abs(out)))
        assert sounding[0] < start and sounding[-1] > stop
        centre = 0.5 * (sounding[0] + sounding[-1])
        assert abs(centre - 0.5 * (start + stop)) < HOP / 2 + 8, (gains, sounding[0], sounding[-1])


def test_transfer_file_with_a_preset_and_a_real_note(model_stem, tmp_path):
    """A fluidsynth flute A4 at 44.1 kHz, stereo WAV in; a preset with a decoder slot."""
    note = render_note(73, 69, 100, 0.8, sample_rate=44100, release_s=0.2)
    in_wav = tmp_path / "flute.wav"
    soundfile.write(in_wav, np.stack([note, note], axis=1), 44100, subtype="FLOAT")
    for suffix in (".json", ".safetensors"):
        (tmp_path / f"m{suffix}").write_bytes(model_stem.with_suffix(suffix).read_bytes())
    (tmp_path / "p.toml").write_text('format_version = 1\n[[chain]]\nplugin = "decoder"\n'
                                     'files = { model = "m.json" }\nsettings = { instrument = "string" }\n'
                                     'params = { noise_db = -60.0 }\n')
    path, seconds = transfer_file(in_wav, tmp_path / "p.toml", tmp_path / "out.wav")
    out, rate = soundfile.read(path, dtype="float32")
    assert rate == 44100 and out.shape == (note.size,) and seconds == pytest.approx(note.size / 44100)
    assert abs(1200 * np.log2(segment_f0(out, 8000, 8192, 440.0, rate) / 440.0)) < 15
    direct = transfer(note, 44100, model_stem, "string", noise_db=-60.0)
    assert np.max(np.abs(out - direct)) < 1e-6  # the preset's instrument and noise_db were used
    path, _ = transfer_file(in_wav, tmp_path / "m.json", tmp_path / "out2.wav")
    assert soundfile.info(path).frames == note.size


def test_bad_input_names_the_problem(model_stem, tmp_path):
    audio = np.zeros(1000, np.float32)
    with pytest.raises(SynthError, match=r"instrument='tuba' is not one of the model's instruments \(reed, string\)"):
        transfer(audio, SR, model_stem, instrument="tuba")
    with pytest.raises(SynthError, match="audio contains NaN"):
        transfer(np.full(100, np.nan, np.float32), SR, model_stem)
    with pytest.raises(SynthError, match=r"audio must be a 1-D float array .* \(2, 100\)"):
        transfer(np.zeros((2, 100), np.float32), SR, model_stem)
    with pytest.raises(SynthError, match="sample_rate=0 must be"):
        transfer(audio, 0, model_stem)
    with pytest.raises(SynthError, match=r"pitch_shift_semitones=60 must be within -48\.\.48"):
        transfer(audio, SR, model_stem, pitch_shift_semitones=60)
    with pytest.raises(SynthError, match="metadata file not found"):
        transfer(audio, SR, tmp_path / "missing")
    (tmp_path / "osc.toml").write_text('format_version = 1\n[[chain]]\nplugin = "oscillator"\n')
    with pytest.raises(SynthError, match=r"osc\.toml: the preset has no decoder plugin in its chain \(oscillator\)"):
        transfer_file(tmp_path / "in.wav", tmp_path / "osc.toml", tmp_path / "out.wav")


def test_synth_transfer_shows_its_progress_unless_quiet(model_stem, tmp_path, capsys):
    """pyin is announced (it has no progress of its own) and a bar runs over the decoder's frames;
    --quiet leaves stderr empty. The output is the same either way."""
    from synth.cli import main

    note = render_note(73, 69, 100, 0.8, sample_rate=48000, release_s=0.2)
    soundfile.write(tmp_path / "in.wav", note, 48000, subtype="FLOAT")
    model = str(model_stem.with_suffix(".json"))
    assert main(["transfer", str(tmp_path / "in.wav"), model, "-o", str(tmp_path / "a.wav")]) == 0
    err = capsys.readouterr().err
    assert "transfer: following the pitch of 1.0 s of audio (pyin)..." in err
    assert "decoder:" in err and "synthesis:" in err and "frame" in err
    assert main(["transfer", str(tmp_path / "in.wav"), model, "-o", str(tmp_path / "b.wav"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert np.array_equal(soundfile.read(tmp_path / "a.wav")[0], soundfile.read(tmp_path / "b.wav")[0])
