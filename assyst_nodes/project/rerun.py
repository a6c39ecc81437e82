"""Rerun a recorded stage job from what the project stores: its pickled settings and the uuids of
its input structures (which must be stored in the same project)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ase import Atoms

from assyst_nodes.reports import StageReport

from .database import open_project, pyiron_lock
from .jobs import AssystStage
from .layout import DamagedJobError
from .queries import structures
from .recorder import ProjectRecorder, _discard, _locked, _row, job_name

__all__ = ["rerun"]

_MAX_PARTS = 4  # inputs of the combine node


def _stage_function(stage: str) -> Any:
    """The node-layer function of ``stage`` (imported here: the node layer is optional)."""
    from assyst_nodes.nodes import stages

    functions = {
        "sample": stages.sample,
        "relax": stages.relax,
        "label": stages.label,
        "perturb": stages.perturb,
        "filter": stages.filter_structures,
        "combine": stages.combine,
    }
    if stage not in functions:
        raise ValueError(f"no stage function for stage {stage!r}")
    return functions[stage]


def _job_name_of(project: Any, job: int | str) -> str:
    """The name of job ``job`` (an id or a name)."""
    if isinstance(job, str) and not job.isdigit():
        return job
    row = project.db.get_item_by_id(int(job))
    return str(row["job"]) if row else str(job)


def rerun(
    project_or_path: Any,
    job: int | str,
    force: bool = False,
    use_user_config: bool = False,
    **options: Any,
) -> tuple[list[Atoms], StageReport | None]:
    """Run stage job ``job`` (id or name) again from its stored settings and input uuids.

    A finished job is reused unless ``force`` (then it is deleted and computed again); an
    aborted or stale one is computed again. ``options`` go to the stage function (e.g.
    ``workers``, ``executor``). Returns the structures and report (``None`` for combine).
    Raises ``KeyError`` if an input structure is not stored in the project,
    :class:`~assyst_nodes.project.layout.DamagedJobError` (naming the job and its file) if the
    job's HDF5 file cannot be read.
    """
    path = getattr(project_or_path, "path", project_or_path)
    with pyiron_lock:
        project = open_project(path, use_user_config)
        try:
            loaded = project.load(job)
            if loaded is None or not isinstance(loaded, AssystStage):
                raise KeyError(f"no assyst stage job {job!r} in project {project.path}")
            stage = str(loaded.input.stage)
            settings = dict(loaded.settings_object())
            stored_inputs = loaded.input_uuids()
        except (KeyError, DamagedJobError):
            raise
        except Exception as error:  # pyiron/h5py deep inside: name the job and its file
            name = _job_name_of(project, job)
            raise DamagedJobError(name, Path(project.path) / f"{name}.h5", error) from error
        stored_name = loaded.job_name
    folder = Path(project.path)
    inputs = []
    for uuids in stored_inputs:
        found = structures(folder, uuids=uuids)
        if len(found) != len(uuids):
            missing = sorted(set(uuids) - {str(a.info.get("uuid")) for a in found})
            raise KeyError(f"input structures of {stored_name} not stored: {missing[:5]}")
        inputs.append(found)
    name = job_name(stage, settings, inputs)
    if name != stored_name:
        raise ValueError(
            f"job {stored_name} does not match its stored settings and inputs ({name}); "
            "was it recorded by another version?"
        )
    recorder = ProjectRecorder(str(folder), use_user_config=use_user_config)
    if force:
        with _locked(folder, name), pyiron_lock:  # same lock order as ProjectRecorder.record
            project = open_project(folder, use_user_config)
            _discard(project, folder, name, _row(project, name))
    function = _stage_function(stage)
    if stage == "combine":
        if len(inputs) > _MAX_PARTS:
            raise ValueError(f"combine takes at most {_MAX_PARTS} inputs, got {len(inputs)}")
        return function(*inputs, recorder=recorder), None
    return function(*inputs, **settings, **options, recorder=recorder)
