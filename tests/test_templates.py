"""The controller and DAW templates parse, and every message they send is one the OSC server takes:
each message is sent over UDP to a live server (per shipped preset) and the server's own counters
must show it applied, none unknown or invalid."""

import itertools
import json
import shlex
from pathlib import Path

import pytest

from conftest import JACK_PERIOD, JACK_RATE
from synth.control.osc import OscServer
from synth.host import Host
from synth.presets import list_presets, load_preset
from test_osc import Client, wait_for
from test_osc_wire import message

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@pytest.fixture(scope="module")
def live(jack):
    """A streaming host with an OSC server, and a function that sends messages for one preset and
    returns the server's counters for them alone."""
    host = Host(load_preset("warm-pad"), JACK_RATE, JACK_PERIOD, device=jack)
    host.start()
    server = OscServer(host, port=0)
    server.start()
    client = Client(server.port)

    def send(preset, messages):
        applied = server.counters.applied
        client.send(message("/preset/load", preset))
        # the load is counted after the preset is in place: wait for both before counting the rest
        wait_for(lambda: server.preset_name == load_preset(preset).name and server.counters.applied > applied,
                 timeout=30)
        before = dict(server.counters.__dict__)
        for address, args in messages:
            client.send(message(address, *args))
        wait_for(lambda: server.counters.packets == before["packets"] + len(messages))
        return {k: v - before[k] for k, v in server.counters.__dict__.items()}

    yield send, server
    client.close()
    server.stop()
    host.stop()


# --- Open Stage Control --------------------------------------------------------------------

def widgets(node):
    for child in node.get("tabs", []) + node.get("widgets", []):
        yield child
        yield from widgets(child)


def sent_by(widget) -> list[tuple[str, list]]:
    """What one Open Stage Control widget sends: its address with preArgs, then its value(s)."""
    kind, address, pre = widget["type"], widget.get("address", "auto"), widget.get("preArgs", [])
    if address in ("auto", "", None):
        address = "/" + widget["id"]
    if kind in ("fader", "knob"):
        low, high = widget["range"]["min"], widget["range"]["max"]
        return [(address, pre + [value]) for value in (low, (low + high) / 2, high)]
    if kind == "xy":
        xs, ys = widget["rangeX"], widget["rangeY"]
        return [(address, pre + [x, y]) for x, y in itertools.product((xs["min"], xs["max"]), (ys["min"], ys["max"]))]
    if kind == "button":
        values = [widget["on"]] + ([widget["off"]] if widget["mode"] != "tap" else [])
        return [(address, pre + ([] if value is None else [value])) for value in values]
    if kind == "keyboard":
        notes = (widget["start"], widget["start"] + widget["keys"] - 1)
        return [(address, pre + [note, value]) for note in notes for value in (widget["on"], widget["off"])]
    if kind in ("tab", "panel", "root"):
        return []
    raise AssertionError(f"the test does not know what a {kind!r} widget sends")


def test_open_stage_control_session_is_a_session_file():
    session = json.loads((TEMPLATES / "synth-host.json").read_text())
    assert session["type"] == "session" and session["content"]["type"] == "root"
    ids = [w["id"] for w in widgets(session["content"])]
    assert len(ids) == len(set(ids))
    kinds = {w["type"] for w in widgets(session["content"])}
    assert {"keyboard", "fader", "xy", "button"} <= kinds
    assert any(w.get("address") == "/latent/xy" for w in widgets(session["content"]))


def test_every_open_stage_control_message_is_taken_for_its_presets(live):
    send, server = live
    session = json.loads((TEMPLATES / "synth-host.json").read_text())
    covered = set()
    for tab in session["content"]["tabs"]:
        messages = [m for w in widgets(tab) for m in sent_by(w)]
        presets = [args[0] for address, args in messages if address == "/preset/load"]
        assert presets, f"tab {tab['id']} loads no preset"
        rest = [m for m in messages if m[0] != "/preset/load"]
        assert any(address == "/note/on" for address, _ in rest) and len(rest) > 20
        for preset in presets:
            counts = send(preset, rest)
            assert (counts["unknown"], counts["invalid"], counts["malformed"]) == (0, 0, 0), (tab["id"], preset)
            assert counts["applied"] == len(rest)
            covered.add(preset)
    assert covered <= set(list_presets()) and len(covered) >= 4  # presets added later may have no tab yet


# --- REAPER --------------------------------------------------------------------------------

