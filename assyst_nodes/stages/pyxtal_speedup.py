"""A result-preserving speed-up of pyxtal's random crystal generation (pyxtal 1.0 and 1.1).

While it places atoms, pyxtal merges trial points onto Wyckoff positions
(``Wyckoff_position.merge``) and checks each merged point against its periodic images with
``pyxtal.operations.check_images(..., tol=tol)``. That function builds a fresh
``Tol_matrix(prototype="atomic")`` on every call when none is passed, although it never reads it
when ``tol`` is given; building one walks a 100 x 100 table of element radii in Python. In a
sampling walk that is most of pyxtal's time (the profile is in ``benchmarks/RESULTS.md``).

:func:`install` makes the name ``check_images`` in ``pyxtal.symmetry`` (the caller) hand the
original function one prebuilt ``Tol_matrix(prototype="atomic")`` when no ``tm`` is given. The
original runs unchanged, with a tolerance matrix equal to the one it would have built, and no
random number is drawn differently, so the crystals are the same bit for bit (tested). It is
installed only where the shapes it relies on are found (same function object in both modules,
same parameters); anything else, e.g. a pyxtal that fixed this upstream, is left alone.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["install", "installed", "uninstall"]

_PARAMETERS = ("coords", "species", "lattice", "PBC", "tm", "tol", "d_factor")
_LOCK = threading.Lock()
_original: Callable[..., bool] | None = None


def install() -> bool:
    """Install the speed-up (idempotent, thread-safe); whether it is installed afterwards.

    Replaces the name ``check_images`` in ``pyxtal.symmetry`` by a wrapper that hands pyxtal's
    own function one prebuilt ``Tol_matrix(prototype="atomic")`` when no ``tm`` is given (the
    original stays reachable as the wrapper's ``__wrapped__``). The crystals pyxtal draws do
    not change, bit for bit. Calling it again, or from several threads, installs it once.

    Returns
    -------
    bool
        ``True`` if the speed-up is installed afterwards (now or by an earlier call);
        ``False`` if this pyxtal does not have the shapes it relies on (``check_images`` not
        the same function object in ``pyxtal.symmetry`` and ``pyxtal.operations``, other
        parameters, e.g. a pyxtal that fixed this upstream) or pyxtal does not import; then
        pyxtal is left alone.
    """
    global _original
    if _original is not None:  # the common case, without the lock
        return True
    with _LOCK:
        if _original is not None:
            return True
        try:
            import pyxtal.operations as operations
            import pyxtal.symmetry as symmetry
            from pyxtal.tolerance import Tol_matrix
        except ImportError:  # pragma: no cover - pyxtal is a dependency
            return False
        original = getattr(symmetry, "check_images", None)
        if original is None or original is not getattr(operations, "check_images", None):
            return False
        if tuple(inspect.signature(original).parameters) != _PARAMETERS:
            return False
        atomic = Tol_matrix(prototype="atomic")

        def check_images(
            coords: Any,
            species: Any,
            lattice: Any,
            PBC: Any = None,  # pyxtal's parameter name
            tm: Any = None,
            tol: Any = None,
            d_factor: float = 1.0,
        ) -> bool:
            return original(coords, species, lattice, PBC, atomic if tm is None else tm, tol,
                            d_factor)

        check_images.__wrapped__ = original  # type: ignore[attr-defined]
        symmetry.check_images = check_images
        _original = original
        return True


def installed() -> bool:
    """Whether :func:`install` has replaced ``pyxtal.symmetry.check_images``.

    Returns
    -------
    bool
        ``True`` while the speed-up is installed (after a successful :func:`install` and
        before :func:`uninstall`).
    """
    return _original is not None


def uninstall() -> None:
    """Put pyxtal's own ``check_images`` back (for comparisons and tests).

    Thread-safe; does nothing if the speed-up is not installed. A later :func:`install`
    installs it again.

    Returns
    -------
    None
    """
    global _original
    with _LOCK:
        if _original is None:
            return
        import pyxtal.symmetry as symmetry

        symmetry.check_images = _original
        _original = None
