"""Every value checked where it enters: bad inputs give an error that names what to fix.

One table of bad inputs per entry point (profile overrides, config constructors, data-set
arguments, environment variables, loss shapes, notebook parameters, ``reproduce.sh`` options), each
with the exception it must raise and a pattern the message must match: the field, variable or
option, and what was expected. A value that is legitimate is checked for its documented meaning.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import require_data
from ddlib.core import cache as cache_module
from ddlib.core import env
from ddlib.core.device import pick_device
from ddlib.core.progress import progress
from ddlib.core.cache import ArtifactDir, CacheCorruptionWarning, CacheError, atomic_write, get_or_build
from ddlib.core.notebook_parameters import injected_type_mismatches, undeclared_parameters
from ddlib.core.validation import ConfigError
from ddlib.distill import DMConfig
from ddlib.distill.dc import DCConfig
from ddlib.distill.dm import dm_loss
from ddlib.distill.mtt import MTTConfig
from ddlib.kde_supcon.kde import KDEConfig
from ddlib.kde_supcon.surrogate import SurrogateConfig
from ddlib.models import ConvNet, ConvNetConfig
from ddlib.profiles import get_profile
from ddlib.sources import DataSourceError, data_roots
from ddlib.training.objectives import TrainConfig

REPO = Path(__file__).resolve().parents[1]


# -- profile overrides (notebook parameters and --set) ---------------------------------------------
@pytest.mark.parametrize("overrides, match", [
    ({"kde_method.datasets": "colored_mnist"}, r"'kde_method.datasets'.*got the string 'colored_mnist'.*\['colored_mnist'\]"),
    ({"analysis.datasets": "colored_mnist"}, r"'analysis.datasets'.*string"),
    ({"seeds": []}, r"'seeds'.*Profile.seeds expects at least one entry"),
    ({"ipcs": "1"}, r"'ipcs'.*got the string '1' \(write \[1\] for a single entry\)"),
    ({"ipcs": [0]}, r"'ipcs'.*entry 0: a value ≥ 1, got 0"),
    ({"seeds": [-1]}, r"'seeds'.*≥ 0"),
    ({"seeds": [0.5]}, r"'seeds'.*whole number"),
    ({"conflict_ratios": [1.5]}, r"'conflict_ratios'.*≤ 1"),
    ({"kde_method.kde.tau": "0.1"}, r"'kde_method.kde.tau'.*KDEConfig.tau expects a number"),
    ({"kde_method.kde.sigma2": -1.0}, r"'kde_method.kde.sigma2'.*> 0"),
    ({"kde_method.dm.iterations": -5}, r"'kde_method.dm.iterations'.*≥ 0"),
    ({"evaluation.n_models": 0}, r"'evaluation.n_models'.*≥ 1"),
    ({"analysis.unbiased_data": "no"}, r"'analysis.unbiased_data'.*True or False"),
    ({"kde_method.nosuch": 1}, r"unknown setting 'kde_method.nosuch' for KDEMethodConfig"),
])
def test_a_bad_override_names_the_setting_and_what_it_expects(overrides, match):
    with pytest.raises(ConfigError, match=match):
        get_profile("smoke", overrides=overrides)


def test_overrides_are_turned_into_the_declared_type():
    # what a YAML/JSON parameter gives: lists for tuples, whole numbers for floats
    P = get_profile("smoke", overrides={"ipcs": [1, 10], "seeds": [3], "kde_method.kde.tau": 1,
                                        "kde_method.datasets": ["colored_mnist"]})
    assert P.ipcs == (1, 10) and P.seeds == (3,) and P.kde_method.datasets == ("colored_mnist",)
    assert P.kde_method.kde.tau == 1.0 and isinstance(P.kde_method.kde.tau, float)
    # None keeps the profile's value; τ = inf is legitimate (uniform weights)
    assert get_profile("smoke", overrides={"ipcs": None}).ipcs == get_profile("smoke").ipcs
    assert get_profile("smoke", overrides={"kde_method.kde.tau": float("inf")}).kde_method.kde.tau == float("inf")


# -- config constructors ---------------------------------------------------------------------------
@pytest.mark.parametrize("build, match", [
    (lambda: DMConfig(iterations=-5), r"DMConfig.iterations expects a value ≥ 0, got -5"),
    (lambda: DMConfig(checkpoint_every=-1), r"DMConfig.checkpoint_every expects a value ≥ 0"),
    (lambda: DMConfig(lr_img=-1.0), r"DMConfig.lr_img expects a value > 0"),
    (lambda: DMConfig(batch_real=0), r"DMConfig.batch_real expects a value ≥ 1, got 0"),
    (lambda: DMConfig(batch_real=-3), r"DMConfig.batch_real expects a value ≥ 1, got -3"),
    (lambda: DMConfig(seed=-1), r"DMConfig.seed expects a value ≥ 0"),
    (lambda: DMConfig(iterations=10.5), r"DMConfig.iterations expects a whole number"),
    (lambda: DMConfig(iterations=True), r"DMConfig.iterations expects a whole number"),
    (lambda: DMConfig(lr_img=float("nan")), r"DMConfig.lr_img expects a number, got nan"),
    (lambda: DCConfig(batch_real=0), r"DCConfig.batch_real expects a value ≥ 1"),
    (lambda: MTTConfig(iterations=-1), r"MTTConfig.iterations expects a value ≥ 0"),
    (lambda: TrainConfig(lr=0.0), r"TrainConfig.lr expects a value > 0"),
    (lambda: TrainConfig(batch_size=0), r"TrainConfig.batch_size expects a value ≥ 1"),
    (lambda: dataclasses.replace(get_profile("smoke").evaluation, n_models=0), r"EvalSettings.n_models expects a value ≥ 1"),
    (lambda: KDEConfig(sigma2=0.0), r"KDEConfig.sigma2 expects a value > 0"),
    (lambda: KDEConfig(tau=-1.0), r"KDEConfig.tau expects a value > 0"),
    (lambda: SurrogateConfig(temperature=0.0), r"SurrogateConfig.temperature expects a value > 0"),
    (lambda: ConvNetConfig(depth=0), r"depth"),
])
def test_a_bad_config_value_is_refused_on_construction(build, match):
    with pytest.raises((ConfigError, ValueError), match=match):
        build()


def test_zero_iterations_is_the_documented_initialisation_only_run():
    assert DMConfig(iterations=0).iterations == 0  # legitimate: the initial images, no optimisation


def test_a_convnet_too_deep_for_its_images_names_the_depth_it_allows():
    with pytest.raises(ValueError, match=r"ConvNetConfig.depth=9 is too deep for 28×28 images.*use depth ≤ 5"):
        ConvNet(1, 10, 28, ConvNetConfig(depth=9))
    with pytest.raises(ValueError, match=r"depth=6 is too deep for 32×32.*use depth ≤ 5"):
        ConvNet(3, 10, 32, ConvNetConfig(depth=6))
    ConvNet(1, 10, 28, ConvNetConfig(depth=5))                      # the deepest that fits 28 px
    ConvNet(1, 10, 28, ConvNetConfig(depth=9, pooling="none"))      # no pooling: any depth fits


# -- data-set arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, match", [
    ({"seed": -1}, ValueError, r"seed must be a whole number ≥ 0"),
    ({"seed": 1.0}, TypeError, r"seed must be a whole number"),
    ({"unbiased": "no"}, TypeError, r"unbiased must be True or False, got 'no'"),
    ({"unbiased": 1}, TypeError, r"unbiased must be True or False"),
    ({"conflict_ratio": 0.0}, ValueError, r"strictly between 0 and 1"),
])
def test_bad_data_set_arguments_are_refused_before_any_build(kwargs, error, match, isolated_cache):
    from ddlib.datasets import load_dataset
    args = {"conflict_ratio": 0.05, **kwargs}
    with pytest.raises(error, match=match):
        load_dataset("colored_mnist", args.pop("conflict_ratio"), **args)
    assert not (isolated_cache / "datasets").exists()  # refused before anything was built


@pytest.mark.data
def test_a_ratio_that_gives_no_conflicting_sample_is_an_error():
    from ddlib.datasets import load_dataset
    P = get_profile("smoke")
    with pytest.raises(ValueError, match=r"conflict_ratio=1e-09 has no bias-conflicting training sample"):
        require_data(load_dataset, "colored_mnist", 1e-9, seed=P.seed, **P.datasets.options_for("colored_mnist"))


# -- environment variables -------------------------------------------------------------------------
@pytest.mark.parametrize("name, value, call, error, match", [
    ("DDLIB_CACHE", "~nosuchuser_ddlib/x", lambda: cache_module.cache_root(), CacheError,
     r"\$DDLIB_CACHE='~nosuchuser_ddlib/x'.*names no user"),
    ("DDLIB_DEVICE", "bogus", pick_device, ValueError,
     r"\$DDLIB_DEVICE='bogus' is not a torch device; use one of cpu, cuda"),
    ("DDLIB_DEVICE", "meta", pick_device, ValueError,
     r"\$DDLIB_DEVICE='meta' is a device type ddlib does not run on"),
    ("DDLIB_PROGRESS_INTERVAL", "abc", lambda: env.progress_interval(), env.EnvError,
     r"\$DDLIB_PROGRESS_INTERVAL='abc' is not a number"),
    ("DDLIB_PROGRESS_INTERVAL", "-1", lambda: progress(range(2), "x"), env.EnvError, r"\$DDLIB_PROGRESS_INTERVAL='-1' must be a finite number > 0"),
    ("DDLIB_WORKERS", "0", lambda: env.workers(), env.EnvError, r"\$DDLIB_WORKERS='0' must be at least 1"),
    ("DDLIB_OFFLINE", "maybe", lambda: env.offline(), env.EnvError, r"\$DDLIB_OFFLINE='maybe' is not a yes/no"),
    ("DDLIB_DATA_ROOT", "~nosuchuser_ddlib/data", data_roots,
     DataSourceError, r"\$DDLIB_DATA_ROOT.*names no user"),
    ("DDLIB_PROFILE", "fast", lambda: get_profile(), ValueError,
     r"unknown profile 'fast' \(from \$DDLIB_PROFILE\)"),
    ("DDLIB_FIGURES", "~nosuchuser_ddlib/f", lambda: env.figures(), env.EnvError, r"\$DDLIB_FIGURES.*names no user"),
])
def test_a_bad_environment_variable_is_named(name, value, call, error, match, monkeypatch):
    monkeypatch.setenv(name, value)
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("value, expected", [("1", True), ("yes", True), ("TRUE", True), ("0", False),
                                             ("no", False), ("", False)])
def test_offline_reads_the_documented_yes_no_values(value, expected, monkeypatch):
    monkeypatch.setenv("DDLIB_OFFLINE", value)
    assert env.offline() is expected


# -- loss shapes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("real, syn, weights, match", [
    ((3, 4, 1, 16, 16), (2, 2, 1, 16, 16), None, r"same number of classes"),
    ((3, 4, 1, 16, 16), (3, 2, 3, 16, 16), None, r"same image shape"),
    ((12, 1, 16, 16), (3, 2, 1, 16, 16), None, r"expects real \[C, B, \.\.\.\]"),
    ((3, 4, 1, 16, 16), (3, 2, 1, 16, 16), (3, 5), r"weights \(3, 5\) must be \[C, B\] = \(3, 4\)"),
])
def test_dm_loss_with_mismatched_shapes_says_which(real, syn, weights, match):
    net = ConvNet(1, 3, 16, ConvNetConfig(depth=2, width=8))
    w = None if weights is None else torch.ones(weights)
    with pytest.raises(ValueError, match=match):
        dm_loss(net, torch.zeros(real), torch.zeros(syn), w)


# -- cache metadata and a full disk ----------------------------------------------------------------
@pytest.mark.parametrize("damage", ["non-utf8 byte", "truncated", "not an object"])
def test_damaged_metadata_is_rebuilt_and_says_so(damage, tmp_path):
    artifact = ArtifactDir("things", {"a": 1}, code=(), root=tmp_path)
    builds = []

    def build():
        builds.append(1)
        artifact.commit({"x.npz": cache_module.save_npz({"x": np.arange(3)})}, {"source": "test"})
        return "built"

    assert get_or_build(artifact, lambda: "loaded", build) == "built"
    meta = artifact.path / "meta.json"
    data = bytearray(meta.read_bytes())
    if damage == "non-utf8 byte":
        data[len(data) // 2] = 0xFF
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data = bytearray(json.dumps([1, 2]).encode())
    meta.write_bytes(bytes(data))
    with pytest.warns(CacheCorruptionWarning, match="cached metadata .*meta.json.*rebuilt"):
        assert get_or_build(artifact, lambda: "loaded", build) == "built"
    assert len(builds) == 2
    assert get_or_build(artifact, lambda: "loaded", build) == "loaded"  # the rebuilt copy is read again


def test_a_full_disk_is_a_cache_error_and_leaves_no_partial_file(tmp_path):
    def write(path):
        path.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(CacheError, match=r"no space left to write .*x.bin.*DDLIB_CACHE"):
        atomic_write(tmp_path / "x.bin", write)
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_cache_is_named_before_mnist_is_called_missing(isolated_cache, monkeypatch):
    # root ignores permission bits, so the read-only folder is simulated where the probe writes
    from ddlib.sources import load_mnist

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setenv("DDLIB_OFFLINE", "1")
    monkeypatch.delenv("DDLIB_DATA_ROOT", raising=False)
    cache_module.cache_root()
    monkeypatch.setattr(cache_module.tempfile, "mkstemp", refuse)
    with pytest.raises(CacheError, match=r"cache folder .* is not writable"):
        load_mnist()


# -- raw data files --------------------------------------------------------------------------------
def test_float_images_are_called_floats_not_wrong_shapes():
    from ddlib.sources.mnist import check_raw_arrays
    arrays = {"train_images": np.zeros((6, 28, 28), np.float32), "test_images": np.zeros((2, 28, 28), np.float32),
              "train_labels": np.zeros(6, np.int64), "test_labels": np.zeros(2, np.int64)}
    with pytest.raises(DataSourceError, match=r"images of dtype .*float32.*expected uint8"):
        check_raw_arrays(arrays, "MNIST", "mnist.npz", 6, 2, (28, 28))


def test_a_damaged_idx_header_is_called_damaged(tmp_path):
    from ddlib.sources.idx import read_idx
    path = tmp_path / "train-images-idx3-ubyte"
    header = bytes([0, 0, 0x08, 3]) + (0).to_bytes(4, "big") + (28).to_bytes(4, "big") + (28).to_bytes(4, "big")
    path.write_bytes(header + bytes(100))
    with pytest.raises(ValueError, match=r"damaged header .*\(0, 28, 28\)"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 0x08, 3]) + b"".join(n.to_bytes(4, "big") for n in (2, 28, 28)) + bytes(100))
    with pytest.raises(ValueError, match=r"truncated or its header damaged: the header declares shape \(2, 28, 28\)"):
        read_idx(path)


# -- notebook parameters ---------------------------------------------------------------------------
PARAMETERS_CELL = "profile = None  # the profile\nseeds = None\n"


@pytest.mark.parametrize("history, undeclared", [
    (["", "import x", PARAMETERS_CELL, "# Parameters\nprofile = \"smoke\"\n", "setup()"], []),
    (["", PARAMETERS_CELL, "# Parameters\nnosuchparam = 3\nseeds = [0]\n", "setup()"], ["nosuchparam"]),
    (["", PARAMETERS_CELL, "setup()"], []),  # run by hand or by nbval: nothing injected
])
def test_injected_parameters_are_compared_with_the_parameters_cell(history, undeclared):
    assert undeclared_parameters(history)[0] == undeclared


DEFAULTS_CELL = "profile = None\nrun_validation = True   # section 1\nepochs = 3\nname = 'x'\n"


@pytest.mark.parametrize("injected, problems", [
    ("run_validation = 'no'", ["run_validation expects True or False (its default is True), got 'no'"]),
    ("run_validation = False\nepochs = 5.0\nname = 'y'\nprofile = [1]", []),   # None default: anything
    ("epochs = '5'", ["epochs expects a number (its default is 3), got '5'"]),
    ("epochs = True", ["epochs expects a number (its default is 3), got True"]),
    ("name = 3", ["name expects a string (its default is 'x'), got 3"]),
])
def test_injected_values_must_match_a_literal_default_type(injected, problems):
    assert injected_type_mismatches(["", DEFAULTS_CELL, "# Parameters\n" + injected]) == problems


@pytest.mark.slow
def test_papermill_with_an_unknown_parameter_fails(tmp_path):
    import nbformat
    import papermill
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(PARAMETERS_CELL)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("from ddlib.profiles import get_profile\n"
                                                   "P = get_profile(profile)\nprint(P.name)")]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    papermill.execute_notebook(str(path), str(tmp_path / "ok.ipynb"), parameters={"profile": "smoke"},
                               progress_bar=False)
    with pytest.raises(papermill.PapermillExecutionError, match=r"nosuchparam are not declared .*profile, seeds"):
        papermill.execute_notebook(str(path), str(tmp_path / "bad.ipynb"),
                                   parameters={"profile": "smoke", "nosuchparam": 3}, progress_bar=False)


# -- reproduce.sh options --------------------------------------------------------------------------
def _reproduce(tmp_path, *args, **extra_env):
    venv = tmp_path / "venv"
    run_env = {**os.environ, "DDLIB_VENV": str(venv), **extra_env}
    proc = subprocess.run([str(REPO / "reproduce.sh"), *args], cwd=REPO, env=run_env, capture_output=True,
                          text=True, timeout=60)
    return proc, venv


@pytest.mark.parametrize("args, match", [
    (["--only", "99"], r"no notebook matches '99'"),
    (["--run-dir", "{file}"], r"--run-dir .*afile is a file, not a folder"),
    (["--run-dir", "{file}/sub"], r"cannot create the run folder .*afile/sub"),
    (["--profile", "fast"], r"unknown profile 'fast'"),
])
def test_reproduce_checks_its_options_before_any_install(args, match, tmp_path):
    (tmp_path / "afile").write_text("x")
    args = [a.format(file=tmp_path / "afile") for a in args]
    proc, venv = _reproduce(tmp_path, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert re.search(match, proc.stderr), proc.stderr
    assert not venv.exists()  # nothing was installed


def test_reproduce_no_install_uses_ddlib_venv(tmp_path):
    proc, venv = _reproduce(tmp_path, "--no-install", "--run-dir", str(tmp_path / "runs"))
    assert proc.returncode == 2
    assert f"DDLIB_VENV={venv}, but {venv}/bin/python does not exist" in proc.stderr
