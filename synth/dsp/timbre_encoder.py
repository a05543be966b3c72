"""The timbre VAE's encoder without torch: a sound's log-mel frames -> the posterior of its timbre z.

The network is models.vae.TimbreEncoder's, evaluated in numpy on the weights of a timbre model file
(`<stem>.safetensors` beside its `<stem>.json`, read without unpickling): each frame's level (its
mean over the bands) is removed and the rest divided by MEL_SCALE; two Linear + LayerNorm +
LeakyReLU layers per frame; the frames within LEVEL_RANGE_NATS of the loudest are averaged; a
linear head gives the posterior mean and log variance (clamped to LOG_VARIANCE_RANGE) of z.
Training lives in models (torch); `synth encode` uses this so it starts without importing torch.
"""

from __future__ import annotations

import math

import numpy as np

from synth.dsp.features import log_mel
from synth.dsp.decoder_runtime import LAYER_NORM_EPS, LEAKY_SLOPE, model_paths, read_metadata, read_weights_numpy
from synth.dsp.timbre_space import check_vae_metadata
from synth.errors import SynthError

LEVEL_RANGE_NATS = 40.0 * math.log(10.0) / 10.0  # frames within 40 dB (power) of the loudest are pooled
MEL_SCALE = 4.0  # level-removed log-mel values (nats) are divided by this: about unit spread
LOG_VARIANCE_RANGE = (-10.0, 4.0)
SAMPLE_RATE_HZ = 48000  # the rate of the data sets encoders are trained on (models.data.SAMPLE_RATE)
CONFIG_RANGES = {"latent_dims": (2, 16), "mel_bands": (8, 512), "hidden": (8, 2048)}  # inclusive


def check_encoder_config(config, where: str) -> dict:
    """The config ({latent_dims, mel_bands, hidden}, integers in CONFIG_RANGES) of a timbre encoder;
    SynthError naming `where` and the key that does not fit."""
    if not isinstance(config, dict):
        raise SynthError(f"{where}: key 'config' must be an object of {', '.join(CONFIG_RANGES)}")
    unknown = sorted(set(config) - set(CONFIG_RANGES))
    if unknown:
        raise SynthError(f"{where}: key 'config.{unknown[0]}' is not a timbre encoder setting ({', '.join(CONFIG_RANGES)})")
    for name, (low, high) in CONFIG_RANGES.items():
        value = config.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SynthError(f"{where}: key 'config.{name}'={value!r} must be an integer in {low}..{high}")
    return config


def encoder_weight_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """name -> shape of every weight of an encoder with this config (latent_dims, mel_bands, hidden)."""
    bands, hidden, latent = config["mel_bands"], config["hidden"], config["latent_dims"]
    shapes = {"frame1.weight": (hidden, bands), "frame2.weight": (hidden, hidden), "head.weight": (2 * latent, hidden),
              "head.bias": (2 * latent,)}
    for name in ("frame1", "frame2"):
        shapes.update({f"{name}.bias": (hidden,), f"{name}_norm.weight": (hidden,), f"{name}_norm.bias": (hidden,)})
    return shapes


def _layer(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, gain: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """LeakyReLU(LayerNorm(x @ weight.T + bias)) over the last axis."""
    y = x @ weight.T + bias
    y = (y - y.mean(axis=-1, keepdims=True)) / np.sqrt(y.var(axis=-1, keepdims=True) + LAYER_NORM_EPS) * gain + shift
    return np.where(y >= 0.0, y, LEAKY_SLOPE * y)


class TimbreEncoderRuntime:
    """encode(mel [frames, mel_bands]) -> (posterior mean [latent_dims], log variance [latent_dims]),
    float32; encode_audio(audio) the same from 48 kHz audio. `metadata`: the model's JSON (checked)."""

    def __init__(self, weights: dict[str, np.ndarray], metadata: dict, where: str = "timbre encoder"):
        config = check_encoder_config(metadata.get("config"), where)
        expected = encoder_weight_shapes(config)
        for name, shape in expected.items():
            if name not in weights:
                raise SynthError(f"{where}: weight '{name}' is missing")
            if tuple(np.shape(weights[name])) != shape:
                raise SynthError(f"{where}: weight '{name}' has shape {list(np.shape(weights[name]))}, the config "
                                 f"asks for {list(shape)}")
        unknown = sorted(set(weights) - set(expected))
        if unknown:
            raise SynthError(f"{where}: unexpected weight '{unknown[0]}' (not part of an encoder with this config)")
        self.metadata = metadata
        self.mel_bands = config["mel_bands"]
        self.latent_dims = config["latent_dims"]
        w = {name: np.asarray(array, dtype=np.float64) for name, array in weights.items()}
        self._layers = [(w[f"{name}.weight"], w[f"{name}.bias"], w[f"{name}_norm.weight"], w[f"{name}_norm.bias"])
                        for name in ("frame1", "frame2")]
        self._head = (w["head.weight"], w["head.bias"])

    def encode_audio(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """encode() of the log-mel frames (features.log_mel, hop 256) of mono float audio at SAMPLE_RATE_HZ."""
        mel = log_mel(np.asarray(audio), SAMPLE_RATE_HZ, n_mels=self.mel_bands)
        if mel.shape[0] == 0:
            raise SynthError("encode: the sound is shorter than one frame (256 samples)")
        return self.encode(mel)

    def encode(self, mel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mel = np.asarray(mel, dtype=np.float64)
        if mel.ndim != 2 or mel.shape[1] != self.mel_bands:
            raise SynthError(f"timbre encoder: mel must be [frames, {self.mel_bands}], got {list(mel.shape)}")
        if mel.shape[0] == 0:
            raise SynthError("timbre encoder: the sound is shorter than one frame")
        level = mel.mean(axis=1, keepdims=True)
        h = (mel - level) / MEL_SCALE
        for layer in self._layers:
            h = _layer(h, *layer)
        loud = level[:, 0] >= level.max() - LEVEL_RANGE_NATS
        pooled = h[loud].mean(axis=0)
        head_weight, head_bias = self._head
        out = head_weight @ pooled + head_bias
        mean, log_variance = out[:self.latent_dims], np.clip(out[self.latent_dims:], *LOG_VARIANCE_RANGE)
        return mean.astype(np.float32), log_variance.astype(np.float32)


def load_timbre_encoder(path_stem) -> TimbreEncoderRuntime:
    """The encoder of the timbre model at `path_stem` (its JSON checked, its weights read without
    torch or pickle). SynthError naming the file and key that do not fit."""
    weights_path, json_path = model_paths(path_stem)
    meta = check_vae_metadata(read_metadata(json_path), str(json_path))
    return TimbreEncoderRuntime(read_weights_numpy(weights_path), meta, str(weights_path))
