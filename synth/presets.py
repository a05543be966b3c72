"""Preset files (TOML) -> a validated `PresetSpec`; saving; building an Engine from one.

Format (version 1):

    format_version = 1
    name = "Warm Pad"               # optional, defaults to the file name
    description = "..."             # optional
    voice_limit = 16                # voices per instrument, 1..256

    [[chain]]                       # in order; instruments sum into the bus, then effects run
    plugin = "oscillator"           # a registered plugin name
    id = "osc"                      # optional (defaults to the plugin name): /param/<id>/<name>
    channel = 1                     # optional, instruments only: MIDI channel 1..16
    params = { cutoff_hz = 2000.0, waveform = "saw" }
    files = { analysis = "violin.partials.npz" }  # optional: data files the plugin reads, relative
                                    # to the preset's folder and inside it (see the plugin's file_keys)
    settings = { instrument = "violin" }  # optional: fixed choices the plugin takes at construction
                                    # (see the plugin's setting_keys; it checks the values)

    [osc.map]                       # optional: incoming address -> "<id>/<param>", value 0..1
    "/1/fader1" = "osc/cutoff_hz"

    [midi.cc]                       # optional: controller number -> "<id>/<param>", value 0..127
    74 = "osc/cutoff_hz"

Every problem is reported, each as "<file>: <key>: <what was expected>, got <value>".
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

import tomli_w

from synth.engine import Engine, Slot
from synth.errors import SynthError
from synth.io.atomic import atomic_path
from synth.plugins import INSTRUMENT, Plugin, plugin_class
from synth.plugins.lv2 import Lv2Plugin

FORMAT_VERSION = 1
SHIPPED_PRESETS = Path(__file__).resolve().parent.parent / "presets"
PRESET_SUFFIX = ".toml"
MAX_VOICES = 256
_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TOP_KEYS = {"format_version", "name", "description", "voice_limit", "chain", "osc", "midi"}
_SLOT_KEYS = {"plugin", "id", "channel", "params", "files", "settings"}


@dataclass
class ChainEntry:
    plugin: str
    id: str
    params: dict[str, float | str] = field(default_factory=dict)
    channel: int | None = None
    files: dict[str, str] = field(default_factory=dict)  # file key -> path relative to the preset's folder
    settings: dict[str, str | float] = field(default_factory=dict)  # setting key -> value

    def plugin_class(self) -> type[Plugin]:
        """The class this slot instantiates (its settings may choose it, as an LV2 URI does)."""
        return plugin_class(self.plugin).specialize(self.settings)


@dataclass
class PresetSpec:
    """A validated preset. osc_map: address -> (slot id, param); midi_cc: cc number -> same."""

    name: str
    chain: list[ChainEntry]
    voice_limit: int = 16
    description: str = ""
    osc_map: dict[str, tuple[str, str]] = field(default_factory=dict)
    midi_cc: dict[int, tuple[str, str]] = field(default_factory=dict)
    source: str = "<memory>"

    @property
    def folder(self) -> Path:
        """The folder the preset's data files are relative to (the current one for in-memory presets)."""
        return Path(self.source).parent if self.source != "<memory>" else Path.cwd()

    def build_engine(self, sample_rate: int = 48000, max_block: int = 512, channels: int = 2,
                     input_channels: int = 0) -> Engine:
        """An Engine holding this chain (not yet prepared). A data file a plugin cannot read is a
        SynthError naming the preset, the key and the file."""
        slots = []
        for index, entry in enumerate(self.chain):
            cls = entry.plugin_class()
            kwargs = {"voice_limit": self.voice_limit} if cls.kind == INSTRUMENT else {}
            for key, relative in entry.files.items():
                kwargs[key] = self.folder / relative
            kwargs.update(entry.settings)
            try:
                plugin = cls(**kwargs, **entry.params)
            except SynthError as error:
                raise SynthError(f"{self.source}: chain[{index}]: {error}") from None
            slots.append(Slot(entry.id, plugin, entry.channel))
        return Engine(slots, sample_rate=sample_rate, max_block=max_block, channels=channels,
                      input_channels=input_channels)

    def with_params(self, values: dict[str, float | str], where: str = "params") -> PresetSpec:
        """This preset with parameter values changed: `values` maps "slot/param" to a native value
        (a choice name for a choice). SynthError naming `where`, the key and what it accepts."""
        entries = {entry.id: entry for entry in self.chain}
        changed = {entry.id: dict(entry.params) for entry in self.chain}
        for key, value in values.items():
            slot_id, _, name = key.partition("/")
            if slot_id not in entries or not name:
                raise SynthError(f"{where}: {key!r} is not 'slot/param' with a slot of {self.source} "
                                 f"({', '.join(entries)})")
            try:
                spec = entries[slot_id].plugin_class().param_spec(name)
            except SynthError as error:
                raise SynthError(f"{where}: {key!r}: {error}") from None
            spec.coerce(value, where=f"{where}: {key!r}")
            changed[slot_id][name] = value
        return replace(self, chain=[replace(entry, params=changed[entry.id]) for entry in self.chain])

    def restore_params(self, engine: Engine) -> None:
        """Every parameter of `engine` (built from this preset's chain) at once to the value this
        preset gives it, or its default: a reused engine then renders as a newly built one does."""
        for entry, slot in zip(self.chain, engine.slots):
            for name, param in slot.plugin.params.items():
                param.set(param.spec.coerce(entry.params.get(name, param.spec.default), where=name))
                param.jump()


