"""Advanced: full contrastive fine-tuning of the image-text model on a classifier's examples.

Every example is paired with its class prompt ("a photo of a {class}."); the loss is CLIP's symmetric InfoNCE over the
batch, with examples of the same class counted as positives of each other (soft targets), and CLIP's learnable
temperature. AdamW with a small learning rate keeps the model close to where it started; mixed precision (bfloat16
autocast) is used on CUDA only. After each epoch a checkpoint is written atomically, so a cancel or a crash resumes
from the last finished epoch. The held-out split is the linear probe's (same examples, same seed), so the report says
whether fine-tuning beat the probe on exactly the same pictures.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.atomic import replaced_on_success, temporary_prefix
from studio.classifiers.store import ClassifierStore
from studio.classifiers.training import HELD_OUT_FRACTION, TrainingCancelled, check_trainable
from studio.errors import ClassifierError
from studio.heldout import stratified_split
from studio.progress import Progress, no_progress

log = logging.getLogger(__name__)

TEMPLATE = "a photo of a {}."
CHECKPOINT_DIR = ".contrastive"
CHECKPOINT = "checkpoint.pt"
MODEL_DIR = "fine-tuned-model"
MAX_LOGIT_SCALE = 100.0  # CLIP clamps its temperature here


@dataclass(frozen=True)
class ContrastiveSettings:
    """Fine-tuning settings.

    Attributes:
        epochs: Passes over the training examples.
        learning_rate: AdamW's; small (1e-5) so a few examples nudge the model instead of overwriting it.
        weight_decay: AdamW's decoupled weight decay (CLIP used 0.2; 0.1 is a common fine-tuning choice).
        batch_size: Examples per step.
        seed: Shuffling and split seed.
    """

    epochs: int = 3
    learning_rate: float = 1e-5
    weight_decay: float = 0.1
    batch_size: int = 16
    seed: int = 0


@dataclass
class ContrastiveReport:
    """What fine-tuning did and how it compares, on the held-out examples, with zero-shot and the linear probe."""

    epochs_done: int
    resumed_from: int
    losses: list[float]
    accuracy: dict[str, float | None]
    held_out: int
    model_dir: str | None
    device: str
    mixed_precision: bool
    seconds: float
    notices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _checkpoint_dir(store: ClassifierStore, name: str) -> Path:
    return store.folder(name) / CHECKPOINT_DIR


def _save_checkpoint(path: Path, state: dict) -> None:
    """torch.save to a temp file beside `path`, then rename: a kill mid-write leaves the previous checkpoint."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_on_success(path) as tmp:
        torch.save(state, tmp)


