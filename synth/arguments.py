"""Command-line value types: every number a flag takes is range-checked here, when the command line
is parsed, and every output path's folder must exist.

argparse turns a refusal into `synth <command>: error: argument --flag: <sentence>` and exit code 2,
before anything runs or is written. Each sentence gives the accepted range with its unit and the
value given.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def number(low: float, high: float, unit: str = "", integer: bool = False):
    """An argparse type: a number (an integer when `integer`) in low..high, inclusive. NaN and the
    infinities are refused whatever the range."""
    kind = "an integer" if integer else "a number"
    ends = f"{int(low)}..{int(high)}" if integer else f"{low:g}..{high:g}"
    accepted = f"{kind} in {ends}{' ' + unit if unit else ''}"

    def parse(text: str) -> float | int:
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}")
        return value

    parse.__name__ = kind  # argparse names the type in some messages
    return parse


def output_path(text: str) -> str:
    """An argparse type: a file to write, in a folder that exists (no folder is made for it)."""
    path = Path(text).expanduser()
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder {str(path.parent)!r} does not exist (make it first), for {text!r}")
    return str(path)
