"""The timbre VAE: training with the decoder, the model files, the timbre space, the decoder
plugin's z parameters, the /latent addresses and the `synth latent` / `synth encode` commands."""

import json
import subprocess
import tomllib
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from models.data import build_dataset
from models.train_decoder import TrainSettings, train_decoder
from models.train_vae import VaeTrainSettings, train_vae
from models.vae import TimbreEncoder, VaeConfig, kl_per_dimension, load_vae, principal_axes
from synth.control.addresses import MessageTranslator
from synth.dsp.decoder_runtime import load_runtime, read_metadata
from synth.dsp.timbre_space import TimbreSpace, check_vae_metadata, load_timbre_space
from synth.engine import Engine, Slot
from synth.errors import SynthError
from synth.events import NoteOn, ParamChange
from synth.io.soundfont import render_note
from synth.plugins.decoder import NeuralDecoder
from synth.presets import load_preset, parse_preset

SR = 48000
SHIPPED = Path(__file__).resolve().parent.parent / "presets" / "models" / "gm-vae.json"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny real data set (TimGM6mb violin and flute), a decoder trained 2 steps and a timbre
    model trained 4 steps on it (then resumed to 6)."""
    folder = tmp_path_factory.mktemp("vae")
    data = folder / "data"
    build_dataset(data, instruments=["violin", "flute"], soundfont="timgm6mb", pitches=[69, 76], velocities=(100,),
                  seconds=1.0, release_s=0.2, test_fraction=0.5, progress=False)
    train_decoder(data, folder / "dec", TrainSettings(steps=2, batch_size=2, excerpt_frames=32, hidden=32, harmonics=16,
                                                      noise_bands=17, latent_dims=3, eval_every=2, checkpoint_every=2,
                                                      threads=1), progress=False, command="test decoder")
    small = dict(batch_size=2, excerpt_frames=32, hidden=16, warmup_steps=2, eval_every=2, checkpoint_every=2, threads=1)
    first = train_vae(data, folder / "dec", folder / "tv", VaeTrainSettings(steps=4, **small), progress=False,
                      command="test vae")
    resumed = train_vae(data, folder / "dec", folder / "tv", VaeTrainSettings(steps=6, **small), resume=True,
                        progress=False, command="test vae")
    return folder, first, resumed


def test_training_checkpoints_resumes_and_writes_the_timbre_model_and_its_decoder(trained):
    folder, first, resumed = trained
    assert first["steps"] == 4 and [h["step"] for h in resumed["history"]] == [2, 4, 6]
    assert len(resumed["kl_per_dim"]) == 3 and resumed["held_out_stft_encoded"] > 0
    encoder, meta = load_vae(folder / "tv")
    assert encoder.config.latent_dims == 3 and meta["training_command"] == "test vae"
    assert {name: entry["family"] for name, entry in meta["instruments"].items()} == {"flute": "pipes",
                                                                                      "violin": "strings"}
    assert len(meta["posterior_means"]) == len(meta["labels"]) == 2  # one training note per instrument
    assert meta["decoder"] == "tv-decoder.json"
    decoder_meta = read_metadata(folder / "tv-decoder.json")
    assert decoder_meta["config"]["latent_dims"] == 3 and decoder_meta["config"]["instruments"] == []
    assert decoder_meta["timbre_model"] == "tv.json"
    runtime = load_runtime(folder / "tv-decoder", 2)
    assert runtime.latent.shape == (2, 3)


def test_vae_training_under_torchrun_on_two_processes_is_one_process_on_the_same_batch(trained, tmp_path):
    """`torchrun --nproc_per_node 2 ... synth train vae --ddp`: after 4 steps the held-out STFT loss
    with encoded z is a single process's within 2%, and rank 0 alone wrote and reported."""
    from conftest import train_in_one_and_in_two_processes

    folder = trained[0]
    common = ["train", "vae", "--data", str(folder / "data"), "--decoder", str(folder / "dec"), "--steps", "4",
              "--batch-size", "2", "--warmup-steps", "2", "--threads", "1", "--quiet"]
    one, two, printed = train_in_one_and_in_two_processes(common, tmp_path)
    assert printed.count("trained 4 steps") == 1 and two["processes"] == 2
    assert two["held_out_stft_encoded"] == pytest.approx(one["held_out_stft_encoded"], rel=0.02)


