"""The live camera: the latest-frame gate drops stale frames, never queues them, and keeps the delay bounded; the
video camera's rolling clip keeps the last seconds only and is classified while frames keep coming."""

from __future__ import annotations

import threading
import time

import pytest

from studio.live import LatestFrameGate
from studio.media.video import BadVideoError


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


def test_the_camera_buffer_keeps_the_last_seconds_only():
    from studio.live import RollingClip

    buffer = RollingClip(seconds=3.0, max_frames=50)
    for i in range(600):  # 20 s at 30 frames/s
        buffer.add(i / 30, i)
    assert len(buffer.buffer) == 50 and buffer.span == pytest.approx(49 / 30)  # capped by max_frames
    buffer = RollingClip(seconds=3.0)
    for i in range(200):  # 20 s at 10 frames/s
        buffer.add(i / 10, i)
    assert buffer.span == pytest.approx(3.0) and buffer.buffer[0][1] == 169
    assert buffer.frames(4) == [173, 180, 188, 195]  # nearest to 17.275, 18.025, 18.775, 19.525 s
    assert buffer.due(20.0, interval=2.0)
    buffer.last_run = 19.0
    assert not buffer.due(20.0, interval=2.0) and buffer.due(21.0, interval=2.0)


def test_the_camera_clip_is_classified_while_frames_keep_coming():
    import threading
    import time

    from studio.live import RollingClip

    buffer = RollingClip(seconds=2.0)
    release = threading.Event()

    def slow_model(timed):
        release.wait(5)
        return [t for t, _ in timed]

    for i in range(11):  # 1 s at 10 frames/s
        buffer.add(i / 10, i)
    assert not buffer.due(1.0, interval=1.5)  # the first look waits for 1.5 s of camera
    for i in range(11, 16):
        buffer.add(i / 10, i)
    assert buffer.due(1.5, interval=1.5)
    buffer.start(1.5, slow_model)
    for i in range(16, 46):  # frames keep being buffered while the model runs; nothing more is started
        buffer.add(i / 10, i)
        assert not buffer.due(i / 10, interval=1.5) and buffer.take() is None
    release.set()
    deadline = time.monotonic() + 5
    while (finished := buffer.take()) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert finished.error is None and finished.value == pytest.approx([i / 10 for i in range(16)])
    assert finished.span_s == pytest.approx(1.5) and finished.frames == 16
    assert buffer.take() is None  # each run is handed over once
    assert buffer.span == pytest.approx(2.0) and buffer.due(4.5, interval=1.5)  # no hole where the model ran

    def broken(timed):
        raise BadVideoError("There are no frames to classify yet.")

    buffer.start(4.5, broken)
    while (finished := buffer.take()) is None:
        time.sleep(0.01)
    assert isinstance(finished.error, BadVideoError) and finished.value is None
