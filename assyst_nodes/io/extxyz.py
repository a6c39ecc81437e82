"""Extended XYZ output that keeps results and provenance readable by ASE and fitting codes."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ase import Atoms

from ..lineage import LINEAGE

__all__ = ["extxyz_ready", "write_extxyz"]


def extxyz_ready(atoms: Atoms) -> Atoms:
    """A copy whose ``info`` holds only values extxyz can write, with the same calculator.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure; it is not changed.

    Returns
    -------
    ase.Atoms
        A copy sharing ``atoms``' calculator (so its energy in eV, forces in eV/Å and stress in
        eV/Å^3 are written), whose ``info`` has ``lineage`` and any other list of strings as one
        space-separated string, and leaves out ``None`` and empty values (e.g. the empty
        lineage of a sampled crystal), since extxyz cannot hold an empty value (it would
        swallow the next key on reading).
    """
    copy = atoms.copy()
    copy.calc = atoms.calc  # keep energy (eV), forces (eV/Å) and stress (eV/Å^3)
    info = {}
    for key, value in atoms.info.items():
        is_strings = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        if value is None or (isinstance(value, str | list | tuple) and len(value) == 0):
            continue
        info[key] = " ".join(str(v) for v in value) if key == LINEAGE or is_strings else value
    copy.info = info
    return copy


def write_extxyz(structures: Iterable[Atoms], path: str | os.PathLike[str]) -> Path:
    """Write ``structures`` to the extended XYZ file ``path`` (see :func:`extxyz_ready`).

    Parameters
    ----------
    structures : iterable of ase.Atoms
        The structures, written in order with their provenance keys and calculator results.
    path : str or os.PathLike
        The file; overwritten if it exists.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from ase.io import write

    target = Path(path)
    write(target, [extxyz_ready(atoms) for atoms in structures], format="extxyz")
    return target
