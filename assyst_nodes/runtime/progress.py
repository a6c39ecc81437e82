"""Progress bars for long stages: shown in terminals and notebooks, silent in CI and pipes.

Stages take ``progress: bool | None``; ``None`` (the default) means :func:`progress_wanted`:
on when the ``ASSYST_PROGRESS`` environment variable is ``1``; off when it is ``0``, when ``CI``
is set, or when neither standard error is a terminal nor the code runs in a Jupyter kernel.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

__all__ = ["Bar", "progress_bar", "progress_wanted"]


class Bar(Protocol):
    """What a stage needs of a progress bar."""

    def update(self, n: int = 1) -> Any: ...


class _NoBar:
    def update(self, n: int = 1) -> None:
        return None


def _in_jupyter_kernel() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except AttributeError:
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def progress_wanted(progress: bool | None = None) -> bool:
    """Resolve a stage's ``progress`` argument (see the module docstring)."""
    if progress is not None:
        return bool(progress)
    setting = os.environ.get("ASSYST_PROGRESS", "").strip()
    if setting in {"0", "1"}:
        return setting == "1"
    if os.environ.get("CI"):
        return False
    stderr = sys.stderr
    return _in_jupyter_kernel() or bool(stderr is not None and stderr.isatty())


@contextmanager
def progress_bar(total: int, description: str, progress: bool | None = None) -> Iterator[Bar]:
    """A bar of ``total`` steps named ``description``, or a no-op bar when progress is off.

    In a notebook with ipywidgets the bar is a widget, otherwise text on standard error.
    """
    if not progress_wanted(progress) or total <= 0:
        yield _NoBar()
        return
    if _in_jupyter_kernel():
        try:
            import ipywidgets  # noqa: F401
            from tqdm.auto import tqdm
        except ImportError:
            from tqdm.std import tqdm
    else:
        from tqdm.std import tqdm
    bar = tqdm(total=total, desc=description, leave=False, file=sys.stderr)
    try:
        yield bar
    finally:
        bar.close()
