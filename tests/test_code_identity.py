"""Cache keys that know the code and the device (issue: nothing stale after a code change).

The fingerprint tests work on a copy of the ddlib sources in a temporary folder (``package_dir=``),
so the real tree is never edited; the end-to-end test runs a tiny DM distillation in subprocesses
that import that copy and share one cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import ddlib
from ddlib.core import code_identity, env
from ddlib.core.cache import ArtifactDir, CacheError, StaleReuseWarning, cache_root
from ddlib.core.code_identity import closure, code_fingerprint
from ddlib.core.device import numerics_identity

REPO = Path(ddlib.__file__).resolve().parents[1]
DM_LOSS_LINE = "        loss.backward()\n"


@pytest.fixture
def ddlib_copy(tmp_path) -> Path:
    """A copy of the ddlib package (sources only) under ``tmp_path/src/ddlib``."""
    target = tmp_path / "src" / "ddlib"
    shutil.copytree(Path(ddlib.__file__).parent, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path}: the test needs updating"
    path.write_text(text.replace(old, new))


# -- the fingerprint ---------------------------------------------------------------------------------
def test_the_copy_fingerprints_like_the_installed_package(ddlib_copy):
    assert code_fingerprint("ddlib.distill.dm", package_dir=ddlib_copy) == code_fingerprint("ddlib.distill.dm")


def test_an_edit_to_the_dm_loss_changes_the_dm_fingerprint(ddlib_copy):
    before = code_fingerprint("ddlib.distill.dm", package_dir=ddlib_copy)
    _edit(ddlib_copy / "distill" / "dm.py", DM_LOSS_LINE, "        (loss * 3.0).backward()\n")
    assert code_fingerprint("ddlib.distill.dm", package_dir=ddlib_copy) != before


def test_an_edit_to_an_imported_module_changes_it_too(ddlib_copy):
    # the ConvNet is imported by DM (not declared by it): a changed layer is a changed computation
    assert "ddlib.models.convnet" in closure(["ddlib.distill.dm"], ddlib_copy)
    before = code_fingerprint("ddlib.distill.dm", package_dir=ddlib_copy)
    path = ddlib_copy / "models" / "convnet.py"
    path.write_text(path.read_text() + "\nEXTRA_CONSTANT = 1\n")
    assert code_fingerprint("ddlib.distill.dm", package_dir=ddlib_copy) != before


def test_docstrings_comments_and_unrelated_modules_keep_the_fingerprint(ddlib_copy):
    before = code_fingerprint("ddlib.distill.dm", package_dir=ddlib_copy)
    dm = ddlib_copy / "distill" / "dm.py"
    _edit(dm, DM_LOSS_LINE, "        loss.backward()  # a new comment\n\n")
    _edit(dm, '    """DM settings (defaults: the reference implementation\'s)."""',
          '    """DM settings, reworded."""')
    # modules DM does not import: the report tool, another method, the progress bars
    assert not {"ddlib.tools.report", "ddlib.distill.mtt", "ddlib.core.progress"} & closure(["ddlib.distill.dm"],
                                                                                             ddlib_copy)
    for name in ("tools/report.py", "distill/mtt.py", "core/progress.py"):
        path = ddlib_copy / name
        path.write_text(path.read_text() + "\ndef _added_by_the_test():\n    return 42\n")
    assert code_fingerprint("ddlib.distill.dm", package_dir=ddlib_copy) == before
    # ... while MTT's own fingerprint sees its edit
    assert code_fingerprint("ddlib.distill.mtt", package_dir=ddlib_copy) != code_fingerprint("ddlib.distill.mtt")


def test_a_renamed_variable_or_changed_constant_counts_as_an_edit(ddlib_copy):
    before = code_fingerprint("ddlib.distill.dm", package_dir=ddlib_copy)
    _edit(ddlib_copy / "distill" / "dm.py", "    lr_img: float = 1.0\n", "    lr_img: float = 1.5\n")
    assert code_fingerprint("ddlib.distill.dm", package_dir=ddlib_copy) != before


