"""Search: stored embeddings equal transformers' features on the same tiny CLIP, exact search equals a numpy brute
force, the IVF index keeps its recall on random vectors, updates embed only what changed, Recall@K as computed by
hand, damaged indexes and bad inputs get sentences, Stop keeps what was finished, Ray Data embeds like in-process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.search.metrics import read_pairs, retrieval_metrics
from studio.search.store import CorruptIndexError, IndexStore, SearchError
from studio.search.vectors import build_vector_index, recall_against
from studio.services.base import LoadedModels, Runtime
from studio.services.search import SearchService
from tests.fixtures.search import SEARCH_PHOTOS, write_gallery
from tests.helpers import assert_plain_sentence


def unit_rows(n: int, dim: int, seed: int, centres: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    if centres:
        c = rng.standard_normal((centres, dim)).astype(np.float32)
        c /= np.linalg.norm(c, axis=1, keepdims=True)
        x = c[rng.integers(0, centres, n)] + x / np.sqrt(dim)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="session")
def clip(tiny_clip_dir) -> Runtime:
    """The tiny CLIP, on whichever backend is there (its ONNX export)."""
    return Runtime(model=str(tiny_clip_dir))


@pytest.fixture
def service(search_models_dir) -> SearchService:
    return SearchService(LoadedModels(search_models_dir))


@pytest.fixture
def gallery(tmp_path, gallery_dir) -> Path:
    return Path(shutil.copytree(gallery_dir, tmp_path / "photos"))


@pytest.fixture(scope="module")
def built(tmp_path_factory, exported_models_dir, gallery_dir, clip):
    """(service, build result) of the index “Holiday” of `gallery_dir`, built once for the tests that only read it."""
    models_dir = Path(shutil.copytree(exported_models_dir, tmp_path_factory.mktemp("search-built") / "exported"))
    service = SearchService(LoadedModels(models_dir))
    return service, service.build("Holiday", gallery_dir, frame_every_s=2.0, runtime=clip)


@pytest.fixture(scope="session")
def reference_text_embeds(tiny_clip_dir):
    """transformers' normalized text features (CLIPTokenizer + CLIPModel.get_text_features)."""
    import torch
    from transformers import CLIPModel, CLIPTokenizer

    model = CLIPModel.from_pretrained(str(tiny_clip_dir)).eval()
    tokenizer = CLIPTokenizer.from_pretrained(str(tiny_clip_dir))

    def embed(texts):
        with torch.inference_mode():
            feats = model.get_text_features(**tokenizer(texts, padding=True, return_tensors="pt"))
            feats = getattr(feats, "pooler_output", feats).numpy()
        return feats / np.linalg.norm(feats, axis=1, keepdims=True)

    return embed


# Vector index ---------------------------------------------------------------------------------------------------


def test_exact_search_equals_numpy_brute_force():
    data, queries = unit_rows(3000, 64, 0), unit_rows(20, 64, 1)
    index = build_vector_index(data)
    assert index.kind == "exact" and "exact" in index.describe()
    scores, ids = index.search(queries, 10)
    sims = queries @ data.T
    expected = np.argsort(-sims, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(sims, expected, 1), atol=1e-5)


def test_approximate_index_keeps_recall_at_10_on_random_vectors():
    rows = unit_rows(20_300, 32, 2, centres=200)
    data, queries = rows[:20_000], rows[20_000:]  # fresh queries from the same centres, not used to choose nprobe
    index = build_vector_index(data, exact_below=5_000)
    assert index.kind == "ivf" and 1 <= index.nprobe < index.nlist, index.settings()
    assert index.recall_at_10 >= 0.95
    truth = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    _, found = index.search(queries, 10)
    assert recall_against(found, truth) >= 0.93
    assert f"{index.nprobe:,} searched" in index.describe()


# Stored embeddings against transformers --------------------------------------------------------------------------


