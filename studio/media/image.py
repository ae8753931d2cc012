"""Images: decoding any user input to RGB, and the model-specific resize/crop/normalize.

Everything a model sees goes through `load_image` (so BGR camera frames, grayscale, RGBA and palette images all end up
as RGB the same way) and then `ImagePreprocessing` (`ViltImagePreprocessing` for ViLT, which keeps the aspect
ratio), which follows the model's own preprocessor config.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from studio.errors import BadImageError, ModelUnavailableError

# Images above this many pixels are refused with a sentence instead of exhausting memory. 100 megapixels covers
# every camera and most panoramas; decoding one takes about 300 MB.
MAX_PIXELS = 100_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # PIL raises DecompressionBombError above 2x this, which we turn into words.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# The picture files Studio takes from folders (training examples, galleries): what PIL decodes everywhere.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def load_image(image, channel_order: str = "RGB") -> Image.Image:
    """Turns any image a user can give into an RGB PIL image, as the model's own processor would see it.

    Args:
        image: A file path, encoded bytes, a PIL image, or an HxW / HxWx{1,3,4} uint8 array.
        channel_order: The channel order of an array input: "RGB" (browsers, PIL) or "BGR" (OpenCV frames).

    Returns:
        An RGB image, turned upright by its EXIF orientation; transparency is composited onto white, as the models'
        image processors do (transformers' `convert_to_rgb`).

    Raises:
        BadImageError: The input is empty, not an image, damaged, or too large.
    """
    if image is None:
        raise BadImageError("There is no image yet. Upload a photo, pick an example, or start the camera.")
    if isinstance(image, (str, Path)):
        image = _open_path(Path(image))
    elif isinstance(image, (bytes, bytearray)):
        image = _open_bytes(bytes(image), "The image")
    elif isinstance(image, np.ndarray):
        image = _from_array(image, channel_order)
    elif not isinstance(image, Image.Image):
        raise BadImageError(f"This is not an image (got {type(image).__name__}).")
    _check_size(image.width, image.height)
    return _to_rgb(image)


def _open_path(path: Path) -> Image.Image:
    if not path.exists():
        raise BadImageError(f"The image file {path} does not exist.")
    if path.is_dir():
        raise BadImageError(f"{path} is a folder, not an image file.")
    data = path.read_bytes()
    return _open_bytes(data, f"The file {path.name}")


def _open_bytes(data: bytes, what: str) -> Image.Image:
    if not data:
        raise BadImageError(f"{what} is empty (0 bytes).")
    try:
        img = Image.open(io.BytesIO(data))
        _check_size(img.width, img.height)
        img.load()
        # Phone photos store their rotation as an EXIF tag; apply it as transformers' load_image does.
        img = ImageOps.exif_transpose(img)
    except BadImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise BadImageError(f"{what} is too large to open safely (over {MAX_PIXELS // 1_000_000} megapixels).") from exc
    except UnidentifiedImageError as exc:
        raise BadImageError(f"{what} is not an image Studio can read (use JPEG, PNG, WebP, BMP, GIF or TIFF).") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadImageError(f"{what} is damaged or cut off and cannot be read.") from exc
    return img


def _check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise BadImageError("The image has no pixels.")
    if width * height > MAX_PIXELS:
        raise BadImageError(
            f"The image is too large ({width}x{height}, {width * height / 1e6:.0f} megapixels); "
            f"the limit is {MAX_PIXELS // 1_000_000} megapixels. Make it smaller and try again."
        )


def _from_array(array: np.ndarray, channel_order: str) -> Image.Image:
    if array.size == 0:
        raise BadImageError("The image has no pixels.")
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating) and array.max(initial=0) <= 1.0:
            array = array * 255.0
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return Image.fromarray(array, mode="L")
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise BadImageError(f"This array is not an image (shape {array.shape}).")
    if channel_order.upper() == "BGR":
        array = array[:, :, [2, 1, 0, 3][: array.shape[2]]]
    elif channel_order.upper() != "RGB":
        raise ValueError(f"channel_order must be RGB or BGR, not {channel_order!r}")
    return Image.fromarray(np.ascontiguousarray(array), mode="RGBA" if array.shape[2] == 4 else "RGB")


def _to_rgb(image: Image.Image) -> Image.Image:
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


@dataclass(frozen=True)
class ImagePreprocessing:
    """Resize, center-crop, rescale and normalize, with the settings of a model's preprocessor config.

    Attributes:
        shortest_edge: Resize so the shorter side has this length (aspect ratio kept), or None with `height`/`width`.
        height: Exact resize height when `shortest_edge` is None.
        width: Exact resize width when `shortest_edge` is None.
        crop_height: Center-crop height (None: no crop).
        crop_width: Center-crop width.
        resample: PIL resampling filter number (3 = bicubic, CLIP's).
        rescale_factor: Multiplies uint8 pixels (1/255).
        mean: Per-channel normalization mean.
        std: Per-channel normalization std.
    """

    shortest_edge: int | None
    height: int | None
    width: int | None
    crop_height: int | None
    crop_width: int | None
    resample: int
    rescale_factor: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_dir(cls, directory: Path) -> ImagePreprocessing:
        """Reads preprocessor_config.json (or the image_processor part of processor_config.json)."""
        return cls.from_config(_read_image_processor_config(Path(directory)))

    @classmethod
    def from_config(cls, cfg: dict) -> ImagePreprocessing:
        """From the fields of an image (or video) processor config."""
        size = cfg.get("size", {"shortest_edge": 224})
        if isinstance(size, int):
            size = {"shortest_edge": size}
        crop = cfg.get("crop_size") if cfg.get("do_center_crop", True) else None
        if isinstance(crop, int):
            crop = {"height": crop, "width": crop}
        do_resize = cfg.get("do_resize", True)
        return cls(
            shortest_edge=size.get("shortest_edge") if do_resize else None,
            height=size.get("height") if do_resize else None,
            width=size.get("width") if do_resize else None,
            crop_height=crop["height"] if crop else None,
            crop_width=crop["width"] if crop else None,
            resample=int(cfg.get("resample", 3)),
            rescale_factor=float(cfg.get("rescale_factor", 1 / 255)) if cfg.get("do_rescale", True) else 1.0,
            mean=tuple(cfg.get("image_mean", (0.0, 0.0, 0.0))) if cfg.get("do_normalize", True) else (0.0, 0.0, 0.0),
            std=tuple(cfg.get("image_std", (1.0, 1.0, 1.0))) if cfg.get("do_normalize", True) else (1.0, 1.0, 1.0),
        )

    def __call__(self, image: Image.Image) -> np.ndarray:
        """Prepares one RGB image.

        Returns:
            float32 array of shape (3, H, W).
        """
        w, h = image.size
        if self.shortest_edge:
            short, long = (w, h) if w <= h else (h, w)
            new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
            size = (new_short, new_long) if w <= h else (new_long, new_short)
            image = image.resize(size, resample=self.resample)
        elif self.height and self.width:
            image = image.resize((self.width, self.height), resample=self.resample)
        array = np.asarray(image, dtype=np.uint8)
        if self.crop_height and self.crop_width:
            array = _center_crop(array, self.crop_height, self.crop_width)
        return _rescale_normalize(array, self.rescale_factor, self.mean, self.std)

    def batch(self, images: list[Image.Image]) -> np.ndarray:
        """Prepares several images: (N, 3, H, W) float32."""
        return np.stack([self(im) for im in images])


# ViltImageProcessor caps the longer side at this ratio to the shorter one (COCO's typical 1333x800).
VILT_MAX_LONGER_EDGE = 1333
VILT_MAX_SHORTER_EDGE = 800


@dataclass(frozen=True)
class ViltImagePreprocessing:
    """ViLT's resize (aspect ratio kept, sides rounded down to a multiple), rescale and normalize.

    ViLT embeds however many patches the image has, so unlike CLIP/BLIP there is no crop to a fixed square: the
    shorter side becomes `shortest_edge`, the longer one is capped at 1333/800 of that, both are rounded to the
    nearest pixel and then down to a multiple of `size_divisor`, as transformers' `ViltImageProcessor` does. The
    defaults are that processor's (and dandelin/vilt-b32-finetuned-vqa's).

    Attributes:
        shortest_edge: Target length of the shorter side (None: no resize).
        size_divisor: Both sides are rounded down to a multiple of this (ViLT's patch grid needs whole patches).
        resample: PIL resampling filter number (3 = bicubic).
        rescale_factor: Multiplies uint8 pixels (1/255).
        mean: Per-channel normalization mean.
        std: Per-channel normalization std.
    """

    shortest_edge: int | None = 384
    size_divisor: int = 32
    resample: int = 3
    rescale_factor: float = 1 / 255
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    @classmethod
    def from_dir(cls, directory: Path) -> ViltImagePreprocessing:
        """Reads a ViLT preprocessor_config.json (or the image_processor part of processor_config.json).

        Both the current format (`"size": {"shortest_edge": 384}`) and the older ViltFeatureExtractor one
        (`"size": 384`) are understood.
        """
        cfg = _read_image_processor_config(Path(directory))
        size = cfg.get("size", {"shortest_edge": 384})
        if isinstance(size, int):
            size = {"shortest_edge": size}
        normalize = cfg.get("do_normalize", True)
        return cls(
            shortest_edge=int(size["shortest_edge"]) if cfg.get("do_resize", True) else None,
            size_divisor=int(cfg.get("size_divisor") or 32),
            resample=int(cfg.get("resample", 3)),
            rescale_factor=float(cfg.get("rescale_factor", 1 / 255)) if cfg.get("do_rescale", True) else 1.0,
            mean=tuple(cfg.get("image_mean", (0.5, 0.5, 0.5))) if normalize else (0.0, 0.0, 0.0),
            std=tuple(cfg.get("image_std", (0.5, 0.5, 0.5))) if normalize else (1.0, 1.0, 1.0),
        )

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """The (height, width) an image of this size is resized to.

        The float arithmetic is transformers' `get_resize_output_image_size` for ViLT step by step, so the rounding
        lands on the same pixel.
        """
        if not self.shortest_edge:
            return height, width
        shorter = self.shortest_edge
        longer = int(VILT_MAX_LONGER_EDGE / VILT_MAX_SHORTER_EDGE * shorter)
        scale = shorter / min(height, width)
        if height < width:
            new_height, new_width = shorter, scale * width
        else:
            new_height, new_width = scale * height, shorter
        if max(new_height, new_width) > longer:
            scale = longer / max(new_height, new_width)
            new_height, new_width = scale * new_height, scale * new_width
        new_height, new_width = int(new_height + 0.5), int(new_width + 0.5)
        return new_height // self.size_divisor * self.size_divisor, new_width // self.size_divisor * self.size_divisor

    def __call__(self, image: Image.Image) -> np.ndarray:
        """Prepares one RGB image.

        Returns:
            float32 array of shape (3, H, W), H and W multiples of `size_divisor` (when resizing).
        """
        if self.shortest_edge:
            height, width = self.output_size(image.width, image.height)
            if height <= 0 or width <= 0:
                raise BadImageError(
                    f"The image is too narrow ({image.width}x{image.height}) for this model to see anything in it."
                )
            image = image.resize((width, height), resample=self.resample)
        return _rescale_normalize(np.asarray(image, dtype=np.uint8), self.rescale_factor, self.mean, self.std)

    def batch(self, images: list[Image.Image]) -> np.ndarray:
        """Prepares several images that come out the same size: (N, 3, H, W) float32.

        ViltImageProcessor would zero-pad differently sized images to a common size and mark the padding in a pixel
        mask; our ViLT graph takes no mask (see `studio.families.vilt`), so such images go one call each.

        Raises:
            ValueError: The images come out in different sizes.
        """
        arrays = [self(im) for im in images]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"ViLT batches need images of one prepared size, got {sorted(shapes)}")
        return np.stack(arrays)


def _rescale_normalize(array: np.ndarray, rescale_factor: float, mean, std) -> np.ndarray:
    """uint8 (H, W, 3) -> normalized float32 (3, H, W)."""
    out = array.astype(np.float32) * np.float32(rescale_factor)
    out = (out - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def _center_crop(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Center crop, zero-padding an image smaller than the crop (as transformers does)."""
    h, w = array.shape[:2]
    if h < height or w < width:
        padded = np.zeros((max(h, height), max(w, width), array.shape[2]), dtype=array.dtype)
        top, left = -(-(padded.shape[0] - h) // 2), -(-(padded.shape[1] - w) // 2)
        padded[top : top + h, left : left + w] = array
        array, h, w = padded, padded.shape[0], padded.shape[1]
    top, left = (h - height) // 2, (w - width) // 2
    return array[top : top + height, left : left + width]


def _read_image_processor_config(directory: Path) -> dict:
    pre = directory / "preprocessor_config.json"
    if pre.is_file():
        return json.loads(pre.read_text())
    proc = directory / "processor_config.json"
    if proc.is_file():
        cfg = json.loads(proc.read_text())
        if "image_processor" in cfg:
            return cfg["image_processor"]
    raise ModelUnavailableError(
        f"The model folder {directory} has no image processor settings (preprocessor_config.json). "
        "Copy the whole model folder, not only the weights."
    )
