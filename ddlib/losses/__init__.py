"""Training objectives that are not plain cross-entropy."""

from .supcon import supcon_loss

__all__ = ["supcon_loss"]
