"""User-facing errors: one line that names the file, the field and the fix.

The CLI prints `error: <message>` for any `XDomainError` and exits with status 2; everything else
is a bug and keeps its traceback.
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
