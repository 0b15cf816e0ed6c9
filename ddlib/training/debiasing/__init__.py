"""Training-time de-biasing objectives (notebook 04), all through the training-objective slot.

* :mod:`.erm` — the baseline: cross-entropy with the same network/optimiser choices;
* :mod:`.gce` — generalised cross-entropy, the loss of the deliberately biased networks;
* :mod:`.lff` — Learning from Failure (per-sample loss averages, relative difficulty);
* :mod:`.dfa` — disentangled feature augmentation (intrinsic/bias encoders, feature swap);
* :mod:`.selecmix` — mixup of contradicting pairs chosen by a biased auxiliary network;
* :mod:`.jtt` — Just Train Twice (error set of a brief ERM run, up-weighted);
* :mod:`.networks` — the choice of network ("convnet" | "mlp") and optimiser they share.
"""

from ddlib.training.debiasing.dfa import DFA, swap_bias_features
from ddlib.training.debiasing.erm import ERM
from ddlib.training.debiasing.gce import generalized_cross_entropy
from ddlib.training.debiasing.jtt import JTT, misclassified
from ddlib.training.debiasing.lff import LfF, SampleLossAverage, relative_difficulty
from ddlib.training.debiasing.selecmix import OTHER_LABEL, SAME_LABEL, SelecMix, select_partners

__all__ = ["DFA", "ERM", "JTT", "LfF", "OTHER_LABEL", "SAME_LABEL", "SampleLossAverage", "SelecMix",
           "generalized_cross_entropy", "misclassified", "relative_difficulty", "select_partners",
           "swap_bias_features"]
