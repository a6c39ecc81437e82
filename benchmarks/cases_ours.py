"""Our side of each benchmark: one function per case, run inside ``worker.py ours``.

Every case times only the work being compared (inputs are built or loaded before the clock
starts) and returns plain JSON data: ``wall`` and ``cpu`` seconds, a ``count`` of structures made
or checked, and whatever the comparison with the reference needs (verdicts, energies).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import uuid
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.filters import FrechetCellFilter
from threadpoolctl import threadpool_limits
from workloads import (
    ASPECT,
    CHOICE,
    RADII,
    RATTLE_SIGMA,
    SMALL_STRETCH,
    compositions,
    fcc_supercells,
    load_structures,
    save_structures,
    spacegroup_grid,
    timed,
)

from assyst_nodes.calculators import EMT
from assyst_nodes.reports import StageReport
from assyst_nodes.stages.filter import AspectFilter, DistanceFilter
from assyst_nodes.stages.filter import filter as apply_filters
from assyst_nodes.stages.perturb import RandomChoice, Rattle, Stretch, perturb
from assyst_nodes.stages.relax import ALGORITHMS, FullRelax, relax
from assyst_nodes.stages.sample import Formulas, sample

__all__ = ["CASES"]


def info() -> dict[str, Any]:
    """Versions of our package and of the libraries the benchmarks exercise."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in (
        "assyst_nodes",
        "ase",
        "numpy",
        "scipy",
        "pyxtal",
        "spglib",
        "matscipy",
        "h5py",
        "pyiron_workflow",
        "pyiron_base",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _filters() -> DistanceFilter | Any:
    return DistanceFilter(RADII) & AspectFilter(ASPECT, measure="heights")


def _perturbations() -> list[Any]:
    (hydro_a, shear_a), (hydro_b, shear_b), chance = CHOICE
    return [
        Rattle(RATTLE_SIGMA, create_supercells=True) + Stretch(*SMALL_STRETCH),
        RandomChoice(Stretch(hydro_a, shear_a), Stretch(hydro_b, shear_b), chance),
    ]


@cache
def _crystals(path: str) -> list[Atoms]:
    return load_structures(path)


def make_crystals(path: str, n: int, seed: int) -> dict[str, Any]:
    """Sample ``n`` Cu-Ag crystals (1-4 atoms, all space groups, seeded random grid order) with
    our sampler and save them to ``path`` (the relaxation and perturbation inputs)."""
    formulas = Formulas(compositions(4))
    crystals, wall, cpu = timed(
        lambda: list(
            sample(
                formulas,
                None,
                max_atoms=4,
                max_structures=n,
                tolerance=RADII,
                shuffle=True,
                rng=seed,
            )
        )
    )
    save_structures(path, crystals)
    return {"wall": wall, "cpu": cpu, "count": len(crystals)}


def sampling(max_atoms: int, group_step: int, seed: int, workers: int = 1) -> dict[str, Any]:
    """Walk the whole grid compositions(max_atoms) x spacegroup_grid(group_step)."""
    formulas = Formulas(compositions(max_atoms))
    groups = spacegroup_grid(group_step)
    report = StageReport()
    crystals, wall, cpu = timed(
        lambda: list(
            sample(
                formulas,
                groups,
                max_atoms=max_atoms,
                tolerance=RADII,
                rng=seed,
                report=report,
                workers=workers,
            )
        )
    )
    return {
        "wall": wall,
        "cpu": cpu,
        "count": len(crystals),
        "grid_points": len(formulas) * len(groups),
        "dropped": dict(report.dropped),
    }


@cache
def _cells(n: int, repeat: int, max_sigma: float, seed: int) -> list[Atoms]:
    return fcc_supercells(n, seed, repeat=repeat, max_sigma=max_sigma)


def distance(n: int, repeat: int, max_sigma: float, seed: int) -> dict[str, Any]:
    """DistanceFilter verdicts on ``n`` rattled fcc cells of ``4 * repeat**3`` atoms."""
    cells = _cells(n, repeat, max_sigma, seed)
    keep = DistanceFilter(RADII)
    keep(cells[0])  # first call outside the clock (lazy imports)
    verdicts, wall, cpu = timed(lambda: [keep(atoms) for atoms in cells])
    return {
        "wall": wall,
        "cpu": cpu,
        "count": len(cells),
        "kept": sum(verdicts),
        "verdicts": "".join("1" if v else "0" for v in verdicts),
    }


