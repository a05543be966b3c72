from synth.dsp.envelopes import IDLE, RELEASE
from synth.voices import VoicePool


def test_free_voices_are_used_before_stealing():
    pool = VoicePool(3)
    voices = [pool.start(note, 1.0)[0] for note in (60, 62, 64)]
    assert sorted(voices) == [0, 1, 2]
    assert pool.stolen_count == 0
    assert pool.active_count == 3


def test_oldest_released_voice_is_stolen_before_any_held_voice():
    pool = VoicePool(3)
    for note in (60, 62, 64):
        pool.start(note, 1.0)
    pool.release(64)
    pool.release(62)  # released later than 64
    v, was_idle, stolen = pool.start(67, 1.0)
    assert (pool.note[v], was_idle, stolen) == (67, False, True)
    assert set(pool.note) == {60, 62, 67}  # 64, released first, was taken


def test_oldest_held_voice_is_stolen_when_none_is_released():
    pool = VoicePool(2)
    pool.start(60, 1.0)
    pool.start(62, 1.0)
    v, _, stolen = pool.start(64, 1.0)
    assert stolen and set(pool.note) == {62, 64}
    pool.start(65, 1.0)
    assert set(pool.note) == {64, 65}
    assert pool.stolen_count == 2


def test_repeated_note_reuses_its_voice_without_stealing():
    pool = VoicePool(2)
    first, _, _ = pool.start(60, 1.0)
    pool.release(60)
    again, was_idle, stolen = pool.start(60, 0.5)
    assert (again, was_idle, stolen) == (first, False, False)


def test_release_only_touches_the_matching_note_and_idle_frees():
    pool = VoicePool(2)
    pool.start(60, 1.0)
    pool.start(62, 1.0)
    pool.release(60)
    assert sorted(pool.stage) == sorted([RELEASE, 1])
    pool.stage[pool.note == 60] = IDLE  # what the kernel does when the tail is silent
    assert pool.active_count == 1
