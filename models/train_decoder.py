"""`synth train decoder`: train the conditioned waveform decoder on rendered instrument notes.

One decoder for many instruments: each instrument of the data set gets a learned timbre vector z
(an embedding table stored with the model), so a preset picks an instrument by name. Training
renders the model's controls with the differentiable synthesiser (models.ddsp_synth) and minimises
the multi-resolution STFT loss against the recording. Checkpoints, --resume, interrupts and the
loop: models.training (checkpoints every `checkpoint_every` steps into `checkpoint_dir`, the
held-out split evaluated every `eval_every` steps and at the end).
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from models.data import HOP_SAMPLES, SAMPLE_RATE, NoteExcerpts, dataset_statistics, read_manifest
from models.ddsp_synth import multi_resolution_stft_loss, synthesize
from models.decoder import Decoder, DecoderConfig
from models.model_files import save_model
from models.training import (Distributed, TrainingSettings, checkpoint_to_resume, endless, smoothed,
                             start_distributed, start_training, training_loop)


@dataclass
class TrainSettings(TrainingSettings):
    """models.training's settings, and: excerpt_frames: frames per excerpt (256 samples each at
    48 kHz); the learning rate decays exponentially to learning_rate * final_lr_ratio;
    latent_dims: size of each instrument's timbre vector; hidden: GRU size; harmonics and
    noise_bands: the synthesiser's."""

    steps: int = 3000
    learning_rate: float = 2e-3
    excerpt_frames: int = 96
    final_lr_ratio: float = 0.05
    latent_dims: int = 8
    hidden: int = 192
    harmonics: int = 64
    noise_bands: int = 65


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


def train_decoder(data_folder: str | Path, out_stem: str | Path, settings: TrainSettings | None = None,
                  checkpoint_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
                  command: str | None = None, ddp: bool = False) -> dict:
    """Train on the data set in `data_folder` (models.data.build_dataset) and write the model as
    `<out_stem>.safetensors` + `<out_stem>.json`. Returns a summary: steps, train and held-out loss.
    A speech corpus (a folder with metadata.csv, models.speech_data) trains a speech decoder
    instead: one voice (no instrument table, no z) reading the 128 log-mel bands of each frame
    beside f0 and loudness, since speech needs the spectral envelope the notes' pitch and loudness
    cannot give. ddp: one of the processes torchrun started (models.training.start_distributed);
    each trains on its share of every batch, and rank 0 writes the checkpoints and the model."""
    settings = settings or TrainSettings()
    data_folder, out_stem = Path(data_folder), Path(out_stem)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else out_stem.parent / f"{out_stem.name}.checkpoints"
    distributed = start_distributed(settings.device, settings.batch_size) if ddp else Distributed()
    start_training(settings)
    resume_from = checkpoint_to_resume(checkpoint_dir, settings.steps) if resume else None
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
    batches = endless(DataLoader(train_set, batch_size=settings.batch_size, shuffle=True, drop_last=True))
    test_loader = DataLoader(test_set, batch_size=settings.batch_size)
    running = None

    def step_loss(_step: int) -> tuple[torch.Tensor, dict[str, str]]:
        nonlocal running
        loss = multi_resolution_stft_loss(*_controls_audio(model, distributed.share(next(batches)), settings.device))
        running = smoothed(running, float(loss.detach()))
        return loss, {"loss": f"{running:.3f}"}

    def held_out(step: int) -> tuple[dict, str]:
        loss = evaluate(model, test_loader, settings.device)
        return ({"step": step, "train_loss": running, "held_out_loss": loss},
                f"step {step}: train loss {running:.3f}, held-out loss {loss:.3f}")

    started = time.perf_counter()
    history = training_loop(model, optimizer, settings, checkpoint_dir, step_loss, held_out, resume_from=resume_from,
                            description="decoder", progress=progress, clip_norm=3.0,
                            lr_scale=lambda step: decay ** step, distributed=distributed)
    summary = {"steps": settings.steps, "train_loss": running, "held_out_loss": history[-1]["held_out_loss"],
               "seconds": time.perf_counter() - started, "history": history, "rank": distributed.rank}
    if not distributed.writes:
        distributed.barrier()  # rank 0 is writing the model
        return summary
    save_model(model.cpu(), config, out_stem, {
        "training_command": command or " ".join(shlex.quote(a) for a in sys.argv),
        "data": {"instruments": instruments, "notes": notes, "statistics": stats, "speech": speech},
        "training": {"steps": settings.steps, "batch_size": settings.batch_size,
                     "excerpt_frames": settings.excerpt_frames, "held_out_loss": summary["held_out_loss"],
                     "train_loss": running, "processes": distributed.world},
    })
    distributed.barrier()
    return summary
