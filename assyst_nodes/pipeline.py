"""The canonical ASSYST run as one Python call: :func:`run_pipeline`.

The run itself is defined once, as the macro :func:`assyst_nodes.nodes.assyst` (sample ->
volume relax -> full relax -> perturb -> combine -> filter -> label); :func:`run_pipeline` runs
that macro and returns a :class:`PipelineResult` (the final set, every intermediate set and
every stage's report), and ``assyst-nodes run`` calls :func:`run_pipeline`. Defaults come from
:mod:`assyst_nodes.defaults`: a Cu-Ag binary with up to 4 atoms per cell, ASE's EMT
calculator, and distance/aspect filters whose radii also bound the sampling.

This module imports only the core; :func:`run_pipeline` imports the node layer
(pyiron_workflow) when it is called.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ase import Atoms

from . import defaults
from .calculators import CalculatorConfig
from .random import RngLike, resolve_seed
from .reports import StageReport
from .stages.combine import combine
from .stages.duplicates import Duplicates
from .stages.filter import DistanceFilter, FilterBase
from .stages.fit import FitResult, FitSettings
from .stages.isolated import IsolatedAtoms
from .stages.perturb import PerturbationLike, as_perturbation
from .stages.relax import Relax
from .stages.sample import Formulas
from .stages.split import Split
from .stages.validate import Suite, Validation

if TYPE_CHECKING:
    from .runtime.executors import ExecutorConfig

__all__ = [
    "DEFAULT_FILTER",
    "DEFAULT_PERTURBATIONS",
    "DEFAULT_RADII",
    "PipelineResult",
    "combine",
    "run_pipeline",
]

DEFAULT_RADII: Mapping[str, float] = defaults.RADII
"""Minimum-distance radii (Å) of the embedded example (:data:`assyst_nodes.defaults.RADII`)."""

DEFAULT_FILTER: FilterBase = defaults.FILTER
"""Filter of the embedded example (:data:`assyst_nodes.defaults.FILTER`)."""

DEFAULT_PERTURBATIONS: tuple[PerturbationLike, ...] = defaults.PERTURBATIONS
"""Perturbations of the embedded example (:data:`assyst_nodes.defaults.PERTURBATIONS`)."""


@dataclass
class PipelineResult:
    """Everything one run produced: the final set, each intermediate set and each report.

    Made by :func:`run_pipeline`.

    Parameters
    ----------
    structures : list of ase.Atoms
        The training set: the filtered structures (with labels, the labelled ones are in
        ``stages["labelled"]``).
    stages : dict of str to list of ase.Atoms, optional
        Each intermediate set by name (``sampled``, ``volume_relaxed``, ``full_relaxed`` where
        they ran, ``perturbed``, ``combined``, ``filtered`` and, with labels, ``labelled``).
        Default: empty.
    reports : list of StageReport, optional
        Each stage's report, in the order the stages ran. Default: empty.
    seed : int, default 0
        The base seed the run used (see :func:`assyst_nodes.random.resolve_seed`).
    seconds : float, default 0.0
        Wall time of the whole run (s).
    fit : FitResult, optional
        The fitted potential and its errors (with ``fit``); default ``None``.
    validation : Validation, optional
        The potential's errors on the held-out suite (with ``validate``); default ``None``.
    """

    structures: list[Atoms]
    stages: dict[str, list[Atoms]] = field(default_factory=dict)
    reports: list[StageReport] = field(default_factory=list)
    seed: int = 0
    seconds: float = 0.0
    fit: FitResult | None = None
    validation: Validation | None = None

    def table(self) -> str:
        """A plain-text table: one row per stage with in, out, dropped by reason and time (s).

        Returns
        -------
        str
            A header, one row per report (with its flags in brackets) and a last line with
            the size of the training set, the seed and the total time (s).
        """
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


_STAGE_OUTPUTS: tuple[tuple[str, str | None], ...] = (
    ("sampled", None),
    ("volume_relaxed", "volume_relax"),
    ("full_relaxed", "full_relax"),
    ("perturbed", None),
    ("combined", None),
)
"""The macro outputs :attr:`PipelineResult.stages` holds, with the setting that skips each."""


def run_pipeline(
    elements: Sequence[str] = defaults.ELEMENTS,
    max_atoms: int = defaults.MAX_ATOMS,
    min_atoms: int = defaults.MIN_ATOMS,
    spacegroups: Iterable[int] | None = None,
    max_structures: int | None = defaults.MAX_STRUCTURES,
    formulas: Formulas | None = None,
    calculator: CalculatorConfig | None = None,
    volume_relax: Relax | None = defaults.VOLUME_RELAX,
    full_relax: Relax | None = defaults.FULL_RELAX,
    perturbations: Sequence[PerturbationLike] = defaults.PERTURBATIONS,
    filters: FilterBase | None = None,
    radii: float | Mapping[str, float] = defaults.RADII,
    max_aspect: float = defaults.MAX_ASPECT,
    tolerance: str | float | Mapping[str, float] | DistanceFilter | None = None,
    retries: int = defaults.RETRIES,
    rng: RngLike = defaults.SEED,
    workers: int = defaults.WORKERS,
    executor: ExecutorConfig | Executor | None = None,
    progress: bool | None = None,
    time_limit: float | None = None,
    sample_time_limit: float | None = None,
    sample_executor: ExecutorConfig | Executor | None = None,
    relax_executor: ExecutorConfig | Executor | None = None,
    recorder: Any = None,
    label_calculator: CalculatorConfig | None = None,
    label_executor: ExecutorConfig | Executor | None = None,
    label_time_limit: float | None = None,
    duplicates: Duplicates | None = defaults.DUPLICATES,
    isolated_atoms: IsolatedAtoms | None = defaults.ISOLATED_ATOMS,
    fit: FitSettings | None = None,
    fit_split: Split | None = defaults.FIT_SPLIT,
    fit_directory: str | os.PathLike[str] = defaults.FIT_DIRECTORY,
    fit_executor: ExecutorConfig | Executor | None = None,
    validate: Suite | None = None,
) -> PipelineResult:
    """Run the canonical ASSYST pipeline (the macro :func:`assyst_nodes.nodes.assyst`).

    Parameters
    ----------
    elements : sequence of str, default ("Cu", "Ag")
        Elements; the compositions are every mix with ``min_atoms..max_atoms`` atoms per cell,
        unless ``formulas`` are given (then trimmed to that window). Default:
        :data:`assyst_nodes.defaults.ELEMENTS`.
    max_atoms : int, default 4
        Atoms per cell at most (:data:`assyst_nodes.defaults.MAX_ATOMS`).
    min_atoms : int, default 1
        Atoms per cell at least (:data:`assyst_nodes.defaults.MIN_ATOMS`).
    spacegroups : iterable of int, optional
        Space groups to sample (numbers 1 to 230). Default: ``None``, all 230.
    max_structures : int or None, default 30
        Sampled crystals at most (``None``: no cap), walked in seeded random order so a cap
        spreads over the grid. Default: :data:`assyst_nodes.defaults.MAX_STRUCTURES`.
    formulas : Formulas, optional
        Explicit compositions instead of those of ``elements``. Default: ``None``, every mix
        of ``elements``.
    calculator : CalculatorConfig, optional
        The calculator of both relaxations. Default: ``None``, which keeps each relax
        setting's own (settings that name none relax with
        :data:`assyst_nodes.defaults.CALCULATOR`, EMT). Given to settings that name a
        different one, it is a ``ValueError`` naming both.
    volume_relax, full_relax : Relax or None, default VolumeRelax() and FullRelax()
        The two relaxations, in order (``None`` skips one: no output, no report). Defaults:
        :data:`assyst_nodes.defaults.VOLUME_RELAX` and
        :data:`assyst_nodes.defaults.FULL_RELAX`.
    perturbations : sequence of perturbations, default PERTURBATIONS
        Each applied once to every relaxed structure, redrawn up to ``retries`` times until
        it passes the filter. Default: :data:`assyst_nodes.defaults.PERTURBATIONS` (a small
        rattle on a small strain, and either a large volume change or a large shear).
    filters : FilterBase, optional
        The final filter, also used while perturbing. Default: ``None``, minimum distances
        with ``radii`` and cell aspect at most ``max_aspect``.
    radii : float or mapping of str to float, default RADII
        Minimum-distance radii (Å) of the default filter, one for every element or one per
        element: pairs closer than r_i + r_j are neither sampled nor kept. Default:
        :data:`assyst_nodes.defaults.RADII` (Cu 0.9 Å, Ag 1.0 Å).
    max_aspect : float, default 6.0
        The most elongated cell the default filter keeps (ratio of the longest to the
        shortest cell height; :data:`assyst_nodes.defaults.MAX_ASPECT`).
    tolerance : str, float, mapping or DistanceFilter, optional
        What bounds pair distances while sampling. Default: ``None``, the ``DistanceFilter``
        inside the filter, else pyxtal's ``"metallic"`` table.
    retries : int, default 10
        Draws of one perturbation at most (:data:`assyst_nodes.defaults.RETRIES`).
    rng : int, numpy.random.Generator or None, default 0
        Base seed of every random choice; the same seed gives the same result bit for bit,
        whatever ``workers``. ``None``: fresh entropy (the seed used is returned as the
        result's ``seed``). Default: :data:`assyst_nodes.defaults.SEED`.
    workers : int, default 1
        Local processes that sample, relax and label (the result does not depend on it);
        :data:`assyst_nodes.defaults.WORKERS`.
    executor : ExecutorConfig or concurrent.futures.Executor, optional
        Where sampling, relaxation and labelling fan out. Default: ``None``, ``workers``
        local processes.
    progress : bool, optional
        Progress bars. Default: ``None``, when interactive.
    time_limit : float, optional
        Wall-clock limit (s) of one structure's relaxation; what takes longer is dropped as
        ``time_limit``. Default: ``None``, no limit.
    sample_time_limit : float, optional
        Wall-clock limit (s) of pyxtal on one grid point; what takes longer is dropped as
        ``time_limit``. Default: ``None``, no limit.
    sample_executor, relax_executor, label_executor : ExecutorConfig or Executor, optional
        Send sampling, relaxation or labelling elsewhere, each with its own resources (e.g.
        ``Slurm("cpu", workers=16, run_time=3600)``). Default: ``None``, ``executor``.
    recorder : Recorder, optional
        E.g. ``assyst_nodes.project.ProjectRecorder("folder")``: every stage run is a job,
        reused on rerun. Default: ``None``, nothing is stored.
    label_calculator : CalculatorConfig, optional
        The reference calculator (e.g. DFT) of single points of the training set; a
        structure whose label fails (calculator error, SCF not converged) is reported, never
        labelled. Default: ``None``, no labels.
    label_time_limit : float, optional
        Wall-clock limit (s) of one label; what takes longer is dropped as ``time_limit``.
        Default: ``None``, no limit.
    duplicates : Duplicates or None, default Duplicates()
        With labels: equivalent structures are labelled once (the kept one records the uuids
        it stands for); ``None``: each is labelled. Default:
        :data:`assyst_nodes.defaults.DUPLICATES`.
    isolated_atoms : IsolatedAtoms or None, default IsolatedAtoms()
        With labels: the isolated atoms labelled beside the training set (the fitting codes'
        reference energies); ``None``: none. Default:
        :data:`assyst_nodes.defaults.ISOLATED_ATOMS`.
    fit : FitSettings, optional
        With labels: fit a potential to them (``LinearACE()``, ``PacemakerACE()``, ``MACE()``
        of :mod:`assyst_nodes.stages.fit`). Default: ``None``, no fit.
    fit_split : Split or None, default Split(0.9, 0.1, 0.0)
        The family split of the fit (training, validation); ``None``: fit all. Default:
        :data:`assyst_nodes.defaults.FIT_SPLIT`.
    fit_directory : str or os.PathLike, default "fit"
        Folder of the potential file and the code's logs without a ``recorder`` (a project's
        fit job keeps them in its own folder).
    fit_executor : ExecutorConfig or concurrent.futures.Executor, optional
        Where the fit runs, e.g. a SLURM GPU partition for MACE.
        Default: ``None``, this process.
    validate : Suite, optional
        With a fit: its potential's errors against ``label_calculator`` on this held-out
        suite (:class:`~assyst_nodes.stages.validate.Suite`). Default: ``None``, none.

    Returns
    -------
    PipelineResult
        The training set, each intermediate set (``stages``: ``sampled``,
        ``volume_relaxed``, ``full_relaxed`` where they ran, ``perturbed``, ``combined``,
        ``filtered`` and, with labels, ``labelled``), each stage's report, and the fit and
        validation where asked for.
    """
    import pyiron_workflow as pwf

    from .nodes import assyst
    from .runtime.fanout import shared_workers

    start = time.perf_counter()
    seed = resolve_seed(rng)
    settings = {"volume_relax": volume_relax, "full_relax": full_relax}
    with shared_workers():  # one pool of local workers for all stages: models load once
        out = pwf.run(
            assyst,
            elements=[elements] if isinstance(elements, str) else list(elements),
            min_atoms=min_atoms,
            max_atoms=max_atoms,
            formulas=formulas,
            spacegroups=None if spacegroups is None else list(spacegroups),
            max_structures=max_structures,
            calculator=calculator,
            volume_relax=volume_relax,
            full_relax=full_relax,
            perturbations=[as_perturbation(p) for p in perturbations],
            radii=radii if isinstance(radii, float | int) else tuple(sorted(radii.items())),
            max_aspect=max_aspect,
            filters=filters,
            tolerance=dict(tolerance) if isinstance(tolerance, Mapping) else tolerance,
            retries=retries,
            seed=seed,
            workers=workers,
            executor=executor,
            sample_executor=sample_executor,
            relax_executor=relax_executor,
            progress=progress,
            recorder=recorder,
            sample_time_limit=sample_time_limit,
            relax_time_limit=time_limit,
            label_calculator=label_calculator,
            label_executor=label_executor,
            label_time_limit=label_time_limit,
            duplicates=duplicates,
            isolated_atoms=isolated_atoms,
            fit=fit,
            fit_split=fit_split,
            fit_directory=os.fspath(fit_directory),
            fit_executor=fit_executor,
            validate=validate,
        ).outputs
    stages = {
        name: getattr(out, name)
        for name, skipped_by in _STAGE_OUTPUTS
        if skipped_by is None or settings[skipped_by] is not None
    }
    stages["filtered"] = out.training_set
    if label_calculator is not None:
        stages["labelled"] = out.labelled
    return PipelineResult(
        structures=out.training_set,
        stages=stages,
        reports=list(out.reports),
        seed=seed,
        seconds=time.perf_counter() - start,
        fit=out.fitted,
        validation=out.validation,
    )
