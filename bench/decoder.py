"""The neural waveform decoder against its peers: quality on held-out real notes, and speed.

Quality: for each note of the data set's "test" split (models.data; never seen in training), the
audio is rebuilt three ways and compared with the recording:
- decoder: the model re-plays the recording's own f0 and loudness frames (and the note's
  instrument z) through the realtime path (decoder runtime, oscillator bank, filtered noise;
  synth.transfer.render_frames, the noise delay removed so it lines up with the recording);
- Griffin-Lim: from the note's stored log-mel frames (128 HTK mels, n_fft 2048, hop 256, 48 kHz)
  by torchaudio's InverseMelScale to a linear power spectrogram, then GriffinLim (32 iterations,
  n_fft 2048, hop 256), the oracle magnitude of a mel vocoder with no network;
- WORLD (pyworld): harvest f0, cheaptrick envelope, d4c aperiodicity, synthesis, at 48 kHz with a
  frame period of one hop: an analysis/resynthesis vocoder that sees the recording itself.
Figures: the multi-resolution STFT distance (models.ddsp_synth.multi_resolution_stft_loss, the
training loss; lower is better) against the recording; the f0 error: the median |cents| between
pyin on the output and pyin on the recording over the frames voiced (voiced probability >= 0.5)
in both, pyin searching an octave either side of the note's pitch for both; and the share of the
recording's voiced frames that are voiced in the output (a mostly noisy output has few).
The decoder renders frames quieter than -70 dB silent (the gate of synth.transfer).

Speed: the realtime factor (audio seconds per wall second, best of --repeats) of the `decoder`
instrument through synth.engine (network + oscillator bank + filtered noise, 48 kHz, 256-sample
blocks, held notes) for 1 and 8 voices, on one CPU core (sched_setaffinity; --cpu, default the
one idlest over half a second), BLAS and torch at one thread. A per-frame breakdown follows: the
network (DecoderRuntime.step), the oscillator bank and the filtered noise, each kernel timed alone. In the same run, a Vocos generator (PyPI vocos; built from its classes with its
published 24 kHz mel configuration, random weights, nothing downloaded) renders the same duration
from mel frames, one thread, the whole clip in one call (its best case: it is not streaming);
its mel extraction is not timed. Vocos' output is 24 kHz, ours 48 kHz.

Usage: .venv/bin/python bench/decoder.py [--model presets/models/NAME] [--data DATA_DIR] [--notes 20]
       [--seconds 10] [--repeats 3] [--cpu N] [--no-quality] [--no-speed]
Without --model a decoder with random weights (the training defaults' size) is made; its quality
figures are meaningless and the bench says so. Without --data the quality part is skipped.
pyworld and vocos are not project dependencies: `.venv/bin/python -m pip install pyworld vocos`
(pin torch and torchaudio with a constraints file so pip leaves them alone); a peer that is not
installed is reported and left out.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from models.data import HOP_SAMPLES, MEL, SAMPLE_RATE, dataset_statistics, read_manifest
from models.ddsp_synth import multi_resolution_stft_loss
from synth.dsp.decoder_runtime import load_runtime, model_paths, read_metadata
from synth.dsp.features import f0_pyin
from synth.errors import SynthError
from synth.transfer import DEFAULT_GATE_DB, render_frames

BLOCK = 256
GRIFFIN_LIM_ITERATIONS = 32
WORLD_ENVELOPE_FLOOR_HZ = 71.0  # pyworld's default f0 floor (its envelope FFT: 2048 at 48 kHz)
VOICED = 0.5  # pyin voiced probability above which a frame counts as voiced
SYSTEMS = ("decoder", "griffin-lim", "world")


# ----------------------------------------------------------------------------- models and data

def random_model(folder: Path, data: Path | None) -> Path:
    """A decoder with random weights (seed 0) of the size `synth train decoder` makes by default,
    for the instruments and feature ranges of `data` when given; returns its stem."""
    from models.decoder import Decoder, DecoderConfig
    from models.model_files import save_model
    from models.train_decoder import TrainSettings

    settings = TrainSettings()
    instruments, f0_range, loud_range = ["random"], (30.0, 2100.0), (-120.0, 0.0)
    if data is not None:
        stats = dataset_statistics(data)
        instruments = sorted({e["instrument"] for e in read_manifest(data)["notes"]})
        f0_range, loud_range = tuple(stats["f0_range_hz"]), tuple(stats["loudness_range_db"])
    config = DecoderConfig(sample_rate=SAMPLE_RATE, hop_samples=HOP_SAMPLES, harmonics=settings.harmonics,
                           noise_bands=settings.noise_bands, hidden=settings.hidden, latent_dims=settings.latent_dims,
                           instruments=instruments, f0_range_hz=f0_range, loudness_range_db=loud_range)
    torch.manual_seed(0)
    stem = folder / "random-decoder"
    save_model(Decoder(config), config, stem, {"training_command": "random weights (bench/decoder.py)"})
    return stem


def is_trained(stem: Path) -> bool:
    """Whether the model's metadata records a training run (`synth train decoder` writes "training")."""
    return "training" in read_metadata(model_paths(stem)[1])


