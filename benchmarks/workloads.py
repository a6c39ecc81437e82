"""Inputs and the clock shared by both sides of the benchmarks (numpy, ASE and the stdlib only;
:func:`canonical_crystals`, called on this package's side alone, imports it when called).

Inputs are built from integer seeds. Both workers (ours and the reference's, possibly in
different virtual environments) import this module, so the structures they are handed are the
same bit for bit. Structure sets travel
between processes as ``.npz`` files (numbers, positions, cells, pbc; no pickles).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from ase import Atoms
from ase.build import bulk

__all__ = [
    "ASPECT",
    "CHOICE",
    "ELEMENTS",
    "RADII",
    "RATTLE_SIGMA",
    "SMALL_STRETCH",
    "compositions",
    "fcc_supercells",
    "load_structures",
    "save_structures",
    "spacegroup_grid",
    "timed",
]

R = TypeVar("R")

ELEMENTS: tuple[str, str] = ("Cu", "Ag")
"""The binary of the embedded example."""

RADII: dict[str, float] = {"Cu": 0.9, "Ag": 1.0}
"""Minimum-distance radii (Å) of the embedded Cu-Ag example: a pair is too close below r_i + r_j."""


ASPECT: float = 6.0
"""Largest cell aspect ratio kept by the filters of the embedded example."""

RATTLE_SIGMA: float = 0.1
"""σ (Å) of the rattle of the embedded example (one-atom cells repeated to 2x2x2 first)."""

SMALL_STRETCH: tuple[float, float] = (0.05, 0.05)
"""(hydro, shear) strain bounds of the stretch that follows the rattle."""

CHOICE: tuple[tuple[float, float], tuple[float, float], float] = ((0.8, 0.05), (0.05, 0.2), 0.5)
"""A random choice between two stretches (hydro, shear) with the chance of the second."""


def compositions(max_atoms: int) -> list[dict[str, int]]:
    """Every Cu-Ag composition with 1..``max_atoms`` atoms, Cu count major (zero counts left out,
    so both packages get exactly the same species lists)."""
    out = []
    for n_cu in range(max_atoms + 1):
        for n_ag in range(max_atoms + 1):
            if 1 <= n_cu + n_ag <= max_atoms:
                out.append({e: n for e, n in zip(ELEMENTS, (n_cu, n_ag), strict=True) if n > 0})
    return out


def canonical_crystals(n: int, progress: bool | None = False) -> list[Atoms]:
    """The canonical set: the first ``n`` Cu-Ag crystals of up to 4 atoms sampled by this
    package over all 230 space groups in shuffled order with seed 3 (radii :data:`RADII`).
    ``progress``: passed to ``sample`` (``None``: a bar only on a terminal)."""
    from assyst_nodes.stages.filter import DistanceFilter
    from assyst_nodes.stages.sample import Formulas, sample

    return list(
        sample(Formulas.range(ELEMENTS, 0, 5), range(1, 231), max_atoms=4, max_structures=n,
               tolerance=DistanceFilter(RADII), shuffle=True, rng=3, progress=progress)
    )  # fmt: skip


def spacegroup_grid(step: int) -> list[int]:
    """Space groups ``1, 1 + step, 1 + 2 step, ...`` up to 230."""
    if step < 1:
        raise ValueError(f"step must be an int >= 1, got {step!r}")
    return list(range(1, 231, step))


def fcc_supercells(n: int, seed: int, repeat: int = 3, max_sigma: float = 0.3) -> list[Atoms]:
    """``n`` rattled Cu-Ag fcc cells of ``4 * repeat**3`` atoms (4 for ``repeat=1``, 108 for 3).

    Lattice constant uniform in [3.6, 4.1] Å, each site Cu or Ag at random, positions rattled
    with a standard deviation uniform in [0, ``max_sigma``] Å (0.3 Å for 108 atoms and 0.7 Å
    for 4 atoms keep about half of them with every pair apart by ``r_i + r_j`` of
    :data:`RADII`).
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=float(rng.uniform(3.6, 4.1)), cubic=True).repeat(repeat)
        atoms.numbers = rng.choice([29, 47], size=len(atoms))
        atoms.positions += rng.normal(0.0, float(rng.uniform(0.0, max_sigma)), size=(len(atoms), 3))
        out.append(atoms)
    return out


def save_structures(path: str | Path, structures: Sequence[Atoms]) -> None:
    """Write numbers, positions (Å), cells (Å) and pbc of ``structures`` to an ``.npz`` file."""
    counts = np.array([len(a) for a in structures], dtype=np.int64)
    np.savez(
        path,
        offsets=np.concatenate([[0], np.cumsum(counts)]),
        numbers=np.concatenate([a.numbers for a in structures]).astype(np.int64),
        positions=np.concatenate([a.positions for a in structures]).reshape(-1, 3),
        cells=np.array([a.cell.array for a in structures]).reshape(-1, 3, 3),
        pbc=np.array([a.pbc for a in structures], dtype=bool).reshape(-1, 3),
    )


def load_structures(path: str | Path) -> list[Atoms]:
    """The structures written by :func:`save_structures` (no info, no calculator)."""
    with np.load(path) as data:
        offsets = data["offsets"]
        numbers, positions = data["numbers"], data["positions"]
        cells, pbc = data["cells"], data["pbc"]
    return [
        Atoms(
            numbers=numbers[offsets[i] : offsets[i + 1]],
            positions=positions[offsets[i] : offsets[i + 1]],
            cell=cells[i],
            pbc=pbc[i],
        )
        for i in range(len(cells))
    ]


def _cpu_seconds() -> float:
    """User + system CPU time (s) of this process and of its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(function: Callable[..., R], *args: Any, **kwargs: Any) -> tuple[R, float, float]:
    """``function(*args, **kwargs)``, its wall time (s) and its CPU time (s; this process plus
    the child processes it started and reaped, e.g. a worker pool)."""
    cpu, wall = _cpu_seconds(), time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - wall, _cpu_seconds() - cpu
