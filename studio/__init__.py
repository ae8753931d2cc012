"""Multimodal Studio: point a camera, a microphone or a file at multimodal models."""

__version__ = "0.1.0"
