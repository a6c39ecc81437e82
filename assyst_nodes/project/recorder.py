"""``ProjectRecorder``: records stage runs as pyiron_base jobs in a project folder, and reuses them.

One stage run = one job named ``<stage>_<12 hex>``, the hex being a hash of (stage, ``repr`` of
the settings sorted by key, the input uuids in order). Settings must have a deterministic
``repr`` (the package's frozen configs do) for a rerun to find the job again.

``record`` holds an exclusive lock on ``<folder>/.locks/<job name>.lock`` (``fcntl.flock``, freed
by the OS when a process dies) while it looks the job up, computes and stores. So:

* a finished job is reused (structures and report read back, ``compute`` not called, no row
  added); if its stored output cannot be read (file deleted or damaged) it is computed again,
  with a ``RuntimeWarning``;
* a job in any other status (created, running, aborted, ... ) is left over by a process that
  died or failed, since no live process holds its lock: it is deleted (job-table row, HDF5 file,
  index rows) and computed again under the same name, never duplicated;
* two processes asking for the same job wait for each other; the second one reuses the first's
  result; processes recording different jobs run in parallel;
* a process killed at any point (SIGKILL, power loss aside: nothing is fsynced) leaves jobs
  that the next run finds unfinished and computes again, or finished ones whose index rows it
  completes; :func:`stale_jobs` lists (and removes) the unfinished ones no live process owns.

``flock`` needs a local or lock-aware file system (NFS with lockd works; some network file
systems ignore it) and is not available on Windows, where recording runs without the lock.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pickle
import re
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import h5py
import numpy as np
from ase import Atoms

from assyst_nodes.lineage import UUID, geometry_digest
from assyst_nodes.reports import StageReport

from .database import open_project, project_folder, pyiron_lock, quiet
from .index import Index
from .jobs import AssystPipeline, job_class
from .layout import INPUT_UUIDS, read_output, report_to_json, write_output

try:  # pragma: no cover - platform dependent
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["ProjectRecorder", "job_name", "settings_repr", "stale_jobs"]


def settings_repr(settings: Mapping[str, Any]) -> str:
    """Readable, deterministic text of ``settings``: ``key=repr(value)`` sorted by key."""
    return ", ".join(f"{key}={settings[key]!r}" for key in sorted(settings))


def _uuids(structures: Sequence[Atoms]) -> list[str]:
    """The uuid of each structure (``""`` where it has none)."""
    return [str(atoms.info.get(UUID, "")) for atoms in structures]


def _identities(structures: Sequence[Atoms]) -> list[str]:
    """The uuid of each structure, or its geometry digest where it has none."""
    return [
        str(atoms.info[UUID]) if atoms.info.get(UUID) else f"geometry:{geometry_digest(atoms)}"
        for atoms in structures
    ]


def job_name(stage: str, settings: Mapping[str, Any], inputs: Sequence[Sequence[Atoms]]) -> str:
    """``<stage>_<12 hex>``: hash of stage, sorted settings repr and input uuids in order (the
    geometry digest stands in for a missing uuid)."""
    digest = hashlib.sha256()
    digest.update(stage.encode())
    digest.update(b"\x00")
    digest.update(settings_repr(settings).encode())
    for structures in inputs:
        digest.update(b"\x00")
        digest.update("\n".join(_identities(structures)).encode())
    safe = re.sub(r"[^A-Za-z0-9_]", "_", stage) or "stage"
    return f"{safe}_{digest.hexdigest()[:12]}"


@contextmanager
def _locked(folder: Path, name: str, blocking: bool = True) -> Iterator[bool]:
    """Hold the exclusive lock of ``name`` in ``folder`` and yield True; while another process
    has it, wait (``blocking``) or yield False at once."""
    if fcntl is None:  # pragma: no cover
        yield True
        return
    locks = folder / ".locks"
    locks.mkdir(exist_ok=True)
    with open(locks / f"{name}.lock", "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def stale_jobs(
    project_or_path: Any, remove: bool = False, use_user_config: bool = False
) -> list[str]:
    """Names of the jobs a dead or failed process left unfinished: any status but
    ``finished`` (``running``, ``created``, ``aborted``, ...) while no live process records
    them (their lock is free). A pipeline that asks for such a job computes it again; with
    ``remove`` they are deleted now (table row, HDF5 file, index rows), each under its lock.
    ``project_or_path``: a folder, a ``Project`` or a :class:`ProjectRecorder`."""
    folder = project_folder(getattr(project_or_path, "path", project_or_path))
    with pyiron_lock:
        table = open_project(folder, use_user_config).job_table()
    if table.empty:
        return []
    names = [
        str(name)
        for name, status in zip(table["job"], table["status"], strict=True)
        if status != "finished"
    ]
    stale = []
    for name in names:
        with _locked(folder, name, blocking=False) as free:
            if not free:
                continue
            with pyiron_lock:
                project = open_project(folder, use_user_config)
                row = _row(project, name)
                if row is None or row["status"] == "finished":  # finished meanwhile
                    continue
                stale.append(name)
                if remove:
                    _discard(project, folder, name, row)
    return stale


def _row(project: Any, name: str) -> dict[str, Any] | None:
    """The job-table row of job ``name`` in ``project`` (None if there is none)."""
    job_id = project.get_job_id(name)
    if job_id is None:
        return None
    return project.db.get_item_by_id(int(job_id))


def _reindex(
    folder: Path,
    job_id: int,
    name: str,
    stage: str,
    structures: Sequence[Atoms],
    inputs: Sequence[Sequence[Atoms]],
) -> None:
    """Make the index show finished job ``job_id`` if it does not (its process was killed
    between marking the job finished and finishing its index rows)."""
    index = Index(folder)
    if index.is_finished(job_id):
        return
    uuids = [uid for structures_ in inputs for uid in _uuids(structures_)]
    index.add_job(job_id, name, stage, structures, uuids)
    index.finish(job_id)


def _discard(project: Any, folder: Path, name: str, row: dict[str, Any] | None) -> None:
    """Remove every trace of job ``name``: table row, HDF5 file, working folder, index rows."""
    if row is not None:
        project.db.delete_item(int(row["id"]))
        Index(folder).remove_job(int(row["id"]))
    (folder / f"{name}.h5").unlink(missing_ok=True)
    shutil.rmtree(folder / f"{name}_hdf5", ignore_errors=True)


def _pickled(settings: Mapping[str, Any]) -> str:
    """Base64 of the pickled settings, or '' if they cannot be pickled."""
    try:
        return base64.b64encode(pickle.dumps(dict(settings))).decode()
    except Exception:
        return ""


@dataclass(frozen=True)
class ProjectRecorder:
    """Records stage runs into the project folder ``path`` (see the module docstring).

    ``pipeline``: name of an :class:`~assyst_nodes.project.jobs.AssystPipeline` job that becomes
    the ``masterid`` of the jobs created; ``use_user_config``: use the user's pyiron
    configuration instead of ``<path>/pyiron.db``. Plain fields: picklable, hashable.
    """

    path: str
    pipeline: str | None = None
    use_user_config: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", os.fspath(self.path))

    def project(self) -> Any:
        """The pyiron ``Project`` (re-points pyiron's global state at this folder)."""
        return open_project(self.path, self.use_user_config)

    def record(
        self,
        stage: str,
        settings: Mapping[str, Any],
        inputs: Sequence[Sequence[Atoms]],
        compute: Callable[[], tuple[list[Atoms], StageReport]],
    ) -> tuple[list[Atoms], StageReport]:
        """The stored result of this run if finished before, else ``compute()``, stored.

        pyiron is used under :data:`~assyst_nodes.project.database.pyiron_lock` (re-pointed at
        this folder each time), ``compute`` runs outside it: threads may record at once.
        """
        folder = project_folder(self.path)
        name = job_name(stage, settings, inputs)
        with _locked(folder, name):
            with pyiron_lock:
                project = self.project()
                row = _row(project, name)
                if row is not None and row["status"] == "finished":
                    try:
                        stored = read_output(folder / f"{name}.h5", name)
                    except (OSError, KeyError, ValueError) as error:
                        warnings.warn(
                            f"stored output of finished job {name} in {folder} cannot be read "
                            f"({type(error).__name__}: {error}); computing it again",
                            RuntimeWarning,
                            stacklevel=2,
                        )
                    else:
                        _reindex(folder, int(row["id"]), name, stage, stored[0], inputs)
                        return stored
                _discard(project, folder, name, row)
                job, input_uuids = self._create(project, folder, name, stage, settings, inputs)
            try:
                start = perf_counter()
                structures, report = compute()
                if not isinstance(structures, list):
                    structures = list(structures)
                seconds = perf_counter() - start
                with pyiron_lock:
                    self.project()
                    job.refresh_job_status()  # its status object holds the connection it had
                    self._store(job, folder, stage, structures, report, input_uuids, seconds)
            except BaseException:
                with suppress(Exception), pyiron_lock:  # never hide the stage's own error
                    self.project()
                    job.refresh_job_status()
                    job.status.aborted = True
                    job.project_hdf5["status"] = job.status.string
                raise
        return structures, report

    def _pipeline_id(self, project: Any, folder: Path) -> int | None:
        """Id of the pipeline job (created, finished, on first use)."""
        if self.pipeline is None:
            return None
        digest = hashlib.sha256(self.pipeline.encode()).hexdigest()[:8]
        safe = re.sub(r"[^A-Za-z0-9_]", "_", self.pipeline)[:40]
        name = f"pipeline_{safe}_{digest}"
        with _locked(folder, name):
            row = _row(project, name)
            if row is not None and row["status"] == "finished":
                return int(row["id"])
            # an unfinished one was left by a process killed while creating it, before any stage
            # job could point at it: make it again
            _discard(project, folder, name, row)
            job = project.create_job(AssystPipeline, name)
            job.input.pipeline = self.pipeline
            with quiet():
                job.save()
            job.status.finished = True
            job.project_hdf5["status"] = job.status.string
            return int(job.job_id)

    def _create(
        self,
        project: Any,
        folder: Path,
        name: str,
        stage: str,
        settings: Mapping[str, Any],
        inputs: Sequence[Sequence[Atoms]],
    ) -> tuple[Any, list[list[str]]]:
        """Create job ``name`` with its input, status running; return it and the input uuids."""
        input_uuids = [_uuids(structures) for structures in inputs]
        index = Index(folder)
        producers = [index.producer(uuids) for uuids in input_uuids]
        master_id = self._pipeline_id(project, folder)

        job = project.create_job(job_class(stage), name)
        job.input.stage = stage
        job.input.settings = settings_repr(settings)
        job.input.settings_pickle = _pickled(settings)
        job.input.input_job_ids = [-1 if p is None else p for p in producers]
        job.input.input_sizes = [len(uuids) for uuids in input_uuids]
        parent = next((p for p in producers if p is not None), None)
        if parent is not None:
            job.parent_id = parent
        if master_id is not None:
            job.master_id = master_id
        with quiet():
            job.save()
        _write_input_uuids(job.project_hdf5.file_name, name, input_uuids)
        job.status.running = True
        return job, input_uuids

    @staticmethod
    def _store(
        job: Any,
        folder: Path,
        stage: str,
        structures: list[Atoms],
        report: StageReport,
        input_uuids: list[list[str]],
        seconds_compute: float,
    ) -> None:
        """Store the output and report of ``job``, index it, mark it finished."""
        start = perf_counter()
        name = job.job_name
        report_json = report_to_json(report)
        write_output(job.project_hdf5.file_name, name, structures, report_json)
        job.output.report = report_json
        job.output.n_structures = len(structures)
        job.output.seconds_compute = seconds_compute
        job.output.seconds_store = perf_counter() - start
        _write_job_output(job)
        index = Index(folder)
        index.add_job(
            int(job.job_id), name, stage, structures, (u for us in input_uuids for u in us)
        )
        job.status.finished = True
        job.project_hdf5["status"] = job.status.string
        job.run_time_to_db()
        index.finish(int(job.job_id))


_OUTPUT_GROUP = "output__index_1"  # where pyiron's DataContainer keeps ``job.output``


def _write_job_output(job: Any) -> None:
    """Write ``job.output`` only (the full ``job.to_hdf()`` costs ~0.1 s more per job), if the
    layout is the one ``job.save()`` left; else the whole job."""
    storage = job.project_hdf5.open("storage")
    if _OUTPUT_GROUP in storage.list_groups():
        job.output.to_hdf(hdf=storage, group_name=_OUTPUT_GROUP)
    else:  # pragma: no cover - another pyiron_base layout
        job.to_hdf()


def _write_input_uuids(file: str, name: str, input_uuids: list[list[str]]) -> None:
    """Store the input uuids (all lists concatenated) in the job's HDF5 file."""
    flat = np.array([u for uuids in input_uuids for u in uuids], dtype=object)
    with h5py.File(file, "a") as handle:
        if f"{name}/{INPUT_UUIDS}" in handle:
            del handle[f"{name}/{INPUT_UUIDS}"]
        handle.create_dataset(f"{name}/{INPUT_UUIDS}", data=flat, dtype=h5py.string_dtype("utf-8"))
