"""Conditioning features: pyin f0 and A-weighted loudness offline, the causal streaming tracker.

Real instrument notes are rendered from the TimGM6mb General MIDI soundfont with fluidsynth.
Frame convention under test: frame k is centred on sample (k+1) * hop; n samples give n // hop frames.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from conftest import traced_allocation_bytes
from synth.dsp.features import LOUDNESS_FLOOR_DB, StreamingFeatures, f0_pyin, loudness_db
from synth.errors import SynthError
from synth.io.soundfont import GM_PROGRAMS, find_soundfont, render_note

RATE = 48000
HOP = 256
SUSTAIN = slice(int(0.2 * RATE / HOP), int(0.9 * RATE / HOP))  # frames inside the held second


def midi_hz(note: int) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def cents(a, b) -> np.ndarray:
    return 1200.0 * np.log2(np.asarray(a, np.float64) / np.asarray(b, np.float64))


@functools.cache
def note(instrument: str, pitch: int, velocity: int = 100) -> np.ndarray:
    """A 1 s note plus 0.25 s of release from TimGM6mb, float32 mono at 48 kHz."""
    try:
        find_soundfont("timgm6mb")
    except SynthError as error:
        pytest.skip(f"{error}: the feature tests render real soundfont notes")
    return render_note(GM_PROGRAMS[instrument], pitch, velocity, 1.0, sample_rate=RATE, release_s=0.25)


@functools.cache
def pyin_of(instrument: str, pitch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(f0_hz, voiced_prob, voiced_flag) of the note over 30..2100 Hz."""
    return f0_pyin(note(instrument, pitch), RATE, with_flag=True)


