"""Validations as pyiron jobs: :func:`validate_in_project` compares a calculator (e.g. a fitted
potential, :func:`~assyst_nodes.project.fitting.potential_of`) with a reference calculator on a
validation suite, in one :class:`~assyst_nodes.project.jobs.AssystValidate` job.

The expensive part, the suite labelled with the reference calculator
(:func:`~assyst_nodes.stages.validate.reference_suite`), is one
:class:`~assyst_nodes.project.jobs.AssystSuite` job per suite and reference
(:func:`suite_reference_in_project`), shared by every validation against it. Both jobs are named
by a hash of what they compute (``suite_<12 hex>``, ``validate_<12 hex>``) and reused when
finished, redone when not, under the same per-job lock as the stage jobs
(:mod:`assyst_nodes.project.fitting` says how). A calculator is keyed by its config's fields; a
fitted potential by its digest (sha256 of the file), not its path, so a validation of a copied
or unpacked fit job's potential is the same validation.

>>> validate_in_project("study", potential_of("fit_ab12...", "study"), EMT(), Suite(("Cu",)))
...                                                                  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import dataclasses
import json
import pickle
import warnings
from pathlib import Path
from time import perf_counter
from typing import Any

from ..calculators import CalculatorConfig
from ..provenance import _version, computed_with
from ..stages import validate as validate_stage
from ..stages.validate import Suite, SuiteReference, Validation
from .database import project_folder, pyiron_lock, quiet
from .fitting import resolve_project
from .job_slots import _discard, _locked, _row, job_name
from .jobs import AssystResult, AssystSuite, AssystValidate, pickled_settings, versions_text
from .layout import USABLE_STATUSES, DamagedJobError

__all__ = ["calculator_key", "suite_reference_in_project", "validate_in_project"]

VALIDATE_PACKAGES: tuple[str, ...] = ("phonopy", "scipy")
"""Distributions the suite's calculations use besides the calculators' own."""


def calculator_key(calculator: CalculatorConfig) -> str:
    """The text a calculator is known by in a job's name and input: ``Class(field=value, ...)``
    of its config's fields, a fitted potential's ``path`` left out (its ``digest``, the file's
    sha256, says which potential it is, wherever the file is now).

    Parameters
    ----------
    calculator : CalculatorConfig
        A calculator config (``EMT()``, ``ACEPotential(...)``, ...).

    Returns
    -------
    str
        E.g. ``EMT()``, ``ACEPotential(reference_energies=(('Cu', -0.1),), digest='89...')``.

    Raises
    ------
    TypeError
        ``calculator`` is no calculator config (a live ASE calculator has no key that says
        which calculator it is: give its config).
    """
    if not isinstance(calculator, CalculatorConfig):
        raise TypeError(
            "a project keys a validation by calculator configs (EMT(), ACEPotential(...), "
            f"potential_of(job)), got {type(calculator).__name__}; give its config"
        )
    if not dataclasses.is_dataclass(calculator):
        return repr(calculator)
    fields = [f.name for f in dataclasses.fields(calculator)]
    fitted = "digest" in fields and "path" in fields
    parts = [
        f"{name}={getattr(calculator, name)!r}"
        for name in fields
        if not (fitted and name == "path")
    ]
    return f"{type(calculator).__name__}({', '.join(parts)})"


def _versions(calculators: dict[str, CalculatorConfig]) -> dict[str, str]:
    versions = computed_with("validate", calculators)
    versions.update({name: _version(name) for name in VALIDATE_PACKAGES})
    return dict(sorted(versions.items()))


def _reused(project: Any, folder: Path, name: str, read: Any) -> Any:
    """``read(job)`` of the finished job ``name`` (None if there is none, or it cannot be
    read: then with a warning)."""
    row = _row(project, name)
    if row is None or row["status"] not in USABLE_STATUSES:
        return None
    try:
        return read(project.load(name))
    except (DamagedJobError, pickle.UnpicklingError, KeyError, ValueError) as error:
        warnings.warn(
            f"stored job {name} in {folder} cannot be read ({error}); computing it again",
            RuntimeWarning, stacklevel=4,
        )
        return None


def _create(project: Any, folder: Path, cls: type[AssystResult], name: str,
            values: dict[str, str]) -> AssystResult:
    """Remove whatever is left of job ``name`` and make it anew with ``values``, running."""
    _discard(project, folder, name, _row(project, name))
    job = project.create_job(cls, name)
    job.input.update(values)
    with quiet():
        job.save()
    job._set_status("running", file=False)
    return job


def _read_reference(job: AssystResult) -> SuiteReference:
    blob = job.output_text("reference_pickle")
    if not blob:
        raise DamagedJobError(job.job_name, job.h5_file, KeyError("output/reference_pickle"))
    reference = pickle.loads(base64.b64decode(blob))
    if not isinstance(reference, SuiteReference):
        raise DamagedJobError(job.job_name, job.h5_file, TypeError(type(reference).__name__))
    return reference


def suite_reference_in_project(
    project: Any, suite: Suite, reference_calculator: CalculatorConfig
) -> SuiteReference:
    """The suite labelled with the reference calculator, from its
    :class:`~assyst_nodes.project.jobs.AssystSuite` job (computed into it on first use).

    Parameters
    ----------
    project : str, os.PathLike or object
        A folder, a pyiron ``Project`` (any group), a ``BoundProject`` or a
        ``ProjectRecorder``.
    suite : Suite
        What the suite holds.
    reference_calculator : CalculatorConfig
        The reference (``EMT()``, a DFT config, ...).

    Returns
    -------
    SuiteReference
        As :func:`~assyst_nodes.stages.validate.reference_suite` gives it.
    """
    return _suite_reference(project, suite, reference_calculator)[0]


def _suite_reference(
    project: Any, suite: Suite, reference_calculator: CalculatorConfig
) -> tuple[SuiteReference, str]:
    if not isinstance(suite, Suite):
        raise TypeError(f"suite must be a Suite(...), got {type(suite).__name__}")
    key = {"reference": calculator_key(reference_calculator), "suite": suite}
    versions = _versions({"reference": reference_calculator})
    name = job_name("suite", key, [], versions)
    folder = project_folder(resolve_project(project).path)
    with _locked(folder, name):
        with pyiron_lock:
            bound = resolve_project(project)
            found = _reused(bound, folder, name, _read_reference)
            if found is not None:
                return found, name
            job = _create(bound, folder, AssystSuite, name, {
                "reference": key["reference"],
                "suite": str(suite),
                "suite_pickle": pickled_settings({"suite": suite}),
                "computed_with": json.dumps(versions, sort_keys=True),
                "versions": versions_text(versions),
            })
        start = perf_counter()
        try:
            reference = validate_stage.reference_suite(suite, reference_calculator)
            job.store_result(
                {
                    "reference_pickle": base64.b64encode(pickle.dumps(reference)).decode(),
                    "result": json.dumps({"summary": str(reference),
                                          "failures": [list(f) for f in reference.failures]}),
                },
                [], perf_counter() - start,
            )
        except BaseException:
            job.mark_aborted()
            raise
    return reference, name


def _read_validation(job: AssystResult) -> Validation:
    text = job.output_text("result")
    if not text:
        raise DamagedJobError(job.job_name, job.h5_file, KeyError("output/result"))
    job.result_files()  # the figures where the job is now
    return Validation.from_dict(json.loads(text))


def validate_in_project(
    project: Any,
    calculator: CalculatorConfig,
    reference_calculator: CalculatorConfig,
    suite: Suite,
) -> Validation:
    """Validate ``calculator`` against ``reference_calculator`` on ``suite`` in one
    :class:`~assyst_nodes.project.jobs.AssystValidate` job of ``project``, or return the
    result of the finished job of an equal validation (nothing computed).

    Parameters
    ----------
    project : str, os.PathLike or object
        A folder, a pyiron ``Project`` (any group), a ``BoundProject`` or a
        ``ProjectRecorder``.
    calculator : CalculatorConfig
        The calculator under test, e.g. a fitted potential
        (:func:`~assyst_nodes.project.fitting.potential_of`).
    reference_calculator : CalculatorConfig
        The reference; the suite labelled with it is computed once per suite and reference
        (:func:`suite_reference_in_project`).
    suite : Suite
        What the suite holds.

    Returns
    -------
    Validation
        As :func:`~assyst_nodes.stages.validate.validate` gives it (errors in meV/atom and
        meV/Å, properties in the units of :data:`~assyst_nodes.stages.validate.result.UNITS`). The
        figures (PNG) are in the job's working directory.

    Raises
    ------
    TypeError
        A calculator that is no config, or ``suite`` no ``Suite``.
    Exception
        Whatever the validation raises (the job is then ``aborted`` and computed again by the
        next call).
    """
    return _validate_in_project(project, calculator, reference_calculator, suite)[0]


def _validate_in_project(
    project: Any,
    calculator: CalculatorConfig,
    reference_calculator: CalculatorConfig,
    suite: Suite,
) -> tuple[Validation, list[str]]:
    """:func:`validate_in_project`, and the names of the suite job and the validation job."""
    key = {
        "calculator": calculator_key(calculator),
        "reference": calculator_key(reference_calculator),
        "suite": suite,
    }
    reference, suite_job = _suite_reference(project, suite, reference_calculator)
    versions = _versions({"calculator": calculator, "reference": reference_calculator})
    name = job_name("validate", key, [], versions)
    folder = project_folder(resolve_project(project).path)
    with _locked(folder, name):
        with pyiron_lock:
            bound = resolve_project(project)
            found = _reused(bound, folder, name, _read_validation)
            if found is not None:
                return found, [suite_job, name]
            job = _create(bound, folder, AssystValidate, name, {
                "calculator": key["calculator"],
                "calculator_text": str(calculator),
                "digest": str(getattr(calculator, "digest", "")),
                "reference": key["reference"],
                "suite": str(suite),
                "suite_pickle": pickled_settings({"suite": suite}),
                "suite_job": suite_job,
                "computed_with": json.dumps(versions, sort_keys=True),
                "versions": versions_text(versions),
            })
        start = perf_counter()
        try:
            validation = validate_stage.validate(calculator, reference)
            figures = _figures(validation, Path(job.working_directory))
            job.store_result(
                {"result": json.dumps(validation.to_dict()),
                 "summary": json.dumps(validation.summary())},
                figures, perf_counter() - start,
            )
        except BaseException:
            job.mark_aborted()
            raise
    return validation, [suite_job, name]


def _figures(validation: Validation, folder: Path) -> list[Path]:
    """The validation's figures written into ``folder`` (none where the plotting module is
    missing)."""
    try:
        from ..plot.validation import save_validation_figures
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        return []
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(p) for p in save_validation_figures(validation, folder)]