def perturbing(crystals: str, copies: int, seed: int, retries: int = 10) -> dict[str, Any]:
    """Each crystal x (the two perturbations, ``copies`` times), redrawn until the filters keep
    it (``retries`` attempts)."""
    parents = _crystals(crystals)
    perturbations = _perturbations() * copies
    filters = _filters()
    report = StageReport()
    out, wall, cpu = timed(
        lambda: perturb(
            parents, perturbations, filters=filters, retries=retries, rng=seed, report=report
        )
    )
    return {
        "wall": wall,
        "cpu": cpu,
        "count": len(out),
        "pairs": report.n_in,
        "dropped": dict(report.dropped),
        "retried": int(report.flags.get("retried", 0)),
    }


def _bare_relax(
    structures: list[Atoms], settings: FullRelax, blas_threads: int | None
) -> list[dict[str, Any]]:
    """The same minimisation as ``FullRelax``, as a plain ASE loop: one EMT, LBFGS (or the
    configured optimiser) on a FrechetCellFilter at the same pressure, fmax and step limit.

    ``blas_threads``: BLAS/OpenMP threads while it runs (our stages use 1; ``None`` leaves the
    library default, i.e. one thread per core)."""
    from ase.calculators.emt import EMT as AseEMT

    with threadpool_limits(blas_threads):
        return _bare_loop(structures, settings, AseEMT())


def _bare_loop(structures: list[Atoms], settings: FullRelax, calculator: Any) -> list[dict]:
    optimiser = ALGORITHMS[settings.algorithm]
    out = []
    for structure in structures:
        start = time.perf_counter()
        atoms = structure.copy()
        atoms.calc = calculator
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "logm result may be inaccurate", RuntimeWarning)
            movable = FrechetCellFilter(atoms, scalar_pressure=settings.scalar_pressure)
            converged = optimiser(movable, logfile=None).run(
                fmax=settings.force_tolerance, steps=settings.max_steps
            )
        out.append(
            {
                "energy": float(atoms.get_potential_energy()),
                "converged": bool(converged),
                "seconds": time.perf_counter() - start,
            }
        )
    return out


def _summary(relaxed: list[Atoms]) -> list[dict[str, Any]]:
    return [
        {"energy": float(a.get_potential_energy()), "converged": bool(a.info["relax_converged"])}
        for a in relaxed
    ]


def relaxing(
    crystals: str, n: int, variant: str, workers: int = 1, folder: str | None = None
) -> dict[str, Any]:
    """FullRelax (EMT) of the first ``n`` crystals: ``variant`` is ``bare`` (plain ASE loop),
    ``bare_default_blas`` (the same with the BLAS library's default thread count),
    ``core`` (:func:`assyst_nodes.stages.relax.relax`) or ``node_project`` (the relax node run
    by pyiron_workflow with a ProjectRecorder into the new project ``folder``)."""
    structures = _crystals(crystals)[:n]
    settings = FullRelax(calculator=EMT())
    if variant in ("bare", "bare_default_blas"):
        threads = 1 if variant == "bare" else None
        results, wall, cpu = timed(_bare_relax, structures, settings, threads)
    elif variant == "core":
        relaxed, wall, cpu = timed(lambda: relax(structures, settings, workers=workers))
        results = _summary(relaxed)
    elif variant == "node_project":
        if folder is None:
            raise ValueError("variant 'node_project' needs a project folder")
        import pyiron_workflow as pwf

        from assyst_nodes import nodes
        from assyst_nodes.project import ProjectRecorder

        run, wall, cpu = timed(
            lambda: pwf.run(
                nodes.relax,
                structures=structures,
                settings=settings,
                workers=workers,
                recorder=ProjectRecorder(folder, "benchmark"),
            )
        )
        results = _summary(run.outputs.structures)
    else:
        raise ValueError(
            f"unknown relax variant {variant!r}; valid: bare, bare_default_blas, core, node_project"
        )
    return {
        "wall": wall,
        "cpu": cpu,
        "count": len(results),
        "energies": [r["energy"] for r in results],
        "converged": sum(r["converged"] for r in results),
        "seconds_each": [r["seconds"] for r in results if "seconds" in r],
    }