def reaper_config():
    """(settings {name: value}, actions [(name, [pattern, ...])]) of the .ReaperOSC file."""
    settings, actions = {}, []
    for line in (TEMPLATES / "synth-host.ReaperOSC").read_text().splitlines():
        tokens = shlex.split(line, comments=True)
        if not tokens:
            continue
        name, values = tokens[0], tokens[1:]
        assert values, f"{name}: no value"
        if name.startswith(("DEVICE_", "REAPER_")):
            settings[name] = values[0]
        else:
            actions.append((name, values))
    return settings, actions


def test_reaper_config_follows_the_pattern_syntax():
    settings, actions = reaper_config()
    for name, value in settings.items():
        if name.endswith("_COUNT"):
            assert value.isdigit() and int(value) > 0, name
        elif name.endswith("_FOLLOWS"):
            assert value in ("REAPER", "DEVICE", "LAST_TOUCHED", "FOCUSED", "MIXER"), name
    for name, patterns in actions:
        for pattern in patterns:
            assert pattern[0] in "nfbtrsi" and pattern[1] == "/" and len(pattern) <= 512, (name, pattern)
    sliders = [line for line in (TEMPLATES / "synth-host-remote.jsfx").read_text().splitlines()
               if line.startswith("slider")]
    assert len(sliders) == int(settings["DEVICE_FX_PARAM_COUNT"])
    assert all("<0,1," in line for line in sliders)
    assert max(sum(len(s.plugin.param_specs) for s in load_preset(p).build_engine().slots)
               for p in list_presets()) <= len(sliders)


def reaper_messages(actions, parameter_count):
    """What REAPER sends for these actions: '@' filled in as REAPER would (parameter numbers of
    the focused FX; MIDI channel and note), with arguments of the pattern's type."""
    fills = {"FX_PARAM_VALUE": [[n] for n in range(1, parameter_count + 1)],
             "VKB_MIDI_NOTE": [[c, n] for c in (0, 15) for n in (0, 60, 127)]}
    values = {"n": [0.0, 0.5, 1.0], "f": [40.0, 120.0, 300.0], "t": [1.0, 0.0], "b": [1.0, 0.0], "i": [100, 0]}
    messages = []
    for name, patterns in actions:
        for pattern in patterns:
            flag, address = pattern[0], pattern[1:]
            for numbers in fills.get(name, [[]]) if "@" in address else [[]]:
                filled = address
                for number in numbers:
                    filled = filled.replace("@", str(number), 1)
                assert "@" not in filled, f"the test does not know how REAPER fills {name}"
                messages += [(filled, [value]) for value in values[flag]]
    return messages


@pytest.mark.parametrize("preset", list_presets())
def test_every_reaper_message_is_taken(live, preset):
    send, server = live
    _, actions = reaper_config()
    engine = load_preset(preset).build_engine()
    messages = reaper_messages(actions, sum(len(s.plugin.param_specs) for s in engine.slots))
    counts = send(preset, messages)
    # the fader and pan lines drive the output stage "out": presets without one do not take them
    without_out = [m for m in messages if m[0].startswith("/param/out/")] if "out" not in {s.id for s in engine.slots} else []
    assert (counts["unknown"], counts["invalid"]) == (len(without_out), 0)
    assert counts["applied"] == len(messages) - len(without_out)


def test_reaper_fx_parameter_numbers_follow_the_params_listing(live):
    send, server = live
    count = sum(len(slot.plugin.param_specs) for slot in load_preset("strings-32").build_engine().slots)
    positions = [n / (count + 1) for n in range(1, count + 1)]
    positions_sent = positions + [0.5]
    counts = send("strings-32", [(f"/fxparam/{n}/value", [positions_sent[n - 1]]) for n in range(1, count + 2)])
    assert (counts["applied"], counts["unknown"]) == (count, 1)  # one past the last parameter
    wait_for(lambda: server.host.loaded)
    engine = server.host.chain
    listed = [(slot.id, name) for slot in engine.slots for name in slot.plugin.params]  # the order of /params
    expected = [engine.param_spec(slot_id, name).from_normalized(x) for (slot_id, name), x in zip(listed, positions)]
    # the delay's sync is set (not "off"), so its time comes from the tempo instead: that one is left out
    assert expected[listed.index(("delay", "sync"))] != 0
    kept = [i for i, key in enumerate(listed) if key != ("delay", "time_ms")]
    # positions travel as OSC float32, so values match to float32 precision
    wait_for(lambda: [server.host.param_value(*listed[i]) for i in kept]
             == pytest.approx([expected[i] for i in kept], rel=1e-6), timeout=10)  # a loaded machine is slow
