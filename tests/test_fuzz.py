"""Property-based fuzzing (Hypothesis) of every parser and loader that takes outside input: CLI
numbers, OSC packets and bundles (over UDP, and TCP's two framings), JSON Lines and MIDI scores, preset TOML, analysis files, model
JSON (decoder and timbre model) and safetensors headers, audio file headers.

The property everywhere: a valid result, or a SynthError whose text is a sentence. Never another
exception, never a hang (each case has a deadline), never a file left behind.

In CI the examples are fixed (derandomized) and the whole module runs in about 15 s;
`python bench/fuzz.py` runs the same properties with SYNTH_FUZZ_SCALE times as many random cases.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synth.arguments import number
from synth.cli import build_parser
from synth.control.osc import OscServer
from synth.control.osc_tcp import (FramingError, SizePrefixDecoder, SlipDecoder, encode_size_prefixed,
                                    encode_slip)
from synth.control.osc_wire import parse_packet
from synth.dsp.decoder_runtime import load_runtime, read_weights_numpy
from synth.dsp.partials import load_partials, save_partials
from synth.errors import SynthError
from synth.host import Host
from synth.io.audiofile import read_audio
from synth.presets import load_preset, parse_preset
from synth.scores import load_score

SCALE = int(os.environ.get("SYNTH_FUZZ_SCALE", "1"))
settings.register_profile("ci", derandomize=True, database=None, deadline=5000,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("long", derandomize=False, database=None, deadline=20000,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile("ci" if SCALE == 1 else "long")

MODELS = Path(__file__).parent.parent / "presets" / "models"
SCORES = Path(__file__).parent.parent / "presets" / "scores"


def examples(count: int):
    """settings for `count` cases in CI (SCALE times as many in the long run)."""
    return settings(max_examples=count * SCALE)


def refused_clearly(call):
    """call()'s result, or None when it raised a SynthError with a sentence; anything else fails."""
    try:
        return call()
    except SynthError as error:
        first_line = str(error).split("\n")[0]
        assert first_line.strip() and "Traceback" not in str(error), repr(error)
        return None


@pytest.fixture(scope="module")
def engine():
    return load_preset("warm-pad").build_engine(48000, 256, 2)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """One folder for every case's file, emptied by each case (tmp_path is per test, not per case)."""
    return tmp_path_factory.mktemp("fuzz")


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


# ---------------------------------------------------------------- command-line numbers

NUMBER_TEXT = st.one_of(st.text(max_size=12), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                        st.integers(-10**12, 10**12).map(str), st.sampled_from(["nan", "-inf", "1e309", "0x10", "1_000",
                                                                                  " 5", "5 ", "", "٣", "1e-400"]))


@examples(200)
@given(text=NUMBER_TEXT, low=st.integers(-1000, 1000), span=st.integers(0, 10**6), integer=st.booleans())
def test_a_flag_number_is_in_range_or_one_sentence(text, low, span, integer):
    parse = number(low, low + span, "s", integer)
    try:
        value = parse(text)
    except argparse.ArgumentTypeError as error:
        assert str(error).startswith("expected ") and str(error).endswith(f"got {text!r}")
        return
    assert low <= value <= low + span and np.isfinite(value) and (not integer or isinstance(value, int))


FLAGS = [(["render", "warm-pad", "s.jsonl", "-o", "x.wav"], flag) for flag in
         ("--tail", "--block-size", "--sample-rate", "--normalize")] + \
        [(["serve", "warm-pad"], flag) for flag in ("--osc-port", "--latency", "--duration", "--input-channels")] + \
        [(["train", "decoder", "--data", "d", "-o", "m"], flag) for flag in
         ("--steps", "--batch-size", "--learning-rate", "--hidden", "--excerpt-frames", "--threads", "--seed")] + \
        [(["resynth", "a.partials.npz", "-o", "x.wav"], flag) for flag in ("--stretch", "--transpose", "--tilt", "--morph")]


@examples(75)
@given(where=st.sampled_from(FLAGS), text=NUMBER_TEXT.filter(lambda t: not t.startswith("-")))
def test_the_command_line_takes_a_number_or_exits_2_with_the_flag_named(where, text):
    """argparse itself (a value that starts with '-' reads as a flag: left out here)."""
    prefix, flag = where
    errors = io.StringIO()
    try:
        from contextlib import redirect_stderr

        with redirect_stderr(errors):
            build_parser().parse_args([*prefix, flag, text])
    except SystemExit as exit_:
        assert exit_.code == 2 and f"argument {flag}: expected " in errors.getvalue(), errors.getvalue()


# ---------------------------------------------------------------- OSC packets and bundles

