"""Audio files and (later) the sounddevice stream wrapper."""
