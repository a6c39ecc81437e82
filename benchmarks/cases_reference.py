"""The reference's side of each benchmark (the published ``assyst`` package), run inside
``worker.py reference``: the same work as :mod:`cases_ours` through the reference's own API.

Same formulas, space groups, radii, perturbations, filters and relaxation settings; the
reference has no storage layer, no workers and no node layer, so only sampling, the distance
filter, perturbation and relaxation have a reference side.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ase import Atoms
from ase.calculators.emt import EMT
from assyst.crystals import Formulas, sample
from assyst.filters import AspectFilter, DistanceFilter
from assyst.perturbations import RandomChoice, Rattle, Stretch, perturb
from assyst.relaxations import FullRelax, relax
from workloads import (
    ASPECT,
    CHOICE,
    RADII,
    RATTLE_SIGMA,
    SMALL_STRETCH,
    compositions,
    fcc_supercells,
    load_structures,
    spacegroup_grid,
    timed,
)

__all__ = ["CASES"]


def info() -> dict[str, Any]:
    """Versions of the reference and of the libraries it uses, and its neighbour list."""
    from importlib.metadata import PackageNotFoundError, version

    from assyst.neighbors import neighbor_list

    out: dict[str, Any] = {}
    for name in ("assyst", "ase", "numpy", "scipy", "pyxtal", "spglib", "matscipy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    out["neighbour_list"] = f"{neighbor_list.__module__}.{neighbor_list.__name__}"
    return out


@cache
def _crystals(path: str) -> list[Atoms]:
    return load_structures(path)


def sampling(max_atoms: int, group_step: int, seed: int, workers: int = 1) -> dict[str, Any]:
    """Walk the whole grid compositions(max_atoms) x spacegroup_grid(group_step)."""
    if workers != 1:
        raise ValueError("the reference samples in one process only (workers=1)")
    formulas = Formulas(tuple(compositions(max_atoms)))
    groups = spacegroup_grid(group_step)
    crystals, wall, cpu = timed(
        lambda: list(sample(formulas, groups, max_atoms=max_atoms, tolerance=dict(RADII), rng=seed))
    )
    return {
        "wall": wall,
        "cpu": cpu,
        "count": len(crystals),
        "grid_points": len(formulas) * len(groups),
    }


@cache
def _cells(n: int, repeat: int, max_sigma: float, seed: int) -> list[Atoms]:
    return fcc_supercells(n, seed, repeat=repeat, max_sigma=max_sigma)


def distance(n: int, repeat: int, max_sigma: float, seed: int) -> dict[str, Any]:
    """DistanceFilter verdicts on ``n`` rattled fcc cells of ``4 * repeat**3`` atoms."""
    cells = _cells(n, repeat, max_sigma, seed)
    keep = DistanceFilter(dict(RADII))
    keep(cells[0])
    verdicts, wall, cpu = timed(lambda: [bool(keep(atoms)) for atoms in cells])
    return {
        "wall": wall,
        "cpu": cpu,
        "count": len(cells),
        "kept": sum(verdicts),
        "verdicts": "".join("1" if v else "0" for v in verdicts),
    }


def _perturbations(seed: int) -> list[Any]:
    (hydro_a, shear_a), (hydro_b, shear_b), chance = CHOICE
    return [
        Rattle(RATTLE_SIGMA, create_supercells=True, rng=seed)
        + Stretch(*SMALL_STRETCH, rng=seed + 1),
        RandomChoice(
            Stretch(hydro_a, shear_a, rng=seed + 2),
            Stretch(hydro_b, shear_b, rng=seed + 3),
            chance,
            rng=seed + 4,
        ),
    ]


def perturbing(crystals: str, copies: int, seed: int, retries: int = 10) -> dict[str, Any]:
    """Each crystal x (the two perturbations, ``copies`` times), redrawn until the filters keep
    it (``retries`` attempts)."""
    parents = _crystals(crystals)
    perturbations = _perturbations(seed) * copies
    filters = [DistanceFilter(dict(RADII)) & AspectFilter(ASPECT)]
    out, wall, cpu = timed(
        lambda: list(perturb(parents, perturbations, filters=filters, retries=retries))
    )
    return {
        "wall": wall,
        "cpu": cpu,
        "count": len(out),
        "pairs": len(parents) * len(perturbations),
    }


def relaxing(
    crystals: str, n: int, variant: str = "core", workers: int = 1, folder: str | None = None
) -> dict[str, Any]:
    """FullRelax (EMT, the reference's defaults: LBFGS, fmax 1e-3 eV/Å, 100 steps) of the first
    ``n`` crystals through the reference's ``relax``."""
    if variant != "core" or workers != 1:
        raise ValueError("the reference relaxes through its relax() in one process only")
    structures = _crystals(crystals)[:n]
    settings = FullRelax(calculator=EMT())
    relaxed, wall, cpu = timed(lambda: list(relax(structures, settings)))
    return {
        "wall": wall,
        "cpu": cpu,
        "count": len(relaxed),
        "energies": [float(a.get_potential_energy()) for a in relaxed],
        "converged": sum(bool(a.info["relax_converged"]) for a in relaxed),
    }


CASES = {
    "info": info,
    "sampling": sampling,
    "distance": distance,
    "perturbing": perturbing,
    "relaxing": relaxing,
}
"""The cases ``worker.py reference`` runs, by name."""
