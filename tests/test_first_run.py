"""First run: what each tab needs, its download size and its state here, said when the page opens; downloading one
task's model or all of them (`studio download`, the app's Models panel), and the short missing-model sentence with
the folder paths behind "Details". No hub is reachable here, so a download ends in that sentence; a model copied into
the models directory by hand counts as here."""

from __future__ import annotations

import re
import shutil

import pytest
from playwright.sync_api import expect

from studio.registry import REGISTRY
from tests.a11y import open_tab
from tests.helpers import (
    WAIT_MS,
    assert_plain_sentence,
    error_sentence,
    launched_app,
    open_page,
    screenshot_on_failure,
    stdout_json,
    studio,
    text_of,
)

ARTIFACT_PREFIX = "browser-first-run"
DEFAULT_CLIP = REGISTRY.default_for("zero-shot")


# The registry's sizes ----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("spec", [s for s in REGISTRY if s.package is None], ids=lambda s: s.hub_id)
def test_download_size_is_four_bytes_per_parameter_of_the_architecture(spec):
    """Every hub row says its download size, and it is what its full-size architecture weighs in fp32 (±15 %)."""
    import torch

    from studio.families import get_family

    assert spec.download_mb, f"{spec.hub_id} has no download_mb in studio/models.toml"
    with torch.device("meta"):
        model = get_family(spec.family).random_model(dict(spec.architecture))
    mb = sum(p.numel() for p in model.parameters()) * 4 / 1e6
    assert spec.download_mb == pytest.approx(mb, rel=0.15), (spec.hub_id, spec.download_mb, mb)


# The command line --------------------------------------------------------------------------------------------------


def test_download_without_internet_is_one_short_sentence_with_the_paths_on_the_next_line(cli_env, tmp_path):
    models_dir = tmp_path / "models"
    proc = studio(cli_env, "--models-dir", models_dir, "download", "zero-shot")
    sentence = error_sentence(proc)
    assert_plain_sentence(sentence, DEFAULT_CLIP.hub_id, "not on this computer", "internet")
    assert str(models_dir) not in sentence and len(sentence.split()) <= 25, sentence  # short: no folder paths
    assert str(models_dir / DEFAULT_CLIP.hub_id) in proc.stderr  # the details, on the next line
    assert "studio download zero-shot" in proc.stderr


def test_download_all_names_what_could_not_be_had_and_keeps_what_is_here(cli_env, tmp_path, tiny_clip_dir):
    models_dir = tmp_path / "models"
    shutil.copytree(tiny_clip_dir, models_dir / DEFAULT_CLIP.hub_id)  # a local copy, as a presenter might make
    proc = studio(cli_env, "--models-dir", models_dir, "download", "--all")
    sentence = error_sentence(proc)
    missing = [REGISTRY.default_for(t).hub_id for t in REGISTRY.tasks() if t not in ("zero-shot", "read-text")]
    assert_plain_sentence(sentence, f"{len(missing)} of {len(REGISTRY.tasks())} models", *missing)
    named = re.search(r"could not be downloaded: (.*?)\. The model", sentence).group(1).split(", ")
    assert sorted(named) == sorted(missing), named  # the local copy is not among them


def test_download_of_a_model_that_is_here_says_so(cli_env, tmp_path, tiny_clip_dir):
    models_dir = tmp_path / "models"
    shutil.copytree(tiny_clip_dir, models_dir / DEFAULT_CLIP.hub_id)
    for task in ("zero-shot", "read-text"):  # a local copy; a model shipped in a package
        out = stdout_json(studio(cli_env, "--models-dir", models_dir, "download", task))
        [row] = out["models"]
        assert row["task"] == task and row["ready"] and not row["downloaded"], row


def test_download_needs_a_task_or_all(cli_env, tmp_path):
    sentence = error_sentence(studio(cli_env, "--models-dir", tmp_path, "download"))
    assert_plain_sentence(sentence, "--all")


# The app -----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_app(tmp_path_factory):
    """The app as on a first run: nothing downloaded, nothing chosen (Read text's model ships in a package)."""
    yield from launched_app(tmp_path_factory, "first-run-models", tmp_path_factory.mktemp("first-run-empty"), {})


@pytest.mark.browser
def test_each_tab_says_what_it_needs_when_the_page_opens(fresh_app, browser, artifacts):
    """No click needed: a tab whose model is missing names it and its size at the top; Read text needs nothing."""
    from studio.downloads import size_words

    url, _ = fresh_app
    page = open_page(browser, url)
    with screenshot_on_failure(page, artifacts / "browser-first-run-FAILED.png"):
        note = page.locator("#tab-zero-shot-needs")
        expect(note).to_be_visible(timeout=WAIT_MS)  # filled by the page-load event
        expect(note).to_contain_text(DEFAULT_CLIP.title)
        expect(note).to_contain_text(size_words(DEFAULT_CLIP))
        expect(note.get_by_role("button", name="Download this tab's models now")).to_be_visible()
        open_tab(page, "Ask")
        for task in ("vqa", "speech-to-text"):
            expect(page.locator("#tab-ask-needs")).to_contain_text(REGISTRY.default_for(task).title)
        open_tab(page, "Read text")
        expect(page.locator("#tab-read-text-needs")).to_be_hidden()
        page.screenshot(path=str(artifacts / "browser-first-run-note.png"), full_page=True)

        # Downloading without internet: one short sentence in the note's live region, the paths behind Details.
        open_tab(page, "Zero-shot")
        note.get_by_role("button", name="Download this tab's models now").click()
        said = page.locator("#tab-zero-shot-download-announce")
        expect(said).to_contain_text("not on this computer", timeout=WAIT_MS)
        expect(said).not_to_contain_text(str(fresh_app[1]))
        details = note.locator("details")
        expect(details).to_contain_text("Details")
        details.locator("summary").click()
        expect(details).to_contain_text(str(fresh_app[1] / DEFAULT_CLIP.hub_id))
    page.context.close()


def test_models_view_lists_every_tab_with_size_and_state(fresh_app):
    from gradio_client import Client

    client = Client(fresh_app[0], verbose=False)
    announce, table = client.predict("zero-shot", api_name="/models_download")
    sentence = text_of(re.sub(r"<details.*</details>", "", announce, flags=re.S))
    assert_plain_sentence(sentence, DEFAULT_CLIP.hub_id, "not on this computer", "internet")
    assert "<summary>Details</summary>" in announce and str(fresh_app[1] / DEFAULT_CLIP.hub_id) in announce
    rows = {row[1]: row for row in table["data"]}
    for task in REGISTRY.tasks():
        spec = REGISTRY.default_for(task)
        assert spec.title in rows, (spec.title, list(rows))
    assert rows[DEFAULT_CLIP.title][0].startswith("Zero-shot") and "605 MB" in rows[DEFAULT_CLIP.title][2]
    assert "missing" in rows[DEFAULT_CLIP.title][3]
    assert rows[REGISTRY.default_for("read-text").title][3].startswith("ready")
