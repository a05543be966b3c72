"""`synth train vae`: the timbre encoder, trained jointly with the decoder it conditions.

Start: a trained decoder (`--decoder`, its instrument table is dropped: z now comes from the
encoder) and a fresh encoder. Each step encodes an excerpt's log-mel frames to q(z|x), samples z
(reparameterised), holds it over the excerpt, decodes f0 + loudness + z, renders the controls with
the differentiable synthesiser and scores the multi-resolution STFT loss against the recording.
Loss = STFT loss + beta(step) * sum over dimensions of max(KL_d, free_bits), beta rising linearly
from 0 over `warmup_steps` (KL warm-up) and each dimension's KL (batch mean) free up to
`free_bits` nats, so that the latent is used rather than collapsed. The decoder learns at a tenth
of the encoder's rate. Checkpoints, --resume, interrupts and the loop: models.training.

Written: `<out>.safetensors/.json` (the timbre model, models.vae) and `<out>-decoder.*` (the
decoder, latent_dims = the VAE's, no instrument table). The JSON stores every training note's
posterior mean, each instrument's centroid and family, the principal axes, and the KL per dimension.
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from models.data import INSTRUMENTS, NoteExcerpts, _load_note, _split_entries, read_manifest
from models.ddsp_synth import multi_resolution_stft_loss, synthesize
from models.decoder import Decoder, DecoderConfig
from models.model_files import load_model, save_model
from models.training import (Distributed, TrainingSettings, checkpoint_to_resume, endless, smoothed,
                             start_distributed, start_training,
                             training_loop)
from models.vae import TimbreEncoder, VaeConfig, kl_per_dimension, principal_axes, save_vae
from synth.errors import SynthError


@dataclass
class VaeTrainSettings(TrainingSettings):
    """models.training's settings (learning_rate: the encoder's; the decoder's is decoder_lr_ratio
    times it), and: excerpt_frames; beta: the KL weight after warm-up; warmup_steps; free_bits:
    nats per dimension that cost nothing; hidden: the encoder's size. The latent's size is the
    starting decoder's."""

    steps: int = 1200
    eval_every: int = 200
    checkpoint_every: int = 200
    excerpt_frames: int = 96
    decoder_lr_ratio: float = 0.1
    beta: float = 0.05
    warmup_steps: int = 400
    free_bits: float = 0.5
    hidden: int = 128


