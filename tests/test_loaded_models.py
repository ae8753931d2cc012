"""Loaded tasks are shared, loaded once under concurrency, and failed loads are not retried every frame."""

from __future__ import annotations

import threading
import time

import pytest

from studio.errors import ModelUnavailableError
from studio.task_cache import TaskCache


def test_concurrent_requests_load_once():
    calls = []

    def load(name):
        calls.append(name)
        time.sleep(0.1)
        return object()

    cache = TaskCache(load)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(("m",)))) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["m"]
    assert len({id(r) for r in results}) == 1


def test_failures_are_remembered_then_retried():
    calls = []

    def load(name):
        calls.append(name)
        raise ModelUnavailableError("not here")

    cache = TaskCache(load, retry_after=0.2)
    for _ in range(3):
        with pytest.raises(ModelUnavailableError):
            cache.get(("m",))
    assert len(calls) == 1
    time.sleep(0.25)
    with pytest.raises(ModelUnavailableError):
        cache.get(("m",))
    assert len(calls) == 2
    cache.drop(lambda key: True)
    with pytest.raises(ModelUnavailableError):
        cache.get(("m",))
    assert len(calls) == 3


def test_least_recently_used_task_is_evicted():
    cache = TaskCache(lambda name: name.upper(), size=2)
    cache.get(("a",))
    cache.get(("b",))
    cache.get(("a",))
    cache.get(("c",))
    assert cache.peek(("a",)) == "A" and cache.peek(("c",)) == "C"
    assert cache.peek(("b",)) is None
