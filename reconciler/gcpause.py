"""Pausing the cyclic garbage collector while a command builds many long-lived objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Run the block with cyclic garbage collection off, then restore the previous setting.

    Importing the spec models and loading a project allocate many objects
    that live on and form few reference cycles, so collections during them
    cost time and free little. Reference counting still frees everything
    else at once; cycles made inside the block are collected after it.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
