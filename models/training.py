"""What the `synth train` trainers share: settings, start-up, checkpoints, resume and the loop.

Checkpoints: `<folder>/step-NNNNNNN.safetensors` (the model's weights and the AdamW moments) and
`step-NNNNNNN.json` (the step, AdamW's step count per parameter, the evaluation history), each
written atomically (synth.io.atomic); a checkpoint counts once both files exist. Loading reads
safetensors and JSON only: nothing is unpickled.

Distributed (`synth train decoder --ddp`, started by torchrun): every process draws the same global
batch, trains on its share of it, and the gradients are averaged over the processes
(torch.distributed all-reduce: gloo on CPU, NCCL on CUDA) before each step, so the weights stay
the same everywhere; only the first process (rank 0) shows progress and writes checkpoints.

The loop (`training_loop`) takes optimiser steps until `settings.steps`, with a progress bar, a
held-out evaluation every `eval_every` steps and a checkpoint every `checkpoint_every` steps (both
also at the last step). An interrupt (Ctrl-C's KeyboardInterrupt, the CLI's Terminated for
SIGTERM: any BaseException that is not an Exception) writes a checkpoint of the last completed
step, prints how to resume, and propagates. SIGINT and SIGTERM are held back while the optimiser
updates the weights, so that a checkpoint never holds half a step.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from synth.errors import SynthError
from synth.io.atomic import atomic_path

CHECKPOINT_PREFIX = "step-"


@dataclass
class TrainingSettings:
    """The settings every trainer takes. steps: optimiser steps in all (a resumed run's include the
    checkpoint's); batch_size: examples per step; learning_rate: the optimiser's, before the
    trainer's schedule; eval_every, checkpoint_every: steps between held-out evaluations and
    between checkpoints; seed: torch's, Python's and numpy's; device: "cpu" or "cuda[:N]";
    threads: torch CPU threads (0: torch's default)."""

    steps: int = 1000
    batch_size: int = 8
    learning_rate: float = 1e-3
    eval_every: int = 250
    checkpoint_every: int = 250
    seed: int = 0
    device: str = "cpu"
    threads: int = 0


def start_training(settings: TrainingSettings) -> None:
    """Seed torch, Python and numpy, set torch's CPU threads, and check that a CUDA device asked
    for exists (SynthError otherwise)."""
    torch.manual_seed(settings.seed)
    random.seed(settings.seed)
    np.random.seed(settings.seed)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        raise SynthError(f"--device {settings.device}: no CUDA device is available here")


@dataclass(frozen=True)
class Distributed:
    """This process's place in a distributed run: rank (0 is the one that writes) of world processes."""

    rank: int = 0
    world: int = 1

    @property
    def writes(self) -> bool:
        return self.rank == 0

    def share(self, batch: dict) -> dict:
        """This process's rows of a global batch (every tensor [B, ...], B a multiple of world)."""
        return {key: value[self.rank::self.world] for key, value in batch.items()} if self.world > 1 else batch

    def average_gradients(self, model: nn.Module) -> None:
        """Every parameter's gradient averaged over the processes (all of them then step alike)."""
        if self.world > 1:
            import torch.distributed as dist

            for param in model.parameters():
                if param.grad is not None:
                    dist.all_reduce(param.grad)
                    param.grad /= self.world

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()


def start_distributed(device: str, batch_size: int) -> Distributed:
    """Join the process group torchrun set up (its RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT
    variables): gloo on CPU, NCCL on CUDA (each process on its LOCAL_RANK device). SynthError when
    this process was not started by torchrun or the batch does not split evenly."""
    import os

    import torch.distributed as dist

    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        raise SynthError("--ddp: start the command with torchrun (e.g. .venv/bin/torchrun --nproc_per_node 2 "
                         ".venv/bin/synth train decoder ... --ddp): RANK and WORLD_SIZE are not set")
    world = int(os.environ["WORLD_SIZE"])
    if batch_size % world:
        raise SynthError(f"--batch-size {batch_size} must be a multiple of the {world} processes (each trains on "
                         f"an equal share of every batch)")
    if device.startswith("cuda"):
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Distributed(dist.get_rank(), world)


def endless(loader: DataLoader) -> Iterator[dict]:
    """The loader's batches, epoch after epoch (each reshuffled when the loader shuffles)."""
    while True:
        yield from loader


def smoothed(previous: float | None, value: float) -> float:
    """The progress bar's running loss: an exponential moving average, 2 % per new value."""
    return value if previous is None else 0.98 * previous + 0.02 * value


def _parameters(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The optimiser's parameters in a fixed order (the model's), to name their moments by index."""
    return [p for group in optimizer.param_groups for p in group["params"]]


def save_checkpoint(folder: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                    history: list[dict]) -> Path:
    """Write the checkpoint of `step` into `folder` (made when missing); returns its .safetensors."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    optimizer_steps = {}
    for index, param in enumerate(_parameters(optimizer)):
        state = optimizer.state.get(param)
        if state:
            tensors[f"optimizer.{index}.exp_avg"] = state["exp_avg"].detach().cpu().contiguous()
            tensors[f"optimizer.{index}.exp_avg_sq"] = state["exp_avg_sq"].detach().cpu().contiguous()
            optimizer_steps[str(index)] = float(state["step"])
    path = folder / f"{CHECKPOINT_PREFIX}{step:07d}.safetensors"
    with atomic_path(path) as temp:
        save_file(tensors, str(temp))
    with atomic_path(path.with_suffix(".json")) as temp:
        temp.write_text(json.dumps({"step": step, "optimizer_steps": optimizer_steps, "history": history}))
    return path


def checkpoint_step(path: Path) -> int:
    """The step of the checkpoint at `path` (its .safetensors), from its JSON."""
    return int(json.loads(path.with_suffix(".json").read_text())["step"])


def latest_checkpoint(folder: Path) -> Path | None:
    """The .safetensors of the newest whole checkpoint in `folder`, or None."""
    done = [p for p in folder.glob(f"{CHECKPOINT_PREFIX}*.safetensors") if p.with_suffix(".json").exists()]
    return max(done, key=checkpoint_step, default=None)


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, list[dict]]:
    """Load a checkpoint into the model and the optimiser; returns its step and history."""
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


def checkpoint_to_resume(folder: Path, steps: int) -> Path | None:
    """The newest checkpoint in `folder` to resume from (None: there is none, start afresh).
    SynthError when it is at or past `steps`, since resuming would train nothing."""
    latest = latest_checkpoint(folder)
    if latest is None:
        print(f"--resume: no checkpoint in {folder} yet, so training starts at step 0", file=sys.stderr)
    elif (done := checkpoint_step(latest)) >= steps:
        raise SynthError(f"--resume: the newest checkpoint, {latest}, is at step {done}, and --steps asks for "
                         f"{steps} in all, so there is nothing left to train; give --steps above {done} to train on")
    return latest


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back during the block: one that arrives is handled (its Python
    handler called, which raises KeyboardInterrupt, or Terminated under the CLI) when the block
    ends. Signals whose handler is not Python's (the default, ignored) are left alone, and so is
    every thread but the main one, which alone runs signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    handlers = {number: handler for number in (signal.SIGINT, signal.SIGTERM)
                if callable(handler := signal.getsignal(number))}
    for number in handlers:
        signal.signal(number, lambda received, _frame: arrived.append(received))
    try:
        yield
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
        if arrived:
            handlers[arrived[0]](arrived[0], None)


def training_loop(model: nn.Module, optimizer: torch.optim.Optimizer, settings: TrainingSettings,
                  checkpoint_dir: Path, loss: Callable[[int], tuple[torch.Tensor, dict[str, str]]],
                  evaluate: Callable[[int], tuple[dict, str]], *, resume_from: Path | None, description: str,
                  progress: bool, clip_norm: float, lr_scale: Callable[[int], float] = lambda step: 1.0,
                  distributed: Distributed = Distributed()) -> list[dict]:
    """Train from `resume_from` (a checkpoint, or None: step 0) to `settings.steps` (see the module
    docstring). loss(step): the loss of the next batch, `step` steps being done, and the progress
    bar's postfix; evaluate(step): the history entry and the line to print after `step` steps.
    Before each step every parameter group's learning rate is set to its rate at the start times
    lr_scale(step); gradients are clipped to a total norm of `clip_norm`. distributed: gradients
    averaged over its processes, and only its rank 0 shows progress and writes checkpoints.
    Returns the history, the resumed run's entries included."""
    rates = [group["lr"] for group in optimizer.param_groups]
    step, history = load_checkpoint(resume_from, model, optimizer) if resume_from else (0, [])
    try:
        with tqdm(total=settings.steps, initial=step, desc=description, unit="step",
                  disable=not (progress and distributed.writes)) as bar:
            while step < settings.steps:
                for group, rate in zip(optimizer.param_groups, rates):
                    group["lr"] = rate * lr_scale(step)
                value, postfix = loss(step)
                optimizer.zero_grad()
                value.backward()
                distributed.average_gradients(model)
                nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
                with deferred_interrupts():
                    optimizer.step()
                    step += 1
                bar.set_postfix(postfix)
                bar.update()
                if step % settings.eval_every == 0 or step == settings.steps:
                    entry, line = evaluate(step)
                    history.append(entry)
                    if distributed.writes:
                        bar.write(line)
                if (step % settings.checkpoint_every == 0 or step == settings.steps) and distributed.writes:
                    save_checkpoint(checkpoint_dir, step, model, optimizer, history)
    except Exception:
        raise  # an error, not an interrupt: the step it stopped in may be half done, so no checkpoint
    except BaseException:
        if distributed.writes:
            with deferred_interrupts():  # a second Ctrl-C waits for the checkpoint
                if step:
                    path = save_checkpoint(checkpoint_dir, step, model, optimizer, history)
                    print(f"training stopped at step {step} of {settings.steps}: checkpoint {path} written; run "
                          f"the same command with --resume to continue from it", file=sys.stderr)
                else:
                    print("training stopped before its first step: no checkpoint written", file=sys.stderr)
        raise
    return history