def test_stored_vectors_and_text_query_match_transformers(built, gallery_dir, reference_embeds, reference_text_embeds):
    service, result = built
    gallery = gallery_dir
    assert result["backend"] == "onnx"  # the export ran, not PyTorch
    saved = IndexStore(service.models.models_dir).load("Holiday")
    photos = {i["file"]: row for row, i in enumerate(saved.items) if i["kind"] == "photo"}
    assert set(photos) == {f"{n}.jpg" for n in SEARCH_PHOTOS if n != "rocket"} | {"space/rocket.jpg"}
    files = sorted(photos)
    expected = reference_embeds([Image.open(gallery / f).convert("RGB") for f in files])
    np.testing.assert_allclose(saved.vectors[[photos[f] for f in files]], expected, atol=2e-4)

    text = "a cat sitting on a chair"
    found = service.search("Holiday", text=text, top_k=20)
    cosine = {f: float(expected[i] @ reference_text_embeds([text])[0]) for i, f in enumerate(files)}
    ranked_photos = [r for r in found["results"] if r["kind"] == "photo"]
    assert [r["file"] for r in ranked_photos] == sorted(cosine, key=cosine.get, reverse=True)
    for r in ranked_photos:
        assert r["score"] == pytest.approx(cosine[r["file"]], abs=3e-4)


def test_photo_query_finds_the_same_photo_first(built, gallery_dir):
    service, gallery = built[0], gallery_dir
    for name in ("chelsea", "coffee"):
        best = service.search("Holiday", image=gallery / f"{name}.jpg", top_k=3)["results"][0]
        assert best["file"] == f"{name}.jpg" and best["score"] == pytest.approx(1.0, abs=1e-4)


def test_video_moments_keep_their_times_and_unusable_files_are_skipped(built, gallery_dir):
    (service, result), gallery = built, gallery_dir
    counts = result["index"]["counts"]
    assert counts == {
        "photos": 5,
        "videos": 1,
        "video_frames": 3,
        "sounds": 0,
        "sound_windows": 0,
        "vectors": 8,
    }
    skipped = {s["file"]: s["reason"] for s in result["skipped"]}
    assert set(skipped) == {"notes.txt", "broken.jpg"}
    assert skipped["notes.txt"] == "not photos or videos"
    assert skipped["broken.jpg"] == "not readable"
    assert result["message"] == (
        "Indexed 5 photos and 1 video (3 moments); skipped 2 files: 1 that is not photos or videos (notes.txt) and 1 "
        "that is not readable (broken.jpg)."
    )
    saved = IndexStore(service.models.models_dir).load("Holiday")
    times = sorted(i["time_s"] for i in saved.items if i["kind"] == "video")
    assert times == pytest.approx([0.0, 2.0, 4.0], abs=0.15)
    # The moment of the cat (2-4 s) is what a photo of the cat finds first among the video's frames.
    found = service.search("Holiday", image=gallery / "chelsea.jpg", top_k=8)["results"]
    moment = next(r for r in found if r["kind"] == "video")
    assert moment["time_s"] == pytest.approx(2.0, abs=0.15) and moment["time"] == "0:02.0"


# Updates -------------------------------------------------------------------------------------------------------


def test_update_embeds_only_new_and_changed_files_and_drops_removed_ones(service, tmp_path, clip):
    import skimage.data

    folder = tmp_path / "few"
    folder.mkdir()
    for name in ("astronaut", "chelsea", "coffee"):
        Image.fromarray(getattr(skimage.data, name)()).save(folder / f"{name}.png")
    service.build("Few", folder, runtime=clip)
    store = IndexStore(service.models.models_dir)
    before = store.load("Few")
    kept = before.vectors[[i for i, item in enumerate(before.items) if item["file"] == "astronaut.png"][0]]

    (folder / "coffee.png").unlink()  # removed
    Image.fromarray(skimage.data.chelsea()[::-1]).save(folder / "chelsea.png")  # changed
    Image.fromarray(skimage.data.camera()).convert("RGB").save(folder / "camera.png")  # new
    result = service.update("Few")
    assert (result["embedded"], result["reused"], result["dropped_files"]) == (2, 1, 1)
    after = store.load("Few")
    files = [i["file"] for i in after.items]
    assert sorted(files) == ["astronaut.png", "camera.png", "chelsea.png"]
    np.testing.assert_array_equal(after.vectors[files.index("astronaut.png")], kept)
    changed = after.vectors[files.index("chelsea.png")]
    assert not np.allclose(changed, before.vectors[[i["file"] for i in before.items].index("chelsea.png")])
    assert service.search("Few", image=folder / "camera.png", top_k=1)["results"][0]["file"] == "camera.png"
    assert not [p for p in store.root.iterdir() if p.name.startswith(".")], "temporary folders left behind"


