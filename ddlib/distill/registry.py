"""One interface for every distillation method.

``distill(method, dataset, ipc, profile_or_config, weighter=None, device=None, progress=True)``
runs DM, DC, DSA or MTT on a :class:`~ddlib.datasets.BiasedDataset` and returns a cached
:class:`~ddlib.distill.synthetic.SyntheticSet` with its provenance. The third argument is either a
run profile (its ``dm`` / ``dc`` / ``mtt`` field is used; DSA is the profile's ``dc`` with
``dsa=True``) or the method's own frozen config dataclass. Real-sample weights (a
:class:`~ddlib.weighting.base.SampleWeighter`) act on the real side of DM, DC and DSA, and on the
experts' loss of MTT.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ddlib.datasets import BiasedDataset
from ddlib.core.device import pick_device
from ddlib.distill.dc import DCConfig, distill_dc
from ddlib.distill.dm import DMConfig, distill_dm
from ddlib.distill.mtt import MTTConfig, distill_mtt
from ddlib.distill.synthetic import SyntheticSet, check_ipc
from ddlib.weighting.base import SampleWeighter


@dataclass(frozen=True)
class MethodSpec:
    """A distillation method: its display name, config type, where a profile holds its settings and runner."""

    display_name: str
    config_type: type
    # the dotted path of the method's settings in a profile; DM's (``kde_method.dm``) are read as the
    # vanilla baseline runs them (:meth:`~ddlib.profiles.KDEMethodConfig.dm_for`)
    profile_field: str
    run: Callable[..., SyntheticSet]
    # Fields forced on the config by the method's name (DSA = DC with Siamese augmentation).
    forced: tuple[tuple[str, Any], ...] = ()

    def from_profile(self, profile: Any) -> Any:
        """The method's settings in ``profile`` (None where the profile has none of this type)."""
        if self.profile_field == "kde_method.dm":
            method = getattr(profile, "kde_method", None)
            config = method.dm_for(weighted=False) if hasattr(method, "dm_for") else None
        else:
            config = getattr(profile, self.profile_field, None)
        return config if isinstance(config, self.config_type) else None


METHODS: dict[str, MethodSpec] = {
    "dm": MethodSpec("DM", DMConfig, "kde_method.dm", distill_dm),
    "dc": MethodSpec("DC", DCConfig, "dc", distill_dc, forced=(("dsa", False),)),
    "dsa": MethodSpec("DSA", DCConfig, "dc", distill_dc, forced=(("dsa", True),)),
    "mtt": MethodSpec("MTT", MTTConfig, "mtt", distill_mtt),
}


def method_spec(method: str) -> MethodSpec:
    if not isinstance(method, str):
        raise TypeError(f"method must be a name string, one of {', '.join(METHODS)}; got {method!r}")
    key = method.lower()
    if key not in METHODS:
        raise ValueError(f"unknown distillation method {method!r}; known methods: {', '.join(METHODS)}")
    return METHODS[key]


def method_config(method: str, profile_or_config: Any) -> Any:
    """The config ``method`` runs with: the profile's (DM: the vanilla baseline's), or the given config."""
    spec = method_spec(method)
    if isinstance(profile_or_config, spec.config_type):
        config = profile_or_config
    else:
        config = spec.from_profile(profile_or_config)
        if config is None:
            raise TypeError(f"{spec.display_name} needs a profile with a {spec.profile_field!r} field or a "
                            f"{spec.config_type.__name__}, got {type(profile_or_config).__name__}")
    return dataclasses.replace(config, **dict(spec.forced)) if spec.forced else config


def distill(method: str, dataset: BiasedDataset, ipc: int, profile_or_config: Any,
            weighter: SampleWeighter | None = None, device: torch.device | str | None = None,
            progress: bool = True, use_cache: bool = True) -> SyntheticSet:
    """Distil ``ipc`` images per class of ``dataset`` with ``method`` ("dm", "dc", "dsa" or "mtt")."""
    spec = method_spec(method)
    if getattr(weighter, "class_loss_scale", None) is not None and spec.display_name != "DM":
        raise ValueError(f"{type(weighter).__name__} scales DM's per-class loss (FairDD's group loss); {spec.display_name} "
                         "has no per-class mean-matching loss to scale: use it with DM")
    config = method_config(method, profile_or_config)
    check_ipc(dataset, ipc)  # before any cache lookup or expert training
    device = pick_device(None if device is None else str(device))
    return spec.run(dataset, ipc, config, weighter=weighter, device=device, progress=progress, use_cache=use_cache)
