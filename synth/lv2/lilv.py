"""The parts of lilv (Debian liblilv-0-0, the reference LV2 host library) this host calls, through
ctypes, and the C structs of the LV2 headers it fills in.

lilv reads the plugins' Turtle bundles; nothing here parses Turtle. lilv's `lilv_instance_run`,
`connect_port` and friends are inline functions in its header, so they are not in the shared
library: an instance's calls go through its LV2_Descriptor's function pointers (`Descriptor`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

from synth.errors import SynthError

LV2_CORE = "http://lv2plug.in/ns/lv2core#"
LV2_ATOM = "http://lv2plug.in/ns/ext/atom#"
LV2_UNITS = "http://lv2plug.in/ns/extensions/units#"
LV2_URID_MAP = "http://lv2plug.in/ns/ext/urid#map"
LV2_URID_UNMAP = "http://lv2plug.in/ns/ext/urid#unmap"
LV2_OPTIONS = "http://lv2plug.in/ns/ext/options#options"
LV2_BUF_SIZE = "http://lv2plug.in/ns/ext/buf-size#"
LV2_MIDI_EVENT = "http://lv2plug.in/ns/ext/midi#MidiEvent"
LV2_PORT_PROPS = "http://lv2plug.in/ns/ext/port-props#"
LV2_PARAMETERS = "http://lv2plug.in/ns/ext/parameters#"
LV2_WORKER_SCHEDULE = "http://lv2plug.in/ns/ext/worker#schedule"
LV2_WORKER_INTERFACE = "http://lv2plug.in/ns/ext/worker#interface"
LV2_STATE_INTERFACE = "http://lv2plug.in/ns/ext/state#interface"

_v, _p = ctypes.c_void_p, ctypes.c_char_p


class Feature(ctypes.Structure):
    _fields_ = [("URI", _p), ("data", _v)]


MAP_FUNCTION = ctypes.CFUNCTYPE(ctypes.c_uint32, _v, _p)
UNMAP_FUNCTION = ctypes.CFUNCTYPE(_v, _v, ctypes.c_uint32)  # returns a char* the host keeps


class UridMap(ctypes.Structure):
    _fields_ = [("handle", _v), ("map", MAP_FUNCTION)]


class UridUnmap(ctypes.Structure):
    _fields_ = [("handle", _v), ("unmap", UNMAP_FUNCTION)]


class Option(ctypes.Structure):
    """LV2_Options_Option; a list of them ends with one whose key is 0."""

    _fields_ = [("context", ctypes.c_uint32), ("subject", ctypes.c_uint32), ("key", ctypes.c_uint32),
                ("size", ctypes.c_uint32), ("type", ctypes.c_uint32), ("value", _v)]


SCHEDULE_FUNCTION = ctypes.CFUNCTYPE(ctypes.c_int, _v, ctypes.c_uint32, _v)  # LV2_Worker_Schedule.schedule_work
RESPOND_FUNCTION = ctypes.CFUNCTYPE(ctypes.c_int, _v, ctypes.c_uint32, _v)  # LV2_Worker_Respond_Function


class WorkerSchedule(ctypes.Structure):
    _fields_ = [("handle", _v), ("schedule_work", SCHEDULE_FUNCTION)]


class WorkerInterface(ctypes.Structure):
    _fields_ = [("work", ctypes.CFUNCTYPE(ctypes.c_int, _v, RESPOND_FUNCTION, _v, ctypes.c_uint32, _v)),
                ("work_response", ctypes.CFUNCTYPE(ctypes.c_int, _v, ctypes.c_uint32, _v)),
                ("end_run", ctypes.CFUNCTYPE(ctypes.c_int, _v))]


EXTENSION_DATA = ctypes.CFUNCTYPE(_v, _p)
CONNECT_PORT = ctypes.CFUNCTYPE(None, _v, ctypes.c_uint32, _v)
HANDLE_CALL = ctypes.CFUNCTYPE(None, _v)
RUN = ctypes.CFUNCTYPE(None, _v, ctypes.c_uint32)


class Descriptor(ctypes.Structure):
    _fields_ = [("URI", _p), ("instantiate", _v), ("connect_port", CONNECT_PORT), ("activate", HANDLE_CALL),
                ("run", RUN), ("deactivate", HANDLE_CALL), ("cleanup", HANDLE_CALL), ("extension_data", EXTENSION_DATA)]


class InstanceStruct(ctypes.Structure):
    """struct LilvInstanceImpl, as lilv.h lays it out for its inline functions."""

    _fields_ = [("descriptor", ctypes.POINTER(Descriptor)), ("handle", _v), ("pimpl", _v)]


_PROTOTYPES = {
    "lilv_world_new": (_v, []),
    "lilv_world_load_all": (None, [_v]),
    "lilv_world_free": (None, [_v]),
    "lilv_world_get_all_plugins": (_v, [_v]),
    "lilv_world_get": (_v, [_v, _v, _v, _v]),
    "lilv_new_uri": (_v, [_v, _p]),
    "lilv_node_free": (None, [_v]),
    "lilv_node_as_string": (_p, [_v]),
    "lilv_node_as_uri": (_p, [_v]),
    "lilv_node_as_float": (ctypes.c_float, [_v]),
    "lilv_node_is_float": (ctypes.c_bool, [_v]),
    "lilv_node_is_int": (ctypes.c_bool, [_v]),
    "lilv_node_as_int": (ctypes.c_int, [_v]),
    "lilv_nodes_begin": (_v, [_v]),
    "lilv_nodes_get": (_v, [_v, _v]),
    "lilv_nodes_next": (_v, [_v, _v]),
    "lilv_nodes_is_end": (ctypes.c_bool, [_v, _v]),
    "lilv_nodes_free": (None, [_v]),
    "lilv_nodes_get_first": (_v, [_v]),
    "lilv_plugins_begin": (_v, [_v]),
    "lilv_plugins_get": (_v, [_v, _v]),
    "lilv_plugins_next": (_v, [_v, _v]),
    "lilv_plugins_is_end": (ctypes.c_bool, [_v, _v]),
    "lilv_plugins_get_by_uri": (_v, [_v, _v]),
    "lilv_plugin_get_uri": (_v, [_v]),
    "lilv_plugin_get_name": (_v, [_v]),
    "lilv_plugin_get_class": (_v, [_v]),
    "lilv_plugin_class_get_label": (_v, [_v]),
    "lilv_plugin_class_get_uri": (_v, [_v]),
    "lilv_plugin_get_num_ports": (ctypes.c_uint32, [_v]),
    "lilv_plugin_get_port_by_index": (_v, [_v, ctypes.c_uint32]),
    "lilv_plugin_get_required_features": (_v, [_v]),
    "lilv_plugin_has_latency": (ctypes.c_bool, [_v]),
    "lilv_plugin_get_latency_port_index": (ctypes.c_uint32, [_v]),
    "lilv_plugin_instantiate": (ctypes.POINTER(InstanceStruct), [_v, ctypes.c_double, ctypes.POINTER(ctypes.POINTER(Feature))]),
    "lilv_instance_free": (None, [ctypes.POINTER(InstanceStruct)]),
    "lilv_port_is_a": (ctypes.c_bool, [_v, _v, _v]),
    "lilv_port_get_symbol": (_v, [_v, _v]),
    "lilv_port_get_name": (_v, [_v, _v]),
    "lilv_port_get_range": (None, [_v, _v, ctypes.POINTER(_v), ctypes.POINTER(_v), ctypes.POINTER(_v)]),
    "lilv_port_has_property": (ctypes.c_bool, [_v, _v, _v]),
    "lilv_port_get_value": (_v, [_v, _v, _v]),
    "lilv_port_get_scale_points": (_v, [_v, _v]),
    "lilv_scale_points_begin": (_v, [_v]),
    "lilv_scale_points_get": (_v, [_v, _v]),
    "lilv_scale_points_next": (_v, [_v, _v]),
    "lilv_scale_points_is_end": (ctypes.c_bool, [_v, _v]),
    "lilv_scale_points_free": (None, [_v]),
    "lilv_scale_point_get_label": (_v, [_v]),
    "lilv_scale_point_get_value": (_v, [_v]),
    "lilv_state_new_from_instance": (_v, [_v, ctypes.POINTER(InstanceStruct), _v, _p, _p, _p, _p, _v, _v,
                                          ctypes.c_uint32, ctypes.POINTER(ctypes.POINTER(Feature))]),
    "lilv_state_new_from_string": (_v, [_v, _v, _p]),
    "lilv_state_to_string": (_v, [_v, _v, _v, _v, _p, _p]),
    "lilv_state_restore": (None, [_v, ctypes.POINTER(InstanceStruct), _v, _v, ctypes.c_uint32,
                                  ctypes.POINTER(ctypes.POINTER(Feature))]),
    "lilv_state_free": (None, [_v]),
    "lilv_state_get_plugin_uri": (_v, [_v]),
    "lilv_free": (None, [_v]),
}


@cache
def library() -> ctypes.CDLL:
    """liblilv with the prototypes above; SynthError naming the Debian package when it is missing."""
    path = ctypes.util.find_library("lilv-0")
    if path is None:
        raise SynthError("LV2 hosting needs lilv; install the Debian package liblilv-0-0")
    lib = ctypes.CDLL(path)
    for name, (restype, argtypes) in _PROTOTYPES.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib


def text(node: int | None) -> str:
    """A node's string form ('' for none)."""
    return library().lilv_node_as_string(node).decode() if node else ""


def iterate(collection: int | None, kind: str):
    """The items of a lilv collection (kind: 'nodes', 'plugins' or 'scale_points')."""
    if not collection:
        return
    lib = library()
    begin, get, next_, is_end = (getattr(lib, f"lilv_{kind}_{verb}") for verb in ("begin", "get", "next", "is_end"))
    iterator = begin(collection)
    while not is_end(collection, iterator):
        yield get(collection, iterator)
        iterator = next_(collection, iterator)
