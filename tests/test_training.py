"""models.training, the loop every `synth train` command runs: checkpoints, resume, interrupts."""

import json
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from torch import nn

from models.train_decoder import TrainSettings, train_decoder
from models.train_text_to_mel import TtsTrainSettings, train_text_to_mel
from models.train_vae import VaeTrainSettings, train_vae
from models.training import TrainingSettings, deferred_interrupts, save_checkpoint, training_loop
from synth.cli import main
from synth.errors import SynthError


SMALL_DECODER = ["--batch-size", "2", "--excerpt-frames", "32", "--hidden", "32", "--latent-dims", "2",
                 "--threads", "1", "--quiet"]


def _toy_run(folder, steps, stop_at=None, resume_from=None):
    """A linear model fitted to fixed data by training_loop; KeyboardInterrupt in the loss of step
    `stop_at` (counting from 0). Returns the model and the history."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    inputs = torch.linspace(-1, 1, 24).reshape(8, 3)
    targets = inputs.sum(dim=1, keepdim=True)

    def loss(step):
        if step == stop_at:
            raise KeyboardInterrupt
        return ((model(inputs) - targets) ** 2).mean(), {}

    def evaluate(step):
        return {"step": step, "weights": model.weight.detach().tolist()}, f"step {step}"

    settings = TrainingSettings(steps=steps, eval_every=2, checkpoint_every=100)
    history = training_loop(model, optimizer, settings, folder, loss, evaluate, resume_from=resume_from,
                            description="toy", progress=False, clip_norm=1.0, lr_scale=lambda step: 0.9 ** step)
    return model, history


def test_an_interrupted_run_resumed_ends_exactly_where_an_uninterrupted_one_does(tmp_path, capsys):
    whole, whole_history = _toy_run(tmp_path / "whole", 6)
    with pytest.raises(KeyboardInterrupt):
        _toy_run(tmp_path / "parts", 6, stop_at=3)
    checkpoint = tmp_path / "parts" / "step-0000003.safetensors"
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == ["step-0000003.json", "step-0000003.safetensors"]
    err = capsys.readouterr().err
    assert f"training stopped at step 3 of 6: checkpoint {checkpoint} written" in err and "--resume" in err
    resumed, history = _toy_run(tmp_path / "parts", 6, resume_from=checkpoint)
    assert history == whole_history and [entry["step"] for entry in history] == [2, 4, 6]
    assert torch.equal(resumed.weight, whole.weight) and torch.equal(resumed.bias, whole.bias)


def test_an_interrupt_before_the_first_step_writes_nothing(tmp_path, capsys):
    with pytest.raises(KeyboardInterrupt):
        _toy_run(tmp_path / "none", 6, stop_at=0)
    assert not (tmp_path / "none").exists()
    assert "training stopped before its first step: no checkpoint written" in capsys.readouterr().err


def test_ctrl_c_during_the_weight_update_is_handled_after_it(tmp_path, monkeypatch):
    """The checkpoint is of whole steps: its step is the optimiser's own step count."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    step = torch.optim.AdamW.step
    calls = []

    def interrupted_step(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C as the update starts
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", interrupted_step)
    try:
        with pytest.raises(KeyboardInterrupt):
            _toy_run(tmp_path / "run", 6)
    finally:
        signal.signal(signal.SIGINT, previous)
    info = json.loads((tmp_path / "run" / "step-0000003.json").read_text())
    assert info["step"] == 3 and set(info["optimizer_steps"].values()) == {3.0}


def test_deferred_interrupts_raise_after_the_block():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    done = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with deferred_interrupts():
                signal.raise_signal(signal.SIGINT)
                done.append("the rest of the block")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert done == ["the rest of the block"]
    assert signal.getsignal(signal.SIGINT) is previous


def test_ctrl_c_while_training_the_decoder_leaves_a_checkpoint_to_resume_to_the_same_final_step(
        tiny_data, tmp_path, monkeypatch):
    import models.train_decoder

    controls_audio = models.train_decoder._controls_audio
    training_batches = []

    def interrupted(model, batch, device):
        if model.training:
            training_batches.append(1)
            if len(training_batches) == 4:
                raise KeyboardInterrupt  # in the forward pass of the fourth step
        return controls_audio(model, batch, device)

    settings = dict(batch_size=2, excerpt_frames=32, hidden=32, harmonics=16, noise_bands=17, latent_dims=2,
                    eval_every=2, checkpoint_every=100, threads=1)
    monkeypatch.setattr(models.train_decoder, "_controls_audio", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_decoder(tiny_data, tmp_path / "dec", TrainSettings(steps=6, **settings), progress=False)
    monkeypatch.undo()
    checkpoints = tmp_path / "dec.checkpoints"
    assert sorted(p.name for p in checkpoints.glob("*.safetensors")) == ["step-0000003.safetensors"]
    assert not (tmp_path / "dec.json").exists()
    resumed = train_decoder(tiny_data, tmp_path / "dec", TrainSettings(steps=6, **settings), resume=True,
                            progress=False)
    assert resumed["steps"] == 6 and [h["step"] for h in resumed["history"]] == [2, 4, 6]
    assert json.loads((tmp_path / "dec.json").read_text())["training"]["steps"] == 6


def test_checkpoint_every_sets_the_steps_and_resuming_past_the_steps_is_one_sentence(tiny_data, tmp_path, capsys):
    out = str(tmp_path / "dec")
    command = ["train", "decoder", "--data", str(tiny_data), "-o", out, *SMALL_DECODER]
    assert main([*command, "--steps", "5", "--checkpoint-every", "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "dec.checkpoints").glob("*.safetensors")) == [
        "step-0000002.safetensors", "step-0000004.safetensors", "step-0000005.safetensors"]
    capsys.readouterr()
    assert main([*command, "--steps", "4", "--resume"]) == 2
    err = capsys.readouterr().err
    assert (f"synth: error: --resume: the newest checkpoint, {tmp_path / 'dec.checkpoints' / 'step-0000005.safetensors'}, "
            "is at step 5, and --steps asks for 4 in all, so there is nothing left to train; give --steps above 5 "
            "to train on") in err
    assert "Traceback" not in err
    assert main([*command, "--steps", "5", "--resume"]) == 2
    assert "is at step 5, and --steps asks for 5 in all" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["decoder", "vae", "text-to-mel"])
def test_checkpoint_every_is_range_checked(model, capsys):
    inputs = {"decoder": ["--data", "d"], "vae": ["--data", "d", "--decoder", "m"], "text-to-mel": ["--corpus", "c"]}
    assert main(["train", model, *inputs[model], "-o", "m", "--checkpoint-every", "0"]) == 2
    assert "argument --checkpoint-every: expected an integer in 1..10000000 steps, got '0'" in capsys.readouterr().err


@pytest.mark.parametrize("train", [
    lambda out: train_decoder(out.parent / "no data", out, TrainSettings(steps=4), resume=True, progress=False),
    lambda out: train_vae(out.parent / "no data", out.parent / "no decoder", out, VaeTrainSettings(steps=4),
                          resume=True, progress=False),
    lambda out: train_text_to_mel(out.parent / "no corpus", out, TtsTrainSettings(steps=4), resume=True,
                                  progress=False),
], ids=["decoder", "vae", "text-to-mel"])
def test_every_trainer_refuses_to_resume_at_or_past_its_steps_before_loading_anything(train, tmp_path):
    model = nn.Linear(2, 1)
    save_checkpoint(tmp_path / "out.checkpoints", 6, model, torch.optim.AdamW(model.parameters()), [])
    with pytest.raises(SynthError, match=r"is at step 6, and --steps asks for 4 in all.*give --steps above 6"):
        train(tmp_path / "out")


def test_sigterm_during_synth_train_checkpoints_exits_143_and_resume_continues(tiny_data, tmp_path):
    out = tmp_path / "dec"
    command = [sys.executable, "-m", "synth", "train", "decoder", "--data", str(tiny_data), "-o", str(out),
               *SMALL_DECODER, "--checkpoint-every", "2"]
    running = subprocess.Popen([*command, "--steps", "100000"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "dec.checkpoints" / "step-0000002.json").exists():
            assert running.poll() is None and time.monotonic() < deadline, running.communicate()[1]
            time.sleep(0.05)
        running.send_signal(signal.SIGTERM)
        _, err = running.communicate(timeout=60)
    finally:
        running.kill()
    assert running.returncode == 143, err
    stopped = re.search(r"training stopped at step (\d+) of 100000: checkpoint (\S+) written; run the same command "
                        r"with --resume to continue from it", err)
    assert stopped and "Traceback" not in err, err
    step = int(stopped.group(1))
    assert stopped.group(2) == str(tmp_path / "dec.checkpoints" / f"step-{step:07d}.safetensors")
    assert (tmp_path / "dec.checkpoints" / f"step-{step:07d}.json").exists() and not out.with_suffix(".json").exists()
    assert main([*command[3:], "--steps", str(step + 1), "--resume"]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["training"]["steps"] == step + 1
