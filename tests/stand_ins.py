"""Cheap stand-in stages for tests that exercise storage and bookkeeping, not the method: no
pyxtal, no EMT, a few milliseconds each. Not a test module (imported by the tests)."""

from __future__ import annotations

from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from assyst_nodes.lineage import update_uuid
from assyst_nodes.reports import StageReport


def cubes(seed: int = 1, n: int = 40) -> tuple[list[Atoms], StageReport]:
    """``n`` fcc Cu cells with uuids (lattice constants 3.5 + seed + 0.01 k Å): a "sample"."""
    found = [
        update_uuid(bulk("Cu", "fcc", a=3.5 + 0.01 * k + seed, cubic=True), "cubes", (seed, k))
        for k in range(n)
    ]
    return found, StageReport("cubes", n_out=len(found))


def shifted(found: list[Atoms]) -> tuple[list[Atoms], StageReport]:
    """Each cell moved by 0.01 Å with a single-point result (energy eV, forces eV/Å), a new
    uuid and its parent in the lineage: a "relaxation"."""
    out = []
    for atoms in found:
        moved = atoms.copy()
        moved.positions += 0.01
        moved.calc = SinglePointCalculator(
            moved, energy=-3.5 * len(moved), forces=0.1 * moved.positions
        )
        out.append(update_uuid(moved, "shift", ""))
    return out, StageReport("shift", n_in=len(found), n_out=len(out))