OSC_VALUES = st.one_of(st.integers(-2**31, 2**31 - 1), st.floats(width=32), st.text(max_size=20), st.booleans(),
                       st.binary(min_size=1, max_size=16), st.none())
ADDRESSES = st.one_of(  # warm-pad's own addresses (most cases reach a handler), patterns, and any text
    st.sampled_from(["/note/on", "/note/off", "/notes/off", "/param/osc/cutoff_hz", "/param/osc/cutoff_hz/norm",
                     "/param/osc/waveform", "/param/delay/sync", "/param/out/pan", "/param/nope/x", "/1/fader1",
                     "/params", "/status", "/subscribe", "/preset/load", "/say", "/sing", "/tempo/raw", "/latent/xy",
                     "/play", "/stop", "/param/*/cutoff_hz", "/param/osc/*", "/{a,b}/x", "/[!a-z]/?", "/param/[", "/*"]),
    st.text(min_size=1, max_size=24).map(lambda t: "/" + t))


def _padded(data: bytes) -> bytes:
    """OSC string/blob padding: at least one NUL for a string, to a multiple of 4 bytes."""
    return data + b"\x00" * (4 - len(data) % 4)


def _message(address: str, values: list) -> bytes:
    """An OSC 1.0 message (written here, not by python-osc's builder, so that any address goes)."""
    tags, body = ",", b""
    for value in values:
        if value is None or isinstance(value, bool):
            tags += {None: "N", True: "T", False: "F"}[value]
        elif isinstance(value, int):
            tags, body = tags + "i", body + struct.pack(">i", value)
        elif isinstance(value, float):
            tags, body = tags + "f", body + struct.pack(">f", value)
        elif isinstance(value, str):
            tags, body = tags + "s", body + _padded(value.encode("utf-8"))
        else:
            tags, body = tags + "b", body + struct.pack(">i", len(value)) + value + b"\x00" * (-len(value) % 4)
    return _padded(address.encode("utf-8")) + _padded(tags.encode()) + body


def mutated(draw, data: bytes, magic: bytes, random_size: int, within: int | None = None) -> bytes:
    """`data` as it is, cut short, with 1 to 8 bytes overwritten (in its first `within` bytes,
    default anywhere), or replaced by `magic` and random bytes."""
    mutation = draw(st.sampled_from(["none", "truncate", "overwrite", "random"]))
    if mutation == "truncate":
        return data[:draw(st.integers(0, len(data)))]
    if mutation == "overwrite":
        at = draw(st.integers(0, min(len(data), within or len(data)) - 1))
        patch = draw(st.binary(min_size=1, max_size=8))
        return data[:at] + patch + data[at + len(patch):]
    if mutation == "random":
        return magic + draw(st.binary(max_size=random_size))
    return data


@st.composite
def osc_packets(draw):
    """Well-formed messages and bundles, then perhaps cut short or with bytes overwritten."""
    messages = [_message(draw(ADDRESSES), draw(st.lists(OSC_VALUES, max_size=4))) for _ in range(draw(st.integers(1, 3)))]
    if len(messages) == 1 and draw(st.booleans()):
        packet = messages[0]
    else:  # a bundle: "#bundle", a timetag (1: immediately), then each element's int32 size and bytes
        timetag = draw(st.one_of(st.just(1), st.integers(0, 2**64 - 1)))
        packet = b"#bundle\x00" + struct.pack(">Q", timetag)
        packet += b"".join(struct.pack(">i", len(dgram)) + dgram for dgram in messages)
    return mutated(draw, packet, b"", 256)


@examples(300)
@given(packet=osc_packets())
def test_an_osc_packet_parses_or_is_refused_in_a_sentence(packet):
    messages = refused_clearly(lambda: parse_packet(packet))
    for time_s, address, arguments in messages or []:
        assert (time_s is None or isinstance(time_s, float)) and address.startswith("/") and isinstance(arguments, list)


@pytest.fixture(scope="module")
def server():
    host = Host(load_preset("warm-pad"), 48000, 256)  # not started: posts are counted as dropped
    server = OscServer(host, port=0)  # its socket bound, its thread not started: the test hands it packets
    yield server
    server.stop()


@examples(200)
@given(packet=osc_packets())
def test_the_osc_server_counts_every_packet_and_never_raises(server, packet):
    before = server.counters.packets, server.counters.malformed, server.counters.received
    server.handle(packet, ("127.0.0.1", 9))  # a reply goes to the discard port
    packets, malformed, received = server.counters.packets, server.counters.malformed, server.counters.received
    assert packets == before[0] + 1
    assert (malformed == before[1] + 1) != (received > before[2] or _is_empty_bundle(packet))


