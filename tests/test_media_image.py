"""Image decoding: every input a user can give becomes RGB, and bad files get sentences."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from studio.errors import BadImageError
from studio.media.image import load_image


def test_corrupt_empty_and_non_image_files(tmp_path, photos):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture")
    truncated = tmp_path / "cut.jpg"
    photos["coffee"].save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:400])
    cases = {
        empty: "empty",
        text: "not an image",
        truncated: "damaged",
        tmp_path / "nope.jpg": "does not exist",
        tmp_path: "folder",
    }
    for path, words in cases.items():
        with pytest.raises(BadImageError, match=words):
            load_image(path)


def test_huge_image_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (12_000, 9_000)).save(path)  # 108 megapixels, a few kB on disk
    with pytest.raises(BadImageError, match="too large"):
        load_image(path)


def test_large_image_within_limit_loads(tmp_path):
    path = tmp_path / "large.png"
    Image.new("RGB", (8000, 6000), (10, 200, 30)).save(path)
    img = load_image(path)
    assert img.mode == "RGB" and img.size == (8000, 6000)


def test_array_inputs(photo_arrays):
    rgb = photo_arrays["chelsea"]
    assert np.array_equal(np.asarray(load_image(rgb)), rgb)
    assert np.array_equal(np.asarray(load_image(np.ascontiguousarray(rgb[:, :, ::-1]), "BGR")), rgb)
    gray = rgb.mean(axis=2).astype(np.uint8)
    assert load_image(gray).mode == "RGB"
    assert load_image(gray[:, :, None]).size == (rgb.shape[1], rgb.shape[0])
    bgra = np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 255, np.uint8)])
    assert np.array_equal(np.asarray(load_image(bgra, "BGR")), rgb)
    as_float = rgb.astype(np.float32) / 255.0
    assert np.abs(np.asarray(load_image(as_float)).astype(int) - rgb).max() <= 1
    with pytest.raises(BadImageError):
        load_image(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(BadImageError):
        load_image(np.zeros((4, 4, 7), np.uint8))
    with pytest.raises(BadImageError, match="no image"):
        load_image(None)


def test_transparency_is_composited_on_white():
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert np.asarray(load_image(rgba))[0, 0].tolist() == [255, 255, 255]
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 0] * 256)
    pal.info["transparency"] = 0
    assert np.asarray(load_image(pal))[0, 0].tolist() == [255, 255, 255]
