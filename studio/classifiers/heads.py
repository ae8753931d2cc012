"""Few-shot heads on frozen, normalized image embeddings, blended with the zero-shot text classifier.

- Linear probe: multinomial logistic regression (CLIP's linear-probe evaluation), trained with full-batch L-BFGS and
  weight decay; the loss of every step is kept for the loss curve.
- Prototypes: each class's mean embedding (a cache/prototype classifier in the spirit of Tip-Adapter's training-free
  cache), scored like zero-shot: scaled cosine similarity.

Both are a linear map of the normalized embedding (weight, bias), so one ONNX graph serves either. The blend mixes
probabilities: (1 - blend) * zero-shot + blend * trained, so 0 is zero-shot only and 1 the trained head only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from studio.progress import Progress, no_progress
from studio.scores import normalize, softmax

METHODS = {"linear": "Linear probe (logistic regression)", "prototype": "Prototypes (class means)"}
# Weight decay of the probe: strong enough to keep a handful of examples from being memorized into huge weights.
WEIGHT_DECAY = 1e-3
MAX_STEPS = 100


@dataclass
class Head:
    """A trained head with its zero-shot counterpart.

    Attributes:
        classes: Class names, in output order.
        weight: (C, D) map of normalized image embeddings to the trained head's logits.
        bias: (C,).
        text_embeds: (C, D) normalized zero-shot text embeddings of the class names.
        logit_scale: CLIP's temperature for the zero-shot logits.
        blend: 0 = zero-shot only, 1 = trained head only.
        method: "linear" or "prototype".
    """

    classes: tuple[str, ...]
    weight: np.ndarray
    bias: np.ndarray
    text_embeds: np.ndarray
    logit_scale: float
    blend: float
    method: str

    def zero_shot(self, embeds: np.ndarray) -> np.ndarray:
        """Zero-shot probabilities (N, C) of normalized embeddings."""
        return softmax(self.logit_scale * embeds.astype(np.float64) @ self.text_embeds.astype(np.float64).T)

    def trained(self, embeds: np.ndarray) -> np.ndarray:
        """The trained head's probabilities (N, C)."""
        return softmax(embeds.astype(np.float64) @ self.weight.astype(np.float64).T + self.bias)

    def probabilities(self, embeds: np.ndarray, blend: float | None = None) -> np.ndarray:
        """Blended probabilities (N, C)."""
        a = self.blend if blend is None else blend
        return (1.0 - a) * self.zero_shot(embeds) + a * self.trained(embeds)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"weight": self.weight, "bias": self.bias, "text_embeds": self.text_embeds}


def train_linear_probe(
    embeds: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    weight_decay: float = WEIGHT_DECAY,
    steps: int = MAX_STEPS,
    progress: Progress = no_progress,
    should_stop=None,
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Fits multinomial logistic regression on normalized embeddings.

    Args:
        embeds: (N, D) normalized embeddings.
        labels: (N,) class indices.
        n_classes: C.
        weight_decay: L2 penalty on the weights.
        steps: L-BFGS iterations at most.
        progress: Receives the fraction of steps done.
        should_stop: Returns True to stop early (cancel).

    Returns:
        weight (C, D), bias (C,), and the loss after each step.
    """
    import torch

    x = torch.from_numpy(np.ascontiguousarray(embeds, dtype=np.float64))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    # Standardized inputs keep L-BFGS well conditioned (unit vectors differ in small directions); the standardization
    # is folded back into the weights afterwards, so the head still applies to normalized embeddings as they are.
    mean = x.mean(dim=0)
    std = x.std(dim=0, unbiased=False).clamp_min(1e-6)
    z = (x - mean) / std
    w = torch.zeros(n_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=1, history_size=20, line_search_fn="strong_wolfe")
    losses: list[float] = []

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ w.T + b, y) + weight_decay * (w * w).sum()
        loss.backward()
        return loss

    for step in range(steps):
        if should_stop is not None and should_stop():
            break
        loss = float(opt.step(closure).detach())
        losses.append(loss)
        progress((step + 1) / steps, f"Training step {step + 1} of {steps} (loss {loss:.3f})")
        if len(losses) > 5 and abs(losses[-2] - losses[-1]) < 1e-6 * max(1.0, abs(losses[-1])):
            break
    with torch.no_grad():
        weight = w / std
        bias = b - (mean / std) @ w.T
    return weight.numpy().astype(np.float32), bias.numpy().astype(np.float32), losses


def prototypes(embeds: np.ndarray, labels: np.ndarray, n_classes: int, logit_scale: float) -> tuple:
    """Class-mean prototypes as a linear head: weight = logit_scale * normalized means, bias 0."""
    means = np.stack([embeds[labels == c].mean(axis=0) for c in range(n_classes)])
    return (logit_scale * normalize(means)).astype(np.float32), np.zeros(n_classes, np.float32)


@dataclass
class Evaluation:
    """Held-out accuracies and the confusion matrix of the blended classifier.

    Attributes:
        n_test: How many held-out examples (0: no split was possible).
        accuracy: {"zero_shot", "linear", "prototype", "trained", "blended"} in 0..1 (None without held-out examples).
        confusion: (C, C) counts, rows true class, columns predicted (blended).
    """

    n_test: int
    accuracy: dict[str, float | None]
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))

    def as_dict(self) -> dict:
        return {"held_out": self.n_test, "accuracy": self.accuracy, "confusion": self.confusion.tolist()}


def evaluate(heads: dict[str, Head], method: str, blend: float, embeds: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Accuracies of zero-shot, each trained head, the chosen one, and the blend, on held-out examples."""
    n_classes = len(heads[method].classes)
    if len(labels) == 0:
        none = dict.fromkeys(("zero_shot", "linear", "prototype", "trained", "blended"))
        return Evaluation(0, none, np.zeros((n_classes, n_classes), dtype=np.int64))

    def acc(probs):
        return float((probs.argmax(axis=1) == labels).mean())

    chosen = heads[method]
    blended = chosen.probabilities(embeds, blend).argmax(axis=1)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (labels, blended), 1)
    accuracy = {
        "zero_shot": acc(chosen.zero_shot(embeds)),
        **{m: acc(h.trained(embeds)) for m, h in heads.items()},
        "trained": acc(chosen.trained(embeds)),
        "blended": float((blended == labels).mean()),
    }
    return Evaluation(len(labels), accuracy, confusion)
