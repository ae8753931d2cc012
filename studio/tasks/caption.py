"""Image captioning (BLIP): image encoder once, then the text decoder token by token with its key/value cache.

Decoding is our own loop (`studio.generation`) over the graphs, so ONNX Runtime and PyTorch run the same steps and
both reproduce transformers' `generate()` token for token. The caption is then phrased for listeners: hedged when the
model is unsure, and without people's age or looks unless the user asks for them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from studio.backends.base import GraphSet
from studio.errors import StudioError
from studio.families.blip import BlipDecoderSteps
from studio.generation import GenerationResult, GenerationSettings, generate
from studio.media.image import ImagePreprocessing, load_image
from studio.tasks.base import GraphTask
from studio.tasks.phrasing import hedged, without_age_and_looks

TASK = "caption"
# "short": a few words, fast; "detailed": beam search for a fuller sentence (BLIP's own demo uses 3 beams).
VERBOSITY = {
    "short": GenerationSettings(max_new_tokens=12),
    "detailed": GenerationSettings(max_new_tokens=40, num_beams=3, min_new_tokens=8, repetition_penalty=1.2),
}
MAX_PREFIX_CHARS = 200


class BadPrefixError(StudioError):
    """A caption prefix the model cannot take."""


def check_prefix(prefix: str | None) -> str:
    """Tidies a caption prefix (the words the caption must start with).

    Raises:
        BadPrefixError: The prefix is too long.
    """
    prefix = " ".join((prefix or "").split())
    if len(prefix) > MAX_PREFIX_CHARS:
        raise BadPrefixError(f"The caption start is {len(prefix)} characters long; keep it under {MAX_PREFIX_CHARS}.")
    return prefix


def decoding_settings(
    beams: int, max_new_tokens: int, repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0
) -> GenerationSettings:
    """Settings from the user's choices; beam search also asks for a few words at least, so beams that end at once
    (a bare "a") do not win just by being short."""
    beams, max_new_tokens = int(beams), int(max_new_tokens)
    return GenerationSettings(
        max_new_tokens=max_new_tokens,
        num_beams=beams,
        repetition_penalty=float(repetition_penalty),
        no_repeat_ngram_size=int(no_repeat_ngram_size),
        min_new_tokens=min(8, max_new_tokens) if beams > 1 else 0,
    )


def settings_for(
    verbosity: str = "short",
    beams: int | None = None,
    max_new_tokens: int | None = None,
    repetition_penalty: float | None = None,
    no_repeat_ngram_size: int | None = None,
) -> GenerationSettings:
    """Decoding settings: a verbosity preset, with any of its values the user set replaced.

    Args:
        verbosity: "short" or "detailed" (`VERBOSITY`).
        beams, max_new_tokens, repetition_penalty, no_repeat_ngram_size: The user's values (None: the preset's).

    Raises:
        StudioError: An unknown verbosity.
    """
    if verbosity not in VERBOSITY:
        raise StudioError(f"There is no “{verbosity}” length; choose one of: {', '.join(VERBOSITY)}.")
    preset = VERBOSITY[verbosity]
    settings = decoding_settings(
        beams if beams is not None else preset.num_beams,
        max_new_tokens if max_new_tokens is not None else preset.max_new_tokens,
        repetition_penalty if repetition_penalty is not None else preset.repetition_penalty,
        no_repeat_ngram_size if no_repeat_ngram_size is not None else preset.no_repeat_ngram_size,
    )
    if beams is None and max_new_tokens is None:  # the preset's own lower bound on length
        settings = replace(settings, min_new_tokens=preset.min_new_tokens)
    return settings


@dataclass
class CaptionResult:
    """One caption.

    Attributes:
        text: What to show and speak: phrased by confidence, people's looks left out unless asked for.
        caption: The model's own words (prefix included), lower case as BLIP writes them.
        confidence: Geometric mean of the generated tokens' probabilities, in [0, 1].
        certainty: "sure", "unsure" or "guessing" (see `phrasing.hedged`).
        token_ids: Generated token ids (prompt excluded).
        latency_ms: Whole call: preprocessing, image encoder, decoding.
        encoder_ms: The image encoder.
        decode_ms: The decoding loop.
        image_embedding: The image's pooled embedding (for telling whether the scene changed).
    """

    text: str
    caption: str
    confidence: float
    certainty: str
    token_ids: list[int]
    latency_ms: float
    encoder_ms: float
    decode_ms: float
    image_embedding: np.ndarray = field(repr=False, default=None)

    def as_dict(self) -> dict:
        return {
            "caption": self.text,
            "model_caption": self.caption,
            "confidence": round(self.confidence, 4),
            "certainty": self.certainty,
            "latency_ms": round(self.latency_ms, 2),
            "encoder_ms": round(self.encoder_ms, 2),
            "decode_ms": round(self.decode_ms, 2),
            "tokens": len(self.token_ids),
        }


class CaptionTask(GraphTask):
    """Describes images in words.

    Args:
        graphs: The BLIP graphs ("image_encoder", "text_decoder") with the token ids in metadata.
    """

    TASK = TASK

    def __init__(self, graphs: GraphSet) -> None:
        from transformers import AutoTokenizer

        from studio.families import quiet_transformers

        quiet_transformers()
        super().__init__(graphs)
        files = Path(graphs.files_dir)
        self.preprocessing = ImagePreprocessing.from_dir(files)
        self.tokenizer = AutoTokenizer.from_pretrained(str(files))
        self.meta = dict(graphs.metadata)

    def prompt(self, prefix: str | None) -> list[int]:
        """The decoder prompt: the start token, then the prefix's word pieces (as BLIP's generate() builds it).

        Raises:
            BadPrefixError: The prefix is too long.
        """
        prefix = check_prefix(prefix)
        ids = [self.meta["bos_token_id"]]
        if prefix:
            # [CLS] prefix [SEP] -> drop both: the start token replaces [CLS] and the caption continues the prefix.
            ids += self.tokenizer(prefix)["input_ids"][1:-1]
        return ids

    def preprocess(self, image, channel_order: str = "RGB") -> np.ndarray:
        """Decodes and prepares one image: (1, 3, H, W) float32."""
        return self.preprocessing.batch([load_image(image, channel_order)])

    def encode(self, pixel_values: np.ndarray) -> dict[str, np.ndarray]:
        """Runs the image encoder: image_embeds and the decoder's cross-attention cache."""
        return self.graphs.graphs["image_encoder"].run({"pixel_values": pixel_values})

    def decode(
        self, encoded: dict[str, np.ndarray], prompt: list[int], settings: GenerationSettings
    ) -> GenerationResult:
        """Generates caption tokens after the prompt."""
        room = self.meta.get("max_positions", 512) - len(prompt)
        settings = replace(settings, max_new_tokens=max(1, min(settings.max_new_tokens, room)))
        steps = BlipDecoderSteps(self.graphs.graphs["text_decoder"], encoded["cross_k"], encoded["cross_v"], self.meta)
        return generate(steps, prompt, settings, self.meta["eos_token_id"], self.meta["pad_token_id"])

    def postprocess(
        self, prompt: list[int], result: GenerationResult, describe_people: bool
    ) -> tuple[str, str, float, str]:
        """The caption text, its phrasing for listeners, its confidence and certainty level."""
        caption = self.tokenizer.decode(prompt[1:] + result.token_ids, skip_special_tokens=True).strip()
        logprobs = result.token_logprobs
        # The end token says "done", not what is in the picture; it does not count towards confidence.
        if result.token_ids and result.token_ids[-1] == self.meta["eos_token_id"]:
            logprobs = logprobs[:-1]
        confidence = float(np.exp(np.mean(logprobs))) if logprobs else 0.0
        text = caption if describe_people else without_age_and_looks(caption)
        phrased, certainty = hedged(text, confidence) if text else ("I could not describe this picture.", "guessing")
        return caption, phrased, confidence, certainty

    def __call__(
        self,
        image,
        prefix: str | None = None,
        settings: GenerationSettings = VERBOSITY["short"],
        describe_people: bool = False,
        channel_order: str = "RGB",
    ) -> CaptionResult:
        """Captions one image.

        Args:
            image: Path, bytes, PIL image or array (see `media.image.load_image`).
            prefix: Words the caption must start with ("a photograph of"), or None.
            settings: Decoding settings (see `VERBOSITY`).
            describe_people: Keep words about people's age and looks.
            channel_order: "RGB", or "BGR" for OpenCV frames.
        """
        started = time.perf_counter()
        self.prompt(prefix)  # refuse a bad prefix before the image work
        pixels = self.preprocess(image, channel_order)
        t0 = time.perf_counter()
        encoded = self.encode(pixels)
        encoder_ms = (time.perf_counter() - t0) * 1000
        result = self.describe(encoded, prefix, settings, describe_people)
        result.encoder_ms = encoder_ms
        result.latency_ms = (time.perf_counter() - started) * 1000
        return result

    def describe(
        self,
        encoded: dict[str, np.ndarray],
        prefix: str | None = None,
        settings: GenerationSettings = VERBOSITY["short"],
        describe_people: bool = False,
    ) -> CaptionResult:
        """Captions an already encoded image (live mode encodes first to see whether the scene changed).

        Args:
            encoded: `encode()`'s output.
            prefix: Words the caption must start with, or None.
            settings: Decoding settings.
            describe_people: Keep words about people's age and looks.
        """
        started = time.perf_counter()
        prompt = self.prompt(prefix)
        result = self.decode(encoded, prompt, settings)
        caption, text, confidence, certainty = self.postprocess(prompt, result, describe_people)
        decode_ms = (time.perf_counter() - started) * 1000
        return CaptionResult(
            text=text,
            caption=caption,
            confidence=confidence,
            certainty=certainty,
            token_ids=result.token_ids,
            latency_ms=decode_ms,
            encoder_ms=0.0,
            decode_ms=decode_ms,
            image_embedding=scene_embedding(encoded),
        )


def scene_embedding(encoded: dict[str, np.ndarray]) -> np.ndarray:
    """The image's summary vector (the vision encoder's first, class token): compared to tell a scene changed."""
    return encoded["image_embeds"][0, 0].astype(np.float32).copy()
