"""The conditioned waveform decoder: streaming equals whole sequences; the torch synthesiser equals
the realtime kernels (oscillator bank, filtered noise); the numpy runtime equals the torch model and
allocates nothing; model files round-trip and every metadata problem names the file and key; the
multi-resolution STFT loss. Random weights throughout (no training needed)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from numba import njit
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy

from conftest import traced_allocation_bytes
from models.ddsp_synth import filtered_noise, harmonic_synth, multi_resolution_stft_loss, synthesize
from models.decoder import Decoder, DecoderConfig
from models.model_files import export_runtime_weights, load_model, save_model
from synth.dsp.decoder_runtime import DecoderRuntime, expected_weight_shapes, load_runtime
from synth.dsp.filtered_noise import filtered_noise_block, make_noise_state, noise_delay_samples
from synth.dsp.oscbank import make_workspace, render_partials
from synth.errors import SynthError

SR = 48000
HOP = 256
ROOT = Path(__file__).resolve().parents[1]
SMALL = {"hidden": 16, "harmonics": 8, "noise_bands": 5, "latent_dims": 3, "instruments": ["flute", "violin"],
         "f0_range_hz": (50.0, 1500.0), "loudness_range_db": (-70.0, -5.0)}


def conditioning(batch: int, frames: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gliding f0 (Hz, 60 .. 1600, some unvoiced 0 Hz frames) and loudness (dB) [batch, frames]."""
    g = torch.Generator().manual_seed(seed)
    f0 = 300.0 * torch.exp(torch.cumsum(0.08 * torch.randn(batch, frames, generator=g), dim=1)).clamp(0.2, 5.3)
    f0[:, 3] = 0.0
    loudness = -40.0 + 15.0 * torch.randn(batch, frames, generator=g)
    return f0.float(), loudness.float()


def model_with(seed: int = 0, **overrides) -> Decoder:
    torch.manual_seed(seed)
    return Decoder(DecoderConfig(**{**SMALL, **overrides})).eval()


# ----------------------------------------------------------------------------- the torch model

def test_weight_names_and_shapes_are_the_runtime_layout():
    for overrides in ({}, {"latent_dims": 0, "instruments": []}, {"hidden": 24, "harmonics": 64, "noise_bands": 65}):
        model = model_with(**overrides)
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert shapes == expected_weight_shapes(model.config.to_dict())


@pytest.mark.parametrize("chunk", [1, 3, 7])
def test_streaming_in_chunks_equals_the_whole_sequence(chunk):
    """State carried between calls: chunks of 1, 3, 7 frames give the whole sequence's controls
    within 1e-5 (measured ~3e-7: float32 rounding of differently batched products)."""
    model = model_with(hidden=64)
    f0, loudness = conditioning(2, 40)
    z = torch.randn(2, 1, 3).expand(-1, 40, -1)
    with torch.no_grad():
        whole, whole_state = model(f0, loudness, z)
        state, parts = None, []
        for t0 in range(0, 40, chunk):
            controls, state = model(f0[:, t0:t0 + chunk], loudness[:, t0:t0 + chunk], z[:, t0:t0 + chunk], state)
            parts.append(controls)
    for key in ("amplitude", "harmonics", "noise"):
        streamed = torch.cat([p[key] for p in parts], dim=1)
        assert streamed.shape == whole[key].shape
        assert torch.max(torch.abs(streamed - whole[key])) < 1e-5, key
    assert torch.max(torch.abs(state - whole_state)) < 1e-5


def test_controls_are_in_range_and_nyquist_harmonics_are_silent():
    model = model_with(harmonics=64)
    f0 = torch.tensor([[0.0, 100.0, 374.9, 375.0, 1000.0, 30000.0]])
    with torch.no_grad():
        controls, _ = model(f0, torch.full_like(f0, -20.0), torch.zeros(1, 6, 3))
    harmonics = controls["harmonics"][0]
    numbers = torch.arange(1, 65)
    for t in range(6):
        below = numbers * f0[0, t] < SR / 2
        assert torch.all(harmonics[t][~below] == 0.0)
        assert abs(float(harmonics[t].sum()) - (1.0 if below.any() else 0.0)) < 1e-5
    assert int((harmonics[3] > 0).sum()) == 63  # 64 * 375 Hz = 24 kHz is at Nyquist: masked
    assert torch.all((controls["amplitude"] > 0) & (controls["amplitude"] <= 2.0))
    assert torch.all((controls["noise"] > 0) & (controls["noise"] <= 2.0))


