"""Name → builder registry of biased data sets, with caching of the built uint8 arrays."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ddlib.core.cache import ArtifactDir, check_writable, save_npz
from ddlib.datasets.assignment import UNIFORM_RATIO, check_ratio
from ddlib.datasets.base import BiasedDataset, BiasedSplit, channel_stats


@dataclass(frozen=True)
class DatasetSpec:
    """Everything that determines a biased data set's bytes (the cache key)."""

    name: str
    conflict_ratio: float = 0.05
    # True: the training split's bias attribute is uniform over the attributes (the "unbiased
    # data" side of the paper's analysis); the test split is the same either way.
    unbiased: bool = False
    severity: int = 4
    seed: int = 0
    options: tuple[tuple[str, Any], ...] = ()

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


Builder = Callable[[DatasetSpec, "str | os.PathLike | None"], BiasedDataset]


@dataclass(frozen=True)
class DatasetInfo:
    """What a registered data set supports (asked by the analyses before they build anything)."""

    name: str
    default_severity: int = 4
    # the builder options it accepts (e.g. class-balanced slices for fast profiles)
    options: frozenset[str] = frozenset()
    # a data set published at one bias-conflicting ratio only (BFFHQ: 0.5 %); None: any ratio
    fixed_conflict_ratio: float | None = None
    # whether an unbiased training variant (bias attribute uniform) can be built
    unbiased_variant: bool = True
    # a cheap check that the raw source is present (raises DataSourceError naming how to get it), for
    # data sets that have no download fallback; None: the loaders find or fetch it when it is built
    probe: Callable[["str | os.PathLike | None"], Any] | None = field(default=None, compare=False)

    def check_source(self, data_root: "str | os.PathLike | None" = None) -> None:
        """Raise :class:`ddlib.sources.DataSourceError` when the raw source is certainly missing; a
        data set with download fallbacks always passes (its loader says what failed when it builds)."""
        if self.probe is not None:
            self.probe(data_root)

    def conflict_ratios(self, requested: tuple[float, ...]) -> tuple[float, ...]:
        """The ratios this data set is run at: the requested ones, or its only published ratio."""
        return (self.fixed_conflict_ratio,) if self.fixed_conflict_ratio is not None else tuple(requested)

    def train_variants(self) -> tuple[str, ...]:
        """The training-data variants of the bias analysis: unbiased and biased, or biased only."""
        return ("unbiased", "biased") if self.unbiased_variant else ("biased",)

    def pick_options(self, **candidates: Any) -> dict[str, Any]:
        """The candidates this data set accepts and that are set (not None)."""
        return {k: v for k, v in candidates.items() if k in self.options and v is not None}


# Version of the cached data sets (part of their cache key). 2: the synthetic data sets have a
# validation split, and Colored MNIST / BG FMNIST use LfF's full-precision colours; no entry of an
# older format (without a validation split) is ever served.
CACHE_FORMAT = 2

_BUILDERS: dict[str, Builder] = {}
_INFO: dict[str, DatasetInfo] = {}


def register_dataset(name: str, default_severity: int = 4, options: tuple[str, ...] = (),
                     fixed_conflict_ratio: float | None = None,
                     unbiased_variant: bool = True,
                     probe: Callable[["str | os.PathLike | None"], Any] | None = None) -> Callable[[Builder], Builder]:
    """Register a builder; ``default_severity`` is used when ``load_dataset`` gets ``severity=None``;
    ``probe(data_root)`` checks cheaply that the raw source exists (:meth:`DatasetInfo.check_source`)."""
    def decorate(builder: Builder) -> Builder:
        if name in _BUILDERS:
            raise ValueError(f"data set {name!r} is registered twice")
        _BUILDERS[name] = builder
        _INFO[name] = DatasetInfo(name, default_severity, frozenset(options), fixed_conflict_ratio, unbiased_variant,
                                  probe)
        return builder
    return decorate


def dataset_names() -> list[str]:
    return sorted(_BUILDERS)


def dataset_info(name: str) -> DatasetInfo:
    if name not in _INFO:
        raise ValueError(f"unknown data set {name!r}; known data sets: {', '.join(dataset_names())}")
    return _INFO[name]


def _check_option(dataset: str, option: str, value: Any) -> None:
    """Every data-set option is a per-class count (``train_per_class``, ``test_per_class``): a whole
    number ≥ 1, or None for the whole split."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{option}={value!r} for data set {dataset!r} must be a whole number ≥ 1 (images kept per "
                         f"class), or None for the whole split; nothing is rounded, e.g. {option}=200")


def load_dataset(name: str, conflict_ratio: float = 0.05, *, unbiased: bool = False, severity: int | None = None,
                 seed: int = 0, data_root: str | os.PathLike | None = None, **options: Any) -> BiasedDataset:
    """Build (or load from the cache) the named biased data set.

    ``conflict_ratio`` is the bias-conflicting fraction of the training split (0.05 = 5 %);
    ``severity=None`` takes the data set's standard severity (Colored MNIST / BG FMNIST: 4, i.e.
    σ = 0.005 as in LfF's example; Corrupted CIFAR-10: level 5, LfF's "severity4" folder).
    """
    info = dataset_info(name)
    check_ratio(conflict_ratio)
    unknown = sorted(set(options) - info.options)
    if unknown:
        raise ValueError(f"data set {name!r} does not take the option(s) {unknown}; it takes "
                         f"{sorted(info.options) or 'none'}")
    for option, value in options.items():
        _check_option(name, option, value)
    if severity is None:
        severity = info.default_severity
    for arg, value in (("severity", severity), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            hint = "e.g. severity=4, or severity=None for the data set's standard level" if arg == "severity" \
                else "e.g. seed=0"
            raise TypeError(f"{arg} must be a whole number, got {value!r} (nothing is rounded: pass {hint})")
    if seed < 0:
        raise ValueError(f"seed must be a whole number ≥ 0 (it seeds numpy's SeedSequence), got {seed}")
    if not isinstance(unbiased, (bool, np.bool_)):
        raise TypeError(f"unbiased must be True or False, got {unbiased!r} ({type(unbiased).__name__}); a string "
                        "such as 'no' would otherwise count as True and build the unbiased variant")
    spec = DatasetSpec(name=name, conflict_ratio=float(conflict_ratio), unbiased=bool(unbiased), severity=int(severity),
                       seed=int(seed), options=tuple(sorted(options.items())))
    return _BUILDERS[name](spec, data_root)


def split_generators(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent random streams for the train, test and validation splits, all derived from the one seed.

    The children ``0, 1, 2`` of ``SeedSequence(seed)``: the train and test streams are the ones the
    two-split builds had (a ``SeedSequence``'s first children do not depend on how many are spawned);
    the validation stream is the third."""
    train, test, valid = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    return train, test, valid


