"""User-facing errors: one line that names the file, the field and the fix.

The CLI prints `error: <message>` for any `XDomainError` and exits with status 2; any other
exception is a bug and is reported as one (its traceback with `--debug` or XDOMAIN_DEBUG=1).
Messages echo values through `short`, so a 50 MB string in a file never floods the terminal.
"""

from __future__ import annotations


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


def short(value: object, limit: int = 60) -> str:
    """repr(value) cut to `limit` characters: an error echoes what it got, never 50 MB of it."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 15]}... ({len(text)} chars)"