class _Joint(nn.Module):
    """Encoder and decoder together, one module to checkpoint."""

    def __init__(self, encoder: TimbreEncoder, decoder: Decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder


def _reconstruct(joint: _Joint, batch: dict, device: str, z_mode: str = "sample",
                 fixed_z: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(predicted audio, target audio, posterior mean, log variance) of a batch. z_mode: "sample"
    (reparameterised), "mean" (the posterior mean) or "fixed" (fixed_z [D] for every excerpt)."""
    f0 = batch["f0_hz"].to(device)
    loudness = batch["loudness_db"].to(device)
    mean, log_variance = joint.encoder(batch["mel"].to(device))
    if z_mode == "sample":
        z = mean + torch.randn_like(mean) * (0.5 * log_variance).exp()
    elif z_mode == "mean":
        z = mean
    else:
        z = fixed_z.to(device)[None].expand_as(mean)
    controls, _ = joint.decoder(f0, loudness, z[:, None, :].expand(-1, f0.shape[1], -1))
    target = batch["audio"].to(device)
    white = torch.rand_like(target) * 2.0 - 1.0
    config = joint.decoder.config
    return synthesize(controls, f0, white, config.sample_rate, config.hop_samples), target, mean, log_variance


def evaluate_vae(joint: _Joint, loader: DataLoader, device: str, fixed_z: torch.Tensor | None = None) -> float:
    """Mean STFT loss over a loader with z = each excerpt's posterior mean, or fixed_z for all."""
    joint.eval()
    losses = []
    with torch.no_grad():
        for batch in loader:
            predicted, target, _, _ = _reconstruct(joint, batch, device, "mean" if fixed_z is None else "fixed", fixed_z)
            losses.append(float(multi_resolution_stft_loss(predicted, target)))
    joint.train()
    return sum(losses) / max(len(losses), 1)


def note_posteriors(encoder: TimbreEncoder, folder: Path, split: str) -> tuple[np.ndarray, list[str], list[str]]:
    """(posterior means [N, D], instrument names, families) of every note of a split, each note
    encoded whole (its sounding frames)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    means, names, families = [], [], []
    encoder.eval()
    with torch.no_grad():
        for entry in _split_entries(manifest, split, folder):
            note = _load_note(folder, entry)
            mel = torch.from_numpy(note["mel"][entry["start_frame"]:entry["stop_frame"]])[None]
            means.append(encoder(mel)[0][0].numpy())
            names.append(entry["instrument"])
            families.append(entry.get("family") or INSTRUMENTS.get(entry["instrument"], (0, "user"))[1])
    return np.stack(means), names, families


def train_vae(data_folder, decoder_stem, out_stem, settings: VaeTrainSettings | None = None,
              resume: bool = False, progress: bool = True, command: str | None = None, ddp: bool = False) -> dict:
    """Train the encoder with the decoder at `decoder_stem` on the data set in `data_folder`; write
    the timbre model at `out_stem` and its decoder at `<out_stem>-decoder`. Returns a summary:
    steps, seconds, held-out loss with encoded z and with the training mean z, KL per dimension
    (on a process of a distributed run, ddp, other than rank 0: steps, seconds and rank only)."""
    settings = settings or VaeTrainSettings()
    data_folder, out_stem = Path(data_folder), Path(out_stem)
    checkpoint_dir = out_stem.parent / f"{out_stem.name}.checkpoints"
    distributed = start_distributed(settings.device, settings.batch_size) if ddp else Distributed()
    start_training(settings)
    resume_from = checkpoint_to_resume(checkpoint_dir, settings.steps) if resume else None
    start_decoder, start_config, _ = load_model(decoder_stem)
    if start_config.latent_dims < 2:
        raise SynthError(f"{decoder_stem}: the decoder takes latent_dims={start_config.latent_dims}; a timbre "
                         "latent needs 2..16")
    config = DecoderConfig.from_dict({**start_config.to_dict(), "instruments": []})
    decoder = Decoder(config)
    decoder.load_state_dict({k: v for k, v in start_decoder.state_dict().items()
                             if not k.startswith("instrument_embedding.")})
    encoder = TimbreEncoder(VaeConfig(latent_dims=config.latent_dims, hidden=settings.hidden))
    joint = _Joint(encoder, decoder).to(settings.device).train()
    optimizer = torch.optim.AdamW([
        {"params": encoder.parameters(), "lr": settings.learning_rate},
        {"params": decoder.parameters(), "lr": settings.learning_rate * settings.decoder_lr_ratio}])
    instruments = sorted({n["instrument"] for n in read_manifest(data_folder)["notes"]})
    train_set = NoteExcerpts(data_folder, "train", settings.excerpt_frames, instruments=instruments, seed=settings.seed)
    test_set = NoteExcerpts(data_folder, "test", settings.excerpt_frames, instruments=instruments, seed=1234)
    batches = endless(DataLoader(train_set, batch_size=settings.batch_size, shuffle=True, drop_last=True))
    test_loader = DataLoader(test_set, batch_size=settings.batch_size)
    running, kl_running = None, torch.zeros(config.latent_dims)

    def step_loss(step: int) -> tuple[torch.Tensor, dict[str, str]]:
        nonlocal running, kl_running
        predicted, target, mean, log_variance = _reconstruct(joint, distributed.share(next(batches)), settings.device)
        reconstruction = multi_resolution_stft_loss(predicted, target)
        kl = kl_per_dimension(mean, log_variance)
        beta = settings.beta * min(1.0, step / max(settings.warmup_steps, 1))
        running = smoothed(running, float(reconstruction.detach()))
        kl_running = 0.98 * kl_running + 0.02 * kl.detach().cpu()
        loss = reconstruction + beta * torch.clamp(kl, min=settings.free_bits).sum()
        return loss, {"stft": f"{running:.3f}", "kl": f"{float(kl_running.sum()):.2f}"}

    def held_out(step: int) -> tuple[dict, str]:
        stft = evaluate_vae(joint, test_loader, settings.device)
        return ({"step": step, "train_stft": running, "held_out_stft": stft,
                 "kl_per_dim": [round(float(x), 4) for x in kl_running]},
                f"step {step}: train STFT {running:.3f}, held-out {stft:.3f}, "
                f"KL/dim {' '.join(f'{float(x):.2f}' for x in kl_running)}")

    started = time.perf_counter()
    history = training_loop(joint, optimizer, settings, checkpoint_dir, step_loss, held_out, resume_from=resume_from,
                            description="vae", progress=progress, clip_norm=3.0, distributed=distributed)
    if not distributed.writes:
        distributed.barrier()  # rank 0 is writing the models
        return {"steps": settings.steps, "seconds": time.perf_counter() - started, "rank": distributed.rank}
    joint = joint.cpu().eval()
    means, names, families = note_posteriors(encoder, data_folder, "train")
    mean_z = torch.from_numpy(means.mean(axis=0).astype(np.float32))
    held_out_encoded = evaluate_vae(joint, test_loader, "cpu")
    held_out_mean_z = evaluate_vae(joint, test_loader, "cpu", mean_z)
    centre, axes, std = principal_axes(means)
    family_of = dict(zip(names, families))
    space = {
        "decoder": f"{out_stem.name}-decoder.json",
        "instruments": {name: {"family": family_of[name],
                               "centroid": means[[i for i, n in enumerate(names) if n == name]].mean(axis=0).tolist()}
                        for name in sorted(set(names))},
        "mean": centre.tolist(), "axes": axes.tolist(), "axis_std": std.tolist(),
        "posterior_means": means.round(5).tolist(), "labels": names,
        "kl_per_dim": [float(x) for x in kl_running],
    }
    training_command = command or " ".join(shlex.quote(a) for a in sys.argv)
    summary = {"steps": settings.steps, "seconds": time.perf_counter() - started,
               "held_out_stft_encoded": held_out_encoded,
               "held_out_stft_mean_z": held_out_mean_z, "kl_per_dim": space["kl_per_dim"], "history": history,
               "rank": 0}
    save_model(decoder, config, out_stem.with_name(f"{out_stem.name}-decoder"), {
        "training_command": training_command, "timbre_model": f"{out_stem.name}.json",
        "training": {"steps": settings.steps, "started_from": str(decoder_stem), "held_out_loss": held_out_encoded}})
    save_vae(encoder, out_stem, space, {
        "training_command": training_command,
        "training": {key: summary[key] for key in ("steps", "held_out_stft_encoded", "held_out_stft_mean_z")}
        | {"beta": settings.beta, "warmup_steps": settings.warmup_steps, "free_bits": settings.free_bits,
           "batch_size": settings.batch_size, "excerpt_frames": settings.excerpt_frames, "history": history,
           "processes": distributed.world}})
    distributed.barrier()
    return summary
