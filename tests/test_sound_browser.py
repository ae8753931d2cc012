"""The Sound & scene tab in Debian chromium, driven with playwright as a user would: upload a recording and a photo,
see the fused answer announced, the chart, the timeline and its words, all as `AvEvents` says on the same weights."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.helpers import REPO, open_page, screenshot_on_failure, toggle_accordion, within

pytestmark = pytest.mark.browser

ARTIFACT_PREFIX = "browser-sound"  # screenshots: test-artifacts/browser-sound-*.png (the `artifacts` fixture)
PHOTO = REPO / "assets" / "images" / "chelsea.jpg"
LABELS = "dog barking, door knock, applause, speech, music"  # the tab's default labels


def test_upload_a_recording_and_see_the_events(sound_app, browser, artifacts, sounds, tiny_ast_dir, tiny_clip_dir):
    from studio.tasks.av_events import AvEvents
    from studio.tasks.sound_events import SoundEventsTask
    from studio.tasks.zero_shot import ZeroShotTask

    url, models_dir = sound_app
    expected = AvEvents(
        SoundEventsTask.load(str(tiny_ast_dir), models_dir, device="auto"),
        ZeroShotTask.load(str(tiny_clip_dir), models_dir, device="auto"),
    )(audio=sounds["long"], image=PHOTO, labels=LABELS)
    top = expected.ranking(5)
    page = open_page(browser, url, height=1400)
    with screenshot_on_failure(page, artifacts / "browser-sound-upload-FAILED.png"):
        page.get_by_role("tab", name="Sound & scene", exact=True).click()
        page.locator("#snd-image input[type=file]").set_input_files(str(PHOTO))
        expect(page.locator("#snd-image img").first).to_be_visible()
        # Uploading the recording recognises at once (no button press needed).
        page.locator("#snd-audio input[type=file]").set_input_files(str(sounds["long"]))

        announce = page.locator("#snd-announce")
        expect(announce).to_have_text(f"Most likely: {top[0]['label']} ({top[0]['score']:.0%}, late fusion).")
        expect(announce).to_have_attribute("role", "status")
        expect(announce).to_have_attribute("aria-live", "polite")
        shown = page.locator("#snd-fused [data-testid$='-confidence-set'] dt")
        expect(shown).to_have_count(5)
        assert [t.strip() for t in shown.all_text_contents()] == [r["label"] for r in top]
        words = page.locator("#snd-shares-text")
        for r in top:
            expect(words).to_contain_text(
                f"{r['label']}: {r['score']:.0%} (sound {r['audio']:.0%}, picture {r['picture']:.0%})"
            )
        expect(page.locator("#snd-shares-plot img, #snd-shares-plot svg").first).to_be_visible()
        expect(page.locator("#snd-timeline-plot img, #snd-timeline-plot svg").first).to_be_visible()
        summary = page.locator("#snd-summary")
        expect(summary).to_contain_text("Heard most over the whole recording:")
        expect(summary).to_contain_text(expected.sound.summary(1)[0]["label"])
        expect(page.locator("#snd-runtime")).to_have_text(
            re.compile(r"Runs on: sound: ONNX Runtime · CPU.* · picture: PyTorch · CPU")
        )
        toggle_accordion(page, "Timeline in words")
        events = expected.sound.events()
        first = ", ".join(f"{x['label']} {x['score']:.0%}" for x in events[0]["labels"])
        expect(page.locator("#snd-timeline-text")).to_contain_text(f"0:00.0–0:0{events[0]['end_s']:.1f}: {first}")
        within(
            page.get_by_role("textbox", name="Labels to listen and look for (separate them with commas)"), "snd-labels"
        )
        within(page.get_by_role("slider", name="Weight of the sound (late fusion)"), "snd-weight")
        within(page.get_by_role("radio", name="Late fusion (weighted mean of the two)"), "snd-fusion")
        page.screenshot(path=str(artifacts / "browser-sound-upload.png"), full_page=True)
    page.context.close()
