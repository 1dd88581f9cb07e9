"""The translate options a method declares once: their command-line flags (`xdomain translate`),
their types and bounds, and later the web page's controls are rendered from the same list.

A method lists its `Option`s in `Method.cli_options` and turns the values a user gave into
`translate` arguments in `Method.translate_kwargs`. The CLI knows no method: it adds every
declared flag, then refuses one the loaded method does not declare.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xdomain.limits import MAX_SEED, MAX_TILES


@dataclass(frozen=True)
class Option:
    """One translate option: `--flag` (argparse's `dest` is `dest`), its parser and help."""

    flag: str
    dest: str
    help: str
    type: Callable[[str], Any] | None = None  # None with `switch`: a store_true flag
    switch: bool = False
    metavar: str | None = None
    default: Any = None

    def add_to(self, parser: argparse.ArgumentParser, owners: str = "") -> None:
        """Add the flag; `owners` (the methods that declare it) ends its help."""
        text = f"{self.help} ({owners})" if owners else self.help
        if self.switch:
            parser.add_argument(self.flag, dest=self.dest, action="store_true", help=text)
            return
        parser.add_argument(
            self.flag,
            dest=self.dest,
            type=self.type,
            metavar=self.metavar,
            default=self.default,
            help=text,
        )

    def given(self, value: Any) -> bool:
        """Did the user set this option (a value other than its default)?"""
        return bool(value) if self.switch else value is not None and value != self.default


@dataclass(frozen=True)
class Context:
    """What `translate_kwargs` may need beyond the values: the number of inputs and a reader of
    reference images (a path -> a (C, H, W) tensor in [-1, 1] at the model's size, read with the
    command's own preprocessing and pixel bound)."""

    n_inputs: int
    read_reference: Callable[[str, str], Any]  # (path, the option's flag) -> tensor


# ----------------------------------------------------------------------------- value parsers


def whole(text: str, lo: int, hi: int, why: str) -> int:
    """A whole number in [lo, hi]; above hi, `why` says what the bound is."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < lo:
        raise argparse.ArgumentTypeError(f"{value} must be >= {lo}")
    if value > hi:
        raise argparse.ArgumentTypeError(f"{value}: {why}")
    return value


def tiles(text: str) -> int:
    """Outputs per input: they form one strip image, at most `limits.MAX_TILES` tiles wide."""
    why = f"at most {MAX_TILES} outputs per input (they form one strip image)"
    return whole(text, 1, MAX_TILES, why)


def strip_steps(text: str) -> int:
    value = tiles(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"{value}: a strip needs at least 2 steps")
    return value


def seed(text: str) -> int:
    return whole(text, 0, MAX_SEED, "a seed is 0 .. 2**63 - 1")


def unit_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is outside [0, 1]")
    return value


REVERSE = Option(
    "--reverse",
    "reverse",
    "translate b -> a (methods that learn both directions)",
    switch=True,
)