def test_objects_are_fingerprinted_by_their_module_and_outsiders_are_refused():
    from ddlib.distill.dm import DMConfig
    assert code_fingerprint(DMConfig) == code_fingerprint(DMConfig()) == code_fingerprint("ddlib.distill.dm")
    with pytest.raises(ValueError, match="not a ddlib module"):
        code_fingerprint(torch.nn.Linear)
    with pytest.raises(ValueError, match="not a ddlib module"):
        code_fingerprint("ddlib.no_such_module")


def test_bookkeeping_modules_are_not_part_of_any_fingerprint():
    every_closure = closure(["ddlib.distill.dm", "ddlib.distill.mtt", "ddlib.training.evaluation",
                             "ddlib.kde_supcon.surrogate"])
    assert not every_closure & code_identity.NOT_NUMERIC
    assert "ddlib.distill.driver" in every_closure and "ddlib.augment.dsa" in every_closure


# -- keys of artifacts -------------------------------------------------------------------------------
def test_the_key_holds_the_code_and_meta_records_it(isolated_cache):
    plain = ArtifactDir("test", {"a": 1}, code=())
    dm = ArtifactDir("test", {"a": 1}, code=("ddlib.distill.dm",))
    mtt = ArtifactDir("test", {"a": 1}, code=("ddlib.distill.mtt",))
    assert len({plain.key, dm.key, mtt.key}) == 3
    assert dm.code == code_fingerprint("ddlib.distill.dm") and plain.code is None
    assert dm.config_key == plain.config_key
    dm.commit({}, {"note": "test"})
    meta = json.loads((dm.path / "meta.json").read_text())
    assert meta["code"] == dm.code and meta["config_key"] == dm.config_key and meta["key"] == dm.key


def test_code_is_a_required_declaration(isolated_cache):
    with pytest.raises(TypeError):
        ArtifactDir("test", {"a": 1})  # type: ignore[call-arg]


def _fake_cuda(monkeypatch, name: str = "NVIDIA H100 80GB HBM3") -> None:
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: name)
    monkeypatch.setattr(torch.version, "cuda", "12.4")


def test_cpu_and_a_gpu_get_two_keys(monkeypatch, isolated_cache):
    from ddlib.distill.dm import DMConfig, DMMethod
    from conftest import tiny_dataset
    cpu = numerics_identity("cpu")
    assert cpu == {"device": "cpu", "torch": torch.__version__.split("+")[0]}
    _fake_cuda(monkeypatch)
    gpu = numerics_identity("cuda")
    assert gpu["device"] == "cuda" and gpu["gpu"] == "NVIDIA H100 80GB HBM3" and gpu["cuda"] == "12.4"
    assert set(gpu["tf32"]) == {"matmul", "cudnn"}
    _fake_cuda(monkeypatch, "NVIDIA H200")
    assert numerics_identity("cuda:0") != gpu  # another GPU model, another key
    # the same DM configuration on the two devices: two synthetic-set keys
    ds = tiny_dataset()
    config = DMConfig(iterations=1, batch_real=8, device_resident=False)
    on_cpu = DMMethod(ds, 1, config, None, torch.device("cpu")).cache_key()
    monkeypatch.setattr("ddlib.distill.driver.numerics_identity", lambda device: numerics_identity("cuda"))
    on_gpu = DMMethod(ds, 1, config, None, torch.device("cpu")).cache_key()
    from ddlib.core.cache import config_key
    assert config_key(on_cpu) != config_key(on_gpu)
    assert on_cpu["device"] == "cpu" and on_gpu["device"] == "cuda"


def test_every_device_dependent_artifact_carries_the_device():
    # the call sites that build keys of device-computed artifacts name numerics_identity
    for module in ("distill/driver.py", "distill/mtt.py", "training/evaluation.py", "kde_supcon/surrogate.py",
                   "weighting/baselines.py"):
        assert "numerics_identity(" in (REPO / "ddlib" / module).read_text(), module


