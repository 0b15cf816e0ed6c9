"""Real-side sample weights for distillation: the :class:`SampleWeighter` protocol every matching
method accepts, vanilla (uniform) and fixed weights, and the competitors of the paper's KDE weights
(:mod:`.baselines`: group-balanced and conflicting-only oracles, JTT-style error-set weights). The
paper's KDE weighter lives with the rest of the method in :mod:`ddlib.kde_supcon`."""

from ddlib.weighting.base import FixedWeights, SampleWeighter, UniformWeights, weighter_config
from ddlib.weighting.baselines import ConflictingOnlyWeights, ErrorSetWeights, GroupBalancedWeights, erm_error_set

__all__ = ["ConflictingOnlyWeights", "ErrorSetWeights", "FixedWeights", "GroupBalancedWeights", "SampleWeighter",
           "UniformWeights", "erm_error_set", "weighter_config"]
