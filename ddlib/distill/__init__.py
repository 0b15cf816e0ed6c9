"""Dataset distillation methods and what they share."""

from .dm import DMConfig, distill_dm, dm_loss, dm_loss_per_class
from .synthetic import SyntheticSet, init_from_real, sample_class_batches
from .weights import FixedWeights, SampleWeighter, UniformWeights

__all__ = ["DMConfig", "FixedWeights", "SampleWeighter", "SyntheticSet", "UniformWeights", "distill_dm",
           "dm_loss", "dm_loss_per_class", "init_from_real", "sample_class_batches"]
