import struct

import pytest
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from synth.control.osc_wire import MAX_BUNDLE_DEPTH, match_addresses, ntp_to_unix, parse_packet, unix_to_ntp
from synth.errors import SynthError

ADDRESSES = ["/param/osc/cutoff_hz", "/param/osc/resonance", "/param/delay/mix", "/note/on", "/notes/off"]


def message(address, *args):
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def bundle(unix_time, *contents):
    raw = b"#bundle\x00" + struct.pack(">Q", unix_to_ntp(unix_time) if unix_time else 1)
    return raw + b"".join(struct.pack(">i", len(c)) + c for c in contents)


@pytest.mark.parametrize("pattern, expected", [
    ("/param/*/cutoff_hz", ["/param/osc/cutoff_hz"]),
    ("/param/osc/*", ["/param/osc/cutoff_hz", "/param/osc/resonance"]),
    ("/param/{osc,delay}/[cm]*", ["/param/osc/cutoff_hz", "/param/delay/mix"]),
    ("/note?/off", ["/notes/off"]),
    ("/param/[!o]*/*", ["/param/delay/mix"]),
    ("/param/osc/[a-d]utoff_hz", ["/param/osc/cutoff_hz"]),
    ("/*", []),  # '*' never crosses a '/'
    ("/*/*/*", ["/param/osc/cutoff_hz", "/param/osc/resonance", "/param/delay/mix"]),
])
def test_osc_1_0_patterns(pattern, expected):
    assert match_addresses(pattern, ADDRESSES) == expected


@pytest.mark.parametrize("pattern", ["/param/[osc", "/param/{a,b", "/param/osc]"])
def test_malformed_patterns_are_errors(pattern):
    with pytest.raises(SynthError):
        match_addresses(pattern, ADDRESSES)


def test_timetags_round_trip_to_the_sample():
    t = 1_790_000_000.123456
    assert ntp_to_unix(unix_to_ntp(t)) == pytest.approx(t, abs=1e-9)
    assert ntp_to_unix(1) is None


def test_messages_and_nested_bundles_keep_their_timetags():
    packet = bundle(1000.5, message("/note/on", 60, 100), bundle(1001.25, message("/note/off", 60)))
    assert parse_packet(packet) == [(1000.5, "/note/on", [60, 100]), (1001.25, "/note/off", [60])]
    assert parse_packet(message("/notes/off")) == [(None, "/notes/off", [])]
    built = OscBundleBuilder(1).build()  # python-osc's own "immediately" bundle
    assert parse_packet(built.dgram) == []


@pytest.mark.parametrize("packet", [
    b"", b"\x00\x01\x02garbage", b"/note/on\x00", b"/note/on\x00\x00\x00\x00,ii\x00\x00\x00\x00\x3c",
    b"#bundle\x00\x00\x00", bundle(1.0, b"/x\x00\x00")[:-2], b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", 1000),
    b"/note/on\x00\x00\x00\x00,zz\x00",
])
def test_garbage_and_truncated_packets_are_refused(packet):
    with pytest.raises(SynthError):
        parse_packet(packet)


def test_deep_nesting_is_refused_not_recursed():
    packet = message("/notes/off")
    for _ in range(2000):
        packet = bundle(None, packet)
    with pytest.raises(SynthError, match=f"nested deeper than {MAX_BUNDLE_DEPTH}"):
        parse_packet(packet)
