"""`lv2`: an installed LV2 plugin as a chain slot (settings.uri names it).

Every control input port is a parameter named by its port symbol, with the port's range, default
and unit (a port whose range is given in multiples of the sample rate, lv2:sampleRate, is set in
those multiples: 0.01 is 480 Hz at 48 kHz); toggles and enumerations (their scale points) are choices, set at once; integer ports are
rounded and set at once; other ports glide over 20 ms, in steps of at most one block (the engine
splits blocks at events, so a change lands on its sample).

Channels: a plugin with one audio input and one output runs once per chain channel. Otherwise one
instance runs: a mono input takes the mean of a stereo chain's channels, each further input the
chain channel of its number (the last one where there are fewer); a mono output feeds every chain
channel, and a stereo plugin on a mono chain is averaged to it. A plugin with no audio input adds
its output to the bus (as an instrument or source does); an effect replaces the bus with it.
Instruments (lv2:InstrumentPlugin, or any plugin with a MIDI input and audio outputs only) take
notes through their MIDI atom input; see Lv2Instrument.

A slot whose output turns non-finite is silenced and counted by the engine; its instance is not
restarted on the audio thread (activation may allocate), only when the chain is prepared again.
"""

from __future__ import annotations

import re
from functools import cache
from typing import ClassVar

import numpy as np

from synth.dsp.mix import mix_rows
from synth.errors import SynthError
from synth.lv2.catalog import ControlPort, PluginDescription, describe
from synth.lv2.instance import AtomPort, Instance
from synth.params import LOG, ParamSpec, choice_param, float_param
from synth.plugins.base import EFFECT, INSTRUMENT, SOURCE, Instrument, Plugin

SMOOTHING_MS = 20.0
TOGGLE_CHOICES = ("off", "on")


