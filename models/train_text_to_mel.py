"""`synth train text-to-mel`: align a speech corpus, then train the text-to-mel model on it.

1. Features (models.speech_data.prepare_features) for every utterance not yet done.
2. The vocabulary of the training utterances' tokens, and the feature statistics. Stress marks
   are joined to their phonemes (models.text.join_stress), then, with `stress` (the default), split
   off again as a level per phoneme (models.text.split_stress) that the model embeds beside it, so
   the vocabulary holds each phoneme once; without, the joined tokens are the vocabulary.
3. Alignment: the aligner (models.alignment) trains for `align_steps` steps on the training
   utterances, each step on the monotonic alignment it finds itself (an even spread for the first
   tenth), then aligns every utterance. Durations are written to `<corpus>/durations.npz` (id ->
   frames per token) together with the final alignment loss.
4. Text-to-mel (models.text_to_mel), teacher-forced with those durations and the per-token mean
   log f0 (voiced frames) and loudness: L1 on the standardised mel, squared error on log(1 +
   duration), token pitch and energy, frame log f0 (voiced frames) and loudness, and the voicing
   cross-entropy. Each step's utterances are drawn with a generator seeded by (seed, step), so
   that a resumed run draws what the uninterrupted one would have. Checkpoints, --resume,
   interrupts, the held-out loss every `eval_every` steps and the loop: models.training; GPU with
   --device cuda.
"""

from __future__ import annotations

import random
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from models.alignment import Aligner, align, even_durations, frame_log_likelihood
from models.speech_data import load_features, prepare_features, split_ids
from models.text import Vocabulary, model_tokens
from models.text_to_mel import TextToMel, TextToMelConfig, save_text_to_mel
from models.training import (Distributed, TrainingSettings, checkpoint_to_resume, smoothed, start_distributed,
                             start_training, training_loop)
from synth.errors import SynthError

WARMUP_STEPS = 200  # the learning rate rises linearly over these, for the attention blocks


@dataclass
class TtsTrainSettings(TrainingSettings):
    """models.training's settings (batch_size: utterances per step), and: align_steps: the
    aligner's steps before the model trains; width: the model's; token_mode: "auto",
    "phonemes" or "characters" (models.speech_data.prepare_features); stress: embed each
    phoneme's stress level (models.text_to_mel.TextToMelConfig.stress)."""

    steps: int = 1500
    align_steps: int = 600
    width: int = 128
    token_mode: str = "auto"
    stress: bool = True


class Utterance:
    """One utterance in memory: ids (int64 [N]), stress levels (int64 [N]), standardised mel
    [T, 128], log f0 [T], voiced [T], loudness [T] (standardised), and once aligned its durations [N]."""

    def __init__(self, uid: str, arrays: dict, vocabulary: Vocabulary, stats: dict, stress: bool):
        self.uid = uid
        self.tokens, levels = model_tokens(list(arrays["tokens"]), stress)
        self.ids = vocabulary.encode(self.tokens)
        self.stress = np.asarray(levels, np.int64)
        frames = arrays["mel"].shape[0]
        self.mel = ((arrays["mel"] - stats["mel_mean"]) / stats["mel_std"]).astype(np.float32)
        f0 = np.maximum(arrays["f0_hz"][:frames], 1.0)
        self.log_f0 = ((np.log(f0) - stats["log_f0_mean"]) / stats["log_f0_std"]).astype(np.float32)
        self.voiced = arrays["voiced"][:frames].astype(bool)
        self.loudness = ((arrays["loudness_db"][:frames] - stats["loudness_mean_db"])
                         / stats["loudness_std_db"]).astype(np.float32)
        self.durations = None

    def token_targets(self) -> tuple[np.ndarray, np.ndarray]:
        """Per token: the mean standardised log f0 of its voiced frames (0 where none is voiced) and
        its mean standardised loudness."""
        edges = np.concatenate([[0], np.cumsum(self.durations)])
        f0, loud = np.zeros(len(self.ids), np.float32), np.zeros(len(self.ids), np.float32)
        for i in range(len(self.ids)):
            a, b = edges[i], edges[i + 1]
            voiced = self.voiced[a:b]
            f0[i] = self.log_f0[a:b][voiced].mean() if voiced.any() else 0.0
            loud[i] = self.loudness[a:b].mean()
        return f0, loud