# -- the escape hatch --------------------------------------------------------------------------------
def test_reuse_stale_takes_an_older_build_and_says_so(isolated_cache, monkeypatch):
    old = ArtifactDir("test", {"a": 1}, code=("ddlib.distill.mtt",))
    old.commit({"x.txt": lambda p: p.write_text("old")}, {})
    # unset: a build by other code is never served
    fresh = ArtifactDir("test", {"a": 1}, code=("ddlib.distill.dm",))
    assert not fresh.is_complete() and fresh.reused_stale is None
    monkeypatch.setenv(env.REUSE_STALE_ENV, "1")
    with pytest.warns(StaleReuseWarning, match=old.key):
        reused = ArtifactDir("test", {"a": 1}, code=("ddlib.distill.dm",))
    assert reused.is_complete() and reused.file("x.txt").read_text() == "old"
    assert reused.reused_stale["built_with_code"] == old.code and reused.reused_stale["current_code"] == reused.code
    # another configuration is never adopted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not ArtifactDir("test", {"a": 2}, code=("ddlib.distill.dm",)).is_complete()
    # a build made now goes under the current code's key, and is then preferred over the stale one
    reused.commit({"x.txt": lambda p: p.write_text("new")}, {})
    assert reused.key == fresh.key and reused.file("x.txt").read_text() == "new"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = ArtifactDir("test", {"a": 1}, code=("ddlib.distill.dm",))
    assert again.file("x.txt").read_text() == "new" and again.reused_stale is None


def test_reuse_stale_must_be_a_yes_or_no(isolated_cache, monkeypatch):
    monkeypatch.setenv(env.REUSE_STALE_ENV, "sometimes")
    with pytest.raises(CacheError, match="DDLIB_REUSE_STALE"):
        ArtifactDir("test", {"a": 1}, code=())


