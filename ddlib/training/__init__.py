"""Training fresh networks and the evaluation protocol.

* :mod:`.objectives` — the training-objective slot: plain cross-entropy (the default), weighted
  cross-entropy, and the protocol that de-biasing methods (LfF, DFA, ...) implement;
* :mod:`.loop` — epochs, shuffling and per-sample augmentation, shared by every objective;
* :mod:`.plateau` — training until the validation accuracy plateaus, with the validation curve;
* :mod:`.evaluation` — k fresh networks per set, tested once on a chosen split (test by default), cached.
"""

from ddlib.training.evaluation import (Accuracy, EvalResult, EvalSettings, FullDataResult, FullDataSettings,
                                       evaluate_full_data, evaluate_full_data_cached, evaluate_full_data_converged,
                                       evaluate_images, evaluate_synthetic_cached, split_accuracy, split_of)
from ddlib.training.loop import predict, train_classifier, train_one_epoch
from ddlib.training.plateau import CurvePoint, PlateauRule, PlateauRun, train_until_plateau
from ddlib.training.objectives import (CrossEntropy, ObjectiveRun, SupervisedRun, TrainConfig, TrainingObjective,
                                       TrainingSetup, WeightedCrossEntropy)

__all__ = ["Accuracy", "CrossEntropy", "CurvePoint", "EvalResult", "EvalSettings", "FullDataResult", "FullDataSettings",
           "PlateauRule", "PlateauRun", "evaluate_full_data_converged", "split_of", "train_until_plateau", "ObjectiveRun", "SupervisedRun", "TrainConfig",
           "TrainingObjective", "TrainingSetup", "WeightedCrossEntropy", "evaluate_full_data",
           "evaluate_full_data_cached", "evaluate_images", "evaluate_synthetic_cached", "predict", "split_accuracy",
           "train_classifier", "train_one_epoch"]
