"""The address space shared by JSON Lines scores and the OSC server: message -> Events.

| address                     | arguments               | effect                                   |
|-----------------------------|-------------------------|------------------------------------------|
| /note/on                    | note velocity [channel] | note 0..127, velocity 0..127 (0 = off)   |
| /note/off                   | note [channel]          | release the note                         |
| /notes/off                  | (none)                  | release every voice                      |
| /param/<id>/<name>          | value                   | set a parameter in native units          |
| /param/<id>/<name>/norm     | position                | set a parameter from a 0..1 position     |
| any address in [osc.map]    | position                | the mapped parameter, from 0..1          |
| /tempo/raw                  | bpm                     | song tempo 20..999 for synced parameters |
| /latent                     | z1 .. zD                | the timbre latent of every decoder with a timbre model (files.vae) |
| /latent/xy                  | x y                     | z on the plane of the two main axes, 0..1 each |
| /latent/morph               | name_a name_b t         | z between two instruments' centroids, t 0..1 |
| /say                        | text                    | every `voice` slot speaks the text        |
| /sing                       | text                    | every `voice` slot's next notes sing its syllables |

Numbers may be ints, floats or booleans (controllers differ). Channels are 1..16.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from synth.engine import Engine
from synth.errors import SynthError, UnknownName
from synth.events import AllNotesOff, Event, Lyric, NoteOff, NoteOn, ParamChange, TempoChange, Utterance

if TYPE_CHECKING:
    from synth.presets import PresetSpec

MIN_BPM, MAX_BPM = 20.0, 999.0


def _number(value: object, what: str) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    raise SynthError(f"{what}: expected a finite number, got {value!r}")


def _integer(value: object, what: str, low: int, high: int) -> int:
    number = _number(value, what)
    if not number.is_integer() or not low <= number <= high:
        raise SynthError(f"{what}: expected an integer in {low}..{high}, got {value!r}")
    return int(number)


def _arity(address: str, args: Sequence, low: int, high: int) -> None:
    if not low <= len(args) <= high:
        wanted = str(low) if low == high else f"{low}..{high}"
        raise SynthError(f"{address}: expected {wanted} argument{'s' * (high != 1)}, got {len(args)}")


class MessageTranslator:
    """Turns (address, args) into Events for one engine.

    strict=True (scores): out-of-range parameter values are errors.
    strict=False (live control): they are clamped into range, as controllers expect.
    osc_map: extra addresses (from a preset's [osc.map]) -> (slot id, parameter), taking 0..1.
    """

    def __init__(self, engine: Engine, osc_map: dict[str, tuple[str, str]] | None = None, strict: bool = True):
        self.engine = engine
        self.osc_map = dict(osc_map or {})
        self.strict = strict

    def translate(self, address: str, args: Sequence, time_samples: int) -> list[Event]:
        """Events for one message; SynthError naming the address and the problem."""
        if address == "/note/on":
            _arity(address, args, 2, 3)
            note = _integer(args[0], f"{address} note", 0, 127)
            velocity = round(_number(args[1], f"{address} velocity"))
            if not 0 <= velocity <= 127:
                raise SynthError(f"{address} velocity: expected 0..127, got {args[1]!r}")
            channel = _integer(args[2], f"{address} channel", 1, 16) if len(args) == 3 else None
            if velocity == 0:
                return [NoteOff(time_samples, note, channel)]
            return [NoteOn(time_samples, note, velocity, channel)]
        if address == "/note/off":
            _arity(address, args, 1, 2)
            note = _integer(args[0], f"{address} note", 0, 127)
            channel = _integer(args[1], f"{address} channel", 1, 16) if len(args) == 2 else None
            return [NoteOff(time_samples, note, channel)]
        if address == "/notes/off":
            _arity(address, args, 0, 0)
            return [AllNotesOff(time_samples)]
        if address == "/tempo/raw":
            _arity(address, args, 1, 1)
            bpm = _number(args[0], f"{address} tempo")
            if not MIN_BPM <= bpm <= MAX_BPM:
                raise SynthError(f"{address}: expected a tempo in {MIN_BPM:g}..{MAX_BPM:g} bpm, got {args[0]!r}")
            return [TempoChange(time_samples, bpm)]
        if address in ("/latent", "/latent/xy", "/latent/morph"):
            return self._latent(address, args, time_samples)
        if address in ("/say", "/sing"):
            return self._voice(address, args, time_samples)
        if address in self.osc_map:
            slot_id, name = self.osc_map[address]
            return [self._param(address, slot_id, name, args, normalized=True, time_samples=time_samples)]
        parts = address.split("/")
        if len(parts) in (4, 5) and parts[1] == "param" and (len(parts) == 4 or parts[4] == "norm"):
            return [self._param(address, parts[2], parts[3], args, len(parts) == 5, time_samples)]
        raise UnknownName(f"{address}: unknown address (see `synth addresses PRESET`)")

    def _latent(self, address: str, args: Sequence, time_samples: int) -> list[Event]:
        """ParamChanges of z1..zD for every decoder slot with a timbre model (their z parameters
        glide, so sweeps do not click)."""
        slots = [slot for slot in self.engine.slots if getattr(slot.plugin, "timbre_space", None) is not None]
        if not slots:
            raise SynthError(f"{address}: no decoder in this preset has a timbre model (files.vae)")
        events: list[Event] = []
        for slot in slots:
            space = slot.plugin.timbre_space
            if address == "/latent":
                _arity(address, args, space.latent_dims, space.latent_dims)
                z = space.clamp([_number(value, f"{address} z{i + 1}") for i, value in enumerate(args)])
            elif address == "/latent/xy":
                _arity(address, args, 2, 2)
                x, y = (_number(value, f"{address} {axis}") for value, axis in zip(args, "xy"))
                if self.strict and not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                    raise SynthError(f"{address}: expected x and y in 0..1, got {list(args)!r}")
                z = space.from_xy(x, y)
            else:
                _arity(address, args, 3, 3)
                first, second = (str(value) for value in args[:2])
                amount = _number(args[2], f"{address} t")
                if self.strict and not 0.0 <= amount <= 1.0:
                    raise SynthError(f"{address}: expected t in 0..1, got {args[2]!r}")
                try:
                    z = space.morph(first, second, amount)
                except SynthError as error:
                    raise SynthError(f"{address}: {error}") from None
            events.extend(ParamChange(time_samples, slot.id, f"z{i + 1}", float(value)) for i, value in enumerate(z))
        return events

    def _voice(self, address: str, args: Sequence, time_samples: int) -> list[Event]:
        """An Utterance (/say) or Lyric (/sing) event for every `voice` slot; the speech or the
        syllable table is made here, on the caller's thread (tens of ms), never on the audio thread."""
        _arity(address, args, 1, 1)
        if not isinstance(args[0], str) or not args[0].strip():
            raise SynthError(f"{address}: expected the text as a string, got {args[0]!r}")
        slots = [slot for slot in self.engine.slots if hasattr(slot.plugin, "prepare_lyric")]
        if not slots:
            raise SynthError(f"{address}: this preset has no voice plugin")
        text = args[0]
        try:
            if address == "/say":
                return [Utterance(time_samples, slot.id, text, slot.plugin.render_speech(text)) for slot in slots]
            return [Lyric(time_samples, slot.id, text, slot.plugin.prepare_lyric(text)) for slot in slots]
        except SynthError as error:
            raise SynthError(f"{address}: {error}") from None

    def _param(self, address, slot_id, name, args, normalized, time_samples) -> ParamChange:
        _arity(address, args, 1, 1)
        try:
            spec = self.engine.param_spec(slot_id, name)
        except SynthError as error:
            raise type(error)(f"{address}: {error}") from None  # an unknown slot or name stays UnknownName
        value = args[0]
        if normalized:
            position = _number(value, address)
            if self.strict and not 0.0 <= position <= 1.0:
                raise SynthError(f"{address}: expected a position in 0..1, got {value!r}")
            native = spec.from_normalized(position)
        elif self.strict or isinstance(value, str):
            native = spec.coerce(value, where=address)
        else:
            native = spec.clamp(_number(value, address))
        return ParamChange(time_samples, slot_id, name, native)


def event_to_message(event: Event) -> tuple[str, list]:
    """The address and arguments that reproduce `event` (for recorded sessions)."""
    match event:
        case NoteOn(note=note, velocity=velocity, channel=channel):
            return "/note/on", [note, velocity] + ([channel] if channel is not None else [])
        case NoteOff(note=note, channel=channel):
            return "/note/off", [note] + ([channel] if channel is not None else [])
        case AllNotesOff():
            return "/notes/off", []
        case ParamChange(slot_id=slot_id, name=name, value=value):
            return f"/param/{slot_id}/{name}", [value]
        case TempoChange(bpm=bpm):
            return "/tempo/raw", [bpm]
        case Utterance(text=text):
            return "/say", [text]
        case Lyric(text=text):
            return "/sing", [text]
    raise TypeError(f"not an event: {event!r}")


def address_lines(preset: PresetSpec) -> list[str]:
    """The address table of a preset's chain, for people (`synth addresses`): every parameter's
    address with its range and unit (a choice's names), the preset's value and the plugin's default,
    then the preset's [osc.map]. Read from the plugin classes: no plugin is built, no model loaded."""
    lines = ["parameters (each also takes a 0..1 position at <address>/norm):"]
    for entry in preset.chain:
        for spec in entry.plugin_class().param_specs:
            value = spec.display(spec.coerce(entry.params.get(spec.name, spec.default), where=spec.name))
            lines.append(f"  /param/{entry.id}/{spec.name:24} {spec.describe()}"
                         f"{', log scale' if spec.scale == 'log' else ''}; now {value!r} "
                         f"(default {spec.display(spec.default_value)!r})")
    osc_map = preset.osc_map
    if osc_map:
        lines.append("[osc.map] (a 0..1 position each):")
        lines += [f"  {address:30} -> /param/{slot_id}/{name}" for address, (slot_id, name) in sorted(osc_map.items())]
    lines.append("also: /note/on note velocity [channel], /note/off note [channel], /notes/off, /tempo/raw bpm, "
                 "/latent, /latent/xy, /latent/morph, /say text, /sing text (see the README)")
    return lines
