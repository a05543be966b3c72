"""Text-to-mel plus the speech decoder against the reference speech of held-out sentences, and speed.

For each held-out utterance of the corpus (never seen in training; models.speech_data's split):
- ours: `Speaker.say` of its normalised text (predicted durations, pitch, energy; the speech
  decoder renders the frames), the whole text-to-audio path;
- decoder only: the speech decoder re-playing the recording's own mel, f0 and loudness frames
  (the vocoder's share of the error);
- Griffin-Lim: the recording's own log-mel frames -> torchaudio InverseMelScale -> GriffinLim (32
  iterations, n_fft 2048, hop 256), an oracle mel vocoder with no network.
Mel cepstral distortion against the recording: 24 cepstral coefficients (c1..c24 of the
log-amplitude 128-band mel spectrum, scaled as a Fourier cepstrum), frames aligned by DTW (librosa.sequence.dtw on those
coefficients), MCD = 10 / ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2) averaged over the path (dB; lower
is better; the two other rows use the same alignment procedure, though their frames line up
already). Duration error: per token, |predicted - aligned| frames (ms) against the durations the
aligner measured on the recording, mean over tokens, and the error of the utterance's total length.

Intelligibility (--wer N): an independent recogniser, PocketSphinx with its bundled en-us acoustic
and language models (pip install -e .[bench]), transcribes N held-out sentences three ways: ours
(text to audio), the corpus's own recording (the voice ours learned: the ceiling), and espeak-ng
(en-us, 160 words/min). Word error rate (jiwer) against the normalised text, lower-cased without
punctuation: the mean over sentences, and over all words (errors / reference words). Audio goes to
the recogniser at 16 kHz (scipy's polyphase resampler).

Speed: text (espeak-ng phonemes included) to audio for a sentence of about 10 s, on one CPU core
(torch and BLAS one thread), best of --repeats; the realtime factor is audio seconds per second.

Usage: .venv/bin/python bench/text_to_mel.py [--corpus data/speech-slt] [--tts presets/models/slt-tts]
       [--decoder presets/models/slt-decoder] [--utterances 20] [--repeats 3] [--wer 30]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

import librosa  # noqa: E402
import soundfile  # noqa: E402
import torch  # noqa: E402
from scipy.fft import dct  # noqa: E402

from models.data import HOP_SAMPLES, MEL, SAMPLE_RATE, log_mel  # noqa: E402
from models.speech_data import load_features, read_metadata, split_ids  # noqa: E402
from synth.speech import Speaker  # noqa: E402
from synth.transfer import render_frames  # noqa: E402

CEPSTRA = 24
RECOGNISER_RATE = 16000  # Hz: PocketSphinx's en-us models


def cepstra(audio: np.ndarray) -> np.ndarray:
    """c1..c24 [frames, 24]: the cepstrum of the log-amplitude mel spectrum (natural log, half the
    log power), c_k = (1/N) sum_n 2 L_n cos(pi k (n + 1/2) / N) over the N = 128 bands, which
    scales as a Fourier cepstrum does (and so as SPTK's mel-cepstra the MCD formula assumes)."""
    log_amplitude = 0.5 * log_mel(audio.astype(np.float32))
    return dct(log_amplitude, type=2, norm=None, axis=1)[:, 1:CEPSTRA + 1] / log_amplitude.shape[1]


def mcd_db(reference: np.ndarray, other: np.ndarray) -> float:
    """Mean mel cepstral distortion (dB) of `other` against `reference` along their DTW path."""
    a, b = cepstra(reference), cepstra(other)
    _, path = librosa.sequence.dtw(a.T, b.T, metric="euclidean")
    diff = a[path[:, 0]] - b[path[:, 1]]
    return float(np.mean(10.0 / np.log(10.0) * np.sqrt(2.0 * np.sum(diff ** 2, axis=1))))


def transcribe(decoder, audio: np.ndarray, rate: int) -> str:
    """PocketSphinx's words for float audio at `rate` Hz."""
    from scipy.signal import resample_poly

    low = resample_poly(audio.astype(np.float64), RECOGNISER_RATE, rate)
    pcm = (np.clip(low / max(float(np.max(np.abs(low))), 1e-9) * 0.7, -1.0, 1.0) * 32767).astype(np.int16)
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return hypothesis.hypstr if hypothesis is not None else ""


def words_of(text: str) -> str:
    """Lower-case words without punctuation: what a recogniser's transcript is compared as."""
    return " ".join(re.findall(r"[a-z']+", text.lower()))


def espeak_audio(text: str) -> tuple[np.ndarray, int]:
    """espeak-ng's en-us rendering of `text` (160 words/min): (float audio, rate Hz)."""
    with tempfile.TemporaryDirectory() as folder:
        wav = os.path.join(folder, "espeak.wav")
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", wav, "--", text], check=True, capture_output=True)
        audio, rate = soundfile.read(wav, dtype="float32")
    return audio, rate


def intelligibility(speaker: Speaker, corpus: str, held: list[str], texts: dict[str, str]) -> None:
    """Print the word error rates of ours, the corpus voice and espeak-ng (module docstring)."""
    try:
        import jiwer
        from pocketsphinx import Decoder
    except ImportError:
        print("--wer needs PocketSphinx and jiwer: .venv/bin/pip install -e '.[bench]'")
        return
    voices = {"ours (text to audio)": lambda uid: (speaker.say(texts[uid]), SAMPLE_RATE),
              "the corpus voice (its recording)": lambda uid: soundfile.read(
                  os.path.join(corpus, "wavs", f"{uid}.wav"), dtype="float32"),
              "espeak-ng en-us": lambda uid: espeak_audio(texts[uid])}
    references = [words_of(texts[uid]) for uid in held]
    print(f"word error rate, PocketSphinx en-us, {len(held)} held-out sentences of {corpus}:")
    for name, render in voices.items():
        decoder = Decoder(samprate=RECOGNISER_RATE, loglevel="FATAL")  # its own: the recogniser adapts as it hears
        hypotheses = [words_of(transcribe(decoder, *render(uid))) for uid in held]
        per_sentence = [jiwer.wer(ref, hyp) for ref, hyp in zip(references, hypotheses)]
        print(f"  {name:42s} mean {np.mean(per_sentence):5.3f}  over all words {jiwer.wer(references, hypotheses):5.3f}",
              flush=True)


def griffin_lim(mel: np.ndarray) -> np.ndarray:
    import torchaudio

    inverse = torchaudio.transforms.InverseMelScale(n_stft=MEL["n_fft"] // 2 + 1, n_mels=MEL["n_mels"],
                                                    sample_rate=SAMPLE_RATE, f_min=0.0, f_max=SAMPLE_RATE / 2,
                                                    mel_scale=MEL["mel_scale"])
    gl = torchaudio.transforms.GriffinLim(n_fft=MEL["n_fft"], hop_length=HOP_SAMPLES, n_iter=32, power=2.0)
    with torch.no_grad():
        power = inverse(torch.from_numpy(np.exp(mel.T.astype(np.float32))))
        return gl(power).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="data/speech-slt")
    parser.add_argument("--tts", default="presets/models/slt-tts")
    parser.add_argument("--decoder", default="presets/models/slt-decoder")
    parser.add_argument("--utterances", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--wer", type=int, metavar="N", help="only the word error rates, on N held-out sentences")
    args = parser.parse_args()
    torch.set_num_threads(1)
    speaker = Speaker(args.tts + ".json", args.decoder + ".json")
    texts = {uid: normalized for uid, _, normalized in read_metadata(args.corpus)}
    _, held = split_ids(args.corpus)
    if args.wer:
        intelligibility(speaker, args.corpus, held[:args.wer], texts)
        return
    held = held[:args.utterances]
    aligned = np.load(os.path.join(args.corpus, "durations.npz"))
    frame_ms = 1000.0 * HOP_SAMPLES / SAMPLE_RATE
    rows = {"ours (text to audio)": [], "speech decoder on the recording's frames": [], "Griffin-Lim (32 it.)": []}
    token_errors, length_errors = [], []
    for uid in held:
        features = load_features(args.corpus, uid)
        reference = features["audio"]
        ours = speaker.say(texts[uid])
        rows["ours (text to audio)"].append(mcd_db(reference, ours))
        loud = features["loudness_db"]
        vocoded = render_frames(speaker.runtime, features["f0_hz"], loud, loud >= -80.0, mel=features["mel"])
        rows["speech decoder on the recording's frames"].append(mcd_db(reference, vocoded))
        rows["Griffin-Lim (32 it.)"].append(mcd_db(reference, griffin_lim(features["mel"])))
        predicted = speaker.frames(texts[uid])["durations"]
        truth = aligned[uid]
        if predicted.size == truth.size:
            token_errors.append(np.mean(np.abs(predicted - truth)) * frame_ms)
            length_errors.append(abs(predicted.sum() - truth.sum()) / truth.sum())
    print(f"{len(held)} held-out sentences of {args.corpus}: mel cepstral distortion (dB, c1..c{CEPSTRA}, DTW-aligned)")
    for name, values in rows.items():
        print(f"  {name:42s} mean {np.mean(values):6.2f}  median {np.median(values):6.2f}")
    print(f"token durations against the aligner's on the recordings: mean |error| {np.mean(token_errors):.1f} ms a "
          f"token ({len(token_errors)} sentences); utterance length error {100 * np.mean(length_errors):.1f}%")

    sentence = " ".join(texts[uid] for uid in held)
    words = sentence.split()
    text, seconds = "", 0.0
    for count in range(4, len(words) + 1, 2):
        text = " ".join(words[:count])
        seconds = speaker.say(text).size / SAMPLE_RATE
        if seconds >= 10.0:
            break
    best = float("inf")
    for _ in range(args.repeats):
        started = time.perf_counter()
        audio = speaker.say(text)
        best = min(best, time.perf_counter() - started)
    print(f"speed: {audio.size / SAMPLE_RATE:.1f} s of speech ({len(text.split())} words) in {1000 * best:.0f} ms on one "
          f"core: {audio.size / SAMPLE_RATE / best:.1f}x realtime (goal 50x)")


if __name__ == "__main__":
    main()
