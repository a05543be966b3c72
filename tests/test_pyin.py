"""synth.dsp.pyin against librosa.pyin (the peer it must agree with), frame for frame."""

import librosa
import numpy as np
import pytest

from synth.dsp.pyin import pyin
from synth.errors import SynthError
from synth.io.soundfont import GM_PROGRAMS, render_note

RATE = 16000


@pytest.mark.parametrize("instrument, pitch, bins_per_semitone, fmin_hz, fmax_hz", [
    ("flute", 72, 2, 30.0, 4000.0), ("cello", 43, 2, 30.0, 4000.0), ("trumpet", 60, 10, 60.0, 1000.0)])
def test_pyin_agrees_with_librosa_frame_for_frame(instrument, pitch, bins_per_semitone, fmin_hz, fmax_hz):
    audio = render_note(GM_PROGRAMS[instrument], pitch, 100, 1.0, sample_rate=RATE, release_s=0.25).astype(np.float64)
    # a quiet start first (voicing must switch), over a noise floor 80 dB down: in digital silence
    # the YIN function is rounding noise, which two FFTs round differently
    audio = np.concatenate([np.zeros(RATE // 4), audio])
    audio += 1e-4 * np.random.default_rng(0).standard_normal(audio.size)
    frame, hop = 2048, 160
    ours = pyin(audio, RATE, fmin_hz, fmax_hz, frame, hop, bins_per_semitone)
    peer = librosa.pyin(audio, fmin=fmin_hz, fmax=fmax_hz, sr=RATE, frame_length=frame, hop_length=hop,
                        resolution=1.0 / bins_per_semitone)
    assert ours[0].shape == peer[0].shape == (1 + audio.size // hop,)
    np.testing.assert_array_equal(ours[1], peer[1])  # the same voicing decisions
    assert 0.3 < ours[1].mean() < 0.95
    np.testing.assert_array_equal(ours[0][ours[1]], peer[0][peer[1]])  # the same pitch bins
    # voiced probabilities: equal but where the noise floor's YIN function lies within rounding of a
    # threshold (two FFTs round it differently)
    assert np.mean(np.abs(ours[2] - peer[2]) < 1e-9) > 0.97


def test_silence_is_unvoiced_and_bad_ranges_are_refused():
    f0, voiced, probability = pyin(np.zeros(RATE), RATE, 50.0, 800.0, 1024, 160)
    assert not voiced.any() and np.isnan(f0).all() and not probability.any()
    with pytest.raises(SynthError, match=r"pyin: the range 50.0..9000.0 Hz must lie within 0..8000.0 Hz"):
        pyin(np.zeros(RATE), RATE, 50.0, 9000.0, 1024, 160)
    with pytest.raises(SynthError, match="frames of 16 samples leave no period range"):
        pyin(np.zeros(RATE), RATE, 50.0, 800.0, 16, 160)
