"""Combine step: several structure sets as one, each structure once (by its uuid).

The canonical run combines the sampled, relaxed and perturbed sets before the final filter;
``combine`` passes the structures on unchanged (no copy, no new uuid).
"""

from __future__ import annotations

from collections.abc import Iterable

from ase import Atoms

from ..lineage import UUID

__all__ = ["combine"]


def combine(*structure_sets: Iterable[Atoms]) -> list[Atoms]:
    """All structures of the given sets, in order, each uuid once (first occurrence kept).

    Parameters
    ----------
    *structure_sets : iterable of ase.Atoms
        The sets, in order.

    Returns
    -------
    list of ase.Atoms
        The structures (not copied); of those with the same ``uuid`` only the first; every
        structure without a uuid is kept.
    """
    seen: set[str] = set()
    out: list[Atoms] = []
    for structures in structure_sets:
        for structure in structures:
            uid = structure.info.get(UUID)
            if uid is not None and uid in seen:
                continue
            if uid is not None:
                seen.add(uid)
            out.append(structure)
    return out
