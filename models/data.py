"""Decoder training data: real instrument notes (General MIDI soundfonts via fluidsynth) or the
user's own audio files, with their conditioning features, and the excerpts training draws.

A data set is a folder: one compressed npz per note (or file) plus `manifest.json`. Each npz holds
audio (float32 [n], 48 kHz mono, full scale 1.0), per-frame features at hop 256 (frame k centred
on sample (k+1)*hop, see synth.dsp.features): f0_hz [F], voiced [F] (pyin's voiced probability),
voiced_flag [F] (uint8, pyin's Viterbi decision), loudness_db [F], mel [F, 128] (natural log of a
power mel spectrogram, floored at 1e-5: log_mel), F = n // hop; and its labels: instrument,
family, program, note, velocity, source (the settings that made it, JSON).

The manifest lists the notes as segments {file, instrument, family, program, note, velocity,
start_frame, stop_frame, split}. Rendered notes are whole segments; about 10% of each
instrument's notes (those whose sha256 of "name:note:velocity" ranks lowest) are "test", the rest
"train". A user file is split in time: its last 10% (at least 1 s) is "test" when it lasts 2 s or
more, else the whole file is "train".
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
from pathlib import Path
from typing import NamedTuple

import librosa
import numpy as np
import torch
from tqdm import tqdm

from synth.dsp.features import f0_pyin, loudness_db
from synth.dsp.features import log_mel as features_log_mel
from synth.errors import SynthError
from synth.io.audiofile import read_audio
from synth.io.soundfont import render_note, soundfont_file

VERSION = 1
SAMPLE_RATE = 48000
HOP_SAMPLES = 256
MEL = {"n_fft": 2048, "n_mels": 128, "power": 2.0, "f_min_hz": 0.0, "f_max_hz": 24000.0, "mel_scale": "htk",
       "log": "natural", "floor": 1e-5}
MANIFEST = "manifest.json"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aif", ".aiff")
_SILENT_PEAK = 1e-4  # a render quieter than this has no sample for the note: skipped
_F0_LIMITS_HZ = (30.0, 2100.0)


class Instrument(NamedTuple):
    """A General MIDI instrument: program (0-based), family, playable MIDI note range (inclusive)."""

    program: int
    family: str
    lowest_note: int
    highest_note: int


# Ranges of the real instruments (MIDI notes), capped at 96 (2093 Hz) to stay in the f0 range. Left
# out on purpose: drawbar organ (its 16' stop puts the f0 one or two octaves under the note) and
# glockenspiel (inharmonic bars, pyin wanders by semitones).
INSTRUMENTS: dict[str, Instrument] = {
    "acoustic_grand_piano": Instrument(0, "piano", 28, 96),
    "electric_piano": Instrument(4, "piano", 36, 96),
    "harpsichord": Instrument(6, "piano", 29, 89),
    "vibraphone": Instrument(11, "mallets", 53, 89),
    "marimba": Instrument(12, "mallets", 45, 96),
    "xylophone": Instrument(13, "mallets", 65, 96),
    "church_organ": Instrument(19, "organ", 36, 96),
    "reed_organ": Instrument(20, "organ", 36, 96),
    "accordion": Instrument(21, "organ", 41, 89),
    "nylon_guitar": Instrument(24, "guitar", 40, 83),
    "steel_guitar": Instrument(25, "guitar", 40, 83),
    "acoustic_bass": Instrument(32, "bass", 28, 55),
    "violin": Instrument(40, "strings", 55, 93),
    "viola": Instrument(41, "strings", 48, 84),
    "cello": Instrument(42, "strings", 36, 76),
    "contrabass": Instrument(43, "strings", 28, 60),
    "choir_aahs": Instrument(52, "voice", 48, 79),
    "voice_oohs": Instrument(53, "voice", 48, 79),
    "trumpet": Instrument(56, "brass", 54, 82),
    "trombone": Instrument(57, "brass", 40, 72),
    "tuba": Instrument(58, "brass", 28, 58),
    "french_horn": Instrument(60, "brass", 41, 77),
    "alto_sax": Instrument(65, "reeds", 49, 81),
    "tenor_sax": Instrument(66, "reeds", 44, 76),
    "oboe": Instrument(68, "reeds", 58, 91),
    "bassoon": Instrument(70, "reeds", 34, 75),
    "clarinet": Instrument(71, "reeds", 50, 91),
    "piccolo": Instrument(72, "pipes", 74, 96),
    "flute": Instrument(73, "pipes", 60, 96),
    "recorder": Instrument(74, "pipes", 60, 96),
    "pan_flute": Instrument(75, "pipes", 60, 96),
}


# ------------------------------------------------------------------------------------ features

def log_mel(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, hop_samples: int = HOP_SAMPLES) -> np.ndarray:
    """Log mel spectrogram of the data sets' settings (MEL), float32 [len(audio) // hop_samples, 128]:
    synth.dsp.features.log_mel with n_fft 2048, HTK mels 0 Hz..Nyquist, floored at 1e-5."""
    return features_log_mel(audio, sample_rate, hop_samples, n_fft=MEL["n_fft"], n_mels=MEL["n_mels"],
                            floor_power=MEL["floor"])


def note_features(audio: np.ndarray, f0_limits_hz: tuple[float, float] = _F0_LIMITS_HZ) -> dict[str, np.ndarray]:
    """All per-frame features of float32 [n] audio at 48 kHz: f0_hz, voiced (probability),
    voiced_flag (uint8), loudness_db [n // 256], mel [n // 256, 128]. f0_limits_hz: pyin's range (Hz)."""
    f0_hz, voiced, flag = f0_pyin(audio, SAMPLE_RATE, HOP_SAMPLES, *f0_limits_hz, with_flag=True)
    return {"f0_hz": f0_hz, "voiced": voiced, "voiced_flag": flag.astype(np.uint8),
            "loudness_db": loudness_db(audio, SAMPLE_RATE, HOP_SAMPLES), "mel": log_mel(audio)}


def _note_f0_limits(note: int) -> tuple[float, float]:
    """pyin's range for a rendered note: an octave either side of its nominal pitch (a narrow range
    also keeps pyin fast: its Viterbi grows with the square of the range)."""
    nominal_hz = 440.0 * 2.0 ** ((note - 69) / 12.0)
    return max(_F0_LIMITS_HZ[0], nominal_hz / 2.0), min(SAMPLE_RATE / 2.0 - 1.0, nominal_hz * 2.0)


# ------------------------------------------------------------------------------------ files

def _write_npz(path: Path, arrays: dict) -> None:
    """np.savez_compressed into `path` whole or not at all (temporary name, then rename)."""
    temp = path.with_name(path.stem + ".partial.npz")
    np.savez_compressed(temp, **arrays)
    os.replace(temp, path)


def _write_manifest(folder: Path, manifest: dict) -> None:
    temp = folder / (MANIFEST + ".partial")
    temp.write_text(json.dumps(manifest, indent=1))
    os.replace(temp, folder / MANIFEST)


def _stored_source(path: Path) -> dict | None:
    """The `source` record of an existing note file, None when it is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["source"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def read_manifest(folder: str | Path) -> dict:
    """The manifest of a built data set folder, checked: version, sample rate, hop, notes."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SynthError(f"{folder}: no such data set folder (`synth train decoder --data FOLDER` builds one from the soundfont, or from your audio with --wavs YOUR_FOLDER)")
    path = folder / MANIFEST
    if not path.is_file():
        raise SynthError(f"{path}: missing; {folder} is not a built data set")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SynthError(f"{path}: not a readable JSON manifest: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("version") != VERSION:
        raise SynthError(f"{path}: key 'version' must be {VERSION}, got {manifest.get('version') if isinstance(manifest, dict) else manifest!r}")
    for key, expected in (("sample_rate", SAMPLE_RATE), ("hop_samples", HOP_SAMPLES)):
        if manifest.get(key) != expected:
            raise SynthError(f"{path}: key {key!r} must be {expected}, got {manifest.get(key)!r}")
    if not isinstance(manifest.get("notes"), list):
        raise SynthError(f"{path}: key 'notes' must be a list")
    return manifest


def _base_manifest(source: dict) -> dict:
    return {"version": VERSION, "sample_rate": SAMPLE_RATE, "hop_samples": HOP_SAMPLES, "mel": MEL,
            "source": source, "notes": [], "skipped": []}


def _check_folder_source(folder: Path, source: dict) -> None:
    """A folder holds one kind of data set: resuming with other settings is an error."""
    path = folder / MANIFEST
    if path.is_file():
        old = read_manifest(folder).get("source")
        if old != source:
            raise SynthError(f"{path}: this folder was built with {old}, not {source}; use another folder")


# ------------------------------------------------------------------------------------ splits

def _hash_rank(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def assign_splits(notes: list[dict], test_fraction: float = 0.1) -> None:
    """Mark round(test_fraction * count) notes of each instrument "test" (at least one when it has
    two or more), those ranking lowest by sha256 of "instrument:note:velocity"; the rest "train"."""
    by_instrument: dict[str, list[dict]] = {}
    for entry in notes:
        by_instrument.setdefault(entry["instrument"], []).append(entry)
    for name, entries in by_instrument.items():
        count = len(entries)
        n_test = 0 if count < 2 else max(1, round(test_fraction * count))
        ranked = sorted(entries, key=lambda e: _hash_rank(f"{name}:{e['note']}:{e['velocity']}"))
        for i, entry in enumerate(ranked):
            entry["split"] = "test" if i < n_test else "train"


# ------------------------------------------------------------------------------------ building

def _pick_instruments(instruments) -> dict[str, Instrument]:
    if instruments is None:
        return dict(INSTRUMENTS)
    if isinstance(instruments, dict):
        return {str(k): Instrument(*v) for k, v in instruments.items()}
    picked = {}
    for name in instruments:
        if name not in INSTRUMENTS:
            raise SynthError(f"instrument {name!r} is not known; choose from {', '.join(sorted(INSTRUMENTS))}")
        picked[name] = INSTRUMENTS[name]
    if not picked:
        raise SynthError("instruments is empty: name at least one instrument")
    return picked


def instrument_pitches(instrument: Instrument, pitches) -> list[int]:
    """MIDI notes to render for an instrument: `pitches` as a count spreads that many evenly over the
    inside of its range (the extremes left out); a sequence keeps the notes within its range."""
    low, high = instrument.lowest_note, instrument.highest_note
    if isinstance(pitches, (int, np.integer)) and not isinstance(pitches, bool):
        if pitches < 1:
            raise SynthError(f"pitches={pitches!r} must be a positive count or a list of MIDI notes")
        return sorted({int(round(p)) for p in np.linspace(low, high, int(pitches) + 2)[1:-1]})
    return sorted({int(p) for p in pitches if low <= int(p) <= high})


def build_dataset(folder: str | Path, instruments=None, soundfont: str = "fluidr3", pitches=5,
                  velocities=(64, 110), seconds: float = 2.0, release_s: float = 0.5, gain: float = 0.5,
                  test_fraction: float = 0.1, progress: bool = True, workers: int = 1) -> Path:
    """Render every (instrument, pitch, velocity) note with fluidsynth, compute its features and write
    one npz per note plus manifest.json into `folder` (created); returns the folder.

    instruments: names from INSTRUMENTS (default all) or a dict name -> Instrument. pitches: a count
    per instrument spread over its range, or MIDI notes (those outside an instrument's range are
    left out for it). velocities: MIDI velocities 1..127. seconds: key held (s); release_s: tail
    kept after the note off (s); gain: fluidsynth's master gain. Notes already in the folder are
    kept (safe to run again, resumes an interrupted run); a folder built with other render settings
    is an error. A note the soundfont renders silent is listed under "skipped" in the manifest.
    workers: above 1, the notes are rendered and analysed on that many Ray workers (a local
    cluster, synth.cluster); the data set is the one a serial build makes.
    """
    folder = Path(folder)
    picked = _pick_instruments(instruments)
    if not 0 <= test_fraction < 1:
        raise SynthError(f"test_fraction={test_fraction!r} must be in [0, 1)")
    source = {"kind": "soundfont", "format": VERSION, "soundfont": str(soundfont), "seconds": float(seconds),
              "release_s": float(release_s), "gain": float(gain)}
    jobs = []
    for name, instrument in picked.items():
        notes = instrument_pitches(instrument, pitches)
        if not notes:
            raise SynthError(f"pitches={pitches!r}: none lies in {name}'s range "
                             f"{instrument.lowest_note}..{instrument.highest_note}")
        jobs += [(name, instrument, note, int(v)) for note in notes for v in velocities]
    soundfont_file(soundfont)  # before the folder is made: a missing soundfont leaves nothing behind
    folder.mkdir(parents=True, exist_ok=True)
    _check_folder_source(folder, source)
    manifest = _base_manifest(source)
    paths = [folder / f"{name}-{note:03d}-{velocity:03d}.npz" for name, _, note, velocity in jobs]
    missing = [(path, job) for path, job in zip(paths, jobs) if _stored_source(path) != source]
    render = (soundfont, seconds, release_s, gain, source)
    silent = set()
    if workers > 1 and len(missing) > 1:
        silent = _notes_on_ray(missing, render, folder, workers, progress)
    else:
        for path, job in tqdm(missing, desc="render notes", unit="note", disable=not progress):
            if not _build_note(path, job, render):
                silent.add(path)
    for path, (name, instrument, note, velocity) in zip(paths, jobs):
        if path in silent:
            manifest["skipped"].append({"instrument": name, "note": note, "velocity": velocity,
                                        "reason": "the soundfont renders it silent"})
            continue
        frames = int(round((seconds + release_s) * SAMPLE_RATE)) // HOP_SAMPLES
        manifest["notes"].append({"file": path.name, "instrument": name, "family": instrument.family,
                                  "program": instrument.program, "note": note, "velocity": velocity,
                                  "start_frame": 0, "stop_frame": frames})
    assign_splits(manifest["notes"], test_fraction)
    _write_manifest(folder, manifest)
    return folder


def _build_note(path: Path, job: tuple, render: tuple) -> bool:
    """Render one (name, instrument, note, velocity) note and write its npz at `path`; False (and no
    file) when the soundfont renders it silent. render: (soundfont, seconds, release_s, gain, source)."""
    name, instrument, note, velocity = job
    soundfont, seconds, release_s, gain, source = render
    audio = render_note(instrument.program, note, velocity, seconds, sample_rate=SAMPLE_RATE, soundfont=soundfont,
                        release_s=release_s, gain=gain)
    if float(np.max(np.abs(audio))) < _SILENT_PEAK:
        return False
    _write_npz(path, {"audio": audio, **note_features(audio, _note_f0_limits(note)), "instrument": name,
                      "family": instrument.family, "program": instrument.program, "note": note,
                      "velocity": velocity, "sample_rate": SAMPLE_RATE, "hop_samples": HOP_SAMPLES,
                      "source": json.dumps(source)})
    return True


def _notes_on_ray(missing: list[tuple[Path, tuple]], render: tuple, folder: Path, workers: int,
                  progress: bool) -> set[Path]:
    """_build_note for every (path, job) on `workers` Ray workers; the paths of the silent notes.
    Files a stopped worker was writing are removed on the way out (Ctrl-C)."""
    import ray

    from synth.cluster import ray_cluster

    try:
        with ray_cluster(workers):
            task = ray.remote(num_cpus=1)(_build_note)
            pending = {task.remote(path, job, render): path for path, job in missing}
            silent = set()
            with tqdm(total=len(pending), desc="render notes", unit="note", disable=not progress) as bar:
                while pending:
                    finished, _ = ray.wait(list(pending), num_returns=1)
                    path = pending.pop(finished[0])
                    if not ray.get(finished[0]):
                        silent.add(path)
                    bar.update(1)
            return silent
    except BaseException:
        for partial in folder.glob("*.partial.npz"):
            partial.unlink(missing_ok=True)
        raise


def _audio_files(wav_folder: Path) -> list[Path]:
    if not wav_folder.is_dir():
        raise SynthError(f"{wav_folder}: no such folder of audio files")
    found = sorted(p for p in wav_folder.iterdir() if p.is_file() and not p.name.startswith("."))
    audio = [p for p in found if p.suffix.lower() in AUDIO_SUFFIXES]
    if not audio:
        others = f" (found only: {', '.join(p.name for p in found[:5])})" if found else ""
        raise SynthError(f"{wav_folder}: no audio files ({', '.join(AUDIO_SUFFIXES)}){others}")
    return audio


def _load_mono_48k(path: Path) -> np.ndarray:
    data, rate = read_audio(path)
    mono = data.mean(axis=1, dtype=np.float64)
    if rate != SAMPLE_RATE:
        mono = librosa.resample(mono, orig_sr=rate, target_sr=SAMPLE_RATE)
    return mono.astype(np.float32)


def dataset_from_wavs(wav_folder: str | Path, folder: str | Path, family: str = "user",
                      test_fraction: float = 0.1, progress: bool = True) -> Path:
    """The same data set as build_dataset, from the user's own audio files (.wav .flac .ogg .aif
    .aiff) in `wav_folder`: each file is read, mixed to mono, resampled to 48 kHz (librosa) and
    analysed (pyin over 30..2100 Hz, about 1 s per second of audio); its stem names the instrument.
    Each file's last `test_fraction` (at least 1 s) is the "test" segment when the file lasts 2 s
    or more. Files already analysed (same size and modification time) are kept. Returns `folder`.
    """
    wav_folder, folder = Path(wav_folder), Path(folder)
    files = _audio_files(wav_folder)
    if not 0 <= test_fraction < 1:
        raise SynthError(f"test_fraction={test_fraction!r} must be in [0, 1)")
    source = {"kind": "audio_files", "format": VERSION, "folder": str(wav_folder.resolve())}
    folder.mkdir(parents=True, exist_ok=True)
    _check_folder_source(folder, source)
    manifest = _base_manifest(source)
    min_test_frames = int(math.ceil(SAMPLE_RATE / HOP_SAMPLES))
    for path in tqdm(files, desc="analyse files", unit="file", disable=not progress):
        stat = path.stat()
        out = folder / f"{path.stem}.npz"
        file_source = {**source, "file": path.name, "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        if _stored_source(out) != file_source:
            audio = _load_mono_48k(path)
            _write_npz(out, {"audio": audio, **note_features(audio), "instrument": path.stem, "family": family,
                             "program": -1, "note": -1, "velocity": -1, "sample_rate": SAMPLE_RATE,
                             "hop_samples": HOP_SAMPLES, "source": json.dumps(file_source)})
        with np.load(out, allow_pickle=False) as data:
            frames = int(data["f0_hz"].shape[0])
        entry = {"file": out.name, "instrument": path.stem, "family": family, "program": -1, "note": -1,
                 "velocity": -1, "start_frame": 0, "stop_frame": frames, "split": "train"}
        n_test = max(int(round(test_fraction * frames)), min_test_frames) if test_fraction > 0 else 0
        if test_fraction > 0 and frames >= 2 * min_test_frames:
            manifest["notes"].append({**entry, "stop_frame": frames - n_test})
            manifest["notes"].append({**entry, "start_frame": frames - n_test, "split": "test"})
        else:
            manifest["notes"].append(entry)
    _write_manifest(folder, manifest)
    return folder


# ------------------------------------------------------------------------------------ loading

def _load_note(folder: Path, entry: dict) -> dict[str, np.ndarray]:
    path = folder / str(entry.get("file"))
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("audio", "f0_hz", "voiced", "voiced_flag", "loudness_db", "mel")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise SynthError(f"{path}: not a readable note file: {error}") from None
    frames = arrays["f0_hz"].shape[0]
    if not 0 <= entry["start_frame"] < entry["stop_frame"] <= frames or arrays["audio"].size < frames * HOP_SAMPLES:
        raise SynthError(f"{path}: frames {entry['start_frame']}..{entry['stop_frame']} of the manifest do not fit "
                         f"its {frames} frames")
    return arrays


def _split_entries(manifest: dict, split: str, folder: Path) -> list[dict]:
    if split not in ("train", "test"):
        raise SynthError(f"split={split!r} must be 'train' or 'test'")
    entries = [e for e in manifest["notes"] if e.get("split") == split]
    if not entries:
        raise SynthError(f"{folder / MANIFEST}: no notes in split {split!r}")
    return entries


class NoteExcerpts(torch.utils.data.Dataset):
    """Excerpts of `excerpt_frames` frames from one split of a built data set, all held in memory.

    Item: {"audio": float32 [T * 256], "f0_hz", "voiced", "loudness_db": float32 [T],
    "mel": float32 [T, 128], "instrument": int64 (index into `instruments`)}; an excerpt of frames
    [a, a + T) has audio samples [a * 256, (a + T) * 256). An epoch holds about one excerpt per T
    frames of each note. "train" draws a fresh random start on every call (from a torch generator
    seeded with `seed`, reseeded per DataLoader worker); "test" is the same for a given seed on
    every call. instruments: the names in index order (default: every instrument of the manifest,
    sorted, so train and test agree). Segments shorter than T frames are left out.
    """

    def __init__(self, folder: str | Path, split: str = "train", excerpt_frames: int = 96,
                 instruments: list[str] | None = None, seed: int | None = None):
        self.folder = Path(folder)
        manifest = read_manifest(self.folder)
        if isinstance(excerpt_frames, bool) or not isinstance(excerpt_frames, int) or excerpt_frames < 1:
            raise SynthError(f"excerpt_frames={excerpt_frames!r} must be a positive integer")
        self.split = split
        self.excerpt_frames = excerpt_frames
        self.instruments = list(instruments) if instruments is not None else sorted(
            {e["instrument"] for e in manifest["notes"]})
        index = {name: i for i, name in enumerate(self.instruments)}
        self.notes, self.ranges, self.labels = [], [], []
        loaded: dict[str, dict] = {}
        for entry in _split_entries(manifest, split, self.folder):
            if entry["instrument"] not in index:
                raise SynthError(f"{self.folder / MANIFEST}: instrument {entry['instrument']!r} is not among "
                                 f"instruments={self.instruments}")
            if entry["stop_frame"] - entry["start_frame"] < excerpt_frames:
                continue
            if entry["file"] not in loaded:
                loaded[entry["file"]] = _load_note(self.folder, entry)
            self.notes.append(loaded[entry["file"]])
            self.ranges.append((entry["start_frame"], entry["stop_frame"]))
            self.labels.append(index[entry["instrument"]])
        if not self.notes:
            raise SynthError(f"{self.folder}: no {split!r} note lasts excerpt_frames={excerpt_frames} frames; "
                             "use shorter excerpts")
        counts = [max(1, (stop - start) // excerpt_frames) for start, stop in self.ranges]
        self._note_of_item = np.repeat(np.arange(len(self.notes)), counts)
        self.seed = seed
        self._generator = torch.Generator()
        self._generator.manual_seed(seed if seed is not None else int(torch.initial_seed()) % (2 ** 63))
        self._worker = None

    def __len__(self) -> int:
        return int(self._note_of_item.size)

    def _start(self, item: int, first: int, last: int) -> int:
        """Start frame in first..last: random (train) or fixed by seed and item (test)."""
        if self.split == "test":
            return int(np.random.default_rng([self.seed or 0, item]).integers(first, last + 1))
        info = torch.utils.data.get_worker_info()
        if info is not None and self._worker != info.id:
            self._generator.manual_seed(info.seed)
            self._worker = info.id
        return int(torch.randint(first, last + 1, (1,), generator=self._generator))

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        if not 0 <= item < len(self):
            raise IndexError(item)
        n = int(self._note_of_item[item])
        note, (start, stop) = self.notes[n], self.ranges[n]
        a = self._start(item, start, stop - self.excerpt_frames)
        b = a + self.excerpt_frames
        return {"audio": torch.from_numpy(note["audio"][a * HOP_SAMPLES:b * HOP_SAMPLES].copy()),
                "f0_hz": torch.from_numpy(note["f0_hz"][a:b].copy()),
                "voiced": torch.from_numpy(note["voiced"][a:b].copy()),
                "loudness_db": torch.from_numpy(note["loudness_db"][a:b].copy()),
                "mel": torch.from_numpy(note["mel"][a:b].copy()),
                "instrument": torch.tensor(self.labels[n], dtype=torch.int64)}


def dataset_statistics(folder: str | Path, split: str = "train") -> dict:
    """Feature ranges of one split (default the training notes), for the model's metadata:
    f0_range_hz [min, max] over voiced frames (pyin's voicing flag; Hz), f0_median_hz,
    loudness_range_db [min, max] over all frames (dB), loudness_mean_db, loudness_std_db,
    frames, notes, instruments (sorted names)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    f0_parts, loud_parts = [], []
    entries = _split_entries(manifest, split, folder)
    for entry in entries:
        note = _load_note(folder, entry)
        a, b = entry["start_frame"], entry["stop_frame"]
        f0, voiced = note["f0_hz"][a:b], note["voiced_flag"][a:b]
        f0_parts.append(f0[(voiced > 0) & (f0 > 0)])
        loud_parts.append(note["loudness_db"][a:b])
    f0 = np.concatenate(f0_parts).astype(np.float64)
    loud = np.concatenate(loud_parts).astype(np.float64)
    if f0.size == 0:
        raise SynthError(f"{folder}: no voiced frame in split {split!r}; f0 statistics need pitched notes")
    return {"split": split, "notes": len(entries), "frames": int(loud.size),
            "instruments": sorted({e["instrument"] for e in entries}),
            "f0_range_hz": [float(f0.min()), float(f0.max())], "f0_median_hz": float(np.median(f0)),
            "loudness_range_db": [float(loud.min()), float(loud.max())],
            "loudness_mean_db": float(loud.mean()), "loudness_std_db": float(loud.std())}
