"""Pause Python's cyclic garbage collector while building a plan or its stage graph.

A 100,000-run plan holds ~10^6 long-lived objects (configs, inputs, tasks), all acyclic; every
generation-2 collection walks all of them again, which made `ftlab plan` superlinear: building the
100,000-run graph took 10.2 s CPU with the collector on and 5.8 s with it paused, load_plan 5.1 s
and 3.6 s (bench/plan_scale's grid spec, shared machine). Garbage made meanwhile is collected as
soon as the collector runs again.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def gc_paused():
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