def test_stop_keeps_the_files_finished_so_far(service, tmp_path, clip):
    import skimage.data

    folder = tmp_path / "many"
    folder.mkdir()
    picture = Image.fromarray(skimage.data.coffee())
    for i in range(40):  # two batches of photos
        picture.rotate(i).save(folder / f"p{i:02d}.jpg")
    pressed = []

    def progress(fraction, message):  # the user presses Stop on seeing the first batch done
        if message.startswith("Embedded 32 of 40"):
            pressed.append(True)

    result = service.build("Many", folder, runtime=clip, progress=progress, should_stop=lambda: bool(pressed))
    assert result["stopped"] and result["index"]["counts"]["photos"] == 32
    assert result["message"].startswith("Stopped after 32 of 40 files")
    again = service.update("Many")
    assert (again["embedded"], again["reused"], again["index"]["counts"]["photos"]) == (8, 32, 40)


# Damage and bad input ------------------------------------------------------------------------------------------


def test_a_damaged_index_is_refused_with_a_sentence_and_rebuilt_on_update(service, gallery, clip):
    service.build("Holiday", gallery, runtime=clip)
    vectors = IndexStore(service.models.models_dir).directory("Holiday") / "vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[-5] ^= 0xFF
    vectors.write_bytes(bytes(data))
    with pytest.raises(CorruptIndexError) as caught:
        service.search("Holiday", text="a cat")
    assert_plain_sentence(str(caught.value), "damaged", "build it again")
    result = service.update("Holiday")
    assert any("damaged" in n and "built again" in n for n in result["notices"])
    assert result["embedded"] == 8 and service.search("Holiday", text="a cat")["results"]


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda s, g, t: s.build("X", t / "nowhere"), ("not found",)),
        (lambda s, g, t: s.build("X", g / "chelsea.jpg"), ("file, not a folder",)),
        (lambda s, g, t: s.build("X", (t / "empty").mkdir() or t / "empty"), ("no photos or videos",)),
        (lambda s, g, t: s.build("  ", g), ("no name",)),
        (lambda s, g, t: s.build("eval", g), ("keeps for itself",)),
        (lambda s, g, t: s.search("Nothing", text="a cat"), ("no index",)),
        (lambda s, g, t: s.search("Holiday", text="   "), ("type what to look for",)),
        (lambda s, g, t: s.search("Holiday", text="cat", image=g / "chelsea.jpg"), ("not both",)),
        (lambda s, g, t: s.search("Holiday", text="cat", top_k=0), ("between 1 and",)),
        (lambda s, g, t: s.match_sentences(g / "chelsea.jpg", "only one sentence"), ("at least two",)),
        (lambda s, g, t: s.evaluate(t / "missing.csv"), ("not found",)),
    ],
)
def test_bad_input_gets_a_sentence(built, gallery_dir, tmp_path, call, words):
    with pytest.raises(SearchError) as caught:
        call(built[0], gallery_dir, tmp_path)
    assert_plain_sentence(str(caught.value), *words)


def test_another_model_than_the_index_is_refused_and_rebuild_is_offered(service, gallery, tmp_path, clip):
    other = Path(shutil.copytree(clip.model, tmp_path / "other-clip"))
    service.build("Holiday", gallery, runtime=clip)
    with pytest.raises(SearchError) as caught:
        service.search("Holiday", text="a cat", runtime=Runtime(model=str(other)))
    assert_plain_sentence(str(caught.value), "was built with", "Rebuild")
    with pytest.raises(SearchError) as caught:
        service.build("Holiday", gallery, runtime=Runtime(model=str(other)))
    assert_plain_sentence(str(caught.value), "build it again")
    rebuilt = service.build("Holiday", gallery, runtime=Runtime(model=str(other), backend="torch"), rebuild=True)
    assert rebuilt["index"]["model"] == str(other) and rebuilt["reused"] == 0


