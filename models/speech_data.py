"""Speech corpora in the LJSpeech layout: building one with Festival or espeak-ng, reading one, and its features.

Layout (what LJSpeech and the tools built for it read): `<folder>/metadata.csv`, one utterance a
line, `id|text|normalized text` (UTF-8, no header), and `<folder>/wavs/<id>.wav`. Any rate and
channel count is read (mixed to mono, resampled to 48 kHz); the corpus built here is 48 kHz
16-bit mono. Held-out utterances: those whose sha256 of the id ranks in the lowest `test_fraction`
(deterministic, so a corpus grown later keeps its split), listed in `<folder>/heldout.txt` for
people and other tools.

`build_speech_corpus` makes a corpus from real English sentences (Debian's fortune databases:
quotations, literature, definitions...) spoken by Festival's cmu_us_slt_arctic_hts voice (made
from one speaker's recordings) or by espeak-ng, since no recorded corpus can be downloaded here. `prepare_features` computes, per utterance, the model's tokens
(models.text.text_tokens of the normalised text), log-mel frames, pyin f0 (Hz), the voicing flag
and A-weighted loudness (dB) at 48 kHz with a 256-sample hop, into `<folder>/features/<id>.npz`.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile
import torch
from tqdm import tqdm

from models.data import HOP_SAMPLES, SAMPLE_RATE, log_mel
from synth.dsp.features import f0_pyin, loudness_db
from synth.errors import SynthError

FORTUNE_FOLDER = Path("/usr/share/games/fortunes")
FORTUNE_FILES = ("fortunes", "literature", "wisdom", "people", "science", "education", "work", "food",
                 "pets", "platitudes", "miscellaneous", "humorists", "riddles", "definitions", "law",
                 "politics", "love", "men-women", "medicine", "news", "sports", "songs-poems", "kids")
FESTIVAL_VOICES = ("cmu_us_slt_arctic_hts",)  # Festival voices built from a real speaker's recordings (CMU ARCTIC)
DEFAULT_VOICE = FESTIVAL_VOICES[0]
SPEECH_F0_RANGE_HZ = (60.0, 500.0)  # pyin's search range for speech
FEATURE_RATE = 24000  # pyin runs at half rate (hop 128): the same frames, a quarter of the work
FEATURES_VERSION = 1
DEFAULT_TEST_FRACTION = 0.05
SENTENCES_PER_WORKER = 4  # spoken at a time by each Ray worker (the last batch may overshoot the minutes: dropped)
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


def fortune_sentences(folder: Path = FORTUNE_FOLDER, files=FORTUNE_FILES) -> list[str]:
    """Distinct English sentences of 4..24 words from fortune files (entries between '%' lines),
    with no attribution lines, verse layouts, code or unusual characters."""
    seen, sentences = set(), []
    for name in files:
        path = folder / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for entry in text.split("\n%\n"):
            lines = [line.strip() for line in entry.splitlines()
                     if line.strip() and not line.strip().startswith(("--", "-- ", "\t\t"))]
            joined = " ".join(lines)
            for sentence in _SENTENCE_END.split(joined):
                sentence = sentence.strip().strip('"').strip()
                words = _WORD.findall(sentence)
                if not 4 <= len(words) <= 24 or len(sentence) > 160:
                    continue
                if not re.fullmatch(r"[A-Za-z0-9 ,.;:!?'\"\-$%&()]+", sentence) or sentence[-1] not in ".!?":
                    continue
                if sum(c.isupper() for c in sentence) > 0.3 * len(words) + 2:
                    continue
                key = sentence.lower()
                if key not in seen:
                    seen.add(key)
                    sentences.append(sentence)
    return sentences


def is_held_out(utterance_id: str, test_fraction: float) -> bool:
    """Whether an utterance belongs to the held-out split: its id's sha256 ranks in the lowest
    test_fraction of the 64-bit range."""
    rank = int.from_bytes(hashlib.sha256(utterance_id.encode()).digest()[:8], "big")
    return rank < test_fraction * 2.0 ** 64


def _speak(text: str, voice: str, words_per_minute: int, pitch: int, folder: Path) -> np.ndarray:
    """The rendering of `text` by `voice` (Festival's for a FESTIVAL_VOICES name, else espeak-ng's,
    at `words_per_minute` and `pitch`) as float32 at 48 kHz."""
    from synth.transfer import resample_audio

    wav = folder / "utterance.wav"
    if voice in FESTIVAL_VOICES:
        (folder / "utterance.txt").write_text(text + "\n", encoding="utf-8")
        command = ["text2wave", "-eval", f"(voice_{voice})", str(folder / "utterance.txt"), "-o", str(wav)]
    else:
        command = ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-p", str(pitch), "-w", str(wav), "--", text]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not wav.is_file():
        raise SynthError(f"{command[0]} failed on {text!r}: {done.stderr.strip() or done.returncode}")
    audio, rate = soundfile.read(wav, dtype="float32", always_2d=True)
    return resample_audio(audio.mean(axis=1), rate, SAMPLE_RATE).astype(np.float32)


def _festival_voice_installed(voice: str) -> bool:
    """Whether Festival's voice folder for `voice` exists (Debian installs them under /usr/share/festival)."""
    return any(Path("/usr/share/festival/voices").glob(f"*/{voice}"))


