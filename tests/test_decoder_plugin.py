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