def _is_empty_bundle(packet: bytes) -> bool:
    try:
        return parse_packet(packet) == []
    except SynthError:
        return False


@examples(150)
@given(packets=st.lists(st.binary(min_size=1, max_size=80), max_size=5), cuts=st.lists(st.integers(0, 500), max_size=6),
       framing=st.sampled_from([(encode_size_prefixed, SizePrefixDecoder), (encode_slip, SlipDecoder)]))
def test_tcp_frames_come_back_whole_from_any_split_of_the_stream(packets, cuts, framing):
    """OSC over TCP: packets of any bytes (SLIP's END and ESC included), the stream cut anywhere."""
    encode, decoder = framing
    stream = b"".join(encode(packet) for packet in packets)
    reader, got, start = decoder(), [], 0
    for cut in sorted(min(cut, len(stream)) for cut in cuts) + [len(stream)]:
        got += reader.feed(stream[start:cut])
        start = cut
    assert got == packets and reader.pending == 0


@examples(150)
@given(stream=st.binary(max_size=300), decoder=st.sampled_from([SizePrefixDecoder, SlipDecoder]))
def test_a_tcp_stream_of_any_bytes_gives_frames_or_a_framing_error(stream, decoder):
    try:
        frames = decoder(max_packet=256).feed(stream)
    except FramingError as error:
        assert error.kind in ("oversize", "garbage") and str(error)
        return
    assert all(isinstance(frame, bytes) and 0 < len(frame) <= 256 for frame in frames)


# ---------------------------------------------------------------- scores

JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**15, 10**15),
                                     st.floats(allow_nan=False), st.text(max_size=12)),
                           lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                           max_leaves=8)
SCORE_ARGUMENTS = st.one_of(st.integers(-200, 200), st.floats(-1e6, 1e6), st.floats(), st.text(max_size=8),  # NaN: json writes it
                            st.sampled_from(["saw", "1/8", "warm-pad", "../warm-pad", "speech-voice", "/etc/passwd", "la la"]))
LINE = st.one_of(
    st.fixed_dictionaries({"time": st.one_of(st.floats(-10, 1e13), st.floats(), JSON_VALUES), "address": ADDRESSES,
                           "args": st.one_of(st.lists(SCORE_ARGUMENTS, max_size=3), JSON_VALUES)}).map(json.dumps),
    JSON_VALUES.map(json.dumps), st.text(max_size=40))


@examples(150)
@given(lines=st.lists(LINE, max_size=6))
def test_a_json_lines_score_loads_or_is_refused_in_a_sentence(lines, engine, folder):
    path = folder / "score.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    events = refused_clearly(lambda: load_score(path, engine))
    if events is not None:
        assert events and all(0 <= event.time_samples <= 86400 * 48000 for event in events)


def _midi_bytes(notes: list[tuple[int, int, int]], tempo_bpm: float) -> bytes:
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm))])
    midi.tracks.append(track)
    for note, velocity, ticks in notes:
        track.append(mido.Message("note_on", note=note, velocity=velocity, time=0))
        track.append(mido.Message("note_off", note=note, velocity=0, time=ticks))
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


@st.composite
def midi_files(draw):
    data = _midi_bytes(draw(st.lists(st.tuples(st.integers(0, 127), st.integers(0, 127), st.integers(0, 100_000)),
                                     min_size=1, max_size=5)), draw(st.floats(4, 1000)))
    return mutated(draw, data, b"MThd", 80)


@examples(150)
@given(data=midi_files())
def test_a_midi_score_loads_or_is_refused_in_a_sentence(data, engine, folder):
    path = folder / "score.mid"
    path.write_bytes(data)
    events = refused_clearly(lambda: load_score(path, engine))
    if events is not None:
        assert all(0 <= event.time_samples <= 86400 * 48000 for event in events)


@examples(10)
@given(lines=st.lists(LINE, min_size=1, max_size=4))
def test_synth_render_of_any_score_writes_a_whole_file_or_nothing(lines, folder):
    """The whole command: exit 0 with the WAV, or exit 2 with nothing in the folder."""
    from synth.cli import main

    for stale in folder.iterdir():
        stale.unlink()
    score = folder / "score.jsonl"
    score.write_text("\n".join(lines), encoding="utf-8")
    out = folder / "out.wav"
    errors = io.StringIO()
    from contextlib import redirect_stderr, redirect_stdout

    with redirect_stderr(errors), redirect_stdout(io.StringIO()):
        code = main(["render", "warm-pad", str(score), "-o", str(out), "--tail", "0.1", "--quiet"])
    if code == 0:
        assert soundfile.info(out).frames > 0 and leftovers(folder, {"score.jsonl", "out.wav"}) == []
    else:
        assert code == 2 and errors.getvalue().startswith("synth: error: ") and "Traceback" not in errors.getvalue()
        assert leftovers(folder, {"score.jsonl"}) == []