def _spoken(text: str, voice: str, words_per_minute: int, pitch: int) -> np.ndarray:
    """_speak in a temporary folder of its own (so that workers never share one)."""
    with tempfile.TemporaryDirectory() as temp:
        return _speak(text, voice, words_per_minute, pitch, Path(temp))


@contextlib.contextmanager
def _speaking(workers: int) -> Iterator[Callable[[list[tuple]], list[np.ndarray]]]:
    """A function from a list of _spoken argument tuples to their audio, in order: in this process,
    or on `workers` Ray workers of a local cluster for the length of the block."""
    if workers <= 1:
        yield lambda calls: [_spoken(*call) for call in calls]
        return
    import ray

    from synth.cluster import ray_cluster

    with ray_cluster(workers):
        remote = ray.remote(num_cpus=1)(_spoken)
        yield lambda calls: ray.get([remote.remote(*call) for call in calls])


def build_speech_corpus(folder, minutes: float = 60.0, voice: str = DEFAULT_VOICE, words_per_minute: int = 160,
                        pitch: int | tuple[int, int] = 50, test_fraction: float = DEFAULT_TEST_FRACTION, seed: int = 0,
                        variants: tuple[str, ...] = (), progress: bool = True, workers: int = 1) -> Path:
    """Speak fortune sentences until `minutes` of audio are in `folder` (LJSpeech layout, 48 kHz
    16-bit WAVs peak-normalised to -3 dBFS). Safe to run again: utterances already listed are kept
    and the corpus grows to `minutes`. Returns the folder.

    voice: a Festival voice of FESTIVAL_VOICES (the default, cmu_us_slt_arctic_hts: one woman's
    recordings, the CMU ARCTIC set, as an HTS voice; it speaks the normalised text, so numbers are
    read as the tokens spell them, at its own rate) or an espeak-ng voice such as "en-us" (a formant
    synthesiser, at `words_per_minute` and `pitch` 0..99). For an espeak decoder that must play a
    wide f0 range (singing), `variants` (espeak voice variants such as "m3", "f2") and a `pitch`
    range (low, high) give each utterance a variant and a pitch drawn at random (seeded): with
    m1..m8 and f1..f5 over pitch 0..99, f0 spans about 55 to 380 Hz. workers: above 1, the
    sentences are spoken on that many Ray workers (a local cluster, synth.cluster), a few per worker
    at a time; the corpus is the one a serial build makes."""
    from models.text import normalize_text

    festival = voice in FESTIVAL_VOICES
    if festival:
        if variants or tuple(pitch if isinstance(pitch, tuple) else (pitch, pitch)) != (50, 50):
            raise SynthError(f"--variants and --pitch choose espeak-ng voices; {voice} is a Festival voice")
        if shutil.which("text2wave") is None or not _festival_voice_installed(voice):
            raise SynthError(f"Festival's {voice} voice is not installed (Debian: apt-get install festival "
                             f"festvox-us-slt-hts); it speaks the corpus")
    elif shutil.which("espeak-ng") is None:
        raise SynthError("espeak-ng is not installed (Debian: apt-get install espeak-ng); it speaks the corpus")
    else:
        try:  # before any file is made
            _spoken("a", voice, words_per_minute, 50)
        except SynthError:
            raise SynthError(f"voice {voice!r}: neither Festival's {', '.join(FESTIVAL_VOICES)} nor a voice "
                             f"espeak-ng speaks (espeak-ng --voices lists them)") from None
    folder = Path(folder)
    (folder / "wavs").mkdir(parents=True, exist_ok=True)
    metadata = folder / "metadata.csv"
    rows = read_metadata(folder) if metadata.is_file() else []
    done_texts = {text for _, text, _ in rows}
    seconds = sum(soundfile.info(folder / "wavs" / f"{uid}.wav").duration for uid, _, _ in rows)
    sentences = [s for s in fortune_sentences() if s not in done_texts]
    if not sentences:
        raise SynthError(f"no usable sentences in {FORTUNE_FOLDER} (Debian: apt-get install fortunes)")
    rng = random.Random(seed)
    rng.shuffle(sentences)
    low, high = (pitch, pitch) if isinstance(pitch, int) else pitch
    if not (0 <= low <= high <= 99):
        raise SynthError(f"pitch={pitch!r} must be 0..99 or a range (low, high) within it")
    # each sentence's speaker and pitch, drawn in the sentences' order whoever speaks them
    draws = ((sentence, f"{voice}+{rng.choice(variants)}" if variants else voice, rng.randint(low, high))
             for sentence in sentences)
    spoken_text = normalize_text if festival else str
    chunk = workers * SENTENCES_PER_WORKER if workers > 1 else 1
    bar = tqdm(total=round(minutes * 60), initial=round(seconds), unit="s", desc="speech corpus", disable=not progress)
    with metadata.open("a", encoding="utf-8") as out, _speaking(workers) as speak:
        while seconds < minutes * 60:
            batch = list(itertools.islice(draws, chunk))
            if not batch:
                break
            for (sentence, _, _), audio in zip(batch, speak([(spoken_text(s), v, words_per_minute, p) for s, v, p in batch])):
                if seconds >= minutes * 60:
                    break
                peak = float(np.max(np.abs(audio))) if audio.size else 0.0
                if peak < 1e-4:
                    continue
                uid = f"FT{len(rows) + 1:05d}"
                target = folder / "wavs" / f"{uid}.wav"
                partial = target.with_name(target.stem + ".partial.wav")
                soundfile.write(partial, audio * (10 ** (-3 / 20) / peak), SAMPLE_RATE, subtype="PCM_16")
                os.replace(partial, target)
                out.write(f"{uid}|{sentence}|{normalize_text(sentence)}\n")
                out.flush()
                rows.append((uid, sentence, ""))
                seconds += audio.size / SAMPLE_RATE
                bar.update(round(audio.size / SAMPLE_RATE))
    bar.close()
    held = [uid for uid, _, _ in rows if is_held_out(uid, test_fraction)]
    (folder / "heldout.txt").write_text("".join(f"{uid}\n" for uid in held))
    (folder / "corpus.json").write_text(json.dumps({
        "source": f"{'Festival' if festival else 'espeak-ng'} speaking sentences of Debian's fortune databases",
        "voice": voice, "variants": list(variants), "words_per_minute": None if festival else words_per_minute,
        "pitch": None if festival else [low, high], "seed": seed, "test_fraction": test_fraction,
        "utterances": len(rows), "seconds": round(seconds, 1)}, indent=1))
    return folder


