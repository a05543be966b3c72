"""Training the decoder end to end on a tiny real data set: checkpoints, resume, the model file."""

import json

import pytest

from models.model_files import load_model
from models.train_decoder import TrainSettings, train_decoder
from synth.dsp.decoder_runtime import load_runtime
from synth.errors import SynthError


SMALL = dict(batch_size=2, excerpt_frames=32, hidden=32, harmonics=16, noise_bands=17, latent_dims=2,
             eval_every=2, checkpoint_every=2, threads=1)


def test_training_writes_checkpoints_resumes_and_saves_a_loadable_model(tiny_data, tmp_path):
    out = tmp_path / "dec"
    first = train_decoder(tiny_data, out, TrainSettings(steps=4, **SMALL), progress=False, command="test run")
    checkpoints = sorted((tmp_path / "dec.checkpoints").glob("step-*.safetensors"))
    assert [p.name for p in checkpoints] == ["step-0000002.safetensors", "step-0000004.safetensors"]
    assert first["steps"] == 4 and len(first["history"]) == 2
    resumed = train_decoder(tiny_data, out, TrainSettings(steps=6, **SMALL), resume=True, progress=False)
    assert resumed["steps"] == 6
    assert [h["step"] for h in resumed["history"]] == [2, 4, 6]  # continued, not restarted
    model, config, metadata = load_model(out)
    assert config.instruments == ["flute", "violin"] and config.harmonics == 16
    assert metadata["training"]["steps"] == 6 and metadata["training_command"]
    assert metadata["data"]["statistics"]["f0_range_hz"][0] > 0
    runtime = load_runtime(out, voices=2)
    assert runtime.harmonics.shape == (2, 16)
    assert json.loads(out.with_suffix(".json").read_text())["kind"] == "synth.decoder"


def test_a_missing_data_set_and_an_absent_gpu_are_clear_errors(tmp_path, tiny_data):
    with pytest.raises(SynthError, match="nothing: no such data set folder"):
        train_decoder(tmp_path / "nothing", tmp_path / "dec", TrainSettings(steps=1, **SMALL), progress=False)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(SynthError, match="no CUDA device is available"):
            train_decoder(tiny_data, tmp_path / "dec", TrainSettings(steps=1, device="cuda", **SMALL), progress=False)


def test_two_processes_under_torchrun_train_as_one_does_on_the_same_global_batch(tiny_data, tmp_path):
    """`torchrun --nproc_per_node 2 ... synth train decoder --ddp`: each process trains on half of
    every batch and the gradients are averaged; after 6 steps the held-out loss is the single
    process's to within 2% (the loss's spectral-convergence term pools the batch, so halves differ
    slightly), only rank 0 reports and writes, and the model records 2 processes."""
    import subprocess
    import sys

    from conftest import train_in_one_and_in_two_processes

    common = ["train", "decoder", "--data", str(tiny_data), "--steps", "6", "--batch-size", "2", "--excerpt-frames",
              "32", "--hidden", "32", "--latent-dims", "2", "--threads", "1", "--quiet"]
    one, two, printed = train_in_one_and_in_two_processes(common, tmp_path)
    assert printed.count("trained 6 steps") == 1
    assert two["processes"] == 2 and one["processes"] == 1
    assert two["held_out_loss"] == pytest.approx(one["held_out_loss"], rel=0.02)  # 0.2% apart here
    refused = subprocess.run([sys.executable, "-m", "synth", *common, "-o", str(tmp_path / "x"), "--ddp"],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "start the command with torchrun" in refused.stderr
