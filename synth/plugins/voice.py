"""`voice`: the synth speaks (/say) and sings (/sing, then notes), live.

Speaking: `/say "text"` is rendered off the audio thread (synth.speech.Speaker, about 50x faster
than real time) into an Utterance event carrying the audio; applying it hands the array to this
plugin, which plays it from that sample on. A new utterance replaces one still playing.

Singing: `/sing "text"` prepares a LyricTable off the audio thread: the text-to-mel model speaks
the lyric once with every vowel held long (LYRIC_VOWEL_FRAMES), and the table keeps, per
syllable, its frames (log-mel and loudness) cut into onset (consonants before the vowel), vowel
and coda. Each following note sings the next syllable (after the last, the first again): the
onset frames play at the note's start, then the vowel frames, whose last frame is held while the
key is down; at the note-off the rest of the vowel and the coda play out. The speech decoder
runs one frame at a time on these mel frames with f0 from the note (tuned, with vibrato) and the
table's loudness raised or lowered by the velocity; it is monophonic, a new note takes over the
voice legato (the decoder's state carries on). Without an armed lyric, notes sing "ah".
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

from synth.dsp.decoder_runtime import load_runtime
from synth.dsp.decoder_synth import DecoderSynth
from synth.dsp.decoder_voices import add_samples, copy_samples
from synth.dsp.mix import add_mono
from synth.errors import SynthError
from synth.params import LOG, float_param
from synth.plugins.base import Instrument
from synth.plugins.decoder import check_model_rate

LYRIC_VOWEL_FRAMES = 40  # frames each vowel is spoken for when a lyric table is made (0.21 s)
MAX_LYRIC_SYLLABLES = 512
HANDED_OVER_KEPT = 4  # utterances and lyric tables kept referenced off the audio thread
SILENT_DB = -120.0
DEFAULT_LYRIC = "ah"


@njit(nogil=True, cache=True)
def _copy_row(destination, table, row):
    """destination[0, :] = table[row, :]."""
    for j in range(table.shape[1]):
        destination[0, j] = table[row, j]


@dataclass
class LyricTable:
    """Frames of a lyric's syllables (see the module docstring): mel float32 [F, 128], loudness_db
    float32 [F], and per syllable the frame indices start <= vowel_start < vowel_end <= end."""

    text: str
    mel: np.ndarray
    loudness_db: np.ndarray
    start: np.ndarray
    vowel_start: np.ndarray
    vowel_end: np.ndarray
    end: np.ndarray

    @property
    def syllables(self) -> int:
        return int(self.start.size)


def make_lyric_table(speaker, text: str) -> LyricTable:
    """The LyricTable of `text` (synth.speech.Speaker `speaker`); SynthError if it has no syllable."""
    from models.text import is_vowel, syllables
    from models.text_to_mel import to_features

    tokens = speaker.tokens(text)
    groups = syllables(tokens)[:MAX_LYRIC_SYLLABLES]
    if not groups:
        raise SynthError(f"/sing: no syllable to sing in {text!r}")
    inputs = speaker.model_inputs(tokens)
    durations = speaker.model.infer(**inputs)["durations"][0].clone()
    vowels = {next(i for i in group if is_vowel(tokens[i])) for group in groups}
    for i in vowels:
        durations[i] = LYRIC_VOWEL_FRAMES
    features = to_features(speaker.model.config, speaker.model.infer(**inputs, durations=durations[None]))
    edges = np.concatenate([[0], np.cumsum(durations.numpy())])
    start, vowel_start, vowel_end, end = (np.zeros(len(groups), np.int64) for _ in range(4))
    for k, group in enumerate(groups):
        vowel = next(i for i in group if is_vowel(tokens[i]))
        start[k], end[k] = edges[group[0]], edges[group[-1] + 1]
        vowel_start[k], vowel_end[k] = edges[vowel], edges[vowel + 1]
    return LyricTable(text, features["mel"], features["loudness_db"], start, vowel_start, vowel_end, end)


class Voice(Instrument):
    """Files: `tts` (the text-to-mel model's .json), `decoder` (a speech decoder's .json, for
    /say) and `singing_decoder` (one trained over a melody's f0 range, for the notes; default
    `decoder`).
    Parameters: tune_cents -100..100, vibrato_rate_hz 0.1..12, vibrato_cents 0..100,
    dynamics_db 0..30 (how much velocity 1 is quieter than 127), harmonics_db and noise_db
    -60..12 (the decoder's two parts), level_db -60..12."""

    name = "voice"
    file_keys = ("tts", "decoder", "singing_decoder")
    param_specs = (
        float_param("tune_cents", -100, 100, 0, "cents", doc="tuning of sung notes"),
        float_param("vibrato_rate_hz", 0.1, 12, 5.5, "Hz", LOG, doc="vibrato speed"),
        float_param("vibrato_cents", 0, 100, 20, "cents", doc="vibrato depth (peak)"),
        float_param("dynamics_db", 0, 30, 12, "dB", smoothing_ms=0, doc="loudness range of the velocities"),
        float_param("harmonics_db", -60, 12, 0, "dB", doc="gain of the harmonic part"),
        float_param("noise_db", -60, 12, 0, "dB", doc="gain of the noise part"),
        float_param("level_db", -60, 12, 0, "dB", doc="output level"),
    )

    def __init__(self, tts: str | Path | None = None, decoder: str | Path | None = None,
                 singing_decoder: str | Path | None = None, voice_limit: int = 1, **values: object):
        super().__init__(**values)
        from synth.speech import DEFAULT_SPEECH_DECODER, DEFAULT_TTS, Speaker

        self.speaker = Speaker(tts or DEFAULT_TTS, decoder or DEFAULT_SPEECH_DECODER)
        # the audio thread's own runtime: the speaker's renders /say on the control thread meanwhile
        self.runtime = load_runtime(Path(singing_decoder).with_suffix("") if singing_decoder
                                    else self.speaker.decoder_path, 1)
        self.hop = int(self.runtime.config["hop_samples"])
        self.model_rate = int(self.runtime.config["sample_rate"])
        self._default_lyric = make_lyric_table(self.speaker, DEFAULT_LYRIC)
        self._lyric = self._default_lyric
        # the last arrays and tables made for the audio thread stay referenced here, so that when the
        # audio thread lets one go for the next it is not freed there (a free of megabytes is a syscall)
        self._handed_over: collections.deque = collections.deque(maxlen=HANDED_OVER_KEPT)
        self._no_speech = np.zeros(0, dtype=np.float32)
        self._speech = self._no_speech
        self._speech_position = 0

    # --- off the audio thread: turning text into what the events carry ---------------------

    def render_speech(self, text: str) -> np.ndarray:
        """Speech of `text` (float32 at the model's rate) for an Utterance event."""
        audio = self.speaker.say(text, harmonics_db=self.get_param("harmonics_db"), noise_db=self.get_param("noise_db"))
        self._handed_over.append(audio)
        return audio

    def prepare_lyric(self, text: str) -> LyricTable:
        """The LyricTable of `text` for a Lyric event."""
        table = make_lyric_table(self.speaker, text)
        self._handed_over.append(table)
        return table

    # --- set-up ----------------------------------------------------------------------------

    def prepare(self, sample_rate: float, max_block: int, channels: int) -> None:
        check_model_rate(self.model_rate, sample_rate, "speech decoder")
        super().prepare(sample_rate, max_block, channels)

    def allocate(self) -> None:
        self._mono = np.zeros(self.max_block, dtype=np.float32)
        self._frame = np.zeros(self.hop, dtype=np.float32)
        self._onset = np.zeros(self.hop, dtype=np.float32)
        self._f0 = np.zeros(1, dtype=np.float32)
        self._loudness = np.zeros(1, dtype=np.float32)
        self._active = np.zeros(1, dtype=bool)
        self._synth = DecoderSynth(self.runtime)
        self.runtime.warm_up()
        self._lyric = self._default_lyric  # a prepared engine starts afresh, as a new one would (synth batch reuses them)
        self._clear_state()

    def warm_up(self) -> None:
        """Compile every kernel before audio: sing a note, begun inside a silent frame, while a
        little silence is being said."""
        self.process(np.zeros((self.channels, self.max_block), dtype=np.float32), 1)
        self.note_on(60, 100)
        self.speak(np.zeros(self.hop, dtype=np.float32))
        super().warm_up()

    def reset(self) -> None:
        super().reset()
        self._synth.reset()
        self._clear_state()

    def _clear_state(self) -> None:
        """Silent: no note, no syllable, no speech; the armed lyric's first syllable is next."""
        self._frame.fill(0.0)
        self._position = self.hop
        self._note, self._velocity = -1, 0
        self._syllable, self._next_syllable, self._cursor = -1, 0, 0
        self._held, self._was_active, self._vibrato_phase = False, False, 0.0
        self._onset_pending = False
        self._speech = self._no_speech
        self._speech_position = 0

    # --- the audio thread ------------------------------------------------------------------

    def speak(self, audio: np.ndarray) -> None:
        """Play `audio` (float32 [samples]) from now on, replacing speech still playing."""
        self._speech = audio
        self._speech_position = 0

    def arm_lyric(self, table: LyricTable) -> None:
        """The next notes sing `table`'s syllables, from its first."""
        self._lyric = table
        self._next_syllable = 0

    def note_on(self, note: int, velocity: int) -> bool:
        table = self._lyric
        self._syllable = self._next_syllable % table.syllables
        self._next_syllable = self._syllable + 1
        self._cursor = int(table.start[self._syllable])
        self._note, self._velocity, self._held = note, velocity, True
        # begun inside a frame the voice was silent for: the rest of that frame is its first (_render_onset)
        self._onset_pending = not self._was_active and self._position < self.hop
        return False

    def note_off(self, note: int) -> None:
        if note == self._note:
            self._held = False

    def all_notes_off(self) -> None:
        self._held = False

    @property
    def active_voices(self) -> int:
        return 1 if self._syllable >= 0 else 0

    def process(self, bus: np.ndarray, n: int) -> None:
        if self._onset_pending:
            self._render_onset()
        done = 0
        while done < n:
            if self._position == self.hop:
                self._render_frame()
                self._position = 0
            take = min(n - done, self.hop - self._position)
            copy_samples(self._mono, done, self._frame, self._position, take)
            self._position += take
            done += take
        speech = self._speech
        if self._speech_position < speech.shape[0]:
            take = min(n, speech.shape[0] - self._speech_position)
            add_samples(self._mono, 0, speech, self._speech_position, take)
            self._speech_position += take
        level_start, level_end = self.params["level_db"].ramp(n)
        add_mono(bus, self._mono, n, level_start, level_end)

    def _render_frame(self) -> None:
        """The next hop of singing into self._frame (silence when no syllable sounds)."""
        p, hop = self.params, self.hop
        self._step(hop / self.sample_rate, p["tune_cents"].ramp(hop)[1], p["vibrato_rate_hz"].ramp(hop)[1],
                   p["vibrato_cents"].ramp(hop)[1])
        self._frame.fill(0.0)
        self._synth.render_frame(self._frame, self._frame, self._f0, self._active,
                                 10.0 ** (p["harmonics_db"].ramp(hop)[1] / 20.0), 10.0 ** (p["noise_db"].ramp(hop)[1] / 20.0))

    def _render_onset(self) -> None:
        """A note begun inside a frame the voice was silent for: the rest of that frame is its first
        (DecoderSynth.render_onsets), so it sounds from its own sample; the parameters as they stand."""
        self._onset_pending = False
        p, samples = self.params, self.hop - self._position
        self._step(samples / self.sample_rate, p["tune_cents"].value, p["vibrato_rate_hz"].value,
                   p["vibrato_cents"].value)
        self._onset.fill(0.0)
        self._synth.render_onsets(self._onset, samples, self._f0, self._active, 10.0 ** (p["harmonics_db"].value / 20.0),
                                  10.0 ** (p["noise_db"].value / 20.0))
        add_samples(self._frame, self._position, self._onset, 0, samples)

    def _step(self, frame_s: float, tune_cents: float, vibrato_rate_hz: float, vibrato_cents: float) -> None:
        """The syllable's next frame of conditioning (a frame_s seconds long frame) and one decoder step."""
        p, table = self.params, self._lyric
        active = False
        if self._syllable >= 0:
            k = self._syllable
            if self._held and self._cursor >= table.vowel_end[k] - 1:
                self._cursor = int(table.vowel_end[k]) - 1  # hold the vowel's last frame
            if self._cursor < table.end[k]:
                active = True
                frame = self._cursor
                self._cursor += 1
            else:
                self._syllable = -1
        if active:
            if not self._was_active:
                self._synth.restart_voice(0)
                self._vibrato_phase = 0.0
            self._vibrato_phase = (self._vibrato_phase + vibrato_rate_hz * frame_s) % 1.0
            cents = tune_cents + vibrato_cents * math.sin(2.0 * math.pi * self._vibrato_phase)
            self._f0[0] = 440.0 * 2.0 ** ((self._note - 69) / 12.0 + cents / 1200.0)
            dynamics = p["dynamics_db"].target
            self._loudness[0] = table.loudness_db[frame] - dynamics * (1.0 - self._velocity / 127.0)
            _copy_row(self.runtime.mel, table.mel, frame)
        self._active[0] = active
        self._was_active = active
        self.runtime.step(self._f0, self._loudness, None, self._active)
