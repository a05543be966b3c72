import math

import pytest

from synth.errors import SynthError
from synth.params import LOG, SmoothedParam, choice_param, float_param

CUTOFF = float_param("cutoff_hz", 20, 20000, 1000, "Hz", LOG, 10)
GAIN = float_param("gain_db", -60, 24, 0, "dB", smoothing_ms=10)
SHAPE = choice_param("waveform", ("sine", "saw"), "saw")


def test_log_scale_normalisation_is_geometric_and_round_trips():
    assert CUTOFF.from_normalized(0.0) == pytest.approx(20)
    assert CUTOFF.from_normalized(1.0) == pytest.approx(20000)
    assert CUTOFF.from_normalized(0.5) == pytest.approx(math.sqrt(20 * 20000))
    for value in (20, 440, 1000, 19999):
        assert CUTOFF.from_normalized(CUTOFF.to_normalized(value)) == pytest.approx(value)


def test_linear_normalisation_and_clamping():
    assert GAIN.from_normalized(0.5) == pytest.approx(-18)
    assert GAIN.from_normalized(7.0) == 24
    assert GAIN.from_normalized(float("nan")) == 0
    assert GAIN.clamp(100) == 24


def test_choice_accepts_names_and_indices_only():
    assert SHAPE.check("sine") == 0
    assert SHAPE.check(1) == 1
    assert SHAPE.display(1.0) == "saw"
    with pytest.raises(SynthError, match=r"expected one of 'sine', 'saw', got 'square'"):
        SHAPE.check("square")


@pytest.mark.parametrize("bad", [-61, 25, float("nan"), True, "3", None])
def test_out_of_range_or_wrong_type_names_where_and_range(bad):
    with pytest.raises(SynthError, match=r"^preset.toml: gain_db: expected a number in -60\.\.24 dB, got"):
        GAIN.coerce(bad, where="preset.toml: gain_db")


def test_smoothing_glides_linearly_in_db_and_lands_exactly():
    param = SmoothedParam(GAIN)
    param.prepare(1000)  # 10 ms = 10 samples
    param.set(-20)
    assert param.ramp(4) == pytest.approx((0.0, -8.0))
    assert param.ramp(4) == pytest.approx((-8.0, -16.0))
    assert param.ramp(4) == pytest.approx((-16.0, -20.0))
    assert param.ramp(4) == (-20.0, -20.0)


def test_smoothing_does_not_depend_on_how_the_block_is_split():
    a, b = SmoothedParam(CUTOFF), SmoothedParam(CUTOFF)
    a.prepare(48000)
    b.prepare(48000)
    a.set(8000)
    b.set(8000)
    a.ramp(300)
    for size in (17, 83, 200):
        b.ramp(size)
    assert a.value == pytest.approx(b.value, rel=1e-12)
