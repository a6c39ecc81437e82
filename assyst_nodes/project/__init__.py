"""Project layer: each stage run is a pyiron_base job in the user's pyiron project.

``open_project(path_or_project)`` gives the pyiron ``Project`` bound to its database (an
embedded SQLite file where the folder has one, else the user's pyiron configuration, else a new
embedded file); ``ProjectRecorder(project)`` records (and reuses) stage runs; the job classes
(``pr.create.job.AssystRelax``, ...) are ordinary pyiron jobs; ``structures``,
``structure_frame``, ``history`` and ``stage_jobs`` query what is stored; ``rerun`` runs a
stored job again; ``remove_pipeline`` removes a pipeline job (and, if asked, the stage jobs only
it used); ``fit_in_project`` and ``validate_in_project`` fit and validate potentials as jobs
(``potential_of`` gives a fit job's potential where the job is now);
``export_extxyz``/``export_table`` write it out; ``close_connections`` closes the database
connections (done at exit anyway).

Names are imported on first use, so ``import assyst_nodes.project`` stays light; pyiron_base is
imported without touching the home directory when there is no pyiron configuration (see
:mod:`assyst_nodes.project.database`).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .binding import BoundProject
    from .database import ForeignJobError, close_connections
    from .export import export_extxyz, export_table
    from .fitting import fit_in_project, fit_result_of, potential_of
    from .jobs import (
        AssystCombine,
        AssystFilter,
        AssystFit,
        AssystLabel,
        AssystPerturb,
        AssystPipeline,
        AssystRelax,
        AssystSample,
        AssystStage,
        AssystSuite,
        AssystValidate,
        InputChangedError,
        MissingInputError,
    )
    from .layout import DamagedJobError
    from .operations import open_project, remove_pipeline
    from .queries import Link, history, stage_jobs, structure_frame, structures
    from .recorder import ProjectRecorder, stale_jobs
    from .rerun import rerun
    from .validating import suite_reference_in_project, validate_in_project

_SOURCES: dict[str, str] = {
    "BoundProject": "binding",
    "ForeignJobError": "database",
    "close_connections": "database",
    "open_project": "operations",
    "DamagedJobError": "layout",
    "export_extxyz": "export",
    "export_table": "export",
    "AssystCombine": "jobs",
    "AssystFilter": "jobs",
    "AssystLabel": "jobs",
    "AssystPerturb": "jobs",
    "AssystPipeline": "jobs",
    "AssystRelax": "jobs",
    "AssystSample": "jobs",
    "AssystStage": "jobs",
    "InputChangedError": "jobs",
    "MissingInputError": "jobs",
    "Link": "queries",
    "history": "queries",
    "stage_jobs": "queries",
    "structure_frame": "queries",
    "structures": "queries",
    "ProjectRecorder": "recorder",
    "stale_jobs": "recorder",
    "remove_pipeline": "operations",
    "rerun": "rerun",
    "AssystFit": "jobs",
    "AssystSuite": "jobs",
    "AssystValidate": "jobs",
    "fit_in_project": "fitting",
    "fit_result_of": "fitting",
    "potential_of": "fitting",
    "suite_reference_in_project": "validating",
    "validate_in_project": "validating",
}

__all__ = [
    "AssystCombine",
    "AssystFilter",
    "AssystFit",
    "AssystLabel",
    "AssystPerturb",
    "AssystPipeline",
    "AssystRelax",
    "AssystSample",
    "AssystStage",
    "AssystSuite",
    "AssystValidate",
    "BoundProject",
    "DamagedJobError",
    "ForeignJobError",
    "InputChangedError",
    "Link",
    "MissingInputError",
    "ProjectRecorder",
    "close_connections",
    "export_extxyz",
    "export_table",
    "fit_in_project",
    "fit_result_of",
    "history",
    "open_project",
    "potential_of",
    "remove_pipeline",
    "rerun",
    "stage_jobs",
    "stale_jobs",
    "structure_frame",
    "structures",
    "suite_reference_in_project",
    "validate_in_project",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_SOURCES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_SOURCES])
