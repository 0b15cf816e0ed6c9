"""The validation split of the synthetic data sets: a stratified, deterministic part of the source test split.

The training split must keep LfF's exact bias-conflicting counts (e.g. 3,000 of MNIST's 60,000
training images at 5 %), so the validation images come from the *test source*: in every class,
walking it in data-set order, ``round(VALID_FRACTION · n_c)`` evenly spaced images go to
validation and the rest to the test split. At a fraction of 1/5 and a class size divisible by 5
that is exactly every 5th image of the class (ranks 4, 9, 14, …); otherwise the same milestone rule
spreads the rounded count evenly. MNIST's and Fashion-MNIST's / CIFAR-10's 10,000 test images give
2,000 validation and 8,000 test images. Both parts are then built with the test protocol (bias
attributes uniform over the ten, 10 % aligned), each from its own random stream.

No randomness is involved, so the split depends on the source labels only (and on any
``test_per_class`` slice, which is taken first).
"""

from __future__ import annotations

import numpy as np

# The share of every class of the (sliced) source test split that becomes the validation split.
VALID_FRACTION = 0.2


def valid_test_index(labels: np.ndarray, fraction: float = VALID_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into ``labels``) of the validation and of the test samples, both sorted.

    Per class with ``n_c`` members and ``n_v = round(fraction · n_c)``, the member of rank ``k``
    (data-set order) is a validation sample iff ``⌊(k+1)·n_v / n_c⌋ > ⌊k·n_v / n_c⌋``: exactly
    ``n_v`` evenly spaced members, every ``1/fraction``-th one when that divides ``n_c``. The two
    parts are disjoint and together cover every position; a class too small for a validation
    sample (``n_v = 0``) stays whole in the test split."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the validation fraction must lie strictly between 0 and 1, got {fraction}")
    labels = np.asarray(labels)
    is_valid = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_c = len(members)
        n_v = int(np.round(fraction * n_c))
        ranks = np.arange(n_c, dtype=np.int64)
        is_valid[members] = (ranks + 1) * n_v // n_c > ranks * n_v // n_c
    return np.flatnonzero(is_valid), np.flatnonzero(~is_valid)


def split_test_source(index: np.ndarray, labels: np.ndarray,
                      fraction: float = VALID_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Source indices of the validation and of the test split, given the source test split's
    indices in use (``index``, e.g. a ``test_per_class`` slice) and its labels (all of them)."""
    index = np.asarray(index)
    valid_pos, test_pos = valid_test_index(np.asarray(labels)[index], fraction)
    return index[valid_pos], index[test_pos]


def split_provenance(source: str, valid_index: np.ndarray, test_index: np.ndarray,
                     fraction: float = VALID_FRACTION) -> dict[str, object]:
    """What a build records about its validation split: where the images come from and how many."""
    return {"valid_source": f"{source}: a stratified {100 * fraction:g} % of every class of the (sliced) source test "
                            f"split, evenly spaced in data-set order (ddlib.datasets.validation)",
            "valid_fraction": fraction, "valid_count": len(valid_index), "test_count": len(test_index)}
