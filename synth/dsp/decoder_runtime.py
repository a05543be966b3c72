"""The conditioned waveform decoder at frame rate without torch: model-file checks and the runtime.

A decoder model is two files beside each other: `<stem>.safetensors` (float32 weights, no pickle)
and `<stem>.json` (format_version, kind "synth.decoder", the config and how it was made). The checks
here are plain Python so that models.model_files (torch) and load_runtime (numpy) share them.

DecoderRuntime evaluates the network of models.decoder.Decoder for up to `voices` voices, one frame
per step, on buffers made at construction: matrix products by np.dot(..., out=...) over all voices
at once, everything else in numba kernels. Each voice has its own GRU state.

Network (the same in torch): features [2 + latent + mel] = (log f0 scaled to [-1, 1] over the
training f0 range, loudness scaled likewise, z, and for a model with mel_bands > 0 (speech) the
frame's log-mel values as (mel - MEL_CENTER) / MEL_SPREAD) -> in1, in2 (Linear, LayerNorm, LeakyReLU) -> GRU -> out1
(on the GRU output beside in2's output), out2 -> head -> amplitude = exp_sigmoid, harmonic
distribution = softmax with harmonics at or above Nyquist set to 0 and the rest renormalised,
noise band magnitudes = exp_sigmoid(x + NOISE_BIAS). exp_sigmoid(x) = 2 * sigmoid(x) ** ln(10) + 1e-7.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from numba import njit

from synth.errors import SynthError

FORMAT_VERSION = 1
MODEL_KIND = "synth.decoder"
LEAKY_SLOPE = 0.01  # LeakyReLU slope of the MLP layers
LAYER_NORM_EPS = 1e-5
F0_FLOOR_HZ = 1.0  # f0 below this (unvoiced 0 Hz) is read as this before the log
NOISE_BIAS = -4.0  # added to the noise head before exp_sigmoid: the noise starts quiet
MEL_CENTER, MEL_SPREAD = -5.0, 4.0  # log-mel inputs (natural log of power) are centred and scaled by these
EXP_SIGMOID_MAX = 2.0
EXP_SIGMOID_EXPONENT = math.log(10.0)
EXP_SIGMOID_FLOOR = 1e-7

CONFIG_KEYS = ("sample_rate", "hop_samples", "harmonics", "noise_bands", "hidden", "latent_dims",
               "instruments", "f0_range_hz", "loudness_range_db", "mel_bands")
OPTIONAL_CONFIG = {"mel_bands": 0}  # keys a model file may leave out (files written before they existed)
_INT_MINIMUM = {"sample_rate": 1, "hop_samples": 1, "harmonics": 1, "noise_bands": 2, "hidden": 1,
                "latent_dims": 0, "mel_bands": 0}
_F32 = np.dtype(np.float32)
_BOOL = np.dtype(np.bool_)


# ----------------------------------------------------------------------------- model-file checks

def model_paths(path_stem) -> tuple[Path, Path]:
    """(`<stem>.safetensors`, `<stem>.json`) of a model; a stem given with either suffix is accepted."""
    stem = Path(path_stem)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def check_config(config, where: str) -> dict:
    """Validate a decoder config dict (keys CONFIG_KEYS; see models.decoder.DecoderConfig) and return
    a clean copy (ranges as [low, high] floats). Raises SynthError naming `where` and the key."""
    if not isinstance(config, dict):
        raise SynthError(f"{where}: key 'config' must be an object, got {type(config).__name__}")
    clean = {}
    for key in CONFIG_KEYS:
        if key not in config and key not in OPTIONAL_CONFIG:
            raise SynthError(f"{where}: key 'config.{key}' is missing")
        value = config.get(key, OPTIONAL_CONFIG.get(key))
        if key in _INT_MINIMUM:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < _INT_MINIMUM[key]:
                raise SynthError(f"{where}: key 'config.{key}'={value!r} must be an integer >= {_INT_MINIMUM[key]}")
            clean[key] = int(value)
        elif key == "instruments":
            if not isinstance(value, (list, tuple)) or not all(isinstance(x, str) for x in value):
                raise SynthError(f"{where}: key 'config.instruments'={value!r} must be a list of names")
            if len(set(value)) != len(value):
                raise SynthError(f"{where}: key 'config.instruments' has a name twice: {list(value)!r}")
            clean[key] = list(value)
        else:
            ok = (isinstance(value, (list, tuple)) and len(value) == 2
                  and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value)
                  and value[0] < value[1] and (key != "f0_range_hz" or value[0] > 0))
            if not ok:
                floor = "0 < " if key == "f0_range_hz" else ""
                raise SynthError(f"{where}: key 'config.{key}'={value!r} must be [low, high] with {floor}low < high")
            clean[key] = [float(value[0]), float(value[1])]
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise SynthError(f"{where}: unknown key 'config.{unknown[0]}' (known: {', '.join(CONFIG_KEYS)})")
    return clean


def expected_weight_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every weight of a decoder with this (checked) config: the state_dict of
    models.decoder.Decoder and the arrays DecoderRuntime needs."""
    hidden, harmonics, bands = config["hidden"], config["harmonics"], config["noise_bands"]
    inputs = 2 + config["latent_dims"] + config["mel_bands"]
    shapes = {}
    for name, fan_in in (("in1", inputs), ("in2", hidden), ("out1", 2 * hidden), ("out2", hidden)):
        shapes[f"{name}.weight"] = (hidden, fan_in)
        shapes[f"{name}.bias"] = (hidden,)
        shapes[f"{name}_norm.weight"] = (hidden,)
        shapes[f"{name}_norm.bias"] = (hidden,)
    shapes["gru.weight_ih_l0"] = (3 * hidden, hidden)
    shapes["gru.weight_hh_l0"] = (3 * hidden, hidden)
    shapes["gru.bias_ih_l0"] = (3 * hidden,)
    shapes["gru.bias_hh_l0"] = (3 * hidden,)
    shapes["head.weight"] = (1 + harmonics + bands, hidden)
    shapes["head.bias"] = (1 + harmonics + bands,)
    if config["instruments"] and config["latent_dims"] > 0:
        shapes["instrument_embedding.weight"] = (len(config["instruments"]), config["latent_dims"])
    return shapes