def held_out_notes(data: Path, count: int) -> list[dict]:
    """Up to `count` segments of the "test" split (manifest order): name, instrument, note, audio
    float32 [F * hop], f0_hz, voiced, loudness_db [F], mel [F, 128]."""
    manifest = read_manifest(data)
    notes = []
    for entry in [e for e in manifest["notes"] if e.get("split") == "test"][:count]:
        a, b = entry["start_frame"], entry["stop_frame"]
        with np.load(data / entry["file"], allow_pickle=False) as arrays:
            note = {key: arrays[key][a:b] for key in ("f0_hz", "voiced", "loudness_db", "mel")}
            note["audio"] = arrays["audio"][a * HOP_SAMPLES:b * HOP_SAMPLES].astype(np.float32)
        note.update(name=Path(entry["file"]).stem + (f"@{a}" if a else ""), instrument=entry["instrument"],
                    note=int(entry["note"]))
        notes.append(note)
    if not notes:
        raise SynthError(f"{data}: the manifest lists no 'test' notes")
    return notes


# ----------------------------------------------------------------------------- the three systems

def decoder_resynthesis(runtime, note: dict) -> np.ndarray:
    """The decoder's audio [F * hop] from the note's own f0/loudness frames and instrument z."""
    instrument = note["instrument"] if note["instrument"] in runtime.instruments else None
    if instrument is not None and runtime.latent_dims > 0:
        runtime.set_voice_instrument(0, instrument)
    loud = note["loudness_db"]
    return render_frames(runtime, note["f0_hz"], loud, loud >= DEFAULT_GATE_DB)


def griffin_lim(mel_log: np.ndarray, samples: int, seed: int = 0) -> np.ndarray:
    """Audio [samples] from log-mel frames [F, 128] (frame k centred on sample (k+1)*hop, the data
    set's convention): mel power -> InverseMelScale -> GriffinLim. torchaudio's frame t is centred
    on t*hop, so the first frame (t = 0) is a copy of ours 0."""
    import torchaudio

    power_mel = torch.from_numpy(np.exp(mel_log.astype(np.float64)).T.astype(np.float32))  # [128, F]
    power_mel = torch.cat([power_mel[:, :1], power_mel], dim=1)
    n_fft = MEL["n_fft"]
    inverse = torchaudio.transforms.InverseMelScale(
        n_stft=n_fft // 2 + 1, n_mels=MEL["n_mels"], sample_rate=SAMPLE_RATE, f_min=MEL["f_min_hz"],
        f_max=SAMPLE_RATE / 2, mel_scale=MEL["mel_scale"])
    gl = torchaudio.transforms.GriffinLim(n_fft=n_fft, n_iter=GRIFFIN_LIM_ITERATIONS, hop_length=HOP_SAMPLES,
                                          power=MEL["power"], length=samples)
    torch.manual_seed(seed)
    with torch.no_grad():
        return gl(inverse(power_mel)).numpy().astype(np.float32)