# -- end to end: an edit in a copy of the package, one shared cache ----------------------------------
def _distil(src: Path, cache: Path, *extra_env: tuple[str, str]) -> dict:
    script = (
        "import hashlib, json, sys, warnings\n"
        "sys.path.insert(1, sys.argv[1])\n"
        "import ddlib\n"
        "from conftest import tiny_dataset\n"
        "from ddlib.distill.dm import DMConfig, distill_dm\n"
        "from ddlib.models.convnet import ConvNetConfig\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    result = distill_dm(tiny_dataset(), 1, DMConfig(iterations=3, batch_real=8, dsa=False,\n"
        "                        model=ConvNetConfig(depth=2, width=8), checkpoint_every=0), progress=False)\n"
        "print(json.dumps({'ddlib': ddlib.__file__,\n"
        "                  'images': hashlib.sha256(result.images.numpy().tobytes()).hexdigest(),\n"
        "                  'warnings': [str(w.message) for w in caught]}))\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(src), "DDLIB_CACHE": str(cache), "DDLIB_PROFILE": "smoke",
                   "OMP_NUM_THREADS": "1"}
    environment.pop(env.REUSE_STALE_ENV, None)
    environment.update(dict(extra_env))
    out = subprocess.run([sys.executable, "-c", script, str(REPO / "tests")], env=environment, cwd=src,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(record["ddlib"]).resolve().is_relative_to(src.resolve()), "the subprocess imported the wrong ddlib"
    record["builds"] = sorted(p.parent.name for p in (cache / "synthetic").rglob("meta.json"))
    return record


def test_an_edited_dm_loss_is_recomputed_and_an_unrelated_edit_is_served_from_the_cache(ddlib_copy, tmp_path):
    src, cache = ddlib_copy.parent, tmp_path / "cache"
    first = _distil(src, cache)
    assert len(first["builds"]) == 1
    again = _distil(src, cache)
    assert again["builds"] == first["builds"] and again["images"] == first["images"]
    # an unrelated edit (the report tool, a docstring of DM): the same key, the cached set
    report = ddlib_copy / "tools" / "report.py"
    report.write_text(report.read_text() + "\ndef _unrelated():\n    return 1\n")
    _edit(ddlib_copy / "distill" / "dm.py", '    """DM settings (defaults: the reference implementation\'s)."""',
          '    """DM settings."""')
    unrelated = _distil(src, cache)
    assert unrelated["builds"] == first["builds"] and unrelated["images"] == first["images"]
    # the probe: the loss scaled by 3 → a new key and a recomputed (different) set
    _edit(ddlib_copy / "distill" / "dm.py", DM_LOSS_LINE, "        (loss * 3.0).backward()\n")
    edited = _distil(src, cache)
    assert len(edited["builds"]) == 2 and edited["images"] != first["images"]
    # the escape hatch after a *cosmetic* edit: the newest build of the same configuration, announced
    _edit(ddlib_copy / "distill" / "dm.py", "        (loss * 3.0).backward()\n", "        (loss * 3.00).backward()\n"
          "        _ = None\n")
    stale = _distil(src, cache, (env.REUSE_STALE_ENV, "1"))
    assert stale["images"] == edited["images"] and len(stale["builds"]) == 2
    assert any("DDLIB_REUSE_STALE" in w and "reusing" in w for w in stale["warnings"])


# -- the last raw errors ----------------------------------------------------------------------------
def test_a_relative_cache_is_refused_in_the_library(monkeypatch):
    monkeypatch.setenv("DDLIB_CACHE", "relative/cache")
    with pytest.raises(CacheError, match=r'DDLIB_CACHE.*relative path.*\$PWD/relative/cache'):
        cache_root()
    monkeypatch.setenv("DDLIB_DATA_ROOT", "/abs/data" + os.pathsep + "data")
    with pytest.raises(env.EnvError, match="DDLIB_DATA_ROOT.*relative path 'data'"):
        env.data_roots()


def test_entry_points_make_relative_paths_absolute_once(tmp_path, monkeypatch, capsys):
    environ = {"DDLIB_CACHE": "c", "DDLIB_FIGURES": str(tmp_path / "figs"),
               "DDLIB_DATA_ROOT": os.pathsep.join(["/abs/data", "data", "~/d"])}
    changed = env.absolutize_relative_paths(environ, cwd=tmp_path)
    assert changed == {"DDLIB_CACHE": str(tmp_path / "c"),
                       "DDLIB_DATA_ROOT": os.pathsep.join(["/abs/data", str(tmp_path / "data"), "~/d"])}
    assert environ["DDLIB_FIGURES"] == str(tmp_path / "figs")  # absolute: untouched
    assert env.absolutize_relative_paths(environ, cwd=tmp_path / "elsewhere") == {}  # once: nothing left to do
    # a command-line tool does it for its process (and so for the kernels it starts) and says so
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DDLIB_CACHE", "rel")
    env.absolutize_at_entry("prog")
    assert os.environ["DDLIB_CACHE"] == str(tmp_path / "rel")
    assert cache_root() == tmp_path / "rel"
    assert "prog: relative $DDLIB_CACHE made absolute" in capsys.readouterr().err


def test_reproduce_sh_makes_a_relative_cache_absolute_before_changing_folder(tmp_path):
    environment = {**os.environ, "DDLIB_CACHE": "mycache", "DDLIB_DATA_ROOT": "data"}
    out = subprocess.run([str(REPO / "reproduce.sh"), "--help"], cwd=tmp_path, env=environment,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert f"DDLIB_CACHE={tmp_path}/mycache" in out.stderr and f"DDLIB_DATA_ROOT={tmp_path}/data" in out.stderr
    assert "DDLIB_REUSE_STALE" in out.stdout


def test_every_command_line_tool_absolutizes_at_entry():
    tools = REPO / "ddlib" / "tools"
    for path in sorted(tools.glob("*.py")):
        text = path.read_text()
        # colab writes a notebook and notebooks tidies files: neither reads a path variable
        if "def main(" in text and path.name not in ("colab.py", "notebooks.py"):
            assert "absolutize_at_entry(" in text, path.name


def test_the_remaining_raw_errors_are_clear(tmp_path):
    from ddlib.core.device import pick_device
    from ddlib.datasets import load_dataset
    from ddlib.kde_supcon.kde import kde_weights
    from ddlib.weighting.base import FixedWeights
    with pytest.raises(ValueError, match="train_per_class=2.5.*whole number"):
        load_dataset("bg_fmnist", train_per_class=2.5)
    with pytest.raises(ValueError, match="holds 3 scores.*one score per training sample"):
        FixedWeights(torch.ones(3), "short")(torch.tensor([[0, 5]]))
    with pytest.raises(ValueError, match="'tpu9'.*cpu, cuda"):
        pick_device("tpu9")
    z = torch.randn(2, 4, 3)
    mask = torch.tensor([[True, True, False, False], [False, False, False, False]])
    with pytest.raises(ValueError, match="mask row is all False"):
        kde_weights(z, 1.0, 1.0, mask)
