"""The labelled pools of issue 25's learning curves: ASSYST against hand-made and random sets.

    python -m benchmarks.set_value_sets build --seeds 0 1 2 3 4 --labels 1000 \\
        --cache /tmp/set_value_pools [--kinds assyst ...] [--json OUT]

For each set kind (:data:`KINDS`) and seed one *pool* of at least ``labels`` labelled
structures (plus the isolated atoms) is built once and cached (:func:`pool`); the learning
curves then take nested subsets of it (:func:`subset`), so a fit never needs a new label.

Kinds (every one labelled with the same calculator, ``EMT()`` by default, through the label
stage :func:`assyst_nodes.stages.label.label`: equivalent structures labelled once, the
isolated atoms of Cu and Ag added with ``config_type == "IsolatedAtom"``):

``assyst``
    :func:`assyst_pool`: ``run_pipeline`` with today's defaults (Cu-Ag, 1-4 atoms, all 230
    space groups, volume relax -> full relax -> perturb -> filter -> label), ``rng=seed`` and
    ``max_structures`` (sampled crystals) sized from :data:`LABELS_PER_CRYSTAL`.
``assyst_reference_optimizer``
    The same, but both relaxations use the reference implementation's optimiser:
    ``VolumeRelax(**REFERENCE_OPTIMIZER)`` and ``FullRelax(**REFERENCE_OPTIMIZER)`` (ASE LBFGS,
    alpha 70 eV/Å², maxstep 0.2 Å; ``assyst`` 1.0.0 relaxes both stages so, see
    ``docs/stages/relax.md`` and ``benchmarks/relax_force_calls.py``).
``random_cells``
    :func:`random_cell_pool`: the same compositions (Cu-Ag, 1-4 atoms per cell) sampled in
    space group 1 only (P1: pyxtal's random cells without symmetry, ``info["requested
    spacegroup"] == 1``) through the same relax, perturb, filter and label stages. The grid
    of P1 has one point per composition (14), so several pipeline runs are pooled, run ``k``
    of seed ``s`` with ``rng = 1000 * s + k`` (without labels), and the union is labelled once
    (so duplicates across runs are labelled once too). Unlike ASSYST, every composition is
    equally frequent (ASSYST's grid gives compositions with more compatible groups more
    crystals).
``hand_made``
    :func:`hand_made_pool`: what users build without ASSYST (see its docstring for the
    proportions).

Settings behind a cache file are in :func:`settings_string`; the file name holds the kind,
the seed, the labels and a digest of that string (which includes the package version), so a
change of the defaults builds anew. Building is deterministic: the same seed gives the same
structures and labels bit for bit.
"""

from __future__ import annotations

import argparse
import collections
import functools
import hashlib
import json
import math
import os
import pickle
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
from ase import Atoms
from ase.build import bulk

from assyst_nodes.calculators import EMT, CalculatorConfig
from assyst_nodes.stages.isolated import CONFIG_TYPE, ISOLATED_ATOM

HERE: Final = Path(__file__).resolve().parent

KINDS: Final[tuple[str, ...]] = (
    "assyst",
    "assyst_reference_optimizer",
    "hand_made",
    "random_cells",
)
"""The set kinds, as :func:`pool` and the CLI name them."""

LABELS_PER_CRYSTAL: Final = 6.5
"""Labelled structures per sampled crystal, measured on the canonical run (EMT, seed 0,
20 crystals: 131 labels; 7 structures per crystal minus duplicates); sizes ``max_structures``
of the ASSYST pools (with :data:`MARGIN`)."""

MARGIN: Final = 1.08
"""Factor on the crystals (runs) first asked for, so one pipeline run usually suffices."""

RANDOM_RUN_STRIDE: Final = 1000
"""Run ``k`` of the random-cell pool of seed ``s`` uses ``rng = RANDOM_RUN_STRIDE * s + k``."""

SETTINGS_VERSION: Final = 1
"""Raise to invalidate every cached pool after a change of this module's recipe."""

# --- hand-made recipe -------------------------------------------------------------------

LATTICE: Final[dict[str, float]] = {"Cu": 3.61, "Ag": 4.09}
"""fcc lattice constants (Å) the ideal cells start from (ASE's reference states); each phase
is then fully relaxed with the label calculator before it is perturbed."""

