"""ViLT visual question answering: one graph from a question and an image to a score for every answer it knows.

ViLT is a single transformer over the question's tokens and the image's patches together; its VQA head classifies
the pooled [CLS] state into a fixed list of answers (3,129 for VQAv2). transformers' `ViltEmbeddings.visual_embed`
shuffles the patches with `torch.multinomial` (it samples patches when an image has more than `max_image_length`, and
pads batches of differently sized images with randomly chosen padding patches), even for one unpadded image, where
it only permutes them. That neither exports to ONNX nor is needed: once each patch carries its position embedding, the
encoder's [CLS] output does not depend on the order of the other tokens, so our wrapper embeds the patches in natural
order and reuses the model's own modules and weights for everything else.

Images keep their aspect ratio (`studio.media.image.ViltImagePreprocessing` makes both sides multiples of 32), so the
graph's height and width are dynamic. Images of one batch must share a size (the graph takes no pixel mask: padding
would need one); several questions about one image are a batch of that image repeated.

Scores are sigmoids of the logits, not a softmax: ViLT's VQA head was trained with binary cross-entropy against soft
answer targets (`ViltForQuestionAnswering`'s loss), and transformers' visual-question-answering pipeline scored it
with `logits.sigmoid()` and `topk` (see `top_answers`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from studio.families import GraphSpec, pretrained_functions, save_processor_files

log = logging.getLogger(__name__)

# Files a model folder needs beside config and weights: each inner tuple is alternatives.
REQUIRED_FILES = (
    ("preprocessor_config.json", "processor_config.json"),
    ("tokenizer.json", "vocab.txt"),
)
TOP_K = 5  # what the visual-question-answering pipeline returned by default
MAX_TEXT_LENGTH = 40  # ViLT's text position embeddings (config.max_position_embeddings)


def _vqa_classifier(model):
    import torch

    if getattr(model.config, "max_image_length", -1) > 0:
        # Only pretraining configs sample patches (VQA checkpoints keep -1); ours always sees all of them.
        log.warning(
            "%s samples at most %d image patches at random; this graph uses every patch instead",
            type(model).__name__,
            model.config.max_image_length,
        )

    class ViltVqaClassifier(torch.nn.Module):
        """input_ids, attention_mask, token_type_ids (N, L), pixel_values (N, 3, H, W) -> logits (N, answers).

        `ViltForQuestionAnswering.forward` for unpadded images (no pixel mask, or an all-ones one), with the image
        patches in natural order instead of a random permutation.
        """

        def __init__(self, vqa):
            super().__init__()
            vilt = vqa.vilt
            embeddings = vilt.embeddings
            self.text_embeddings = embeddings.text_embeddings
            self.patch_embeddings = embeddings.patch_embeddings
            self.cls_token = embeddings.cls_token
            self.position_embeddings = embeddings.position_embeddings
            self.modality_embeddings = embeddings.token_type_embeddings  # 0: text, 1: image
            self.layers = vilt.encoder.layer
            self.layernorm = vilt.layernorm
            self.pooler = vilt.pooler
            self.classifier = vqa.classifier
            # The grid the position embeddings were trained on (12 x 12 for 384-pixel images and 32-pixel patches).
            self.grid = vqa.config.image_size // vqa.config.patch_size

        def embed_image(self, pixel_values):
            patches = self.patch_embeddings(pixel_values)  # (N, D, h, w)
            _, dim, height, width = patches.shape
            grid = self.position_embeddings[:, 1:, :].transpose(1, 2).reshape(1, dim, self.grid, self.grid)
            # As visual_embed: the trained grid stretched to this image's patch grid (all of it: no padding).
            positions = torch.nn.functional.interpolate(grid, size=(height, width), mode="bilinear", align_corners=True)
            patches = (patches + positions).flatten(2).transpose(1, 2)
            cls = self.cls_token + self.position_embeddings[:, :1, :]
            image = torch.cat([cls.expand(patches.shape[0], -1, -1), patches], dim=1)
            return image + self.modality_embeddings.weight[1]

        def forward(self, input_ids, attention_mask, token_type_ids, pixel_values):
            text = self.text_embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            text = text + self.modality_embeddings.weight[0]
            image = self.embed_image(pixel_values)
            hidden = torch.cat([text, image], dim=1)
            # Text padding is masked; every image patch is real. Masked keys get the dtype's minimum, as in
            # transformers' eager attention mask.
            image_mask = torch.ones(image.shape[:2], dtype=hidden.dtype, device=hidden.device)
            mask = torch.cat([attention_mask.to(hidden.dtype), image_mask], dim=1)
            bias = ((1.0 - mask) * torch.finfo(hidden.dtype).min)[:, None, None, :]
            for layer in self.layers:
                hidden = layer(hidden, bias)[0]
            pooled = self.pooler(self.layernorm(hidden))
            return self.classifier(pooled)

    return ViltVqaClassifier(model)


GRAPHS = (
    GraphSpec(
        name="vqa_classifier",
        input_names=("input_ids", "attention_mask", "token_type_ids", "pixel_values"),
        output_names=("logits",),
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "token_type_ids": {0: "batch", 1: "sequence"},
            "pixel_values": {0: "batch", 2: "height", 3: "width"},
            "logits": {0: "batch"},
        },
        build=_vqa_classifier,
    ),
)


load_model, random_model = pretrained_functions("ViltConfig", "ViltForQuestionAnswering")


def metadata(model) -> dict:
    """What the task needs beside the graph: the answers in logit order and the question length limit."""
    config = model.config
    return {
        "id2label": [str(config.id2label[i]) for i in range(config.num_labels)],
        "max_text_length": int(config.max_position_embeddings),
        "scores": "sigmoid",  # how `answer_scores` turns logits into scores (see the module docstring)
    }


save_files = save_processor_files


def tokenize_questions(
    tokenizer, questions: list[str], max_text_length: int = MAX_TEXT_LENGTH
) -> dict[str, np.ndarray]:
    """Questions -> input_ids, attention_mask, token_type_ids: int64 (N, L), padded to the longest.

    Args:
        tokenizer: The model's tokenizer (`AutoTokenizer.from_pretrained(files_dir)`: bert-base-uncased for ViLT).
        questions: The questions.
        max_text_length: Token limit including [CLS] and [SEP]: the model's position embeddings
            (`metadata()["max_text_length"]`). Longer questions are cut there, keeping the final [SEP]
            (ViltProcessor would let them through and the model would fail on them).
    """
    enc = tokenizer(list(questions), padding=True, truncation=True, max_length=max_text_length, return_tensors="np")
    ids = enc["input_ids"].astype(np.int64)
    token_types = enc.get("token_type_ids")
    return {
        "input_ids": ids,
        "attention_mask": enc["attention_mask"].astype(np.int64),
        "token_type_ids": np.zeros_like(ids) if token_types is None else token_types.astype(np.int64),
    }


def prepare_inputs(
    preprocessing, tokenizer, images, questions: str | list[str], max_text_length: int = MAX_TEXT_LENGTH
) -> dict[str, np.ndarray]:
    """The vqa_classifier graph's inputs for questions about images, as ViltProcessor prepares them.

    Args:
        preprocessing: A `studio.media.image.ViltImagePreprocessing`, or the folder with the processor files (its
            preprocessor_config.json is read each call).
        tokenizer: The model's tokenizer.
        images: One RGB PIL image (from `studio.media.image.load_image`) that every question is about, or a list
            with one image per question, all of one prepared size.
        questions: A question or a list of them.
        max_text_length: See `tokenize_questions`.

    Returns:
        {"input_ids", "attention_mask", "token_type_ids": int64 (N, L), "pixel_values": float32 (N, 3, H, W)}.

    Raises:
        ValueError: No question, a different number of images and questions, or images of different sizes.
    """
    from studio.media.image import ViltImagePreprocessing

    if not isinstance(preprocessing, ViltImagePreprocessing):
        preprocessing = ViltImagePreprocessing.from_dir(Path(preprocessing))
    questions = [questions] if isinstance(questions, str) else list(questions)
    if not questions:
        raise ValueError("at least one question is needed")
    if isinstance(images, (list, tuple)):
        if len(images) != len(questions):
            raise ValueError(f"{len(images)} images for {len(questions)} questions")
        pixels = preprocessing.batch(list(images))
    else:
        pixels = np.repeat(preprocessing(images)[None], len(questions), axis=0)
    return {**tokenize_questions(tokenizer, questions, max_text_length), "pixel_values": pixels}


class ViltInputs:
    """`prepare_inputs` with the tokenizer and image settings read once: load it per model, call it per question.

    Args:
        files_dir: Folder with the processor and tokenizer files (a model folder or an export).
        max_text_length: See `tokenize_questions`.
    """

    def __init__(self, files_dir: Path, max_text_length: int = MAX_TEXT_LENGTH) -> None:
        from transformers import AutoTokenizer

        from studio.media.image import ViltImagePreprocessing

        self.image = ViltImagePreprocessing.from_dir(Path(files_dir))
        self.tokenizer = AutoTokenizer.from_pretrained(str(files_dir))
        self.max_text_length = max_text_length

    def __call__(self, images, questions: str | list[str]) -> dict[str, np.ndarray]:
        """Graph inputs for questions about images (see `prepare_inputs`)."""
        return prepare_inputs(self.image, self.tokenizer, images, questions, self.max_text_length)


def answer_scores(logits: np.ndarray) -> np.ndarray:
    """Per-answer probabilities from logits: independent sigmoids (ViLT's VQA head was trained with BCE)."""
    from studio.scores import sigmoid

    with np.errstate(over="ignore"):  # exp overflows to inf for logits below about -709: the score is then 0
        return sigmoid(logits)


def top_answers(logits: np.ndarray, id2label: list[str], k: int = TOP_K) -> list[dict]:
    """The k best answers for one question, best first, as transformers' visual-question-answering pipeline gave them.

    Args:
        logits: The graph's logits for one question, shape (answers,).
        id2label: `metadata()["id2label"]`.
        k: How many answers (at most the number the model knows).

    Returns:
        [{"answer": str, "score": float}], scores the sigmoid of the logit (they need not sum to 1).
    """
    scores = answer_scores(np.asarray(logits).reshape(-1))
    k = min(k, scores.shape[0])
    from studio.scores import top_indices

    # Stable sort: equal scores (saturated sigmoids) keep label order, so the ranking is deterministic.
    return [{"answer": id2label[i], "score": float(scores[i])} for i in top_indices(scores, k)]


def parity_inputs(files_dir: Path, photos: list, model=None) -> dict[str, dict[str, np.ndarray]]:
    """Real inputs for checking the graph against PyTorch: a photo through our preprocessing, two real questions.

    Two questions of different lengths about one photo make a batch of 2 with text padding, so the attention mask
    is exercised and the export sees no axis of size 1 (which it would fix as a constant). A photo that is not
    square keeps height and width apart for the same reason.

    Args:
        files_dir: Folder with the processor and tokenizer files.
        photos: RGB PIL images.
        model: The loaded PyTorch model, for its question length limit.
    """
    photo = next((p for p in photos if p.width != p.height), photos[0])
    limit = int(model.config.max_position_embeddings) if model is not None else MAX_TEXT_LENGTH
    inputs = ViltInputs(files_dir, limit)(photo, ["What is on the table?", "How many cups of coffee are there here?"])
    return {"vqa_classifier": inputs}
