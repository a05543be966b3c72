"""A running LV2 plugin instance and the host features it is given.

Features provided: urid:map and urid:unmap (one table per process, as URIDs must agree between
plugins), options:options (sample rate and block lengths), buf-size:boundedBlockLength and the
worker (synth.lv2.worker). A plugin that requires any other feature (state map paths, ...) is
refused by the feature's name.

Instantiate, connect and activate happen off the audio thread; `run(n)` and the atom-buffer
resets are the only calls made on it, and they allocate nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import weakref
from functools import cache

import numpy as np

from synth.errors import SynthError
from synth.lv2.catalog import PluginDescription, plugin_handle, world
from synth.lv2.worker import Worker
from synth.lv2.lilv import (LV2_ATOM, LV2_BUF_SIZE, LV2_CORE, LV2_MIDI_EVENT, LV2_OPTIONS, LV2_PARAMETERS,
                            LV2_STATE_INTERFACE, LV2_URID_MAP, LV2_URID_UNMAP, LV2_WORKER_SCHEDULE, MAP_FUNCTION,
                            UNMAP_FUNCTION, Feature, Option, UridMap, UridUnmap, library)
from synth.lv2.lilv import text as text_of

BOUNDED_BLOCK_LENGTH = LV2_BUF_SIZE + "boundedBlockLength"
# features a plugin may require of this host (the last two promise nothing the host must do)
SUPPORTED_FEATURES = frozenset({LV2_URID_MAP, LV2_URID_UNMAP, LV2_OPTIONS, BOUNDED_BLOCK_LENGTH, LV2_WORKER_SCHEDULE,
                                LV2_CORE + "hardRTCapable", LV2_CORE + "inPlaceBroken", LV2_CORE + "isLive"})
ATOM_CAPACITY_BYTES = 8192  # each atom port's sequence buffer
STATE_URI = "urn:synth-host:state"  # the subject lilv writes a saved state under
FLOAT_ENVIRONMENT_BYTES = 64  # room for the C library's fenv_t (32 bytes on x86-64: x87 state and MXCSR)
RAND_SEED = 1  # what C's rand() starts from in a new process (srand(1), the C standard's default)
_C_LIBRARY = ctypes.CDLL(None)
MIDI_EVENT_BYTES = 24  # an atom event: frames (8 bytes), atom header (8), 3 MIDI bytes padded to 8



@contextlib.contextmanager
def _float_environment_kept():
    """Put the calling thread's floating-point environment back as it was after the block: some
    plugin libraries are linked with -ffast-math, whose start-up code (run when the library is
    loaded) turns on flush-to-zero and denormals-are-zero for the thread that loads it, which would
    change every later render of the process (and tests of exact float behaviour)."""
    saved = ctypes.create_string_buffer(FLOAT_ENVIRONMENT_BYTES)
    _C_LIBRARY.fegetenv(saved)
    try:
        yield
    finally:
        _C_LIBRARY.fesetenv(saved)

class UridTable:
    """URI <-> URID for every plugin in this process (URIDs start at 1; 0 means none)."""

    def __init__(self):
        self.ids: dict[str, int] = {}
        self._lock = threading.Lock()  # plugins may map from a worker thread while another instantiates
        self.uris: list[ctypes.Array] = []  # C strings that live as long as the process (unmap hands them out)
        self._map = MAP_FUNCTION(lambda _handle, uri: self.map(uri.decode()))
        self._unmap = UNMAP_FUNCTION(self._unmap_urid)
        self.map_struct = UridMap(None, self._map)
        self.unmap_struct = UridUnmap(None, self._unmap)

    def map(self, uri: str) -> int:
        with self._lock:
            if uri not in self.ids:
                self.uris.append(ctypes.create_string_buffer(uri.encode()))
                self.ids[uri] = len(self.uris)
            return self.ids[uri]

    def _unmap_urid(self, _handle, urid: int) -> int | None:
        return ctypes.addressof(self.uris[urid - 1]) if 0 < urid <= len(self.uris) else None


@cache
def urids() -> UridTable:
    return UridTable()


class Instance:
    """One instance of an LV2 plugin at a sample rate (Hz) and a largest block (frames)."""

    def __init__(self, description: PluginDescription, sample_rate: float, max_block: int):
        missing = [f for f in description.required_features if f not in SUPPORTED_FEATURES]
        if missing:
            raise SynthError(f"LV2 plugin {description.uri} needs host features this host does not provide: "
                             f"{', '.join(missing)}")
        table = urids()
        self.worker = Worker()
        self._sample_rate = ctypes.c_float(sample_rate)
        self._lengths = (ctypes.c_int32 * 3)(0, max_block, max_block)  # min, max, nominal
        int_type, float_type = table.map(LV2_ATOM + "Int"), table.map(LV2_ATOM + "Float")
        options = [(table.map(LV2_PARAMETERS + "sampleRate"), 4, float_type, ctypes.addressof(self._sample_rate)),
                   (table.map(LV2_BUF_SIZE + "minBlockLength"), 4, int_type, ctypes.addressof(self._lengths)),
                   (table.map(LV2_BUF_SIZE + "maxBlockLength"), 4, int_type, ctypes.addressof(self._lengths) + 4),
                   (table.map(LV2_BUF_SIZE + "nominalBlockLength"), 4, int_type, ctypes.addressof(self._lengths) + 8)]
        self._options = (Option * (len(options) + 1))(*(Option(0, 0, key, size, kind, value)
                                                        for key, size, kind, value in options))
        features = [Feature(LV2_URID_MAP.encode(), ctypes.cast(ctypes.pointer(table.map_struct), ctypes.c_void_p)),
                    Feature(LV2_URID_UNMAP.encode(), ctypes.cast(ctypes.pointer(table.unmap_struct), ctypes.c_void_p)),
                    Feature(LV2_OPTIONS.encode(), ctypes.cast(self._options, ctypes.c_void_p)),
                    Feature(BOUNDED_BLOCK_LENGTH.encode(), None),
                    Feature(LV2_WORKER_SCHEDULE.encode(), ctypes.cast(ctypes.pointer(self.worker.feature_data), ctypes.c_void_p))]
        self._features = features
        self._feature_list = (ctypes.POINTER(Feature) * (len(features) + 1))(*(ctypes.pointer(f) for f in features))
        lib = library()
        with _float_environment_kept():
            pointer = lib.lilv_plugin_instantiate(plugin_handle(description.uri), float(sample_rate), self._feature_list)
        if not pointer:
            raise SynthError(f"LV2 plugin {description.uri} could not be instantiated at {sample_rate:g} Hz")
        self.uri = description.uri
        self._pointer = pointer
        descriptor = pointer.contents.descriptor.contents
        self._handle = pointer.contents.handle
        self._connect, self._run = descriptor.connect_port, descriptor.run
        self.worker.attach(self._handle, descriptor.extension_data)
        self.has_state = bool(descriptor.extension_data and descriptor.extension_data(LV2_STATE_INTERFACE.encode()))
        self._activate = descriptor.activate if descriptor.activate else None
        self._deactivate = descriptor.deactivate if descriptor.deactivate else None
        self._state = {"active": False}  # shared with the finalizer, which must not hold self
        self._finalizer = weakref.finalize(self, _free, pointer, self._deactivate, self._handle, self._state,
                                           self.worker)
        self.midi_type = table.map(LV2_MIDI_EVENT)
        self.sequence_type = table.map(LV2_ATOM + "Sequence")
        self.chunk_type = table.map(LV2_ATOM + "Chunk")

    def save_state(self) -> str:
        """The plugin's state (lv2:state, what its ports do not hold) as lilv's Turtle text; '' for
        a plugin without state. Not on the audio thread."""
        if not self.has_state:
            return ""
        lib, table = library(), urids()
        map_pointer = ctypes.cast(ctypes.pointer(table.map_struct), ctypes.c_void_p)
        state = lib.lilv_state_new_from_instance(plugin_handle(self.uri), self._pointer, map_pointer,
                                                 None, None, None, None, None, None, 0, self._feature_list)
        if not state:
            return ""
        unmap_pointer = ctypes.cast(ctypes.pointer(table.unmap_struct), ctypes.c_void_p)
        text_pointer = lib.lilv_state_to_string(world().world, map_pointer, unmap_pointer, state,
                                                STATE_URI.encode(), None)
        lib.lilv_state_free(state)
        text = ctypes.string_at(text_pointer).decode() if text_pointer else ""
        lib.lilv_free(text_pointer)
        return text

    @staticmethod
    def check_state(text: str, plugin_uri: str, where: str) -> None:
        """SynthError naming `where` unless lilv can read `text` as a state saved from `plugin_uri`."""
        lib, table = library(), urids()
        state = lib.lilv_state_new_from_string(world().world, ctypes.cast(ctypes.pointer(table.map_struct),
                                                                          ctypes.c_void_p), text.encode())
        if not state:
            raise SynthError(f"{where}: not an LV2 state lilv can read (it is the Turtle text a saved preset holds)")
        saved_from = text_of(lib.lilv_state_get_plugin_uri(state))
        lib.lilv_state_free(state)
        if saved_from != plugin_uri:
            raise SynthError(f"{where}: the state was saved from {saved_from or 'no plugin'}, not {plugin_uri}")

    def restore_state(self, text: str, where: str) -> None:
        """Restore state saved by `save_state` (SynthError naming `where` when lilv cannot read it)."""
        lib, table = library(), urids()
        map_pointer = ctypes.cast(ctypes.pointer(table.map_struct), ctypes.c_void_p)
        state = lib.lilv_state_new_from_string(world().world, map_pointer, text.encode())
        if not state:
            raise SynthError(f"{where}: not an LV2 state lilv can read (save one with the plugin's own state)")
        lib.lilv_state_restore(state, self._pointer, None, None, 0, self._feature_list)
        lib.lilv_state_free(state)

    def connect(self, port: int, buffer: np.ndarray) -> None:
        """Connect port `port` to `buffer` (kept alive by the caller while connected)."""
        self._connect(self._handle, port, buffer.ctypes.data)

    def activate(self) -> None:
        """Start (or restart, clearing its state) the instance; not on the audio thread. Work the
        worker still has is finished first, and responses for the old run are dropped. C's rand()
        is seeded with RAND_SEED (its seed in a new process)."""
        self.worker.drain()
        if self._state["active"]:
            self.deactivate()
        # some plugins draw from the C library's one rand() sequence (Dragonfly's reverbs modulate
        # with it): seeded afresh at each start, every render of a preset is the same, not only
        # the first one a process makes
        _C_LIBRARY.srand(RAND_SEED)
        if self._activate:
            self._activate(self._handle)
        self._state["active"] = True

    def deactivate(self) -> None:
        if self._state["active"] and self._deactivate:
            self._deactivate(self._handle)
        self._state["active"] = False

    def run(self, n: int) -> None:
        """Process n frames (audio thread): worker responses first, the worker's end of run after."""
        worker = self.worker
        if worker.attached:
            worker.deliver()
            self._run(self._handle, n)
            worker.end_run()
        else:
            self._run(self._handle, n)


