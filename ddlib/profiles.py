"""Run profiles, defined in this one place.

* ``smoke`` — seconds to a few minutes per notebook on 2 CPU cores: CI and nbval.
* ``quick`` — the README's main job on a laptop CPU: minutes per notebook, large enough to show
  the paper's qualitative findings (smaller networks and far fewer iterations than the paper).
* ``paper`` — the paper's / reference implementations' settings (``recipes.md``), for a GPU.

A notebook's ``parameters`` cell names a profile (default: ``$DDLIB_PROFILE`` or ``quick``) and
may override single fields with :func:`dataclasses.replace`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .distill.dm import DMConfig
from .models import ConvNetConfig
from .training import TrainConfig

PROFILE_ENV = "DDLIB_PROFILE"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    model: ConvNetConfig
    dm: DMConfig
    eval: TrainConfig
    eval_models: int
    full_data: TrainConfig
    full_data_models: int
    full_data_max_samples: int | None
    conflict_ratios: tuple[float, ...]
    ipcs: tuple[int, ...]
    seed: int = 0


_PAPER_MODEL = ConvNetConfig(depth=3, width=128, norm="instancenorm", pooling="avgpooling")
_QUICK_MODEL = ConvNetConfig(depth=3, width=32, norm="instancenorm", pooling="avgpooling")
_SMOKE_MODEL = ConvNetConfig(depth=2, width=8, norm="instancenorm", pooling="avgpooling")

PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="CI: tiny networks, a handful of iterations; checks that everything runs, not results",
        model=_SMOKE_MODEL,
        dm=DMConfig(iterations=5, lr_img=1.0, batch_real=16, model=_SMOKE_MODEL, checkpoint_every=0),
        eval=TrainConfig(epochs=4, batch_size=256, model=_SMOKE_MODEL),
        eval_models=1,
        full_data=TrainConfig(epochs=1, batch_size=128, model=_SMOKE_MODEL),
        full_data_models=1,
        full_data_max_samples=1000,
        conflict_ratios=(0.05,),
        ipcs=(1,),
    ),
    "quick": Profile(
        name="quick",
        description="laptop CPU: ConvNet-3 width 32, 400 DM iterations, 150 evaluation epochs",
        model=_QUICK_MODEL,
        dm=DMConfig(iterations=400, lr_img=1.0, batch_real=64, model=_QUICK_MODEL, checkpoint_every=100),
        eval=TrainConfig(epochs=150, batch_size=256, model=_QUICK_MODEL),
        eval_models=2,
        full_data=TrainConfig(epochs=2, batch_size=128, model=_QUICK_MODEL),
        full_data_models=1,
        full_data_max_samples=30_000,
        conflict_ratios=(0.05,),
        ipcs=(1, 10, 50),
    ),
    "paper": Profile(
        name="paper",
        description="the paper's settings (GPU): ConvNet-3 width 128, 20,000 DM iterations, 1,000 evaluation epochs",
        model=_PAPER_MODEL,
        dm=DMConfig(iterations=20_000, lr_img=1.0, batch_real=256, model=_PAPER_MODEL, checkpoint_every=500),
        eval=TrainConfig(epochs=1000, batch_size=256, model=_PAPER_MODEL),
        eval_models=5,
        full_data=TrainConfig(epochs=50, batch_size=256, lr=0.01, model=_PAPER_MODEL),
        full_data_models=3,
        full_data_max_samples=None,
        conflict_ratios=(0.005, 0.01, 0.02, 0.05),
        ipcs=(1, 10, 50),
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """The named profile; ``None`` means ``$DDLIB_PROFILE`` or ``quick``."""
    name = name or os.environ.get(PROFILE_ENV) or "quick"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
