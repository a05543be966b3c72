"""Speaking and singing: text -> tokens -> text-to-mel -> speech decoder -> audio at 48 kHz.

A `Speaker` holds a text-to-mel model (models.text_to_mel; torch, run on the CPU with one
thread) and a speech decoder (a decoder model with mel_bands > 0, run by the torch-free
runtime). Speaking: the model predicts durations, pitch and energy, then mel, f0, voicing and
loudness frames; the decoder renders them (synth.transfer.render_frames). Frames predicted
unvoiced keep the f0 of the nearest voiced frame (the decoder's harmonic part fades by itself
where the mel says noise).

Singing: the text's syllables (models.text.syllables) go one to a note. Each note's frames are
its syllable's: the consonants before the vowel keep their spoken durations (at most 40% of the
note), the vowel fills the rest, consonants after it close the note; the rests between notes are
silent. The model is run once over the whole text with these durations and with each syllable's
pitch set to its note's (clamped to the range the model was trained on: a spoken voice spans a few
semitones, a melody more), so the mel follows the lyric's flow; the decoder then gets the notes'
own pitch (with a gentle vibrato) as f0, and the predicted loudness scaled by velocity. Where a
phrase ends (a rest follows, or the melody ends) the last sound is released, not cut: its frame
is held while the level falls RELEASE_DROP_DB over RELEASE_S (or until the next note begins).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth.dsp.decoder_runtime import load_runtime
from synth.dsp.oscillators import midi_to_hz
from synth.errors import SynthError, SynthWarning

MODELS = Path(__file__).resolve().parent.parent / "presets" / "models"
DEFAULT_TTS = MODELS / "slt-tts.json"  # Festival's cmu_us_slt_arctic_hts voice (a real speaker's recordings)
DEFAULT_SPEECH_DECODER = MODELS / "slt-decoder.json"
DEFAULT_SINGING_DECODER = MODELS / "singing-decoder.json"  # twelve espeak-ng voices over 60..390 Hz
SILENT_DB = -120.0
ONSET_SHARE = 0.4  # consonants before a sung vowel take at most this share of the note
VIBRATO_HZ, VIBRATO_CENTS, VIBRATO_DELAY_S = 5.5, 20.0, 0.25
RELEASE_S, RELEASE_DROP_DB = 0.2, 40.0  # a phrase's release: its level falls this much over this time
MEL_PITCH_LIMIT_STD = 2.0  # sung pitches reach the text-to-mel model clamped to its training mean +/- this


@dataclass
class SungNote:
    """One note of a melody: start and end (seconds), MIDI note number, velocity 1..127."""

    start_s: float
    end_s: float
    note: int
    velocity: int = 100


class Speaker:
    """Text to audio with a text-to-mel model and a speech decoder (paths: .json or stems);
    singing_decoder: a speech decoder trained over a wide f0 range for `sing` (None: `decoder`).
    The shipped speech decoder learned one voice (Festival's slt, a woman's), the singing one twelve
    espeak voices at pitches from 60 to 390 Hz: it sings a melody's range, and speaks less well."""

    def __init__(self, tts=DEFAULT_TTS, decoder=DEFAULT_SPEECH_DECODER, singing_decoder=None):
        import torch

        from models.text import Vocabulary
        from models.text_to_mel import load_text_to_mel

        torch.set_num_threads(1)
        self.model, self.metadata = load_text_to_mel(Path(tts).with_suffix(""))
        self.vocabulary = Vocabulary.from_dict(self.model.config.vocabulary, str(tts))
        self.decoder_path = Path(decoder).with_suffix("")
        self.runtime = _speech_runtime(self.decoder_path)
        self.singing_decoder_path = Path(singing_decoder).with_suffix("") if singing_decoder else self.decoder_path
        self.singing_runtime = _speech_runtime(self.singing_decoder_path) if singing_decoder else self.runtime
        self.frame_rate_hz = self.runtime.config["sample_rate"] / self.runtime.config["hop_samples"]
        self.sample_rate = int(self.runtime.config["sample_rate"])

    def tokens(self, text: str) -> list[str]:
        """The tokens of `text` in the model's vocabulary mode (phonemes or characters), one per
        phoneme with its stress marks joined to it (model_inputs splits them off again for a model
        with the stress feature); syllables are read from these."""
        from models.text import join_stress, text_tokens

        if not text.strip():
            raise SynthError("there is no text to say")
        tokens, _ = text_tokens(text, self.vocabulary.mode)
        tokens = join_stress(tokens)
        if not tokens:
            raise SynthError(f"nothing to say in {text!r}: it holds no word the text front end can read")
        return tokens

    def model_inputs(self, tokens: list[str]) -> dict:
        """The text-to-mel model's inputs for `tokens` (from tokens()): {"tokens": int64 [1, N] ids,
        "stress": int64 [1, N] levels, or None for a model without the stress feature}, warning
        about tokens it never saw."""
        import torch

        from models.text import model_tokens

        plain, levels = model_tokens(tokens, self.model.config.stress)
        before = self.vocabulary.unknown_count
        ids = self.vocabulary.encode(plain)
        if self.vocabulary.unknown_count > before:
            unknown = sorted({t for t in plain if t not in self.vocabulary.symbols})
            warnings.warn(f"tokens the model never saw are read as <unk>: {' '.join(unknown)}", SynthWarning,
                          stacklevel=3)
        stress = torch.tensor([levels], dtype=torch.int64) if self.model.config.stress else None
        return {"tokens": torch.from_numpy(ids)[None], "stress": stress}

    def frames(self, text: str, rate: float = 1.0, pitch_semitones: float = 0.0) -> dict[str, np.ndarray]:
        """The model's frames for `text` (models.text_to_mel.to_features) plus token durations."""
        from models.text_to_mel import to_features

        if not 0.25 <= rate <= 4.0:
            raise SynthError(f"rate={rate!r} must be in 0.25..4 (1 = the trained speed)")
        if not -24.0 <= pitch_semitones <= 24.0:
            raise SynthError(f"pitch={pitch_semitones!r} semitones must be in -24..24")
        out = self.model.infer(**self.model_inputs(self.tokens(text)), rate=rate, pitch_shift_semitones=pitch_semitones)
        features = to_features(self.model.config, out)
        features["durations"] = out["durations"][0].numpy()
        if pitch_semitones:
            low_hz, high_hz = self.runtime.config["f0_range_hz"]
            asked_hz = math.exp(self.model.config.statistics["log_f0_mean"]) * 2.0 ** (pitch_semitones / 12.0)
            if not low_hz <= asked_hz <= high_hz:
                warnings.warn(f"pitch {pitch_semitones:+g} semitones asks for the voice at about {asked_hz:.0f} Hz, "
                              f"outside the {low_hz:.0f}..{high_hz:.0f} Hz its speech decoder was trained on: it "
                              f"stays within that range", SynthWarning, stacklevel=2)
        return features

    def render(self, features: dict, harmonics_db: float = 0.0, noise_db: float = 0.0,
               gate_db: float = -80.0, runtime=None, progress: bool = False) -> np.ndarray:
        """float32 audio (at sample_rate) of frames {mel, f0_hz, voiced, loudness_db} through the
        speech decoder (or `runtime`); progress: a bar over the frames on stderr."""
        from synth.transfer import render_frames

        f0 = _hold_voiced(features["f0_hz"], features["voiced"])
        loud = features["loudness_db"]
        return render_frames(runtime or self.runtime, f0, loud, loud >= gate_db, harmonics_db, noise_db,
                             mel=features["mel"], progress=progress)

    def say(self, text: str, rate: float = 1.0, pitch_semitones: float = 0.0, harmonics_db: float = 0.0,
            noise_db: float = 0.0, progress: bool = False) -> np.ndarray:
        """Speech of `text`, float32 [samples] at sample_rate (48 kHz); progress as for render."""
        return self.render(self.frames(text, rate, pitch_semitones), harmonics_db, noise_db, progress=progress)

    def sing(self, text: str, notes: list[SungNote], harmonics_db: float = 0.0, noise_db: float = 0.0,
             progress: bool = False) -> np.ndarray:
        """`text` sung on `notes` (one syllable a note, in order), float32 at sample_rate; the
        audio starts at time 0 of the notes and ends RELEASE_S after the last (its release)."""
        import torch

        from models.text import is_vowel, syllables
        from models.text_to_mel import to_features

        if not notes:
            raise SynthError("singing needs at least one note")
        tokens = self.tokens(text)
        groups = syllables(tokens)
        if not groups:
            raise SynthError(f"no syllable to sing in {text!r}")
        notes = sorted(notes, key=lambda n: n.start_s)
        if len(groups) != len(notes):
            warnings.warn(f"{len(groups)} syllable{'s' * (len(groups) != 1)} for "
                          f"{len(notes)} note{'s' * (len(notes) != 1)}: "
                          + ("the last notes repeat the last syllable" if len(notes) > len(groups)
                             else "the syllables beyond the last note are left out"), SynthWarning, stacklevel=2)
        groups = groups[:len(notes)]
        inputs = self.model_inputs(tokens)
        spoken = self.model.infer(**inputs)["durations"][0].numpy()
        stats = self.model.config.statistics
        spans = [(self._frame(n.start_s), max(self._frame(n.end_s), self._frame(n.start_s) + 1)) for n in notes]
        durations = np.zeros(len(tokens), np.int64)  # tokens outside the sung syllables take no frames
        token_f0 = np.zeros(len(tokens), np.float32)
        for group, note, (start, stop) in zip(groups, notes, spans):
            length = max(stop - start, len(group))
            vowel = next(i for i in group if is_vowel(tokens[i]))
            consonants = [i for i in group if i != vowel]
            budget = int(ONSET_SHARE * length) // max(len(consonants), 1)
            for i in consonants:
                durations[i] = max(1, min(int(spoken[i]), budget))
            durations[vowel] = max(1, length - int(durations[consonants].sum()))
            # the mel model hears the note's pitch only within the range it was trained on (a spoken
            # voice's few semitones); the decoder below plays the true pitch
            standardised = (math.log(midi_to_hz(note.note)) - stats["log_f0_mean"]) / stats["log_f0_std"]
            token_f0[group] = min(max(standardised, -MEL_PITCH_LIMIT_STD), MEL_PITCH_LIMIT_STD)
        out = self.model.infer(**inputs, durations=torch.from_numpy(durations)[None],
                               token_f0=torch.from_numpy(token_f0)[None])
        sung = to_features(self.model.config, out)
        edges = np.concatenate([[0], np.cumsum(durations)])
        release = self._frame(RELEASE_S)
        total = spans[-1][1] + release
        mel = np.zeros((total, sung["mel"].shape[1]), np.float32)
        f0 = np.zeros(total, np.float32)
        loud = np.full(total, SILENT_DB, np.float32)
        for k, (note, (start, stop)) in enumerate(zip(notes, spans)):
            group = groups[min(k, len(groups) - 1)]
            first, last = edges[group[0]], edges[group[-1] + 1]  # the syllable's frames in the model's output
            source = np.round(np.linspace(first, last - 1, stop - start)).astype(np.int64) if k >= len(groups) \
                else np.arange(first, first + (stop - start)).clip(max=last - 1)
            t = np.arange(stop - start) / self.frame_rate_hz
            depth = VIBRATO_CENTS * np.clip((t - VIBRATO_DELAY_S) / VIBRATO_DELAY_S, 0.0, 1.0)
            mel[start:stop] = sung["mel"][source]
            f0[start:stop] = midi_to_hz(note.note) * 2.0 ** (depth * np.sin(2 * np.pi * VIBRATO_HZ * t) / 1200.0)
            loud[start:stop] = sung["loudness_db"][source] + 20.0 * math.log10(note.velocity / 100.0)
            following = spans[k + 1][0] if k + 1 < len(spans) else total
            length = min(release, following - stop)  # a phrase's end: the last frame fades out
            if length > 0:
                mel[stop:stop + length], f0[stop:stop + length] = mel[stop - 1], f0[stop - 1]
                loud[stop:stop + length] = loud[stop - 1] - RELEASE_DROP_DB * np.arange(1, length + 1) / release
        features = {"mel": mel, "f0_hz": _hold_voiced(f0, f0 > 0), "voiced": f0 > 0, "loudness_db": loud}
        return self.render(features, harmonics_db, noise_db, runtime=self.singing_runtime, progress=progress)

    def _frame(self, seconds: float) -> int:
        """The frame index nearest a time in seconds."""
        return int(round(seconds * self.frame_rate_hz))


