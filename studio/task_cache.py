"""Loaded tasks kept between requests, one per (model, backend, device, variant), loaded once even under concurrency."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class TaskCache:
    """Keeps the few most recently used loaded tasks.

    Args:
        load: Builds a task for a key's arguments; called outside the cache lock but at most once per key at a time.
        size: How many loaded tasks to keep (each holds model weights in memory).
        retry_after: Seconds a failed load is remembered, so a live stream asking every frame does not retry
            (and wait for the network) each time.
    """

    def __init__(self, load: Callable[..., Any], size: int = 3, retry_after: float = 20.0) -> None:
        self._load = load
        self._size = size
        self._retry_after = retry_after
        self._failures: dict[Hashable, tuple[float, Exception]] = {}
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}

    def get(self, key: tuple, **kwargs) -> Any:
        """The task for `key` (a tuple of the loader's positional arguments), loading it if needed."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            self._raise_recent_failure(key)
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
                self._raise_recent_failure(key)
            try:
                task = self._load(*key, **kwargs)
            except Exception as exc:
                with self._lock:
                    self._failures[key] = (time.monotonic(), exc)
                raise
            with self._lock:
                self._items[key] = task
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
            return task

    def _raise_recent_failure(self, key: Hashable) -> None:
        failure = self._failures.get(key)
        if failure is not None:
            if time.monotonic() - failure[0] < self._retry_after:
                raise failure[1]
            del self._failures[key]

    def peek(self, key: tuple) -> Any | None:
        """The task for `key` if already loaded, else None."""
        with self._lock:
            return self._items.get(key)

    def drop(self, match: Callable[[tuple], bool]) -> None:
        """Forgets loaded tasks whose key matches (e.g. after a re-export)."""
        with self._lock:
            for key in [k for k in self._items if match(k)]:
                del self._items[key]
            for key in [k for k in self._failures if match(k)]:
                del self._failures[key]