def _pyworld():
    """pyworld's compiled module. Its package __init__ asks pkg_resources (gone from recent
    setuptools) for its version, so the extension is loaded directly when that import fails."""
    try:
        import pyworld
        return pyworld
    except ModuleNotFoundError as error:
        if error.name != "pkg_resources":
            raise
    spec = importlib.util.find_spec("pyworld")
    found = glob.glob(os.path.join(os.path.dirname(spec.origin), "pyworld*.so"))
    if not found:
        raise ModuleNotFoundError("pyworld's compiled module is missing", name="pyworld")
    module_spec = importlib.util.spec_from_file_location("pyworld.pyworld", found[0])
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def world_resynthesis(audio: np.ndarray, f0_limits_hz: tuple[float, float]) -> np.ndarray:
    """WORLD analysis/resynthesis (harvest, cheaptrick, d4c, synthesize) at 48 kHz, frame period
    one hop; returns float32 [len(audio)]."""
    pw = _pyworld()
    x = audio.astype(np.float64)
    period_ms = 1000.0 * HOP_SAMPLES / SAMPLE_RATE
    low, high = f0_limits_hz
    f0, times = pw.harvest(x, SAMPLE_RATE, f0_floor=low, f0_ceil=high, frame_period=period_ms)
    # cheaptrick analyses unvoiced frames at WORLD's default 500 Hz: its window must fit them too
    envelope_floor = min(low, WORLD_ENVELOPE_FLOOR_HZ)
    fft_size = pw.get_cheaptrick_fft_size(SAMPLE_RATE, envelope_floor)
    envelope = pw.cheaptrick(x, f0, times, SAMPLE_RATE, f0_floor=envelope_floor, fft_size=fft_size)
    aperiodicity = pw.d4c(x, f0, times, SAMPLE_RATE, fft_size=fft_size)
    y = pw.synthesize(f0, envelope, aperiodicity, SAMPLE_RATE, period_ms)
    out = np.zeros(audio.size, dtype=np.float32)
    out[:min(out.size, y.size)] = y[:out.size]
    return out


# ----------------------------------------------------------------------------- figures

def stft_distance(audio: np.ndarray, reference: np.ndarray) -> float:
    """models.ddsp_synth.multi_resolution_stft_loss of audio against reference (same length)."""
    with torch.no_grad():
        return float(multi_resolution_stft_loss(torch.from_numpy(audio), torch.from_numpy(reference)))


def f0_limits(note: dict) -> tuple[float, float]:
    """pyin's range for a note (Hz): an octave either side of its MIDI pitch, or of the median of
    its voiced stored f0 for a user file (note -1)."""
    if note["note"] >= 0:
        centre = 440.0 * 2.0 ** ((note["note"] - 69) / 12.0)
    else:
        voiced = note["f0_hz"][(note["voiced"] >= VOICED) & (note["f0_hz"] > 0)]
        centre = float(np.median(voiced)) if voiced.size else 300.0
    return max(30.0, centre / 2.0), min(SAMPLE_RATE / 2.0 - 1.0, centre * 2.0)


def f0_agreement(audio: np.ndarray, reference_f0: np.ndarray, reference_voiced: np.ndarray,
                 limits: tuple[float, float]) -> tuple[float, float]:
    """(median |cents| between pyin's f0 of `audio` and reference_f0 over the frames voiced in
    both, NaN when there are none; percentage of the reference's voiced frames (bool [F]) that
    are voiced in `audio` too)."""
    f0, prob = f0_pyin(audio, SAMPLE_RATE, HOP_SAMPLES, *limits)
    frames = min(f0.size, reference_f0.size)
    reference = reference_voiced[:frames] & (reference_f0[:frames] > 0)
    both = reference & (prob[:frames] >= VOICED) & (f0[:frames] > 0)
    share = 100.0 * both.sum() / max(int(reference.sum()), 1)
    if not both.any():
        return math.nan, share
    return float(np.median(np.abs(1200.0 * np.log2(f0[:frames][both] / reference_f0[:frames][both])))), share


def _cells(values, width: int, digits: int) -> str:
    return "".join(f"{'-':>{width}s}" if math.isnan(v) else f"{v:{width}.{digits}f}" for v in values)


