"""Decoder training data: rendered soundfont notes, user audio files, splits, excerpts, statistics.

A small real data set is built once from TimGM6mb (2 instruments x 2 pitches x 2 velocities, 1 s
notes) with fluidsynth; user files are real WAVs written with soundfile.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import torch

from models.data import (INSTRUMENTS, MANIFEST, NoteExcerpts, assign_splits, build_dataset, dataset_from_wavs,
                         dataset_statistics, instrument_pitches, log_mel, read_manifest)
from synth.dsp.oscillators import midi_to_hz
from synth.errors import SynthError
from synth.io.audiofile import write_wav
from synth.io.soundfont import find_soundfont, render_note

RATE = 48000
HOP = 256
SETTINGS = dict(instruments=["flute", "cello"], soundfont="timgm6mb", pitches=2, velocities=(64, 110),
                seconds=1.0, release_s=0.25, progress=False)


def _need_timgm6mb() -> None:
    try:
        find_soundfont("timgm6mb")
    except SynthError as error:
        pytest.skip(f"{error}: the data set tests render real soundfont notes")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    _need_timgm6mb()
    return build_dataset(tmp_path_factory.mktemp("notes"), **SETTINGS)


@pytest.fixture(scope="module")
def user_wavs(tmp_path_factory):
    """A folder of real WAV files: a 2.5 s stereo 44.1 kHz flute note (PCM 16) and a 1 s mono 48 kHz cello."""
    _need_timgm6mb()
    folder = tmp_path_factory.mktemp("wavs")
    flute = render_note(73, 76, 100, 2.0, sample_rate=44100, release_s=0.5)
    write_wav(folder / "my_flute.wav", np.stack([flute, 0.5 * flute], axis=1), 44100, "pcm16")
    cello = render_note(42, 50, 100, 0.8, sample_rate=RATE, release_s=0.2)
    write_wav(folder / "my_cello.wav", cello[:, None], RATE)
    return folder


def load(folder, entry) -> dict:
    with np.load(folder / entry["file"], allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


# ------------------------------------------------------------------------------------ instruments

def test_instruments_cover_the_families_and_their_pitches_are_playable():
    assert len(INSTRUMENTS) >= 20
    families = {i.family for i in INSTRUMENTS.values()}
    assert {"strings", "brass", "reeds", "pipes", "organ", "voice", "guitar", "piano", "mallets"} <= families
    assert len({i.program for i in INSTRUMENTS.values()}) == len(INSTRUMENTS)
    for name, instrument in INSTRUMENTS.items():
        pitches = instrument_pitches(instrument, 5)
        assert len(pitches) == 5, name
        assert instrument.lowest_note < pitches[0] and pitches[-1] < instrument.highest_note <= 96
    assert instrument_pitches(INSTRUMENTS["violin"], [40, 60, 72, 100]) == [60, 72]


# ------------------------------------------------------------------------------------ building

def test_built_notes_hold_aligned_features(built):
    manifest = read_manifest(built)
    assert manifest["sample_rate"] == RATE and manifest["hop_samples"] == HOP
    assert len(manifest["notes"]) == 8
    for entry in manifest["notes"]:
        data = load(built, entry)
        frames = data["audio"].size // HOP
        assert data["audio"].dtype == np.float32 and data["audio"].size == int(1.25 * RATE)
        assert entry["stop_frame"] == frames
        assert data["f0_hz"].shape == data["voiced"].shape == data["loudness_db"].shape == (frames,)
        assert data["mel"].shape == (frames, 128)
        assert (str(data["instrument"]), int(data["note"]), int(data["velocity"])) == (
            entry["instrument"], entry["note"], entry["velocity"])
        assert int(data["program"]) == INSTRUMENTS[entry["instrument"]].program
        sustain = slice(40, 170)
        error_cents = 1200 * np.log2(data["f0_hz"][sustain] / midi_to_hz(entry["note"]))
        assert np.median(np.abs(error_cents)) < 20.0, entry["file"]
    by_key = {(e["instrument"], e["note"], e["velocity"]): load(built, e) for e in manifest["notes"]}
    for (name, pitch, velocity), data in by_key.items():
        if velocity == 110:
            softer = by_key[(name, pitch, 64)]
            assert np.median(data["loudness_db"][40:170]) > np.median(softer["loudness_db"][40:170]) + 2.0


def test_a_build_on_two_ray_workers_is_the_serial_build(built, tmp_path):
    """The same settings on a local Ray cluster of 2 workers: the same manifest and, note for note,
    the same arrays (the workers render and analyse, the manifest is written here)."""
    on_ray = build_dataset(tmp_path / "ray", workers=2, **SETTINGS)
    manifest = read_manifest(on_ray)
    assert manifest == read_manifest(built) and len(manifest["notes"]) == 8
    for entry in manifest["notes"]:
        ours, serial = load(on_ray, entry), load(built, entry)
        assert ours.keys() == serial.keys()
        for key in ours:
            np.testing.assert_array_equal(ours[key], serial[key])
    assert not list(on_ray.glob("*.partial.npz"))


def test_build_resumes_without_rendering_again(built):
    manifest_bytes = (built / MANIFEST).read_bytes()
    files = sorted(built.glob("*.npz"))
    stamps = {p: p.stat().st_mtime_ns for p in files}
    started = time.perf_counter()
    assert build_dataset(built, **SETTINGS) == built
    assert time.perf_counter() - started < 1.0
    assert (built / MANIFEST).read_bytes() == manifest_bytes
    assert all(p.stat().st_mtime_ns == stamps[p] for p in files)
    # an interrupted run: one note missing, a half-written file left behind
    missing = files[3]
    missing.unlink()
    (built / "cello-000-000.partial.npz").write_bytes(b"half")
    build_dataset(built, **SETTINGS)
    assert missing.exists()
    assert all(p.stat().st_mtime_ns == stamps[p] for p in files if p != missing)
    assert (built / MANIFEST).read_bytes() == manifest_bytes
    with pytest.raises(SynthError, match="built with .*'seconds': 1.0.*use another folder"):
        build_dataset(built, **{**SETTINGS, "seconds": 2.0})


def test_held_out_notes_are_never_in_the_train_split(built):
    manifest = read_manifest(built)
    test_files = {e["file"] for e in manifest["notes"] if e["split"] == "test"}
    for name in ("flute", "cello"):  # 4 notes each: round(0.4) -> at least one held out
        assert sum(e["split"] == "test" for e in manifest["notes"] if e["instrument"] == name) == 1
    held_out = [load(built, {"file": f})["audio"] for f in test_files]
    train_audio = [load(built, e)["audio"] for e in manifest["notes"] if e["split"] == "train"]
    train = NoteExcerpts(built, "train", excerpt_frames=32, seed=0)
    assert len(train) == sum((e["stop_frame"] - e["start_frame"]) // 32 for e in manifest["notes"]
                             if e["split"] == "train")
    for _ in range(2):
        for item in range(len(train)):
            audio = train[item]["audio"].numpy()
            in_train = any(np.array_equal(audio, a[s:s + audio.size]) for a in train_audio
                           for s in range(0, a.size - audio.size + 1, HOP))
            in_test = any(np.array_equal(audio, a[s:s + audio.size]) for a in held_out
                          for s in range(0, a.size - audio.size + 1, HOP))
            assert in_train and not in_test


def test_split_is_about_a_tenth_per_instrument_and_independent_of_order():
    notes = [{"instrument": name, "note": p, "velocity": v} for name in ("a", "b") for p in range(40, 50)
             for v in (64, 110)]
    assign_splits(notes)
    first = {(n["instrument"], n["note"], n["velocity"]): n["split"] for n in notes}
    assert sum(s == "test" for (name, *_), s in first.items() if name == "a") == 2
    assert sum(s == "test" for (name, *_), s in first.items() if name == "b") == 2
    shuffled = [dict(n) for n in reversed(notes)]
    assign_splits(shuffled)
    assert {(n["instrument"], n["note"], n["velocity"]): n["split"] for n in shuffled} == first
    lone = [{"instrument": "c", "note": 60, "velocity": 64}]
    assign_splits(lone)
    assert lone[0]["split"] == "train"


# ------------------------------------------------------------------------------------ excerpts

@pytest.mark.parametrize("frames", [1, 63, 64, 65])
def test_excerpts_have_the_shapes_and_alignment_of_their_note(built, frames):
    manifest = read_manifest(built)
    notes = {e["file"]: load(built, e) for e in manifest["notes"]}
    dataset = NoteExcerpts(built, "train", excerpt_frames=frames, seed=1)
    assert dataset.instruments == ["cello", "flute"]
    for item in range(0, len(dataset), max(1, len(dataset) // 12)):
        excerpt = dataset[item]
        assert excerpt["audio"].shape == (frames * HOP,) and excerpt["audio"].dtype == torch.float32
        for key in ("f0_hz", "voiced", "loudness_db"):
            assert excerpt[key].shape == (frames,)
        assert excerpt["mel"].shape == (frames, 128)
        assert excerpt["instrument"].dtype == torch.int64
        # find the excerpt's start from its audio, then every feature must come from the same frames
        matches = [(name, a) for name, data in notes.items() for a in range(data["f0_hz"].size - frames + 1)
                   if np.array_equal(data["audio"][a * HOP:(a + frames) * HOP], excerpt["audio"].numpy())]
        aligned = [(name, a) for name, a in matches
                   if np.array_equal(excerpt["loudness_db"].numpy(), notes[name]["loudness_db"][a:a + frames])
                   and np.array_equal(excerpt["f0_hz"].numpy(), notes[name]["f0_hz"][a:a + frames])
                   and np.array_equal(excerpt["mel"].numpy(), notes[name]["mel"][a:a + frames])]
        assert aligned, matches
        assert dataset.instruments[int(excerpt["instrument"])] in {str(notes[name]["instrument"]) for name, _ in aligned}


def test_test_excerpts_repeat_for_a_seed_and_train_excerpts_vary(built):
    first = NoteExcerpts(built, "test", excerpt_frames=48, seed=7)
    again = NoteExcerpts(built, "test", excerpt_frames=48, seed=7)
    other = NoteExcerpts(built, "test", excerpt_frames=48, seed=8)
    assert len(first) == len(again) > 1
    same = [torch.equal(first[i]["audio"], again[i]["audio"]) for i in range(len(first))]
    assert all(same)
    assert all(torch.equal(first[i]["audio"], first[i]["audio"]) for i in range(len(first)))
    assert not all(torch.equal(first[i]["audio"], other[i]["audio"]) for i in range(len(first)))
    train = NoteExcerpts(built, "train", excerpt_frames=48, seed=7)
    starts = {float(train[0]["loudness_db"][0]) for _ in range(20)}
    assert len(starts) > 5


def test_statistics_describe_the_training_notes(built):
    stats = dataset_statistics(built)
    assert stats["split"] == "train" and stats["notes"] == 6 and stats["instruments"] == ["cello", "flute"]
    low, high = stats["f0_range_hz"]
    pitches = [e["note"] for e in read_manifest(built)["notes"]]
    assert midi_to_hz(min(pitches)) * 0.95 < low < midi_to_hz(min(pitches)) * 1.05
    assert midi_to_hz(max(pitches)) * 0.95 < high < midi_to_hz(max(pitches)) * 1.05
    lo_db, hi_db = stats["loudness_range_db"]
    assert -120.0 <= lo_db < stats["loudness_mean_db"] < hi_db < 0.0
    assert stats["loudness_std_db"] > 1.0
    json.dumps(stats)  # goes into the model's JSON metadata as it is


def test_log_mel_frames_are_centred_like_the_other_features():
    for n in (0, HOP - 1, HOP, 5 * HOP + 7):
        assert log_mel(np.zeros(n, np.float32)).shape == (n // HOP, 128)
    audio = np.zeros(40 * HOP, np.float32)
    audio[20 * HOP] = 1.0
    energy = np.exp(log_mel(audio)).sum(axis=1)
    assert np.argmax(energy) == 19
    assert energy[18] == pytest.approx(energy[20], rel=1e-4)
    assert np.all(log_mel(np.zeros(HOP * 4, np.float32)) == np.float32(np.log(1e-5)))


def test_log_mel_is_torchaudios_mel_spectrogram_one_frame_on():
    """The shipped models were trained on torchaudio's MelSpectrogram (n_fft 2048, HTK, no filter
    normalisation, zero padding): our numpy log-mel is its frame k + 1, to float32 rounding."""
    import torchaudio

    rng = np.random.default_rng(5)
    t = np.arange(RATE + 77) / RATE
    audio = (0.4 * np.sin(2 * np.pi * 330 * t) * np.exp(-3 * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
    reference = torchaudio.transforms.MelSpectrogram(sample_rate=RATE, n_fft=2048, hop_length=HOP, n_mels=128,
                                                     f_min=0.0, f_max=RATE / 2, power=2.0, center=True,
                                                     pad_mode="constant", mel_scale="htk")(torch.from_numpy(audio))
    expected = torch.log(reference.clamp(min=1e-5))[:, 1:audio.size // HOP + 1].T.numpy()
    ours = log_mel(audio)
    assert ours.shape == expected.shape == (audio.size // HOP, 128)
    np.testing.assert_allclose(ours, expected, atol=1e-3)


# ------------------------------------------------------------------------------------ user files

def test_dataset_from_wavs(user_wavs, tmp_path):
    folder = dataset_from_wavs(user_wavs, tmp_path / "mine", progress=False)
    manifest = read_manifest(folder)
    assert sorted({e["instrument"] for e in manifest["notes"]}) == ["my_cello", "my_flute"]
    flute = [e for e in manifest["notes"] if e["instrument"] == "my_flute"]
    assert [e["split"] for e in flute] == ["train", "test"]
    data = load(folder, flute[0])
    assert abs(data["audio"].size - int(2.5 * RATE)) <= 2  # resampled from 44.1 kHz
    frames = data["f0_hz"].size
    assert flute[0]["stop_frame"] == flute[1]["start_frame"] == frames - int(np.ceil(RATE / HOP))
    assert flute[1]["stop_frame"] == frames
    error_cents = 1200 * np.log2(data["f0_hz"][40:350] / midi_to_hz(76))
    assert np.median(np.abs(error_cents)) < 20.0
    cello = [e for e in manifest["notes"] if e["instrument"] == "my_cello"]
    assert [e["split"] for e in cello] == ["train"]  # 1 s: too short to hold out
    test_set = NoteExcerpts(folder, "test", excerpt_frames=96, seed=0)
    assert test_set.instruments == ["my_cello", "my_flute"]
    assert all(int(test_set[i]["instrument"]) == 1 for i in range(len(test_set)))
    stamp = (folder / flute[0]["file"]).stat().st_mtime_ns
    dataset_from_wavs(user_wavs, folder, progress=False)  # again: nothing analysed twice
    assert (folder / flute[0]["file"]).stat().st_mtime_ns == stamp


def test_bad_input_names_the_path(tmp_path, user_wavs):
    missing = tmp_path / "nowhere"
    with pytest.raises(SynthError, match=f"{missing}: no such folder"):
        dataset_from_wavs(missing, tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SynthError, match=f"{empty}: no audio files"):
        dataset_from_wavs(empty, tmp_path / "out")
    (empty / "notes.txt").write_text("not audio")
    with pytest.raises(SynthError, match=r"no audio files .*found only: notes.txt"):
        dataset_from_wavs(empty, tmp_path / "out")
    (empty / "broken.wav").write_text("this is not a RIFF file")
    with pytest.raises(SynthError, match=f"{empty / 'broken.wav'}: not an audio file libsndfile reads \\(Format not recognised\\)"):
        dataset_from_wavs(empty, tmp_path / "out", progress=False)
    with pytest.raises(SynthError, match=f"{missing}: no such data set folder"):
        NoteExcerpts(missing, "train")
    with pytest.raises(SynthError, match=f"{empty / MANIFEST}: missing"):
        read_manifest(empty)
    (empty / MANIFEST).write_text("{not json")
    with pytest.raises(SynthError, match=f"{empty / MANIFEST}: not a readable JSON manifest"):
        dataset_statistics(empty)
    (empty / MANIFEST).write_text(json.dumps({"version": 99}))
    with pytest.raises(SynthError, match="key 'version' must be 1, got 99"):
        read_manifest(empty)
    with pytest.raises(SynthError, match="instrument 'kazoo' is not known"):
        build_dataset(tmp_path / "out", instruments=["kazoo"])
    with pytest.raises(SynthError, match=r"none lies in tuba's range 28\.\.58"):
        build_dataset(tmp_path / "out", instruments=["tuba"], pitches=[80])


def test_bad_data_set_folders_name_the_file(built, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    manifest = read_manifest(built)
    for entry in manifest["notes"]:
        os.link(built / entry["file"], copy / entry["file"])
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(SynthError, match="split='valid' must be 'train' or 'test'"):
        NoteExcerpts(copy, "valid")
    with pytest.raises(SynthError, match="no 'test' note lasts excerpt_frames=1000 frames"):
        NoteExcerpts(copy, "test", excerpt_frames=1000)
    victim = next(e["file"] for e in manifest["notes"] if e["split"] == "train")
    (copy / victim).unlink()
    (copy / victim).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(SynthError, match=f"{copy / victim}: not a readable note file"):
        NoteExcerpts(copy, "train")