def _speech_runtime(stem):
    """A one-voice runtime of the speech decoder at `stem`; SynthError if it reads no mel frames."""
    runtime = load_runtime(stem, 1)
    if runtime.mel_bands != 128:
        raise SynthError(f"{stem}.json: not a speech decoder (it reads {runtime.mel_bands} mel bands, "
                         "a speech decoder reads 128)")
    return runtime


def _hold_voiced(f0_hz: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """f0 with every unvoiced frame given the f0 of the nearest voiced frame (float32)."""
    f0_hz = np.asarray(f0_hz, np.float32)
    index = np.flatnonzero(voiced & (f0_hz > 0))
    if index.size == 0:
        return np.full_like(f0_hz, 120.0)
    frames = np.arange(f0_hz.size)
    nearest = index[np.clip(np.searchsorted(index, frames), 0, index.size - 1)]
    before = index[np.clip(np.searchsorted(index, frames) - 1, 0, index.size - 1)]
    pick = np.where(np.abs(before - frames) <= np.abs(nearest - frames), before, nearest)
    return f0_hz[pick]


def read_melody(path) -> list[SungNote]:
    """The notes of a MIDI file (synth.scores' reader), one SungNote each, in time order."""
    from synth.scores import midi_notes

    return [SungNote(*note) for note in midi_notes(path)]


def _voice_from_preset(preset, tts, decoder, singing_decoder=None):
    """(tts, decoder, singing decoder, harmonics_db, noise_db): from a preset's first `voice` slot
    (its files tts, decoder, singing_decoder) or else its first `decoder` slot (a speech decoder, for
    both); without a preset, the given paths and 0 dB."""
    if preset is None:
        return tts, decoder, singing_decoder, 0.0, 0.0
    from synth.presets import load_preset
    from synth.transfer import decoder_from_preset

    spec = load_preset(preset)
    for entry in spec.chain:
        if entry.plugin == "voice":
            files = {key: spec.folder / path for key, path in entry.files.items()}
            return (files.get("tts", tts), files.get("decoder", decoder), files.get("singing_decoder"),
                    float(entry.params.get("harmonics_db", 0.0)), float(entry.params.get("noise_db", 0.0)))
    stem, _, harmonics_db, noise_db = decoder_from_preset(spec)
    return tts, stem.with_suffix(".json"), None, harmonics_db, noise_db


def sing_file(text: str, melody, out_wav, tts=DEFAULT_TTS, decoder=DEFAULT_SPEECH_DECODER,
              singing_decoder=DEFAULT_SINGING_DECODER, preset=None, fmt: str = "float32",
              progress: bool = False) -> tuple[Path, float]:
    """`synth sing`: `text` sung on the notes of the MIDI file `melody`, to a mono WAV (atomically);
    progress: a bar over the decoder's frames. Returns (path, seconds)."""
    from synth.io.audiofile import write_wav

    tts, decoder, singing_decoder, harmonics_db, noise_db = _voice_from_preset(preset, tts, decoder, singing_decoder)
    audio = Speaker(tts, decoder, singing_decoder).sing(text, read_melody(melody), harmonics_db, noise_db, progress)
    path = write_wav(out_wav, audio[:, None], 48000, fmt)
    return path, audio.size / 48000


def speak_file(text: str, out_wav, tts=DEFAULT_TTS, decoder=DEFAULT_SPEECH_DECODER, rate: float = 1.0,
               pitch_semitones: float = 0.0, preset=None, fmt: str = "float32",
               progress: bool = False) -> tuple[Path, float]:
    """`synth say`: write the speech of `text` to a mono WAV (atomically); preset: a preset with a
    `voice` slot, or a decoder slot naming a speech decoder (its harmonics_db / noise_db are used).
    progress: a bar over the decoder's frames. Returns (path, seconds)."""
    from synth.io.audiofile import write_wav

    tts, decoder, _, harmonics_db, noise_db = _voice_from_preset(preset, tts, decoder)
    audio = Speaker(tts, decoder).say(text, rate, pitch_semitones, harmonics_db, noise_db, progress)
    path = write_wav(out_wav, audio[:, None], 48000, fmt)
    return path, audio.size / 48000
