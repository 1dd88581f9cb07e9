"""Placeholder: being written."""

from dataclasses import dataclass

from xdomain.methods.base import Method


class DTN(Method):
    @dataclass
    class Config:
        lr: float = 2e-4