# ---------------------------------------------------------------- presets

PRESET_KEYS = ["format_version", "name", "description", "voice_limit", "chain", "osc", "midi", "plugin", "id",
               "settings", "files", "map", "cc", "waveform", "cutoff_hz", "gain_db", "model", "analysis", "uri"]
PRESET_VALUES = st.recursive(
    st.one_of(st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
              st.sampled_from(["oscillator", "filter", "additive", "decoder", "gain", "../../etc/passwd", "saw", ""]),
              st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(PRESET_KEYS), inner, max_size=4)),
    max_leaves=12)


@examples(150)
@given(data=st.dictionaries(st.sampled_from(PRESET_KEYS), PRESET_VALUES, max_size=6))
def test_a_preset_table_parses_or_lists_its_problems(data, folder):
    refused_clearly(lambda: parse_preset(data, str(folder / "p.toml")))


@examples(100)
@given(text=st.one_of(st.text(max_size=200),
                      st.just((Path(__file__).parent.parent / "presets" / "warm-pad.toml").read_text()).flatmap(
                          lambda toml: st.integers(0, len(toml)).map(lambda cut: toml[:cut]))))
def test_a_preset_file_loads_or_is_refused_in_a_sentence(text, folder):
    path = folder / "fuzzed.toml"
    path.write_text(text, encoding="utf-8")
    refused_clearly(lambda: load_preset(path))


# ---------------------------------------------------------------- analysis files

@pytest.fixture(scope="module")
def analysis_arrays(tmp_path_factory):
    """The keys and arrays of a real (small) analysis file."""
    from synth.dsp.analysis import analyze

    tone = 0.3 * np.sin(2 * np.pi * 330 * np.arange(9600) / 48000)
    path = tmp_path_factory.mktemp("analysis") / "tone.partials.npz"
    save_partials(analyze(tone.astype(np.float32), 48000), path)
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


@st.composite
def mutated_arrays(draw, arrays):
    out = dict(arrays)
    for key in draw(st.lists(st.sampled_from(sorted(arrays)), max_size=3, unique=True)):
        change = draw(st.sampled_from(["drop", "dtype", "shape", "nan", "negative", "scalar", "string"]))
        value = out[key]
        if change == "drop":
            del out[key]
        elif change == "dtype" and value.dtype.kind in "fiub":
            out[key] = value.astype(draw(st.sampled_from([np.float64, np.int32, np.bool_, np.int64])))
        elif change == "shape":
            out[key] = value.reshape(-1)[: draw(st.integers(0, max(value.size, 1)))]
        elif change == "nan" and value.dtype.kind == "f" and value.size:
            out[key] = value.copy()
            out[key].flat[draw(st.integers(0, value.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -1e30]))
        elif change == "negative":
            out[key] = -np.abs(value) - 1 if value.dtype.kind in "fi" else value
        elif change == "scalar":
            out[key] = np.array(draw(st.integers(-10**9, 10**9)))
        elif change == "string":
            out[key] = np.array(draw(st.text(max_size=8)))
    return out


@examples(100)
@given(data=st.data())
def test_an_analysis_file_loads_or_is_refused_in_a_sentence(data, analysis_arrays, folder):
    path = folder / "fuzzed.partials.npz"
    if data.draw(st.integers(0, 9)) == 0:
        path.write_bytes(data.draw(st.one_of(st.binary(max_size=100), st.binary(max_size=60).map(lambda b: b"PK\x03\x04" + b))))
    else:
        np.savez(path, **data.draw(mutated_arrays(analysis_arrays)))
    partials = refused_clearly(lambda: load_partials(path))
    if partials is not None:
        assert np.all(np.isfinite(partials.freq_hz)) and np.all(partials.amp >= 0)


# ---------------------------------------------------------------- model files

@pytest.fixture(scope="module")
def decoder_meta():
    return json.loads((MODELS / "gm-decoder.json").read_text())


