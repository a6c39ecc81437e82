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
from ..stages.filter import DistanceFilter, FilterBase
from ..stages.perturb import Perturbation
from ..stages.relax import Relax
from ..stages.sample import Formulas
from .configs import (
    RADII_PAIRS,
    assyst_filters,
    executor_or,
    formulas_for,
    perturbations_or_default,
    run_relax_settings,
)
from .executors import ExecutorLike
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
]:
    """The canonical ASSYST run (see the module docstring); defaults from
    :mod:`assyst_nodes.defaults`.

    - compositions: every mix of ``elements`` with ``min_atoms..max_atoms`` atoms, or the
      given ``formulas`` trimmed to that window;
    - ``radii`` (Å) bound both the sampling and the final filter (with ``max_aspect``);
      ``filters`` (any filter) replaces that filter, and ``tolerance`` the sampling bound
      (``None``: the ``DistanceFilter`` inside the filter, else pyxtal's ``"metallic"``);
    - ``volume_relax`` then ``full_relax`` (either ``None``: skipped, no output, no report);
      ``calculator`` relaxes with both unless a setting names another (then it is a
      ``ValueError`` naming both); ``None`` keeps each setting's own, and settings that name
      none relax with :data:`~assyst_nodes.defaults.CALCULATOR` (EMT);
    - ``perturbations`` (``None``: the canonical two, see :func:`perturbations_or_default`)
      are applied to every relaxed structure, redrawn up to ``retries`` times;
    - ``seed`` is the base seed of every random choice; ``workers``/``executor`` fan out
      sampling and relaxation without changing the result; ``sample_executor`` and
      ``relax_executor`` (e.g. ``Slurm("cpu", workers=16, run_time=3600)``) send one stage
      elsewhere, each with its own resources (``None``: ``executor``);
    - ``recorder`` (e.g. ``assyst_nodes.project.ProjectRecorder("my_project", "run1")``)
      stores every stage run as a job and reuses finished ones; ``None`` runs in memory;
    - ``sample_time_limit`` (s per grid point) and ``relax_time_limit`` (s per structure and
      relaxation) drop what takes longer, reported as ``time_limit``; ``None``: no limit;
    - ``label_calculator`` (e.g. ``GPAW(...)`` or any reference): single points of the
      training set, output ``labelled`` with ``label_report``, run on ``label_executor`` (or
      ``executor``) with ``label_time_limit`` (s per structure); a structure whose label fails
      (calculator error, SCF not converged) is reported, never labelled. ``None``: no labels
      (``labelled`` is empty, ``label_report`` is ``None``).
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
    )
    reports = gather_reports(
        sample_report, volume_report, full_report, perturb_report, filter_report, label_report
    )
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
    )
