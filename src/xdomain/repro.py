"""Reproducibility helpers shared by everything that trains a cached network (judges, DTN's f)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one CPU thread, then restore the caller's count.

    Float reductions differ between thread counts, so a network trained under another count
    comes out different; a content-hash cache cannot know the caller's count, so what it caches
    must not depend on which process trained it first.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