def corpus_statistics(folder: Path, uids: list[str]) -> dict:
    """Feature statistics of the given utterances: log f0 over voiced frames, loudness, mel per band."""
    log_f0, loud, mel_sum, mel_square, frames = [], [], 0.0, 0.0, 0
    for uid in uids:
        arrays = load_features(folder, uid)
        voiced = arrays["voiced"].astype(bool) & (arrays["f0_hz"] > 0)
        log_f0.append(np.log(arrays["f0_hz"][voiced]))
        loud.append(arrays["loudness_db"])
        mel = arrays["mel"].astype(np.float64)
        mel_sum = mel_sum + mel.sum(axis=0)
        mel_square = mel_square + (mel ** 2).sum(axis=0)
        frames += mel.shape[0]
    log_f0, loud = np.concatenate(log_f0), np.concatenate(loud)
    mel_mean = mel_sum / frames
    mel_std = np.sqrt(np.maximum(mel_square / frames - mel_mean ** 2, 1e-4))
    return {"log_f0_mean": float(log_f0.mean()), "log_f0_std": float(log_f0.std()),
            "loudness_mean_db": float(loud.mean()), "loudness_std_db": float(loud.std()),
            "mel_mean": mel_mean.astype(np.float32).tolist(), "mel_std": mel_std.astype(np.float32).tolist(),
            "frames": frames}


def _stats_arrays(stats: dict) -> dict:
    return {k: (np.asarray(v, np.float32) if isinstance(v, list) else v) for k, v in stats.items()}


