"""The Search tab through the launched app's HTTP API (gradio_client): index a folder of real photos and a video,
search by words and by photo, play a video moment from its time, match sentences to a photo, measure Recall@K, and
say what is wrong with bad input while the app keeps serving. Rankings are compared with the service run on the same
models directory (the service is compared with transformers in test_search.py)."""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import Client, handle_file

from studio.services.base import LoadedModels
from studio.services.search import SearchService
from tests.helpers import assert_plain_sentence, outputs_and_toasts, text_of


@pytest.fixture(scope="module")
def client(search_app):
    return Client(search_app[0], verbose=False)


@pytest.fixture(scope="module")
def built(client, search_app, gallery_dir, tiny_clip_dir):
    out, _ = outputs_and_toasts(
        client.submit(
            "Holiday", str(gallery_dir), None, 2, False, str(tiny_clip_dir), "auto", "cpu", api_name="/build_index"
        ),
        timeout=300,
    )
    return out


def test_build_index_says_what_it_indexed(built, gallery_dir):
    announce, info, chosen, badge = built
    assert text_of(announce).startswith("Indexed 5 photos and 1 video (3 moments); skipped 2 files:")
    assert "exact search over all 8 vectors" in info and str(gallery_dir) in info
    assert chosen["value"] == "Holiday" and ["Holiday", "Holiday"] in chosen["choices"]
    assert "ONNX Runtime" in badge


def test_search_by_words_lists_what_the_service_finds(client, built, search_app):
    out, _ = outputs_and_toasts(client.submit("Holiday", "a cup of coffee", 8, False, "cpu", api_name="/search_text"))
    announce, gallery, listing, moment, badge = out  # (the play button's visibility is not part of the API)
    expected = SearchService(LoadedModels(search_app[1])).search("Holiday", text="a cup of coffee", top_k=8)
    rows = expected["results"]
    assert text_of(announce).startswith(f"8 results for “a cup of coffee”. Best: {rows[0]['file']}")
    lines = listing.strip().splitlines()
    assert len(lines) == 8
    for line, row in zip(lines, rows):
        assert line.startswith(f"{row['rank']}. {row['file']}") and f"score {row['score']:.3f}" in line
    # every result has a picture (photos and video moments), captioned with its file, moment and score
    captions = [item["caption"] for item in gallery]
    assert len(captions) == 8 and captions[0].startswith(f"1. {rows[0]['file']}")
    assert all(" · score " in c for c in captions)
    assert sum(" at 0:0" in c for c in captions) == 3  # the video's three moments
    assert moment["visible"] is True and len(moment["choices"]) == 3
    assert "ONNX Runtime" in badge


def test_play_starts_the_video_at_its_moment(client, built, gallery_dir):
    import cv2

    from studio.media.video import frame_at

    out, _ = outputs_and_toasts(
        client.submit(
            "Holiday", handle_file(str(gallery_dir / "chelsea.jpg")), 8, False, "cpu", api_name="/search_photo"
        )
    )
    moment = out[3]
    cat = next(value for label, value in moment["choices"] if "clip.mp4 at 0:02.0" in label)
    out, _ = outputs_and_toasts(client.submit(cat, api_name="/play_moment"))
    announce, player, sound = out
    assert text_of(announce) == "Playing clip.mp4 from 0:02.0."
    path = player["value"]["video"]["path"] if isinstance(player["value"], dict) else player["value"]
    cap = cv2.VideoCapture(str(path))
    ok, first = cap.read()
    cap.release()
    assert ok
    expected = frame_at(gallery_dir / "clip.mp4", 2.0)
    first = cv2.cvtColor(first, cv2.COLOR_BGR2RGB)
    assert first.shape == expected.shape
    assert np.abs(first.astype(float) - expected).mean() < 12  # the cat's frame, not the astronaut's before it


def test_match_sentences_and_recall(client, built, gallery_dir, tiny_clip_dir, tmp_path):
    sentences = "a cat\na cup of coffee, on a saucer\nan astronaut"
    out, _ = outputs_and_toasts(
        client.submit(
            handle_file(str(gallery_dir / "coffee.jpg")), sentences, None, str(tiny_clip_dir), "auto", "cpu",
            api_name="/match_sentences",
        )
    )  # fmt: skip
    announce, scores, listing = out
    assert text_of(announce).startswith("Best fit: ")
    assert len(listing.splitlines()) == 3 and "cosine" in listing
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("".join(f"{gallery_dir / n}.jpg,a photo of {n}\n" for n in ("astronaut", "chelsea", "coffee")))
    out, _ = outputs_and_toasts(
        client.submit(str(pairs), str(tiny_clip_dir), "auto", "cpu", api_name="/evaluate_pairs")
    )
    assert text_of(out[0]).startswith("Text to image: R@1 ")
    assert "| Text → image |" in out[2] and "| Image → text |" in out[2]


def test_bad_input_is_said_and_the_app_keeps_serving(client, built):
    out, toasts = outputs_and_toasts(client.submit("Holiday", "   ", 5, False, "cpu", api_name="/search_text"))
    assert_plain_sentence(text_of(out[0]), "type what to look for")
    out, _ = outputs_and_toasts(client.submit(None, "a cat", 5, False, "cpu", api_name="/search_text"))
    assert_plain_sentence(text_of(out[0]), "choose an index")
    out, _ = outputs_and_toasts(
        client.submit("Other", "/no/such/folder", None, 2, False, None, "auto", "cpu", api_name="/build_index")
    )
    assert_plain_sentence(text_of(out[0]), "not found")
    out, _ = outputs_and_toasts(client.submit("Holiday", "a cat", 3, False, "cpu", api_name="/search_text"))
    assert text_of(out[0]).startswith("3 results for “a cat”")
