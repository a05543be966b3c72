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
