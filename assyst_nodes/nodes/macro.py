"""The canonical ASSYST run as one macro node.

``pwf.node(assyst)`` is a flowrep workflow recipe wiring: formulas -> sample -> volume relax ->
full relax -> perturb -> combine (sampled + both relaxed sets + perturbed) -> filter. Every
knob is a macro input and every intermediate set and report a macro output, so the macro can be
used on its own or as one node of a larger workflow.
"""

from __future__ import annotations

import flowrep as fr
from ase import Atoms

from .. import defaults
from ..calculators import CalculatorConfig
from ..reports import StageReport
from ..stages.duplicates import Duplicates
from ..stages.filter import DistanceFilter, FilterBase
from ..stages.fit import FitResult, FitSettings
from ..stages.isolated import IsolatedAtoms
from ..stages.perturb import Perturbation
from ..stages.relax import Relax
from ..stages.sample import Formulas
from ..stages.split import Split
from ..stages.validate import Suite, Validation
from .configs import (
    RADII_PAIRS,
    assyst_filters,
    executor_or,
    formulas_for,
    perturbations_or_default,
    run_relax_settings,
)
from .executors import ExecutorLike
from .fitting import fit_if, validate_if
from .recording import Recorder
from .stages import (
    combine,
    filter_structures,
    gather_reports,
    label_if,
    perturb,
    relax_if,
    relaxed_or,
    sample,
)

__all__ = ["DEFAULT_RADII_PAIRS", "assyst"]

DEFAULT_RADII_PAIRS: tuple[tuple[str, float], ...] = RADII_PAIRS
"""Radii (Å) of the embedded Cu-Ag example as (element, radius) pairs."""


