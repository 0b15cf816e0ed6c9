"""Real-side sample weights for distillation: the :class:`SampleWeighter` protocol every matching
method accepts, vanilla (uniform) and fixed weights. The paper's KDE weighter lives with the rest of
the method in :mod:`ddlib.kde_supcon`."""

from ddlib.weighting.base import FixedWeights, SampleWeighter, UniformWeights, weighter_config

__all__ = ["FixedWeights", "SampleWeighter", "UniformWeights", "weighter_config"]
