"""`gain_pan`: output gain and stereo position."""

from __future__ import annotations

import numpy as np

from synth.dsp.mix import gain_pan
from synth.params import float_param
from synth.plugins.base import Plugin


class GainPan(Plugin):
    """gain_db: -60..24 dB. pan: -1 (left) .. +1 (right), constant power; centre is unity."""

    name = "gain_pan"
    param_specs = (
        float_param("gain_db", -60, 24, 0, "dB", doc="gain"),
        float_param("pan", -1, 1, 0, "", doc="stereo position, -1 left .. +1 right"),
    )

    def process(self, bus: np.ndarray, n: int) -> None:
        gain_start, gain_end = self.params["gain_db"].ramp(n)
        pan_start, pan_end = self.params["pan"].ramp(n)
        gain_pan(bus, n, gain_start, gain_end, pan_start, pan_end)
