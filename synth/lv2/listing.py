"""Installed LV2 plugins as text for people (`synth plugins --lv2 [URI]`)."""

from __future__ import annotations

from synth.lv2.catalog import PluginDescription, describe, installed
from synth.lv2.instance import SUPPORTED_FEATURES


def summary_lines() -> list[str]:
    """One line per installed plugin: URI, name, class, audio inputs/outputs, control ports."""
    lines = []
    for uri in installed():
        d = describe(uri)
        lines.append(f"{uri}  {d.name!r} ({d.class_label}{', instrument' if d.instrument else ''})  "
                     f"audio {len(d.audio_inputs)} in / {len(d.audio_outputs)} out, {len(d.controls)} controls"
                     f"{_refusal(d)}")
    return lines


def describe_lines(uri: str) -> list[str]:
    """One plugin in full: its ports with ranges, defaults and units (SynthError for a bad URI)."""
    d = describe(uri)
    lines = [f"{d.uri}  {d.name!r} ({d.class_label}{', instrument' if d.instrument else ''}){_refusal(d)}",
             f"  audio inputs {len(d.audio_inputs)}, outputs {len(d.audio_outputs)}; MIDI input: "
             f"{'yes' if d.midi_input is not None else 'no'}; latency port: {'yes' if d.latency_port is not None else 'no'}"]
    for port in d.controls:
        lines.append(f"  {port.symbol:20} {port.describe():40} default {port.default:g}  {port.name}")
    return lines


def _refusal(d: PluginDescription) -> str:
    missing = [f.rsplit("/", 1)[-1] for f in d.required_features if f not in SUPPORTED_FEATURES]
    if missing:
        return f"  [not hostable: needs {', '.join(missing)}]"
    if not d.audio_outputs:
        return "  [not hostable: no audio output]"
    if d.unconnectable_ports:
        return f"  [not hostable: ports of other kinds: {', '.join(d.unconnectable_ports)}]"
    if d.instrument and d.midi_input is None:
        return "  [not hostable: an instrument without a MIDI input]"
    return ""
