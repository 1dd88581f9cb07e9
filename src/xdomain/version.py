"""The package version, in a module of its own: checkpoints record it, and a module low in the
layers can read it without importing the package's API."""

__version__ = "0.1.0"
