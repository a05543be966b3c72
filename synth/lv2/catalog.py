"""The installed LV2 plugins as lilv reads them: what each is, its ports, and what it requires.

`describe(uri)` gives a `PluginDescription` (a bad URI is a SynthError naming the closest
installed ones); `installed()` lists every plugin. lilv's world is loaded once per process.
"""

from __future__ import annotations

import ctypes
import difflib
from dataclasses import dataclass, field
from functools import cache

from synth.errors import SynthError
from synth.lv2.lilv import (LV2_ATOM, LV2_CORE, LV2_MIDI_EVENT, LV2_PORT_PROPS, LV2_UNITS, iterate, library,
                            text)

# units:unit -> what people read after the number
UNIT_SYMBOLS = {"db": "dB", "hz": "Hz", "khz": "kHz", "mhz": "MHz", "ms": "ms", "s": "s", "min": "min", "pc": "%",
                "bpm": "BPM", "cent": "cents", "semitone12TET": "semitones", "oct": "octaves", "degree": "°",
                "midiNote": "note", "frame": "frames", "beat": "beats", "bar": "bars", "m": "m", "cm": "cm",
                "mm": "mm", "km": "km", "inch": "in", "mile": "mi", "coef": ""}


@dataclass(frozen=True)
class ControlPort:
    """A control input: a parameter of the slot, named by its symbol. Values are the port's own."""

    index: int
    symbol: str
    name: str
    minimum: float
    maximum: float
    default: float
    unit: str = ""
    integer: bool = False
    toggled: bool = False
    logarithmic: bool = False
    choices: tuple[tuple[float, str], ...] = ()  # (value, label) of an enumeration's scale points
    per_sample_rate: bool = False  # lv2:sampleRate: the range is in multiples of the sample rate (the value in Hz)

    @property
    def adjustable(self) -> bool:
        """Whether the port can be a parameter: a range with room in it, or two choices or more
        (the others stay at their default)."""
        if self.choices:
            return len(self.choices) >= 2
        return self.toggled or self.minimum < self.maximum

    def describe(self) -> str:
        if self.toggled:
            return "off/on"
        if self.choices:
            return "one of " + ", ".join(f"{label!r} ({value:g})" for value, label in self.choices)
        kind = "integer " if self.integer else ""
        scale = ", log" if self.logarithmic else ""
        return f"{kind}{self.minimum:g}..{self.maximum:g}{' ' + self.unit if self.unit else ''}{scale}"


@dataclass(frozen=True)
class PluginDescription:
    uri: str
    name: str
    class_label: str
    instrument: bool
    audio_inputs: tuple[int, ...]
    audio_outputs: tuple[int, ...]
    controls: tuple[ControlPort, ...]
    control_outputs: tuple[int, ...]
    atom_inputs: tuple[int, ...]  # port indices; `midi_input` is the first that takes MIDI
    atom_outputs: tuple[int, ...]
    midi_input: int | None
    unconnectable_ports: tuple[str, ...]  # symbols of required ports this host cannot feed (CV, ...)
    latency_port: int | None
    port_count: int
    required_features: tuple[str, ...] = field(default_factory=tuple)


class _World:
    """lilv's world with every bundle loaded, and the nodes this module asks about."""

    def __init__(self):
        lib = library()
        self.lib = lib
        self.world = lib.lilv_world_new()
        lib.lilv_world_load_all(self.world)
        self.plugins = lib.lilv_world_get_all_plugins(self.world)
        uri = lambda value: lib.lilv_new_uri(self.world, value.encode())  # noqa: E731 (nodes live as long as the world)
        self.input, self.output = uri(LV2_CORE + "InputPort"), uri(LV2_CORE + "OutputPort")
        self.audio, self.control = uri(LV2_CORE + "AudioPort"), uri(LV2_CORE + "ControlPort")
        self.connection_optional = uri(LV2_CORE + "connectionOptional")
        self.atom = uri(LV2_ATOM + "AtomPort")
        self.supports = uri(LV2_ATOM + "supports")
        self.midi_event = LV2_MIDI_EVENT
        self.integer, self.toggled = uri(LV2_CORE + "integer"), uri(LV2_CORE + "toggled")
        self.enumeration = uri(LV2_CORE + "enumeration")
        self.logarithmic = uri(LV2_PORT_PROPS + "logarithmic")
        self.sample_rate = uri(LV2_CORE + "sampleRate")
        self.unit, self.unit_symbol = uri(LV2_UNITS + "unit"), uri(LV2_UNITS + "symbol")
        self.uri = uri

    def by_uri(self, plugin_uri: str) -> int | None:
        node = self.uri(plugin_uri)
        try:
            return self.lib.lilv_plugins_get_by_uri(self.plugins, node)
        finally:
            self.lib.lilv_node_free(node)


@cache
def world() -> _World:
    return _World()


def installed() -> list[str]:
    """The URI of every installed LV2 plugin, sorted."""
    w = world()
    return sorted(text(w.lib.lilv_plugin_get_uri(p)) for p in iterate(w.plugins, "plugins"))


def plugin_handle(plugin_uri: str) -> int:
    """lilv's plugin for `plugin_uri`; SynthError naming the closest installed URIs otherwise."""
    plugin = world().by_uri(plugin_uri) if isinstance(plugin_uri, str) else None
    if plugin:
        return plugin
    close = difflib.get_close_matches(str(plugin_uri), installed(), n=3, cutoff=0.3)
    hint = f"; the closest installed: {', '.join(close)}" if close else "; `synth plugins --lv2` lists them"
    raise SynthError(f"no installed LV2 plugin has the URI {plugin_uri!r}{hint}")


