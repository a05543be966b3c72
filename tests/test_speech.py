"""Speech: the Festival / espeak-ng corpus in the LJSpeech layout, alignment + text-to-mel training, the speech
decoder, `synth say` / `synth sing`, and the `voice` plugin's /say and /sing."""

import collections
import json
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile
from models.speech_data import (FORTUNE_FILES, FORTUNE_FOLDER, build_speech_corpus, is_held_out, load_features,
                                read_metadata)
from models.text import join_stress, model_tokens, text_tokens
from models.text_to_mel import load_text_to_mel
from models.train_decoder import TrainSettings, train_decoder
from models.train_text_to_mel import TtsTrainSettings, train_text_to_mel
from synth.control.addresses import MessageTranslator, event_to_message
from synth.dsp.decoder_runtime import read_metadata as read_model_metadata
from synth.engine import Engine, Slot
from synth.errors import SynthError, SynthWarning
from synth.events import Lyric, NoteOff, NoteOn, Utterance
from synth.plugins.voice import Voice
from synth.presets import load_preset
from synth.speech import DEFAULT_TTS, RELEASE_S, Speaker, SungNote

SR = 48000
MODELS = Path(__file__).resolve().parent.parent / "presets" / "models"
SHIPPED_TTS = DEFAULT_TTS  # Festival's slt voice, stress as a feature
ESPEAK_TTS, ESPEAK_DECODER = MODELS / "speech-tts.json", MODELS / "speech-decoder.json"  # the first shipped voice
WORD_LIST = "/usr/share/dict/american-english"  # Debian's wamerican
pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng speaks the test corpus")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 0.4-minute corpus spoken by Festival's cmu_us_slt_arctic_hts (the default voice), a
    text-to-mel model and a speech decoder trained a few steps on it."""
    folder = tmp_path_factory.mktemp("speech")
    corpus = build_speech_corpus(folder / "corpus", minutes=0.4, test_fraction=0.2, progress=False)
    tts = train_text_to_mel(corpus, folder / "tts", TtsTrainSettings(steps=3, align_steps=6, batch_size=4, width=32,
                                                                     eval_every=3, checkpoint_every=3, threads=1),
                            progress=False, command="test tts")
    train_decoder(corpus, folder / "voice", TrainSettings(steps=2, batch_size=2, excerpt_frames=32, hidden=32,
                                                          harmonics=16, noise_bands=17, eval_every=2,
                                                          checkpoint_every=2, threads=1), progress=False)
    return folder, corpus, tts


def test_the_corpus_is_in_the_ljspeech_layout_with_a_stable_held_out_split(tiny):
    folder, corpus, _ = tiny
    rows = read_metadata(corpus)
    lines = (corpus / "metadata.csv").read_text().splitlines()
    assert len(lines) == len(rows) >= 5 and all(line.count("|") == 2 for line in lines)
    uid, text, normalized = rows[0]
    info = soundfile.info(corpus / "wavs" / f"{uid}.wav")
    assert info.samplerate == SR and info.channels == 1 and info.subtype == "PCM_16"
    assert sum(soundfile.info(corpus / "wavs" / f"{u}.wav").duration for u, _, _ in rows) >= 0.4 * 60
    assert not any(ch.isdigit() for _, _, n in rows for ch in n)  # numbers are spelled out
    held = (corpus / "heldout.txt").read_text().split()
    assert held == [u for u, _, _ in rows if is_held_out(u, 0.2)]
    again = build_speech_corpus(corpus, minutes=0.4, test_fraction=0.2, progress=False)  # nothing to add
    assert read_metadata(again) == rows


def test_a_corpus_spoken_on_two_ray_workers_is_the_serial_one(tiny, tmp_path):
    """The same settings, a wide pitch range and voice variants (each drawn per sentence) spoken on
    a local Ray cluster of 2 workers: the same lines and, byte for byte, the same WAV files."""
    settings = dict(minutes=0.3, voice="en-us", test_fraction=0.2, pitch=(20, 80), variants=("m3", "f2"), seed=7,
                    progress=False)
    serial = build_speech_corpus(tmp_path / "serial", **settings)
    on_ray = build_speech_corpus(tmp_path / "ray", workers=2, **settings)
    rows = read_metadata(serial)
    assert read_metadata(on_ray) == rows and len(rows) >= 3
    for uid, _, _ in rows:
        assert (on_ray / "wavs" / f"{uid}.wav").read_bytes() == (serial / "wavs" / f"{uid}.wav").read_bytes()
    assert (on_ray / "heldout.txt").read_text() == (serial / "heldout.txt").read_text()


def test_the_default_voice_is_festival_s_recorded_speaker_and_takes_no_espeak_choices(tiny, tmp_path):
    _, corpus, _ = tiny
    described = json.loads((corpus / "corpus.json").read_text())
    assert described["voice"] == "cmu_us_slt_arctic_hts" and described["source"].startswith("Festival")
    with pytest.raises(SynthError, match="--variants and --pitch choose espeak-ng voices; cmu_us_slt_arctic_hts is a "
                                         "Festival voice"):
        build_speech_corpus(tmp_path / "c", minutes=0.1, variants=("m3",), progress=False)
    with pytest.raises(SynthError, match=r"voice 'nonsense': neither Festival's cmu_us_slt_arctic_hts nor a voice "
                                         r"espeak-ng speaks"):
        build_speech_corpus(tmp_path / "c", minutes=0.1, voice="nonsense", progress=False)
    assert not (tmp_path / "c").exists()


def test_the_shipped_voice_knows_every_phoneme_of_the_5000_most_common_words():
    """The 5,000 words of Debian's word list (wamerican) most frequent in the fortune databases:
    every phoneme espeak-ng gives for them is a token of the shipped model (stress is a feature of
    its own, so no stressed variant can be missing)."""
    words = {w for w in Path(WORD_LIST).read_text().split() if re.fullmatch(r"[a-z]+", w)}
    counts = collections.Counter()
    for name in FORTUNE_FILES:
        if (FORTUNE_FOLDER / name).is_file():
            counts.update(w for w in re.findall(r"[a-z]+", (FORTUNE_FOLDER / name).read_text(errors="replace").lower())
                          if w in words)
    common = [w for w, _ in counts.most_common(5000)]
    assert len(common) == 5000
    model, _ = load_text_to_mel(SHIPPED_TTS.with_suffix(""))
    tokens, _ = text_tokens(", ".join(common) + ".", "phonemes")
    phonemes, _ = model_tokens(tokens, model.config.stress)
    unknown = sorted(set(phonemes) - set(model.config.vocabulary["symbols"]))
    assert not unknown, f"phonemes the shipped model never saw: {unknown}"


def test_bad_metadata_names_the_file_and_line(tmp_path):
    (tmp_path / "wavs").mkdir()
    soundfile.write(tmp_path / "wavs" / "a.wav", np.zeros(100), SR)
    (tmp_path / "metadata.csv").write_text("a|Hello there.|hello there.\nb|Missing audio.\n")
    with pytest.raises(SynthError, match=r"metadata\.csv:2: .*b\.wav is missing"):
        read_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("a|Hello|x|y\n")
    with pytest.raises(SynthError, match=r"metadata\.csv:1: expected 'id\|text\|normalized text'"):
        read_metadata(tmp_path)


def test_features_and_durations_come_from_the_recordings(tiny):
    folder, corpus, summary = tiny
    uid = read_metadata(corpus)[0][0]
    features = load_features(corpus, uid)
    frames = features["mel"].shape[0]
    assert features["audio"].size == frames * 256 and features["f0_hz"].shape == (frames,)
    voiced = features["voiced"].astype(bool)
    assert 0.2 < voiced.mean() < 0.95 and 70 < np.median(features["f0_hz"][voiced]) < 250  # espeak's male voice
    durations = np.load(corpus / "durations.npz")[uid]
    assert durations.size == len(join_stress(list(features["tokens"])))
    assert durations.sum() == frames and durations.min() >= 1
    assert summary["steps"] == 3 and summary["held_out"]["mel"] > 0


def test_text_to_mel_model_file_and_inference(tiny):
    folder, _, _ = tiny
    model, meta = load_text_to_mel(folder / "tts")
    assert meta["kind"] == "synth.text_to_mel" and meta["training_command"] == "test tts"
    assert meta["corpus"]["utterances"] >= 5 and meta["config"]["vocabulary"]["mode"] == "phonemes"
    # stress is a feature of its own: the vocabulary holds each phoneme once, with no stress mark
    assert meta["config"]["stress"] is True and not any("ˈ" in t or "ˌ" in t for t in meta["config"]["vocabulary"]["symbols"])
    speaker = Speaker(folder / "tts.json", folder / "voice.json")
    frames = speaker.frames("Good morning, everyone.")
    n = frames["mel"].shape[0]
    assert frames["mel"].shape == (n, 128) and frames["f0_hz"].shape == (n,) and frames["durations"].sum() == n
    slow = speaker.frames("Good morning, everyone.", rate=0.5)["durations"]
    assert slow.sum() >= 1.8 * frames["durations"].sum() - len(slow)
    audio = speaker.say("Good morning, everyone.")
    assert audio.dtype == np.float32 and audio.size == n * 256 and np.all(np.isfinite(audio))
    with pytest.raises(SynthError, match="rate=9 must be in 0.25..4"):
        speaker.frames("x y", rate=9)
    (folder / "broken.json").write_text(json.dumps({**meta, "kind": "synth.decoder"}))
    with pytest.raises(SynthError, match="key 'kind'='synth.decoder', expected 'synth.text_to_mel'"):
        load_text_to_mel(folder / "broken")
    decoder_meta = read_model_metadata(folder / "voice.json")
    assert decoder_meta["config"]["mel_bands"] == 128 and decoder_meta["data"]["speech"] is True


def test_singing_follows_the_notes(tiny):
    folder, _, _ = tiny
    speaker = Speaker(folder / "tts.json", folder / "voice.json")
    notes = [SungNote(0.1, 0.5, 60), SungNote(0.6, 1.2, 64), SungNote(1.2, 1.5, 67)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audio = speaker.sing("hello world", notes)  # three syllables: hel-lo world
    assert not [w for w in caught if "syllables for" in str(w.message)]
    assert abs(audio.size / SR - (1.5 + RELEASE_S)) < 0.02  # the last note's release follows it
    with pytest.warns(SynthWarning, match="2 syllables for 3 notes: the last notes repeat the last syllable"):
        repeated = speaker.sing("sunny", notes)
    assert abs(repeated.size / SR - (1.5 + RELEASE_S)) < 0.02


def test_synth_say_and_sing_write_wavs(tiny, tmp_path):
    folder, _, _ = tiny
    env_args = ["--preset", str(tmp_path / "p.toml")]
    (tmp_path / "models").mkdir()
    for name in ("tts.json", "tts.safetensors", "voice.json", "voice.safetensors"):
        shutil.copy(folder / name, tmp_path / "models" / name)
    (tmp_path / "p.toml").write_text('format_version = 1\n[[chain]]\nplugin = "voice"\n'
                                     'files = { tts = "models/tts.json", decoder = "models/voice.json" }\n')
    done = subprocess.run([sys.executable, "-m", "synth", "say", "It is 42 degrees.", "-o", str(tmp_path / "s.wav"),
                           "--rate", "1.2", "--pitch", "3", *env_args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert soundfile.info(tmp_path / "s.wav").samplerate == SR and "wrote" in done.stdout
    assert "decoder:" in done.stderr and "frame" in done.stderr  # the progress bar (no --quiet)
    midi = mido.MidiFile()
    track = mido.MidiTrack()
    midi.tracks.append(track)
    for note in (60, 62):
        track.append(mido.Message("note_on", note=note, velocity=90, time=0))
        track.append(mido.Message("note_off", note=note, velocity=0, time=480))
    midi.save(tmp_path / "m.mid")
    done = subprocess.run([sys.executable, "-m", "synth", "sing", "hello", str(tmp_path / "m.mid"), "-o",
                           str(tmp_path / "sung.wav"), *env_args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert abs(soundfile.info(tmp_path / "sung.wav").duration - (1.0 + RELEASE_S)) < 0.02  # with its release
    done = subprocess.run([sys.executable, "-m", "synth", "sing", "sun", str(tmp_path / "m.mid"), "-o",
                           str(tmp_path / "sun.wav"), *env_args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr  # one syllable, two notes: a warning of one line, no Python source line
    assert ("synth: warning: 1 syllable for 2 notes: the last notes repeat the last syllable\n" in done.stderr
            and "UserWarning" not in done.stderr and "warnings.warn" not in done.stderr)


def test_voice_plugin_says_and_sings_from_events(tiny):
    folder, _, _ = tiny
    voice = Voice(tts=folder / "tts.json", decoder=folder / "voice.json")
    engine = Engine([Slot("voice", voice)], SR, 256, 1)
    engine.prepare()
    translator = MessageTranslator(engine, strict=False)
    (said,) = translator.translate("/say", ["Hello there."], 0)
    assert isinstance(said, Utterance) and said.audio.size >= 8 * 256  # at least a frame a token (an untrained model)
    assert event_to_message(said) == ("/say", ["Hello there."])
    (armed,) = translator.translate("/sing", ["la la"], 0)
    assert isinstance(armed, Lyric) and armed.table.syllables == 2
    engine.schedule(said)
    out = np.zeros((said.audio.size + 4 * 256, 1), np.float32)
    for start in range(0, out.shape[0], 256):
        engine.process(out[start:start + 256])
    np.testing.assert_allclose(out[:said.audio.size, 0], np.clip(said.audio, -0.966, 0.966), atol=1e-6)
    engine.prepare()
    engine.schedule(armed)
    engine.schedule(NoteOn(0, 69, 100))
    engine.schedule(NoteOff(SR // 2, 69))
    engine.schedule(NoteOn(SR, 72, 100))
    sung = np.zeros((2 * SR, 1), np.float32)
    for start in range(0, sung.shape[0], 256):
        engine.process(sung[start:start + 256])
    assert np.max(np.abs(sung[:SR // 2])) > 1e-3 and voice._next_syllable == 2
    engine.prepare()  # prepared again (synth batch reuses engines): the lyric is the default again
    assert voice._lyric is voice._default_lyric and voice._next_syllable == 0
    with pytest.raises(SynthError, match="/say: expected the text as a string"):
        translator.translate("/say", [3.0], 0)
    with pytest.raises(SynthError, match="/sing: this preset has no voice plugin"):
        MessageTranslator(load_preset("warm-pad").build_engine()).translate("/sing", ["la"], 0)


@pytest.mark.parametrize("block", (16, 256))
def test_a_sung_note_starts_on_its_sample(tiny, block):
    """A note begun anywhere in a frame the voice is silent for sounds from its own sample (its
    first frame is the rest of that frame), not from the next frame."""
    folder, _, _ = tiny
    for start in (12_000, 12_001, 12_100, 12_255):
        engine = Engine([Slot("voice", Voice(tts=folder / "tts.json", decoder=folder / "voice.json"))], SR, block, 1)
        engine.prepare()
        engine.schedule(NoteOn(start, 64, 100))
        out = np.zeros((start + 4096, 1), np.float32)
        for first in range(0, out.shape[0], block):
            engine.process(out[first:first + block])
        assert np.flatnonzero(out[:, 0])[0] in (start, start + 1), (start, np.flatnonzero(out[:, 0])[0])


def test_the_shipped_models_say_a_sentence_and_sing_a_melody_in_tune():
    """Speech of a plain sentence, and "happy birthday to you" on C4 C4 D4 C4 F4 E4: each note of
    a quarter second or more has its median pyin f0 within 20 cents of the note, and is voiced for
    most of it."""
    from synth.dsp.features import f0_pyin
    from synth.speech import DEFAULT_SINGING_DECODER

    speaker = Speaker(SHIPPED_TTS, singing_decoder=DEFAULT_SINGING_DECODER)
    audio = speaker.say("The quick brown fox jumps over the lazy dog.")
    assert 1.5 < audio.size / SR < 5.0 and 0.01 < np.max(np.abs(audio)) < 1.0
    low_hz, high_hz = speaker.runtime.config["f0_range_hz"]
    with pytest.warns(SynthWarning, match=rf"pitch \+24 semitones asks for the voice at about \d+ Hz, outside the "
                                          rf"{low_hz:.0f}..{high_hz:.0f} Hz its speech decoder was trained on"):
        speaker.frames("The quick brown fox.", pitch_semitones=24)
    melody = [(0.0, 0.375, 60), (0.375, 0.5, 60), (0.5, 1.0, 62), (1.0, 1.5, 60), (1.5, 2.0, 65), (2.0, 3.0, 64)]
    sung = speaker.sing("happy birthday to you", [SungNote(a, b, n, 90) for a, b, n in melody])
    assert abs(sung.size / SR - (3.0 + RELEASE_S)) < 0.01

    def rms_db(start_s, end_s):
        return 10 * np.log10(np.mean(sung[int(start_s * SR):int(end_s * SR)] ** 2) + 1e-20)

    # released, not cut: after the last note's end the level goes on from where the note left it
    # (within 12 dB over 25 ms) and falls steadily to the file's end, 30 dB and more below the note
    steps = [rms_db(t, t + 0.025) for t in np.arange(2.975, 3.0 + RELEASE_S - 0.024, 0.025)]
    assert steps[1] > steps[0] - 12 and all(b < a + 1 for a, b in zip(steps, steps[1:]))
    assert steps[-1] < rms_db(2.5, 2.9) - 30
    f0, _, voiced = f0_pyin(sung, SR, 256, 60.0, 600.0, with_flag=True)
    for start, end, note in melody:
        if end - start < 0.25:
            # the 125 ms "py": a consonant, then a vowel pyin's 85 ms frames cannot tell from the
            # next note's; it is in the test for its timing (the notes after it keep theirs)
            continue
        frames = slice(int((start + 0.03) * SR / 256), int((end - 0.03) * SR / 256))
        assert voiced[frames].mean() > 0.6, (note, voiced[frames].mean())
        cents = 1200 * np.log2(np.median(f0[frames][voiced[frames]]) / (440 * 2 ** ((note - 69) / 12)))
        assert abs(cents) < 20, (note, cents)


def test_the_first_shipped_voice_still_loads_and_speaks():
    """The espeak-ng voice (stress marks joined to the phonemes of its vocabulary) beside the new default."""
    speaker = Speaker(ESPEAK_TTS, ESPEAK_DECODER)
    assert speaker.model.config.stress is False and any(t.startswith("ˈ") for t in speaker.vocabulary.symbols)
    audio = speaker.say("The quick brown fox jumps over the lazy dog.")
    assert 1.5 < audio.size / SR < 5.0 and np.all(np.isfinite(audio))


def test_prepare_compiles_every_kernel_the_voice_uses(tiny):
    """After prepare(), speaking and singing compile nothing new on the audio path."""
    import numba

    from synth.dsp import decoder_runtime, decoder_voices, filtered_noise, mix, noise, oscbank
    from synth.plugins import voice as voice_module

    modules = (decoder_runtime, decoder_voices, filtered_noise, mix, noise, oscbank, voice_module)
    kernels = [obj for m in modules for obj in vars(m).values() if isinstance(obj, numba.core.registry.CPUDispatcher)]
    folder, _, _ = tiny
    voice = Voice(tts=folder / "tts.json", decoder=folder / "voice.json")
    engine = Engine([Slot("voice", voice)], SR, 128, 2)
    engine.prepare()
    compiled = {kernel: len(kernel.signatures) for kernel in kernels}
    translator = MessageTranslator(engine)
    for event in translator.translate("/say", ["Hi."], 0) + translator.translate("/sing", ["la"], 0):
        engine.schedule(event)
    engine.schedule(NoteOn(1000, 64, 90))
    engine.schedule(NoteOff(9000, 64))
    out = np.zeros((128, 2), np.float32)
    for _ in range(200):
        engine.process(out)
    assert {kernel: len(kernel.signatures) for kernel in kernels} == compiled


def test_say_and_sing_over_osc_on_a_live_stream(jack):
    """The shipped speech-voice preset on JACK: /say over UDP speaks (the captured output holds the
    utterance), /sing then two notes sing; rendering on the OSC thread causes no underflow that a
    machine stall does not explain."""
    from conftest import JACK_PERIOD, JACK_RATE, realtime_trials
    from test_osc import Client, wait_for
    from test_osc_wire import message

    from synth.control.osc import OscServer
    from synth.host import Host

    frames = 4 * JACK_RATE
    preset = load_preset("speech-voice")

    def trial():
        host = Host(preset, JACK_RATE, JACK_PERIOD, device=jack, capture_frames=frames)
        host.start()
        server = OscServer(host, port=0)
        server.start()
        client = Client(server.port)
        try:
            client.send(message("/say", "Good evening, everyone."))
            wait_for(lambda: server.counters.applied == 1, timeout=10)
            time.sleep(2.0)
            client.send(message("/sing", "la la"))
            client.send(message("/note/on", 57, 100))
            time.sleep(0.4)
            client.send(message("/note/on", 57, 0))
            client.send(message("/note/on", 60, 100))
            wait_for(lambda: host.captured_frames >= frames, timeout=10)
        finally:
            client.close()
            server.stop()
            host.stop()
        return host.underflow_times(), (host, server)

    host, server = realtime_trials(trial)
    assert server.counters.applied == 5 and server.counters.invalid == 0
    taken = host.capture()[:, 0]
    assert np.max(np.abs(taken[:2 * JACK_RATE])) > 0.05  # the speech
    assert np.max(np.abs(taken[int(2.1 * JACK_RATE):])) > 0.01  # the singing


def test_text_to_mel_training_resumes_from_its_checkpoint(tiny, tmp_path):
    folder, corpus, _ = tiny
    settings = dict(align_steps=6, batch_size=4, width=32, eval_every=2, checkpoint_every=2, threads=1)
    first = train_text_to_mel(corpus, tmp_path / "tts", TtsTrainSettings(steps=2, **settings), progress=False)
    assert sorted(p.name for p in (tmp_path / "tts.checkpoints").glob("*.safetensors")) == ["step-0000002.safetensors"]
    resumed = train_text_to_mel(corpus, tmp_path / "tts", TtsTrainSettings(steps=4, **settings), resume=True,
                                progress=False)
    assert first["steps"] == 2 and [h["step"] for h in resumed["history"]] == [2, 4]  # continued, not restarted


def test_text_to_mel_training_under_torchrun_on_two_processes_is_one_process_on_the_same_batch(tiny, tmp_path):
    """`torchrun --nproc_per_node 2 ... synth train text-to-mel --ddp`: the held-out mel L1 after 4
    steps is a single process's within 3%, and only rank 0 wrote the durations and the model."""
    import shutil

    from conftest import train_in_one_and_in_two_processes

    corpus = shutil.copytree(tiny[1], tmp_path / "corpus")
    common = ["train", "text-to-mel", "--corpus", str(corpus), "--steps", "4", "--align-steps", "6", "--batch-size",
              "4", "--threads", "1", "--quiet"]
    one, two, printed = train_in_one_and_in_two_processes(common, tmp_path)
    assert printed.count("trained 4 steps") == 1 and two["processes"] == 2
    assert two["held_out"]["mel"] == pytest.approx(one["held_out"]["mel"], rel=0.03)