class Lv2Plugin(Plugin):
    """Base of the per-URI classes `specialize` makes; `description` says what lilv read."""

    name = "lv2"
    setting_keys = ("uri", "state")  # state: the plugin's lv2:state as lilv's Turtle text (see `state()`)
    description: ClassVar[PluginDescription | None] = None
    ports: ClassVar[tuple[ControlPort, ...]] = ()  # the control port behind each of param_specs

    @classmethod
    def specialize(cls, settings: dict) -> type[Plugin]:
        uri = settings.get("uri")
        if not isinstance(uri, str):
            raise SynthError("an lv2 slot needs settings.uri, the plugin's URI (`synth plugins --lv2` lists them)")
        return plugin_class_for(uri)

    def __init__(self, uri: str = "", state: str = "", **values: object):
        if self.description is None:
            raise SynthError("an lv2 slot needs settings.uri, the plugin's URI (`synth plugins --lv2` lists them)")
        if not isinstance(state, str):
            raise SynthError(f"settings.state: expected the text of a saved LV2 state, got {state!r}")
        if state:
            Instance.check_state(state, self.description.uri, "settings.state")
        super().__init__(**values)
        self._saved_state = state
        self._instances: list[Instance] = []

    def state(self) -> str:
        """The plugin's current lv2:state (text for settings.state; '' without one). After prepare,
        not on the audio thread."""
        return self._instances[0].save_state() if self._instances else self._saved_state

    # --- set-up -------------------------------------------------------------------------------

    def allocate(self) -> None:
        """Instantiate, connect and activate (the engine's prepare; never on the audio thread)."""
        d = self.description
        ins, outs, channels = len(d.audio_inputs), len(d.audio_outputs), self.channels
        copies = channels if ins == outs == 1 else 1
        self._instances = [Instance(d, self.sample_rate, self.max_block) for _ in range(copies)]
        self._audio_in = np.zeros((copies, max(ins, 1), self.max_block), dtype=np.float32)
        self._audio_out = np.zeros((copies, outs, self.max_block), dtype=np.float32)
        self._controls = np.zeros((copies, d.port_count), dtype=np.float32)  # indexed by port
        for port in d.controls:  # those that are not parameters keep their default
            self._controls[:, port.index] = port.default
        self._in_weights = np.zeros((copies, max(ins, 1), channels), dtype=np.float32)
        self._out_weights = np.zeros((copies, channels, outs), dtype=np.float32)
        for copy in range(copies):
            if copies > 1:
                self._in_weights[copy, 0, copy] = self._out_weights[copy, copy, 0] = 1.0
            else:
                self._route(ins, outs, channels)
        self._atom_inputs, self._atom_outputs, self._midis = [], [], []
        for copy, instance in enumerate(self._instances):
            for k, port in enumerate(d.audio_inputs):
                instance.connect(port, self._audio_in[copy, k])
            for k, port in enumerate(d.audio_outputs):
                instance.connect(port, self._audio_out[copy, k])
            for port in (p.index for p in d.controls):
                instance.connect(port, self._controls[copy, port:])
            for port in d.control_outputs:
                instance.connect(port, self._controls[copy, port:])
            atoms = {port: AtomPort(instance, port) for port in d.atom_inputs}
            self._atom_inputs += atoms.values()
            self._atom_outputs += [AtomPort(instance, port) for port in d.atom_outputs]
            if d.midi_input is not None:
                self._midis.append(atoms[d.midi_input])
        # per instance: (bus -> its inputs weights, its inputs, its outputs -> bus weights, its outputs),
        # views made here so that process makes none
        self._routes = [(self._in_weights[c], self._audio_in[c], self._out_weights[c], self._audio_out[c])
                        for c in range(copies)]
        self._adds = ins == 0
        for atom in self._atom_inputs:
            atom.clear_input()
        self._write_controls(jump=True)
        self._start()

    def _start(self) -> None:
        """(Re)activate every instance, clearing its DSP state, and restore the saved lv2:state."""
        for instance in self._instances:
            instance.activate()
            if self._saved_state:
                instance.restore_state(self._saved_state, "settings.state")

    def _route(self, ins: int, outs: int, channels: int) -> None:
        for k in range(ins):
            if ins == 1 and channels > 1:
                self._in_weights[0, 0, :] = 1.0 / channels
            else:
                self._in_weights[0, k, min(k, channels - 1)] = 1.0
        for c in range(channels):
            if outs == 1:
                self._out_weights[0, c, 0] = 1.0
            elif channels == 1:
                self._out_weights[0, 0, :] = 1.0 / outs
            elif c < outs:
                self._out_weights[0, c, c] = 1.0

    def prepare(self, sample_rate: float, max_block: int, channels: int) -> None:
        super().prepare(sample_rate, max_block, channels)
        self._start()  # the warm-up run leaves nothing behind

    # --- the audio thread ---------------------------------------------------------------------

    def _write_controls(self, n: int = 0, jump: bool = False) -> None:
        controls = self._controls
        for spec, port in zip(self.param_specs, self.ports):
            param = self.params[spec.name]
            value = param.target if jump else param.ramp(n)[1]
            if port.choices:
                value = port.choices[int(value)][0]
            elif port.integer:
                value = round(value)
            elif port.per_sample_rate:
                value *= self.sample_rate
            for copy in range(controls.shape[0]):
                controls[copy, port.index] = value

    def process(self, bus: np.ndarray, n: int) -> None:
        self._write_controls(n)
        for atom in self._atom_outputs:
            atom.offer_output()
        for instance, (in_weights, audio_in, _, _) in zip(self._instances, self._routes):
            mix_rows(bus, in_weights, audio_in, n, False)
            instance.run(n)
        for atom in self._atom_inputs:  # emptied after the run: notes for the next one go in from now
            atom.clear_input()
        for copy, (_, _, out_weights, audio_out) in enumerate(self._routes):
            mix_rows(audio_out, out_weights, bus, n, self._adds or copy > 0)

    @property
    def latency_samples(self) -> int:
        port = self.description.latency_port
        return int(round(float(self._controls[0, port]))) if port is not None and self._instances else 0

    def latency_detail(self) -> str:
        return f"LV2 {self.description.name}: {self.latency_samples} samples" if self.latency_samples else ""