def test_a_video_without_pictures_is_skipped_with_its_reason(service, tmp_path, sounds, clip):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(sounds["speech"], folder / "sound-only.mp4")  # a .mp4 that holds no picture
    shutil.copy(sounds["video_no_sound"], folder / "film.mp4")
    result = service.build("Films", folder, runtime=clip)
    assert result["index"]["counts"]["videos"] == 1
    assert [s["file"] for s in result["skipped"]] == ["sound-only.mp4"]
    assert result["skipped"][0]["reason"] == "not readable"
    assert_plain_sentence(result["skipped"][0]["detail"], "sound-only.mp4")


# Image to text, sounds ------------------------------------------------------------------------------------------


def test_image_to_text_ranks_sentences_by_cosine(built, gallery_dir, reference_embeds, reference_text_embeds, clip):
    service, gallery = built[0], gallery_dir
    sentences = ["a cat, looking at the camera", "a cup of coffee", "an astronaut", "a rocket at night"]
    result = service.match_sentences(gallery / "coffee.jpg", "\n".join(sentences), runtime=clip)
    image = reference_embeds([Image.open(gallery / "coffee.jpg").convert("RGB")])[0]
    cosine = reference_text_embeds(sentences) @ image
    assert [s["sentence"] for s in result["sentences"]] == [sentences[i] for i in np.argsort(-cosine)]
    assert sum(s["probability"] for s in result["sentences"]) == pytest.approx(1.0)


def test_sounds_are_indexed_window_by_window_with_clap(tmp_path, sound_exports_dir, tiny_clap_dir, sounds):
    models_dir = Path(shutil.copytree(sound_exports_dir, tmp_path / "exported"))
    folder = tmp_path / "sounds"
    folder.mkdir()
    for key in ("speech", "long", "knocks", "silence"):
        shutil.copy(sounds[key], folder / sounds[key].name)
    shutil.copy(sounds["video"], folder / "clip.mp4")  # not a sound file: left out
    service = SearchService(LoadedModels(models_dir))
    result = service.build("Sounds", folder, runtime=Runtime(model=str(tiny_clap_dir)))
    assert result["index"]["holds"] == "sounds"
    counts = result["index"]["counts"]
    assert counts["sounds"] == 3 and counts["sound_windows"] > 3  # long.wav (about 12 s) holds several windows
    skipped = {s["file"]: s["reason"] for s in result["skipped"]}
    assert skipped == {"clip.mp4": "not sounds", "silence.wav": "silent throughout"}
    found = service.search("Sounds", text="a dog barking", top_k=4)
    assert {r["kind"] for r in found["results"]} == {"sound"}
    saved = IndexStore(models_dir).load("Sounds")
    times = [i["time_s"] for i in saved.items if i["file"] == "long.wav"]
    window_s = service.embedder(Runtime(model=str(tiny_clap_dir)), "sounds").task.window_s
    assert times == pytest.approx([k * window_s for k in range(len(times))], abs=1e-3) and len(times) > 1
    with pytest.raises(SearchError) as caught:
        service.search("Sounds", image=folder / "clip.mp4")
    assert_plain_sentence(str(caught.value), "holds sounds")


# Recall@K -------------------------------------------------------------------------------------------------------


