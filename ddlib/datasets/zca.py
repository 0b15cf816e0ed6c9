"""ZCA whitening as a data-set-level input transform (MTT's CIFAR-10 setting).

MTT's CIFAR experiments whiten the inputs with ZCA (regularisation ε = 0.1) instead of the
per-channel mean/std normalisation, and their hyper-parameters (lr_img 100 / 1000 …) assume it.
:func:`with_zca` returns the same data set with its :meth:`~BiasedDataset.normalize` replaced by the
whitening and :meth:`~BiasedDataset.denormalize` by its inverse (for display), so every consumer
(distillation, experts, the evaluation protocol, the test) sees whitened images without knowing it.

The fit follows the MTT reference (kornia's ZCA there):

* images flattened to ``D = C·H·W`` features, in [0, 1] pixel units — under ``--zca`` the
  reference loads the images *without* the mean/std normalisation and whitens those;
* ``μ`` = the per-feature mean of the training images, ``Σ`` = their unbiased covariance
  (divided by ``N − 1``), ``Σ = U diag(S) Uᵀ``;
* ``W = U diag((S + ε)^-½) Uᵀ``, whitened ``y = (x − μ) W``; the inverse ``x = y U diag((S + ε)^½) Uᵀ + μ``.

With ε = 0.1 the result is *not* exactly white (the eigen-directions with variance ≪ ε are damped):
the covariance of ``y`` is ``U diag(S / (S + ε)) Uᵀ``, identity only as ε → 0.

The fitted matrices are cached (keyed by the data set's fingerprint and ε); the returned data set's
fingerprint is extended by the ZCA settings, so every artifact computed from it (experts, synthetic
sets, evaluations) gets its own cache key. The experiments apply it for MTT on ``corrupted_cifar10``
when ``MTTConfig.zca`` is on (:func:`ddlib.distill.mtt.mtt_dataset`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ddlib.core.cache import ArtifactDir, get_or_build, save_torch
from ddlib.datasets.base import BiasedDataset

DEFAULT_EPSILON = 0.1  # the MTT reference's regularisation


@dataclass(frozen=True, eq=False)
class ZCAWhitening:
    """``forward(x) = (x − mean) · matrix`` on flattened images (in [0, 1] units), ``inverse`` undoes it."""

    mean: torch.Tensor  # [D], float32
    matrix: torch.Tensor  # [D, D], symmetric
    inverse_matrix: torch.Tensor  # [D, D]
    epsilon: float
    # copies on the devices the transform was used on (a 3072² matrix is 38 MB: moved once, not per batch)
    _copies: dict = field(default_factory=dict, repr=False, compare=False)

    def _on(self, name: str, like: torch.Tensor) -> torch.Tensor:
        key = (name, like.device, like.dtype)
        if key not in self._copies:
            self._copies[key] = getattr(self, name).to(device=like.device, dtype=like.dtype)
        return self._copies[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(len(x), -1)
        return ((flat - self._on("mean", x)) @ self._on("matrix", x)).view_as(x)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        flat = y.reshape(len(y), -1)
        return (flat @ self._on("inverse_matrix", y) + self._on("mean", y)).view_as(y)

    def digest(self) -> str:
        h = hashlib.sha256()
        for t in (self.mean, self.matrix):
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


def fit_zca(images: np.ndarray | torch.Tensor, epsilon: float = DEFAULT_EPSILON, chunk: int = 4096) -> ZCAWhitening:
    """Fit ZCA on uint8 images [N, C, H, W] (features in [0, 1] units), accumulated in float64 over
    chunks of ``chunk`` images (CIFAR-10: a 3072 × 3072 covariance without a float64 copy of the set)."""
    if not epsilon > 0:
        raise ValueError(f"the ZCA regularisation epsilon must be positive, got {epsilon}")
    images = np.asarray(images)
    n = len(images)
    if n < 2:
        raise ValueError("ZCA needs at least two training images")
    flat = images.reshape(n, -1)

    def rows(start: int) -> torch.Tensor:
        return torch.from_numpy(flat[start:start + chunk]).to(torch.float64) / 255.0
    mean = sum(rows(s).sum(dim=0) for s in range(0, n, chunk)) / n
    cov = torch.zeros(flat.shape[1], flat.shape[1], dtype=torch.float64)
    for s in range(0, n, chunk):
        centred = rows(s) - mean
        cov += centred.T @ centred
    cov /= n - 1
    eigvals, eigvecs = torch.linalg.eigh(cov)  # Σ is symmetric PSD: eigh = its SVD
    eigvals = eigvals.clamp_min(0.0)
    matrix = (eigvecs * (eigvals + epsilon).rsqrt()) @ eigvecs.T
    inverse = (eigvecs * (eigvals + epsilon).sqrt()) @ eigvecs.T
    return ZCAWhitening(mean.float(), matrix.float(), inverse.float(), float(epsilon))


def zca_fingerprint(fingerprint: str, epsilon: float) -> str:
    """The fingerprint of the whitened data set: the plain one extended by the ZCA settings."""
    return f"{fingerprint}+zca(eps={epsilon!r},fit=train-pixels)"


def with_zca(dataset: BiasedDataset, epsilon: float = DEFAULT_EPSILON, use_cache: bool = True) -> BiasedDataset:
    """``dataset`` with ZCA-whitened inputs: the whitening fitted on its training images (cached),
    ``normalize`` whitening, ``denormalize`` inverting it, and a fingerprint extended by the settings."""
    if dataset.whitening is not None:
        raise ValueError(f"{dataset.display_name} is already whitened")
    # fitted on the CPU whatever the run's device (torch's eigendecomposition there)
    artifact = ArtifactDir("zca", {"dataset": dataset.fingerprint, "epsilon": float(epsilon),
                                   "fit": "train-pixels", "torch": torch.__version__.split("+")[0], "format": 1},
                           code=(__name__,))

    def load() -> ZCAWhitening:
        state = torch.load(artifact.file("zca.pt"))
        return ZCAWhitening(state["mean"], state["matrix"], state["inverse"], float(epsilon))

    def build() -> ZCAWhitening:
        zca = fit_zca(dataset.train.images, epsilon)
        if use_cache:
            artifact.commit({"zca.pt": save_torch({"mean": zca.mean, "matrix": zca.matrix,
                                                   "inverse": zca.inverse_matrix})},
                            {"dataset": dataset.display_name, "epsilon": float(epsilon),
                             "n_train": len(dataset.train)})
        return zca

    zca = get_or_build(artifact, load, build, use_cache)
    return replace(dataset, whitening=zca, fingerprint=zca_fingerprint(dataset.fingerprint, float(epsilon)),
                   display_name=f"{dataset.display_name}, ZCA",
                   provenance={**dataset.provenance, "zca": {"epsilon": float(epsilon), "fit": "train-pixels",
                                                             "digest": zca.digest()}})
