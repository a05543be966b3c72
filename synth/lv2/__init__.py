"""LV2 plugins on lilv: the installed catalogue (`catalog`), running instances (`instance`), and the
ctypes binding both use (`lilv`). The chain plugin that hosts one is synth.plugins.lv2."""