def test_the_voice_allocates_nothing_while_it_speaks_and_sings(tiny):
    from conftest import assert_process_allocates_nothing

    folder, _, _ = tiny
    engine = Engine([Slot("voice", Voice(tts=folder / "tts.json", decoder=folder / "voice.json"))], SR, 256, 2)
    engine.prepare()
    translator = MessageTranslator(engine)
    for event in translator.translate("/sing", ["la la la"], 0) + translator.translate("/say", ["Hello there."], 0):
        engine.schedule(event)
    engine.schedule(NoteOn(0, 60, 100))
    out = np.zeros((256, 2), np.float32)
    engine.process(out)
    assert_process_allocates_nothing(engine, out, 20)


@pytest.mark.parametrize("args, sentence", [
    (["say", "   ", "-o", "x.wav"], "there is no text to say"),
    (["say", "Hello.", "-o", "x.wav", "--rate", "9"], "argument --rate"),
    (["sing", "la la", "garbage.mid", "-o", "x.wav"], "garbage.mid: the MIDI file ends early (truncated, or a track is missing)"),
    (["say", "Hello.", "-o", "x.wav", "--preset", "warm-pad"], "has no decoder plugin in its chain"),
    (["speech-corpus", "corpus", "--minutes", "0.1", "--pitch", "0", "120"], "argument --pitch: expected an integer in 0..99, got '120'"),
    (["train", "text-to-mel", "--corpus", "nowhere", "-o", "m"], "nowhere/metadata.csv: missing"),
])
def test_bad_speech_commands_give_one_clear_error(args, sentence, tmp_path):
    (tmp_path / "garbage.mid").write_bytes(b"MThd garbage")
    done = subprocess.run([sys.executable, "-m", "synth", *args], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 2 and sentence in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("text", ["🎹🎶", "...", "!?"])
def test_text_with_nothing_to_say_is_one_sentence(text, tmp_path, capsys):
    """It used to reach the model and raise torch's padding error (and kill the OSC thread)."""
    from synth.cli import main

    assert main(["say", text, "-o", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert f"nothing to say in {text!r}: it holds no word the text front end can read" in err
    assert "Traceback" not in err and not list(tmp_path.iterdir())
