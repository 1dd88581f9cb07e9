"""User-facing errors: one line that names the file, the field and the fix.

The CLI prints `error: <message>` for any `XDomainError` and exits with status 2; any other
exception is a bug and is reported as one (its traceback with `--debug` or XDOMAIN_DEBUG=1).
Messages echo values through `short`, so a 50 MB string in a file never floods the terminal.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence


class XDomainError(Exception):
    """A problem with the user's input (config, data, checkpoint), not a bug."""


class ConfigError(XDomainError):
    """A config key, value or type is wrong."""


class DataError(XDomainError):
    """A data source, folder or file cannot be used."""


class CheckpointError(XDomainError):
    """A checkpoint is missing, truncated or not one of ours."""


class NonFiniteLossError(XDomainError):
    """A loss became NaN or Inf; the run stops and the last good checkpoint is kept."""


def clip(text: str, limit: int = 60) -> str:
    """`text` on one line, at most `limit` characters (the middle elided)."""
    if not text.isprintable():
        text = repr(text)[1:-1]
    if len(text) <= limit:
        return text
    head = (limit - 3) // 2
    return f"{text[:head]}...{text[len(text) - (limit - 3 - head) :]}"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 60, 60


def short(value: object, limit: int = 60) -> str:
    """The repr of a user's value for a message: one line, at most `limit` characters (an error
    echoes what it got, never 50 MB of it; nested containers are elided by `reprlib`)."""
    try:
        text = _REPR.repr(value)
    except ValueError:  # e.g. an int too long to print
        text = f"<{type(value).__name__}>"
    if isinstance(value, str) and len(value) > limit:  # say how much was cut
        tail = f" ({len(value)} chars)"
        return clip(text, max(20, limit - len(tail))) + tail
    return clip(text, limit)


LISTING_LIMIT = 150  # characters of a "valid: ..." listing in an error (100 class folders)


def listing(items: Sequence[str], sep: str = ", ", limit: int = LISTING_LIMIT) -> str:
    """`items` joined by `sep`, cut to about `limit` characters with the count of the rest, so
    an error that lists what exists stays one short line however many values there are."""
    out: list[str] = []
    for i, item in enumerate(items):
        if out and len(sep.join([*out, item])) > limit:
            return f"{sep.join(out)}{sep}... ({len(items) - i} more)"
        out.append(item)
    return sep.join(out)


def one_line(text: str, limit: int = 600) -> str:
    """Any message as the one line a user sees: whitespace folded, cut at `limit`."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 20] + " ... (cut)"
