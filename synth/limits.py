"""The stream formats the engine runs at, in a module light enough for the command line to read
before it imports the engine."""

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192000  # Hz
MIN_BLOCK, MAX_BLOCK = 1, 8192  # frames per block
MAX_TAIL_S = 600.0  # seconds an offline render may run on after its last event
