"""The latest-frame gate: stale frames are dropped, never queued, and the delay stays bounded."""

from __future__ import annotations

import threading
import time

from studio.live import LatestFrameGate


def test_frames_arriving_while_busy_are_dropped_except_the_newest():
    gate = LatestFrameGate()
    processed = []

    def slow(frame):
        time.sleep(0.2)
        processed.append(frame)
        return frame

    results = {}

    def send(i):
        results[i] = gate.submit("cam", i, slow)[0]

    first = threading.Thread(target=send, args=(0,))
    first.start()
    time.sleep(0.05)  # frame 0 is being processed; 1..5 arrive meanwhile
    others = [threading.Thread(target=send, args=(i,)) for i in range(1, 6)]
    for t in others:
        t.start()
        time.sleep(0.01)
    for t in [first, *others]:
        t.join()
    assert processed[0] == 0
    assert 5 in processed  # the newest frame is processed
    assert len(processed) <= 3  # not the whole backlog
    stats = gate.stats("cam")
    assert stats.dropped == 6 - len(processed)
    assert all(results[i] is None for i in range(1, 6) if i not in processed)


def test_delay_stays_bounded_when_frames_come_faster_than_the_model():
    """20 frames/s against a 100 ms model for 2 s: a queue would reach ~1 s of delay; the gate stays near 2x."""
    gate = LatestFrameGate()
    threads = []
    for i in range(40):
        t = threading.Thread(target=gate.submit, args=("cam", i, lambda f: time.sleep(0.1)))
        t.start()
        threads.append(t)
        time.sleep(0.05)
    for t in threads:
        t.join()
    stats = gate.stats("cam")
    assert stats.dropped > 10
    assert stats.p50_ms < 250
    assert stats.processed + stats.dropped == 40
    assert "stale frames skipped" in stats.summary


def test_streams_are_independent_and_reset_forgets():
    gate = LatestFrameGate()
    gate.submit("a", 1, lambda f: f)
    gate.submit("b", 2, lambda f: f)
    assert gate.stats("a").processed == 1 and gate.stats("b").processed == 1
    gate.reset("a")
    assert gate.stats("a").processed == 0
    assert gate.stats("a").summary.startswith("Waiting")