@st.composite
def mutated_json(draw, value, depth=0):
    """`value` with some entries dropped, replaced by any JSON value, or recursed into."""
    if isinstance(value, dict) and value and depth < 3:
        out = dict(value)
        for key in draw(st.lists(st.sampled_from(sorted(out)), max_size=2, unique=True)):
            change = draw(st.sampled_from(["drop", "replace", "recurse"]))
            if change == "drop":
                del out[key]
            elif change == "replace":
                out[key] = draw(JSON_VALUES)
            else:
                out[key] = draw(mutated_json(out[key], depth + 1))
        return out
    if isinstance(value, list) and value and depth < 3 and draw(st.booleans()):
        return draw(st.lists(JSON_VALUES, max_size=4)) if draw(st.booleans()) else value[: draw(st.integers(0, len(value)))]
    return draw(JSON_VALUES) if draw(st.integers(0, 3)) == 0 else value


@examples(100)
@given(data=st.data())
def test_a_model_metadata_file_loads_or_is_refused_in_a_sentence(data, decoder_meta, folder):
    stem = folder / "model"
    (folder / "model.safetensors").write_bytes((MODELS / "gm-decoder.safetensors").read_bytes())
    text = json.dumps(data.draw(mutated_json(decoder_meta))) if data.draw(st.integers(0, 9)) else data.draw(st.text(max_size=30))
    (folder / "model.json").write_text(text, encoding="utf-8")
    refused_clearly(lambda: load_runtime(stem, voices=1))


@examples(60)
@given(data=st.data())
def test_a_timbre_model_loads_without_torch_or_is_refused_in_a_sentence(data, folder):
    from synth.dsp.timbre_encoder import load_timbre_encoder

    stem = folder / "timbre"
    (folder / "timbre.safetensors").write_bytes((MODELS / "gm-vae.safetensors").read_bytes())
    meta = json.loads((MODELS / "gm-vae.json").read_text())
    text = json.dumps(data.draw(mutated_json(meta))) if data.draw(st.integers(0, 9)) else data.draw(st.text(max_size=30))
    (folder / "timbre.json").write_text(text, encoding="utf-8")
    encoder = refused_clearly(lambda: load_timbre_encoder(stem))
    if encoder is not None:
        assert all(np.all(np.isfinite(v)) for v in encoder.encode(np.zeros((3, encoder.mel_bands), np.float32)))


@st.composite
def safetensors_bytes(draw):
    """A safetensors file: an 8-byte little-endian header size, a JSON header, the data; with a
    header of any JSON, sizes and offsets that lie, or a file cut short."""
    entry = st.fixed_dictionaries({"dtype": st.sampled_from(["F32", "F16", "I64", "BOOL", "F64", "X9", ""]),
                                   "shape": st.lists(st.integers(-2, 2**40), max_size=3),
                                   "data_offsets": st.lists(st.integers(-2, 2**40), max_size=3)})
    header = draw(st.one_of(st.dictionaries(st.sampled_from(["a", "b", "__metadata__"]), st.one_of(entry, JSON_VALUES), max_size=3),
                            JSON_VALUES))
    encoded = json.dumps(header).encode()
    size = draw(st.one_of(st.just(len(encoded)), st.integers(0, 2**64 - 1)))
    body = draw(st.binary(max_size=64))
    data = struct.pack("<Q", size) + encoded + body
    return data[:draw(st.integers(0, len(data)))] if draw(st.booleans()) else data


@examples(150)
@given(data=safetensors_bytes())
def test_a_weights_file_loads_or_is_refused_in_a_sentence(data, folder):
    path = folder / "fuzzed.safetensors"
    path.write_bytes(data)
    refused_clearly(lambda: read_weights_numpy(path))


# ---------------------------------------------------------------- audio files

def _wav_bytes(samples: np.ndarray, sample_rate: int, subtype: str) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, sample_rate, subtype=subtype, format="WAV")
    return buffer.getvalue()


@st.composite
def wav_files(draw):
    frames = draw(st.sampled_from([0, 1, 2, 17, 480]))
    samples = draw(st.sampled_from([np.zeros, np.ones]))(frames).astype(np.float32) * 0.5
    if frames and draw(st.booleans()):
        samples[draw(st.integers(0, frames - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 2.0]))
    data = _wav_bytes(samples, draw(st.sampled_from([1, 8000, 44100, 48000, 192000, 2**31 - 1])),
                      draw(st.sampled_from(["FLOAT", "PCM_16", "PCM_24", "DOUBLE"])))
    return mutated(draw, data, b"RIFF", 100, within=80)  # overwrites land in the header


@examples(200)
@given(data=wav_files())
def test_an_audio_file_reads_or_is_refused_in_a_sentence(data, folder):
    path = folder / "fuzzed.wav"
    path.write_bytes(data)
    read = refused_clearly(lambda: read_audio(path))
    if read is not None:
        audio, sample_rate = read
        assert audio.ndim == 2 and audio.shape[0] > 0 and np.all(np.isfinite(audio)) and sample_rate > 0