def test_instrument_latents_and_bad_inputs():
    model = model_with()
    assert model.instrument_latent("violin").shape == (3,)
    f0, loudness = conditioning(1, 5)
    with pytest.raises(SynthError, match=r"z must be \[batch, frames, 3\], got None"):
        model(f0, loudness)
    with pytest.raises(SynthError, match=r"instrument='oboe' is not in the model"):
        model.instrument_latent("oboe")
    with pytest.raises(SynthError, match=r"loudness_db \[1, 4\] must both be \[batch, frames\]"):
        model(f0, loudness[:, :4], torch.zeros(1, 5, 3))
    with pytest.raises(SynthError, match=r"key 'config.hidden'=0 must be an integer >= 1"):
        Decoder(DecoderConfig(hidden=0))


def test_gradients_reach_every_weight_through_the_synth_and_loss():
    model = model_with()
    f0, loudness = conditioning(2, 12)
    z = model.instrument_embedding(torch.tensor([0, 1]))[:, None, :].expand(-1, 12, -1)
    controls, _ = model(f0, loudness, z)
    white = torch.rand(2, 12 * HOP, generator=torch.Generator().manual_seed(1)) * 2.0 - 1.0
    audio = synthesize(controls, f0, white, SR, HOP)
    target = torch.sin(torch.arange(12 * HOP) * 0.05).repeat(2, 1) * 0.1
    loss = multi_resolution_stft_loss(audio, target)
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert float(param.grad.abs().max()) > 0.0, name


# ----------------------------------------------------------------------------- synth: torch == numba

def test_harmonic_synth_equals_the_oscillator_bank_frame_by_frame():
    """3 s of f0 gliding 200 Hz .. 2.5 kHz and back with vibrato (harmonics cross Nyquist both
    ways), random distributions and amplitudes: torch harmonic_synth == render_partials driven
    one hop per frame, within 1e-4 max abs (measured ~5e-7; the signal peaks near 1)."""
    frames, count = 3 * SR // HOP, 64
    t = np.arange(frames) / (SR / HOP)
    f0 = (200.0 * 12.5 ** np.sin(np.pi * t / 3.0) * 2.0 ** (0.3 * np.sin(2 * np.pi * 5.0 * t) / 12)).astype(np.float32)
    rng = np.random.default_rng(3)
    amplitude = (0.5 + 0.4 * np.sin(2 * np.pi * 0.7 * t)).astype(np.float32)
    harmonics = rng.dirichlet(np.ones(count) * 0.5, size=frames).astype(np.float32)
    ours = harmonic_synth(torch.from_numpy(f0)[None], torch.from_numpy(amplitude)[None],
                          torch.from_numpy(harmonics)[None], SR, HOP)[0].numpy()

    numbers = np.arange(1, count + 1, dtype=np.float32)
    workspace, phase = make_workspace(count), np.zeros(count)
    freq_start, amp_start = f0[0] * numbers, np.zeros(count, np.float32)  # frame -1: silent, f0 of frame 0
    reference = np.zeros(frames * HOP, np.float32)
    for k in range(frames):
        freq_end = f0[k] * numbers
        amp_end = amplitude[k] * harmonics[k]
        render_partials(reference[k * HOP:], HOP, freq_start, freq_end, amp_start, amp_end, phase, SR, workspace)
        freq_start, amp_start = freq_end, amp_end
    assert (f0[:, None] * numbers > 0.5 * SR).any() and (f0[:, None] * numbers < 0.45 * SR).any()
    assert np.max(np.abs(reference)) > 0.3
    assert np.max(np.abs(ours - reference)) < 1e-4


def test_harmonic_synth_starts_from_silence_and_keeps_phase_across_frames():
    """One harmonic at a constant 375 Hz: the output is amplitude ramp * sin(2 pi 375 n / sr)."""
    frames = 4
    f0 = torch.full((1, frames), 375.0)
    harmonics = torch.zeros(1, frames, 3)
    harmonics[..., 0] = 1.0
    out = harmonic_synth(f0, torch.full((1, frames), 0.5), harmonics, SR, HOP)[0].double().numpy()
    n = np.arange(frames * HOP)
    ramp = np.minimum(n / HOP, 1.0) * 0.5
    assert np.max(np.abs(out - ramp * np.sin(2 * np.pi * 375.0 * n / SR))) < 1e-6


