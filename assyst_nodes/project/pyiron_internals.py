"""The one place that touches pyiron_base's internals (private attributes and the HDF5 layout
its reader expects), each with what it relies on.

pyiron_base has no public API for what these do: pointing its process-wide database manager at
a connection of ours, closing a connection together with its watchdog thread, giving a loaded
job a project bound to its own database, and submitting a job to a queue with our own wrapper
command. Every function here is checked against the pyiron_base versions it was written for
(:data:`KNOWN_VERSIONS`): :func:`check_version` raises on any other version, before anything
is touched, so an upgrade of pyiron_base fails loudly here instead of corrupting a project.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from .store import compact

__all__ = [
    "KNOWN_VERSIONS",
    "add_copied_row",
    "check_internals",
    "check_version",
    "close_access",
    "configured_resource_paths",
    "on_exit",
    "project_of",
    "release_database",
    "set_database",
    "set_project_of",
    "submit_to_queue",
    "write_h5io",
]

KNOWN_VERSIONS: Final = ("0.15.",)
"""Version prefixes of pyiron_base this module was written and tested for."""


def check_version(version: str | None = None) -> str:
    """pyiron_base's version if this module knows it; ``RuntimeError`` naming it otherwise.

    Parameters
    ----------
    version : str, optional
        The version to check. Default: None (that of the installed ``pyiron_base``, which is
        imported for it).

    Returns
    -------
    str
        The version checked, which starts with one of :data:`KNOWN_VERSIONS`.

    Raises
    ------
    RuntimeError
        If the version starts with none of :data:`KNOWN_VERSIONS`; the message names it and
        says how to install a known version.
    """
    if version is None:
        import pyiron_base

        version = str(pyiron_base.__version__)
    if not version.startswith(KNOWN_VERSIONS):
        raise RuntimeError(
            f"assyst_nodes.project touches internals of pyiron_base {', '.join(KNOWN_VERSIONS)}"
            f"x, but pyiron_base {version} is installed: install a known version "
            "(pip install 'pyiron_base>=0.15,<0.16') or update "
            "assyst_nodes/project/pyiron_internals.py for it"
        )
    return version


_RELIED_ON: Final = (
    ("pyiron_base.database.manager:DatabaseManager", "_database"),
    ("pyiron_base.database.manager:DatabaseManager", "_use_local_database"),
    ("pyiron_base.database.manager:DatabaseManager", "_database_is_disabled"),
    ("pyiron_base.state.settings:Settings", "_configuration"),
    ("pyiron_base.state.settings:Settings", "_credentials"),
    ("pyiron_base.database.generic:DatabaseAccess", "_engine"),
    ("pyiron_base.database.generic:DatabaseAccess", "conn"),
    ("pyiron_base.database.generic:AutorestoredConnection", "_watchdog"),
    ("pyiron_base.storage.hdfio:ProjectHDFio", "_project"),
)
"""(``module:Class``, attribute its constructor sets) of what this module touches."""


def check_internals() -> None:
    """Check that pyiron_base still has what this module touches, before anything is touched.

    Each attribute this module touches must still be set by its class's constructor (the
    constructor's code names it), and this Python must have ``threading._register_atexit``.

    Raises
    ------
    RuntimeError
        Naming the known versions (:data:`KNOWN_VERSIONS`) and what is lacking, if a class of
        pyiron_base no longer sets such an attribute or this Python lacks
        ``threading._register_atexit``.
    """
    import importlib

    lacking = []
    for where, name in _RELIED_ON:
        module, _, cls_name = where.partition(":")
        cls = getattr(importlib.import_module(module), cls_name, None)
        if cls is None or name not in cls.__init__.__code__.co_names:
            lacking.append(f"{where}.{name}")
    if not hasattr(threading, "_register_atexit"):
        lacking.append("threading._register_atexit")
    if lacking:
        raise RuntimeError(
            f"assyst_nodes.project touches internals of pyiron_base {', '.join(KNOWN_VERSIONS)}"
            f"x that this installation lacks: {', '.join(lacking)}; install a known version "
            "(pip install 'pyiron_base>=0.15,<0.16') or update "
            "assyst_nodes/project/pyiron_internals.py for it"
        )


def set_database(state: Any, access: Any) -> None:
    """Make ``access`` the connection of pyiron's database manager.

    As if pyiron had opened it from its configuration: sets ``DatabaseManager._database`` and its
    two flags (not local, not disabled).

    Parameters
    ----------
    state : pyiron_base.state.State
        pyiron's process-wide state (``pyiron_base.state.state``); its ``database`` is the
        manager.
    access : pyiron_base.database.generic.DatabaseAccess
        The connection to hand to the manager.
    """
    manager = state.database
    manager._database = access
    manager._use_local_database = False
    manager._database_is_disabled = False


def release_database(state: Any, keep: Callable[[Any], bool]) -> None:
    """Take the manager's connection away from it without closing it, if ``keep(connection)``.

    pyiron closes the connection it holds when it opens another; ours stay open for the objects
    that still hold them.

    Parameters
    ----------
    state : pyiron_base.state.State
        pyiron's process-wide state (``pyiron_base.state.state``); its ``database`` is the
        manager.
    keep : callable
        Called with the manager's connection (if it holds one); True means take it away (the
        manager then holds none), False leaves it to the manager.
    """
    manager = state.database
    if manager.database is not None and keep(manager.database):
        manager._database = None


def close_access(access: Any) -> None:
    """Close a pyiron ``DatabaseAccess`` for good.

    Closes its connection, disposes of its engine's pool, and ends the watchdog thread of a
    server connection (``AutorestoredConnection._watchdog``), which would otherwise hold the
    process's exit for ``PYIRONCONNECTIONTIMEOUT`` seconds (60 by default). A connection that
    is already closed, or whose server went away, is no error.

    Parameters
    ----------
    access : pyiron_base.database.generic.DatabaseAccess
        The database access to close.
    """
    connection = getattr(access, "conn", None)
    watchdog = getattr(connection, "_watchdog", None)
    if watchdog is not None and watchdog.is_alive():
        watchdog.kill()  # closes the connection and ends the thread
    if connection is not None:
        try:
            connection.close()
        except Exception:  # already closed, or the server went away: nothing left to close
            pass
    engine = getattr(access, "_engine", None)
    if engine is not None:
        engine.dispose()


def on_exit(function: Callable[[], None]) -> None:
    """Call ``function`` when the interpreter shuts down, *before* it waits for non-daemon threads.

    Such threads are pyiron's connection watchdog, for one; ``atexit`` runs too late for that.
    ``threading._register_atexit`` is what ``concurrent.futures`` uses for the same reason.

    Parameters
    ----------
    function : callable
        Called with no arguments at shutdown.

    Raises
    ------
    RuntimeError
        If this Python has no ``threading._register_atexit``.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is None:  # pragma: no cover - every CPython >= 3.9 has it
        raise RuntimeError(
            "this Python has no threading._register_atexit: assyst_nodes cannot close pyiron's "
            "database connections before exit"
        )
    register(function)