@fr.workflow
def assyst(
    elements: list[str] | tuple[str, ...] = defaults.ELEMENTS,
    min_atoms: int = defaults.MIN_ATOMS,
    max_atoms: int = defaults.MAX_ATOMS,
    formulas: Formulas | None = None,
    spacegroups: list[int] | tuple[int, ...] | None = None,
    max_structures: int | None = defaults.MAX_STRUCTURES,
    calculator: CalculatorConfig | None = None,
    volume_relax: Relax | None = defaults.VOLUME_RELAX,
    full_relax: Relax | None = defaults.FULL_RELAX,
    perturbations: list[Perturbation] | tuple[Perturbation, ...] | None = None,
    radii: float | dict[str, float] | tuple[tuple[str, float], ...] = RADII_PAIRS,
    max_aspect: float = defaults.MAX_ASPECT,
    retries: int = defaults.RETRIES,
    seed: int = defaults.SEED,
    workers: int = defaults.WORKERS,
    executor: ExecutorLike = None,
    sample_executor: ExecutorLike = None,
    relax_executor: ExecutorLike = None,
    progress: bool | None = None,
    recorder: Recorder | None = None,
    sample_time_limit: float | None = None,
    relax_time_limit: float | None = None,
    label_calculator: CalculatorConfig | None = None,
    label_executor: ExecutorLike = None,
    label_time_limit: float | None = None,
    filters: FilterBase | None = None,
    tolerance: str | float | dict[str, float] | DistanceFilter | None = None,
    duplicates: Duplicates | None = defaults.DUPLICATES,
    isolated_atoms: IsolatedAtoms | None = defaults.ISOLATED_ATOMS,
    fit: FitSettings | None = None,
    fit_split: Split | None = defaults.FIT_SPLIT,
    fit_directory: str = defaults.FIT_DIRECTORY,
    fit_executor: ExecutorLike = None,
    validate: Suite | None = None,
) -> tuple[
    list[Atoms],
    list[Atoms],
    list[Atoms],
    list[Atoms],
    list[Atoms],
    list[Atoms],
    StageReport,
    StageReport | None,
    StageReport | None,
    StageReport,
    StageReport,
    list[StageReport],
    list[Atoms],
    StageReport | None,
    FitResult | None,
    Validation | None,
]:
    """The canonical ASSYST run (see the module docstring); defaults from
    :mod:`assyst_nodes.defaults`.

    formulas -> sample -> volume relax -> full relax -> perturb -> combine (sampled + both
    relaxed sets + perturbed) -> filter, then optionally single-point labels of the training
    set, a potential fitted to them and its validation against the label calculator.
    ``workers`` and the executors never change the result.

    Parameters
    ----------
    elements : list of str or tuple of str, default ("Cu", "Ag")
        The compositions are every mix of these elements (:data:`~assyst_nodes.defaults.ELEMENTS`)
        with ``min_atoms..max_atoms`` atoms.
    min_atoms : int, default 1
        Atoms per cell at least, of the compositions and of the sampled crystals
        (:data:`~assyst_nodes.defaults.MIN_ATOMS`).
    max_atoms : int, default 4
        Atoms per cell at most, of the compositions and of the sampled crystals
        (:data:`~assyst_nodes.defaults.MAX_ATOMS`).
    formulas : Formulas, optional
        Explicit compositions instead of ``elements``, trimmed to the atom window. Default:
        ``None`` (every mix of ``elements``).
    spacegroups : list of int or tuple of int, optional
        Space group numbers to sample. Default: ``None`` (all 230).
    max_structures : int or None, default 30
        Sampled crystals at most (:data:`~assyst_nodes.defaults.MAX_STRUCTURES`); ``None``: no
        cap.
    calculator : CalculatorConfig, optional
        The calculator of both relaxations, unless a setting names another: then it is a
        ``ValueError`` naming both. Default: ``None`` (keep each setting's own; settings that
        name none relax with :data:`~assyst_nodes.defaults.CALCULATOR`, EMT).
    volume_relax : Relax or None, default VolumeRelax()
        The first relaxation, of the sampled crystals
        (:data:`~assyst_nodes.defaults.VOLUME_RELAX`); ``None``: skipped (no output, no
        report).
    full_relax : Relax or None, default FullRelax()
        The second relaxation, of the volume-relaxed crystals (of the sampled ones if the
        first is skipped; :data:`~assyst_nodes.defaults.FULL_RELAX`); ``None``: skipped (no
        output, no report).
    perturbations : list or tuple of Perturbation, optional
        Applied separately to every relaxed structure, each redrawn up to ``retries`` times
        until the filter keeps it. Default: ``None`` (the canonical two, see
        :func:`~assyst_nodes.nodes.configs.perturbations_or_default`).
    radii : float or dict of str to float or tuple of (str, float), default RADII_PAIRS
        Minimum-distance radii (Å; one for every element, or per element as a dict or
        ``(element, radius)`` pairs): a pair closer than r_i + r_j is neither sampled nor
        kept. They bound both the sampling and the final filter. Default: Cu 0.9 Å, Ag 1.0 Å
        (:data:`~assyst_nodes.defaults.RADII`).
    max_aspect : float, default 6.0
        The filter's largest cell aspect ratio (longest over shortest cell height);
        :data:`~assyst_nodes.defaults.MAX_ASPECT`.
    retries : int, default 10
        Draws per (structure, perturbation) pair at most (:data:`~assyst_nodes.defaults.RETRIES`).
    seed : int, default 0
        Base seed of every random choice (:data:`~assyst_nodes.defaults.SEED`).
    workers : int, default 1
        Local processes that fan out sampling, relaxation and labelling
        (:data:`~assyst_nodes.defaults.WORKERS`); the result does not change.
    executor : ExecutorLike, optional
        Where sampling, relaxation and labelling fan out (an executor config such as
        ``LocalProcesses(4)``, ``pyiron_workflow.ExecutorInstructions`` or a live executor).
        Default: ``None`` (``workers`` local processes).
    sample_executor, relax_executor : ExecutorLike, optional
        Send one stage elsewhere, each with its own resources (e.g.
        ``Slurm("cpu", workers=16, run_time=3600)`` for the relaxations and local sampling).
        Default: ``None`` (``executor``).
    progress : bool, optional
        Whether to show progress bars. Default: ``None`` (only in terminals and notebooks).
    recorder : Recorder, optional
        Stores every stage run as a job and reuses finished ones, e.g.
        ``assyst_nodes.project.ProjectRecorder("my_project", "run1")``. Default: ``None``
        (run in memory).
    sample_time_limit : float, optional
        Wall time (s) per grid point of the sampling; a slower point is dropped, reported as
        ``time_limit``. Default: ``None`` (no limit).
    relax_time_limit : float, optional
        Wall time (s) per structure and relaxation; a slower one is dropped, reported as
        ``time_limit``. Default: ``None`` (no limit).
    label_calculator : CalculatorConfig, optional
        The reference calculator (e.g. ``GPAW(...)`` or any other) whose single points label
        the training set: output ``labelled`` with ``label_report``. A structure whose label
        fails (calculator error, SCF not converged) is reported, never labelled. Default:
        ``None`` (no labels: ``labelled`` is empty, ``label_report`` is ``None``).
    label_executor : ExecutorLike, optional
        Where the labels are computed. Default: ``None`` (``executor``).
    label_time_limit : float, optional
        Wall time (s) per structure of the labelling. Default: ``None`` (no limit).
    filters : FilterBase, optional
        Any filter, replacing the one made of ``radii`` and ``max_aspect`` (then unused), for
        the final filter and while perturbing. Default: ``None`` (minimum distances and
        aspect, :func:`assyst_nodes.defaults.canonical_filter`).
    tolerance : str or float or dict of str to float or DistanceFilter, optional
        What bounds the sampling instead (a pyxtal prototype name or radii in Å). Default:
        ``None`` (the ``DistanceFilter`` inside the filter, else pyxtal's ``"metallic"``).
    duplicates : Duplicates or None, default Duplicates()
        With labels: equivalent structures of the training set are labelled once
        (:data:`~assyst_nodes.defaults.DUPLICATES`); ``None``: each is labelled.
    isolated_atoms : IsolatedAtoms or None, default IsolatedAtoms()
        With labels: the isolated atoms labelled beside the training set, the fitting codes'
        reference energies (:data:`~assyst_nodes.defaults.ISOLATED_ATOMS`); ``None``: none.
    fit : FitSettings, optional
        With labels: fit a potential to them (``LinearACE()``, ``PacemakerACE()``, ``MACE()``;
        :func:`~assyst_nodes.nodes.fitting.fit`). Default: ``None`` (no fit).
    fit_split : Split or None, default Split(0.9, 0.1, 0.0)
        The family split of the fit: training and validation part
        (:data:`~assyst_nodes.defaults.FIT_SPLIT`); ``None``: fit all.
    fit_directory : str, default "fit"
        Folder of the potential without a recorder (a recorder's fit job has its own).
    fit_executor : ExecutorLike, optional
        Where the fit runs (e.g. a SLURM GPU partition). Default: ``None``
        (this process).
    validate : Suite, optional
        With a fit: its potential's errors against ``label_calculator`` on this held-out
        suite (:func:`~assyst_nodes.nodes.fitting.validate`). Default: ``None`` (none).

    Returns
    -------
    sampled : list of Atoms
        The sampled crystals.
    volume_relaxed, full_relaxed : list of Atoms
        The results of the two relaxations (empty where skipped).
    perturbed : list of Atoms
        The perturbed relaxed structures.
    combined : list of Atoms
        Sampled, both relaxed sets and perturbed, each structure once.
    training_set : list of Atoms
        The structures of ``combined`` the filter keeps.
    sample_report : StageReport
        The sampling's report.
    volume_report, full_report : StageReport or None
        The relaxations' reports (``None`` where skipped).
    perturb_report, filter_report : StageReport
        The reports of perturbing and filtering.
    reports : list of StageReport
        All reports of the run, in stage order (``None`` left out).
    labelled : list of Atoms
        The single points with ``label_calculator`` of the training set's distinct
        structures, then of the isolated atoms (empty without a calculator).
    label_report : StageReport or None
        The labelling's report (``None`` without ``label_calculator``).
    fitted : FitResult or None
        The fit (``None`` without ``fit`` or labels).
    validation : Validation or None
        The validation (``None`` without ``validate`` or a fit).

    Raises
    ------
    ValueError
        ``calculator`` and a relax setting name different calculators (both are named).
    """
    compositions = formulas_for(elements, min_atoms, max_atoms, formulas)
    sampling_on = executor_or(sample_executor, executor)
    relaxing_on = executor_or(relax_executor, executor)
    bound, chosen_filters = assyst_filters(radii, max_aspect, filters, tolerance)
    sampled, sample_report = sample(
        compositions,
        spacegroups=spacegroups,
        min_atoms=min_atoms,
        max_atoms=max_atoms,
        max_structures=max_structures,
        tolerance=bound,
        seed=seed,
        workers=workers,
        executor=sampling_on,
        progress=progress,
        recorder=recorder,
        time_limit=sample_time_limit,
    )
    volume_settings = run_relax_settings(volume_relax, calculator)
    volume_relaxed, volume_report = relax_if(
        sampled,
        volume_settings,
        workers=workers,
        executor=relaxing_on,
        progress=progress,
        recorder=recorder,
        time_limit=relax_time_limit,
    )
    full_input = relaxed_or(sampled, volume_relaxed, volume_settings)
    full_settings = run_relax_settings(full_relax, calculator)
    full_relaxed, full_report = relax_if(
        full_input,
        full_settings,
        workers=workers,
        executor=relaxing_on,
        progress=progress,
        recorder=recorder,
        time_limit=relax_time_limit,
    )
    relaxed = combine(volume_relaxed, full_relaxed, recorder=recorder)
    chosen_perturbations = perturbations_or_default(perturbations)
    perturbed, perturb_report = perturb(
        relaxed,
        chosen_perturbations,
        filters=chosen_filters,
        retries=retries,
        seed=seed,
        recorder=recorder,
    )
    combined = combine(sampled, volume_relaxed, full_relaxed, perturbed, recorder=recorder)
    training_set, filter_report = filter_structures(combined, chosen_filters, recorder=recorder)
    labelling_on = executor_or(label_executor, executor)
    labelled, label_report = label_if(
        training_set,
        label_calculator,
        workers=workers,
        executor=labelling_on,
        progress=progress,
        recorder=recorder,
        time_limit=label_time_limit,
        duplicates=duplicates,
        isolated=isolated_atoms,
    )
    reports = gather_reports(
        sample_report, volume_report, full_report, perturb_report, filter_report, label_report
    )
    fitted = fit_if(
        labelled, fit, fit_split, fit_directory, recorder=recorder, executor=fit_executor
    )
    validation = validate_if(fitted, label_calculator, validate, recorder=recorder)
    return (
        sampled,
        volume_relaxed,
        full_relaxed,
        perturbed,
        combined,
        training_set,
        sample_report,
        volume_report,
        full_report,
        perturb_report,
        filter_report,
        reports,
        labelled,
        label_report,
        fitted,
        validation,
    )
