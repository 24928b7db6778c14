"""ModelPool: no instance is ever used by two callers at once; instances only as needed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from imgpipe.labels.pool import ModelPool


class NotThreadSafe:
    """Records whether two callers were ever inside it at once (what dlib's detector cannot
    survive)."""

    def __init__(self) -> None:
        self.inside = 0
        self.overlapped = False
        self.calls = 0
        self._guard = threading.Lock()

    def __call__(self) -> None:
        with self._guard:
            self.inside += 1
            self.overlapped |= self.inside > 1
        time.sleep(0.002)
        with self._guard:
            self.inside -= 1
            self.calls += 1


def _hammer(pool: ModelPool[NotThreadSafe], threads: int = 8, calls: int = 200) -> None:
    def call(_: int) -> None:
        with pool.use() as model:
            model()

    with ThreadPoolExecutor(threads) as workers:
        list(workers.map(call, range(calls)))


def _maker(made: list[NotThreadSafe]) -> Callable[[], NotThreadSafe]:
    def make() -> NotThreadSafe:
        made.append(NotThreadSafe())
        return made[-1]

    return make


def test_each_caller_gets_an_instance_nobody_else_is_using() -> None:
    made: list[NotThreadSafe] = []
    pool = ModelPool(_maker(made))
    _hammer(pool)
    assert not any(m.overlapped for m in made)
    assert sum(m.calls for m in made) == 200
    assert 2 <= pool.built == len(made) <= 8  # no more instances than callers at once


def test_a_limit_caps_the_instances_and_one_is_a_lock() -> None:
    for limit in (1, 3):
        made: list[NotThreadSafe] = []
        pool = ModelPool(_maker(made), limit=limit)
        _hammer(pool)
        assert len(made) == pool.built <= limit
        assert not any(m.overlapped for m in made)
        assert sum(m.calls for m in made) == 200


def test_a_shared_model_is_built_once_and_used_by_all_at_once() -> None:
    loads = []

    def load() -> NotThreadSafe:
        time.sleep(0.05)  # callers arriving while it loads wait for it, not build their own
        loads.append(1)
        return NotThreadSafe()

    pool = ModelPool(load, shared=True)
    seen: set[int] = set()

    def call(_: int) -> None:
        with pool.use() as model:
            seen.add(id(model))
            model()

    with ThreadPoolExecutor(8) as workers:
        list(workers.map(call, range(64)))
    assert loads == [1] and len(seen) == 1 and pool.built == 1


def test_a_failed_load_is_not_counted_and_the_next_caller_tries_again() -> None:
    attempts = []

    def load() -> NotThreadSafe:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("model file missing")
        return NotThreadSafe()

    pool = ModelPool(load, limit=1)
    with pytest.raises(RuntimeError, match="model file missing"), pool.use():
        pass
    assert pool.built == 0
    with pool.use() as model:
        model()
    assert pool.built == 1 and len(attempts) == 2


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ModelPool(NotThreadSafe, limit=0)