def configured_resource_paths(state: Any) -> list[str]:
    """The resource paths of the user's pyiron configuration, read as pyiron reads it.

    pyiron's variables are read, else its configuration file; pyiron's settings are left as
    they are (``Settings._configuration`` and ``_credentials`` are restored).

    Parameters
    ----------
    state : pyiron_base.state.State
        pyiron's process-wide state (``pyiron_base.state.state``).

    Returns
    -------
    list of str
        The configured resource paths (folders).
    """
    settings = state.settings
    saved = dict(settings._configuration), settings._credentials
    try:
        settings.update()
        return list(settings.resource_paths)
    finally:
        settings._configuration, settings._credentials = saved


def project_of(project_hdf5: Any) -> Any:
    """The project a job's HDF5 handle holds (``ProjectHDFio._project``).

    Through it pyiron reaches the job table for the job.

    Parameters
    ----------
    project_hdf5 : pyiron_base.storage.hdfio.ProjectHDFio
        A job's HDF5 handle (``job.project_hdf5``).

    Returns
    -------
    pyiron_base.Project or None
        The project; None if the handle has none.
    """
    return getattr(project_hdf5, "_project", None)


def set_project_of(project_hdf5: Any, project: Any) -> None:
    """Make ``project`` the project of a job's HDF5 handle (see :func:`project_of`).

    pyiron gives a loaded job a plain ``Project`` of its folder, which talks to whatever database
    pyiron's process-wide state points at.

    Parameters
    ----------
    project_hdf5 : pyiron_base.storage.hdfio.ProjectHDFio
        A job's HDF5 handle (``job.project_hdf5``).
    project : pyiron_base.Project
        The project to give it: one bound to the job's own database.
    """
    project_hdf5._project = project