def check_weight_shapes(shapes: dict, config: dict, where: str) -> None:
    """Raise SynthError naming `where` and the first weight that is missing, unexpected or of
    another shape than the config asks for. shapes: name -> tuple of ints."""
    expected = expected_weight_shapes(config)
    for name, shape in expected.items():
        if name not in shapes:
            raise SynthError(f"{where}: weight '{name}' is missing (expected shape {list(shape)})")
        if tuple(shapes[name]) != shape:
            raise SynthError(f"{where}: weight '{name}' has shape {list(shapes[name])}, but the config "
                             f"asks for {list(shape)}")
    unknown = sorted(set(shapes) - set(expected))
    if unknown:
        raise SynthError(f"{where}: unexpected weight '{unknown[0]}' (not part of a decoder with this config)")


def read_metadata(json_path) -> dict:
    """The JSON object of a model's metadata file; SynthError naming the file if it is missing or
    not a JSON object."""
    json_path = Path(json_path)
    if not json_path.is_file():
        raise SynthError(f"{json_path}: metadata file not found (a model is <stem>.safetensors + <stem>.json)")
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SynthError(f"{json_path}: not readable as JSON: {error}") from None
    if not isinstance(meta, dict):
        raise SynthError(f"{json_path}: expected a JSON object, got {type(meta).__name__}")
    return meta


def check_kind(meta: dict, where: str, kind: str, version: int) -> None:
    """SynthError naming `where` unless meta has format_version `version`, kind `kind` and a config
    (every model file of the project: decoder, timbre VAE, text-to-mel)."""
    for key in ("format_version", "kind", "config"):
        if key not in meta:
            raise SynthError(f"{where}: key '{key}' is missing")
    if meta["format_version"] != version or isinstance(meta["format_version"], bool):
        raise SynthError(f"{where}: key 'format_version'={meta['format_version']!r} is not supported (expected {version})")
    if meta["kind"] != kind:
        raise SynthError(f"{where}: key 'kind'={meta['kind']!r}, expected {kind!r}")


def check_metadata(meta: dict, where: str) -> dict:
    """Check a model's metadata (format_version 1, kind "synth.decoder", a valid config) and return
    the clean config. Raises SynthError naming `where` (the JSON file) and the key."""
    check_kind(meta, where, MODEL_KIND, FORMAT_VERSION)
    return check_config(meta["config"], where)


