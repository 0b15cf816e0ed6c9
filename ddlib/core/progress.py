"""Progress bars that read well in a terminal, in Jupyter and in papermill-executed notebooks.

Plain-text tqdm (no widgets: executed notebooks stay readable on GitHub); when the output is not
a terminal (notebooks, logs) the bar is refreshed at most every ``DDLIB_PROGRESS_INTERVAL``
seconds (default 10) so stored outputs do not fill with thousands of updates.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm import tqdm

from ddlib.core import env

T = TypeVar("T")


def progress(iterable: Iterable[T], desc: str, disable: bool = False, **kwargs: Any) -> tqdm:
    interactive = sys.stderr.isatty()
    interval = env.progress_interval() or 10.0
    return tqdm(iterable, desc=desc, disable=disable, mininterval=0.1 if interactive else interval,
                ascii=not interactive, dynamic_ncols=interactive, ncols=None if interactive else 90, **kwargs)
