"""Control input: OSC-style addresses and MIDI messages, both turned into engine Events."""
