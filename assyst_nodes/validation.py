"""Checks of stage inputs that run before any work starts and name what is wrong."""

from __future__ import annotations

from collections.abc import Iterable

from ase import Atoms

__all__ = ["structure_list"]


def structure_list(structures: Iterable[Atoms]) -> list[Atoms]:
    """``structures`` as a list, or ``TypeError`` naming the first item that is not ``Atoms``."""
    if isinstance(structures, Atoms):
        raise TypeError("expected an iterable of ase.Atoms, got a single Atoms; wrap it in a list")
    items = list(structures)
    for position, item in enumerate(items):
        if not isinstance(item, Atoms):
            raise TypeError(
                f"structure {position} is a {type(item).__name__}, expected ase.Atoms"
            )
    return items
