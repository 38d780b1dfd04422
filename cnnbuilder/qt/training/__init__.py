"""The Training panel and its parts: worker thread, live plots, feature maps, evaluation."""

from .panel import TrainingPanel

__all__ = ["TrainingPanel"]