def train_aligner(utterances: list[Utterance], vocabulary_size: int, steps: int, device: str, seed: int,
                  progress: bool = True) -> tuple[Aligner, float]:
    """Train the aligner (see the module docstring); returns it and its last running loss."""
    torch.manual_seed(seed)
    aligner = Aligner(vocabulary_size).to(device)
    optimizer = torch.optim.Adam(aligner.parameters(), lr=2e-3)
    rng = random.Random(seed)
    running = None
    for step in tqdm(range(steps), desc="aligner", unit="step", disable=not progress):
        batch = rng.sample(utterances, min(8, len(utterances)))
        loss = 0.0
        for utterance in batch:
            means = aligner(torch.from_numpy(utterance.ids)[None].to(device))[0]
            mel = torch.from_numpy(utterance.mel).to(device)
            likelihood = frame_log_likelihood(means, mel)
            if step < steps // 10:
                durations = even_durations(len(utterance.ids), mel.shape[0])
            else:
                durations = align(likelihood.detach().cpu().numpy())
            path = torch.repeat_interleave(torch.arange(len(durations), device=device),
                                           torch.from_numpy(durations).to(device))
            loss = loss - likelihood[path, torch.arange(mel.shape[0], device=device)].mean() / mel.shape[1]
        loss = loss / len(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        running = value if running is None else 0.95 * running + 0.05 * value
    return aligner.eval(), running


def _batch(utterances: list[Utterance], device: str) -> dict:
    longest_n = max(len(u.ids) for u in utterances)
    longest_t = max(u.mel.shape[0] for u in utterances)
    b = len(utterances)
    tokens = np.zeros((b, longest_n), np.int64)
    stress = np.zeros((b, longest_n), np.int64)
    durations = np.zeros((b, longest_n), np.int64)
    token_f0 = np.zeros((b, longest_n), np.float32)
    token_loud = np.zeros((b, longest_n), np.float32)
    token_voiced = np.zeros((b, longest_n), bool)
    mel = np.zeros((b, longest_t, 128), np.float32)
    log_f0 = np.zeros((b, longest_t), np.float32)
    voiced = np.zeros((b, longest_t), np.float32)
    loud = np.zeros((b, longest_t), np.float32)
    frames = np.zeros((b, longest_t), bool)
    for i, u in enumerate(utterances):
        n, t = len(u.ids), u.mel.shape[0]
        tokens[i, :n], stress[i, :n], durations[i, :n] = u.ids, u.stress, u.durations
        f0_targets, loud_targets = u.token_targets()
        token_f0[i, :n], token_loud[i, :n] = f0_targets, loud_targets
        edges = np.concatenate([[0], np.cumsum(u.durations)])
        token_voiced[i, :n] = [u.voiced[edges[j]:edges[j + 1]].any() for j in range(n)]
        mel[i, :t], log_f0[i, :t], voiced[i, :t], loud[i, :t], frames[i, :t] = (u.mel, u.log_f0, u.voiced, u.loudness,
                                                                               True)
    arrays = {"tokens": tokens, "stress": stress, "durations": durations, "token_f0": token_f0, "token_loudness": token_loud,
              "token_voiced": token_voiced, "mel": mel, "log_f0": log_f0, "voiced": voiced, "loudness": loud,
              "frames": frames}
    return {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}


def tts_loss(model: TextToMel, batch: dict) -> tuple[torch.Tensor, dict]:
    """The training loss of a batch and its parts (floats)."""
    out = model(batch["tokens"], batch["durations"], batch["token_f0"], batch["token_loudness"], batch["stress"])
    frames = batch["frames"][:, :out["mel"].shape[1]]
    tokens = batch["tokens"] != 0
    voiced_frames = frames & (batch["voiced"][:, :out["mel"].shape[1]] > 0.5)

    def masked(error, mask):
        return (error * mask).sum() / mask.sum().clamp(min=1)

    t = out["mel"].shape[1]
    parts = {
        "mel": masked((out["mel"] - batch["mel"][:, :t]).abs().mean(dim=-1), frames),
        "duration": masked((out["log_duration"] - torch.log1p(batch["durations"].float())) ** 2, tokens),
        "token_f0": masked((out["token_f0"] - batch["token_f0"]) ** 2, batch["token_voiced"]),
        "token_loudness": masked((out["token_loudness"] - batch["token_loudness"]) ** 2, tokens),
        "f0": masked((out["log_f0"] - batch["log_f0"][:, :t]) ** 2, voiced_frames),
        "voicing": masked(nn.functional.binary_cross_entropy_with_logits(
            out["voiced_logit"], batch["voiced"][:, :t], reduction="none"), frames),
        "loudness": masked((out["loudness"] - batch["loudness"][:, :t]) ** 2, frames),
    }
    total = sum(parts.values())
    return total, {k: float(v.detach()) for k, v in parts.items()}


def train_text_to_mel(corpus, out_stem, settings: TtsTrainSettings | None = None, resume: bool = False,
                      progress: bool = True, command: str | None = None, ddp: bool = False) -> dict:
    """Align the corpus and train the model (see the module docstring); writes the model at
    out_stem. Returns a summary: steps, seconds, held-out loss, alignment loss, utterances, rank
    (ddp: one of torchrun's processes; each aligns alike and trains on its share of every batch,
    rank 0 writes the durations, checkpoints and the model)."""
    settings = settings or TtsTrainSettings()
    corpus, out_stem = Path(corpus), Path(out_stem)
    checkpoint_dir = out_stem.parent / f"{out_stem.name}.checkpoints"
    distributed = start_distributed(settings.device, settings.batch_size) if ddp else Distributed()
    start_training(settings)
    resume_from = checkpoint_to_resume(checkpoint_dir, settings.steps) if resume else None
    started = time.perf_counter()
    uids = prepare_features(corpus, settings.token_mode, progress=progress)
    train_ids, test_ids = split_ids(corpus)
    if not train_ids or not test_ids:
        raise SynthError(f"{corpus}: {len(uids)} utterances give {len(train_ids)} for training and {len(test_ids)} "
                         f"held out; both need at least one (a larger corpus, or a larger test_fraction)")
    arrays = {uid: load_features(corpus, uid) for uid in uids}
    modes = {str(a["token_mode"]) for a in arrays.values()}
    if len(modes) != 1:
        raise SynthError(f"{corpus}: features mix token modes {sorted(modes)}; delete features/ and prepare again")
    vocabulary = Vocabulary.build([model_tokens(list(arrays[u]["tokens"]), settings.stress)[0] for u in train_ids],
                                  modes.pop())
    stats = corpus_statistics(corpus, train_ids)
    stats_np = _stats_arrays(stats)
    utterances = {uid: Utterance(uid, arrays[uid], vocabulary, stats_np, settings.stress) for uid in uids}
    for uid in uids:
        if len(utterances[uid].ids) > utterances[uid].mel.shape[0]:
            raise SynthError(f"{corpus}: utterance {uid} has more tokens ({len(utterances[uid].ids)}) than frames")
    aligner, align_loss = train_aligner([utterances[u] for u in train_ids], len(vocabulary), settings.align_steps,
                                        settings.device, settings.seed, progress)
    with torch.no_grad():
        for u in utterances.values():
            means = aligner(torch.from_numpy(u.ids)[None].to(settings.device))[0]
            u.durations = align(frame_log_likelihood(means, torch.from_numpy(u.mel).to(settings.device)).cpu().numpy())
    if distributed.writes:
        np.savez_compressed(corpus / "durations.npz", **{uid: u.durations for uid, u in utterances.items()})

    config = TextToMelConfig(vocabulary=vocabulary.to_dict(), width=settings.width, statistics=stats,
                             stress=settings.stress)
    model = TextToMel(config).to(settings.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=1e-6)
    train_set = [utterances[u] for u in train_ids]
    test_set = [utterances[u] for u in test_ids]
    if distributed.world > 1 and len(train_set) < settings.batch_size:
        raise SynthError(f"--ddp: the corpus has {len(train_set)} training utterances, fewer than --batch-size "
                         f"{settings.batch_size}, so the processes' shares of a batch would differ")
    running = None

    def step_loss(step: int) -> tuple[torch.Tensor, dict[str, str]]:
        nonlocal running
        draw = random.Random(f"{settings.seed}/{step}")
        chosen = draw.sample(train_set, min(settings.batch_size, len(train_set)))
        loss, parts = tts_loss(model, _batch(chosen[distributed.rank::distributed.world], settings.device))
        running = smoothed(running, float(loss.detach()))
        return loss, {"loss": f"{running:.3f}", "mel": f"{parts['mel']:.3f}"}

    def held_out(step: int) -> tuple[dict, str]:
        parts = evaluate_tts(model, test_set, settings.device)
        return ({"step": step, "train_loss": running, "held_out": parts},
                f"step {step}: train loss {running:.3f}, held-out mel L1 {parts['mel']:.3f}, "
                f"duration {parts['duration']:.3f}")

    history = training_loop(model, optimizer, settings, checkpoint_dir, step_loss, held_out, resume_from=resume_from,
                            description="text-to-mel", progress=progress, clip_norm=1.0,
                            lr_scale=lambda step: min(1.0, (step + 1) / WARMUP_STEPS), distributed=distributed)
    summary = {"steps": settings.steps, "seconds": time.perf_counter() - started, "alignment_loss": align_loss,
               "held_out": history[-1]["held_out"], "train_utterances": len(train_ids),
               "held_out_utterances": len(test_ids), "history": history, "rank": distributed.rank}
    if not distributed.writes:
        distributed.barrier()  # rank 0 is writing the model
        return summary
    save_text_to_mel(model.cpu().eval(), out_stem, {
        "training_command": command or " ".join(shlex.quote(a) for a in sys.argv),
        "corpus": {"folder": str(corpus), "utterances": len(uids), "held_out": test_ids,
                   "frames": stats["frames"], "hours": stats["frames"] * 256 / 48000 / 3600},
        "training": {key: summary[key] for key in ("steps", "alignment_loss", "held_out")}
        | {"processes": distributed.world}})
    distributed.barrier()
    return summary


def evaluate_tts(model: TextToMel, utterances: list[Utterance], device: str) -> dict:
    """Mean loss parts over the held-out utterances (teacher-forced, batches of 8)."""
    model.eval()
    totals: dict[str, float] = {}
    with torch.no_grad():
        for start in range(0, len(utterances), 8):
            _, parts = tts_loss(model, _batch(utterances[start:start + 8], device))
            for key, value in parts.items():
                totals[key] = totals.get(key, 0.0) + value * len(utterances[start:start + 8])
    model.train()
    return {key: value / len(utterances) for key, value in totals.items()}