def fine_tune(
    store: ClassifierStore,
    name: str,
    models_dir: Path,
    settings: ContrastiveSettings = ContrastiveSettings(),
    device: str = "auto",
    resume: bool = True,
    progress: Progress = no_progress,
    should_stop=None,
) -> ContrastiveReport:
    """Fine-tunes the classifier's model contrastively and compares it on the held-out examples.

    Args:
        store: Where the classifier is.
        name: The classifier.
        models_dir: Root of exports and local copies (to find the model's files).
        settings: Epochs, learning rate...
        device: "auto", "cuda" or "cpu".
        resume: Continue from the last checkpoint when there is one for the same settings and examples.
        progress: Receives fractions and sentences.
        should_stop: Returns True to stop after the current step; the last finished epoch stays as a checkpoint.

    Returns:
        The report; the fine-tuned model is saved as a model folder the Zero-shot tab can use.

    Raises:
        ClassifierError: Missing examples or model files, or a cancel (the checkpoint is kept for resuming).
    """
    import torch

    from studio.backends.pytorch import torch_device
    from studio.families import get_family, save_processor_files
    from studio.media.image import ImagePreprocessing, load_image
    from studio.media.text import TextTokenizer
    from studio.sources import resolve

    if settings.epochs < 1 or not 0 < settings.learning_rate < 1 or settings.batch_size < 2:
        raise ClassifierError("Use at least 1 epoch, a learning rate between 0 and 1, and batches of at least 2.")
    examples = check_trainable(store, name)
    model_name = store.meta(name).get("model")
    source = resolve(model_name, "zero-shot", models_dir)
    if source.local_dir is None:
        raise ClassifierError(
            f"Fine-tuning needs the model's files on this computer, and {source.display_name} is not here yet; use it "
            "once in the Zero-shot tab (it is downloaded then) and try again."
        )
    started = time.perf_counter()
    dev, _ = torch_device(device)
    amp = dev == "cuda"
    classes = list(examples)
    items = [p for c in classes for _, p in examples[c]]
    labels = np.array([i for i, c in enumerate(classes) for _ in examples[c]], dtype=np.int64)
    train_idx, test_idx = stratified_split(labels, HELD_OUT_FRACTION)
    notices = []
    if len(test_idx) == 0:
        notices.append("Too few examples to keep some aside for testing, so no held-out accuracy can be measured.")

    progress(0.02, "Loading the model for fine-tuning…")
    family = get_family(source.family)
    model = family.load_model(source.local_dir).to(dev)
    prep = ImagePreprocessing.from_dir(source.local_dir)
    tokens = TextTokenizer(source.local_dir, family.TEXT_MAX_LENGTH)([TEMPLATE.format(c) for c in classes])
    input_ids = torch.from_numpy(tokens["input_ids"]).to(dev)
    attention = torch.from_numpy(tokens["attention_mask"]).to(dev)
    pixels = torch.from_numpy(prep.batch([load_image(p) for p in items]))

    def accuracy(idx) -> float | None:
        if len(idx) == 0:
            return None
        model.eval()
        with torch.no_grad():
            img = model.get_image_features(pixel_values=pixels[idx].to(dev))
            txt = model.get_text_features(input_ids=input_ids, attention_mask=attention)
            img = getattr(img, "pooler_output", img)
            txt = getattr(txt, "pooler_output", txt)
            pred = (
                torch.nn.functional.normalize(img.float(), dim=-1)
                @ torch.nn.functional.normalize(txt.float(), dim=-1).T
            ).argmax(1)
        return float((pred.cpu().numpy() == labels[idx]).mean())

    before = accuracy(test_idx)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=settings.learning_rate,
        weight_decay=settings.weight_decay,
    )
    checkpoint = _checkpoint_dir(store, name) / CHECKPOINT
    identity = {"settings": settings.__dict__, "items": [p.name for p in items], "model": str(source.local_dir)}
    start_epoch, losses = 0, []
    if resume and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=dev, weights_only=False)
        if state.get("identity") == identity:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start_epoch, losses = state["epoch"], list(state["losses"])
            notices.append(f"Resumed from the checkpoint after epoch {start_epoch}.")
        else:
            notices.append("The last checkpoint was made with other settings or examples, so training starts over.")

    train = torch.from_numpy(train_idx)
    steps_per_epoch = max(1, -(-len(train) // settings.batch_size))
    for epoch in range(start_epoch, settings.epochs):
        model.train()
        order = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(settings.seed + epoch))]
        epoch_loss = []
        for step in range(steps_per_epoch):
            if should_stop is not None and should_stop():
                raise TrainingCancelled(
                    f"Fine-tuning was cancelled during epoch {epoch + 1}; "
                    + (
                        f"the checkpoint after epoch {epoch} is kept, so it can resume."
                        if epoch
                        else "nothing is kept."
                    )
                )
            batch = order[step * settings.batch_size : (step + 1) * settings.batch_size]
            if len(batch) < 2:
                continue
            y = torch.from_numpy(labels[batch.numpy()]).to(dev)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                img = model.get_image_features(pixel_values=pixels[batch].to(dev))
                txt = model.get_text_features(input_ids=input_ids[y], attention_mask=attention[y])
                img = getattr(img, "pooler_output", img)
                txt = getattr(txt, "pooler_output", txt)
            img = torch.nn.functional.normalize(img.float(), dim=-1)
            txt = torch.nn.functional.normalize(txt.float(), dim=-1)
            logits = model.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE) * img @ txt.T
            # Pictures of one class share one prompt: every same-class pair is a positive (soft targets).
            same = (y[:, None] == y[None, :]).float()
            target = same / same.sum(dim=1, keepdim=True)
            loss = 0.5 * (
                torch.sum(-target * torch.log_softmax(logits, dim=1), dim=1).mean()
                + torch.sum(-target * torch.log_softmax(logits.T, dim=1), dim=1).mean()
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, np.log(MAX_LOGIT_SCALE))
            epoch_loss.append(float(loss.detach()))
            done = (epoch - start_epoch) * steps_per_epoch + step + 1
            total = (settings.epochs - start_epoch) * steps_per_epoch
            progress(0.05 + 0.85 * done / total, f"Epoch {epoch + 1} of {settings.epochs}, loss {epoch_loss[-1]:.3f}")
        losses.append(float(np.mean(epoch_loss)) if epoch_loss else float("nan"))
        _save_checkpoint(
            checkpoint,
            {
                "identity": identity,
                "epoch": epoch + 1,
                "losses": losses,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
            },
        )

    progress(0.92, "Measuring on the held-out examples…")
    after = accuracy(test_idx)
    probe = _linear_probe_accuracy(store, name)
    progress(0.95, "Saving the fine-tuned model…")
    model_dir = store.folder(name) / MODEL_DIR
    tmp = Path(tempfile.mkdtemp(dir=model_dir.parent, prefix=temporary_prefix(MODEL_DIR, "saving")))
    try:
        model.eval().to("cpu").save_pretrained(str(tmp))
        save_processor_files(source.local_dir, tmp)
        old = model_dir.with_name(f"{temporary_prefix(MODEL_DIR, 'old')}{time.monotonic_ns()}")
        if model_dir.exists():
            model_dir.rename(old)
        tmp.rename(model_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    progress(1.0, "Fine-tuned.")
    return ContrastiveReport(
        epochs_done=settings.epochs,
        resumed_from=start_epoch,
        losses=[round(x, 5) for x in losses],
        accuracy={"zero_shot_before": before, "fine_tuned": after, "linear_probe": probe},
        held_out=int(len(test_idx)),
        model_dir=str(model_dir),
        device=dev.upper() if dev == "cuda" else "CPU",
        mixed_precision=amp,
        seconds=round(time.perf_counter() - started, 2),
        notices=notices,
    )


def _linear_probe_accuracy(store: ClassifierStore, name: str) -> float | None:
    """The held-out accuracy of the newest saved linear probe, if it was trained on the same examples."""
    try:
        saved = store.load(name)
    except ClassifierError:
        return None
    accuracy = saved.head.get("accuracy") or {}
    return accuracy.get("linear")