def read_metadata(folder) -> list[tuple[str, str, str]]:
    """(id, text, normalized text) of every line of `<folder>/metadata.csv`; a missing third column
    is normalised here. SynthError naming the file and line for a malformed line, a duplicate id or
    a missing WAV."""
    from models.text import normalize_text

    folder = Path(folder)
    path = folder / "metadata.csv"
    if not path.is_file():
        raise SynthError(f"{path}: missing; a corpus folder holds metadata.csv and wavs/ (the LJSpeech layout)")
    rows, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1].strip():
            raise SynthError(f"{path}:{number}: expected 'id|text|normalized text', got {line[:80]!r}")
        uid = parts[0].strip()
        if not re.fullmatch(r"[A-Za-z0-9_\-.]+", uid):
            raise SynthError(f"{path}:{number}: id {uid!r} may hold only letters, digits, '_', '-' and '.'")
        if uid in seen:
            raise SynthError(f"{path}:{number}: id {uid!r} appears twice")
        if not (folder / "wavs" / f"{uid}.wav").is_file():
            raise SynthError(f"{path}:{number}: {folder / 'wavs' / (uid + '.wav')} is missing")
        seen.add(uid)
        normalized = parts[2].strip() if len(parts) == 3 and parts[2].strip() else normalize_text(parts[1])
        rows.append((uid, parts[1].strip(), normalized))
    if not rows:
        raise SynthError(f"{path}: no utterances")
    return rows