@cache
def describe(plugin_uri: str) -> PluginDescription:
    """What plugin `plugin_uri` is and which ports it has (SynthError for an unknown URI)."""
    w, lib = world(), world().lib
    plugin = plugin_handle(plugin_uri)
    name_node = lib.lilv_plugin_get_name(plugin)
    name = text(name_node)
    lib.lilv_node_free(name_node)
    plugin_class = lib.lilv_plugin_get_class(plugin)
    class_uri = text(lib.lilv_plugin_class_get_uri(plugin_class))
    groups: dict[str, list[int]] = {k: [] for k in ("ain", "aout", "cout", "atin", "atout")}
    unconnectable = []  # symbols of ports of other kinds (CV, old event ports) the plugin needs connected
    controls, midi_input = [], None
    for index in range(lib.lilv_plugin_get_num_ports(plugin)):
        port = lib.lilv_plugin_get_port_by_index(plugin, index)
        is_a = lambda node: lib.lilv_port_is_a(plugin, port, node)  # noqa: E731
        is_input = is_a(w.input)
        if is_a(w.audio):
            groups["ain" if is_input else "aout"].append(index)
        elif is_a(w.control):
            if is_input:
                controls.append(_control_port(plugin, port, index))
            else:
                groups["cout"].append(index)
        elif is_a(w.atom):
            groups["atin" if is_input else "atout"].append(index)
            if is_input and midi_input is None and _supports_midi(plugin, port):
                midi_input = index
        elif not lib.lilv_port_has_property(plugin, port, w.connection_optional):
            unconnectable.append(text(lib.lilv_port_get_symbol(plugin, port)))
    features = tuple(text(node) for node in iterate(lib.lilv_plugin_get_required_features(plugin), "nodes"))
    latency = lib.lilv_plugin_get_latency_port_index(plugin) if lib.lilv_plugin_has_latency(plugin) else None
    # an instrument by class, or by what it is: MIDI in, audio out only (mda's synths are lv2:Plugin)
    instrument = class_uri == LV2_CORE + "InstrumentPlugin" or (midi_input is not None and not groups["ain"])
    return PluginDescription(plugin_uri, name, text(lib.lilv_plugin_class_get_label(plugin_class)),
                             instrument, tuple(groups["ain"]), tuple(groups["aout"]),
                             tuple(controls), tuple(groups["cout"]), tuple(groups["atin"]), tuple(groups["atout"]),
                             midi_input, tuple(unconnectable), latency, lib.lilv_plugin_get_num_ports(plugin), features)


def _supports_midi(plugin: int, port: int) -> bool:
    w = world()
    values = w.lib.lilv_port_get_value(plugin, port, w.supports)
    found = any(text(node) == w.midi_event for node in iterate(values, "nodes"))
    w.lib.lilv_nodes_free(values)
    return found


def _control_port(plugin: int, port: int, index: int) -> ControlPort:
    w, lib = world(), world().lib
    symbol = text(lib.lilv_port_get_symbol(plugin, port))
    name_node = lib.lilv_port_get_name(plugin, port)
    name = text(name_node)
    lib.lilv_node_free(name_node)
    ends = [ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()]
    lib.lilv_port_get_range(plugin, port, *(ctypes.byref(e) for e in ends))
    default, minimum, maximum = (_number(e.value) for e in ends)
    for end in ends:
        if end.value:
            lib.lilv_node_free(end.value)
    has = lambda node: lib.lilv_port_has_property(plugin, port, node)  # noqa: E731
    toggled = has(w.toggled)
    minimum = 0.0 if minimum is None else minimum
    maximum = (1.0 if toggled or minimum < 1.0 else minimum + 1.0) if maximum is None else maximum
    if default is None:
        default = minimum
    choices: tuple[tuple[float, str], ...] = ()
    if has(w.enumeration):
        points = lib.lilv_port_get_scale_points(plugin, port)
        choices = tuple(sorted((_number(lib.lilv_scale_point_get_value(p)) or 0.0, text(lib.lilv_scale_point_get_label(p)))
                               for p in iterate(points, "scale_points")))
        lib.lilv_scale_points_free(points)
    per_sample_rate = has(w.sample_rate)
    unit = "× sample rate" if per_sample_rate else _unit(plugin, port)
    return ControlPort(index, symbol, name, minimum, maximum, min(max(default, minimum), maximum), unit,
                       has(w.integer), toggled, has(w.logarithmic) and minimum > 0, choices, per_sample_rate)


def _number(node: int | None) -> float | None:
    if not node:
        return None
    lib = library()
    if lib.lilv_node_is_float(node) or lib.lilv_node_is_int(node):
        return float(lib.lilv_node_as_float(node))
    return None


def _unit(plugin: int, port: int) -> str:
    w, lib = world(), world().lib
    values = lib.lilv_port_get_value(plugin, port, w.unit)
    unit = lib.lilv_nodes_get_first(values) if values else None
    symbol = ""
    if unit:
        uri = text(unit)
        if uri.startswith(LV2_UNITS):
            symbol = UNIT_SYMBOLS.get(uri[len(LV2_UNITS):], uri[len(LV2_UNITS):])
        else:  # a unit the bundle defines itself: its units:symbol
            node = lib.lilv_world_get(w.world, unit, w.unit_symbol, None)
            symbol = text(node)
            if node:
                lib.lilv_node_free(node)
    if values:
        lib.lilv_nodes_free(values)
    return symbol
