"""The Zero-shot tab end to end: the real app in Debian chromium, driven with playwright as a user would.

The model has random weights, so nothing here expects a particular label: the photo test compares what the page shows
with transformers' own pipeline on the same weights and photo; the camera test checks that a stream of real photos
keeps producing results with a bounded delay.
"""

from __future__ import annotations

import math
import re
import statistics
import time

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.helpers import (
    DELAY,
    HAS_GPU,
    REPO,
    WAIT_MS,
    launch_chromium,
    open_page,
    screenshot_on_failure,
    toggle_accordion,
)
from tests.inputs import write_y4m

pytestmark = pytest.mark.browser

ARTIFACT_PREFIX = "browser-zero-shot"  # screenshots: test-artifacts/browser-zero-shot-*.png (the `artifacts` fixture)
PHOTO = REPO / "assets" / "images" / "chelsea.jpg"
TEMPLATE = "a photo of a {}."

# What the page shows, read in one go so that the parts belong to the same moment.
_READ_RESULTS_JS = """() => {
    const sets = [...document.querySelectorAll('#zs-scores [data-testid$="-confidence-set"]')];
    const announce = document.querySelector('#zs-announce');
    const timing = document.querySelector('#zs-timing [data-testid="markdown"]');
    return {
        announce: announce ? announce.textContent.trim() : null,
        timing: timing ? timing.textContent.trim() : '',
        scores: sets.map(s => ({
            label: s.querySelector('dt').textContent.trim(),
            shown: s.querySelector('dd').textContent.trim(),
            value: Number(s.querySelector('meter').getAttribute('value')),
        })),
        mutations: window.__zsMutations ?? null,
    };
}"""

# Counts DOM changes in the results, to tell a live stream from a frozen page.
_WATCH_RESULTS_JS = """() => {
    window.__zsMutations = 0;
    const observer = new MutationObserver(records => { window.__zsMutations += records.length; });
    for (const id of ['zs-scores', 'zs-timing']) {
        observer.observe(document.getElementById(id),
                         {subtree: true, childList: true, characterData: true, attributes: true});
    }
}"""


# Helpers -------------------------------------------------------------------------------------------------------


def new_page(browser: Browser, url: str) -> Page:
    page = open_page(browser, url)
    expect(page.locator("#zs-labels textarea")).to_be_visible()
    return page


def read_results(page: Page) -> dict:
    return page.evaluate(_READ_RESULTS_JS)


def js_percent(score: float) -> int:
    """gr.Label's rounding: Math.round(confidence * 100)."""
    return math.floor(score * 100 + 0.5)


def python_percent(score: float) -> int:
    """The app's rounding in the live region: f"{score:.0%}"."""
    return int(f"{score:.0%}".rstrip("%"))


def shown_percent_matches(shown: int, score: float, rounding, tolerance: float = 1e-4) -> bool:
    """Whether `shown` is `score` rounded as the page rounds it, allowing for float noise at a rounding boundary."""
    return shown in {rounding(score - tolerance), rounding(score + tolerance)}


