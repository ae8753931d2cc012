"""`studio index ...` and `studio search ...`, run as a user runs them: a separate process, JSON on stdout, one sentence
on stderr and exit status 2 for bad input. What the commands print is compared with the service run in this process
on the same model and folder (test_search.py compares the service with transformers)."""

from __future__ import annotations

import shutil

import pytest

from studio.services.base import LoadedModels
from studio.services.search import SearchService
from tests.helpers import assert_plain_sentence, error_sentence, stdout_json, studio


@pytest.fixture(scope="module")
def cli_models(tmp_path_factory, exported_models_dir):
    target = tmp_path_factory.mktemp("search-cli") / "exported"
    shutil.copytree(exported_models_dir, target)
    return target


def test_index_build_search_info_eval_and_remove(cli_env, cli_models, gallery_dir, tiny_clip_dir, tmp_path):
    common = ["--models-dir", cli_models]
    built = stdout_json(
        studio(cli_env, "index", "build", "My photos", "--folder", gallery_dir, "--model", tiny_clip_dir, *common)
    )
    assert built["message"].startswith("Indexed 5 photos and 1 video (3 moments); skipped 2 files:")
    assert built["backend"] == "onnx" and built["index"]["search"].startswith("exact search over all 8 vectors")

    found = stdout_json(studio(cli_env, "search", "My photos", "--text", "a cup of coffee", "--top-k", "4", *common))
    reference = SearchService(LoadedModels(cli_models)).search("My photos", text="a cup of coffee", top_k=4)
    assert [(r["file"], r["time_s"]) for r in found["results"]] == [
        (r["file"], r["time_s"]) for r in reference["results"]
    ]
    assert [r["score"] for r in found["results"]] == pytest.approx([r["score"] for r in reference["results"]])

    by_photo = stdout_json(studio(cli_env, "search", "My photos", "--image", gallery_dir / "coffee.jpg", *common))
    assert by_photo["results"][0]["file"] == "coffee.jpg" and len(by_photo["results"]) == 8

    info = stdout_json(studio(cli_env, "index", "info", "My photos", *common))
    assert info["counts"]["vectors"] == 8 and info["model"] == str(tiny_clip_dir)
    updated = stdout_json(studio(cli_env, "index", "update", "My photos", *common))
    assert (updated["embedded"], updated["reused"]) == (0, 8)

    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "".join(f"{gallery_dir / n}.jpg,a photo of {n}\n" for n in ("astronaut", "chelsea", "coffee", "camera"))
    )
    measured = stdout_json(
        studio(
            cli_env, "search", "eval", "--pairs", pairs, "--model", tiny_clip_dir, "--plot", tmp_path / "r.png", *common
        )
    )
    assert set(measured["text_to_image"]) >= {"R@1", "R@5", "R@10", "median_rank"} and (tmp_path / "r.png").is_file()

    assert stdout_json(studio(cli_env, "index", "remove", "My photos", *common)) == {
        "task": "search",
        "removed": "My photos",
        "notices": [],
    }
    assert_plain_sentence(
        error_sentence(studio(cli_env, "search", "My photos", "--text", "a cat", *common)), "no index", "My photos"
    )


@pytest.mark.parametrize(
    "args, words",
    [
        (["index", "build", "X", "--folder", "/no/such/folder"], ("not found",)),
        (["search", "X"], ("--text", "--image")),
        (["search", "eval"], ("--pairs",)),
        (["index", "info", "Nothing"], ("no index",)),
    ],
)
def test_bad_input_exits_2_with_a_sentence(cli_env, cli_models, args, words):
    assert_plain_sentence(error_sentence(studio(cli_env, *args, "--models-dir", cli_models)), *words)
