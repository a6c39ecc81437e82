"""Training sets in the formats fitting codes read: extended XYZ with reference keys (MACE,
NequIP, ...), and the pandas pickle of pacemaker (ACE).

The labels are the results of each structure's calculator (energy in eV, forces in eV/Å,
stress in eV/Å³), e.g. the single points of the label stage with a DFT code. A structure
without them (its label failed, or it was never labelled) is left out and counted; nothing is
written for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms

from .extxyz import extxyz_ready

__all__ = ["labelled", "write_labelled_extxyz", "write_pacemaker"]


def labelled(structures: Iterable[Atoms]) -> tuple[list[Atoms], int]:
    """The structures with a finite energy and forces, and how many were left out.

    Parameters
    ----------
    structures : iterable of ase.Atoms
        Structures whose calculator results (``atoms.calc.results``) may hold ``energy`` (eV)
        and ``forces`` (eV/Å).

    Returns
    -------
    kept : list of ase.Atoms
        The structures with a finite energy and all forces finite, in order.
    left_out : int
        How many had no calculator, no energy or forces, or a non-finite value.
    """
    kept, left_out = [], 0
    for atoms in structures:
        results = getattr(atoms.calc, "results", {}) or {}
        energy, forces = results.get("energy"), results.get("forces")
        if (
            energy is None
            or forces is None
            or not np.isfinite(energy)
            or not np.all(np.isfinite(forces))
        ):
            left_out += 1
            continue
        kept.append(atoms)
    return kept, left_out


def write_labelled_extxyz(
    structures: Iterable[Atoms], path: str | os.PathLike[str], prefix: str = "REF_"
) -> tuple[Path, int]:
    """Write the labelled ``structures`` to extended XYZ with their labels under ``prefix``.

    The labels are written as ``REF_energy`` (eV), ``REF_forces`` (eV/Å per atom) and
    ``REF_stress`` (the 3x3 tensor in eV/Å³, where the calculator gave a stress), MACE's
    convention with the default prefix, not as ASE's calculator keys, so a fitting code never
    mixes them up with another potential's. Provenance keys stay (see
    :func:`assyst_nodes.io.extxyz.extxyz_ready`). Structures without a finite energy and
    forces are left out (see :func:`labelled`).

    Parameters
    ----------
    structures : iterable of ase.Atoms
        The structures with their calculator results.
    path : str or os.PathLike
        The extended XYZ file; overwritten if it exists.
    prefix : str, optional
        Prefix of the label keys; must be a valid Python identifier. Default: ``"REF_"``.

    Returns
    -------
    path : pathlib.Path
        ``path``.
    left_out : int
        The number of structures left out.

    Raises
    ------
    ValueError
        If ``prefix`` is not a valid identifier (e.g. ``"REF_"``).
    """
    if not isinstance(prefix, str) or not prefix.isidentifier():
        raise ValueError(f"prefix must be a key prefix such as 'REF_', got {prefix!r}")
    from ase.io import write

    kept, left_out = labelled(structures)
    out = []
    for atoms in kept:
        copy = extxyz_ready(atoms)
        results = atoms.calc.results
        copy.calc = None
        copy.info[f"{prefix}energy"] = float(results["energy"])
        copy.arrays[f"{prefix}forces"] = np.array(results["forces"], dtype=float)
        if results.get("stress") is not None:
            stress = np.asarray(results["stress"], dtype=float)
            if stress.shape == (6,):
                xx, yy, zz, yz, xz, xy = stress
                stress = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
            copy.info[f"{prefix}stress"] = stress
        out.append(copy)
    target = Path(path)
    write(target, out, format="extxyz")
    return target, left_out


def write_pacemaker(
    structures: Iterable[Atoms],
    path: str | os.PathLike[str],
    reference_energies: Mapping[str, float],
) -> tuple[Path, int]:
    """Write the labelled ``structures`` as pacemaker's training table.

    The table is a gzip-compressed pandas pickle with columns ``ase_atoms`` (the structure, no
    calculator), ``energy`` (eV), ``forces`` (eV/Å, one row per atom), ``energy_corrected``
    (eV: the energy minus the ``reference_energies`` of its atoms) and ``uuid``. Structures
    without a finite energy and forces are left out (see :func:`labelled`).

    Parameters
    ----------
    structures : iterable of ase.Atoms
        The structures with their calculator results.
    path : str or os.PathLike
        The pickle file; overwritten if it exists.
    reference_energies : mapping of str to float
        Energy (eV per atom) of each element, e.g. of isolated atoms with the same DFT
        settings; every element of the kept structures needs one.

    Returns
    -------
    path : pathlib.Path
        ``path``.
    left_out : int
        The number of structures left out.

    Raises
    ------
    ValueError
        If a reference energy is missing (the message names the element).
    """
    kept, left_out = labelled(structures)
    needed = sorted({s for atoms in kept for s in atoms.get_chemical_symbols()})
    missing = [e for e in needed if e not in reference_energies]
    if missing:
        raise ValueError(
            f"reference_energies lacks {missing} (eV per atom); give one for each of {needed}"
        )
    rows = []
    for atoms in kept:
        energy = float(atoms.calc.results["energy"])
        shift = sum(float(reference_energies[s]) for s in atoms.get_chemical_symbols())
        bare = atoms.copy()
        bare.calc = None
        rows.append(
            {
                "ase_atoms": bare,
                "energy": energy,
                "forces": np.array(atoms.calc.results["forces"], dtype=float),
                "energy_corrected": energy - shift,
                "uuid": atoms.info.get("uuid"),
            }
        )
    columns = ["ase_atoms", "energy", "forces", "energy_corrected", "uuid"]
    frame = pd.DataFrame(rows, columns=columns)
    target = Path(path)
    frame.to_pickle(target, compression="gzip")
    return target, left_out