def parse_labels(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


# Tests ---------------------------------------------------------------------------------------------------------


def test_photo_classification_matches_transformers_pipeline(app_server, browser, artifacts, tiny_clip_dir):
    """Uploading a photo and pressing "Classify photo" shows the pipeline's ranking, scores and the runtime."""
    from transformers import pipeline

    url, _ = app_server
    typed = "cat, dog, cup of coffee, astronaut"
    labels = parse_labels(typed)
    expected = pipeline("zero-shot-image-classification", model=str(tiny_clip_dir), device="cpu")(
        str(PHOTO), candidate_labels=labels, hypothesis_template=TEMPLATE
    )

    page = new_page(browser, url)
    with screenshot_on_failure(page, artifacts / "browser-zero-shot-photo-FAILED.png"):
        page.get_by_role("tab", name="Photo").click()
        # Uploading classifies at once, with the labels in the box at that moment (the defaults).
        page.locator("#zs-photo input[type=file]").set_input_files(str(PHOTO))
        expect(page.locator("#zs-announce")).to_contain_text("Best match:")

        # New labels, then the button: the results must switch to exactly the typed labels.
        page.locator("#zs-labels textarea").fill(typed)
        page.locator("#zs-classify").click()
        page.wait_for_function(
            """labels => {
                const shown = [...document.querySelectorAll('#zs-scores [data-testid$="-confidence-set"] dt')]
                    .map(e => e.textContent.trim());
                const announce = document.querySelector('#zs-announce')?.textContent ?? '';
                return shown.length === labels.length && labels.every(l => shown.includes(l))
                    && labels.some(l => announce.startsWith(`Best match: ${l} (`));
            }""",
            arg=labels,
            timeout=WAIT_MS,
        )
        expect(page.locator("#zs-runtime")).to_contain_text("Runs on:")
        expect(page.locator("#zs-timing")).to_contain_text(re.compile(r"Took \d+ ms"))
        shown = read_results(page)
        page.screenshot(path=str(artifacts / "browser-zero-shot-photo-classified.png"), full_page=True)

    # The live region: one best label with its percentage, the pipeline's top label.
    match = re.fullmatch(r"Best match: (.+) \((\d+)%\)", shown["announce"])
    assert match, shown["announce"]
    assert match.group(1) == expected[0]["label"], (shown["announce"], expected)
    assert shown_percent_matches(int(match.group(2)), expected[0]["score"], python_percent), (
        shown["announce"],
        expected[0],
    )
    assert page.locator("#zs-announce").count() == 1
    expect(page.locator("#zs-announce")).to_have_attribute("role", "status")

    # The scores: the pipeline's order, values and percentages as gr.Label rounds them.
    assert [s["label"] for s in shown["scores"]] == [e["label"] for e in expected], (shown["scores"], expected)
    for s, e in zip(shown["scores"], expected, strict=True):
        assert s["value"] == pytest.approx(e["score"], abs=1e-4), (s, e)
        assert shown_percent_matches(int(s["shown"].rstrip("%")), e["score"], js_percent), (s, e)

    # The badge says what really ran; on a machine without an NVIDIA GPU that is the CPU, and it says why.
    badge = page.locator("#zs-runtime [data-testid=markdown]").inner_text().strip()
    assert badge.startswith("Runs on:"), badge
    assert "ONNX Runtime" in badge, badge
    if not HAS_GPU:
        assert "CPU" in badge and "CUDA unavailable" in badge, badge
    else:
        assert "CUDA" in badge, badge
    page.context.close()


def test_live_camera_keeps_up(app_server, pw, chromium, artifacts, photo_arrays, tmp_path):
    """A fake camera playing real photos: results keep coming, for the typed labels, with a delay that does not grow."""
    url, _ = app_server
    video = write_y4m(tmp_path / "camera.y4m", [photo_arrays["chelsea"], photo_arrays["astronaut"]])
    typed = "cat, astronaut, rocket, cup of coffee"
    labels = parse_labels(typed)
    browser = launch_chromium(pw, chromium, fake_video=video)
    try:
        page = new_page(browser, url)
        with screenshot_on_failure(page, artifacts / "browser-zero-shot-camera-FAILED.png"):
            page.get_by_role("tab", name="Camera").click()
            page.locator("#zs-labels textarea").fill(typed)
            page.evaluate(_WATCH_RESULTS_JS)
            camera = page.locator("#zs-camera")
            camera.get_by_text("Click to Access Webcam").click()
            record = camera.get_by_role("button", name="capture photo")
            expect(record).to_contain_text("Record")
            record.click()
            expect(record).to_contain_text("Stop")
            expect(page.locator("#zs-timing")).to_contain_text("Delay", timeout=WAIT_MS)

            samples = []
            started = time.monotonic()
            while time.monotonic() - started < 6.0:
                samples.append(read_results(page))
                page.wait_for_timeout(400)
            samples.append(read_results(page))
            page.screenshot(path=str(artifacts / "browser-zero-shot-camera-streaming.png"), full_page=True)

            record.click()  # Stop
            expect(record).to_contain_text("Record")
            page.wait_for_timeout(1000)  # answers to frames sent before Stop may still arrive
            after_stop = read_results(page)
            page.wait_for_timeout(1500)
            settled = read_results(page)

        # Every sample shows scores for exactly the typed labels and a best match among them.
        for s in samples:
            assert sorted(x["label"] for x in s["scores"]) == sorted(labels), s
            best = s["announce"].removeprefix("Best match: ")
            assert s["announce"].startswith("Best match: ") and best in labels, s

        # Results kept coming: more frames behind the median, the picture's scores changing with the video,
        # and the page still changing in the second half of the sampling.
        delays = [(int(m.group(1)), int(m.group(2))) for m in (DELAY.search(s["timing"]) for s in samples) if m]
        assert len(delays) == len(samples), [s["timing"] for s in samples]
        counts = [k for _, k in delays]
        assert counts[-1] > counts[0], counts
        second_half = samples[len(samples) // 2 :]
        # The video switches photos every second, so the scores must change within any 3 s of results.
        distinct = {tuple(sorted((x["label"], round(x["value"], 6)) for x in s["scores"])) for s in second_half}
        assert len(distinct) >= 2, "the scores stopped changing although the camera alternates two photos"
        assert second_half[-1]["mutations"] > second_half[0]["mutations"], "the results stopped updating"

        # The delay stays bounded: no queue of stale frames building up (first and last three samples, for noise).
        ms = [n for n, _ in delays]
        assert all(n < 2000 for n in ms), ms
        assert statistics.median(ms[-3:]) <= 3 * statistics.median(ms[:3]) + 200, ms

        # Stop stops: nothing changes any more (frames queued anywhere would keep results coming), and the last
        # result is consistent.
        assert settled["mutations"] == after_stop["mutations"], "results still changing after Stop"
        assert settled["announce"] == f"Best match: {settled['scores'][0]['label']}", settled
    finally:
        browser.close()


def test_inputs_have_accessible_names(app_server, browser, artifacts):
    """Everything a user touches can be found by its accessible name; the best match is a polite live region."""
    url, _ = app_server
    page = new_page(browser, url)
    with screenshot_on_failure(page, artifacts / "browser-zero-shot-a11y-FAILED.png"):
        # Located by name only (these fail when unlabelled), then checked to be the element we mean.
        labels_box = page.get_by_label("Labels to choose between (separate them with commas)", exact=True)
        expect(labels_box).to_have_count(1)
        expect(labels_box).to_be_editable()
        assert labels_box.evaluate("e => e.closest('#zs-labels') !== null")

        page.get_by_role("tab", name="Camera").click()
        webcam = page.get_by_role("button", name="Click to Access Webcam")
        expect(webcam).to_be_visible()
        assert webcam.evaluate("e => e.closest('#zs-camera') !== null")

        page.get_by_role("tab", name="Photo").click()
        upload = page.get_by_role("button", name="Drop an image file here to upload")
        expect(upload).to_be_visible()
        assert upload.evaluate("e => e.closest('#zs-photo') !== null")
        classify = page.get_by_role("button", name="Classify photo", exact=True)
        expect(classify).to_have_id("zs-classify")
        from studio.ui.components import EXAMPLE_NAMES

        for name in EXAMPLE_NAMES.values():  # example photos are buttons with names, not unlabelled thumbnails
            expect(page.get_by_role("button", name=name, exact=True)).to_have_count(1)

        toggle_accordion(page, "Model and runtime")
        model = page.get_by_role("combobox", name="Model", exact=True)
        expect(model).to_be_visible()
        assert model.evaluate("e => e.closest('#zs-model') !== null")
        from studio.ui.model_panel import BACKEND_CHOICES, DEVICE_CHOICES, VARIANT_CHOICES

        radios = {
            "zs-variant": [name for name, _ in VARIANT_CHOICES],
            "zs-backend": [name for name, _ in BACKEND_CHOICES],
            "zs-device": [name for name, _ in DEVICE_CHOICES],
        }
        for names in radios.values():  # each option names its group's purpose, since gradio's fieldsets have no legend
            assert len(set(names)) == len(names)
        assert len({n for names in radios.values() for n in names}) == sum(map(len, radios.values()))
        for group, names in radios.items():
            expect(page.locator(f"#{group} input[type=radio]")).to_have_count(len(names))
            for name in names:
                radio = page.locator(f"#{group}").get_by_role("radio", name=name, exact=True)
                expect(radio).to_have_count(1)
                expect(radio).to_be_visible()

        announce = page.locator("#zs-announce")
        expect(announce).to_have_count(1)
        expect(announce).to_have_attribute("role", "status")
        expect(announce).to_have_attribute("aria-live", "polite")
        page.screenshot(path=str(artifacts / "browser-zero-shot-a11y-model-and-runtime.png"), full_page=True)
    page.context.close()