def read_safetensors_with(load_file, weights_path) -> dict:
    """load_file(path) (safetensors.numpy's or safetensors.torch's: no pickle) of a weights file;
    SynthError naming the file if it is missing or not a safetensors file."""
    from safetensors import SafetensorError

    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise SynthError(f"{weights_path}: weights file not found")
    try:
        return load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as error:
        raise SynthError(f"{weights_path}: not a safetensors file ({error})") from None


def read_weights_numpy(weights_path) -> dict[str, np.ndarray]:
    """All tensors of a .safetensors file as numpy arrays (no torch, no pickle)."""
    from safetensors.numpy import load_file

    return read_safetensors_with(load_file, weights_path)


def load_runtime(path_stem, voices: int) -> DecoderRuntime:
    """DecoderRuntime for `voices` voices from the model files at `path_stem` (without torch).
    The metadata dict is kept as runtime.metadata. Raises SynthError naming the file and key."""
    weights_path, json_path = model_paths(path_stem)
    meta = read_metadata(json_path)
    config = check_metadata(meta, str(json_path))
    weights = read_weights_numpy(weights_path)
    check_weight_shapes({k: v.shape for k, v in weights.items()}, config, str(weights_path))
    runtime = DecoderRuntime(weights, config, voices)
    runtime.metadata = meta
    return runtime


# ----------------------------------------------------------------------------- the runtime

