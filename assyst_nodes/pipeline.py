"""The canonical ASSYST run on the core alone (no pyiron): sample -> volume relax -> full relax
-> perturb -> combine -> filter, with a report per stage.

:func:`run_pipeline` defaults to the embedded example: a Cu-Ag binary with up to 4 atoms per
cell, ASE's EMT calculator, and distance/aspect filters whose radii also bound the sampling.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

from ase import Atoms
from ase.calculators.calculator import BaseCalculator

from .calculators import EMT, CalculatorConfig
from .crystals import Formulas, sample
from .fanout import shared_workers
from .filters import AndFilter, AspectFilter, DistanceFilter, FilterBase, apply_filters
from .perturbations import PerturbationLike, RandomChoice, Rattle, Stretch, perturb
from .random import RngLike, resolve_seed
from .relaxations import FullRelax, Relax, VolumeRelax, relax
from .reports import StageReport

__all__ = [
    "DEFAULT_FILTER",
    "DEFAULT_PERTURBATIONS",
    "DEFAULT_RADII",
    "PipelineResult",
    "combine",
    "run_pipeline",
]

DEFAULT_RADII: Mapping[str, float] = {"Cu": 0.9, "Ag": 1.0}
"""Minimum-distance radii (Å) of the embedded Cu-Ag example: pairs closer than r_i + r_j
(1.8 Å Cu-Cu, 2.0 Å Ag-Ag) are neither sampled nor kept."""

DEFAULT_FILTER: FilterBase = DistanceFilter(DEFAULT_RADII) & AspectFilter(6.0, measure="heights")
"""Filter of the embedded example: minimum distances and cells no more elongated than 6:1."""

DEFAULT_PERTURBATIONS: tuple[PerturbationLike, ...] = (
    Rattle(0.1, create_supercells=True) + Stretch(hydro=0.05, shear=0.05),
    RandomChoice(Stretch(hydro=0.8, shear=0.05), Stretch(hydro=0.05, shear=0.2), 0.5),
)
"""Perturbations of the embedded example, each applied once to every relaxed structure: a small
rattle (σ = 0.1 Å; one-atom cells are first repeated to 8 atoms) on a small strain, and either
a large volume change or a large shear."""


def combine(*structure_sets: Iterable[Atoms]) -> list[Atoms]:
    """All structures of the given sets, in order, each uuid once (first occurrence kept)."""
    seen: set[str] = set()
    out: list[Atoms] = []
    for structures in structure_sets:
        for structure in structures:
            uid = structure.info.get("uuid")
            if uid is not None and uid in seen:
                continue
            if uid is not None:
                seen.add(uid)
            out.append(structure)
    return out


@dataclass
class PipelineResult:
    """Everything one run produced: the final set, each intermediate set and each report."""

    structures: list[Atoms]
    stages: dict[str, list[Atoms]] = field(default_factory=dict)
    reports: list[StageReport] = field(default_factory=list)
    seed: int = 0
    seconds: float = 0.0

    def table(self) -> str:
        """A plain-text table: one row per stage with in, out, dropped by reason and time (s)."""
        header = f"{'stage':<34} {'in':>6} {'out':>6} {'time/s':>8}  dropped (reason: n)"
        rows = [header, "-" * len(header)]
        for report in self.reports:
            dropped = ", ".join(f"{r}: {n}" for r, n in sorted(report.dropped.items())) or "-"
            flags = ", ".join(f"{r}: {n}" for r, n in sorted(report.flags.items()))
            if flags:
                dropped += f"  [{flags}]"
            name = report.stage if len(report.stage) <= 34 else report.stage[:31] + "..."
            rows.append(
                f"{name:<34} {report.n_in:>6} {report.n_out:>6} {report.seconds:>8.2f}  {dropped}"
            )
        rows.append(
            f"{len(self.structures)} structures in the training set; seed {self.seed}; "
            f"{self.seconds:.1f} s in all"
        )
        return "\n".join(rows)


def _with_calculator(
    settings: Relax, calculator: CalculatorConfig | BaseCalculator | None
) -> Relax:
    return settings if calculator is None else dataclasses.replace(settings, calculator=calculator)


def run_pipeline(
    elements: Sequence[str] = ("Cu", "Ag"),
    max_atoms: int = 4,
    min_atoms: int = 1,
    spacegroups: Iterable[int] | None = None,
    max_structures: int | None = 30,
    formulas: Formulas | None = None,
    calculator: CalculatorConfig | BaseCalculator | None = EMT(),
    volume_relax: Relax | None = VolumeRelax(),
    full_relax: Relax | None = FullRelax(),
    perturbations: Sequence[PerturbationLike] = DEFAULT_PERTURBATIONS,
    filters: FilterBase | None = DEFAULT_FILTER,
    tolerance: str | float | Mapping[str, float] | DistanceFilter | None = None,
    retries: int = 10,
    rng: RngLike = 0,
    workers: int = 1,
    executor: Executor | None = None,
    progress: bool | None = None,
    time_limit: float | None = None,
    sample_time_limit: float | None = None,
) -> PipelineResult:
    """Run the canonical ASSYST pipeline and return the final set with every stage's report.

    - sampling: ``formulas`` (default: every composition of ``elements`` with
      ``min_atoms..max_atoms`` atoms), over ``spacegroups`` (default: all 230), at most
      ``max_structures``, walked in seeded random order so a cap spreads over the grid;
      pair distances bounded by ``tolerance`` (default: the ``DistanceFilter`` inside
      ``filters``, else pyxtal's ``"metallic"`` table);
    - relaxation: ``volume_relax`` then ``full_relax`` (either may be ``None`` to skip it),
      both with ``calculator`` unless it is ``None`` (then their own calculators are used);
      ``workers``/``executor`` fan the relaxations out (results do not depend on it);
      ``time_limit`` (s) bounds one structure's relaxation and ``sample_time_limit`` (s) pyxtal
      on one grid point (``None``: no limit; what takes longer is dropped as ``time_limit``);
    - perturbation: each of ``perturbations`` applied once to every relaxed structure,
      retried (``retries`` attempts) against ``filters``;
    - the sampled, relaxed and perturbed sets are combined and passed through ``filters``.

    ``rng`` is the base seed of every random choice; the same seed gives the same result bit
    for bit, whatever ``workers``. ``progress`` shows progress bars (``None``: when
    interactive).
    """
    start = time.perf_counter()
    seed = resolve_seed(rng)
    if formulas is None:
        if isinstance(elements, str):
            elements = (elements,)
        formulas = Formulas.range(tuple(elements), 0, max_atoms + 1)
    if tolerance is None:
        tolerance = _distance_filter_of(filters) or "metallic"
    reports: list[StageReport] = []
    stages: dict[str, list[Atoms]] = {}

    report = StageReport(stage="sample")
    stages["sampled"] = list(
        sample(
            formulas,
            spacegroups,
            min_atoms=min_atoms,
            max_atoms=max_atoms,
            max_structures=max_structures,
            tolerance=tolerance,
            shuffle=True,
            rng=seed,
            report=report,
            progress=progress,
            time_limit=sample_time_limit,
        )
    )
    reports.append(report)

    current = stages["sampled"]
    relaxed: list[list[Atoms]] = []
    with shared_workers():  # both relaxations on the same worker processes
        for key, settings in (("volume_relaxed", volume_relax), ("full_relaxed", full_relax)):
            if settings is None:
                continue
            settings = _with_calculator(settings, calculator)
            report = StageReport(stage=str(settings))
            current = relax(
                current,
                settings,
                report=report,
                workers=workers,
                executor=executor,
                progress=progress,
                time_limit=time_limit,
            )
            stages[key] = current
            relaxed.append(current)
            reports.append(report)

    report = StageReport(stage="perturb")
    stages["perturbed"] = perturb(
        combine(*relaxed),
        list(perturbations),
        filters=filters,
        retries=retries,
        rng=seed,
        report=report,
    )
    reports.append(report)

    stages["combined"] = combine(stages["sampled"], *relaxed, stages["perturbed"])
    if filters is None:
        final = stages["combined"]
    else:
        report = StageReport()
        final = apply_filters(stages["combined"], filters, report=report)
        reports.append(report)
    stages["filtered"] = final
    return PipelineResult(
        structures=final,
        stages=stages,
        reports=reports,
        seed=seed,
        seconds=time.perf_counter() - start,
    )


def _distance_filter_of(filters: FilterBase | None) -> DistanceFilter | None:
    """The first ``DistanceFilter`` in an and-chain of filters, if any."""
    if isinstance(filters, DistanceFilter):
        return filters
    if isinstance(filters, AndFilter):
        return _distance_filter_of(filters.left) or _distance_filter_of(filters.right)
    return None
