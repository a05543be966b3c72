"""The decoder instrument: a model file played from notes, polyphonic, block-size independent."""

import numpy as np
import pytest
import torch

from conftest import assert_process_allocates_nothing

from models.decoder import Decoder, DecoderConfig
from models.model_files import save_model
from synth.engine import Engine, Slot
from synth.errors import SynthError
from synth.events import NoteOff, NoteOn
from synth.plugins.decoder import NeuralDecoder
from synth.presets import parse_preset
from synth.render import render_array

SR = 48000


@pytest.fixture(scope="module")
def model_json(tmp_path_factory):
    """A decoder with random weights (seeded) for two timbres, saved as a model file."""
    torch.manual_seed(3)
    config = DecoderConfig(harmonics=32, noise_bands=33, hidden=48, latent_dims=4, instruments=["reed", "string"],
                           f0_range_hz=(50.0, 2000.0), loudness_range_db=(-70.0, -10.0))
    stem = tmp_path_factory.mktemp("model") / "test-decoder"
    save_model(Decoder(config), config, stem, {"training_command": "random weights for tests"})
    return stem.with_suffix(".json")


def play(plugin, events, seconds, block=256):
    engine = Engine([Slot("dec", plugin)], sample_rate=SR, max_block=block, channels=1)
    return render_array(engine, events, int(seconds * SR), block)[:, 0]


def harmonic_share(audio, f0_hz):
    """Share of the spectrum's energy (below 8 kHz) within 4 Hz of a harmonic of f0_hz."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / SR)
    band = freqs < 8000
    harmonic = np.maximum(np.round(freqs / f0_hz), 1)
    near = np.abs(freqs - harmonic * f0_hz) < 4.0
    return spectrum[band & near].sum() / spectrum[band].sum()


def test_notes_sound_at_their_pitch(model_json):
    plugin = NeuralDecoder(model=model_json, instrument="string", noise_db=-60)
    audio = play(plugin, [NoteOn(0, 57, 110)], 1.0)[int(0.3 * SR):]
    assert np.sqrt(np.mean(audio ** 2)) > 1e-3
    assert harmonic_share(audio, 220.0) > 0.95
    assert harmonic_share(audio, 220.0 * 2 ** (1 / 12)) < 0.2


def test_the_output_does_not_depend_on_the_block_size(model_json):
    events = [NoteOn(0, 60, 100), NoteOn(7000, 64, 90), NoteOff(30000, 60), NoteOff(40000, 64)]
    outputs = [play(NeuralDecoder(model=model_json), events, 1.0, block) for block in (64, 100, 256, 1024)]
    for other in outputs[1:]:
        np.testing.assert_array_equal(outputs[0], other)


@pytest.mark.parametrize("block", (16, 65, 256, 4096))
def test_a_note_starts_on_its_sample_wherever_it_falls_in_a_model_frame(model_json, block):
    """Notes at every phase of the model's 256-sample frame (and one on a frame boundary) start
    on their own sample, not at the next frame, whatever the block size: their first frame is the
    rest of the frame in progress. Each sounds alike from its start (the same note rendered alone
    from sample 0, to within the noise, which draws other samples)."""
    starts = [24000 + offset for offset in (0, 1, 100, 192, 255)]
    for start in starts:
        alone = play(NeuralDecoder(model=model_json, noise_db=-60), [NoteOn(0, 60, 100)], 0.1, block)
        audio = play(NeuralDecoder(model=model_json, noise_db=-60), [NoteOn(start, 60, 100)], 0.6, block)
        sounding = np.flatnonzero(audio)
        assert sounding[0] in (start, start + 1), (start, sounding[0])  # harmonics fade in from 0 at the start
        # the first frame is shorter (its attack ramp as steep as the rest), then both follow the same frames
        head = 20 * np.log10(np.sqrt(np.mean(audio[start:start + 2400] ** 2)) / np.sqrt(np.mean(alone[:2400] ** 2)))
        assert abs(head) < 1.5, (start, head)
    noisy = play(NeuralDecoder(model=model_json, harmonics_db=-60), [NoteOn(24100, 60, 100)], 0.6, block)
    assert np.flatnonzero(noisy)[0] in (24100, 24101)  # the noise part too (its filter's first tap is 0)


def test_a_chord_that_starts_mid_frame_and_the_voices_already_sounding_keep_their_state(model_json):
    """Notes started mid-frame beside a sounding one: the sounding voice renders exactly as
    without them until they start, and the chord's notes each start on their sample."""
    held = [NoteOn(0, 48, 100)]
    chord = held + [NoteOn(10_100, 60, 100), NoteOn(10_100, 64, 100), NoteOn(10_300, 67, 100)]
    alone = play(NeuralDecoder(model=model_json, voice_limit=4, noise_db=-60), held, 0.5)
    together = play(NeuralDecoder(model=model_json, voice_limit=4, noise_db=-60), chord, 0.5)
    np.testing.assert_array_equal(alone[:10_100], together[:10_100])
    others = together - alone
    assert np.flatnonzero(np.abs(others) > 1e-7)[0] in (10_100, 10_101)


