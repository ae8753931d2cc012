"""How fast the Zero-shot live camera answers, measured in Debian chromium with a video file as the camera: results
per second (the frames/s the page shows, over the last 30 results), and the delay from frame to result the page
shows. Slow: a measurement, run alone
(`pytest -m slow -n 0 tests/test_live_camera_rate_browser.py`); it writes test-artifacts/live-camera-rate.json.

The issue's goal on a 2-core CPU with the int8 model: >= 15 results/s, median delay <= 100 ms, never growing. The
tiny model here costs far less than CLIP, so this measures the stream itself (capture, send, gate, show); the
assertions are loose floors, since the machine may be shared.
"""

from __future__ import annotations

import json
import re
import statistics
import time

import pytest
from playwright.sync_api import expect

from tests.helpers import ARTIFACTS, DELAY, WAIT_MS, launch_chromium, open_page, screenshot_on_failure
from tests.inputs import write_y4m

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACT_PREFIX = "browser-live-rate"
SECONDS = 8.0

_COUNT_JS = """() => {
    window.__results = [];
    const timing = document.getElementById('zs-timing');
    new MutationObserver(() => {
        const text = timing.textContent;
        const last = window.__results[window.__results.length - 1];
        if (!last || last.text !== text) window.__results.push({t: performance.now(), text});
    }).observe(timing, {subtree: true, childList: true, characterData: true});
}"""


def test_live_camera_results_per_second(app_server, pw, chromium, artifacts, photo_arrays, tmp_path):
    from studio.ui.zero_shot_tab import CAMERA_CONSTRAINTS, STREAM_EVERY_S

    url, _ = app_server
    video = write_y4m(tmp_path / "camera.y4m", [photo_arrays["chelsea"], photo_arrays["astronaut"]])
    browser = launch_chromium(pw, chromium, fake_video=video)
    try:
        page = open_page(browser, url)
        with screenshot_on_failure(page, artifacts / "browser-live-rate-FAILED.png"):
            page.get_by_role("tab", name="Camera").click()
            camera = page.locator("#zs-camera")
            camera.get_by_text("Click to Access Webcam").click()
            record = camera.get_by_role("button", name="capture photo")
            expect(record).to_contain_text("Record")
            record.click()
            expect(page.locator("#zs-timing")).to_contain_text("Delay", timeout=WAIT_MS)
            page.wait_for_timeout(1500)  # warmed up
            page.evaluate(_COUNT_JS)
            started = time.monotonic()
            page.wait_for_timeout(SECONDS * 1000)
            results = page.evaluate("() => window.__results")
            elapsed = time.monotonic() - started
            record.click()
    finally:
        browser.close()

    updates = len(results) / elapsed  # every answer, also "stale frame skipped" ones
    delays = [int(m.group(1)) for m in (DELAY.search(r["text"]) for r in results) if m]
    server_fps = [float(m.group(1)) for m in (re.search(r"([\d.]+) frames/s", r["text"]) for r in results) if m]
    report = {
        "stream_every_s": STREAM_EVERY_S,
        "camera_constraints": CAMERA_CONSTRAINTS,
        "timing_updates_per_s_seen_by_page": round(updates, 1),
        "results_per_s": round(statistics.median(server_fps), 1) if server_fps else None,  # the page's frames/s
        "median_delay_ms": statistics.median(delays) if delays else None,
        "delay_first_third_ms": statistics.median(delays[: len(delays) // 3 or 1]) if delays else None,
        "delay_last_third_ms": statistics.median(delays[-(len(delays) // 3 or 1) :]) if delays else None,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "live-camera-rate.json").write_text(json.dumps(report, indent=2))
    print(report)
    assert report["results_per_s"] and report["results_per_s"] >= 3, report  # a loose floor: the machine is shared
    assert report["median_delay_ms"] is not None and report["median_delay_ms"] <= 500, report
    assert report["delay_last_third_ms"] <= 2 * report["delay_first_third_ms"] + 100, report  # not growing
