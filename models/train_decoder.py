"""`synth train decoder`: train the conditioned waveform decoder on rendered instrument notes.

One decoder for many instruments: each instrument of the data set gets a learned timbre vector z
(an embedding table stored with the model), so a preset picks an instrument by name. Training
renders the model's controls with the differentiable synthesiser (models.ddsp_synth) and minimises
the multi-resolution STFT loss against the recording. Checkpoints (safetensors, no pickle) are
written every `checkpoint_every` steps into `checkpoint_dir`; `resume=True` continues from the
newest one. The held-out split is evaluated every `eval_every` steps and at the end.
"""

from __future__ import annotations

import json
import random
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from tqdm import tqdm

from models.data import HOP_SAMPLES, SAMPLE_RATE, NoteExcerpts, dataset_statistics, read_manifest
from models.ddsp_synth import multi_resolution_stft_loss, synthesize
from models.decoder import Decoder, DecoderConfig
from models.model_files import save_model
from synth.errors import SynthError

CHECKPOINT_PREFIX = "step-"


@dataclass
class TrainSettings:
    """steps: optimiser steps; batch_size: excerpts per step; excerpt_frames: frames per excerpt
    (256 samples each at 48 kHz); learning_rate: AdamW's, decayed exponentially to learning_rate *
    final_lr_ratio; latent_dims: size of each instrument's timbre vector; hidden: GRU size."""

    steps: int = 3000
    batch_size: int = 8
    excerpt_frames: int = 96
    learning_rate: float = 2e-3
    final_lr_ratio: float = 0.05
    latent_dims: int = 8
    hidden: int = 192
    harmonics: int = 64
    noise_bands: int = 65
    eval_every: int = 250
    checkpoint_every: int = 250
    seed: int = 0
    device: str = "cpu"
    threads: int = 0  # torch CPU threads (0: torch's default)


def _batches(loader: DataLoader):
    while True:
        yield from loader


def _controls_audio(model: Decoder, batch: dict, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted audio, target audio) of a batch."""
    f0 = batch["f0_hz"].to(device)
    loudness = batch["loudness_db"].to(device)
    z = None
    if model.instrument_embedding is not None:
        z = model.instrument_embedding(batch["instrument"].to(device))[:, None, :].expand(-1, f0.shape[1], -1)
    mel = batch["mel"].to(device) if model.config.mel_bands else None
    controls, _ = model(f0, loudness, z, mel=mel)
    target = batch["audio"].to(device)
    white = torch.rand_like(target) * 2.0 - 1.0
    predicted = synthesize(controls, f0, white, model.config.sample_rate, model.config.hop_samples)
    return predicted, target


def evaluate(model: Decoder, loader: DataLoader, device: str) -> float:
    """Mean multi-resolution STFT loss over a loader (the held-out split)."""
    model.eval()
    losses = []
    with torch.no_grad():
        for batch in loader:
            predicted, target = _controls_audio(model, batch, device)
            losses.append(float(multi_resolution_stft_loss(predicted, target)))
    model.train()
    return sum(losses) / max(len(losses), 1)


def _save_checkpoint(folder: Path, step: int, model: Decoder, optimizer: torch.optim.Optimizer, history: list) -> Path:
    """Weights and optimiser moments as safetensors, counters as JSON; written whole or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    steps = {}
    for index, param in enumerate(_parameters(optimizer)):
        state = optimizer.state.get(param)
        if state:
            tensors[f"optimizer.{index}.exp_avg"] = state["exp_avg"].detach().cpu().contiguous()
            tensors[f"optimizer.{index}.exp_avg_sq"] = state["exp_avg_sq"].detach().cpu().contiguous()
            steps[str(index)] = float(state["step"])
    path = folder / f"{CHECKPOINT_PREFIX}{step:07d}.safetensors"
    temp = path.with_suffix(".partial")
    save_file(tensors, str(temp))
    temp.replace(path)
    meta = folder / f"{CHECKPOINT_PREFIX}{step:07d}.json"
    meta.with_suffix(".partial").write_text(json.dumps({"step": step, "optimizer_steps": steps, "history": history}))
    meta.with_suffix(".partial").replace(meta)
    return path


def _parameters(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The optimiser's parameters in a fixed order (the model's), to name their moments by index."""
    return [p for group in optimizer.param_groups for p in group["params"]]


def _latest_checkpoint(folder: Path) -> Path | None:
    done = sorted(p for p in folder.glob(f"{CHECKPOINT_PREFIX}*.safetensors") if p.with_suffix(".json").exists())
    return done[-1] if done else None


def _load_checkpoint(path: Path, model: Decoder, optimizer: torch.optim.Optimizer) -> tuple[int, list]:
    tensors = load_file(str(path))
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    info = json.loads(path.with_suffix(".json").read_text())
    for index, param in enumerate(_parameters(optimizer)):
        if f"optimizer.{index}.exp_avg" in tensors:
            optimizer.state[param] = {
                "step": torch.tensor(info["optimizer_steps"][str(index)]),
                "exp_avg": tensors[f"optimizer.{index}.exp_avg"].to(param.device),
                "exp_avg_sq": tensors[f"optimizer.{index}.exp_avg_sq"].to(param.device)}
    return int(info["step"]), list(info["history"])


def start_training(seed: int, threads: int, device: str) -> None:
    """Seed torch, Python and numpy, set torch's CPU threads (0: its default), and check that a
    CUDA device asked for exists (SynthError otherwise)."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    if threads:
        torch.set_num_threads(threads)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SynthError(f"--device {device}: no CUDA device is available here")


