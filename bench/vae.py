"""The timbre VAE, measured: does z matter, does it know the instruments, is it smooth, is it fast.

1. Reconstruction: the held-out excerpts of the data set (models.data "test" split, never seen
   in training; the same excerpts training evaluated) decoded with z = the encoder's posterior
   mean of each excerpt, against the same decoder given the mean z of the training notes for all;
   the multi-resolution STFT distance (the training loss, lower is better) of each. If z did not
   matter the two would be equal.
2. Linear probe: a multinomial logistic regression (scikit-learn, standardised inputs) fitted on
   the training notes' posterior means predicts the instrument family (and the instrument) of the
   held-out notes from theirs. Chance: the share of the most common family among the held-out
   notes (and 1 / instruments).
3. Smoothness: z moves along the first principal axis in 11 steps, over -2.5..+2.5 standard
   deviations (the /latent/xy x range) and over the span of the training notes (5th..95th percentile); at each the decoder plays one second at 220, 330 and 440 Hz,
   -25 dB, through the realtime path, and the spectral centroid (Hz, power-weighted, of the last
   0.75 s) is measured. Reported: Spearman's rank correlation of the step with the centroid, per
   pitch (+1 or -1 is monotonic).
4. Speed on one core (torch and BLAS at one thread): encoding one frame of log-mel (torch) plus
   decoding one frame for one voice (DecoderRuntime.step + oscillator bank + filtered noise), as a
   share of one 256-sample block at 48 kHz (5.33 ms); best of --repeats thousand-frame runs.

Usage: .venv/bin/python bench/vae.py --model presets/models/gm-vae --data data/gm [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from models.data import HOP_SAMPLES, SAMPLE_RATE, NoteExcerpts, read_manifest
from models.model_files import load_model
from models.train_vae import _Joint, evaluate_vae, note_posteriors
from models.vae import load_vae
from synth.dsp.decoder_runtime import load_runtime
from synth.dsp.decoder_synth import DecoderSynth
from synth.dsp.timbre_space import TimbreSpace
from synth.transfer import render_frames


def reconstruction(joint, data, instruments) -> tuple[float, float]:
    test_set = NoteExcerpts(data, "test", 96, instruments=instruments, seed=1234)
    loader = torch.utils.data.DataLoader(test_set, batch_size=8)
    means, _, _ = note_posteriors(joint.encoder, data, "train")
    mean_z = torch.from_numpy(means.mean(axis=0).astype(np.float32))
    return evaluate_vae(joint, loader, "cpu"), evaluate_vae(joint, loader, "cpu", mean_z)


def probe(encoder, data) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_z, train_names, train_families = note_posteriors(encoder, data, "train")
    test_z, test_names, test_families = note_posteriors(encoder, data, "test")
    result = {"held_out_notes": len(test_names)}
    for key, train_labels, test_labels in (("family", train_families, test_families),
                                           ("instrument", train_names, test_names)):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=1.0))
        model.fit(train_z, train_labels)
        accuracy = float(np.mean(model.predict(test_z) == np.array(test_labels)))
        counts = np.unique(test_labels, return_counts=True)[1]
        result[key] = (accuracy, float(counts.max() / counts.sum()), len(set(train_labels)))
    return result


def centroid_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size))) ** 2
    freqs = np.fft.rfftfreq(audio.size, 1.0 / SAMPLE_RATE)
    return float((spectrum * freqs).sum() / spectrum.sum())


def smoothness(space: TimbreSpace, runtime, low_std: float = -2.5, high_std: float = 2.5) -> dict:
    """f0 -> (Spearman's rho of step and centroid, centroids in Hz) along the first axis from
    low_std to high_std standard deviations about the mean, 11 steps."""
    steps = np.linspace(low_std, high_std, 11)
    frames = SAMPLE_RATE // HOP_SAMPLES
    result = {}
    for f0 in (220.0, 330.0, 440.0):
        centroids = []
        for step in steps:
            runtime.latent[0] = (space.mean + step * space.axis_std[0] * space.axes[0]).astype(np.float32)
            audio = render_frames(runtime, np.full(frames, f0), np.full(frames, -25.0))
            centroids.append(centroid_hz(audio[SAMPLE_RATE // 4:]))
        rho = spearmanr(steps, centroids).statistic
        result[f0] = (float(rho), centroids)
    return result


def speed(encoder, runtime, repeats: int) -> tuple[float, float, float]:
    """Best µs per frame of (encode one mel frame, decode + synthesise one frame)."""
    mel = torch.randn(1, 1, encoder.config.mel_bands)
    synth = DecoderSynth(runtime)
    f0, loud, active = np.full(1, 220.0, np.float32), np.full(1, -25.0, np.float32), np.ones(1, bool)
    out = np.zeros(HOP_SAMPLES, np.float32)
    best_encode = best_decode = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            started = time.perf_counter()
            for _ in range(1000):
                encoder(mel)
            best_encode = min(best_encode, (time.perf_counter() - started) / 1000)
            started = time.perf_counter()
            for _ in range(1000):
                runtime.step(f0, loud, None, active)
                synth.render_frame(out, out, f0, active, 1.0, 1.0)
            best_decode = min(best_decode, (time.perf_counter() - started) / 1000)
    return 1e6 * best_encode, 1e6 * best_decode, 1e6 * HOP_SAMPLES / SAMPLE_RATE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="presets/models/gm-vae")
    parser.add_argument("--data", default="data/gm")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    encoder, meta = load_vae(args.model)
    space = TimbreSpace(meta, args.model + ".json")
    decoder, _, _ = load_model(space.decoder_path)
    joint = _Joint(encoder, decoder).eval()
    instruments = sorted({n["instrument"] for n in read_manifest(args.data)["notes"]})
    print(f"timbre model {args.model}: z has {space.latent_dims} dimensions; KL per dimension (nats, end of "
          f"training): {' '.join(f'{x:.2f}' for x in meta['kl_per_dim'])}")

    encoded, mean_z = reconstruction(joint, args.data, instruments)
    print(f"held-out reconstruction, multi-resolution STFT distance: encoded z {encoded:.3f}, training mean z "
          f"{mean_z:.3f} (ratio {mean_z / encoded:.3f}; > 1 means z matters)")

    found = probe(encoder, args.data)
    for key in ("family", "instrument"):
        accuracy, majority, classes = found[key]
        print(f"linear probe on z, {key} of {found['held_out_notes']} held-out notes: accuracy {100 * accuracy:.0f}% "
              f"(chance: {100 * majority:.0f}% by always guessing the most common, {100 / classes:.0f}% uniform "
              f"over {classes})")

    runtime = load_runtime(space.decoder_path, 1)
    along = (space.posterior_means - space.mean) @ space.axes[0] / space.axis_std[0]
    covered = tuple(float(x) for x in np.percentile(along, [5, 95]))
    for label, (low, high) in (("the /latent/xy x range, -2.5..+2.5 std", (-2.5, 2.5)),
                               (f"the training notes' 5th..95th percentile, {covered[0]:+.2f}..{covered[1]:+.2f} std",
                                covered)):
        for f0, (rho, centroids) in smoothness(space, runtime, low, high).items():
            print(f"first principal axis over {label}, {f0:.0f} Hz: spectral centroid "
                  f"{' '.join(f'{c:.0f}' for c in centroids)} Hz; Spearman rank correlation {rho:+.3f}")

    encode_us, decode_us, block_us = speed(encoder, load_runtime(space.decoder_path, 1), args.repeats)
    print(f"one frame on one core: encode {encode_us:.0f} us + decode {decode_us:.0f} us = "
          f"{encode_us + decode_us:.0f} us of a {block_us:.0f} us block ({100 * (encode_us + decode_us) / block_us:.1f}%)")


if __name__ == "__main__":
    main()