def resolve_preset_path(name_or_path: str | Path, folders: list[Path] | None = None) -> Path:
    """A preset file from a path, or a bare name looked up in the preset folders only.

    A bare name may not hold path separators or '..', so it can never reach outside those folders.
    """
    candidate = Path(name_or_path)
    if candidate.suffix == PRESET_SUFFIX or candidate.exists():
        if not candidate.is_file():
            raise SynthError(f"{candidate}: no such preset file")
        return candidate
    name = str(name_or_path)
    if not _NAME_PATTERN.match(name):
        raise SynthError(f"preset name {name!r} must be a file path ending in .toml or a bare name "
                         "(letters, digits, '-', '_', '.') from the preset folder")
    for folder in folders or [SHIPPED_PRESETS]:
        path = folder / f"{name}{PRESET_SUFFIX}"
        if path.is_file():
            return path
    known = ", ".join(list_presets(folders)) or "none"
    raise SynthError(f"no preset called {name!r} (available: {known})")


def load_preset_by_name(name: str, folders: list[Path] | None = None) -> PresetSpec:
    """Load a preset by bare name from the preset folders only (for remote requests): a path,
    '..', a separator or an absolute name is refused, so nothing outside those folders is read."""
    if not isinstance(name, str) or not _NAME_PATTERN.match(name) or ".." in name:
        raise SynthError(f"preset name {name!r} refused: only bare names from the preset folder")
    for folder in folders or [SHIPPED_PRESETS]:
        path = folder / f"{name}{PRESET_SUFFIX}"
        if path.is_file():
            return load_preset(path)
    raise SynthError(f"no preset called {name!r}")


def list_presets(folders: list[Path] | None = None) -> list[str]:
    """Names of the presets in the given folders (default: the shipped ones)."""
    names = set()
    for folder in folders or [SHIPPED_PRESETS]:
        names.update(p.stem for p in folder.glob(f"*{PRESET_SUFFIX}"))
    return sorted(names)