def test_recall_at_k_and_median_rank_by_hand():
    # 3 images (unit axes), 4 captions; caption 3 is image 1's second caption.
    images = np.eye(3, dtype=np.float32)
    texts = np.array([[0.9, 0.1, 0.0], [0.8, 0.6, 0.0], [0.0, 0.2, 0.98], [0.0, 0.1, 0.99]], np.float32)
    owner = np.array([0, 1, 2, 1])
    m = retrieval_metrics(images, texts / np.linalg.norm(texts, axis=1, keepdims=True), owner)
    # text -> image ranks: caption0 -> image0 rank 1; caption1 -> image1: scores (0.8, 0.6, 0) -> rank 2;
    # caption2 -> image2 rank 1; caption3 -> image1: scores (0, 0.1, 0.99) -> rank 2.
    t = m["text_to_image"]
    assert (t["R@1"], t["R@5"], t["median_rank"]) == (0.5, 1.0, 1.5)
    # image -> text: image0's column (0.9, 0.8, 0, 0): caption0 first -> 1; image1's (0.1, 0.6, 0.2, 0.1): caption1
    # first -> 1; image2's (0, 0, 0.98, 0.99): caption2 is second -> 2.
    i = m["image_to_text"]
    assert (i["R@1"], i["R@5"], i["median_rank"]) == (pytest.approx(2 / 3), 1.0, 1.0)
    assert i["curve"] == [pytest.approx(2 / 3), 1.0, 1.0, 1.0]


def test_evaluate_reads_a_pairs_file_and_writes_the_plot(built, gallery_dir, tmp_path, clip):
    service, gallery = built[0], gallery_dir
    pairs = tmp_path / "pairs.csv"
    rows = ["image,caption"] + [
        f"{gallery / name}.jpg,{caption}"
        for name, caption in (
            ("chelsea", "a cat"),
            ("chelsea", "a ginger cat, looking up"),
            ("coffee", "a cup of coffee"),
            ("astronaut", "an astronaut"),
        )
    ]
    pairs.write_text("\n".join(rows) + "\n")
    read = read_pairs(pairs)
    assert len(read.images) == 3 and read.captions[1] == "a ginger cat, looking up"
    result = service.evaluate(pairs, plot=tmp_path / "recall.png", runtime=clip)
    assert result["images"] == 3 and result["captions"] == 4
    assert result["text_to_image"]["R@5"] == 1.0  # 3 candidates: everything is within 5
    assert Image.open(tmp_path / "recall.png").size[0] > 100
    assert "R@1" in result["summary"]
    json.dumps(result)


# Ray Data --------------------------------------------------------------------------------------------------------


def test_ray_data_embeds_photos_like_in_process(service, gallery, clip):
    import ray

    local = service.build("Local", gallery, runtime=clip)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = service.build("On Ray", gallery, runtime=clip, ray_address="auto")
    finally:
        ray.shutdown()
    store = IndexStore(service.models.models_dir)
    a, b = store.load("Local"), store.load("On Ray")
    rows_a = {(i["file"], i["time_s"]): v for i, v in zip(a.items, a.vectors)}
    rows_b = {(i["file"], i["time_s"]): v for i, v in zip(b.items, b.vectors)}
    assert rows_a.keys() == rows_b.keys()
    for key in rows_a:
        np.testing.assert_allclose(rows_b[key], rows_a[key], atol=1e-5)
    assert on_ray["skipped"] == local["skipped"]


def test_write_gallery_makes_what_the_tests_expect(tmp_path):
    folder = write_gallery(tmp_path / "g")
    assert (folder / "space" / "rocket.jpg").is_file() and (folder / "clip.mp4").stat().st_size > 1000


def test_results_described_by_the_caption_model(tmp_path, caption_models_dir, tiny_blip_dir, gallery_dir, clip):
    from studio.services.caption import CaptionService
    from studio.services.search import result_picture

    models_dir = Path(shutil.copytree(caption_models_dir, tmp_path / "exported"))
    service = SearchService(LoadedModels(models_dir))
    service.build("Holiday", gallery_dir, runtime=Runtime(model=clip.model, backend="torch"))
    found = service.search("Holiday", text="a cat", top_k=8, describe=True, caption_model=str(tiny_blip_dir))
    captioner = CaptionService(service.models)
    assert {r["kind"] for r in found["results"]} == {"photo", "video"}
    for row in found["results"]:
        expected = captioner(result_picture(row), runtime=Runtime(model=str(tiny_blip_dir)))["caption"]
        assert row["caption"] == expected and expected
