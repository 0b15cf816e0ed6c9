"""Run profiles: every setting of a run, defined in one place (:mod:`ddlib.profiles.table`).

* ``smoke`` — seconds to a few minutes per notebook on 2 CPU cores: CI and nbval.
* ``quick`` — the README's main job on a laptop CPU: minutes per notebook, large enough to show
  the paper's qualitative findings (smaller networks and far fewer iterations than the paper).
* ``paper`` — the paper's / the reference implementations' settings, for a GPU.
* ``headline`` — ``paper`` cut to the headline cell (Colored MNIST 5 %, IPC 50, DM vs DM + KDE).

A notebook's ``parameters`` cell names a profile (default: ``$DDLIB_PROFILE`` or ``quick``) and may
override single fields by dotted path (:func:`get_profile`, :mod:`ddlib.profiles.overrides`).

The modules: :mod:`.profile` (the :class:`Profile` tree and its one network), :mod:`.sections` (each
notebook's settings), :mod:`.ablation` (notebook 03's surrogate variants), :mod:`.table` (the
profiles' values), :mod:`.overrides` (``--set`` and :func:`get_profile`).
"""

from ddlib.core import env
from ddlib.profiles.ablation import FAMILIES, SurrogateAblationConfig, SurrogateVariant, surrogate_variants
from ddlib.profiles.overrides import MOVED, get_profile, parse_override, with_overrides
from ddlib.profiles.profile import Profile, network_paths, profile_with_network
from ddlib.profiles.sections import (BiasAnalysisConfig, DatasetsConfig, DebiasingConfig, KDEMethodConfig,
                                     SelectionConfig)
from ddlib.profiles.table import PROFILES

PROFILE_ENV = env.PROFILE_ENV

__all__ = ["FAMILIES", "MOVED", "PROFILES", "PROFILE_ENV", "BiasAnalysisConfig", "DatasetsConfig",
           "DebiasingConfig", "KDEMethodConfig", "Profile", "SelectionConfig", "SurrogateAblationConfig",
           "SurrogateVariant", "network_paths", "get_profile", "parse_override", "profile_with_network",
           "surrogate_variants", "with_overrides"]
