"""Settings that do what they say: one place for each setting, ``--set model=…`` reaching every stage
that uses the profile's network, and every ``--set`` path the documentation shows changing what runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ddlib.core.validation import ConfigError
from ddlib.experiments.grid import KDE, VANILLA, Cell, GridRunner
from ddlib.models import ConvNetConfig
from ddlib.profiles import PROFILES, get_profile, network_paths, parse_override

ROOT = Path(__file__).resolve().parent.parent


def what_runs(profile) -> dict:
    """What the grid runner resolves for a profile: each method's config (vanilla and re-weighted), the
    surrogate, the KDE settings, the evaluation protocols and the grid's scope."""
    runner = GridRunner(profile, "cpu", progress=False)
    out = {"scope": (profile.conflict_ratios, profile.ipcs, profile.seeds), "evaluation": profile.evaluation,
           "full data": profile.full_data, "error set": profile.kde_method.error_set}
    for method in ("DM", "DSA", "MTT"):
        for weighting in (VANILLA, KDE):
            cell = Cell("colored_mnist", method, weighting, ipc=10)
            out[f"{method} {'vanilla' if weighting == VANILLA else 'kde'}"] = runner.method_config(cell, seed=0)
    kde_cell = Cell("colored_mnist", "DM", KDE, ipc=10)
    out["surrogate"], out["kde"] = runner.surrogate_config(kde_cell), runner.kde_config(kde_cell)
    return out


def documented_overrides() -> list[tuple[str, str]]:
    """Every ``--set PATH=VALUE`` shown in the README, docs/ and the tools' help texts."""
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "ddlib" / "tools").glob("*.py")),
             ROOT / "reproduce.sh"]
    found = set()
    for path in texts:
        if path.exists():
            found |= {(m[1], path.name) for m in re.finditer(r"--set ([a-z_][\w.]*=[^\s`'\")]+)", path.read_text())}
    return sorted((text, source) for text, source in found if text != "path=value")  # the syntax, not a setting


def test_the_documentation_shows_some_overrides():
    assert any(text.startswith("kde_method.dm.") for text, _ in documented_overrides())


@pytest.mark.parametrize("text,source", documented_overrides(), ids=lambda v: str(v))
def test_every_documented_override_changes_what_runs(text, source):
    path, value = parse_override(text)
    base = get_profile("paper")  # the profile the examples are for (a GPU run)
    assert what_runs(get_profile("paper", {path: value})) != what_runs(base), f"{text} (in {source}) changes nothing"


def test_the_profile_network_is_the_network_of_every_stage_but_its_own():
    for name, profile in PROFILES.items():
        for path, network in network_paths(profile):
            if path not in profile.own_networks:
                assert network == profile.model, (name, path)
    assert PROFILES["paper"].kde_method.surrogate.model.width == 64  # the paper's surrogate: its own network
    assert PROFILES["quick"].kde_method.surrogate.model == PROFILES["quick"].model


def test_set_model_changes_every_stage_that_uses_the_profile_network():
    wider = get_profile("quick", {"model.width": 48})
    runs = what_runs(wider)
    for key in ("DM vanilla", "DM kde", "DSA vanilla", "MTT kde"):
        assert runs[key].model == ConvNetConfig(depth=3, width=48), key
    assert runs["MTT kde"].experts.model.width == 48
    assert runs["evaluation"].train.model.width == 48 and runs["full data"].evaluation.train.model.width == 48
    assert runs["surrogate"].model.width == 48
    paper = get_profile("paper", {"model.width": 96})
    assert paper.kde_method.surrogate.model.width == 64  # its own network stays
    assert paper.evaluation.train.model.width == 96


def test_an_override_inside_a_stage_network_makes_it_the_stage_own():
    profile = get_profile("quick", {"kde_method.surrogate.model.width": 16, "model.depth": 2})
    assert profile.own_networks == ("kde_method.surrogate.model",)
    assert profile.kde_method.surrogate.model == ConvNetConfig(depth=3, width=16)
    assert profile.kde_method.dm.model.depth == 2 and profile.evaluation.train.model.depth == 2


def test_dm_settings_live_in_one_place_and_the_old_path_names_it():
    profile = get_profile("quick", {"kde_method.dm.iterations": 7})
    runs = what_runs(profile)
    assert runs["DM vanilla"].iterations == 7 and runs["DM kde"].iterations == 7  # both runs read it
    assert runs["DM vanilla"].lr_img == profile.kde_method.vanilla_dm_lr
    with pytest.raises(ConfigError, match=r"nothing reads 'dm'.*kde_method\.dm.*set kde_method\.dm\.precision"):
        get_profile("quick", {"dm.precision": "bf16"})


def test_own_networks_must_name_a_stage_network():
    with pytest.raises(ConfigError, match="not the network of a stage"):
        get_profile("quick", {"own_networks": ["kde_method.kde"]})


def test_parse_override_reads_json_values_and_refuses_text_without_a_value():
    assert parse_override("ipcs=[10, 50]") == ("ipcs", [10, 50])
    assert parse_override("kde_method.dm.precision=bf16") == ("kde_method.dm.precision", "bf16")
    with pytest.raises(ValueError, match="PATH=VALUE"):
        parse_override("ipcs")
