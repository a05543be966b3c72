"""`audio_input`: live input channels into the bus, so the chain's effects process them."""

from __future__ import annotations

import numpy as np

from synth.dsp.mix import add_input
from synth.params import float_param
from synth.plugins.base import SOURCE, Plugin


class AudioInput(Plugin):
    """gain_db: -60..24 dB. A mono input feeds both output channels; stereo maps channel to channel.
    Silent unless the stream has input channels (`synth play --input-channels N`)."""

    name = "audio_input"
    kind = SOURCE
    uses_input = True
    param_specs = (float_param("gain_db", -60, 24, 0, "dB", doc="input level"),)

    def __init__(self, **values: object):
        super().__init__(**values)
        self._input = np.zeros((1, 1), dtype=np.float32)

    def connect_input(self, planar_input: np.ndarray) -> None:
        """Read live input from the engine's float32 [input channels, max_block] input bus."""
        self._input = planar_input

    def process(self, bus: np.ndarray, n: int) -> None:
        gain_start, gain_end = self.params["gain_db"].ramp(n)
        add_input(bus, self._input, n, gain_start, gain_end)
