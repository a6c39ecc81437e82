"""Fits as pyiron jobs: :func:`fit_in_project` fits a potential into a job of the project (or
reuses the job of an equal fit), :func:`potential_of` gives a fit job's potential where the job
is now.

One fit is one :class:`~assyst_nodes.project.jobs.AssystFit` job named ``fit_<12 hex>``, a hash
of the fitting config, the reference energies, the versions of what fits (this package, the
fitting code) and the uuids of the training and validation structures (the geometry's digest
where one has no uuid), as :func:`~assyst_nodes.project.recorder.job_name` names stage jobs.
So a second call with equal settings and input finds the job and returns its result without
fitting; a job that is not ``finished`` (a fit that raised, or a process killed while fitting)
is removed and fitted again under the same name. While a fit job is looked up, fitted and
stored, the same per-job lock as a stage job's is held (``<folder>/.locks/<name>.lock``): two
processes asking for one fit wait for each other, and the second reuses the first's.

The fit runs in the job's working directory (``<folder>/<name>_hdf5/<name>/``); its files (the
potential file first, then the code's logs and inputs) are also stored in the job's HDF5 file,
so they travel with every pyiron operation (``copy_to``, ``move_to``, ``pack``/``unpack``, also
of ``.h5`` files only) and are written back into the working directory where they are missing.
The potential's path is always that of the job's own file where the job is now; its sha256
(the config's ``digest``) is the same wherever the job goes, so it is the same potential.
Removing the label jobs a fit used does not touch it.

>>> result = fit_in_project("study", labelled, LinearACE())          # doctest: +SKIP
>>> potential_of(result_job_name, "study")                          # doctest: +SKIP
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import pickle
import posixpath
import warnings
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path
from time import perf_counter
from typing import Any

from ase import Atoms

from ..calculators import CalculatorConfig
from ..calculators.fitted import file_digest
from ..provenance import _distribution_of, _version, computed_with
from ..stages import fit as fit_stage
from ..stages.fit import FitResult, FitSettings
from ..stages.fit.base import require_settings
from .binding import BoundProject
from .database import project_folder, pyiron_lock, quiet
from .job_slots import _discard, _identities, _locked, _row, _uuids, job_name
from .jobs import AssystFit, pickled_settings, settings_repr, versions_text
from .layout import USABLE_STATUSES, DamagedJobError
from .operations import open_project

__all__ = ["fit_in_project", "fit_job_name", "fit_result_of", "potential_of"]

FIT_CODE_MODULES: dict[str, str] = {"linear_ace": "pyace", "pacemaker": "pyace", "mace": "mace"}
"""The top-level module of each fitting code (its distribution's version keys the fit)."""


def resolve_project(project: Any) -> BoundProject:
    """The bound pyiron project of ``project``: a folder, a pyiron ``Project`` (any group), a
    :class:`~assyst_nodes.project.binding.BoundProject` or a
    :class:`~assyst_nodes.project.recorder.ProjectRecorder` (its database choice kept)."""
    if callable(getattr(project, "record_fit", None)) and callable(
        getattr(project, "project", None)
    ):  # a ProjectRecorder (not imported: it imports this module)
        return project.project()
    return open_project(project)


def fit_versions(settings: FitSettings) -> dict[str, str]:
    """The versions of what computes a fit with ``settings``: this package and its base
    (:func:`~assyst_nodes.provenance.computed_with`) and the fitting code's distribution."""
    versions = computed_with("fit", {})
    module = FIT_CODE_MODULES.get(str(settings.code))
    if module is not None:
        name = _distribution_of(module)
        versions[name] = _version(name)
    return dict(sorted(versions.items()))


def _fit_settings(
    settings: FitSettings, reference_energies: Mapping[str, float] | None
) -> dict[str, Any]:
    """The settings a fit job is named by and stores (reference energies as sorted pairs)."""
    energies = None if reference_energies is None else tuple(
        sorted((str(k), float(v)) for k, v in dict(reference_energies).items())
    )
    return {"settings": settings, "reference_energies": energies}


def fit_job_name(
    structures: Sequence[Atoms],
    settings: FitSettings,
    validation: Sequence[Atoms] = (),
    reference_energies: Mapping[str, float] | None = None,
) -> str:
    """The name of the fit job of these inputs: ``fit_<12 hex>``.

    Parameters
    ----------
    structures : sequence of ase.Atoms
        The training structures, in order.
    settings : FitSettings
        The fitting config.
    validation : sequence of ase.Atoms, optional
        The validation structures, in order. Default: none.
    reference_energies : mapping of str to float, optional
        The isolated atoms' energies (eV). Default: none (taken from the training set).

    Returns
    -------
    str
        ``fit_`` and 12 hex digits of the hash of settings, reference energies, versions
        (:func:`fit_versions`) and the uuids of the structures.
    """
    return job_name(
        "fit", _fit_settings(settings, reference_energies), [list(structures), list(validation)],
        fit_versions(settings),
    )


def _producers(project: BoundProject, uuids: Sequence[str]) -> list[str]:
    """The stage jobs (of the project and its sub-projects, by name relative to its folder)
    that made the structures ``uuids``, in the order of their first structure; uuids no
    stored job holds are left out."""
    from .queries import _point_query, _rows

    wanted = [u for u in uuids if u]
    if not wanted:
        return []
    try:
        _, rows = _point_query(project, True, lambda jobs: _rows(jobs, None, None, None, wanted))
    except DamagedJobError as error:
        warnings.warn(
            f"the jobs that made the fit's structures are not listed: {error}",
            RuntimeWarning, stacklevel=3,
        )
        return []
    here = os.fspath(project.path)
    names = [
        posixpath.join(Path(os.path.relpath(folder, here)).as_posix(), str(name))
        for _, folder, name, *_ in rows
    ]
    return [posixpath.normpath(n) for n in dict.fromkeys(names)]


def fit_in_project(
    project: Any,
    structures: Iterable[Atoms],
    settings: FitSettings,
    validation: Iterable[Atoms] = (),
    reference_energies: Mapping[str, float] | None = None,
    executor: Executor | None = None,
) -> FitResult:
    """Fit a potential into one :class:`~assyst_nodes.project.jobs.AssystFit` job of
    ``project``, or return the result of the finished job of an equal fit (nothing fitted).

    Parameters
    ----------
    project : str, os.PathLike or object
        A folder, a pyiron ``Project`` (any group), a
        :class:`~assyst_nodes.project.binding.BoundProject` or a
        :class:`~assyst_nodes.project.recorder.ProjectRecorder`.
    structures : iterable of ase.Atoms
        Labelled training structures (with the isolated atoms), as
        :func:`~assyst_nodes.stages.fit.fit` takes them.
    settings : FitSettings
        The fitting config (``LinearACE()``, ``PacemakerACE()``, ``MACE()``).
    validation : iterable of ase.Atoms, optional
        Labelled structures held out from the fit. Default: none.
    reference_energies : mapping of str to float, optional
        The isolated atoms' energies (eV). Default: those among ``structures``.
    executor : concurrent.futures.Executor, optional
        Where the fit itself runs, as one task (e.g. a SLURM job on a GPU partition: the
        job's working directory must be on a file system it shares). Default: ``None``, this
        process.

    Returns
    -------
    FitResult
        As :func:`~assyst_nodes.stages.fit.fit` gives it, with the potential and files where
        the job is now (see :func:`fit_result_of`).

    Raises
    ------
    TypeError
        ``settings`` is not a fitting config.
    Exception
        Whatever the fit raises (the job is then ``aborted``, and fitted again by the next
        call).
    """
    return _fit_in_project(
        project, structures, settings, validation, reference_energies, executor
    )[0]


def _fit_in_project(
    project: Any,
    structures: Iterable[Atoms],
    settings: FitSettings,
    validation: Iterable[Atoms] = (),
    reference_energies: Mapping[str, float] | None = None,
    executor: Executor | None = None,
) -> tuple[FitResult, str]:
    """:func:`fit_in_project`, and the name of the job."""
    require_settings(settings)
    training, held_out = list(structures), list(validation)
    stored_settings = _fit_settings(settings, reference_energies)
    pickled = pickled_settings(stored_settings)  # refused now if it could not be loaded again
    versions = fit_versions(settings)
    bound = resolve_project(project)
    folder = project_folder(bound.path)
    name = job_name("fit", stored_settings, [training, held_out], versions)
    with _locked(folder, name):
        with pyiron_lock:
            project = resolve_project(project)
            row = _row(project, name)
            if row is not None and row["status"] in USABLE_STATUSES:
                try:
                    return fit_result_of(project.load(name)), name
                except DamagedJobError as error:
                    warnings.warn(
                        f"stored fit {name} in {folder} cannot be read ({error}); fitting again",
                        RuntimeWarning, stacklevel=3,
                    )
            producers = [_producers(project, _uuids(s)) for s in (training, held_out)]
            _discard(project, folder, name, row)
            job = project.create_job(AssystFit, name)
            job.input.update(
                settings=settings_repr(stored_settings),
                settings_pickle=pickled,
                computed_with=json.dumps(versions, sort_keys=True),
                versions=versions_text(versions),
                input_jobs=json.dumps(producers),
            )
            with quiet():
                job.save(input_uuids=[_identities(training), _identities(held_out)])
            job._set_status("running", file=False)
        start = perf_counter()
        try:
            arguments = (
                training, settings, str(job.working_directory), held_out, reference_energies
            )
            result = (
                fit_stage.fit(*arguments)
                if executor is None
                else executor.submit(fit_stage.fit, *arguments).result()
            )
            potential_path = Path(str(getattr(result.potential, "path", "")))
            files = [Path(f) for f in result.files]
            if potential_path not in files:  # the potential file first, whatever the code says
                files.insert(0, potential_path)
            files = [f for f in dict.fromkeys(files) if f.is_file()]
            record = result.to_dict()
            record["files"] = [_relative(f, job.working_directory) for f in files]
            values = {
                "result": json.dumps(record, sort_keys=True),
                "potential_pickle": base64.b64encode(pickle.dumps(result.potential)).decode(),
                "potential_digest": str(getattr(result.potential, "digest", "")),
            }
            job.store_result(values, files, perf_counter() - start)
        except BaseException:
            job.mark_aborted()
            raise
    with pyiron_lock:
        return fit_result_of(resolve_project(bound).load(name)), name


def _relative(path: Path, folder: str | os.PathLike[str]) -> str:
    """``path`` relative to ``folder`` (its name where it is elsewhere)."""
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return path.name


def _fit_job(job_or_name: Any, project: Any = None) -> AssystFit:
    """The fit job ``job_or_name`` (a loaded job, its name or id in ``project``)."""
    if isinstance(job_or_name, AssystFit):
        return job_or_name
    if project is None:
        raise TypeError(f"give the project of fit job {job_or_name!r} (project=...)")
    with pyiron_lock:
        job = resolve_project(project).load(job_or_name)
    if job is None:
        raise KeyError(f"no job {job_or_name!r} in project {getattr(project, 'path', project)}")
    if not isinstance(job, AssystFit):
        raise TypeError(f"job {job_or_name!r} is a {type(job).__name__}, not an AssystFit")
    return job


def potential_of(job_or_name: Any, project: Any = None) -> CalculatorConfig:
    """The fitted potential of a fit job, as a calculator config whose path is the job's own
    potential file where the job is now (written there again from the job's file if it is
    missing or changed).

    Parameters
    ----------
    job_or_name : AssystFit, str or int
        A loaded fit job, or its name or id in ``project``.
    project : str, os.PathLike or object, optional
        The project of the job (a folder, a pyiron ``Project``, a ``ProjectRecorder``); needed
        with a name or an id.

    Returns
    -------
    CalculatorConfig
        The config the fit made (:class:`~assyst_nodes.calculators.fitted.ACEPotential` or
        :class:`~assyst_nodes.calculators.fitted.MACEPotential`), with the same digest.

    Raises
    ------
    KeyError
        No such job.
    TypeError
        The job is no fit job, or a name was given without a project.
    ValueError
        The fit job is not finished.
    DamagedJobError
        The job's file cannot be read, or the potential it holds is not the one fitted.
    """
    job = _fit_job(job_or_name, project)
    return _potential(job)[0]


def _potential(job: AssystFit) -> tuple[CalculatorConfig, list[Path]]:
    """The potential of ``job`` at its current path, and the job's files."""
    status = str(job.status)
    if status not in USABLE_STATUSES:
        raise ValueError(f"fit job {job.job_name} is {status}, not finished: it has no potential")
    blob = job.output_text("potential_pickle")
    if not blob:
        raise DamagedJobError(job.job_name, job.h5_file, KeyError("output/potential_pickle"))
    made = pickle.loads(base64.b64decode(blob))
    files = job.result_files()
    if not files:
        raise DamagedJobError(job.job_name, job.h5_file, KeyError("output/files"))
    path = files[0]
    digest = str(getattr(made, "digest", ""))
    if digest and file_digest(path) != digest:
        raise DamagedJobError(
            job.job_name, job.h5_file,
            ValueError(f"the stored potential file is not the one fitted (sha256 {digest[:12]})"),
        )
    return dataclasses.replace(made, path=str(path)), files


def fit_result_of(job_or_name: Any, project: Any = None) -> FitResult:
    """The :class:`~assyst_nodes.stages.fit.FitResult` a fit job holds, its potential and
    files where the job is now.

    Parameters
    ----------
    job_or_name : AssystFit, str or int
        A loaded fit job, or its name or id in ``project``.
    project : str, os.PathLike or object, optional
        The project of the job; needed with a name or an id.

    Returns
    -------
    FitResult
        The potential (see :func:`potential_of`), the settings (unpickled: trust the project
        you load), the errors (meV/atom, meV/Å), the reference energies (eV), the files
        (absolute paths in the job's working directory), left out and seconds as fitted.

    Raises
    ------
    KeyError, TypeError, ValueError, DamagedJobError
        As :func:`potential_of`.
    """
    job = _fit_job(job_or_name, project)
    potential, files = _potential(job)
    record = job.output
    blob = job.input.get("settings_pickle", "")
    try:
        settings = pickle.loads(base64.b64decode(blob))["settings"]
    except Exception as error:  # a class that no longer imports, a damaged blob
        raise DamagedJobError(job.job_name, job.h5_file, error) from error
    return FitResult(
        potential,
        settings,
        {k: dict(v) for k, v in record.get("errors", {}).items()},
        dict(record.get("reference_energies", {})),
        [str(f) for f in files],
        int(record.get("left_out", 0)),
        float(record.get("seconds", 0.0)),
    )

