"""Real-side sample weights for distillation: the :class:`SampleWeighter` protocol every matching
method accepts, vanilla (uniform) and fixed weights, and the competitors of the paper's KDE weights
(:mod:`.baselines`: group-balanced, FairDD and conflicting-only oracles, JTT-style error-set weights), and
our own label-free rarity weights with a per-class temperature (:mod:`.rarity`). The paper's KDE weighter
lives with the rest of the method in :mod:`ddlib.kde_supcon`."""

from ddlib.weighting.base import FixedWeights, SampleWeighter, UniformWeights, weighter_config
from ddlib.weighting.baselines import (ConflictingOnlyWeights, ErrorSetWeights, FairDDWeights, GroupBalancedWeights,
                                      erm_error_set)
from ddlib.weighting.rarity import RarityWeights, RarityWeightsConfig

__all__ = ["ConflictingOnlyWeights", "ErrorSetWeights", "FairDDWeights", "FixedWeights", "GroupBalancedWeights", "RarityWeights",
           "RarityWeightsConfig", "SampleWeighter",
           "UniformWeights", "erm_error_set", "weighter_config"]