HAND_MADE_CELLS: Final[tuple[tuple[str, str, int, int], ...]] = (
    # phase, cell, atoms, share of the structures in 40ths (2 = 5 %, 3 = 7.5 %, 4 = 10 %)
    ("fcc Cu", "primitive", 1, 2),
    ("fcc Cu", "conventional", 4, 4),
    ("fcc Cu", "primitive 2x2x2", 8, 3),
    ("fcc Cu", "conventional 2x2x2", 32, 3),
    ("fcc Ag", "primitive", 1, 2),
    ("fcc Ag", "conventional", 4, 4),
    ("fcc Ag", "primitive 2x2x2", 8, 3),
    ("fcc Ag", "conventional 2x2x2", 32, 3),
    ("L1_2 Cu3Ag", "conventional", 4, 2),
    ("L1_2 Cu3Ag", "conventional 2x2x2", 32, 2),
    ("L1_2 CuAg3", "conventional", 4, 2),
    ("L1_2 CuAg3", "conventional 2x2x2", 32, 2),
    ("L1_0 CuAg", "conventional", 4, 2),
    ("L1_0 CuAg", "conventional 2x2x2", 32, 2),
    ("B2 CuAg", "primitive", 2, 2),
    ("B2 CuAg", "primitive 2x2x2", 16, 2),
)
"""The hand-made set's cells and the share (in 40ths, :data:`SHARES`) of its structures each
gets."""

SHARES: Final = 40
"""The denominator of the shares in :data:`HAND_MADE_CELLS` (they sum to it)."""

HAND_MADE_KINDS: Final[tuple[str, ...]] = ("rattled",) * 4 + ("hydrostatic",) * 3 + (
    "sheared",
) * 3
"""Structure ``j`` of a cell gets ``HAND_MADE_KINDS[j % 10]``: 40 % rattled, 30 %
hydrostatic, 30 % sheared (one-atom cells: a rattle is a translation, so their rattled turns
become hydrostatic)."""

RATTLE_RANGE: Final = (0.01, 0.1)
"""σ (Å) of the Gaussian rattle of every hand-made structure, drawn uniformly."""

HYDROSTATIC: Final = 0.05
"""Largest linear hydrostatic strain (the cell times 1 + ε, ε uniform in ±0.05; volume about
-14 % to +16 %), as ``Stretch(hydro=...)`` counts strain."""

SHEAR: Final = 0.03
"""Largest shear component ε_ij = ε_ji (i < j), uniform in ±0.03, of the sheared ones."""


def settings_string(kind: str) -> str:
    """Everything a pool of ``kind`` depends on besides the seed and the labels, as one string.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.

    Returns
    -------
    str
        The kind, the recipe version, the package version, the label calculator, duplicates
        and isolated atoms; for the pipeline kinds the defaults of the canonical run (relax,
        perturbations, filter) and their sizing (the reference optimiser, the random runs'
        stride where they use them); for ``hand_made`` its recipe.
    """
    import importlib.metadata

    from assyst_nodes import defaults
    from assyst_nodes.stages.relax import REFERENCE_OPTIMIZER

    try:
        version = importlib.metadata.version("assyst_nodes")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - not installed
        import assyst_nodes

        version = assyst_nodes.__version__
    parts = [
        f"kind {kind}",
        f"recipe {SETTINGS_VERSION}",
        f"assyst_nodes {version}",
        f"calculator {EMT()!r}",
        f"duplicates {defaults.DUPLICATES!r} isolated {defaults.ISOLATED_ATOMS!r}",
    ]
    if kind == "hand_made":
        parts.append(
            f"hand made {LATTICE} {HAND_MADE_CELLS} {SHARES} {HAND_MADE_KINDS} {RATTLE_RANGE} "
            f"{HYDROSTATIC} {SHEAR}"
        )
    else:
        parts += [
            f"elements {defaults.ELEMENTS} atoms {defaults.MIN_ATOMS}-{defaults.MAX_ATOMS}",
            f"volume {defaults.VOLUME_RELAX!r} full {defaults.FULL_RELAX!r}",
            f"perturbations {defaults.PERTURBATIONS!r}",
            f"filter {defaults.FILTER!r} retries {defaults.RETRIES}",
            f"labels/crystal {LABELS_PER_CRYSTAL} margin {MARGIN}",
        ]
    if kind == "assyst_reference_optimizer":
        parts.append(f"reference {sorted(REFERENCE_OPTIMIZER.items())}")
    if kind == "random_cells":
        parts.append(f"random stride {RANDOM_RUN_STRIDE}")
    return "\n".join(parts)


