"""xdomain: one toolkit for cross-domain image translation."""

__version__ = "0.1.0"