def warm_nodes() -> dict[str, Any]:
    """Import the node and project layers (pyiron_workflow, pyiron_base) outside any clock."""
    from importlib import import_module

    def load() -> None:
        import_module("assyst_nodes.nodes")
        import_module("assyst_nodes.project.recorder")

    _, wall, cpu = timed(load)
    return {"wall": wall, "cpu": cpu, "count": 0}


@cache
def _stored_structures(n: int, n_atoms: int, seed: int) -> tuple[Atoms, ...]:
    """``n`` labelled structures of ``n_atoms`` atoms with the metadata of a perturbed structure
    (uuid, seed, lineage of two, step, perturbation, rng_seed) and energy, forces, stress."""
    rng = np.random.default_rng(seed)
    # random 128-bit ids like the uuid5s of a run (not small ints: their leading zeros would
    # flatter any compression of the uuid columns)
    ids = [str(uuid.UUID(bytes=rng.bytes(16), version=5)) for _ in range(3 * n)]
    step = f"rattle({RATTLE_SIGMA})+stretch(hydro={SMALL_STRETCH[0]}, shear={SMALL_STRETCH[1]})"
    numbers = rng.choice([29, 47], size=(n, n_atoms))
    positions = rng.random((n, n_atoms, 3)) * 5.0
    forces = rng.normal(size=(n, n_atoms, 3))
    energies = rng.normal(-3.0, 0.1, size=n) * n_atoms
    stresses = rng.normal(0.0, 0.01, size=(n, 6))
    cell = np.eye(3) * 5.0
    out = []
    for i in range(n):
        atoms = Atoms(numbers=numbers[i], positions=positions[i], cell=cell, pbc=True)
        atoms.info.update(
            {
                "uuid": ids[3 * i],
                "seed": ids[3 * i + 1],
                "lineage": [ids[3 * i + 1], ids[3 * i + 2]],
                "step": step,
                "perturbation": step,
                "rng_seed": int(rng.integers(2**62)),
            }
        )
        atoms.calc = SinglePointCalculator(
            atoms, energy=float(energies[i]), forces=forces[i], stress=stresses[i]
        )
        out.append(atoms)
    return tuple(out)


def _raw_bytes(structures: tuple[Atoms, ...]) -> tuple[int, int]:
    """Bytes of the arrays as ASE holds them (numbers int64, positions, cell, pbc, energy,
    forces, stress) and, second, those plus the info values (UTF-8 strings, 8-byte ints)."""
    arrays = info = 0
    for atoms in structures:
        results = atoms.calc.results
        arrays += (
            atoms.numbers.nbytes
            + atoms.positions.nbytes
            + atoms.cell.array.nbytes
            + atoms.pbc.nbytes
            + 8
            + results["forces"].nbytes
            + results["stress"].nbytes
        )
        for value in atoms.info.values():
            items = value if isinstance(value, list) else [value]
            info += sum(len(v.encode()) if isinstance(v, str) else 8 for v in items)
    return arrays, arrays + info


def _folder_bytes(folder: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(folder)
        for name in names
    )


def _fingerprint(structures: list[Atoms]) -> list[list[Any]]:
    """uuid, position sum (Å) and energy (eV) of each structure, to compare a round trip."""
    return [
        [a.info["uuid"], float(a.positions.sum()), float(a.get_potential_energy())]
        for a in structures
    ]


_READ_BACK = """
import json, sys, time
sys.path.insert(0, sys.argv[3])
from workloads import timed
from assyst_nodes.project import structures
from cases_ours import _fingerprint
back, wall, cpu = timed(structures, sys.argv[1])
every = int(sys.argv[2])
print(json.dumps({"wall": wall, "cpu": cpu, "count": len(back),
                  "fingerprint": _fingerprint(back[::every])}))
"""


