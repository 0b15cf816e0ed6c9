"""Dataset distillation methods and what they share."""

from ddlib.distill.dc import DCConfig, class_gradients, dc_loss, distill_dc
from ddlib.distill.dm import DMConfig, distill_dm, dm_loss, dm_loss_per_class
from ddlib.distill.matching import gradient_distance
from ddlib.distill.mtt import (ExpertConfig, MTTConfig, MTTSchedule, distill_mtt, load_experts, parameter_distance_loss,
                  train_expert, trajectory_loss)
from ddlib.distill.registry import METHODS, distill, method_config
from ddlib.distill.synthetic import SyntheticSet, init_from_real, sample_class_batches
from ddlib.weighting.base import FixedWeights, SampleWeighter, UniformWeights

__all__ = ["DCConfig", "DMConfig", "ExpertConfig", "FixedWeights", "METHODS", "MTTConfig", "MTTSchedule",
           "SampleWeighter", "SyntheticSet", "UniformWeights", "class_gradients", "dc_loss", "distill",
           "distill_dc", "distill_dm", "distill_mtt", "dm_loss", "dm_loss_per_class", "gradient_distance",
           "init_from_real", "load_experts", "method_config", "parameter_distance_loss", "sample_class_batches",
           "train_expert", "trajectory_loss"]
