"""OSC 1.0 on the wire: packets -> (timetag, address, arguments), and address pattern matching.

Messages are parsed by python-osc; bundles are walked here, so nesting depth is bounded (a packet
of thousands of nested bundles must be refused, not recurse until Python gives up) and timetags
are read exactly. Patterns: `?` one character, `*` any run, `[abc]`, `[a-z]`, `[!a-z]`, `{foo,bar}`;
none of them crosses a '/'.
"""

from __future__ import annotations

import functools
import re
import struct

from pythonosc.osc_message import OscMessage

from synth.errors import SynthError

BUNDLE_HEADER = b"#bundle\x00"
MAX_BUNDLE_DEPTH = 8
NTP_TO_UNIX_S = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)
IMMEDIATE = None  # timetag of a plain message, or of a bundle marked "immediately"
SUPPORTED_TYPE_TAGS = "ifsbhdtTFNIcrm[]"  # OSC 1.0 plus the common 1.1 extensions python-osc reads


def ntp_to_unix(timetag: int) -> float | None:
    """A 64-bit OSC timetag -> Unix time in seconds (None for 'immediately', which is 1)."""
    if timetag == 1:
        return IMMEDIATE
    return (timetag >> 32) - NTP_TO_UNIX_S + (timetag & 0xFFFFFFFF) / 4294967296.0


def unix_to_ntp(time_s: float) -> int:
    """Unix time in seconds -> 64-bit OSC timetag."""
    seconds = int(time_s)
    return ((seconds + NTP_TO_UNIX_S) << 32) | int((time_s - seconds) * 4294967296.0)


def parse_packet(packet: bytes) -> list[tuple[float | None, str, list]]:
    """Every message in a packet as (Unix time or None, address, arguments), in packet order.

    SynthError for anything malformed: bad padding or type tags, truncated bundles, nesting deeper
    than MAX_BUNDLE_DEPTH, an address not starting with '/'.
    """
    messages: list[tuple[float | None, str, list]] = []
    _walk(packet, None, 0, messages)
    return messages


def _walk(packet: bytes, timetag: float | None, depth: int, messages: list) -> None:
    if packet.startswith(BUNDLE_HEADER):
        if depth >= MAX_BUNDLE_DEPTH:
            raise SynthError(f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
        if len(packet) < 16:
            raise SynthError("truncated bundle header")
        bundle_time = ntp_to_unix(struct.unpack(">Q", packet[8:16])[0])
        index = 16
        while index < len(packet):
            if index + 4 > len(packet):
                raise SynthError("truncated bundle element size")
            (size,) = struct.unpack(">i", packet[index : index + 4])
            index += 4
            if size <= 0 or size % 4 or index + size > len(packet):
                raise SynthError(f"bundle element of size {size} does not fit the packet")
            _walk(packet[index : index + size], bundle_time, depth + 1, messages)
            index += size
        return
    if not packet.startswith(b"/"):
        raise SynthError("not an OSC message or bundle")
    _check_type_tags(packet)
    try:
        message = OscMessage(packet)
        arguments = list(message.params)
    except Exception as error:  # python-osc raises ParseError, IndexError, struct.error... on garbage
        raise SynthError(f"malformed message: {error}") from None
    messages.append((timetag, message.address, arguments))


def _check_type_tags(packet: bytes) -> None:
    """Refuse type tags python-osc would skip with a logged warning (a flood would flood the log)."""
    end = packet.find(b"\x00")
    if end < 0:
        raise SynthError("message address is not terminated")
    tags_start = (end // 4 + 1) * 4
    if tags_start >= len(packet) or packet[tags_start:tags_start + 1] != b",":
        return  # no type tag string: a message without arguments
    tags_end = packet.find(b"\x00", tags_start)
    if tags_end < 0:
        raise SynthError("type tag string is not terminated")
    unknown = set(packet[tags_start + 1 : tags_end].decode("latin-1")) - set(SUPPORTED_TYPE_TAGS)
    if unknown:
        raise SynthError(f"unsupported type tag {sorted(unknown)[0]!r}")


def is_pattern(address: str) -> bool:
    return any(c in address for c in "*?[]{}")


@functools.lru_cache(maxsize=1024)
def pattern_regex(pattern: str) -> re.Pattern:
    """The compiled regular expression for an OSC address pattern (SynthError if malformed)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise SynthError(f"{pattern}: '[' without ']'")
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            escaped = "".join("-" if ch == "-" and 0 < k < len(body) - 1 else re.escape(ch) for k, ch in enumerate(body))
            out.append(f"[{'^' if negate else ''}{escaped}{'/' if negate else ''}]")
            i = end
        elif c == "{":
            end = pattern.find("}", i + 1)
            if end < 0:
                raise SynthError(f"{pattern}: '{{' without '}}'")
            out.append("(?:" + "|".join(re.escape(part) for part in pattern[i + 1 : end].split(",")) + ")")
            i = end
        elif c in "]}":
            raise SynthError(f"{pattern}: unmatched '{c}'")
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.compile("".join(out) + r"\Z")
    except re.error as error:
        raise SynthError(f"{pattern}: bad pattern ({error})") from None


def match_addresses(pattern: str, addresses) -> list[str]:
    """The addresses (in their given order) that an OSC pattern matches."""
    regex = pattern_regex(pattern)
    return [address for address in addresses if regex.match(address)]