class Lv2Instrument(Lv2Plugin, Instrument):
    """An LV2 instrument: notes go to its MIDI input (channel 1) at frame 0 of the next run, which
    the engine starts on the note's sample. Its polyphony is its own (voice_limit is not used);
    `active_voices` counts the keys held."""

    def __init__(self, uri: str = "", voice_limit: int = 0, **values: object):
        super().__init__(uri, **values)
        self._held = np.zeros(128, dtype=np.bool_)
        self.dropped_midi = 0  # notes the full MIDI buffer could not take (more than 300 in one segment)

    def note_on(self, note: int, velocity: int) -> bool:
        self._send(0x90, note, min(max(velocity, 1), 127))
        self._held[note] = True
        return False

    def note_off(self, note: int) -> None:
        self._send(0x80, note, 64)
        self._held[note] = False

    def all_notes_off(self) -> None:
        for note in range(128):
            if self._held[note]:
                self.note_off(note)
        self._send(0xB0, 123, 0)  # All Notes Off

    def _send(self, status: int, data1: int, data2: int) -> None:
        midi_type = self._instances[0].midi_type
        for midi in self._midis:  # every instance (one per channel for a mono plugin)
            if not midi.append_midi(status, data1, data2, midi_type):
                self.dropped_midi += 1

    def reset(self) -> None:
        """Parameters jump to their targets and every held key is released (by MIDI: the plugin's
        own state is not cleared on the audio thread)."""
        super().reset()
        if self._instances:
            self.all_notes_off()

    @property
    def active_voices(self) -> int:
        return int(np.count_nonzero(self._held))


def _param_spec(port: ControlPort) -> ParamSpec:
    doc = port.name
    if port.toggled:
        return choice_param(port.symbol, TOGGLE_CHOICES, TOGGLE_CHOICES[port.default >= 0.5], doc)
    if port.choices:
        nearest = min(port.choices, key=lambda choice: abs(choice[0] - port.default))
        return choice_param(port.symbol, [label for _, label in port.choices], nearest[1], doc)
    smoothing = 0.0 if port.integer else SMOOTHING_MS
    scale = LOG if port.logarithmic else "linear"
    return float_param(port.symbol, port.minimum, port.maximum, port.default, port.unit, scale, smoothing, doc)


@cache
def plugin_class_for(uri: str) -> type[Lv2Plugin]:
    """The Plugin class for LV2 plugin `uri` (made once per process); SynthError for a URI that is
    not installed (naming the closest), an instrument, or a plugin with no audio output."""
    description = describe(uri)
    if not description.audio_outputs:
        raise SynthError(f"LV2 plugin {uri} has no audio output, so it cannot sit in a chain")
    if description.unconnectable_ports:
        raise SynthError(f"LV2 plugin {uri} has ports this host cannot connect (CV or other kinds): "
                         f"{', '.join(description.unconnectable_ports)}")
    if description.instrument and description.midi_input is None:
        raise SynthError(f"LV2 instrument {uri} has no MIDI input, so it cannot take notes")
    base = Lv2Instrument if description.instrument else Lv2Plugin
    kind = INSTRUMENT if description.instrument else SOURCE if not description.audio_inputs else EFFECT
    ports = tuple(port for port in description.controls if port.adjustable)
    specs = tuple(_param_spec(port) for port in ports)
    return type("Lv2_" + re.sub(r"\W", "_", uri), (base,),
                {"description": description, "ports": ports, "param_specs": specs, "kind": kind,
                 "__doc__": f"LV2 plugin {description.name} ({uri})."})