def _read_back(folder: str, every: int) -> dict[str, Any]:
    """Read every structure of the project ``folder`` in a fresh process (the public query
    :func:`assyst_nodes.project.structures`, timed inside it; imports not timed)."""
    here = str(Path(__file__).resolve().parent)
    done = subprocess.run(
        [sys.executable, "-c", _READ_BACK, folder, str(every), here],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"reading {folder} back failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def storage(n: int, n_atoms: int, seed: int, folder: str) -> dict[str, Any]:
    """Record ``n`` labelled structures as one stage job into the new project ``folder`` (a
    ProjectRecorder: job row, columnar HDF5 store, uuid index), then read them back in a fresh
    process with the public query :func:`assyst_nodes.project.structures`."""
    from assyst_nodes.project import ProjectRecorder

    batch = list(_stored_structures(n, n_atoms, seed))
    report = StageReport("perturb", n_in=n, n_out=n)
    recorder = ProjectRecorder(folder, "benchmark")
    _, write_wall, write_cpu = timed(
        lambda: recorder.record(
            "perturb", {"benchmark": f"{n}x{n_atoms}"}, [], lambda: (batch, report)
        )
    )
    every = max(1, n // 1000)
    back = _read_back(folder, every)
    raw, raw_with_info = _raw_bytes(tuple(batch))
    expected = _fingerprint(batch[::every])
    same = back["count"] == len(batch) and back["fingerprint"] == expected
    h5 = sum(p.stat().st_size for p in Path(folder).rglob("*.h5"))
    return {
        "wall": write_wall,
        "cpu": write_cpu,
        "read_wall": back["wall"],
        "read_cpu": back["cpu"],
        "count": back["count"],
        "round_trip_equal": bool(same),
        "disk_bytes": _folder_bytes(folder),
        "h5_bytes": h5,
        "raw_bytes": raw,
        "raw_bytes_with_info": raw_with_info,
    }


def scale(crystals: str, size: int, seed: int, folder: str) -> dict[str, Any]:
    """Perturb (with filters and retries) about ``size`` (crystal, perturbation) pairs, filter
    the results and record both stages into the new project ``folder``; time each phase."""
    from assyst_nodes.project import ProjectRecorder

    parents = _crystals(crystals)
    base = _perturbations()
    copies = math.ceil(size / len(parents))
    perturbations = [base[i % len(base)] for i in range(copies)]
    filters = _filters()
    recorder = ProjectRecorder(folder, "scale")
    phases: dict[str, float] = {}

    def compute_perturb() -> tuple[list[Atoms], StageReport]:
        report = StageReport("perturb")
        out, phases["perturb"], _ = timed(
            lambda: perturb(parents, perturbations, filters=filters, rng=seed, report=report)
        )
        return out, report

    def compute_filter(structures: list[Atoms]) -> tuple[list[Atoms], StageReport]:
        report = StageReport()
        out, phases["filter"], _ = timed(lambda: apply_filters(structures, filters, report=report))
        return out, report

    def run() -> list[Atoms]:
        settings = {"perturbations": perturbations, "filters": filters, "seed": seed}
        perturbed, _ = recorder.record("perturb", settings, [parents], compute_perturb)
        kept, _ = recorder.record(
            "filter", {"filters": filters}, [perturbed], lambda: compute_filter(perturbed)
        )
        return kept

    kept, wall, cpu = timed(run)
    return {
        "wall": wall,
        "cpu": cpu,
        "count": len(kept),
        "pairs": len(parents) * len(perturbations),
        "perturb_wall": phases["perturb"],
        "filter_wall": phases["filter"],
        "store_wall": wall - phases["perturb"] - phases["filter"],
        "disk_bytes": _folder_bytes(folder),
    }


CASES = {
    "info": info,
    "make_crystals": make_crystals,
    "sampling": sampling,
    "distance": distance,
    "perturbing": perturbing,
    "relaxing": relaxing,
    "warm_nodes": warm_nodes,
    "storage": storage,
    "scale": scale,
}
"""The cases ``worker.py ours`` runs, by name."""
