"""The realtime path in two planes (scsynth and its language client are split the same way).

- The audio plane (`synth.plane.audio_process`) is a process of its own, spawned, that owns the
  PortAudio stream and the Engine. While it streams, its only Python work is the callback: the
  main thread waits in a system call for commands, so the callback never waits for the
  interpreter lock.
- The control plane (`synth.host.Host`, used by `synth play` / `synth serve`) runs OSC, MIDI,
  speech rendering, session recording, the status line and preset loading.
- Between them, shared memory only (`synth.plane.shared`): a lock-free single-producer /
  single-consumer ring of fixed-size event records (`synth.plane.records`), a second ring of
  applied events back for recording, a payload pool for large data (utterance audio, lyric
  tables, `synth.plane.payloads`), the counters /status reports, each parameter's current
  value, the clock anchor that maps bundle timetags to samples, and the captured take.
A pipe carries the life cycle only (prepared, start, load a preset, stop), never events.
"""
