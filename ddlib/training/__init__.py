"""Training fresh networks and the evaluation protocol.

* :mod:`.objectives` — the training-objective slot: plain cross-entropy (the default), weighted
  cross-entropy, and the protocol that de-biasing methods (LfF, DFA, ...) implement;
* :mod:`.loop` — epochs, shuffling and per-sample augmentation, shared by every objective;
* :mod:`.evaluation` — k fresh networks per set, tested once on the unbiased test split, cached.
"""

from ddlib.training.evaluation import (Accuracy, EvalResult, EvalSettings, FullDataSettings, evaluate_full_data,
                                       evaluate_full_data_cached, evaluate_images, evaluate_synthetic_cached,
                                       split_accuracy)
from ddlib.training.loop import predict, train_classifier, train_one_epoch
from ddlib.training.objectives import (CrossEntropy, ObjectiveRun, SupervisedRun, TrainConfig, TrainingObjective,
                                       TrainingSetup, WeightedCrossEntropy)

__all__ = ["Accuracy", "CrossEntropy", "EvalResult", "EvalSettings", "FullDataSettings", "ObjectiveRun", "SupervisedRun", "TrainConfig",
           "TrainingObjective", "TrainingSetup", "WeightedCrossEntropy", "evaluate_full_data",
           "evaluate_full_data_cached", "evaluate_images", "evaluate_synthetic_cached", "predict", "split_accuracy",
           "train_classifier", "train_one_epoch"]
