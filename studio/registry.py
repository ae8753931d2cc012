"""The model registry: one row per model a tab can use, kept as data.

A row pins a Hugging Face hub id to a commit, names the family whose graphs it exports to (`studio.families`), and
carries the full-size architecture config that `studio bench` builds with random weights (no download needed).
Adding a model means adding a row here; adding an architecture means adding a family module too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class ModelSpec:
    """One model a task can run.

    Attributes:
        task: The task (tab) it serves, e.g. "zero-shot".
        hub_id: Hugging Face repository id.
        revision: The pinned commit of that repository; users get exactly these weights. None only where no
            commit could be verified when the row was written (no hub access): the first download then pins the
            current commit in `<models-dir>/pins.json` and every later load uses it.
        family: The family module in `studio.families` that knows its graphs.
        title: What the model picker shows to people who do not read hub ids.
        licence: The weights' licence, shown beside the title.
        architecture: config.json fields of the full-size model, so benchmarks can build it with random weights.
        default: Whether the task uses this row when no model is chosen.
    """

    task: str
    hub_id: str
    revision: str | None
    family: str
    title: str
    licence: str
    architecture: Mapping = field(default_factory=dict, repr=False)
    default: bool = False

    @property
    def key(self) -> str:
        """The registry key, unique per task."""
        return f"{self.task}:{self.hub_id}"


def _clip_architecture(*, vision: dict, text: dict, projection_dim: int) -> Mapping:
    """The config.json of an OpenAI CLIP checkpoint, as far as compute cost and graph shapes depend on it."""
    text_common = dict(
        vocab_size=49408,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        # The OpenAI checkpoints carry these legacy ids (eos 2 switches pooling to argmax over input ids).
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
    )
    return MappingProxyType(
        {
            "model_type": "clip",
            "projection_dim": projection_dim,
            "logit_scale_init_value": 2.6592,
            "text_config": {**text_common, **text},
            "vision_config": {"hidden_act": "quick_gelu", "image_size": 224, **vision},
        }
    )


_CLIP_B_TEXT = dict(hidden_size=512, intermediate_size=2048, num_attention_heads=8, num_hidden_layers=12)
_CLIP_B_VISION = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12)

_ROWS: tuple[ModelSpec, ...] = (
    ModelSpec(
        task="zero-shot",
        hub_id="openai/clip-vit-base-patch32",
        revision="3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268",
        family="clip",
        title="CLIP ViT-B/32 (OpenAI) — fastest",
        licence="MIT",
        architecture=_clip_architecture(
            vision={**_CLIP_B_VISION, "patch_size": 32}, text=_CLIP_B_TEXT, projection_dim=512
        ),
        default=True,
    ),
    ModelSpec(
        task="zero-shot",
        hub_id="openai/clip-vit-base-patch16",
        revision="57c216476eefef5ab752ec549e440a49ae4ae5f3",
        family="clip",
        title="CLIP ViT-B/16 (OpenAI) — more accurate, about 4x the compute",
        licence="MIT",
        architecture=_clip_architecture(
            vision={**_CLIP_B_VISION, "patch_size": 16}, text=_CLIP_B_TEXT, projection_dim=512
        ),
    ),
    ModelSpec(
        task="zero-shot",
        hub_id="openai/clip-vit-large-patch14",
        revision="32bd64288804d66eefd0ccbe215aa642df71cc41",
        family="clip",
        title="CLIP ViT-L/14 (OpenAI) — most accurate, needs a GPU for live use",
        licence="MIT",
        architecture=_clip_architecture(
            vision=dict(
                hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=24, patch_size=14
            ),
            text=dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12),
            projection_dim=768,
        ),
    ),
)


_BLIP_BASE_CAPTION = MappingProxyType(
    {
        "model_type": "blip",
        "projection_dim": 512,
        "text_config": dict(
            vocab_size=30524,
            hidden_size=768,
            encoder_hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=512,
            bos_token_id=30522,
            sep_token_id=102,
            pad_token_id=0,
        ),
        "vision_config": dict(
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            image_size=384,
            patch_size=16,
            layer_norm_eps=1e-5,
        ),
    }
)

_ROWS += (
    ModelSpec(
        task="caption",
        hub_id="Salesforce/blip-image-captioning-base",
        revision="82a37760796d32b1411fe092ab5d4e227313294b",
        family="blip",
        title="BLIP base (Salesforce) — captions in English",
        licence="BSD-3-Clause",
        architecture=_BLIP_BASE_CAPTION,
        default=True,
    ),
)


_ROWS += (
    ModelSpec(
        task="vqa",
        hub_id="dandelin/vilt-b32-finetuned-vqa",
        revision=None,  # no commit could be verified offline; pinned at first download (see ModelSpec.revision)
        family="vilt",
        title="ViLT B/32 (VQAv2) — fast, picks from 3,129 common answers",
        licence="Apache-2.0",
        architecture=MappingProxyType(
            {
                "model_type": "vilt",
                "hidden_size": 768,
                "num_hidden_layers": 12,
                "num_attention_heads": 12,
                "intermediate_size": 3072,
                "image_size": 384,
                "patch_size": 32,
                "max_position_embeddings": 40,
                "vocab_size": 30522,
                "num_labels": 3129,
            }
        ),
        default=True,
    ),
    ModelSpec(
        task="vqa",
        hub_id="Salesforce/blip-vqa-base",
        revision=None,  # no commit could be verified offline; pinned at first download (see ModelSpec.revision)
        family="blip_vqa",
        title="BLIP VQA base (Salesforce) — writes its answer word by word",
        licence="BSD-3-Clause",
        architecture=_BLIP_BASE_CAPTION,
    ),
    ModelSpec(
        task="speech-to-text",
        hub_id="openai/whisper-tiny.en",
        revision=None,  # no commit could be verified offline; pinned at first download (see ModelSpec.revision)
        family="whisper",
        title="Whisper tiny.en (OpenAI) — English speech to text",
        licence="MIT",
        architecture=MappingProxyType(
            {
                "model_type": "whisper",
                "d_model": 384,
                "encoder_layers": 4,
                "decoder_layers": 4,
                "encoder_attention_heads": 6,
                "decoder_attention_heads": 6,
                "encoder_ffn_dim": 1536,
                "decoder_ffn_dim": 1536,
                "vocab_size": 51864,
                "num_mel_bins": 80,
                "max_source_positions": 1500,
                "max_target_positions": 448,
            }
        ),
        default=True,
    ),
)


_VIT_BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, image_size=224)

_ROWS += (
    ModelSpec(
        task="video",
        hub_id="MCG-NJU/videomae-base-finetuned-kinetics",
        # Verified in several public sources (MTEB's model metadata, projects pinning it, Hugging Face cache paths).
        revision="488eb9a0565f257b32866000305c8178965eb9f6",
        family="video_classifier",
        title="VideoMAE base (Kinetics-400) — 400 actions from 16 frames",
        licence="CC-BY-NC-4.0",
        architecture=MappingProxyType(
            {
                "model_type": "videomae",
                **_VIT_BASE,
                "patch_size": 16,
                "num_frames": 16,
                "tubelet_size": 2,
                "use_mean_pooling": True,
                "num_labels": 400,
            }
        ),
        default=True,
    ),
    ModelSpec(
        task="video",
        hub_id="facebook/timesformer-base-finetuned-k400",
        revision="8aaf40ea7d3d282dcb0a5dea01a198320d15d6c0",  # verified like VideoMAE's (MTEB, cache paths)
        family="video_classifier",
        title="TimeSformer base (Kinetics-400) — divided space-time attention, 8 frames",
        licence="CC-BY-NC-4.0",
        architecture=MappingProxyType(
            {
                "model_type": "timesformer",
                **_VIT_BASE,
                "patch_size": 16,
                "num_frames": 8,
                "attention_type": "divided_space_time",
                "num_labels": 400,
            }
        ),
    ),
    ModelSpec(
        task="video",
        hub_id="microsoft/xclip-base-patch32",
        revision="a2e27a78a2b5d802e894b8a1ef14f3a8ce490963",  # verified in several public sources (MTEB, pinned use)
        family="xclip",
        title="X-CLIP base/32 — the actions you type (zero-shot), 8 frames",
        licence="MIT",
        architecture=MappingProxyType(
            {
                "model_type": "xclip",
                "projection_dim": 512,
                "prompt_layers": 2,
                "text_config": {"hidden_size": 512, "num_hidden_layers": 12, "num_attention_heads": 8},
                "vision_config": {
                    **_VIT_BASE,
                    "patch_size": 32,
                    "num_frames": 8,
                    "mit_hidden_size": 512,
                    "mit_num_hidden_layers": 1,
                },
            }
        ),
    ),
)


# Sound & scene (audio-visual events): the audio model is picked here; the picture is scored by the zero-shot rows.
_ROWS += (
    ModelSpec(
        task="av-events",
        hub_id="MIT/ast-finetuned-audioset-10-10-0.4593",
        # Verified in public sources: the commit that projects pin and the Hugging Face cache snapshot paths name.
        revision="f826b80d28226b62986cc218e5cec390b1096902",
        family="ast",
        title="AST AudioSet (MIT) — names 527 kinds of sound, about 10 s at a time",
        licence="BSD-3-Clause",
        architecture=MappingProxyType(
            {
                "model_type": "audio-spectrogram-transformer",
                "hidden_size": 768,
                "num_hidden_layers": 12,
                "num_attention_heads": 12,
                "intermediate_size": 3072,
                "patch_size": 16,
                "frequency_stride": 10,
                "time_stride": 10,
                "max_length": 1024,
                "num_mel_bins": 128,
                "num_labels": 527,
            }
        ),
        default=True,
    ),
    ModelSpec(
        task="av-events",
        hub_id="laion/clap-htsat-unfused",
        # Verified in public sources: the commit that projects pin and the Hugging Face cache snapshot paths name.
        revision="8fa0f1c6d0433df6e97c127f64b2a1d6c0dcda8a",
        family="clap",
        title="CLAP HTSAT (LAION) — listens for the labels you type",
        licence="Apache-2.0",
        architecture=MappingProxyType(
            {
                "model_type": "clap",
                "projection_dim": 512,
                # HTSAT-tiny audio encoder: Swin stages 2, 2, 6, 2 over a 256x256 image of the spectrogram.
                "audio_config": {
                    "spec_size": 256,
                    "num_mel_bins": 64,
                    "patch_size": 4,
                    "patch_stride": [4, 4],
                    "window_size": 8,
                    "patch_embeds_hidden_size": 96,
                    "hidden_size": 768,
                    "depths": [2, 2, 6, 2],
                    "num_attention_heads": [4, 8, 16, 32],
                    "enable_fusion": False,
                },
                # RoBERTa-base text encoder.
                "text_config": {
                    "vocab_size": 50265,
                    "hidden_size": 768,
                    "num_hidden_layers": 12,
                    "num_attention_heads": 12,
                    "intermediate_size": 3072,
                    "max_position_embeddings": 514,
                    "type_vocab_size": 1,
                },
            }
        ),
    ),
)


class Registry:
    """Registry rows by key; a duplicate key is a programming error and fails loudly."""

    def __init__(self, rows: tuple[ModelSpec, ...] = ()) -> None:
        self._rows: dict[str, ModelSpec] = {}
        for row in rows:
            self.add(row)

    def add(self, spec: ModelSpec) -> None:
        """Adds a row.

        Raises:
            KeyError: A row with the same task and hub id exists.
        """
        if spec.key in self._rows:
            raise KeyError(f"duplicate registry row {spec.key}")
        if spec.default and any(r.default for r in self.for_task(spec.task)):
            raise KeyError(f"two default models for task {spec.task}")
        self._rows[spec.key] = spec

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._rows.values())

    def for_task(self, task: str) -> list[ModelSpec]:
        """Rows serving one task, default first."""
        return sorted((r for r in self._rows.values() if r.task == task), key=lambda r: not r.default)

    def default_for(self, task: str) -> ModelSpec:
        """The task's default row."""
        for row in self.for_task(task):
            if row.default:
                return row
        raise KeyError(f"no default model for task {task}")

    def find(self, task: str, hub_id: str) -> ModelSpec | None:
        """The row for a hub id (case-insensitive, as the hub is), or None."""
        for row in self.for_task(task):
            if row.hub_id.lower() == hub_id.lower():
                return row
        return None


REGISTRY = Registry(_ROWS)