def quality(stem: Path, data: Path, count: int) -> None:
    """Print the per-note table and the means (see the module docstring)."""
    notes = held_out_notes(data, count)
    runtime = load_runtime(stem, 1)
    runtime.warm_up()
    try:
        _pyworld()
        systems = SYSTEMS
    except ModuleNotFoundError:
        print("pyworld is not installed: WORLD is left out (.venv/bin/python -m pip install pyworld)")
        systems = SYSTEMS[:2]
    unknown = sorted({n["instrument"] for n in notes} - set(runtime.instruments))
    if unknown:
        print(f"warning: the model has no z for {', '.join(unknown)}; those notes use its first instrument")
    print(f"\nQuality on {len(notes)} held-out notes of {data}")
    print("STFT: multi-resolution STFT distance to the recording (lower is better); cents: median |f0 error| on "
          "frames voiced in both; voiced: % of the recording's voiced frames voiced in the output; '-': none")
    short = {"decoder": "dec", "griffin-lim": "GL", "world": "WORLD"}
    print(f"{'note':30s}" + "".join(f"{'STFT ' + short[s]:>11s}" for s in systems)
          + "".join(f"{'cents ' + short[s]:>12s}" for s in systems)
          + "".join(f"{'voiced ' + short[s]:>13s}" for s in systems))
    rows = []
    for note in notes:
        reference = note["audio"]
        limits = f0_limits(note)
        ref_f0, ref_prob = f0_pyin(reference, SAMPLE_RATE, HOP_SAMPLES, *limits)
        voiced = ref_prob >= VOICED
        outputs = {"decoder": decoder_resynthesis(runtime, note),
                   "griffin-lim": griffin_lim(note["mel"], reference.size)}
        if "world" in systems:
            outputs["world"] = world_resynthesis(reference, limits)
        agreement = [f0_agreement(outputs[s], ref_f0, voiced, limits) for s in systems]
        row = ([stft_distance(outputs[s], reference) for s in systems] + [a[0] for a in agreement]
               + [a[1] for a in agreement])
        rows.append(row)
        k = len(systems)
        print(f"{note['name'][:30]:30s}" + _cells(row[:k], 11, 3) + _cells(row[k:2 * k], 12, 1)
              + _cells(row[2 * k:], 13, 0))
    table = np.array(rows)
    k = len(systems)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(table, axis=0)
    print(f"{'mean':30s}" + _cells(means[:k], 11, 3) + _cells(means[k:2 * k], 12, 1) + _cells(means[2 * k:], 13, 0))
    missing = {s: int(np.isnan(table[:, k + i]).sum()) for i, s in enumerate(systems)}
    if any(missing.values()):
        print("notes without a voiced output frame (left out of the cents mean): "
              + ", ".join(f"{s} {n}" for s, n in missing.items()))
    wins = int(np.sum(table[:, 0] < table[:, 1]))
    verdict = "met" if means[0] < means[1] else "NOT met"
    print(f"goal (decoder better than Griffin-Lim on the STFT distance): {verdict}: mean {means[0]:.3f} vs "
          f"{means[1]:.3f}, better on {wins} of {len(rows)} notes")


# ----------------------------------------------------------------------------- speed

