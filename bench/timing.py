"""The one timing loop the benchmark scripts share."""

from __future__ import annotations

import time
from collections.abc import Callable


def seconds_per_call(fn: Callable[[], object], seconds: float, warm_up: bool = True) -> float:
    """Mean seconds per call of ``fn`` over at least one call and at least ``seconds`` of calls, after
    one untimed warm-up call unless ``warm_up`` is False (for work with nothing to warm up)."""
    if warm_up:
        fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        if time.perf_counter() - start >= seconds:
            return (time.perf_counter() - start) / calls