def test_the_encoder_pools_only_frames_near_the_loudest():
    torch.manual_seed(0)
    encoder = TimbreEncoder(VaeConfig(latent_dims=4, hidden=32)).eval()
    mel = torch.randn(1, 20, 128)
    quiet = torch.randn(1, 10, 128) - 30.0  # 30 nats (130 dB) down: ignored
    with torch.no_grad():
        mean, log_variance = encoder(mel)
        mean_padded, _ = encoder(torch.cat([mel, quiet], dim=1))
    assert mean.shape == (1, 4) and log_variance.shape == (1, 4)
    torch.testing.assert_close(mean, mean_padded)
    with torch.no_grad():
        louder, _ = encoder(mel + 3.0)  # a level change alone moves nothing: z is spectral shape
    torch.testing.assert_close(mean, louder, atol=1e-5, rtol=1e-5)
    with pytest.raises(SynthError, match=r"mel must be \[batch, frames >= 1, 128\]"):
        encoder(torch.zeros(1, 0, 128))


def test_the_numpy_encoder_gives_the_torch_encoders_posterior(trained):
    """synth.dsp.timbre_encoder (what `synth encode` runs, without torch) and models.vae.TimbreEncoder
    agree on the shipped model and on a freshly trained one, quiet frames and all."""
    from models.data import log_mel
    from synth.dsp.timbre_encoder import load_timbre_encoder

    note = render_note(73, 72, 100, 0.8, sample_rate=SR, release_s=0.3)
    mel = log_mel(note)
    for stem in (SHIPPED, trained[0] / "tv"):
        torch_encoder, _ = load_vae(stem)
        with torch.no_grad():
            expected = [t[0].numpy() for t in torch_encoder(torch.from_numpy(mel)[None])]
        runtime = load_timbre_encoder(stem)
        for ours, theirs in zip(runtime.encode(mel), expected):
            np.testing.assert_allclose(ours, theirs, atol=1e-4)
        np.testing.assert_array_equal(runtime.encode_audio(note), runtime.encode(mel))


@pytest.mark.parametrize("change, message", [
    (lambda w, m: w.pop("head.bias"), r"weight 'head\.bias' is missing"),
    (lambda w, m: w.update({"frame2.weight": np.zeros((8, 8), np.float32)}),
     r"weight 'frame2\.weight' has shape \[8, 8\], the config asks for \[128, 128\]"),
    (lambda w, m: w.update({"extra": np.zeros(1, np.float32)}), r"unexpected weight 'extra'"),
    (lambda w, m: m["config"].update(hidden=0), r"key 'config\.hidden'=0 must be an integer in 8\.\.2048"),
    (lambda w, m: m["config"].update(width=3), r"key 'config\.width' is not a timbre encoder setting"),
])
def test_the_numpy_encoder_names_a_weight_or_setting_that_does_not_fit(change, message):
    from synth.dsp.decoder_runtime import read_weights_numpy
    from synth.dsp.timbre_encoder import TimbreEncoderRuntime

    weights, meta = read_weights_numpy(SHIPPED.with_suffix(".safetensors")), read_metadata(SHIPPED)
    change(weights, meta)
    with pytest.raises(SynthError, match=message):
        TimbreEncoderRuntime(weights, meta, "gm-vae.safetensors")