class DecoderRuntime:
    """The decoder for `voices` voices, one frame per step, allocation-free.

    Outputs of the last step (float32, overwritten each step): amplitude [V] (linear),
    harmonics [V, H] (distribution: sums to 1 over the harmonics below Nyquist), noise [V, NB]
    (linear band magnitudes). Inactive voices get zeros and keep their GRU state.
    latent [V, latent_dims]: each voice's z when step() is given none (set_voice_instrument).
    """

    def __init__(self, weights: dict, config: dict, voices: int, where: str = "DecoderRuntime"):
        """weights: name -> float array (expected_weight_shapes(config)); config: see check_config;
        voices: the most voices stepped at once (an integer >= 1)."""
        config = check_config(config, where)
        check_weight_shapes({k: np.shape(v) for k, v in weights.items()}, config, where)
        if isinstance(voices, bool) or not isinstance(voices, (int, np.integer)) or voices < 1:
            raise SynthError(f"{where}: voices={voices!r} must be an integer >= 1")
        self.config = config
        self.voices = v = int(voices)
        self.metadata: dict = {}
        hidden, harmonics, bands = config["hidden"], config["harmonics"], config["noise_bands"]
        self.latent_dims = config["latent_dims"]
        self.instruments = list(config["instruments"])
        w = {k: np.ascontiguousarray(np.asarray(a, dtype=np.float32)) for k, a in weights.items()}
        t = {k: np.ascontiguousarray(w[k + ".weight"].T) for k in ("in1", "in2", "out1", "out2", "head")}
        self._layers = [(t[name], w[name + ".bias"], w[name + "_norm.weight"], w[name + "_norm.bias"])
                        for name in ("in1", "in2", "out1", "out2")]
        self._w_ih = np.ascontiguousarray(w["gru.weight_ih_l0"].T)
        self._w_hh = np.ascontiguousarray(w["gru.weight_hh_l0"].T)
        self._b_ih, self._b_hh = w["gru.bias_ih_l0"], w["gru.bias_hh_l0"]
        self._w_head, self._b_head = t["head"], w["head.bias"]
        self.embedding = w.get("instrument_embedding.weight", np.zeros((0, self.latent_dims), np.float32))
        f0_low, f0_high = config["f0_range_hz"]
        db_low, db_high = config["loudness_range_db"]
        self._params = np.array([math.log(f0_low), math.log(f0_high), db_low, db_high,
                                 float(config["sample_rate"])])
        self.state = np.zeros((v, hidden), np.float32)
        self.latent = np.zeros((v, self.latent_dims), np.float32)
        self.mel_bands = config["mel_bands"]
        self.mel = np.zeros((v, self.mel_bands), np.float32)
        self.amplitude = np.zeros(v, np.float32)
        self.harmonics = np.zeros((v, harmonics), np.float32)
        self.noise = np.zeros((v, bands), np.float32)
        self._features = np.zeros((v, 2 + self.latent_dims + self.mel_bands), np.float32)
        self._a1, self._a2 = np.zeros((v, hidden), np.float32), np.zeros((v, hidden), np.float32)
        self._gi, self._gh = np.zeros((v, 3 * hidden), np.float32), np.zeros((v, 3 * hidden), np.float32)
        self._joined = np.zeros((v, 2 * hidden), np.float32)
        self._o1, self._o2 = np.zeros((v, hidden), np.float32), np.zeros((v, hidden), np.float32)
        self._head = np.zeros((v, 1 + harmonics + bands), np.float32)
        self._all_active = np.ones(v, dtype=np.bool_)

    def step(self, f0_hz: np.ndarray, loudness_db: np.ndarray, z: np.ndarray | None = None,
             active: np.ndarray | None = None) -> None:
        """Advance every active voice one frame. f0_hz float32 [V] (Hz), loudness_db float32 [V]
        (dB), z float32 [V, latent_dims] or None (then self.latent), active bool [V] or None (all).
        A model with mel_bands > 0 reads each voice's log-mel frame from self.mel [V, mel_bands]
        (write it before the step). Results go to self.amplitude, self.harmonics, self.noise.
        Allocates nothing."""
        latent = self.latent if z is None else z
        active = self._all_active if active is None else active
        v = self.voices
        if not (f0_hz.dtype is _F32 and loudness_db.dtype is _F32 and latent.dtype is _F32
                and active.dtype is _BOOL and f0_hz.shape == (v,) and loudness_db.shape == (v,)
                and active.shape == (v,) and latent.shape == self.latent.shape and f0_hz.flags.c_contiguous
                and loudness_db.flags.c_contiguous and latent.flags.c_contiguous and active.flags.c_contiguous):
            self._check_step(f0_hz, loudness_db, latent, active)
        (w1, b1, g1, s1), (w2, b2, g2, s2), (w3, b3, g3, s3), (w4, b4, g4, s4) = self._layers
        _features(f0_hz, loudness_db, latent, self.mel, self._params, self._features)
        np.dot(self._features, w1, out=self._a1)
        _bias_norm_act(self._a1, b1, g1, s1)
        np.dot(self._a1, w2, out=self._a2)
        _bias_norm_act(self._a2, b2, g2, s2)
        np.dot(self._a2, self._w_ih, out=self._gi)
        np.dot(self.state, self._w_hh, out=self._gh)
        _gru_update(self._gi, self._gh, self._b_ih, self._b_hh, self._a2, active, self.state, self._joined)
        np.dot(self._joined, w3, out=self._o1)
        _bias_norm_act(self._o1, b3, g3, s3)
        np.dot(self._o1, w4, out=self._o2)
        _bias_norm_act(self._o2, b4, g4, s4)
        np.dot(self._o2, self._w_head, out=self._head)
        _heads(self._head, self._b_head, f0_hz, active, self._params, self.amplitude, self.harmonics, self.noise)

    def run_sequence(self, f0_hz: np.ndarray, loudness_db: np.ndarray, active: np.ndarray,
                     mel: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Voice 0 over a whole sequence at once (offline rendering): float32 f0_hz, loudness_db [F],
        bool active [F], mel [F, mel_bands] for a speech model; z = self.latent[0]. The voice starts
        afresh (zero GRU state) at the first frame and wherever an inactive stretch ends. Returns
        new arrays (amplitude [F], harmonics [F, H], noise [F, NB]), equal (to float32 rounding) to
        stepping frame by frame; only the GRU runs frame by frame, every other layer is one matrix
        product over all frames. self.state ends as voice 0's would after the last step."""
        frames = int(np.shape(f0_hz)[0])
        f0_hz = np.ascontiguousarray(f0_hz, dtype=np.float32)
        loudness_db = np.ascontiguousarray(loudness_db, dtype=np.float32)
        active = np.ascontiguousarray(active, dtype=np.bool_)
        mel = np.zeros((frames, 0), np.float32) if mel is None else np.ascontiguousarray(mel, dtype=np.float32)
        if loudness_db.shape != (frames,) or active.shape != (frames,) or mel.shape != (frames, self.mel_bands):
            raise SynthError(f"DecoderRuntime.run_sequence: f0_hz {f0_hz.shape}, loudness_db {loudness_db.shape}, "
                             f"active {active.shape} and mel {mel.shape} must cover the same {frames} frames "
                             f"(mel with {self.mel_bands} bands)")
        (w1, b1, g1, s1), (w2, b2, g2, s2), (w3, b3, g3, s3), (w4, b4, g4, s4) = self._layers
        latent = np.ascontiguousarray(np.repeat(self.latent[:1], frames, axis=0))
        features = np.zeros((frames, self._features.shape[1]), np.float32)
        _features(f0_hz, loudness_db, latent, mel, self._params, features)
        a1 = features @ w1
        _bias_norm_act(a1, b1, g1, s1)
        a2 = a1 @ w2
        _bias_norm_act(a2, b2, g2, s2)
        gi = a2 @ self._w_ih
        joined = np.zeros((frames, self._joined.shape[1]), np.float32)
        state = np.zeros((1, self.state.shape[1]), np.float32)
        gh = np.zeros((1, gi.shape[1]), np.float32)
        was_active = False
        for k in range(frames):
            if active[k] and not was_active:
                state[:] = 0.0
            was_active = bool(active[k])
            np.dot(state, self._w_hh, out=gh)
            _gru_update(gi[k:k + 1], gh, self._b_ih, self._b_hh, a2[k:k + 1], active[k:k + 1], state, joined[k:k + 1])
        self.state[0] = state[0]
        o1 = joined @ w3
        _bias_norm_act(o1, b3, g3, s3)
        o2 = o1 @ w4
        _bias_norm_act(o2, b4, g4, s4)
        head = o2 @ self._w_head
        amplitude = np.zeros(frames, np.float32)
        harmonics = np.zeros((frames, self.harmonics.shape[1]), np.float32)
        noise = np.zeros((frames, self.noise.shape[1]), np.float32)
        _heads(head, self._b_head, f0_hz, active, self._params, amplitude, harmonics, noise)
        return amplitude, harmonics, noise

    def _check_step(self, f0_hz, loudness_db, latent, active) -> None:
        """Raise SynthError naming the first argument of step() of the wrong dtype or shape."""
        v = self.voices
        for name, arr, dtype, shape in (("f0_hz", f0_hz, np.float32, (v,)), ("loudness_db", loudness_db, np.float32, (v,)),
                                        ("z", latent, np.float32, self.latent.shape), ("active", active, np.bool_, (v,))):
            if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.shape != shape or not arr.flags.c_contiguous:
                got = f"{arr.dtype} shape {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
                raise SynthError(f"DecoderRuntime.step: {name} must be a contiguous {np.dtype(dtype).name} array "
                                 f"of shape {shape}, got {got}")

    def instrument_latent(self, name: str) -> np.ndarray:
        """The learned z (float32 [latent_dims]) of instrument `name`; SynthError if unknown."""
        if name not in self.instruments or self.embedding.shape[0] == 0:
            raise SynthError(f"decoder: instrument={name!r} is not in the model (known: {self.instruments})")
        return self.embedding[self.instruments.index(name)]

    def set_voice_instrument(self, voice: int, name: str) -> None:
        """Voice `voice` uses instrument `name`'s z in steps given no z."""
        self.latent[voice] = self.instrument_latent(name)

    def reset_voice(self, voice: int) -> None:
        """Zero one voice's GRU state (a new note starts from the trained initial state)."""
        self.state[voice] = 0.0

    def reset(self) -> None:
        """Zero every voice's GRU state and outputs (latents are kept)."""
        self.state[:] = 0.0
        self.amplitude[:] = 0.0
        self.harmonics[:] = 0.0
        self.noise[:] = 0.0

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) the kernels by stepping once, then reset(); call
        before the audio stream starts."""
        self.step(np.full(self.voices, 220.0, np.float32), np.full(self.voices, -30.0, np.float32))
        self.reset()


@njit(nogil=True, cache=True, inline="always")
def _sigmoid(x):
    """1 / (1 + exp(-x)), written with tanh: no overflow and no branch."""
    return 0.5 + 0.5 * math.tanh(0.5 * x)


@njit(nogil=True, cache=True, inline="always")
def _exp_sigmoid(x):
    return EXP_SIGMOID_MAX * _sigmoid(x) ** EXP_SIGMOID_EXPONENT + EXP_SIGMOID_FLOOR


@njit(nogil=True, cache=True)
def _features(f0_hz, loudness_db, latent, mel, params, features):
    """features[v] = (log f0 scaled to [-1, 1] over params[0:2] (log Hz), loudness scaled to [-1, 1]
    over params[2:4] (dB), latent[v], (mel[v] - MEL_CENTER) / MEL_SPREAD); f0 below F0_FLOOR_HZ
    reads as F0_FLOOR_HZ."""
    dims = latent.shape[1]
    for v in range(features.shape[0]):
        log_f0 = math.log(max(float(f0_hz[v]), F0_FLOOR_HZ))
        features[v, 0] = 2.0 * (log_f0 - params[0]) / (params[1] - params[0]) - 1.0
        features[v, 1] = 2.0 * (float(loudness_db[v]) - params[2]) / (params[3] - params[2]) - 1.0
        for j in range(dims):
            features[v, 2 + j] = latent[v, j]
        for j in range(mel.shape[1]):
            features[v, 2 + dims + j] = (mel[v, j] - MEL_CENTER) / MEL_SPREAD


@njit(nogil=True, cache=True)
def _bias_norm_act(y, bias, gain, shift):
    """In place, row by row: y + bias, LayerNorm (gain, shift), LeakyReLU."""
    width = y.shape[1]
    for v in range(y.shape[0]):
        mean = 0.0
        for j in range(width):
            mean += float(y[v, j]) + float(bias[j])
        mean /= width
        var = 0.0
        for j in range(width):
            d = float(y[v, j]) + float(bias[j]) - mean
            var += d * d
        scale = 1.0 / math.sqrt(var / width + LAYER_NORM_EPS)
        for j in range(width):
            x = (float(y[v, j]) + float(bias[j]) - mean) * scale * gain[j] + shift[j]
            y[v, j] = x if x >= 0.0 else LEAKY_SLOPE * x


@njit(nogil=True, cache=True)
def _gru_update(gi, gh, b_ih, b_hh, skip, active, state, joined):
    """One GRU step (torch's equations, gates r, z, n) from gi = x W_ih^T and gh = h W_hh^T;
    joined[v] = (new h, skip[v]); state[v] = new h for active voices only."""
    hidden = state.shape[1]
    for v in range(state.shape[0]):
        for j in range(hidden):
            r = _sigmoid(float(gi[v, j]) + b_ih[j] + gh[v, j] + b_hh[j])
            u = _sigmoid(float(gi[v, hidden + j]) + b_ih[hidden + j] + gh[v, hidden + j] + b_hh[hidden + j])
            c = math.tanh(float(gi[v, 2 * hidden + j]) + b_ih[2 * hidden + j]
                          + r * (float(gh[v, 2 * hidden + j]) + b_hh[2 * hidden + j]))
            h = (1.0 - u) * c + u * float(state[v, j])
            joined[v, j] = h
            joined[v, hidden + j] = skip[v, j]
            if active[v]:
                state[v, j] = h


@njit(nogil=True, cache=True)
def _heads(head, bias, f0_hz, active, params, amplitude, harmonics, noise):
    """Controls from the head's output: amplitude, Nyquist-masked softmax, noise magnitudes."""
    count = harmonics.shape[1]
    nyquist = np.float32(0.5 * params[4])
    for v in range(head.shape[0]):
        if not active[v]:
            amplitude[v] = 0.0
            harmonics[v, :] = 0.0
            noise[v, :] = 0.0
            continue
        amplitude[v] = _exp_sigmoid(float(head[v, 0]) + bias[0])
        top = -np.inf
        for h in range(count):
            top = max(top, float(head[v, 1 + h]) + bias[1 + h])
        total = 0.0
        for h in range(count):
            below = np.float32(h + 1) * f0_hz[v] < nyquist
            e = math.exp(float(head[v, 1 + h]) + bias[1 + h] - top) if below else 0.0
            harmonics[v, h] = e
            total += e
        scale = 1.0 / total if total > 0.0 else 0.0
        for h in range(count):
            harmonics[v, h] = harmonics[v, h] * scale
        for b in range(noise.shape[1]):
            noise[v, b] = _exp_sigmoid(float(head[v, 1 + count + b]) + bias[1 + count + b] + NOISE_BIAS)
