"""The paper's method, all in one place: re-weight the real samples by their kernel density in the
embedding of a surrogate trained with supervised contrastive (SupCon) learning.

* :mod:`.supcon` — the supervised contrastive loss;
* :mod:`.surrogate` — the surrogate encoder, trained on the biased data, and its cached embedding;
* :mod:`.kde` — Gaussian kernel densities within a class and ``softmax(−d / τ)`` weights;
* :mod:`.weights` — :class:`KDEWeights`, the real-side weighter every distillation method accepts.
"""

from ddlib.kde_supcon.kde import (KDEConfig, WeightDiagnostics, class_densities, density_to_weights, kde_density,
                                  kde_weights, weight_diagnostics)
from ddlib.kde_supcon.supcon import supcon_loss
from ddlib.kde_supcon.surrogate import Surrogate, SurrogateConfig, train_surrogate
from ddlib.kde_supcon.weights import KDEWeights

__all__ = ["KDEConfig", "KDEWeights", "Surrogate", "SurrogateConfig", "WeightDiagnostics", "class_densities",
           "density_to_weights", "kde_density", "kde_weights", "supcon_loss", "train_surrogate",
           "weight_diagnostics"]
