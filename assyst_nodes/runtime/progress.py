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
    """What a stage needs of a progress bar.

    A structural type (:class:`typing.Protocol`): anything with a method ``update(n=1)`` that
    advances the bar by ``n`` steps (its return value is ignored), such as a ``tqdm`` bar or
    the no-op bar that :func:`progress_bar` yields when progress is off.
    """

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
    """Resolve a stage's ``progress`` argument into whether to show a bar.

    Parameters
    ----------
    progress : bool or None, optional
        ``True`` or ``False``: that, as given. ``None`` (the default): decide from the
        environment, as the module docstring describes.

    Returns
    -------
    bool
        ``progress`` if it is not ``None``; else ``True`` when the ``ASSYST_PROGRESS``
        environment variable is ``1``, ``False`` when it is ``0``, ``False`` when ``CI`` is
        set, and otherwise whether the code runs in a Jupyter kernel or standard error is a
        terminal.
    """
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
    A context manager: the bar is closed (and, being ``leave=False``, removed) when the
    context ends.

    Parameters
    ----------
    total : int
        Number of steps (e.g. structures) the bar counts to. ``0`` or less: no bar.
    description : str
        Label shown in front of the bar.
    progress : bool or None, optional
        Whether to show it; ``None`` (the default) decides as :func:`progress_wanted` does.

    Yields
    ------
    Bar
        A ``tqdm`` bar, or a bar whose ``update`` does nothing when progress is off or
        ``total <= 0``.
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