def training_attribute_ratio(spec: DatasetSpec) -> float:
    """The conflict ratio the training split is built at: uniform attributes for the unbiased variant."""
    return UNIFORM_RATIO if spec.unbiased else spec.conflict_ratio


def dataset_from_splits(spec: DatasetSpec, splits: dict[str, BiasedSplit], provenance: dict[str, Any], title: str,
                        detail: str = "", **fields: Any) -> BiasedDataset:
    """The :class:`BiasedDataset` of built (or cached) splits: display name "<title> (<variant>[, detail])",
    normalisation statistics of the training split, the spec in the provenance, the cache fingerprint."""
    variant = "unbiased" if spec.unbiased else f"{100 * spec.conflict_ratio:g} % bias-conflicting"
    train = splits["train"]
    if not spec.unbiased and train.conflicting_count == 0:
        raise ValueError(f"{spec.name} at conflict_ratio={spec.conflict_ratio:g} has no bias-conflicting training "
                         f"sample among its {len(train)} images; a ratio of at least about {1 / len(train):.2g} "
                         "gives one (the paper's ratios: 0.005 to 0.05)")
    mean, std = channel_stats(splits["train"].images)
    return BiasedDataset(name=spec.name, title=title,
                         display_name=f"{title} ({variant}{', ' + detail if detail else ''})",
                         train=splits["train"], valid=splits.get("valid"), test=splits["test"], mean=mean, std=std,
                         provenance={**provenance, "spec": spec.__dict__},
                         fingerprint=_with_augmentation(provenance["fingerprint"], fields.get(
                             "dsa_strategy", BiasedDataset.__dataclass_fields__["dsa_strategy"].default)),
                         **fields)


def _with_augmentation(fingerprint: str, dsa_strategy: str) -> str:
    """The data set's cache fingerprint, extended by its DSA strategy: the strategy shapes every
    distilled set and evaluation, so a change of it must change their cache keys."""
    import hashlib
    return hashlib.sha256(f"{fingerprint}|dsa={dsa_strategy}".encode()).hexdigest()[:16]


def split_arrays(prefix: str, split: BiasedSplit) -> dict[str, np.ndarray]:
    return {f"{prefix}_images": split.images, f"{prefix}_targets": split.targets,
            f"{prefix}_bias": split.bias, f"{prefix}_aligned": split.aligned}


def split_from_arrays(prefix: str, arrays: dict[str, np.ndarray]) -> BiasedSplit | None:
    if f"{prefix}_images" not in arrays:
        return None
    return BiasedSplit(arrays[f"{prefix}_images"], arrays[f"{prefix}_targets"], arrays[f"{prefix}_bias"],
                       arrays[f"{prefix}_aligned"].astype(bool))


def cached_splits(spec: DatasetSpec, source_id: str,
                  build: Callable[[], tuple[dict[str, BiasedSplit], dict[str, Any]]]
                  ) -> tuple[dict[str, BiasedSplit], dict[str, Any]]:
    """Load the splits of ``spec`` from the cache, or build and cache them.

    ``source_id`` identifies the raw data (e.g. its checksum) so that a different source gives a
    different cache entry. Returns the splits and the provenance recorded at build time.
    """
    # the code is the builder's module (colored_mnist, bg_fmnist, ...) and what it imports
    artifact = ArtifactDir(f"datasets/{spec.name}", {"spec": spec, "source": source_id, "format": CACHE_FORMAT},
                           code=(__name__, build.__module__))
    with artifact.lock():  # concurrent builders of one data set: one builds, the others load
        return _load_or_build_splits(artifact, build)


def _load_or_build_splits(artifact: ArtifactDir, build: Callable[[], tuple[dict[str, BiasedSplit], dict[str, Any]]]
                          ) -> tuple[dict[str, BiasedSplit], dict[str, Any]]:
    if artifact.is_complete():
        with np.load(artifact.file("splits.npz")) as data:
            arrays = {k: data[k] for k in data.files}
        splits = {p: s for p in ("train", "valid", "test") if (s := split_from_arrays(p, arrays)) is not None}
        return splits, {**artifact.meta()["provenance"], "cache": str(artifact.path), "fingerprint": artifact.key}
    check_writable()  # fail now, not after the build
    splits, provenance = build()
    arrays: dict[str, np.ndarray] = {}
    for prefix, split in splits.items():
        arrays.update(split_arrays(prefix, split))
    artifact.commit({"splits.npz": save_npz(arrays)}, provenance)
    return splits, {**provenance, "cache": str(artifact.path), "fingerprint": artifact.key}