def best_time(function, repeats: int) -> float:
    """Shortest wall time (s) of `repeats` calls of function()."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def decoder_realtime_factor(stem: Path, voices: int, seconds: float, repeats: int) -> float:
    """Audio seconds per wall second of the decoder instrument holding `voices` notes, 48 kHz,
    256-sample blocks, 2 channels, through synth.engine (prepare and warm-up not timed)."""
    from synth.engine import Engine, Slot
    from synth.events import NoteOn
    from synth.plugins.decoder import NeuralDecoder
    from synth.render import render_blocks

    frames = int(seconds * SAMPLE_RATE)

    def run():
        plugin = NeuralDecoder(model=model_paths(stem)[1], voice_limit=voices, sustain=1.0)
        engine = Engine([Slot("dec", plugin)], sample_rate=SAMPLE_RATE, max_block=BLOCK, channels=2)
        engine.prepare()
        events = [NoteOn(0, 48 + 3 * v, 100) for v in range(voices)]
        start = time.perf_counter()
        for _ in render_blocks(engine, events, frames, BLOCK):
            pass
        elapsed = time.perf_counter() - start
        if plugin.active_voices != voices:
            raise RuntimeError(f"expected {voices} sounding voices, found {plugin.active_voices}")
        return elapsed

    return seconds / min(run() for _ in range(repeats))


def network_step_us(stem: Path, voices: int, steps: int = 2000) -> float:
    """Microseconds per DecoderRuntime.step for `voices` voices (the network alone)."""
    runtime = load_runtime(stem, voices)
    runtime.warm_up()
    f0 = np.full(voices, 220.0, np.float32)
    loud = np.full(voices, -30.0, np.float32)

    def run():
        for _ in range(steps):
            runtime.step(f0, loud)

    return 1e6 * best_time(run, 3) / steps


def synthesis_step_us(stem: Path, voices: int, frames: int = 2000) -> tuple[float, float]:
    """(oscillator bank, filtered noise) microseconds per frame for `voices` voices of the model's
    harmonics and noise bands, at full amplitude, the kernels alone."""
    from synth.dsp.decoder_voices import noise_voices
    from synth.dsp.filtered_noise import make_noise_state
    from synth.dsp.noise import seed_states
    from synth.dsp.oscbank import make_workspace, render_partials

    config = load_runtime(stem, 1).config
    hop, harmonics, bands = config["hop_samples"], config["harmonics"], config["noise_bands"]
    count = voices * harmonics
    freq = np.tile(110.0 * np.arange(1, harmonics + 1, dtype=np.float32), voices)
    amp = np.full(count, 0.01, np.float32)
    phase, workspace = np.zeros(count), make_workspace(count)
    out = np.zeros(hop, np.float32)
    states = [make_noise_state(bands) for _ in range(voices)]
    taps, overlap = np.stack([s[0] for s in states]), np.stack([s[1] for s in states])
    magnitudes = np.full((voices, bands), 0.01, np.float32)
    rng, white, scratch = seed_states(0, voices), np.zeros(hop, np.float32), np.zeros(bands, np.float32)
    active = np.ones(voices, dtype=bool)

    def oscillators():
        for _ in range(frames):
            render_partials(out, hop, freq, freq, amp, amp, phase, float(config["sample_rate"]), workspace)

    def noise():
        for _ in range(frames):
            noise_voices(out, hop, rng, white, magnitudes, 1.0, active, scratch, taps, overlap)

    oscillators(), noise()  # compile or load from numba's cache
    return 1e6 * best_time(oscillators, 3) / frames, 1e6 * best_time(noise, 3) / frames


def vocos_realtime_factor(seconds: float, repeats: int) -> float:
    """Audio seconds per wall second of a random-weight Vocos generator (backbone + ISTFT head,
    its published 24 kHz mel configuration) on mel frames of `seconds` of noise."""
    from vocos.feature_extractors import MelSpectrogramFeatures
    from vocos.heads import ISTFTHead
    from vocos.models import VocosBackbone

    torch.manual_seed(0)
    features = MelSpectrogramFeatures(sample_rate=24000, n_fft=1024, hop_length=256, n_mels=100)
    backbone = VocosBackbone(input_channels=100, dim=512, intermediate_dim=1536, num_layers=8).eval()
    head = ISTFTHead(dim=512, n_fft=1024, hop_length=256).eval()
    audio = 0.1 * torch.randn(1, int(seconds * 24000))
    with torch.inference_mode():
        mel = features(audio)
        head(backbone(mel[:, :, :32]))  # warm-up

        def run():
            head(backbone(mel))

        return seconds / best_time(run, repeats)


def idlest_cpu(window_s: float = 0.5) -> int:
    """The CPU (of those this process may use) that was idle longest over `window_s` seconds,
    from /proc/stat; the highest-numbered allowed one where that file is missing."""
    allowed = sorted(os.sched_getaffinity(0))

    def idle_ticks() -> dict[int, int]:
        ticks = {}
        with open("/proc/stat") as stat:
            for line in stat:
                name, *fields = line.split()
                if name.startswith("cpu") and name != "cpu":
                    ticks[int(name[3:])] = int(fields[3]) + int(fields[4])  # idle + iowait
        return ticks

    try:
        before = idle_ticks()
        time.sleep(window_s)
        after = idle_ticks()
    except OSError:
        return allowed[-1]
    return max(allowed, key=lambda cpu: (after.get(cpu, 0) - before.get(cpu, 0), cpu))


def speed(stem: Path, seconds: float, repeats: int, cpu: int | None = None) -> None:
    """Print the realtime factors on one core (see the module docstring); cpu: which (default the
    idlest)."""
    from threadpoolctl import threadpool_limits

    cpu = idlest_cpu() if cpu is None else cpu
    previous = os.sched_getaffinity(0)
    threads = torch.get_num_threads()
    os.sched_setaffinity(0, {cpu})
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            print(f"\nSpeed on CPU core {cpu} (one thread), {seconds:g} s of audio, best of {repeats}; "
                  f"realtime factor = audio seconds / wall seconds")
            factors = {}
            frame_us = 1e6 * HOP_SAMPLES / SAMPLE_RATE
            for voices in (1, 8):
                factors[voices] = decoder_realtime_factor(stem, voices, seconds, repeats)
                oscillators_us, noise_us = synthesis_step_us(stem, voices)
                print(f"decoder, {voices} voice{'s' * (voices > 1)} (engine: network + oscillator bank + noise, "
                      f"48 kHz, {BLOCK}-sample blocks): {factors[voices]:7.1f}x realtime; per frame "
                      f"{frame_us / factors[voices]:.0f} us of {frame_us:.0f}: "
                      f"network {network_step_us(stem, voices):.0f}, oscillator bank {oscillators_us:.0f}, "
                      f"noise {noise_us:.0f} (kernels alone)")
            try:
                vocos = vocos_realtime_factor(seconds, repeats)
            except ModuleNotFoundError as error:
                print(f"vocos is not installed ({error.name}): .venv/bin/python -m pip install vocos")
                vocos = None
            if vocos is not None:
                print(f"Vocos generator (random weights, 24 kHz mel config, whole clip at once): "
                      f"{vocos:7.1f}x realtime")
                print(f"ratio decoder / Vocos: 1 voice {factors[1] / vocos:.1f}x, 8 voices {factors[8] / vocos:.1f}x")
            verdicts = []
            for voices, factor in factors.items():
                met = factor >= 50 and (vocos is None or factor > vocos)
                verdicts.append(f"{voices} voice{'s' * (voices > 1)} {'met' if met else 'NOT met'}")
            print(f"goal (>= 50x realtime and faster than Vocos): {', '.join(verdicts)}")
    finally:
        os.sched_setaffinity(0, previous)
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="decoder model path (stem, .json or .safetensors); default: random weights")
    parser.add_argument("--data", help="data set folder (models.data) whose 'test' split is used")
    parser.add_argument("--notes", type=int, default=20, help="held-out notes to compare (default 20)")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio rendered per speed run (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="speed runs per figure, best taken (default 3)")
    parser.add_argument("--cpu", type=int, help="CPU core for the speed runs (default: the idlest one)")
    parser.add_argument("--no-quality", action="store_true", help="skip the quality comparison")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed comparison")
    args = parser.parse_args(argv)
    data = Path(args.data) if args.data else None
    with tempfile.TemporaryDirectory() as scratch:
        if args.model:
            stem = model_paths(args.model)[1].with_suffix("")
        else:
            stem = random_model(Path(scratch), data)
        print(f"model: {model_paths(stem)[1]}")
        if not is_trained(stem):
            print("WARNING: this model has random weights (no training record): its quality figures are meaningless; "
                  "its speed figures hold for a trained model of the same size")
        if args.no_quality:
            pass
        elif data is None:
            print("quality: skipped (no --data; build a data set with `synth train decoder --data DIR --build` "
                  "or models.data.build_dataset)")
        else:
            quality(stem, data, args.notes)
        if not args.no_speed:
            speed(stem, args.seconds, args.repeats, args.cpu)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SynthError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