def _utterance_features(job: tuple[str, str, str, str]) -> str:
    """Compute and write one utterance's features (a worker process); returns its id."""
    from models.text import text_tokens
    from synth.transfer import resample_audio

    folder, uid, normalized, mode = job
    folder = Path(folder)
    audio, rate = soundfile.read(folder / "wavs" / f"{uid}.wav", dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        audio = resample_audio(audio, rate, SAMPLE_RATE).astype(np.float32)
    frames = audio.size // HOP_SAMPLES
    half = resample_audio(audio, SAMPLE_RATE, FEATURE_RATE).astype(np.float32)
    f0, _, voiced = f0_pyin(half, FEATURE_RATE, HOP_SAMPLES * FEATURE_RATE // SAMPLE_RATE, *SPEECH_F0_RANGE_HZ,
                            with_flag=True)
    tokens, used = text_tokens(normalized, mode)
    arrays = {"audio": audio[:frames * HOP_SAMPLES], "mel": log_mel(audio)[:frames],
              "f0_hz": f0[:frames], "voiced": voiced[:frames].astype(np.uint8),
              "loudness_db": loudness_db(audio, SAMPLE_RATE, HOP_SAMPLES)[:frames],
              "tokens": np.array(tokens), "token_mode": np.array(used), "version": np.array(FEATURES_VERSION)}
    target = folder / "features" / f"{uid}.npz"
    partial = target.with_name(f"{uid}.partial.npz")
    np.savez_compressed(partial, **arrays)
    os.replace(partial, target)
    return uid


def prepare_features(folder, mode: str = "auto", workers: int = 2, progress: bool = True) -> list[str]:
    """Features of every utterance not yet computed (see the module docstring), `workers` processes
    at once; returns the ids of all utterances. mode: the text tokens, "phonemes", "characters" or
    "auto" (models.text.text_tokens)."""
    folder = Path(folder)
    rows = read_metadata(folder)
    (folder / "features").mkdir(exist_ok=True)
    todo = [(str(folder), uid, normalized, mode) for uid, _, normalized in rows
            if not (folder / "features" / f"{uid}.npz").is_file()]
    if todo:
        with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
            for _ in tqdm(pool.map(_utterance_features, todo, chunksize=4), total=len(todo), unit="utt",
                          desc="speech features", disable=not progress):
                pass
    return [uid for uid, _, _ in rows]


def load_features(folder, uid: str) -> dict[str, np.ndarray]:
    """One utterance's feature arrays (no pickle); SynthError naming the file if it is missing or stale."""
    path = Path(folder) / "features" / f"{uid}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise SynthError(f"{path}: unreadable features ({error}); run prepare_features again") from None
    if int(arrays.get("version", -1)) != FEATURES_VERSION:
        raise SynthError(f"{path}: features version {arrays.get('version')} is not {FEATURES_VERSION}; delete it")
    return arrays


def corpus_test_fraction(folder) -> float:
    """The held-out share of a corpus: corpus.json's test_fraction (a corpus built here), else
    DEFAULT_TEST_FRACTION."""
    path = Path(folder) / "corpus.json"
    try:
        return float(json.loads(path.read_text())["test_fraction"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_TEST_FRACTION


def split_ids(folder, test_fraction: float | None = None) -> tuple[list[str], list[str]]:
    """(training ids, held-out ids) of a corpus (see is_held_out; test_fraction default: the corpus')."""
    test_fraction = corpus_test_fraction(folder) if test_fraction is None else test_fraction
    uids = [uid for uid, _, _ in read_metadata(folder)]
    return ([u for u in uids if not is_held_out(u, test_fraction)], [u for u in uids if is_held_out(u, test_fraction)])


def speech_statistics(folder, uids: list[str]) -> dict:
    """f0_range_hz [min, max] over voiced frames, loudness_range_db [min, max], frames, utterances:
    the ranges a speech decoder scales its inputs by (as models.data.dataset_statistics)."""
    f0_parts, loud_parts = [], []
    for uid in uids:
        arrays = load_features(folder, uid)
        voiced = arrays["voiced"].astype(bool) & (arrays["f0_hz"] > 0)
        f0_parts.append(arrays["f0_hz"][voiced])
        loud_parts.append(arrays["loudness_db"])
    f0, loud = np.concatenate(f0_parts), np.concatenate(loud_parts)
    if f0.size == 0:
        raise SynthError(f"{folder}: no voiced frame in the training utterances")
    return {"split": "train", "utterances": len(uids), "frames": int(loud.size),
            "f0_range_hz": [float(f0.min()), float(f0.max())], "f0_median_hz": float(np.median(f0)),
            "loudness_range_db": [float(loud.min()), float(loud.max())],
            "loudness_mean_db": float(loud.mean()), "loudness_std_db": float(loud.std())}


class SpeechExcerpts(torch.utils.data.Dataset):
    """Excerpts of `excerpt_frames` frames of a corpus' utterances (all in memory), with the items
    of models.data.NoteExcerpts (audio, f0_hz, voiced, loudness_db, mel, instrument = 0), so the
    decoder trains on speech as on notes. "train" draws random starts (seeded generator); "test"
    fixed ones per seed. Utterances shorter than an excerpt are left out."""

    def __init__(self, folder, uids: list[str], split: str, excerpt_frames: int = 96, seed: int = 0):
        self.split, self.excerpt_frames, self.seed = split, excerpt_frames, seed
        self.utterances = []
        for uid in uids:
            arrays = load_features(folder, uid)
            if arrays["mel"].shape[0] >= excerpt_frames:
                self.utterances.append({k: arrays[k] for k in ("audio", "f0_hz", "voiced", "loudness_db", "mel")})
        if not self.utterances:
            raise SynthError(f"{folder}: no {split} utterance lasts excerpt_frames={excerpt_frames} frames")
        counts = [max(1, u["mel"].shape[0] // excerpt_frames) for u in self.utterances]
        self._utterance_of_item = np.repeat(np.arange(len(self.utterances)), counts)
        self._generator = torch.Generator()
        self._generator.manual_seed(seed)

    def __len__(self) -> int:
        return int(self._utterance_of_item.size)

    def __getitem__(self, item: int) -> dict:
        if not 0 <= item < len(self):
            raise IndexError(item)
        u = self.utterances[int(self._utterance_of_item[item])]
        last = u["mel"].shape[0] - self.excerpt_frames
        if self.split == "test":
            a = int(np.random.default_rng([self.seed, item]).integers(0, last + 1))
        else:
            a = int(torch.randint(0, last + 1, (1,), generator=self._generator))
        b = a + self.excerpt_frames
        return {"audio": torch.from_numpy(u["audio"][a * HOP_SAMPLES:b * HOP_SAMPLES].astype(np.float32)),
                "f0_hz": torch.from_numpy(u["f0_hz"][a:b].astype(np.float32)),
                "voiced": torch.from_numpy(u["voiced"][a:b].astype(np.float32)),
                "loudness_db": torch.from_numpy(u["loudness_db"][a:b].astype(np.float32)),
                "mel": torch.from_numpy(u["mel"][a:b].astype(np.float32)),
                "instrument": torch.tensor(0, dtype=torch.int64)}
