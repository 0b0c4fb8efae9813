"""tpru: temporal and procedural understanding for multimodal models."""

__version__ = "0.1.0"