def settings_digest(kind: str) -> str:
    """The first 12 hex digits of the SHA-256 of :func:`settings_string` of ``kind``."""
    return hashlib.sha256(settings_string(kind).encode()).hexdigest()[:12]


# --- helpers ----------------------------------------------------------------------------


def is_isolated(atoms: Atoms) -> bool:
    """Whether ``atoms`` is an isolated atom of the label stage."""
    return atoms.info.get(CONFIG_TYPE) == ISOLATED_ATOM


def count_labels(structures: Sequence[Atoms]) -> int:
    """Labelled structures that are not isolated atoms."""
    return sum(not is_isolated(a) for a in structures)


def _check(seed: int, labels: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if isinstance(labels, bool) or not isinstance(labels, int) or labels < 1:
        raise ValueError(f"labels must be an int >= 1, got {labels!r}")


# --- ASSYST and random cells ------------------------------------------------------------


def assyst_pool(
    seed: int,
    labels: int,
    reference_optimizer: bool = False,
    calculator: CalculatorConfig = EMT(),
) -> list[Atoms]:
    """An ASSYST pool: ``run_pipeline`` with today's defaults, labelled with ``calculator``.

    ``max_structures`` (sampled crystals) starts at ``ceil(labels / LABELS_PER_CRYSTAL *
    MARGIN) + 1``; while the run gives fewer than ``labels`` labels, it is raised (by the
    shortfall over :data:`LABELS_PER_CRYSTAL`, times 1.5, plus 1) and the run repeated. The
    grid is walked in seeded random order, so a larger cap keeps the smaller cap's crystals.

    Parameters
    ----------
    seed : int
        ``rng`` of the run (an int >= 0).
    labels : int
        Labelled structures at least, isolated atoms not counted.
    reference_optimizer : bool, default False
        Both relaxations with ``**REFERENCE_OPTIMIZER`` (ASE LBFGS, alpha 70), as the
        reference implementation relaxes.
    calculator : CalculatorConfig, default EMT()
        The label calculator (the relaxations use the defaults' EMT).

    Returns
    -------
    list of ase.Atoms
        The labelled structures, then the isolated atoms (``run.stages["labelled"]``).
    """
    from assyst_nodes import defaults
    from assyst_nodes.pipeline import run_pipeline
    from assyst_nodes.stages.relax import REFERENCE_OPTIMIZER, FullRelax, VolumeRelax

    _check(seed, labels)
    relaxations: dict[str, Any] = {}
    if reference_optimizer:
        relaxations = {
            "volume_relax": VolumeRelax(**REFERENCE_OPTIMIZER),
            "full_relax": FullRelax(**REFERENCE_OPTIMIZER),
        }
    crystals = math.ceil(labels / LABELS_PER_CRYSTAL * MARGIN) + 1
    while True:
        run = run_pipeline(
            max_structures=crystals,
            rng=seed,
            workers=defaults.WORKERS,
            progress=False,
            label_calculator=calculator,
            **relaxations,
        )
        labelled = list(run.stages["labelled"])
        got = count_labels(labelled)
        if got >= labels or len(run.stages["sampled"]) < crystals:  # enough, or grid spent
            if got < labels:
                raise RuntimeError(f"the whole grid gave {got} labels, fewer than {labels}")
            return labelled
        crystals += math.ceil((labels - got) / LABELS_PER_CRYSTAL * 1.5) + 1


def random_cell_pool(seed: int, labels: int, calculator: CalculatorConfig = EMT()) -> list[Atoms]:
    """A pool of random cells without symmetry (P1), through the canonical stages.

    Each run is ``run_pipeline(spacegroups=[1], max_structures=None, rng=1000 * seed + k)``
    without labels (every Cu-Ag composition of 1-4 atoms once, pyxtal in space group 1, then
    the default relaxations, perturbations and filter); runs are added until their training
    sets hold ``labels * MARGIN`` structures, and the union is labelled once with
    :func:`~assyst_nodes.stages.label.label` (default duplicates and isolated atoms, as the
    pipeline's label stage). If de-duplication leaves fewer than ``labels``, one more run is
    added and the union labelled again.

    Parameters
    ----------
    seed : int
        Pool seed (an int >= 0).
    labels : int
        Labelled structures at least, isolated atoms not counted.
    calculator : CalculatorConfig, default EMT()
        The label calculator.

    Returns
    -------
    list of ase.Atoms
        The labelled structures (runs in order), then the isolated atoms.
    """
    from assyst_nodes import defaults
    from assyst_nodes.pipeline import run_pipeline
    from assyst_nodes.stages.label import label

    _check(seed, labels)
    structures: list[Atoms] = []
    runs = 0

    def add_run() -> None:
        nonlocal runs
        if runs >= RANDOM_RUN_STRIDE:
            raise RuntimeError(f"{runs} runs gave too few random cells for {labels} labels")
        run = run_pipeline(
            spacegroups=[1],
            max_structures=None,
            rng=RANDOM_RUN_STRIDE * seed + runs,
            workers=defaults.WORKERS,
            progress=False,
        )
        structures.extend(run.structures)
        runs += 1

    while len(structures) < labels * MARGIN:
        add_run()
    while True:
        labelled = label(
            structures,
            calculator,
            duplicates=defaults.DUPLICATES,
            isolated=defaults.ISOLATED_ATOMS,
        )
        if count_labels(labelled) >= labels:
            return labelled
        add_run()


# --- hand-made --------------------------------------------------------------------------


def _ideal(phase: str) -> Atoms:
    """The ideal conventional (or, for fcc and B2, primitive) cell of ``phase``."""
    cu, ag = LATTICE["Cu"], LATTICE["Ag"]
    if phase == "fcc Cu":
        return bulk("Cu", "fcc", a=cu)
    if phase == "fcc Ag":
        return bulk("Ag", "fcc", a=ag)
    fcc_sites = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    if phase == "L1_2 Cu3Ag":
        a = 0.75 * cu + 0.25 * ag  # Vegard
        return Atoms("AgCu3", scaled_positions=fcc_sites, cell=[a] * 3, pbc=True)
    if phase == "L1_2 CuAg3":
        a = 0.25 * cu + 0.75 * ag
        return Atoms("CuAg3", scaled_positions=fcc_sites, cell=[a] * 3, pbc=True)
    if phase == "L1_0 CuAg":
        a = 0.5 * (cu + ag)  # Cu layers at z = 0, Ag at z = 1/2
        return Atoms("Cu2Ag2", scaled_positions=fcc_sites, cell=[a] * 3, pbc=True)
    if phase == "B2 CuAg":
        volume = 0.5 * (cu**3 + ag**3) / 4  # per atom, Vegard on volumes
        a = (2 * volume) ** (1 / 3)
        return Atoms("CuAg", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=[a] * 3, pbc=True)
    raise ValueError(f"unknown phase {phase!r}")


@functools.lru_cache(maxsize=4)
def _relaxed_phases(calculator: CalculatorConfig) -> dict[str, Atoms]:
    """Each hand-made phase fully relaxed with ``calculator`` (cell and positions), geometry
    only: a user relaxes the known ground states with the reference before perturbing them.
    Cached per calculator config (callers copy the cells, never change them)."""
    from assyst_nodes.stages.relax import FullRelax, relax

    phases = list(dict.fromkeys(phase for phase, *_ in HAND_MADE_CELLS))
    relaxed = relax([_ideal(p) for p in phases], FullRelax(calculator=calculator))
    if len(relaxed) != len(phases):
        raise RuntimeError("a hand-made phase failed to relax")
    return {
        phase: Atoms(a.numbers, positions=a.positions, cell=a.cell.array, pbc=True)
        for phase, a in zip(phases, relaxed, strict=True)
    }


def _cell(base: Atoms, cell: str) -> Atoms:
    """``base`` (primitive fcc/B2 or conventional) in the named cell."""
    if cell.startswith("conventional") and len(base) == 1:  # fcc: the cubic cell
        a = (4 * base.get_volume()) ** (1 / 3)
        base = bulk(base.get_chemical_symbols()[0], "fcc", a=a, cubic=True)
    return base.repeat(2) if cell.endswith("2x2x2") else base.copy()


def _counts(total: int) -> list[int]:
    """Structures per hand-made cell for ``total``: the shares, rounded by largest remainder
    (ties in table order); integer arithmetic, so exact."""
    parts = [share * total for *_, share in HAND_MADE_CELLS]
    counts = [p // SHARES for p in parts]
    order = sorted(range(len(parts)), key=lambda i: (-(parts[i] % SHARES), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def hand_made_structures(seed: int, total: int, phases: dict[str, Atoms]) -> list[Atoms]:
    """The unlabelled hand-made structures (see :func:`hand_made_pool`)."""
    from assyst_nodes.lineage import LINEAGE, SEED, STEP, UUID, derive_uuid

    out = []
    for index, ((phase, cell, n_atoms, _), count) in enumerate(
        zip(HAND_MADE_CELLS, _counts(total), strict=True)
    ):
        base = _cell(phases[phase], cell)
        assert len(base) == n_atoms, (phase, cell, len(base))
        for j in range(count):
            rng = np.random.default_rng([seed, index, j])
            kind = HAND_MADE_KINDS[j % len(HAND_MADE_KINDS)]
            if kind == "rattled" and n_atoms == 1:
                kind = "hydrostatic"
            sigma = float(rng.uniform(*RATTLE_RANGE))
            strain = np.zeros((3, 3))
            if kind != "rattled":
                strain += np.eye(3) * rng.uniform(-HYDROSTATIC, HYDROSTATIC)
            if kind == "sheared":
                for a, b in ((0, 1), (0, 2), (1, 2)):
                    strain[a, b] = strain[b, a] = rng.uniform(-SHEAR, SHEAR)
            atoms = base.copy()
            atoms.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
            atoms.positions += rng.normal(0.0, sigma, size=(n_atoms, 3))
            uuid = derive_uuid("hand made", seed, phase, cell, j)
            atoms.info.update(
                {
                    UUID: uuid,
                    SEED: uuid,  # each structure its own family: a split by structure
                    LINEAGE: [],
                    STEP: "hand_made",
                    CONFIG_TYPE: "hand_made",
                    "phase": phase,
                    "cell": cell,
                    "hand_made": kind,
                    "rattle_sigma": sigma,
                    "strain": strain.round(12).tolist(),
                }
            )
            out.append(atoms)
    return out


def hand_made_pool(seed: int, labels: int, calculator: CalculatorConfig = EMT()) -> list[Atoms]:
    """A hand-made pool: perturbed supercells of the known Cu-Ag ground states and compounds.

    The phases (fcc Cu, fcc Ag; L1_2 Cu3Ag and CuAg3, L1_0 CuAg, B2 CuAg ordered compounds)
    start from ASE's fcc lattice constants (Cu 3.61 Å, Ag 4.09 Å; compounds by Vegard's law)
    and are first fully relaxed with ``calculator``. Proportions of the structures
    (:data:`HAND_MADE_CELLS`):

    ======================  =================================================  ========
    phase                   cells (atoms: share of all structures)             share
    ======================  =================================================  ========
    fcc Cu                  primitive (1: 5 %), conventional (4: 10 %),         30 %
                            primitive 2x2x2 (8: 7.5 %), conventional 2x2x2
                            (32: 7.5 %)
    fcc Ag                  the same                                           30 %
    L1_2 Cu3Ag, CuAg3       conventional (4: 5 %), conventional 2x2x2 (32: 5 %) 10 % each
    L1_0 CuAg               conventional (4: 5 %), conventional 2x2x2 (32: 5 %) 10 %
    B2 CuAg                 primitive (2: 5 %), primitive 2x2x2 (16: 5 %)        10 %
    ======================  =================================================  ========

    Within each cell the structures cycle through 4 rattled, 3 hydrostatic, 3 sheared (40/30/
    30 %; :data:`HAND_MADE_KINDS`): *rattled* moves every atom by Gaussian noise of σ drawn
    from U(0.01, 0.1) Å; *hydrostatic* also scales the cell by 1 + ε, ε from U(-0.05, 0.05)
    (linear strain); *sheared* adds shear components ε_ij = ε_ji from U(-0.03, 0.03). A
    one-atom cell is never only rattled (that is a translation: every copy would be the ideal
    cell, one label after de-duplication). Every structure is rattled, so none is one of the
    validation suite's exact structures (its E-V points of the ideal phases, the vacancy
    cell, MD snapshots). Each structure is its own family (``info["seed"]`` is its uuid), so
    a family split is a split by structure, as users of such sets split them. Structure ``j``
    of cell ``i`` draws from ``numpy.random.default_rng([seed, i, j])``.

    ``info`` of each: ``config_type == "hand_made"``, ``phase``, ``cell``, ``hand_made``
    (rattled / hydrostatic / sheared), ``rattle_sigma`` (Å) and ``strain`` (3x3). They are
    labelled with :func:`~assyst_nodes.stages.label.label` (default duplicates and isolated
    atoms), as the pipeline's label stage does; ``labels`` structures are made, and more
    while de-duplication leaves too few: at its tolerances (0.1 % of the lengths, 0.01
    (V/n)^(1/3) of the sites) a few one-atom cells whose strains differ by less than 0.1 %,
    and two-atom cells rattled by a small σ, count as one (the shares then shift by a
    structure or two).

    Parameters
    ----------
    seed : int
        Pool seed (an int >= 0).
    labels : int
        Labelled structures at least, isolated atoms not counted.
    calculator : CalculatorConfig, default EMT()
        The label calculator, also the one the phases are relaxed with.

    Returns
    -------
    list of ase.Atoms
        The labelled structures (cells in table order), then the isolated atoms.
    """
    from assyst_nodes import defaults
    from assyst_nodes.stages.label import label

    _check(seed, labels)
    phases = _relaxed_phases(calculator)
    total = labels
    while True:
        labelled = label(
            hand_made_structures(seed, total, phases),
            calculator,
            duplicates=defaults.DUPLICATES,
            isolated=defaults.ISOLATED_ATOMS,
        )
        got = count_labels(labelled)
        if got >= labels:
            return labelled
        total += labels - got


# --- subsets and the cache --------------------------------------------------------------


def subset(pool: Sequence[Atoms], size: int, seed: int) -> list[Atoms]:
    """``size`` structures of ``pool`` drawn uniformly at random (whole structures, not
    families), plus all its isolated atoms.

    Nested: the structures are the first ``size`` of one seeded permutation of the pool's
    non-isolated structures (``numpy.random.default_rng(seed).permutation``), so with the
    same pool and seed a smaller subset lies inside every larger one.

    Parameters
    ----------
    pool : sequence of ase.Atoms
        A pool (:func:`pool`).
    size : int
        Structures to draw, isolated atoms not counted (0 to the pool's labels).
    seed : int
        Seed of the permutation.

    Returns
    -------
    list of ase.Atoms
        The chosen structures in pool order, then the isolated atoms (the pool's own objects,
        not copies).
    """
    candidates = [i for i, a in enumerate(pool) if not is_isolated(a)]
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= len(candidates):
        raise ValueError(f"size must be an int in 0..{len(candidates)}, got {size!r}")
    order = np.random.default_rng(seed).permutation(len(candidates))
    chosen = sorted(candidates[i] for i in order[:size])
    return [pool[i] for i in chosen] + [a for a in pool if is_isolated(a)]


BUILDERS: Final[dict[str, Callable[[int, int], list[Atoms]]]] = {
    "assyst": lambda seed, labels: assyst_pool(seed, labels),
    "assyst_reference_optimizer": lambda seed, labels: assyst_pool(
        seed, labels, reference_optimizer=True
    ),
    "hand_made": lambda seed, labels: hand_made_pool(seed, labels),
    "random_cells": lambda seed, labels: random_cell_pool(seed, labels),
}


def cache_path(kind: str, seed: int, labels: int, cache_dir: str | os.PathLike[str]) -> Path:
    """Where :func:`pool` keeps the pool: ``{kind}-seed{seed}-labels{labels}-{digest}.pkl``."""
    return Path(cache_dir) / f"{kind}-seed{seed}-labels{labels}-{settings_digest(kind)}.pkl"


def pool(
    kind: str, seed: int, labels: int, cache_dir: str | os.PathLike[str] = "/tmp/set_value_pools"
) -> list[Atoms]:
    """The pool of ``kind`` (one of :data:`KINDS`), built with EMT labels or read from the cache.

    The pickle holds ``kind``, ``seed``, ``labels``, :func:`settings_string`, the build time
    (s) and the structures; a file whose header disagrees is rebuilt. Writes are atomic
    (a temporary file renamed), so concurrent builders never read half a file.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    seed : int
        Pool seed.
    labels : int
        Labelled structures at least, isolated atoms not counted.
    cache_dir : path, default "/tmp/set_value_pools"
        The cache folder (made if missing).

    Returns
    -------
    list of ase.Atoms
        The labelled structures, then the isolated atoms.
    """
    return pool_record(kind, seed, labels, cache_dir)["structures"]


def pool_record(
    kind: str, seed: int, labels: int, cache_dir: str | os.PathLike[str] = "/tmp/set_value_pools"
) -> dict[str, Any]:
    """What :func:`pool` keeps: the header (kind, seed, labels, settings, seconds) and the
    structures (``"structures"``); ``"cached"`` says whether it was read from the file."""
    if kind not in BUILDERS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    _check(seed, labels)
    path = cache_path(kind, seed, labels, cache_dir)
    header = {"kind": kind, "seed": seed, "labels": labels, "settings": settings_string(kind)}
    if path.exists():
        with path.open("rb") as handle:
            record = pickle.load(handle)
        if all(record.get(k) == v for k, v in header.items()):
            record["cached"] = True
            return record
    start = time.perf_counter()
    structures = BUILDERS[kind](seed, labels)
    record = {**header, "seconds": time.perf_counter() - start, "structures": structures}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".tmp{os.getpid()}")
    with temporary.open("wb") as handle:
        pickle.dump(record, handle, protocol=pickle.HIGHEST_PROTOCOL)
    temporary.replace(path)
    record["cached"] = False
    return record


def summary(structures: Sequence[Atoms]) -> dict[str, Any]:
    """Counts of a pool: labels, isolated atoms, crystals (distinct ``seed`` of the labels),
    labels per crystal, atoms per label, config types, and (hand-made) phases."""
    labelled = [a for a in structures if not is_isolated(a)]
    crystals = len({str(a.info.get("seed")) for a in labelled})
    return {
        "labels": len(labelled),
        "isolated_atoms": len(structures) - len(labelled),
        "crystals": crystals,
        "labels_per_crystal": len(labelled) / crystals if crystals else 0.0,
        "mean_atoms_per_label": float(np.mean([len(a) for a in labelled])) if labelled else 0.0,
        "config_types": dict(collections.Counter(a.info.get(CONFIG_TYPE) for a in structures)),
        "phases": dict(collections.Counter(a.info["phase"] for a in labelled if "phase" in a.info)),
        "requested_spacegroups": len(
            {a.info.get("requested spacegroup") for a in labelled} - {None}
        ),
        "not_converged": sum(a.info.get("relax_converged") is False for a in labelled),
        "duplicates_not_labelled": sum(len(a.info.get("duplicates", ())) for a in labelled),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """The CLI: ``build`` every (seed, kind) pool, seed by seed; JSON summary to ``--json``
    (default ``CACHE/build.json``), rewritten after each pool."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build (or read) the pools")
    build.add_argument("--seeds", type=int, nargs="+", default=[0])
    build.add_argument("--labels", type=int, default=1000)
    build.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    build.add_argument("--cache", type=Path, default=Path("/tmp/set_value_pools"))
    build.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from project_scale import machine  # CPU, cores, OS, Python, commit

    output = args.json or args.cache / "build.json"
    results: dict[str, Any] = {
        "benchmark": "set_value_sets",
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_at_start": list(os.getloadavg()),
        "settings": {kind: settings_string(kind) for kind in args.kinds},
        "pools": [],
    }
    args.cache.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for kind in args.kinds:
            load = os.getloadavg()[0]
            record = pool_record(kind, seed, args.labels, args.cache)
            row = {
                "kind": kind,
                "seed": seed,
                "labels_asked": args.labels,
                "seconds": record["seconds"],
                "cached": record["cached"],
                "load_before": load,
                "load_after": os.getloadavg()[0],
                "file": str(cache_path(kind, seed, args.labels, args.cache)),
                "settings_digest": settings_digest(kind),
                **summary(record["structures"]),
            }
            print(json.dumps(row), flush=True)
            results["pools"].append(row)
            results["load_at_end"] = list(os.getloadavg())
            output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
