"""A tiny random ViltForQuestionAnswering in the real Hugging Face format, with the real bert-base-uncased tokenizer
(family "vilt")."""

from __future__ import annotations

from pathlib import Path

from tests.tiny.stack import TINY_STACK
from tests.tiny.vocab import bert_tokenizer

# Answers in the style of VQAv2's answer list (dandelin/vilt-b32-finetuned-vqa's id2label holds 3,129 of these).
ANSWERS = ("yes", "no", "2", "1", "cat", "dog", "red", "white", "coffee", "table", "astronaut", "nothing")
TINY_IMAGE_SIZE = 64  # the processor's shortest edge and the position-embedding grid's size in pixels
TINY_PATCH_SIZE = 16  # 4 x 4 trained grid; photos come out 4 x 6 patches, so positions are interpolated
# BERT's usual 0.02 leaves a tiny random ViLT's answers nearly the same for every photo and question (the [CLS] state
# barely moves); 0.3 makes them depend on both, so a wrong image or text path changes the top answers.
INIT_STD = 0.3


def make_tiny_vilt_vqa(out: Path, seed: int = 0) -> Path:
    """Saves a tiny random ViltForQuestionAnswering with ViltProcessor files (BERT tokenizer, ViLT image processor).

    Args:
        out: The model directory to write.
        seed: Weight seed.
    """
    import torch
    from transformers import ViltConfig, ViltForQuestionAnswering, ViltImageProcessorPil, ViltProcessor

    torch.manual_seed(seed)
    config = ViltConfig(
        vocab_size=30522,
        **TINY_STACK,
        image_size=TINY_IMAGE_SIZE,
        patch_size=TINY_PATCH_SIZE,
        max_position_embeddings=40,
        initializer_range=INIT_STD,
        id2label=dict(enumerate(ANSWERS)),
        label2id={answer: i for i, answer in enumerate(ANSWERS)},
        architectures=["ViltForQuestionAnswering"],
    )
    model = ViltForQuestionAnswering(config).eval()
    with torch.no_grad():
        # ViLT starts its [CLS] token and position embeddings at zero; trained ones are not, and zeros would leave
        # the position interpolation untested.
        model.vilt.embeddings.position_embeddings.normal_(0.0, INIT_STD)
        model.vilt.embeddings.cls_token.normal_(0.0, INIT_STD)
    tokenizer = bert_tokenizer()
    image_processor = ViltImageProcessorPil(size={"shortest_edge": TINY_IMAGE_SIZE}, size_divisor=32)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    ViltProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(str(out))
    return out
