"""Decoder model files: `<stem>.safetensors` (float32 weights, never pickle) + `<stem>.json`
(format_version 1, kind "synth.decoder", the config, frame rate, torch version, the command that
trained it, the date). The JSON and weight-shape checks are synth.dsp.decoder_runtime's, shared
with the torch-free realtime loader."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import numpy as np
import torch

from models.decoder import Decoder, DecoderConfig
from synth.dsp.decoder_runtime import (
    FORMAT_VERSION,
    MODEL_KIND,
    check_metadata,
    check_weight_shapes,
    model_paths,
    read_metadata,
    read_safetensors_with,
)
from synth.errors import SynthError

_RESERVED = ("format_version", "kind", "config")


def _write_atomically(path: Path, write) -> None:
    """write(temporary path), then rename it over `path`: readers see the old file or the new one."""
    temporary = path.with_name(path.name + ".partial")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def write_model_files(path_stem, module: torch.nn.Module, meta: dict) -> tuple[Path, Path]:
    """Write a module's weights as `<stem>.safetensors` (float32, never pickle) and `meta` (which
    names its kind) as `<stem>.json`, each atomically, adding torch_version and created_utc;
    returns both paths."""
    from safetensors.torch import save_file

    weights_path, json_path = model_paths(path_stem)
    meta = {**meta, "torch_version": torch.__version__,
            "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in module.state_dict().items()}
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(weights_path, lambda p: save_file(tensors, str(p), metadata={"kind": str(meta["kind"])}))
    _write_atomically(json_path, lambda p: p.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8"))
    return weights_path, json_path


def read_safetensors(weights_path) -> dict[str, torch.Tensor]:
    """Every tensor of a .safetensors file as torch tensors (never unpickling); SynthError naming
    the file if it is missing or not a safetensors file."""
    from safetensors.torch import load_file

    return read_safetensors_with(load_file, weights_path)


def load_weights_into(module: torch.nn.Module, weights_path) -> torch.nn.Module:
    """Load a .safetensors file into `module` (never unpickling), every weight checked against
    the module's own: SynthError naming the file and the first missing, misshapen or unexpected one."""
    tensors = read_safetensors(weights_path)
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    for name, shape in expected.items():
        if name not in tensors or tuple(tensors[name].shape) != shape:
            got = list(tensors[name].shape) if name in tensors else "missing"
            raise SynthError(f"{weights_path}: weight '{name}' is {got}, expected {list(shape)}")
    unknown = sorted(set(tensors) - set(expected))
    if unknown:
        raise SynthError(f"{weights_path}: unexpected weight '{unknown[0]}'")
    module.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()})
    return module


def save_model(model: Decoder, config: DecoderConfig, path_stem, extra_metadata: dict | None = None) -> tuple[Path, Path]:
    """Write `<path_stem>.safetensors` and `<path_stem>.json`, each atomically; returns both paths.
    extra_metadata (JSON-ready) is merged into the JSON's top level, e.g. training_command, data,
    training; it may not replace format_version, kind or config. Raises SynthError if the weights
    do not fit the config."""
    from safetensors.torch import save_file

    extra = dict(extra_metadata or {})
    clash = [key for key in _RESERVED if key in extra]
    if clash:
        raise SynthError(f"save_model: extra_metadata may not set {clash[0]!r}")
    weights_path, json_path = model_paths(path_stem)
    tensors = {name: value.detach().to("cpu", torch.float32).contiguous() for name, value in model.state_dict().items()}
    config_dict = config.to_dict()
    check_weight_shapes({k: tuple(v.shape) for k, v in tensors.items()}, config_dict, str(weights_path))
    meta = {
        "format_version": FORMAT_VERSION,
        "kind": MODEL_KIND,
        "config": config_dict,
        "frame_rate_hz": config.frame_rate_hz,
        "torch_version": torch.__version__,
        "training_command": None,
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    meta.update(extra)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(weights_path, lambda p: save_file(tensors, str(p), metadata={"kind": MODEL_KIND}))
    text = json.dumps(meta, indent=2, sort_keys=False) + "\n"
    _write_atomically(json_path, lambda p: p.write_text(text, encoding="utf-8"))
    return weights_path, json_path


def load_model(path_stem, device: str = "cpu") -> tuple[Decoder, DecoderConfig, dict]:
    """(Decoder in eval mode on `device`, its config, the whole metadata dict) from the files at
    `path_stem`. Never unpickles. Raises SynthError naming the file and the key that does not fit
    (missing file, format_version, kind, config keys, missing/extra/misshapen weights)."""
    weights_path, json_path = model_paths(path_stem)
    meta = read_metadata(json_path)
    config = DecoderConfig.from_dict(check_metadata(meta, str(json_path)), str(json_path))
    tensors = read_safetensors(weights_path)
    check_weight_shapes({k: tuple(v.shape) for k, v in tensors.items()}, config.to_dict(), str(weights_path))
    model = Decoder(config)
    model.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()})
    return model.to(device).eval(), config, meta


def export_runtime_weights(model: Decoder) -> dict[str, np.ndarray]:
    """The weights synth.dsp.decoder_runtime.DecoderRuntime needs: name -> float32 array (the
    model's state_dict, the names of expected_weight_shapes)."""
    return {name: value.detach().to("cpu", torch.float32).numpy().copy() for name, value in model.state_dict().items()}