def train_decoder(data_folder: str | Path, out_stem: str | Path, settings: TrainSettings | None = None,
                  checkpoint_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
                  command: str | None = None) -> dict:
    """Train on the data set in `data_folder` (models.data.build_dataset) and write the model as
    `<out_stem>.safetensors` + `<out_stem>.json`. Returns a summary: steps, train and held-out loss.
    A speech corpus (a folder with metadata.csv, models.speech_data) trains a speech decoder
    instead: one voice (no instrument table, no z) reading the 128 log-mel bands of each frame
    beside f0 and loudness, since speech needs the spectral envelope the notes' pitch and loudness
    cannot give."""
    settings = settings or TrainSettings()
    data_folder, out_stem = Path(data_folder), Path(out_stem)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else out_stem.parent / f"{out_stem.name}.checkpoints"
    start_training(settings.seed, settings.threads, settings.device)
    speech = (data_folder / "metadata.csv").is_file()
    if speech:
        from models.speech_data import SpeechExcerpts, prepare_features, speech_statistics, split_ids

        prepare_features(data_folder, progress=progress)
        train_ids, test_ids = split_ids(data_folder)
        stats = speech_statistics(data_folder, train_ids)
        instruments, latent_dims, mel_bands, notes = [], 0, 128, len(train_ids) + len(test_ids)
    else:
        manifest = read_manifest(data_folder)
        stats = dataset_statistics(data_folder)
        instruments = sorted({note["instrument"] for note in manifest["notes"]})
        latent_dims, mel_bands, notes = settings.latent_dims, 0, len(manifest["notes"])
    config = DecoderConfig(sample_rate=SAMPLE_RATE, hop_samples=HOP_SAMPLES,
                           harmonics=settings.harmonics, noise_bands=settings.noise_bands, hidden=settings.hidden,
                           latent_dims=latent_dims, instruments=instruments, mel_bands=mel_bands,
                           f0_range_hz=tuple(stats["f0_range_hz"]), loudness_range_db=tuple(stats["loudness_range_db"]))
    model = Decoder(config).to(settings.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate)
    decay = settings.final_lr_ratio ** (1.0 / max(settings.steps, 1))
    if speech:
        train_set = SpeechExcerpts(data_folder, train_ids, "train", settings.excerpt_frames, seed=settings.seed)
        test_set = SpeechExcerpts(data_folder, test_ids, "test", settings.excerpt_frames, seed=1234)
    else:
        train_set = NoteExcerpts(data_folder, "train", settings.excerpt_frames, instruments=instruments,
                                 seed=settings.seed)
        test_set = NoteExcerpts(data_folder, "test", settings.excerpt_frames, instruments=instruments, seed=1234)
    train_loader = DataLoader(train_set, batch_size=settings.batch_size, shuffle=True, drop_last=True)
    test_loader = DataLoader(test_set, batch_size=settings.batch_size)
    step, history = 0, []
    if resume and (latest := _latest_checkpoint(checkpoint_dir)) is not None:
        step, history = _load_checkpoint(latest, model, optimizer)
    for group in optimizer.param_groups:
        group["lr"] = settings.learning_rate * decay ** step
    started = time.perf_counter()
    bar = tqdm(total=settings.steps, initial=step, desc="decoder", unit="step", disable=not progress)
    batches = _batches(train_loader)
    running = None
    while step < settings.steps:
        predicted, target = _controls_audio(model, next(batches), settings.device)
        loss = multi_resolution_stft_loss(predicted, target)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        optimizer.step()
        for group in optimizer.param_groups:
            group["lr"] *= decay
        step += 1
        value = float(loss.detach())
        running = value if running is None else 0.98 * running + 0.02 * value
        bar.set_postfix(loss=f"{running:.3f}")
        bar.update()
        if step % settings.eval_every == 0 or step == settings.steps:
            held_out = evaluate(model, test_loader, settings.device)
            history.append({"step": step, "train_loss": running, "held_out_loss": held_out})
            bar.write(f"step {step}: train loss {running:.3f}, held-out loss {held_out:.3f}")
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            _save_checkpoint(checkpoint_dir, step, model, optimizer, history)
    bar.close()
    summary = {"steps": step, "train_loss": running, "held_out_loss": history[-1]["held_out_loss"] if history else None,
               "seconds": time.perf_counter() - started, "history": history}
    save_model(model.cpu(), config, out_stem, {
        "training_command": command or " ".join(shlex.quote(a) for a in sys.argv),
        "data": {"instruments": instruments, "notes": notes, "statistics": stats, "speech": speech},
        "training": {"steps": step, "batch_size": settings.batch_size, "excerpt_frames": settings.excerpt_frames,
                     "held_out_loss": summary["held_out_loss"], "train_loss": running},
    })
    return summary