def _free(pointer, deactivate, handle, state, worker) -> None:
    worker.close()
    if state["active"] and deactivate:
        deactivate(handle)
    library().lilv_instance_free(pointer)


class AtomPort:
    """One atom port's sequence buffer: 8-byte aligned words, and a 32-bit view of its header made
    once (so that resetting it before each run allocates nothing)."""

    def __init__(self, instance: Instance, port: int):
        self.words = np.zeros(ATOM_CAPACITY_BYTES // 8, dtype=np.uint64)
        self.header = self.words.view(np.uint32)
        self.bytes = self.words.view(np.uint8)
        self.sequence_type, self.chunk_type = instance.sequence_type, instance.chunk_type
        instance.connect(port, self.words)

    def clear_input(self) -> None:
        """An empty atom:Sequence (header only), for an input port."""
        header = self.header
        header[0], header[1], header[2], header[3] = 8, self.sequence_type, 0, 0

    def append_midi(self, status: int, data1: int, data2: int, midi_type: int) -> bool:
        """Add a 3-byte MIDI event at frame 0 of the next run to an input sequence; False (nothing
        added) when the buffer is full."""
        header = self.header
        offset = 8 + int(header[0])  # bytes: the atom header, then the sequence body so far
        if offset + MIDI_EVENT_BYTES > ATOM_CAPACITY_BYTES:
            return False
        word = offset // 4
        header[word], header[word + 1], header[word + 2], header[word + 3] = 0, 0, 3, midi_type  # frames, size, type
        data = self.bytes
        data[offset + 16], data[offset + 17], data[offset + 18] = status, data1, data2
        header[0] += MIDI_EVENT_BYTES
        return True

    def offer_output(self) -> None:
        """The whole buffer offered to the plugin (an atom:Chunk of its capacity), for an output port."""
        header = self.header
        header[0], header[1] = ATOM_CAPACITY_BYTES - 8, self.chunk_type
