"""End-to-end in Debian chromium: index a folder of real photos (scikit-image) and a video in the Search tab, search
by words with the default settings, and read the gallery and its text version off the page; they must list what the
service finds in the same index."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from studio.services.base import LoadedModels
from studio.services.search import SearchService
from tests.helpers import WAIT_MS, open_page, screenshot_on_failure

pytestmark = pytest.mark.browser

ARTIFACT_PREFIX = "browser-search"


def test_index_a_folder_and_search_it_by_words(browser, search_app, artifacts, gallery_dir):
    url, models_dir = search_app
    page = open_page(browser, url, height=1800)
    with screenshot_on_failure(page, artifacts / "browser-search-FAILED.png"):
        page.get_by_role("tab", name="Search").click()
        page.get_by_label("Index name").fill("Photos")
        page.get_by_label("Folder to index (its path on this computer; empty: the index's own folder)").fill(
            str(gallery_dir)
        )
        page.get_by_role("button", name="Build or update the index").click()
        expect(page.locator("#sr-index-announce")).to_contain_text("Indexed 5 photos and 1 video", timeout=120_000)
        expect(page.locator("#sr-index-announce")).to_contain_text("notes.txt")
        expect(page.locator("#sr-info")).to_contain_text("exact search over all 8 vectors")
        expect(page.locator("#sr-index input")).to_have_value("Photos")

        page.get_by_label("What to look for").fill("a cat")
        page.get_by_label("What to look for").press("Enter")
        announce = page.locator("#sr-announce")
        expect(announce).to_contain_text("8 results for “a cat”", timeout=WAIT_MS)
        expect(announce).to_have_attribute("aria-live", "polite")

        expected = SearchService(LoadedModels(models_dir)).search("Photos", text="a cat", top_k=10)["results"]
        listing = page.locator("#sr-results li")
        expect(listing).to_have_count(len(expected))
        for item, row in zip(listing.all(), expected):
            at = f" at {row['time']}" if row["time"] else ""
            assert item.inner_text().startswith(f"{row['file']}{at} ("), (item.inner_text(), row)
        thumbnails = page.locator("#sr-gallery img")
        expect(thumbnails).to_have_count(len(expected))
        captions = page.locator("#sr-gallery").inner_text()
        assert f"1. {expected[0]['file']}" in captions and "clip.mp4 at 0:02.0" in captions
        expect(page.get_by_role("button", name="Play from this moment")).to_be_visible()
        page.screenshot(path=str(artifacts / "browser-search.png"), full_page=True)
