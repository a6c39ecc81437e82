"""One typed node per stage, plus the helpers a real graph needs.

Each stage node wraps the core function of the same name and returns its structures together
with its :class:`~assyst_nodes.reports.StageReport` (in, out, dropped by reason, seconds), so a
graph shows what every stage made and lost. ``pwf.node(sample)`` etc. build the live nodes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import flowrep as fr
import pandas as pd
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ..calculators import EMT, CalculatorConfig
from ..io.extxyz import write_extxyz
from ..reports import StageReport
from ..runtime.deadline import check_time_limit
from ..stages import label as labelling
from ..stages import relax as relaxations
from ..stages import sample as crystals
from ..stages.combine import combine as combine_sets
from ..stages.duplicates import Duplicates
from ..stages.filter import DistanceFilter, FilterBase
from ..stages.filter import filter as core_filter
from ..stages.isolated import IsolatedAtoms
from ..stages.perturb import Perturbation
from ..stages.perturb import perturb as core_perturb
from ..stages.relax import OutcomeCache, Relax, VolumeRelax
from ..stages.sample import Formulas
from ..validation import structure_list
from .executors import ExecutorLike, fan_out_options, open_executor
from .recording import Recorder, recorded

__all__ = [
    "combine",
    "export",
    "filter",
    "filter_structures",
    "gather_reports",
    "label",
    "label_if",
    "perturb",
    "relax",
    "relax_if",
    "relaxed_or",
    "report_table",
    "sample",
]


@fr.atomic("structures", "report")
def sample(
    formulas: Formulas,
    spacegroups: list[int] | tuple[int, ...] | None = None,
    min_atoms: int = 1,
    max_atoms: int = 10,
    max_structures: int | None = None,
    dim: int = 3,
    tolerance: str | float | dict[str, float] | DistanceFilter = "metallic",
    shuffle: bool = True,
    seed: int = 0,
    workers: int = 1,
    executor: ExecutorLike = None,
    progress: bool | None = None,
    recorder: Recorder | None = None,
    time_limit: float | None = None,
) -> tuple[list[Atoms], StageReport]:
    """Random symmetric crystals over formulas x groups.

    A node around :func:`assyst_nodes.stages.sample.sample`. Grid points that are
    incompatible, where pyxtal gives up or raises, or that take longer than ``time_limit`` are
    dropped and reported, never raised. The output is the same for any ``workers`` and
    ``executor``.

    Parameters
    ----------
    formulas : Formulas
        Compositions; those outside ``min_atoms..max_atoms`` atoms are skipped (reported as
        ``atom_window``, with a ``UserWarning`` if none is left) and element counts of 0 are
        ignored.
    spacegroups : list of int or tuple of int, optional
        Symmetry group numbers to sample. Default: ``None`` (all groups of ``dim``: 1..230 for
        crystals).
    min_atoms : int, default 1
        Atoms per cell at least.
    max_atoms : int, default 10
        Atoms per cell at most.
    max_structures : int, optional
        Stop after this many structures (>= 0). Default: ``None`` (no cap).
    dim : int, default 3
        pyxtal's dimensionality: 3 crystals (space groups), 2 layers, 1 rods, 0 clusters.
    tolerance : str or float or dict of str to float or DistanceFilter, default "metallic"
        The minimum distances of sampled atoms: a pyxtal prototype name (``"metallic"``,
        ``"atomic"``, ``"molecular"``, ``"vdW"``) or element radii (Å: one number, a dict per
        element, or a ``DistanceFilter``, so sampling and filtering use the same pair
        distances).
    shuffle : bool, default True
        Walk the grid in a random (seeded) order, so that any prefix (``max_structures``)
        spreads over the grid; each grid point gives the same structure either way.
    seed : int, default 0
        Base seed; the seed of each structure's stream is in its ``info["rng_seed"]``.
    workers : int, default 1
        Local worker processes (an int >= 1), or with an ``executor`` the chunks of work that
        run at once; an executor config brings its own. The result is the same for any
        ``workers`` and ``executor``.
    executor : ExecutorLike, optional
        Where the chunks of work run: an executor config (``LocalProcesses``, ``Slurm``; its
        own ``workers`` and ``resubmit`` then apply), ``pyiron_workflow.ExecutorInstructions``
        (built where the stage runs and shut down after it) or a live
        ``concurrent.futures.Executor`` (used as given and left open). Default: ``None``
        (``workers`` local processes).
    progress : bool, optional
        Whether to show a progress bar. Default: ``None`` (only in terminals and notebooks).
    recorder : Recorder, optional
        Where the run is stored (e.g. a project, see
        :class:`assyst_nodes.project.ProjectRecorder`) and reused from. Default: ``None``
        (run in memory).
    time_limit : float, optional
        Wall time (s) pyxtal may take per grid point; a point over it is dropped as
        ``time_limit``. Default: ``None`` (no limit).

    Returns
    -------
    structures : list of Atoms
        The sampled crystals.
    report : StageReport
        Grid points in and out, dropped by reason (``atom_window``, ``incompatible``,
        ``pyxtal_failed``, ``time_limit``, ``worker_lost``), seconds (s).

    Raises
    ------
    TypeError, ValueError
        An invalid argument (e.g. an empty ``spacegroups``, a ``time_limit`` that is not a
        number > 0); checked before a recorder creates a job.
    """
    settings = {
        "formulas": formulas,
        "spacegroups": None if spacegroups is None else list(spacegroups),
        "min_atoms": min_atoms,
        "max_atoms": max_atoms,
        "max_structures": max_structures,
        "dim": dim,
        "tolerance": tolerance,
        "shuffle": shuffle,
        "seed": seed,
    }
    settings = _with_time_limit(settings, time_limit)
    _sample_arguments(settings, workers)  # bad input fails here, before a recorder makes a job
    compute = partial(_sample, settings, workers, executor, progress)
    structures, report = recorded(recorder, "sample", settings, [], compute)
    return structures, report


def _sample_arguments(settings: dict[str, Any], workers: int) -> None:
    """Check the arguments of :func:`assyst_nodes.stages.sample.sample`; nothing is drawn."""
    kwargs = dict(settings)
    kwargs["rng"] = kwargs.pop("seed")
    crystals.sample(**kwargs, workers=workers)  # checks eagerly, draws only when iterated


def _sample(
    settings: dict[str, Any],
    workers: int,
    executor: ExecutorLike,
    progress: bool | None,
    points: crystals.PointCache | None = None,
) -> tuple[list[Atoms], StageReport]:
    """Draw the crystals; ``points``: grid points drawn before (a project's, when recorded)."""
    report = StageReport("sample")
    kwargs = dict(settings)
    kwargs["rng"] = kwargs.pop("seed")
    workers, resubmit = fan_out_options(executor, workers)
    with open_executor(executor) as live:
        structures = list(
            crystals.sample(
                **kwargs, report=report, workers=workers, executor=live, progress=progress,
                resubmit=resubmit, cache=points,
            )
        )
    return structures, report


def _keyable(settings: Relax, structures: list[Atoms]) -> Relax:
    """``settings`` as a project stores them: a project reuses a relaxation by its input
    uuid and settings, so the calculator must be part of the settings. ``calculator=None``
    with no live calculator attached to any structure relaxes with EMT and is recorded as
    ``EMT()``; with attached calculators it is refused (``TypeError``), as a live calculator
    cannot key stored results."""
    if not isinstance(settings, Relax) or settings.calculator is not None:
        return settings
    attached = sorted({
        type(a.calc).__name__ for a in structures
        if a.calc is not None and not isinstance(a.calc, SinglePointCalculator)
    })
    if attached:
        raise TypeError(
            f"{type(settings).__name__}(calculator=None) would relax with the calculators "
            f"attached to the structures ({', '.join(attached)}), which a project cannot key "
            "its stored relaxations by: pass calculator=<a config>, e.g. EMT(), SevenNet() or "
            "ImportedCalculator('module:Name', {...})"
        )
    return replace(settings, calculator=EMT())


@fr.atomic("structures", "report")
def relax(
    structures: list[Atoms],
    settings: Relax = VolumeRelax(),
    workers: int = 1,
    executor: ExecutorLike = None,
    chunksize: int | None = None,
    progress: bool | None = None,
    recorder: Recorder | None = None,
    time_limit: float | None = None,
) -> tuple[list[Atoms], StageReport]:
    """Minimise each structure with ``settings``.

    A node around :func:`assyst_nodes.stages.relax.relax`. Each result has
    ``info["relax_converged"]`` (unconverged results are kept and flagged
    ``not_converged``); a structure whose calculator fails is dropped and reported.

    Parameters
    ----------
    structures : list of Atoms
        The structures to relax; they are not modified.
    settings : Relax, default VolumeRelax()
        The relaxation (e.g. :class:`~assyst_nodes.stages.relax.VolumeRelax`,
        :class:`~assyst_nodes.stages.relax.FullRelax`), with its calculator, steps and force
        tolerance (eV/Å).
    workers : int, default 1
        Local worker processes (an int >= 1), or with an ``executor`` the chunks of work that
        run at once; an executor config brings its own. The result is the same for any
        ``workers`` and ``executor``.
    executor : ExecutorLike, optional
        Where the chunks of work run: an executor config (``LocalProcesses``, ``Slurm``; its
        own ``workers`` and ``resubmit`` then apply), ``pyiron_workflow.ExecutorInstructions``
        (built where the stage runs and shut down after it) or a live
        ``concurrent.futures.Executor`` (used as given and left open). Default: ``None``
        (``workers`` local processes).
    chunksize : int, optional
        Structures per chunk sent to a worker. Default: ``None``
        (:func:`~assyst_nodes.runtime.fanout.auto_chunksize`).
    progress : bool, optional
        Whether to show a progress bar. Default: ``None`` (only in terminals and notebooks).
    recorder : Recorder, optional
        Where the run is stored and reused from, e.g.
        :class:`assyst_nodes.project.ProjectRecorder`. A project keys a relaxation by its
        input uuids and settings, so there ``settings.calculator=None`` is recorded as
        ``EMT()`` (what it relaxes with) when no structure has a live calculator attached.
        Default: ``None`` (run in memory).
    time_limit : float, optional
        Wall time (s) one structure may take; one that takes longer is dropped with reason
        ``time_limit``. Default: ``None`` (no limit).

    Returns
    -------
    structures : list of Atoms
        The relaxed structures, in input order.
    report : StageReport
        Structures in and out, dropped by reason, flags, seconds (s).

    Raises
    ------
    TypeError
        ``structures`` is not a list of ``Atoms``. With ``settings.calculator=None``: a
        structure's attached calculator does not pickle to the worker processes (or
        ``executor``) that need it; with a ``recorder``, any structure carries a live
        calculator (a project cannot key its stored relaxations by it: pass a calculator
        config, e.g. ``EMT()``).
    ImportError
        A calculator path that does not import.
    ValueError
        A structure periodic along zero or dependent cell vectors, or without a 3D cell when
        ``settings`` move the cell; or an invalid ``time_limit``.
    """
    structures = structure_list(structures)  # before a recorder makes a job
    if recorder is not None:
        settings = _keyable(settings, structures)
    compute = partial(
        _fan_out, relaxations.relax, structures, settings, workers, executor, chunksize, progress,
        time_limit,
    )
    recorded_settings = _with_time_limit({"settings": settings}, time_limit)
    relaxed, report = recorded(recorder, "relax", recorded_settings, [structures], compute)
    return relaxed, report


@fr.atomic("structures", "report")
def relax_if(
    structures: list[Atoms],
    settings: Relax | None = None,
    workers: int = 1,
    executor: ExecutorLike = None,
    progress: bool | None = None,
    recorder: Recorder | None = None,
    time_limit: float | None = None,
) -> tuple[list[Atoms], StageReport | None]:
    """:func:`relax` with ``settings``, or a skipped relaxation for ``None``.

    Parameters
    ----------
    structures : list of Atoms
        The structures to relax.
    settings : Relax, optional
        The relaxation. Default: ``None`` (skipped: no structures and no report).
    workers : int, default 1
        Local worker processes (an int >= 1), or with an ``executor`` the chunks of work that
        run at once; an executor config brings its own. The result is the same for any
        ``workers`` and ``executor``.
    executor : ExecutorLike, optional
        Where the chunks of work run: an executor config (``LocalProcesses``, ``Slurm``; its
        own ``workers`` and ``resubmit`` then apply), ``pyiron_workflow.ExecutorInstructions``
        (built where the stage runs and shut down after it) or a live
        ``concurrent.futures.Executor`` (used as given and left open). Default: ``None``
        (``workers`` local processes).
    progress : bool, optional
        Whether to show a progress bar. Default: ``None`` (only in terminals and notebooks).
    recorder : Recorder, optional
        Where the run is stored and reused from, e.g.
        :class:`assyst_nodes.project.ProjectRecorder`. Default: ``None`` (run in memory).
    time_limit : float, optional
        Wall time (s) one structure may take; one that takes longer is dropped with reason
        ``time_limit``. Default: ``None`` (no limit).

    Returns
    -------
    structures : list of Atoms
        The relaxed structures; empty when skipped.
    report : StageReport or None
        The relaxation's report; ``None`` when skipped.
    """
    relaxed: list[Atoms] = []
    report: StageReport | None = None
    if settings is not None:
        relaxed, report = relax(
            structures,
            settings,
            workers=workers,
            executor=executor,
            progress=progress,
            recorder=recorder,
            time_limit=time_limit,
        )
    return relaxed, report


@fr.atomic("structures")
def relaxed_or(
    structures: list[Atoms], relaxed: list[Atoms], settings: Relax | None = None
) -> list[Atoms]:
    """What the next relaxation starts from.

    ``relaxed`` if the relaxation with ``settings`` ran, else ``structures`` (its input) when
    it was skipped (``settings=None``).

    Parameters
    ----------
    structures : list of Atoms
        The input of the relaxation.
    relaxed : list of Atoms
        Its output.
    settings : Relax, optional
        The relaxation's settings. Default: ``None`` (it was skipped).

    Returns
    -------
    list of Atoms
        ``structures`` for ``settings=None``, else ``relaxed``.
    """
    return structures if settings is None else relaxed


@fr.atomic("structures", "report")
def label(
    structures: list[Atoms],
    calculator: CalculatorConfig = EMT(),
    workers: int = 1,
    executor: ExecutorLike = None,
    chunksize: int | None = None,
    progress: bool | None = None,
    recorder: Recorder | None = None,
    time_limit: float | None = None,
    duplicates: Duplicates | None = Duplicates(),
    isolated: IsolatedAtoms | None = IsolatedAtoms(),
) -> tuple[list[Atoms], StageReport]:
    """Energy (eV), free energy (eV), forces (eV/Å) and stress (eV/Å^3) of each distinct
    structure and of the isolated atoms of its elements; nothing moves.

    A node around :func:`assyst_nodes.stages.label.label`: equivalent structures are labelled
    once (the kept one records the uuids it stands for; the others are reported as
    ``duplicate``), each result is a new structure (step ``single_point``, its input as parent
    in the lineage, ``config_type`` its origin, ``family`` its seed crystal merged across
    duplicates) carrying a ``SinglePointCalculator``; a structure whose calculation fails is
    dropped and reported.

    Parameters
    ----------
    structures : list of Atoms
        The structures to label; they are not modified.
    calculator : CalculatorConfig, default EMT()
        The reference calculator, e.g. a DFT code's config.
    workers : int, default 1
        Local worker processes (an int >= 1), or with an ``executor`` the chunks of work that
        run at once; an executor config brings its own. The result is the same for any
        ``workers`` and ``executor``.
    executor : ExecutorLike, optional
        Where the chunks of work run: an executor config (``LocalProcesses``, ``Slurm``; its
        own ``workers`` and ``resubmit`` then apply), ``pyiron_workflow.ExecutorInstructions``
        (built where the stage runs and shut down after it) or a live
        ``concurrent.futures.Executor`` (used as given and left open). Default: ``None``
        (``workers`` local processes).
    chunksize : int, optional
        Structures per chunk sent to a worker. Default: ``None``
        (:func:`~assyst_nodes.runtime.fanout.auto_chunksize`).
    progress : bool, optional
        Whether to show a progress bar. Default: ``None`` (only in terminals and notebooks).
    recorder : Recorder, optional
        Where the run is stored and reused from, e.g.
        :class:`assyst_nodes.project.ProjectRecorder`. Default: ``None`` (run in memory).
    time_limit : float, optional
        Wall time (s) one structure may take; one that takes longer is dropped with reason
        ``time_limit``. Default: ``None`` (no limit).
    duplicates : Duplicates, optional
        When structures count as one (:class:`~assyst_nodes.stages.duplicates.Duplicates`);
        ``None``: each is labelled. Default: ``Duplicates()``.
    isolated : IsolatedAtoms, optional
        How the isolated atoms are built (:class:`~assyst_nodes.stages.isolated.IsolatedAtoms`);
        ``None``: none. Default: ``IsolatedAtoms()`` (a 12 Å box, spin-polarised).

    Returns
    -------
    structures : list of Atoms
        The labelled structures, in input order, then the isolated atoms.
    report : StageReport
        Structures in and out, dropped by reason (``duplicate`` among them), isolated atoms
        added (flag ``isolated_atom``), seconds (s).

    Raises
    ------
    TypeError
        ``structures`` is not a list of ``Atoms``.
    ImportError
        A calculator path that does not import.
    ValueError
        An invalid ``time_limit``.
    """
    structures = structure_list(structures)  # before a recorder makes a job
    labelling.check_label_settings(duplicates, isolated)
    how = partial(labelling.label, duplicates=duplicates, isolated=isolated)
    compute = partial(
        _fan_out, how, structures, calculator, workers, executor, chunksize, progress, time_limit,
    )
    settings = _with_time_limit(
        {"calculator": calculator, "duplicates": duplicates, "isolated": isolated}, time_limit
    )
    labelled, report = recorded(recorder, "label", settings, [structures], compute)
    return labelled, report


@fr.atomic("structures", "report")
def label_if(
    structures: list[Atoms],
    calculator: CalculatorConfig | None = None,
    workers: int = 1,
    executor: ExecutorLike = None,
    progress: bool | None = None,
    recorder: Recorder | None = None,
    time_limit: float | None = None,
    duplicates: Duplicates | None = Duplicates(),
    isolated: IsolatedAtoms | None = IsolatedAtoms(),
) -> tuple[list[Atoms], StageReport | None]:
    """:func:`label` with ``calculator``, or nothing at all for ``None``.

    Parameters
    ----------
    structures : list of Atoms
        The structures to label.
    calculator : CalculatorConfig, optional
        The reference calculator (e.g. DFT: the reference labels of the training set).
        Default: ``None`` (no labels: no structures and no report).
    workers : int, default 1
        Local worker processes (an int >= 1), or with an ``executor`` the chunks of work that
        run at once; an executor config brings its own. The result is the same for any
        ``workers`` and ``executor``.
    executor : ExecutorLike, optional
        Where the chunks of work run: an executor config (``LocalProcesses``, ``Slurm``; its
        own ``workers`` and ``resubmit`` then apply), ``pyiron_workflow.ExecutorInstructions``
        (built where the stage runs and shut down after it) or a live
        ``concurrent.futures.Executor`` (used as given and left open). Default: ``None``
        (``workers`` local processes).
    progress : bool, optional
        Whether to show a progress bar. Default: ``None`` (only in terminals and notebooks).
    recorder : Recorder, optional
        Where the run is stored and reused from, e.g.
        :class:`assyst_nodes.project.ProjectRecorder`. Default: ``None`` (run in memory).
    time_limit : float, optional
        Wall time (s) one structure may take; one that takes longer is dropped with reason
        ``time_limit``. Default: ``None`` (no limit).
    duplicates : Duplicates, optional
        When structures count as one; ``None``: each is labelled. Default: ``Duplicates()``.
    isolated : IsolatedAtoms, optional
        How the isolated atoms are built; ``None``: none. Default: ``IsolatedAtoms()``.

    Returns
    -------
    structures : list of Atoms
        The labelled structures; empty without a calculator.
    report : StageReport or None
        The labelling's report; ``None`` without a calculator.
    """
    labelled: list[Atoms] = []
    report: StageReport | None = None
    if calculator is not None:
        labelled, report = label(
            structures,
            calculator,
            workers=workers,
            executor=executor,
            progress=progress,
            recorder=recorder,
            time_limit=time_limit,
            duplicates=duplicates,
            isolated=isolated,
        )
    return labelled, report


def _fan_out(
    stage: Callable[..., list[Atoms]],
    structures: list[Atoms],
    how: Any,
    workers: int,
    executor: ExecutorLike,
    chunksize: int | None,
    progress: bool | None,
    time_limit: float | None = None,
    cache: OutcomeCache | None = None,
) -> tuple[list[Atoms], StageReport]:
    """Run ``stage`` (relax or label) with ``how``; ``cache`` (from a recorder) gives the
    outcomes stored before and keeps each computed chunk."""
    report = StageReport()
    workers, resubmit = fan_out_options(executor, workers)
    with open_executor(executor) as live:
        results = stage(
            structures,
            how,
            report=report,
            workers=workers,
            executor=live,
            chunksize=chunksize,
            progress=progress,
            time_limit=time_limit,
            resubmit=resubmit,
            cache=cache,
        )
    return results, report


def _with_time_limit(settings: dict[str, Any], time_limit: float | None) -> dict[str, Any]:
    """``settings`` plus ``time_limit`` (s) if one is set: a limit changes what is dropped, so
    it is part of what a recorder hashes; left out when unset, so job names stay as before.
    Checked here, before a recorder creates a job."""
    time_limit = check_time_limit(time_limit)
    if time_limit is not None:
        settings["time_limit"] = time_limit
    return settings


@fr.atomic("structures", "report")
def perturb(
    structures: list[Atoms],
    perturbations: list[Perturbation] | tuple[Perturbation, ...] | Perturbation,
    filters: FilterBase | None = None,
    retries: int = 10,
    seed: int = 0,
    recorder: Recorder | None = None,
) -> tuple[list[Atoms], StageReport]:
    """Each perturbation applied to each structure, redrawn until ``filters`` keep it.

    A node around :func:`assyst_nodes.stages.perturb.perturb`: at most one result per
    (structure, perturbation) pair, structure-major, then in perturbation order.

    Parameters
    ----------
    structures : list of Atoms
        The structures to perturb; they are not modified.
    perturbations : Perturbation or list or tuple of Perturbation
        The perturbations, each applied separately to every structure (e.g.
        :func:`~assyst_nodes.nodes.configs.perturbations_or_default`).
    filters : FilterBase, optional
        What a result must pass; a rejected pair is drawn again with a fresh stream. Default:
        ``None`` (every result is kept).
    retries : int, default 10
        Attempts per pair in total (>= 1); a pair whose attempts are all rejected is
        reported as ``retries_exhausted``.
    seed : int, default 0
        Base seed; each result records its draw seed in ``info["rng_seed"]``.
    recorder : Recorder, optional
        Where the run is stored and reused from, e.g.
        :class:`assyst_nodes.project.ProjectRecorder`. Default: ``None`` (run in memory).

    Returns
    -------
    structures : list of Atoms
        The perturbed structures.
    report : StageReport
        Pairs in and out, dropped by reason (``retries_exhausted``, ``cannot_apply``), pairs
        flagged ``retried``, seconds (s).

    Raises
    ------
    TypeError
        ``structures`` is not a list of ``Atoms``.
    ValueError
        Two input structures share a uuid.
    """
    settings = {"perturbations": perturbations, "filters": filters, "retries": retries,
                "seed": seed}
    structures = structure_list(structures)  # before a recorder makes a job
    compute = partial(_perturb, structures, settings)
    perturbed, report = recorded(recorder, "perturb", settings, [structures], compute)
    return perturbed, report


def _perturb(
    structures: list[Atoms], settings: dict[str, Any]
) -> tuple[list[Atoms], StageReport]:
    report = StageReport("perturb")
    kwargs = dict(settings)
    kwargs["rng"] = kwargs.pop("seed")
    return core_perturb(structures, report=report, **kwargs), report


@fr.atomic("structures", "report")
def filter_structures(
    structures: list[Atoms],
    filters: FilterBase | None = None,
    recorder: Recorder | None = None,
) -> tuple[list[Atoms], StageReport]:
    """The structures ``filters`` keep, and who rejected the rest.

    A node around :func:`assyst_nodes.stages.filter.filter`; also available as ``filter``.

    Parameters
    ----------
    structures : list of Atoms
        The structures to filter.
    filters : FilterBase, optional
        The filter (e.g. ``DistanceFilter(...) & AspectFilter(...)``). Default: ``None``
        (all structures are kept).
    recorder : Recorder, optional
        Where the run is stored and reused from, e.g.
        :class:`assyst_nodes.project.ProjectRecorder`. Default: ``None`` (run in memory).

    Returns
    -------
    structures : list of Atoms
        The kept structures (the input objects themselves, uuids unchanged), in input order.
    report : StageReport
        Structures in and out, and each rejection with the ``str`` of the filter to blame as
        its reason, so ``report.dropped`` counts rejections per filter.

    Raises
    ------
    TypeError
        ``structures`` is not a list of ``Atoms``.
    """
    structures = structure_list(structures)  # before a recorder makes a job
    compute = partial(_filter, structures, filters)
    kept, report = recorded(recorder, "filter", {"filters": filters}, [structures], compute)
    return kept, report


def _filter(
    structures: list[Atoms], filters: FilterBase | None
) -> tuple[list[Atoms], StageReport]:
    report = StageReport()
    kept = core_filter(structures, [] if filters is None else filters, report=report)
    return kept, report


filter = filter_structures
"""Alias: the filter stage node."""


@fr.atomic("structures")
def combine(
    first: list[Atoms],
    second: list[Atoms] | None = None,
    third: list[Atoms] | None = None,
    fourth: list[Atoms] | None = None,
    recorder: Recorder | None = None,
) -> list[Atoms]:
    """All structures of the given lists in order, each uuid once (first occurrence kept).

    Parameters
    ----------
    first : list of Atoms
        The first structures.
    second, third, fourth : list of Atoms, optional
        Further structures. Default: ``None`` (left out, as is an empty list).
    recorder : Recorder, optional
        Where the run is stored and reused from, e.g.
        :class:`assyst_nodes.project.ProjectRecorder`. Default: ``None`` (run in memory).

    Returns
    -------
    list of Atoms
        The combined structures.
    """
    parts = [part for part in (first, second, third, fourth) if part]
    combined, _ = recorded(recorder, "combine", {}, parts, partial(_combine, parts))
    return combined


def _combine(parts: list[list[Atoms]]) -> tuple[list[Atoms], StageReport]:
    combined = combine_sets(*parts)
    n_in = sum(len(part) for part in parts)
    return combined, StageReport("combine", n_in=n_in, n_out=len(combined))


@fr.atomic("reports")
def gather_reports(
    first: StageReport,
    second: StageReport | None = None,
    third: StageReport | None = None,
    fourth: StageReport | None = None,
    fifth: StageReport | None = None,
    sixth: StageReport | None = None,
) -> list[StageReport]:
    """The given reports as one list (``None`` left out), in order.

    Parameters
    ----------
    first : StageReport
        The first report.
    second, third, fourth, fifth, sixth : StageReport, optional
        Further reports. Default: ``None`` (left out, e.g. a skipped stage's).

    Returns
    -------
    list of StageReport
        The reports that are not ``None``, in argument order.
    """
    parts = (first, second, third, fourth, fifth, sixth)
    return [report for report in parts if report is not None]


@fr.atomic("table")
def report_table(reports: list[StageReport]) -> pd.DataFrame:
    """One row per stage: in, out, dropped (total and by reason), flags, seconds (s).

    Parameters
    ----------
    reports : list of StageReport
        The reports, e.g. from :func:`gather_reports`.

    Returns
    -------
    pandas.DataFrame
        Columns ``stage``, ``in``, ``out``, ``dropped``, ``dropped_by_reason`` (dict of reason
        to count), ``flags`` (dict of remark to count) and ``seconds`` (wall time, s); one row
        per report, in order.
    """
    rows = [
        {
            "stage": report.stage,
            "in": report.n_in,
            "out": report.n_out,
            "dropped": report.n_dropped,
            "dropped_by_reason": report.dropped,
            "flags": dict(report.flags),
            "seconds": report.seconds,
        }
        for report in reports
    ]
    columns = ["stage", "in", "out", "dropped", "dropped_by_reason", "flags", "seconds"]
    return pd.DataFrame(rows, columns=columns)


@fr.atomic("path")
def export(structures: list[Atoms], path: str = "training_set.extxyz") -> str:
    """Write ``structures`` to ``path`` as extended XYZ and return its absolute path.

    The file holds cell, pbc, energy, forces, stress and the provenance keys (see
    :func:`assyst_nodes.io.extxyz.extxyz_ready`).

    Parameters
    ----------
    structures : list of Atoms
        The structures to write.
    path : str, default "training_set.extxyz"
        The file to write (relative to the working directory); its folder must exist.

    Returns
    -------
    str
        The absolute path of the written file.

    Raises
    ------
    FileNotFoundError
        The folder of ``path`` does not exist.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"export: folder {folder!r} of {path!r} does not exist")
    write_extxyz(structures, path)
    return os.path.abspath(path)