def load_preset(name_or_path: str | Path, folders: list[Path] | None = None) -> PresetSpec:
    """Read and validate a preset; SynthError listing every problem, each with file and key."""
    path = resolve_preset_path(name_or_path, folders)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise SynthError(f"{path}: not valid TOML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SynthError(f"{path}: cannot read: {error}") from None
    return parse_preset(data, source=str(path), default_name=path.stem)


def parse_preset(data: dict, source: str = "<memory>", default_name: str = "preset") -> PresetSpec:
    """Validate a preset already read into a dict (see the module docstring for the format)."""
    errors: list[str] = []

    def fail(key: str, message: str) -> None:
        errors.append(f"{source}: {key}: {message}")

    for key in sorted(set(data) - _TOP_KEYS):
        fail(key, f"unknown key (allowed: {', '.join(sorted(_TOP_KEYS))})")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        fail("format_version", f"expected {FORMAT_VERSION}, got {version!r}")
    name = data.get("name", default_name)
    if not isinstance(name, str):
        fail("name", f"expected a string, got {name!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        fail("description", f"expected a string, got {description!r}")
    voice_limit = data.get("voice_limit", 16)
    if isinstance(voice_limit, bool) or not isinstance(voice_limit, int) or not 1 <= voice_limit <= MAX_VOICES:
        fail("voice_limit", f"expected an integer in 1..{MAX_VOICES}, got {voice_limit!r}")
    folder = Path(source).parent if source != "<memory>" else Path.cwd()
    chain = _parse_chain(data.get("chain"), fail, folder)
    targets = {entry.id: entry for entry in chain}
    osc_map = _parse_mapping(data.get("osc", {}), "osc", "map", targets, fail, _address_key)
    midi_cc = _parse_mapping(data.get("midi", {}), "midi", "cc", targets, fail, _cc_key)
    if errors:
        raise SynthError(f"invalid preset ({len(errors)} problem{'s' * (len(errors) > 1)}):\n  " + "\n  ".join(errors))
    return PresetSpec(name, chain, voice_limit, description, osc_map, midi_cc, source)


def _parse_chain(chain: object, fail, folder: Path) -> list[ChainEntry]:
    if not isinstance(chain, list) or not chain:
        fail("chain", f"expected at least one [[chain]] table, got {chain!r}")
        return []
    entries: list[ChainEntry] = []
    seen_ids: set[str] = set()
    for index, table in enumerate(chain):
        where = f"chain[{index}]"
        if not isinstance(table, dict):
            fail(where, f"expected a table, got {table!r}")
            continue
        for key in sorted(set(table) - _SLOT_KEYS):
            fail(f"{where}.{key}", f"unknown key (allowed: {', '.join(sorted(_SLOT_KEYS))})")
        plugin = table.get("plugin")
        try:
            cls = plugin_class(plugin) if isinstance(plugin, str) else None
        except SynthError as error:
            fail(f"{where}.plugin", str(error))
            continue
        if cls is None:
            fail(f"{where}.plugin", f"expected a plugin name, got {plugin!r}")
            continue
        slot_id = table.get("id", plugin)
        if not isinstance(slot_id, str) or not _ID_PATTERN.match(slot_id):
            fail(f"{where}.id", f"expected a lowercase identifier (a-z, 0-9, _), got {slot_id!r}")
            continue
        if slot_id in seen_ids:
            fail(f"{where}.id", f"id {slot_id!r} is already used; give each slot its own id")
        seen_ids.add(slot_id)
        channel = table.get("channel")
        if channel is not None:
            if cls.kind != INSTRUMENT:
                fail(f"{where}.channel", f"only instruments take a MIDI channel; {plugin!r} is an effect")
            elif isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= 16:
                fail(f"{where}.channel", f"expected an integer in 1..16, got {channel!r}")
        settings = _parse_settings(table.get("settings", {}), cls, f"{where}.settings", fail)
        try:
            cls = cls.specialize(settings)
        except SynthError as error:
            fail(f"{where}.settings", str(error))
            continue
        params = table.get("params", {})
        values: dict[str, float | str] = {}
        if not isinstance(params, dict):
            fail(f"{where}.params", f"expected a table of parameter values, got {params!r}")
            params = {}
        for key, value in params.items():
            try:
                spec = cls.param_spec(key)
                values[key] = spec.display(spec.check(value))
            except SynthError as error:
                fail(f"{where}.params.{key}", str(error))
        files = _parse_files(table.get("files", {}), cls, folder, f"{where}.files", fail)
        entries.append(ChainEntry(plugin, slot_id, values, channel, files, settings))
    return entries


def _parse_settings(settings: object, cls, where: str, fail) -> dict[str, str | float]:
    """A slot's construction settings: each key one the plugin declares, each value a string or a
    number (the plugin checks the value itself when the engine is built)."""
    if not isinstance(settings, dict):
        fail(where, f"expected a table of settings, got {settings!r}")
        return {}
    accepted: dict[str, str | float] = {}
    for key, value in settings.items():
        if key not in cls.setting_keys:
            known = ", ".join(cls.setting_keys) or "none"
            fail(f"{where}.{key}", f"plugin {cls.name!r} takes no setting {key!r} (it takes: {known})")
        elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
            fail(f"{where}.{key}", f"expected a string or a number, got {value!r}")
        else:
            accepted[key] = value
    return accepted


def _parse_files(files: object, cls, folder: Path, where: str, fail) -> dict[str, str]:
    """A slot's data files: each key one the plugin reads, each value a relative path that stays
    inside the preset's folder (no absolute path, no '..') and names an existing file."""
    if not isinstance(files, dict):
        fail(where, f"expected a table of file paths, got {files!r}")
        return {}
    accepted: dict[str, str] = {}
    for key, value in files.items():
        if key not in cls.file_keys:
            known = ", ".join(cls.file_keys) or "none"
            fail(f"{where}.{key}", f"plugin {cls.name!r} reads no file {key!r} (it reads: {known})")
        elif not isinstance(value, str) or not value or Path(value).is_absolute() or ".." in Path(value).parts:
            fail(f"{where}.{key}", f"expected a path relative to the preset's folder, without '..', got {value!r}")
        elif not (folder / value).is_file():
            fail(f"{where}.{key}", f"no such file: {folder / value}")
        elif not (folder / value).resolve().is_relative_to(folder.resolve()):
            fail(f"{where}.{key}", f"{value!r} leads outside the preset's folder (a link?)")
        else:
            accepted[key] = value
    return accepted


def _address_key(key: str) -> str | None:
    return key if key.startswith("/") and " " not in key else None


def _cc_key(key: str) -> int | None:
    return int(key) if key.isdigit() and 0 <= int(key) <= 127 else None


def _parse_mapping(section, section_name, table_name, targets, fail, parse_key) -> dict:
    """Validate [osc.map] or [midi.cc]: keys parsed by parse_key, values "<id>/<param>"."""
    if not isinstance(section, dict):
        fail(section_name, f"expected a table, got {section!r}")
        return {}
    for key in sorted(set(section) - {table_name}):
        fail(f"{section_name}.{key}", f"unknown key (allowed: {table_name})")
    table = section.get(table_name, {})
    if not isinstance(table, dict):
        fail(f"{section_name}.{table_name}", f"expected a table, got {table!r}")
        return {}
    result = {}
    for key, target in table.items():
        where = f"{section_name}.{table_name}.{key!r}"
        parsed = parse_key(key)
        if parsed is None:
            expected = "an OSC address starting with '/'" if section_name == "osc" else "a controller number 0..127"
            fail(where, f"expected {expected} as the key")
            continue
        if not isinstance(target, str) or target.count("/") != 1:
            fail(where, f"expected \"<plugin id>/<parameter>\", got {target!r}")
            continue
        slot_id, param = target.split("/")
        if slot_id not in targets:
            fail(where, f"no chain slot {slot_id!r} (slots: {', '.join(targets)})")
            continue
        try:
            targets[slot_id].plugin_class().param_spec(param)
        except SynthError as error:
            fail(where, str(error))
            continue
        result[parsed] = (slot_id, param)
    return result


def with_plugin_states(spec: PresetSpec, engine: Engine) -> PresetSpec:
    """`spec` with the current state of each LV2 slot of `engine` (prepared from it) in that slot's
    settings.state, so that a saved preset brings the plugins back as they are."""
    chain = []
    for entry, slot in zip(spec.chain, engine.slots):
        state = slot.plugin.state() if isinstance(slot.plugin, Lv2Plugin) else ""
        settings = {**entry.settings, "state": state} if state else dict(entry.settings)
        chain.append(ChainEntry(entry.plugin, entry.id, dict(entry.params), entry.channel, dict(entry.files), settings))
    return replace(spec, chain=chain)


def preset_to_dict(spec: PresetSpec) -> dict:
    """The TOML document for a preset (inverse of parse_preset)."""
    data: dict = {"format_version": FORMAT_VERSION, "name": spec.name}
    if spec.description:
        data["description"] = spec.description
    data["voice_limit"] = spec.voice_limit
    data["chain"] = []
    for entry in spec.chain:
        table: dict = {"plugin": entry.plugin, "id": entry.id}
        if entry.channel is not None:
            table["channel"] = entry.channel
        table["params"] = dict(entry.params)
        if entry.files:
            table["files"] = dict(entry.files)
        if entry.settings:
            table["settings"] = dict(entry.settings)
        data["chain"].append(table)
    if spec.osc_map:
        data["osc"] = {"map": {address: f"{s}/{p}" for address, (s, p) in spec.osc_map.items()}}
    if spec.midi_cc:
        data["midi"] = {"cc": {str(cc): f"{s}/{p}" for cc, (s, p) in spec.midi_cc.items()}}
    return data


def save_preset(spec: PresetSpec, path: str | Path) -> Path:
    """Write a preset atomically (the file is replaced whole or not at all); returns the path."""
    path = Path(path)
    if path.suffix != PRESET_SUFFIX:
        raise SynthError(f"{path}: preset files end in {PRESET_SUFFIX}")
    document = tomli_w.dumps(preset_to_dict(spec))
    with atomic_path(path) as temp:
        temp.write_text(document, encoding="utf-8")
    return path