def add_copied_row(job: Any, row: dict[str, Any]) -> None:
    """Give ``job``, a copy of job-table ``row``'s job, a row of its own in its own job table.

    The new row is ``row`` with the copy's name, place and user (and a new id, which the job
    takes). This is what ``pyiron_base.jobs.job.util._copy_database_entry`` does, except that
    pyiron reads the row to copy from the copy's job table, which for a copy into another
    database does not hold it.

    Parameters
    ----------
    job : pyiron_base.jobs.job.generic.GenericJob
        The job just copied.
    row : dict of str to object
        The job-table row of the job it was copied from (column name to value).
    """
    from pyiron_base.state import state

    entry = dict(row)
    entry.pop("id", None)
    entry.update(
        job=job.job_name,
        subjob=job.project_hdf5.h5_path,
        project=job.project_hdf5.project_path,
        projectpath=job.project_hdf5.root_path,
        username=state.settings.login_user,
    )
    job.reset_job_id(job_id=job.project.db.add_item_dict(entry))


def submit_to_queue(job: Any, command: str) -> None:
    """Submit ``job`` to pyiron's queue adapter with ``command`` as the batch job's command.

    What ``pyiron_base.jobs.job.runfunction.run_job_with_runmode_queue`` does for a local
    queue, but with the command given (pyiron's names the job by its numeric id, which only the
    user's configured database resolves). The job's server settings (queue, cores, run time,
    memory) go to the queue; the queue id is stored with the job.

    Parameters
    ----------
    job : pyiron_base.jobs.job.generic.GenericJob
        The job to submit, already saved (it has a job id and a working directory).
    command : str
        The shell command the batch job runs.

    Raises
    ------
    TypeError
        If no queue adapter is defined (no folder holding ``queues/queue.yaml`` in the resource
        paths).
    NotImplementedError
        If the queue adapter is remote: stage jobs of an embedded database need a local queue.
    ValueError
        If the queue adapter does not accept the job (which is then marked aborted).
    """
    from pyiron_base.state import state

    if state.queue_adapter is None:
        raise TypeError(
            "No queue adapter defined: name a folder holding queues/queue.yaml (pysqa) in "
            "PYIRONRESOURCEPATHS or in RESOURCE_PATHS of ~/.pyiron (see docs/project.md, "
            "'Queues')"
        )
    if state.queue_adapter.remote_flag:
        raise NotImplementedError(
            "assyst_nodes stage jobs of an embedded database cannot go to a remote queue; use "
            "a local queue (SLURM on this machine) or your configured database"
        )
    queue_id = state.queue_adapter.submit_job(
        queue=job.server.queue,
        job_name="pi_" + str(job.job_id),
        working_directory=job.project_hdf5.working_directory,
        cores=job.server.cores,
        run_time_max=job.server.run_time,
        memory_max=job.server.memory_limit,
        command=command,
        **job.server.additional_arguments,
    )
    if queue_id is None:
        job.status.aborted = True
        raise ValueError(f"the queue adapter did not accept job {job.job_name}")
    with job.server.unlocked():
        job.server.queue_id = queue_id
    job.project_hdf5.write_dict(data_dict={"server": job.server.to_dict()})


def write_h5io(group: Any, key: str, value: Any) -> None:
    """Write ``value`` as dataset ``key`` of the h5py ``group`` the way pyiron's h5io does.

    So pyiron's readers (``job.content``, ``from_hdf``) give it back with its type: ints and
    floats as one-element arrays titled ``int``/``float``, strings as UTF-8 bytes titled
    ``unicode``, arrays titled ``ndarray``. Small values (up to 16 KiB) are compact (inside the
    object header: no chunk index, no extra block; see
    :func:`~assyst_nodes.project.store.compact`).

    Parameters
    ----------
    group : h5py.Group
        The group to write into, of a file open for writing.
    key : str
        The dataset's name; a dataset already there is replaced.
    value : int, float, str or numpy.ndarray
        The value; an array must be numeric (bool, int, unsigned or float dtype).

    Raises
    ------
    TypeError
        If ``value`` is a bool (store it as an int), a non-numeric array or of any other type.
    """
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"write_h5io: {key} is a bool; store it as an int")
    if isinstance(value, int | np.integer):
        data, title = np.array([int(value)], dtype=np.int64), "int"
    elif isinstance(value, float | np.floating):
        data, title = np.array([float(value)], dtype=np.float64), "float"
    elif isinstance(value, str):
        data, title = np.frombuffer(value.encode("utf-8"), dtype=np.uint8), "unicode"
    elif isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        data, title = value, "ndarray"
    else:
        raise TypeError(f"write_h5io: {key} has unsupported type {type(value).__name__}")
    if key in group:
        del group[key]
    if 0 < data.nbytes <= 16 * 1024:
        dataset = group.create_dataset(key, shape=data.shape, dtype=data.dtype, dcpl=compact())
        dataset[...] = data
    else:
        dataset = group.create_dataset(key, data=data)
    dataset.attrs["TITLE"] = title
