"""Tiny random models in the real Hugging Face directory format, with real tokenizer vocabularies: one module per model
family of `studio/families/` (BLIP's caption and VQA heads share theirs), and `vocab` for the vocabulary files.

They load through exactly the code a user's model goes through. Their weights are random: tests compare our outputs
with the reference implementation on the same weights, never with fixed expected outputs.

`MAKERS` names, for each family, the function that builds its tiny model folder, so a test can be parametrized over
the families (tests/test_families.py); the session fixtures build the same models with the same functions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.tiny import ast, blip, clap, clip, smolvlm, video_classifier, vilt, whisper, xclip

# family (a key of studio.families._MODULES) -> make(out_dir) -> out_dir, the tiny model folder written there
MAKERS: dict[str, Callable[[Path], Path]] = {
    "clip": clip.make_tiny_clip,
    "blip": blip.make_tiny_blip_caption,
    "blip_vqa": blip.make_tiny_blip_vqa,
    "vilt": vilt.make_tiny_vilt_vqa,
    "whisper": whisper.make_tiny_whisper,
    "video_classifier": video_classifier.make_tiny_videomae,
    "ast": ast.make_tiny_ast,
    "clap": clap.make_tiny_clap,
    "xclip": xclip.make_tiny_xclip,
    "smolvlm": smolvlm.make_tiny_smolvlm,
}