def test_synth_encode_runs_without_torch(tmp_path):
    note = render_note(73, 60, 100, 0.5, sample_rate=SR, release_s=0.1)
    soundfile.write(tmp_path / "note.wav", note, SR)
    script = ("import sys; from synth.latent import encode_file; lines = encode_file(sys.argv[1]); "
              "print(lines[0]); print(sorted(m for m in ('torch', 'torchaudio') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "note.wav")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("z = ") and done.stdout.splitlines()[1] == "[]"


def test_kl_per_dimension_and_principal_axes():
    mean = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    log_variance = torch.tensor([[0.0, 0.0], [0.0, float(np.log(4.0))]])
    # KL of N(mu, s^2) from N(0, 1) = (mu^2 + s^2 - 1 - ln s^2) / 2
    expected = torch.tensor([0.25, 0.5 * (4.0 - 1.0 - np.log(4.0)) / 2])
    torch.testing.assert_close(kl_per_dimension(mean, log_variance), expected.float())
    rng = np.random.default_rng(3)
    points = rng.standard_normal((500, 3)) * [3.0, 1.0, 0.2] + [1.0, 2.0, 3.0]
    centre, axes, std = principal_axes(points)
    np.testing.assert_allclose(axes @ axes.T, np.eye(3), atol=1e-9)
    assert abs(abs(axes[0, 0]) - 1) < 0.01 and std[0] == pytest.approx(3.0, rel=0.1)
    np.testing.assert_allclose(centre, points.mean(axis=0))


def _space_meta(**changes):
    meta = {"format_version": 1, "kind": "synth.timbre_vae", "config": {"latent_dims": 2}, "decoder": "d.json",
            "instruments": {"a": {"family": "x", "centroid": [-1.0, 0.0]}, "b": {"family": "y", "centroid": [1.0, 0.5]}},
            "mean": [0.0, 0.25], "axes": [[1.0, 0.0], [0.0, 1.0]], "axis_std": [1.0, 0.5],
            "posterior_means": [[-1.0, 0.0], [1.0, 0.5]], "labels": ["a", "b"]}
    meta.update(changes)
    return meta


def test_timbre_space_positions_mixes_and_ranges(tmp_path):
    space = TimbreSpace(_space_meta(), tmp_path / "t.json")
    np.testing.assert_allclose(space.from_xy(0.5, 0.5), [0.0, 0.25])
    np.testing.assert_allclose(space.from_xy(0.7, 0.5), [0.2 * 2 * 2.5, 0.25])
    assert space.to_xy(space.from_xy(0.6, 0.3)) == pytest.approx((0.6, 0.3))
    np.testing.assert_allclose(space.morph("a", "b", 0.0), [-1.0, 0.0])
    np.testing.assert_allclose(space.morph("a", "b", 0.25), [-0.5, 0.125])
    np.testing.assert_allclose(space.clamp([10.0, -1.0]), [6.0, -1.0])  # the z parameters' range
    assert [name for name, _ in space.nearest([0.9, 0.4], 2)] == ["b", "a"]
    assert space.decoder_path == tmp_path / "d.json"
    with pytest.raises(SynthError, match=r"no instrument 'c' \(known: a, b\)"):
        space.morph("a", "c", 0.5)


@pytest.mark.parametrize("changes, message", [
    ({"kind": "synth.decoder"}, "key 'kind'='synth.decoder', expected 'synth.timbre_vae'"),
    ({"axes": [[1.0, 0.0]]}, "key 'axes' must be 2 lists of 2 numbers"),
    ({"labels": ["a", "zz"]}, r"key 'labels\[1\]'='zz' is not one of the instruments"),
    ({"decoder": "../outside.json"}, "must be a path relative to the JSON's folder"),
    ({"mean": [0.0, float("nan")]}, "key 'mean' must be a list of 2 finite numbers"),
])
def test_bad_timbre_metadata_names_the_key(changes, message):
    with pytest.raises(SynthError, match=message):
        check_vae_metadata(_space_meta(**changes), "t.json")


def test_the_decoder_plays_z_from_its_parameters_and_glides_between_values(trained):
    folder, _, _ = trained
    space = load_timbre_space(folder / "tv")
    plugin = NeuralDecoder(vae=folder / "tv.json", instrument="violin", voice_limit=2)
    assert [plugin.get_param(f"z{i}") for i in (1, 2, 3)] == pytest.approx(space.centroid("violin").tolist())
    assert plugin.get_param("z4") == 0.0  # beyond the model's dimensions: unused
    engine = Engine([Slot("timbre", plugin)], SR, 256, 1)
    engine.prepare()
    engine.schedule(NoteOn(0, 69, 100))
    out = np.zeros((256, 1), np.float32)
    for _ in range(8):
        engine.process(out)
    before = plugin.runtime.latent[0].copy()
    target = space.centroid("flute")
    for i, value in enumerate(target):
        engine.schedule(ParamChange(0, "timbre", f"z{i + 1}", float(value)))
    engine.process(out)
    after_one_frame = plugin.runtime.latent[0].copy()
    for _ in range(10):
        engine.process(out)
    np.testing.assert_allclose(plugin.runtime.latent[0], target, atol=1e-6)
    moved = np.abs(after_one_frame - before)
    assert np.all(moved < np.abs(target - before) - 1e-6) and np.any(moved > 0)  # part way: smoothed
    with pytest.raises(SynthError, match=r"settings\.instrument: 'tuba' is not one of the timbre model's"):
        NeuralDecoder(vae=folder / "tv.json", instrument="tuba")


def test_latent_addresses_become_z_parameter_changes(trained):
    folder, _, _ = trained
    space = load_timbre_space(folder / "tv")
    engine = Engine([Slot("timbre", NeuralDecoder(vae=folder / "tv.json", voice_limit=2))], SR, 256, 1)
    live = MessageTranslator(engine, strict=False)
    events = live.translate("/latent", [0.1, -0.2, 0.3], 5)
    assert [(e.time_samples, e.slot_id, e.name) for e in events] == [(5, "timbre", "z1"), (5, "timbre", "z2"),
                                                                     (5, "timbre", "z3")]
    assert [e.value for e in events] == pytest.approx([0.1, -0.2, 0.3])
    assert [e.value for e in live.translate("/latent/xy", [0.5, 0.5], 0)] == pytest.approx(space.mean.tolist())
    assert [e.value for e in live.translate("/latent/morph", ["flute", "violin", 1.0], 0)] == \
        pytest.approx(space.centroid("violin").tolist())
    for address, args, message in (("/latent", [0.1], "expected 3 arguments, got 1"),
                                   ("/latent/morph", ["flute", "oboe", 0.5], "no instrument 'oboe'"),
                                   ("/latent/xy", [0.5], "expected 2 arguments")):
        with pytest.raises(SynthError, match=message):
            live.translate(address, args, 0)
    with pytest.raises(SynthError, match=r"/latent/xy: expected x and y in 0\.\.1"):
        MessageTranslator(engine, strict=True).translate("/latent/xy", [1.5, 0.5], 0)
    plain = Engine([Slot("osc", load_preset("warm-pad").build_engine().slots[0].plugin)], SR, 256, 1)
    with pytest.raises(SynthError, match="no decoder in this preset has a timbre model"):
        MessageTranslator(plain).translate("/latent/xy", [0.5, 0.5], 0)


def test_the_shipped_timbre_model_uses_its_latent_and_plays():
    space = load_timbre_space(SHIPPED)
    meta = json.loads(SHIPPED.read_text())
    assert len(space.instruments) == 31 and len(set(space.families.values())) >= 8
    assert min(meta["kl_per_dim"]) > 0.1, meta["kl_per_dim"]  # no collapsed dimension
    assert meta["training"]["held_out_stft_mean_z"] > meta["training"]["held_out_stft_encoded"]
    engine = load_preset("timbre-space").build_engine(SR, 256, 2)
    engine.prepare()
    engine.schedule(NoteOn(0, 64, 100))
    out = np.zeros((SR // 2, 2), np.float32)
    for start in range(0, out.shape[0], 256):
        engine.process(out[start:start + 256])
    assert 0.01 < np.max(np.abs(out)) < 1.0


def test_synth_latent_draws_the_space_and_synth_encode_prints_z(tmp_path):
    plot = tmp_path / "space.png"
    done = subprocess.run([sys.executable, "-m", "synth", "latent", str(plot)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 20000
    note = render_note(73, 72, 100, 1.0, sample_rate=44100, release_s=0.2)
    soundfile.write(tmp_path / "flute.wav", note, 44100)
    done = subprocess.run([sys.executable, "-m", "synth", "encode", str(tmp_path / "flute.wav")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("z = ") and len(lines[0].split()) == 2 + 8
    assert lines[2].startswith("/latent/xy ") and lines[3].startswith("nearest instruments: ")
    done = subprocess.run([sys.executable, "-m", "synth", "latent", str(tmp_path / "x.jpg")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "name it .png" in done.stderr


def test_offline_transfer_with_a_timbre_model_preset_uses_its_z(tmp_path):
    """`synth transfer IN.wav timbre-space`: the decoder of the timbre model plays the preset's z (the
    violin's centroid); --instrument picks another centroid, and the two differ."""
    from synth.transfer import preset_latent, transfer_file

    note = render_note(73, 69, 100, 0.6, sample_rate=SR, release_s=0.1)
    soundfile.write(tmp_path / "in.wav", note, SR)
    space = load_timbre_space(SHIPPED)
    np.testing.assert_allclose(preset_latent("timbre-space"), space.centroid("violin"), rtol=1e-6)
    violin, _ = transfer_file(tmp_path / "in.wav", "timbre-space", tmp_path / "violin.wav")
    flute, _ = transfer_file(tmp_path / "in.wav", "timbre-space", tmp_path / "flute.wav", instrument="flute")
    a, b = soundfile.read(violin)[0], soundfile.read(flute)[0]
    assert a.shape == b.shape == note.shape and np.max(np.abs(a)) > 0.01
    assert np.sqrt(np.mean((a - b) ** 2)) > 0.1 * np.sqrt(np.mean(a ** 2))


def test_a_decoder_with_a_timbre_model_allocates_and_compiles_nothing_while_playing():
    import numba

    from conftest import assert_process_allocates_nothing
    from synth.dsp import decoder_runtime, decoder_voices, filtered_noise, mix, noise, oscbank

    kernels = [obj for m in (decoder_runtime, decoder_voices, filtered_noise, mix, noise, oscbank)
               for obj in vars(m).values() if isinstance(obj, numba.core.registry.CPUDispatcher)]
    engine = load_preset("timbre-space").build_engine(SR, 256, 2)
    engine.prepare()
    compiled = {kernel: len(kernel.signatures) for kernel in kernels}
    for i, note in enumerate((60, 64, 67)):
        engine.schedule(NoteOn(i * 100, note, 100))
        engine.schedule(ParamChange(i * 700, "timbre", "z1", -1.0 + i))
    out = np.zeros((256, 2), np.float32)
    for _ in range(20):
        engine.process(out)
    assert_process_allocates_nothing(engine, out, 100)
    assert {kernel: len(kernel.signatures) for kernel in kernels} == compiled


@pytest.mark.parametrize("files, message", [
    ('{ vae = "models/missing.json" }', r"p\.toml: chain\[0\]\.files\.vae: no such file: .*missing\.json"),
    ('{ vae = "models/gm-decoder.json" }', r"p\.toml: chain\[0\]: .*gm-decoder\.json: key 'kind'='synth\.decoder', "
                                           r"expected 'synth\.timbre_vae'"),
])
def test_a_bad_timbre_model_file_names_the_preset_and_the_problem(files, message, tmp_path):
    preset = SHIPPED.parent.parent / "p.toml"  # beside the shipped presets: their models/ folder is found
    text = f'format_version = 1\n[[chain]]\nplugin = "decoder"\nfiles = {files}\n'
    with pytest.raises(SynthError, match=message):
        parse_preset(tomllib.loads(text), str(preset)).build_engine()


def test_bad_encode_and_latent_inputs_give_one_clear_error(tmp_path):
    (tmp_path / "noise.wav").write_bytes(b"RIFF not really a wav file")
    done = subprocess.run([sys.executable, "-m", "synth", "encode", str(tmp_path / "noise.wav")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "noise.wav" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "synth", "latent", str(tmp_path / "x.png"), "--model",
                           str(tmp_path / "none.json")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "none.json: metadata file not found" in done.stderr