def sine(freq_hz: float, amplitude: float, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


NOTES = [("flute", 72), ("cello", 48), ("trumpet", 60)]


# ------------------------------------------------------------------------------------ loudness

def test_loudness_reference_is_a_full_scale_1khz_sine_at_minus_3_db():
    full = loudness_db(sine(1000.0, 1.0), RATE)
    half = loudness_db(sine(1000.0, 0.5), RATE)
    inner = slice(4, -4)  # windows wholly inside the signal
    assert np.allclose(full[inner], -3.01, atol=0.02)
    assert np.allclose(half[inner], -9.03, atol=0.02)
    # A-weighting: 300 Hz is 7.05 dB down, 4 kHz 0.96 dB up, 10 kHz 2.49 dB down (below ~200 Hz the
    # 47 Hz bins of a 1024-sample window blur the curve: 100 Hz reads 18.4 dB down, not 19.1)
    for freq_hz, weight_db in ((300.0, -7.05), (4000.0, 0.96), (10000.0, -2.49)):
        assert np.allclose(loudness_db(sine(freq_hz, 1.0), RATE)[inner], -3.01 + weight_db, atol=0.05)
    assert np.all(loudness_db(np.zeros(5000, np.float32), RATE) == LOUDNESS_FLOOR_DB)


def test_loudness_follows_gain_and_velocity_on_real_notes():
    audio = note("cello", 48)
    base = loudness_db(audio, RATE)
    quieter = loudness_db(audio * np.float32(10 ** (-6 / 20)), RATE)
    heard = base > -100
    assert heard.sum() > 200
    assert np.allclose((quieter - base)[heard], -6.0, atol=0.01)
    for instrument, pitch in NOTES:
        soft = np.median(loudness_db(note(instrument, pitch, 64), RATE)[SUSTAIN])
        loud = np.median(loudness_db(note(instrument, pitch, 110), RATE)[SUSTAIN])
        assert loud > soft + 2.0, (instrument, soft, loud)


@pytest.mark.parametrize("hop", [1, 63, 64, 65, 256, 257])
def test_frame_count_and_centring_on_an_impulse(hop):
    for n in (0, hop - 1, hop, 10 * hop + hop - 1):
        assert loudness_db(np.zeros(n, np.float32), RATE, hop).shape == (n // hop,)
    audio = np.zeros(40 * hop + 3000, np.float32)
    audio[20 * hop] = 1.0  # frame 19 is centred on it
    loud = loudness_db(audio, RATE, hop, window_samples=1024)
    assert np.argmax(loud) == 19
    if hop <= 256:  # the window still reaches the neighbours at the same distance
        assert loud[18] == pytest.approx(loud[20], abs=1e-4)


# ------------------------------------------------------------------------------------ pyin f0

@pytest.mark.parametrize("instrument, pitch", NOTES)
def test_pyin_f0_is_within_20_cents_of_the_played_note(instrument, pitch):
    f0, prob, flag = pyin_of(instrument, pitch)
    assert f0.shape == prob.shape == flag.shape == (note(instrument, pitch).size // HOP,)
    error = np.abs(cents(f0[SUSTAIN], midi_hz(pitch)))
    assert np.median(error) < 10.0
    assert np.percentile(error, 95) < 20.0
    assert np.all(flag[SUSTAIN]) and np.all(prob[SUSTAIN] > 0.1)


def glide(octaves_per_s: float, start_hz: float, seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A sine gliding exponentially (octaves per second): (float32 audio, instantaneous Hz per sample)."""
    freq_hz = start_hz * 2.0 ** (octaves_per_s * np.arange(int(seconds * RATE)) / RATE)
    return (0.3 * np.sin(np.cumsum(2 * np.pi * freq_hz / RATE))).astype(np.float32), freq_hz


@pytest.mark.parametrize("octaves_per_s, start_hz", [(2.0, 200.0), (-2.0, 800.0)])
def test_pyin_frames_are_centred_on_the_end_of_their_block(octaves_per_s, start_hz):
    """On a glide of 2 octaves/s (12.8 cents per hop) frame k reads the frequency at sample (k+1)*hop."""
    audio, freq_hz = glide(octaves_per_s, start_hz)
    f0, _ = f0_pyin(audio, RATE, HOP, fmin_hz=100.0, fmax_hz=1000.0)
    frames = np.arange(20, f0.size - 20)
    assert np.max(np.abs(cents(f0[frames], freq_hz[(frames + 1) * HOP]))) < 2.0
    assert np.min(np.abs(cents(f0[frames], freq_hz[frames * HOP]))) > 10.0  # one hop off is visible


def test_unvoiced_frames_carry_the_nearest_voiced_f0():
    tone = sine(300.0, 0.3, 0.5)
    silence = np.zeros(int(0.3 * RATE), np.float32)
    audio = np.concatenate([silence, tone, silence])
    f0, voiced = f0_pyin(audio, RATE, fmin_hz=100.0, fmax_hz=1000.0)
    assert f0.shape == voiced.shape == (audio.size // HOP,)
    assert voiced[:20].max() < 0.5 and voiced[-20:].max() < 0.5 and np.median(voiced[70:110]) > 0.5
    assert np.all(np.abs(cents(f0[70:110], 300.0)) < 1.0)
    # the silences hold the f0 of the tone's first and last frames (whose windows are half silent)
    assert np.all(f0[:20] == f0[20]) and f0[0] > 0
    assert np.all(f0[-20:] == f0[-21]) and np.all(np.abs(cents(f0, 300.0)) < 50.0)
    silent_f0, _ = f0_pyin(np.zeros(RATE // 4, np.float32), RATE)
    assert np.all(silent_f0 == 0.0) and silent_f0.shape == (RATE // 4 // HOP,)
    assert f0_pyin(np.zeros(HOP - 1, np.float32), RATE)[0].shape == (0,)


@pytest.mark.parametrize("call, message", [
    (lambda: f0_pyin(np.zeros((2, 100), np.float32), RATE), "1-D"),
    (lambda: f0_pyin(np.array([0.0, np.nan] * 300), RATE), "NaN"),
    (lambda: f0_pyin(np.zeros(1000, np.int16), RATE), "floating point"),
    (lambda: f0_pyin(np.zeros(1000, np.float32), RATE, fmin_hz=500, fmax_hz=400), "fmin_hz=500"),
    (lambda: f0_pyin(np.zeros(1000, np.float32), RATE, fmax_hz=30000), "24000 Hz"),
    (lambda: loudness_db(np.zeros(1000, np.float32), RATE, hop_samples=0), "hop_samples=0"),
    (lambda: loudness_db(np.zeros(1000, np.float32), 44100.5), "sample_rate=44100.5"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(SynthError, match=message):
        call()


# ------------------------------------------------------------------------------------ streaming

def stream_all(tracker: StreamingFeatures, audio: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Feed audio in blocks of `block` samples; every completed hop's (f0_hz, loudness_db)."""
    f0 = np.zeros(audio.size // tracker.hop_samples + 1)
    loud = np.zeros_like(f0)
    done = 0
    for start in range(0, audio.size, block):
        done += tracker.process(audio[start:start + block], f0[done:], loud[done:])
    return f0[:done], loud[:done]


@pytest.mark.parametrize("instrument, pitch", NOTES)
def test_streaming_f0_agrees_with_pyin_on_real_notes(instrument, pitch):
    tracker = StreamingFeatures(RATE)
    assert tracker.latency_samples == 512
    lag = tracker.latency_samples // HOP  # streaming frame j describes offline frame j - 2
    f0, _ = stream_all(tracker, note(instrument, pitch), HOP)
    reference, _, voiced = pyin_of(instrument, pitch)
    frames = np.arange(SUSTAIN.start, SUSTAIN.stop)
    frames = frames[voiced[frames]]
    assert frames.size > 100
    error = np.abs(cents(f0[frames + lag], reference[frames]))
    assert np.median(error) < 20.0, np.median(error)
    assert np.all(f0[frames + lag] > 0)


@pytest.mark.parametrize("hop", [1, 63, 64, 65, 256, 257])
def test_streaming_loudness_equals_offline_window_ending_at_the_newest_sample(hop):
    audio = note("flute", 72)[: int(0.3 * RATE) if hop == 1 else None]
    tracker = StreamingFeatures(RATE, hop_samples=hop)
    _, loud = stream_all(tracker, audio, 4096)
    # the streaming window for frame j is [(j+1)*hop - 1024, (j+1)*hop): offline, centred, on the
    # signal delayed by the latency
    delayed = np.concatenate([np.zeros(tracker.latency_samples, np.float32), audio])
    offline = loudness_db(delayed, RATE, hop)[: loud.size]
    assert loud.size == audio.size // hop
    assert np.max(np.abs(loud - offline)) < 1e-3


def test_streaming_is_the_same_for_any_block_size():
    audio = note("trumpet", 60)[: RATE // 2]
    whole_f0, whole_loud = stream_all(StreamingFeatures(RATE), audio, audio.size)
    for block in (1, 63, 64, 65, 257):
        f0, loud = stream_all(StreamingFeatures(RATE), audio, block)
        assert np.array_equal(f0, whole_f0) and np.array_equal(loud, whole_loud), block


def test_streaming_tracks_sines_to_a_cent_and_holds_f0_in_silence():
    for freq_hz in (65.0, 220.0, 1234.5):
        tracker = StreamingFeatures(RATE, fmin_hz=60.0)
        f0, _ = stream_all(tracker, sine(freq_hz, 0.3), HOP)
        assert np.all(np.abs(cents(f0[5:], freq_hz)) < 1.0), freq_hz
    tracker = StreamingFeatures(RATE)
    assert tracker.push(np.zeros(HOP, np.float32)) == (0.0, LOUDNESS_FLOOR_DB)  # nothing voiced yet
    tone = np.concatenate([sine(440.0, 0.3), np.zeros(10 * HOP, np.float32)])
    pushed = []
    for start in range(0, tone.size - HOP + 1, HOP):
        f0_hz, level_db = tracker.push(tone[start:start + HOP])
        pushed.append((f0_hz, level_db, tracker.voiced))
    f0_hz, level_db, voiced = zip(*pushed)
    assert all(voiced[10:50]) and np.all(np.abs(cents(f0_hz[10:50], 440.0)) < 1.0)
    last = max(i for i, v in enumerate(voiced) if v)
    assert last < len(pushed) - 4 and level_db[-1] == LOUDNESS_FLOOR_DB
    assert all(f == f0_hz[last] for f in f0_hz[last:])  # held while unvoiced
    tracker.reset()
    assert tracker.push(np.zeros(HOP, np.float32))[0] == 0.0


@pytest.mark.parametrize("octaves_per_s, start_hz", [(2.0, 200.0), (-2.0, 800.0)])
def test_streaming_estimate_lags_by_its_latency(octaves_per_s, start_hz):
    """Frame j (window ending at sample (j+1)*hop) reads the glide at (j+1)*hop - latency_samples."""
    audio, freq_hz = glide(octaves_per_s, start_hz)
    tracker = StreamingFeatures(RATE)
    f0, _ = stream_all(tracker, audio, HOP)
    frames = np.arange(10, f0.size)
    assert np.max(np.abs(cents(f0[frames], freq_hz[(frames + 1) * HOP - tracker.latency_samples]))) < 2.0


def test_streaming_push_allocates_nothing():
    tracker = StreamingFeatures(RATE)
    audio = note("flute", 72)
    blocks = [audio[i:i + HOP] for i in range(0, audio.size - HOP + 1, HOP)]
    blocks = blocks * 3
    for block in blocks + blocks:  # fill the interpreter's free lists of small objects first
        tracker.push(block)

    def push_all():
        for block in blocks:
            tracker.push(block)

    kept, peak = traced_allocation_bytes(push_all, 1)
    # nothing kept: a retained hop of float32 is 1 KB
    assert kept < 1024
    # the call itself boxes a few Python objects (about 1 KB); one hop of float32 would add another
    assert peak < 2048


@pytest.mark.parametrize("make, message", [
    (lambda: StreamingFeatures(RATE, window_samples=1000), "window_samples=1000 must be a power of two"),
    (lambda: StreamingFeatures(RATE, fmin_hz=40.0), "fmin_hz=40.0"),
    (lambda: StreamingFeatures(RATE, hop_samples=0), "hop_samples=0"),
    (lambda: StreamingFeatures(RATE).push(np.zeros(HOP)), "float32"),
    (lambda: StreamingFeatures(RATE).process(np.zeros(2 * HOP, np.float32), np.zeros(1), np.zeros(1)),
     "room for 2 frames"),
])
def test_streaming_bad_settings_are_named(make, message):
    with pytest.raises(SynthError, match=message):
        make()
