"""What the tiny transformer stacks share."""

from __future__ import annotations

# Every tiny transformer stack (CLIP's, BLIP's, ViLT's, X-CLIP's text and vision towers, VideoMAE's and TimeSformer's):
# 2 layers of width 32, 4 heads.
TINY_STACK = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
