"""ADSR envelope stepping, shared by the polyphonic instrument kernels.

Stages: IDLE (silent, voice free), ATTACK (linear rise to 1), DECAY (exponential glide towards the
sustain level, and holding it), RELEASE (exponential fall; IDLE once below SILENCE_LEVEL).
Decay and release times are the time to fall by 60 dB.
"""

import math

from numba import njit

IDLE = 0
ATTACK = 1
DECAY = 2
RELEASE = 3

SILENCE_LEVEL = 1e-4  # -80 dB: a released voice quieter than this has ended
_LN_1000 = math.log(1000.0)


def attack_increment(attack_ms: float, sample_rate: float) -> float:
    """Per-sample level rise of a linear attack lasting attack_ms (1.0 = instant)."""
    samples = attack_ms * sample_rate / 1000.0
    return 1.0 if samples <= 1.0 else 1.0 / samples


def fall_coefficient(time_ms: float, sample_rate: float) -> float:
    """Per-sample multiplier of an exponential fall of 60 dB in time_ms (0.0 = instant)."""
    samples = time_ms * sample_rate / 1000.0
    return 0.0 if samples <= 1.0 else math.exp(-_LN_1000 / samples)


@njit(nogil=True, cache=True, inline="always")
def adsr_step(stage, level, attack_inc, decay_coef, sustain, release_coef):
    """Advance one sample; returns (stage, level)."""
    if stage == ATTACK:
        level += attack_inc
        if level >= 1.0:
            level = 1.0
            stage = DECAY
    elif stage == DECAY:
        level = sustain + (level - sustain) * decay_coef
    elif stage == RELEASE:
        level *= release_coef
        if level < SILENCE_LEVEL:
            level = 0.0
            stage = IDLE
    return stage, level
