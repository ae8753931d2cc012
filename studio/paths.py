"""Where Studio keeps what a user's machine makes: exports and local model copies."""

from __future__ import annotations

import os
from pathlib import Path


def default_models_dir() -> Path:
    """The models directory: `$STUDIO_MODELS_DIR`, else `exported/` of this checkout, else a user cache folder.

    Returns:
        The directory (not created here).
    """
    env = os.environ.get("STUDIO_MODELS_DIR")
    if env:
        return Path(env).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file():
        return checkout / "exported"
    return Path.home() / ".cache" / "multimodal-studio" / "exported"


def assets_dir() -> Path:
    """Example inputs shipped with the app (photos, sounds, clips)."""
    return Path(__file__).resolve().parents[1] / "assets"
