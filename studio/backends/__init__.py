"""Backends run one graph: `run(dict[str, ndarray]) -> dict[str, ndarray]`, on ONNX Runtime or PyTorch."""

from studio.backends.base import Backend, RuntimeInfo

__all__ = ["Backend", "RuntimeInfo"]
