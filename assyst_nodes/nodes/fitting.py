"""Nodes of the fit and validate stages: a potential from the labelled set, and its errors on a
held-out suite against the reference calculator.

``fit_if`` and ``validate_if`` are the optional tails of the macro (nothing happens for
``None`` settings); ``fit`` and ``validate`` are the plain nodes. With a recorder that can
store them (:class:`assyst_nodes.project.ProjectRecorder`: ``record_fit``,
``record_validation``), each is a job of the project, reused when nothing changed.
"""

from __future__ import annotations

from pathlib import Path

import flowrep as fr
from ase import Atoms

from .. import defaults
from ..calculators import CalculatorConfig
from ..stages import fit as fitting
from ..stages.fit import FitResult, FitSettings, LinearACE
from ..stages.fit.base import require_settings
from ..stages.split import Split
from ..stages.split import split as split_families
from ..stages.validate import Suite, Validation, reference_suite
from ..stages.validate import validate as core_validate
from ..validation import structure_list
from .executors import ExecutorLike, open_executor
from .recording import Recorder

__all__ = ["fit", "fit_if", "validate", "validate_if"]


def _check_recorder(recorder: object, method: str) -> None:
    if recorder is not None and not callable(getattr(recorder, method, None)):
        raise TypeError(
            f"recorder must have a {method}(...) method (e.g. "
            f"assyst_nodes.project.ProjectRecorder('my_project')) or be None, got {recorder!r}"
        )


@fr.atomic("result")
def fit(
    structures: list[Atoms],
    settings: FitSettings = LinearACE(),
    split: Split | None = defaults.FIT_SPLIT,
    directory: str = defaults.FIT_DIRECTORY,
    recorder: Recorder | None = None,
    executor: ExecutorLike = None,
) -> FitResult:
    """A potential fitted to labelled structures, with its errors on a held-out family split.

    A node around :func:`assyst_nodes.stages.fit.fit`: the labelled set (isolated atoms among
    it) is split by family (:func:`~assyst_nodes.stages.split.split`; the training part is
    fitted, the validation part's errors are reported; the test part is left out of both),
    then fitted with ``settings``.

    Parameters
    ----------
    structures : list of Atoms
        Labelled structures (the label stage's output).
    settings : FitSettings, default LinearACE()
        The fitting code and its settings (``LinearACE``, ``PacemakerACE``, ``MACE``).
    split : Split or None, default Split(0.9, 0.1, 0.0)
        The family split; ``None``: fit all, no validation errors.
    directory : str, default "fit"
        Folder of the potential file and the code's logs (without a recorder; a recorder's
        fit job uses its own working directory, which ``executor`` must share).
    recorder : Recorder, optional
        Where the fit is stored as a job and reused from (a recorder with ``record_fit``,
        e.g. :class:`assyst_nodes.project.ProjectRecorder`). Default: ``None``.
    executor : ExecutorLike, optional
        Where the fit runs, e.g. ``Slurm("gpu", gpus=1, ...)`` for MACE: one task. Default:
        ``None`` (this process).

    Returns
    -------
    FitResult
        The potential (a calculator config), its errors (meV/atom, meV/Å), the files.

    Raises
    ------
    TypeError
        ``settings`` is not a fitting config, or ``recorder`` cannot record fits.
    """
    structures = structure_list(structures)
    require_settings(settings)
    _check_recorder(recorder, "record_fit")
    parts = (
        {"train": structures, "validation": []}
        if split is None
        else split_families(structures, split)
    )
    with open_executor(executor) as live:
        if recorder is not None:
            return recorder.record_fit(  # type: ignore[attr-defined]
                parts["train"], settings, validation=parts["validation"], executor=live
            )
        if live is None:
            return fitting.fit(
                parts["train"], settings, Path(directory), validation=parts["validation"]
            )
        return live.submit(
            fitting.fit,
            parts["train"],
            settings,
            str(Path(directory).absolute()),
            parts["validation"],
        ).result()


@fr.atomic("result")
def fit_if(
    structures: list[Atoms],
    settings: FitSettings | None = None,
    split: Split | None = defaults.FIT_SPLIT,
    directory: str = defaults.FIT_DIRECTORY,
    recorder: Recorder | None = None,
    executor: ExecutorLike = None,
) -> FitResult | None:
    """:func:`fit` with ``settings``; nothing for ``None`` or without labelled structures.

    Parameters
    ----------
    structures : list of Atoms
        Labelled structures (empty: nothing to fit, ``None`` is returned).
    settings : FitSettings, optional
        The fitting code; ``None``: no fit.
    split : Split or None, default Split(0.9, 0.1, 0.0)
        The family split (:func:`fit`).
    directory : str, default "fit"
        Folder of the potential without a recorder.
    recorder : Recorder, optional
        Where the fit is stored as a job. Default: ``None``.
    executor : ExecutorLike, optional
        Where the fit runs without a recorder. Default: ``None``.

    Returns
    -------
    FitResult or None
        The fit; ``None`` without settings or structures.
    """
    if settings is None or not structures:
        return None
    return fit(structures, settings, split, directory, recorder, executor)


@fr.atomic("validation")
def validate(
    calculator: CalculatorConfig,
    reference: CalculatorConfig,
    suite: Suite,
    recorder: Recorder | None = None,
) -> Validation:
    """The errors of ``calculator`` against ``reference`` on the held-out ``suite``.

    A node around :func:`assyst_nodes.stages.validate.validate`: E-V curves of the phases
    and compounds, elastic constants, phonons, a vacancy and MD snapshots, each computed with
    both calculators.

    Parameters
    ----------
    calculator : CalculatorConfig
        The calculator under test, e.g. a fit's ``potential``.
    reference : CalculatorConfig
        The reference calculator (the label stage's).
    suite : Suite
        What is computed.
    recorder : Recorder, optional
        Where the validation (and the reference's suite, once per suite and reference) is
        stored as a job and reused from (a recorder with ``record_validation``). Default:
        ``None``.

    Returns
    -------
    Validation
        Errors per group (meV/atom, meV/Å), property errors, and the data of the figures.
    """
    _check_recorder(recorder, "record_validation")
    if recorder is not None:
        return recorder.record_validation(calculator, reference, suite)  # type: ignore[attr-defined]
    return core_validate(calculator, reference_suite(suite, reference))


@fr.atomic("validation")
def validate_if(
    fitted: FitResult | None,
    reference: CalculatorConfig | None,
    suite: Suite | None = None,
    recorder: Recorder | None = None,
) -> Validation | None:
    """:func:`validate` of a fit's potential; nothing without a fit, reference or suite.

    Parameters
    ----------
    fitted : FitResult or None
        The fit (:func:`fit_if`'s output).
    reference : CalculatorConfig or None
        The reference calculator (the label calculator).
    suite : Suite, optional
        What is computed; ``None``: no validation.
    recorder : Recorder, optional
        As for :func:`validate`.

    Returns
    -------
    Validation or None
        The validation; ``None`` when one of the inputs is ``None``.
    """
    if fitted is None or reference is None or suite is None:
        return None
    return validate(fitted.potential, reference, suite, recorder)