def test_eight_voices_each_with_its_own_state(model_json):
    plugin = NeuralDecoder(model=model_json, voice_limit=8)
    events = [NoteOn(i * 256, 48 + 3 * i, 100) for i in range(8)]
    play(plugin, events, 0.5)
    assert plugin.active_voices == 8
    states = plugin.runtime.state
    assert len({tuple(np.round(states[v], 6)) for v in range(8)}) == 8  # distinct recurrent states


def test_timbres_differ_and_releases_end_voices(model_json):
    reed = play(NeuralDecoder(model=model_json, instrument="reed"), [NoteOn(0, 57, 110), NoteOff(SR // 2, 57)], 1.5)
    string = play(NeuralDecoder(model=model_json, instrument="string"), [NoteOn(0, 57, 110), NoteOff(SR // 2, 57)], 1.5)
    assert not np.allclose(reed[:SR // 2], string[:SR // 2], atol=1e-4)
    assert np.max(np.abs(reed[int(1.3 * SR):])) < 1e-4  # released (250 ms) and silent


def test_rendering_allocates_nothing(model_json):
    plugin = NeuralDecoder(model=model_json, voice_limit=8)
    engine = Engine([Slot("dec", plugin)], sample_rate=SR, max_block=256, channels=2)
    engine.prepare()
    for i in range(8):
        engine.schedule(NoteOn(0, 50 + i, 100))
    out = np.zeros((256, 2), dtype=np.float32)
    for _ in range(4):
        engine.process(out)
    assert_process_allocates_nothing(engine, out, 50)
    for i in range(8):  # notes that start mid-frame, in the measured blocks: their first frames too
        engine.schedule(NoteOff(0, 50 + i))
        engine.schedule(NoteOn(SR + 1000 * i + 37, 60 + i, 100))
    assert_process_allocates_nothing(engine, out, 300)
    assert plugin.active_voices == 8


def test_bad_model_files_and_settings_name_the_problem(model_json, tmp_path):
    with pytest.raises(SynthError, match=r"settings\.instrument: 'tuba' is not one of the model's instruments \(reed, string\)"):
        NeuralDecoder(model=model_json, instrument="tuba")
    with pytest.raises(SynthError, match="needs a model file"):
        NeuralDecoder()
    with pytest.raises(SynthError, match="runs at 48000 Hz; the engine runs at 44100 Hz"):
        Engine([Slot("dec", NeuralDecoder(model=model_json))], sample_rate=44100, max_block=256).prepare()
    (tmp_path / "broken.json").write_text("{}")
    (tmp_path / "broken.safetensors").write_bytes(b"")
    preset = {"format_version": 1, "chain": [{"plugin": "decoder", "files": {"model": "broken.json"}}]}
    with pytest.raises(SynthError, match=r"p\.toml: chain\[0\]: .*broken"):
        parse_preset(preset, str(tmp_path / "p.toml")).build_engine()
