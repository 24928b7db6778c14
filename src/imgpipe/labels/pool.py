"""Native models shared by threads without sharing native state between concurrent calls.

The process function's lanes and `imgpipe process --jobs N` call the labeler from several
threads. ONNX Runtime documents ``InferenceSession.run`` as safe to call concurrently, but
dlib's HOG detector keeps its feature pyramid in the detector object and RapidOCR's pipeline
keeps per-call state in its objects: two threads in one instance corrupt memory or mix two
images' detections (a portrait once came back with 139 faces).

A ``ModelPool`` lends each caller an instance no other caller holds: it keeps the idle ones
and builds another only when every instance is busy, so there are never more instances than
threads using the model at once (``limit`` caps them; ``limit=1`` is a plain lock). A model
documented as thread-safe is wrapped with ``shared=True``: one instance, no lending.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class ModelPool(Generic[T]):
    def __init__(
        self, load: Callable[[], T], *, shared: bool = False, limit: int | None = None
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        self._load = load
        self._shared = shared
        self._limit = 1 if shared else limit
        self._idle: list[T] = []
        self._built = 0
        self._changed = threading.Condition()

    @property
    def built(self) -> int:
        """Instances built so far (the most that were ever in use at once)."""
        return self._built

    def preload(self) -> None:
        """Build the first instance now, in the calling thread (start-up, not the first image)."""
        with self.use():
            pass

    @contextmanager
    def use(self) -> Iterator[T]:
        model = self._borrow()
        try:
            yield model
        finally:
            if not self._shared:
                self._give_back(model)

    def _borrow(self) -> T:
        with self._changed:
            while True:
                if self._idle:
                    return self._idle[0] if self._shared else self._idle.pop()
                if self._limit is None or self._built < self._limit:
                    self._built += 1
                    break
                self._changed.wait()  # every instance busy (or the shared one still loading)
        try:
            model = self._load()  # outside the lock: other callers keep using idle instances
        except BaseException:
            with self._changed:
                self._built -= 1
                self._changed.notify()
            raise
        if self._shared:
            with self._changed:
                self._idle.append(model)
                self._changed.notify_all()
        return model

    def _give_back(self, model: T) -> None:
        with self._changed:
            self._idle.append(model)
            self._changed.notify()


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