def noise_reference(mags: np.ndarray, white: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    """filtered_noise_block driven in callback blocks of `sizes` (cycled), each split where a
    frame ends, frame k's magnitudes on block k."""
    frames, bands = mags.shape
    scratch, state = make_noise_state(bands)
    out = np.zeros(frames * HOP, np.float32)
    pos, i = 0, 0
    while pos < out.shape[0]:
        end = min(pos + sizes[i % len(sizes)], out.shape[0])
        while pos < end:
            frame = pos // HOP
            piece = min(end, (frame + 1) * HOP) - pos
            filtered_noise_block(out[pos:], piece, white[pos:], mags[frame], scratch, state)
            pos += piece
        i += 1
    return out


@pytest.mark.parametrize("sizes", [(HOP,), (1, 63, 64, 65, 257)])
def test_filtered_noise_torch_equals_numba_on_the_same_white_noise(sizes):
    """80 frames of 65 random band magnitudes (up to 2, as exp_sigmoid gives), the same white
    noise: float32 torch (FFT, overlap-add) == the numba kernel (direct, tails carried) within
    1e-5 max abs, in hops and in odd callback blocks (measured ~3e-7)."""
    frames, bands = 80, 65
    rng = np.random.default_rng(7)
    mags = (2.0 / (1.0 + np.exp(-2.0 * rng.standard_normal((frames, bands)))) ** np.log(10.0)).astype(np.float32)
    white = rng.uniform(-1.0, 1.0, frames * HOP).astype(np.float32)
    ours = filtered_noise(torch.from_numpy(mags)[None], torch.from_numpy(white)[None], HOP)[0].numpy()
    reference = noise_reference(mags, white, sizes)
    assert np.max(np.abs(reference)) > 0.5
    assert np.max(np.abs(ours - reference)) < 1e-5


def test_filtered_noise_delay_and_band_shape():
    """Flat magnitudes 1 make a pure delay of NB - 1 samples; magnitudes 1 below 6 kHz and 0 above
    keep 99.9 % of the energy below 7.5 kHz."""
    bands = 65
    impulse = torch.zeros(1, 2 * HOP)
    impulse[0, 10] = 1.0
    out = filtered_noise(torch.ones(1, 2, bands), impulse, HOP)[0].numpy()
    delay = noise_delay_samples(bands)
    assert delay == 64 and abs(out[10 + delay] - 1.0) < 1e-6
    assert np.max(np.abs(np.delete(out, 10 + delay))) < 1e-6

    frames = 100
    mags = np.zeros((frames, bands), np.float32)
    mags[:, :17] = 1.0  # band b is at b * 375 Hz: 0 .. 6 kHz
    white = np.random.default_rng(0).uniform(-1.0, 1.0, frames * HOP).astype(np.float32)
    spectrum = np.abs(np.fft.rfft(noise_reference(mags, white, (HOP,)))) ** 2
    freqs = np.fft.rfftfreq(frames * HOP, 1.0 / SR)
    assert spectrum[freqs < 7500.0].sum() / spectrum.sum() > 0.999


def test_filtered_noise_block_rejects_bad_arrays():
    scratch, state = make_noise_state(65)
    out, white, mags = np.zeros(64, np.float32), np.zeros(64, np.float32), np.ones(65, np.float32)
    with pytest.raises(SynthError, match=r"overlap_state has 10 values, expected 127 for 65 bands"):
        filtered_noise_block(out, 64, white, mags, scratch, np.zeros(10))
    with pytest.raises(SynthError, match=r"magnitudes must be a contiguous 1-D float32 array, got float64"):
        filtered_noise_block(out, 64, white, mags.astype(np.float64), scratch, state)
    with pytest.raises(SynthError, match=r"n=65 samples must be within 0..64"):
        filtered_noise_block(out, 65, white, mags, scratch, state)
    with pytest.raises(SynthError, match=r"noise_bands=1 must be an integer >= 2"):
        make_noise_state(1)


# ----------------------------------------------------------------------------- the numpy runtime

def test_runtime_equals_torch_streaming_with_voices_coming_and_going():
    """4 voices, 30 frames, each voice active on its own random frames: the runtime's controls
    equal the torch Decoder run frame by frame on that voice's active frames (state carried)
    within 1e-4 (measured ~3e-7); inactive voices output zeros and keep their state."""
    model = model_with(hidden=48, harmonics=64, noise_bands=65)
    voices, frames = 4, 30
    runtime = DecoderRuntime(export_runtime_weights(model), model.config.to_dict(), voices)
    names = ["flute", "violin", "violin", "flute"]
    for v, name in enumerate(names):
        runtime.set_voice_instrument(v, name)
    f0, loudness = conditioning(voices, frames, seed=5)
    active = np.random.default_rng(2).random((frames, voices)) < 0.7
    active[0, :] = True
    runtime.reset_voice(2)
    states = [None] * voices
    worst = 0.0
    for t in range(frames):
        runtime.step(f0[:, t].numpy().copy(), loudness[:, t].numpy().copy(), active=active[t].copy())
        for v in range(voices):
            if not active[t, v]:
                assert runtime.amplitude[v] == 0.0 and not runtime.harmonics[v].any() and not runtime.noise[v].any()
                continue
            z = model.instrument_latent(names[v]).detach()[None, None, :]
            with torch.no_grad():
                controls, states[v] = model(f0[v:v + 1, t:t + 1], loudness[v:v + 1, t:t + 1], z, states[v])
            worst = max(worst, abs(float(controls["amplitude"][0, 0]) - float(runtime.amplitude[v])),
                        float(np.max(np.abs(controls["harmonics"][0, 0].numpy() - runtime.harmonics[v]))),
                        float(np.max(np.abs(controls["noise"][0, 0].numpy() - runtime.noise[v]))))
            assert np.max(np.abs(states[v][0, 0].numpy() - runtime.state[v])) < 1e-4
    assert worst < 1e-4


def test_a_speech_decoder_reads_mel_frames_the_same_in_torch_and_the_runtime():
    """mel_bands = 128 (the speech decoder): 2 voices, 12 frames of log-mel beside f0 and loudness;
    the runtime's controls equal torch's within 1e-4, and the mel matters."""
    model = model_with(hidden=32, harmonics=16, noise_bands=9, latent_dims=0, instruments=[], mel_bands=128)
    runtime = DecoderRuntime(export_runtime_weights(model), model.config.to_dict(), 2)
    f0, loudness = conditioning(2, 12, seed=3)
    mel = torch.from_numpy(np.random.default_rng(4).normal(-5.0, 3.0, (2, 12, 128)).astype(np.float32))
    with torch.no_grad():
        controls, _ = model(f0, loudness, mel=mel)
        flat, _ = model(f0, loudness, mel=torch.full_like(mel, -5.0))
    worst = 0.0
    for t in range(12):
        runtime.mel[:] = mel[:, t].numpy()
        runtime.step(f0[:, t].numpy().copy(), loudness[:, t].numpy().copy())
        worst = max(worst, float(np.max(np.abs(controls["harmonics"][:, t].numpy() - runtime.harmonics))),
                    float(np.max(np.abs(controls["noise"][:, t].numpy() - runtime.noise))))
    assert worst < 1e-4
    assert float((controls["harmonics"] - flat["harmonics"]).abs().max()) > 1e-2
    with pytest.raises(SynthError, match=r"mel must be \[batch, frames, 128\], got None"):
        model(f0, loudness)


@njit
def _takes_five_arrays(a, b, c, d, e):
    pass


def test_runtime_step_allocates_nothing_and_its_time_for_8_voices():
    """Default sizes (hidden 192, 64 harmonics, 65 bands, z of 8), 8 voices: after warm-up, 200
    steps leave traced memory where it was, with a peak under 512 bytes (Python's transient
    argument objects; the smallest output array alone is 8 * 65 * 4 = 2080 bytes), and numba's
    allocator sees only its per-argument records. The time of one step is printed (not asserted)."""
    torch.manual_seed(0)
    config = DecoderConfig(latent_dims=8, instruments=["a", "b"])
    runtime = DecoderRuntime(export_runtime_weights(Decoder(config)), config.to_dict(), 8)
    runtime.warm_up()
    f0 = np.linspace(80.0, 1200.0, 8).astype(np.float32)
    loudness = np.linspace(-50.0, -10.0, 8).astype(np.float32)
    z = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    active = np.array([True, False] * 4)
    runtime.step(f0, loudness, z, active)
    from numba.core.runtime import _nrt_python, rtsys
    _nrt_python.memsys_enable_stats()
    nrt_before = rtsys.get_allocation_stats()

    def step_both():
        runtime.step(f0, loudness, z, active)
        runtime.step(f0, loudness)

    kept, peak = traced_allocation_bytes(step_both, 200, trials=3)
    nrt_after = rtsys.get_allocation_stats()
    assert kept == 0
    assert peak < 512
    # numba wraps each array handed in from Python in a small record (counted by its allocator, as
    # the empty kernel shows); a step hands 38 arrays to its kernels, so any array made inside a
    # kernel would show as more than 38 per step
    _takes_five_arrays(f0, f0, f0, f0, f0)
    empty_before = rtsys.get_allocation_stats().alloc
    _takes_five_arrays(f0, f0, f0, f0, f0)
    assert rtsys.get_allocation_stats().alloc - empty_before == 5
    assert nrt_after.alloc - nrt_before.alloc == 3 * 400 * 38
    assert nrt_after.free - nrt_before.free == 3 * 400 * 38
    repeats = 300
    started = time.perf_counter()
    for _ in range(repeats):
        runtime.step(f0, loudness, z)
    per_step_us = (time.perf_counter() - started) / repeats * 1e6
    print(f"\nDecoderRuntime.step, 8 voices, hidden 192, H 64, NB 65: {per_step_us:.1f} us "
          f"({per_step_us / (HOP / SR * 1e6) * 100:.2f} % of a {HOP}-sample hop at {SR} Hz)")


def test_runtime_rejects_bad_step_arguments():
    model = model_with()
    runtime = DecoderRuntime(export_runtime_weights(model), model.config.to_dict(), 2)
    good = np.zeros(2, np.float32)
    with pytest.raises(SynthError, match=r"f0_hz must be a contiguous float32 array of shape \(2,\), got float64"):
        runtime.step(np.zeros(2), good)
    with pytest.raises(SynthError, match=r"z must be a contiguous float32 array of shape \(2, 3\)"):
        runtime.step(good, good, np.zeros((2, 4), np.float32))
    with pytest.raises(SynthError, match=r"active must be .* bool"):
        runtime.step(good, good, active=np.ones(2, np.float32))
    with pytest.raises(SynthError, match=r"voices=0 must be an integer >= 1"):
        DecoderRuntime(export_runtime_weights(model), model.config.to_dict(), 0)


# ----------------------------------------------------------------------------- model files

@pytest.fixture
def saved(tmp_path):
    model = model_with()
    save_model(model, model.config, tmp_path / "m", {"training_command": "synth train decoder --test", "data": {"n": 1}})
    return model, tmp_path / "m"


def test_save_load_round_trip_for_torch_and_runtime(saved):
    model, stem = saved
    meta = json.loads(stem.with_suffix(".json").read_text())
    assert meta["format_version"] == 1 and meta["kind"] == "synth.decoder"
    assert meta["config"] == model.config.to_dict() and meta["frame_rate_hz"] == 187.5
    assert meta["torch_version"] == torch.__version__ and meta["training_command"] == "synth train decoder --test"
    assert meta["data"] == {"n": 1} and meta["created_utc"].startswith("20")
    assert sorted(p.name for p in stem.parent.iterdir()) == ["m.json", "m.safetensors"]  # no temporaries left
    loaded, config, loaded_meta = load_model(stem.with_suffix(".json"))
    assert config == model.config and loaded_meta == meta
    f0, loudness = conditioning(2, 10)
    z = torch.randn(2, 10, 3)
    with torch.no_grad():
        a, _ = model(f0, loudness, z)
        b, _ = loaded(f0, loudness, z)
    for key in a:
        assert torch.equal(a[key], b[key])
    runtime = load_runtime(stem, voices=2)
    assert runtime.metadata == meta and runtime.instruments == ["flute", "violin"]
    runtime.step(f0[:, 0].numpy().copy(), loudness[:, 0].numpy().copy(), z[:, 0].numpy().copy())
    assert np.max(np.abs(runtime.harmonics - a["harmonics"][:, 0].numpy())) < 1e-5


def test_runtime_loader_needs_no_torch(saved):
    _, stem = saved
    code = ("import sys; from synth.dsp.decoder_runtime import load_runtime; "
            f"r = load_runtime({str(stem)!r}, 3); r.warm_up(); "
            "assert 'torch' not in sys.modules, 'torch was imported'; print(r.harmonics.shape)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(3, 8)"


def _edit_json(change):
    def edit(stem: Path):
        path = stem.with_suffix(".json")
        meta = json.loads(path.read_text())
        change(meta)
        path.write_text(json.dumps(meta))
    return edit


def _edit_weights(change):
    def edit(stem: Path):
        path = stem.with_suffix(".safetensors")
        weights = load_numpy(str(path))
        change(weights)
        save_numpy(weights, str(path))
    return edit


def _pickle_renamed(stem: Path):
    torch.save(model_with().state_dict(), str(stem.with_suffix(".safetensors")))


PROBLEMS = [
    ("missing json", lambda stem: stem.with_suffix(".json").unlink(), r"m\.json: metadata file not found"),
    ("not json", lambda stem: stem.with_suffix(".json").write_text("{"), r"m\.json: not readable as JSON"),
    ("wrong version", _edit_json(lambda m: m.update(format_version=2)),
     r"m\.json: key 'format_version'=2 is not supported \(expected 1\)"),
    ("wrong kind", _edit_json(lambda m: m.update(kind="synth.vae")),
     r"m\.json: key 'kind'='synth\.vae', expected 'synth\.decoder'"),
    ("missing kind", _edit_json(lambda m: m.pop("kind")), r"m\.json: key 'kind' is missing"),
    ("missing config key", _edit_json(lambda m: m["config"].pop("hidden")), r"m\.json: key 'config\.hidden' is missing"),
    ("bad range", _edit_json(lambda m: m["config"].update(f0_range_hz=[900, 100])),
     r"m\.json: key 'config\.f0_range_hz'=\[900, 100\] must be \[low, high\] with 0 < low < high"),
    ("config says other sizes", _edit_json(lambda m: m["config"].update(harmonics=16)),
     r"m\.safetensors: weight 'head\.weight' has shape \[14, 16\], but the config asks for \[22, 16\]"),
    ("weight shape", _edit_weights(lambda w: w.update({"gru.bias_hh_l0": np.zeros(47, np.float32)})),
     r"m\.safetensors: weight 'gru\.bias_hh_l0' has shape \[47\], but the config asks for \[48\]"),
    ("missing weight", _edit_weights(lambda w: w.pop("out2_norm.bias")),
     r"m\.safetensors: weight 'out2_norm\.bias' is missing \(expected shape \[16\]\)"),
    ("unexpected weight", _edit_weights(lambda w: w.update({"extra.weight": np.zeros(2, np.float32)})),
     r"m\.safetensors: unexpected weight 'extra\.weight'"),
    ("pickle renamed", _pickle_renamed, r"m\.safetensors: not a safetensors file"),
    ("missing weights", lambda stem: stem.with_suffix(".safetensors").unlink(), r"m\.safetensors: weights file not found"),
]


@pytest.mark.parametrize("label, spoil, message", PROBLEMS, ids=[p[0] for p in PROBLEMS])
def test_every_metadata_problem_names_the_file_and_key(saved, label, spoil, message):
    _, stem = saved
    spoil(stem)
    with pytest.raises(SynthError, match=message):
        load_model(stem)
    with pytest.raises(SynthError, match=message):
        load_runtime(stem, voices=1)


def test_save_refuses_reserved_metadata_keys(tmp_path):
    model = model_with()
    with pytest.raises(SynthError, match=r"extra_metadata may not set 'kind'"):
        save_model(model, model.config, tmp_path / "m", {"kind": "other"})
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------- the loss

def test_mr_stft_loss_is_zero_for_identical_signals_and_grows_with_distortion():
    """On a real violin note (TimGM6mb, fluidsynth): 0 against itself; added noise and harder
    clipping each raise the loss step by step."""
    from synth.io.soundfont import GM_PROGRAMS, find_soundfont, render_note
    try:
        find_soundfont("timgm6mb")
    except SynthError as error:
        pytest.skip(f"{error}: this test renders a real soundfont note")
    note = torch.from_numpy(render_note(GM_PROGRAMS["violin"], 69, 100, 0.5, sample_rate=SR, release_s=0.1))
    assert float(note.abs().max()) > 0.05
    assert float(multi_resolution_stft_loss(note, note)) == 0.0
    noise = torch.randn(note.shape, generator=torch.Generator().manual_seed(0)) * float(note.std())
    noisy = [float(multi_resolution_stft_loss(note + level * noise, note)) for level in (0.01, 0.03, 0.1, 0.3, 1.0)]
    assert all(a < b for a, b in itertools.pairwise(noisy)) and noisy[0] > 0.0
    peak = float(note.abs().max())
    clipped = [float(multi_resolution_stft_loss(note.clamp(-c * peak, c * peak), note)) for c in (0.9, 0.6, 0.3, 0.1)]
    assert all(a < b for a, b in itertools.pairwise(clipped)) and clipped[0] > 0.0
    with pytest.raises(SynthError, match=r"pred \[100\] and target \[99\] must be the same"):
        multi_resolution_stft_loss(torch.zeros(100), torch.zeros(99))
