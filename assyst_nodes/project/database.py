"""Which pyiron database a project's jobs go to, and opening pyiron projects bound to it.

Two kinds of database:

* **an embedded SQLite database**: the file ``pyiron.db`` in a project's *root* folder.
  Sub-projects (``create_group``/``open``) share their root's database. A folder inside an
  embedded root is **always** opened on that root's database, whatever the environment says
  (``PYIRON*`` variables or a ``~/.pyiron`` that appeared since): asking for the user's
  database there raises ``ValueError`` saying how to move the jobs over (pack, then unpack).
* **the user's pyiron configuration**: a ``~/.pyiron`` file, the file named by
  ``PYIRONCONFIG``, or ``PYIRON*`` variables that say where pyiron keeps its jobs
  (:data:`DATABASE_VARIABLES`: a central PostgreSQL, or the user's SQLite file). A new folder
  outside every embedded root uses it when it exists, exactly as a plain ``pyiron_base.Project``
  would, so jobs sit in the same job table as the user's other jobs. Variables that do not say
  where jobs go (``PYIRONRESOURCEPATHS``, ``PYIRONCONNECTIONTIMEOUT``, ...) do not count: with
  only those, a new folder becomes an embedded root, and its queue adapter still comes from the
  resource paths.

A new embedded root is refused in a folder that already holds pyiron job files (they belong to
another job table, e.g. the user's database when its configuration has gone), and a job file
that is not in the job table is only ever deleted or written if it was written from the same
database (:func:`database_identity`, stored in every assyst job file): no setting appearing or
disappearing later makes one job table write another's files.

The embedded ``pyiron.db`` is kept in SQLite's rollback-journal mode (``DELETE``), so the job
table is complete in that one file whenever no transaction is running: copying or backing up
``pyiron.db`` alone copies the job table.

pyiron_base keeps its configuration and connection in process-wide singletons. The projects of
this layer are :class:`~assyst_nodes.project.binding.BoundProject` instances:
``pyiron_base.Project`` objects (and the groups, copies and jobs made from them) that re-point
pyiron's global state at *their* database whenever they touch it, so several embedded roots (or
an embedded root and the user's database) can be used side by side in one process; the assyst
job classes bind a loaded job's project the same way. Not thread-safe on its own: hold
:data:`pyiron_lock` around pyiron calls made from several threads. Every connection opened here
is closed before the interpreter exits (:func:`close_connections`), so no pyiron watchdog thread
holds the exit.

An embedded root remembers where it lives (a small table ``assyst_embedded_root`` in its
``pyiron.db``). pyiron stores absolute paths in the job table, so when the folder is found
somewhere else (moved, or copied with ``cp -r``), the paths are rewritten to the new place the
first time it is opened: a copy then works on its own files and never touches the original.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Final

from . import pyiron_internals

__all__ = [
    "BOOKKEEPING",
    "DATABASE_VARIABLES",
    "DB_FILE",
    "ForeignJobError",
    "binding_of",
    "close_connections",
    "database_identity",
    "database_kind",
    "embedded_root",
    "project_folder",
    "pyiron_lock",
    "quiet",
    "user_config_present",
]

DB_FILE: Final = "pyiron.db"
"""Name of the embedded job-table SQLite file inside a root project folder."""
MARKER_TABLE: Final = "assyst_embedded_root"
"""Table in an embedded ``pyiron.db`` that marks its folder as a root: its path (``root``) and
an id that names this database in the job files written from it (``id``)."""
JOB_TABLE: Final = "jobs_pyiron"
"""pyiron's default job-table name (used by the embedded database)."""
DATABASE_VARIABLES: Final = (
    "PYIRONCONFIG",
    "PYIRONSQLCONNECTIONSTRING",
    "PYIRONSQLTABLENAME",
    "PYIRONSQLFILE",
    "PYIRONSQHOST",
    "PYIRONSQLTYPE",
    "PYIRONSQLDATABASE",
    "PYIRONSQLUSERKEY",
    "PYIRONPROJECTPATHS",
    "PYIRONPROJECTCHECKENABLED",
    "PYIRONDISABLE",
)
"""The ``PYIRON*`` variables that configure where pyiron keeps its jobs (its database and
project paths); any of them set means the user has a pyiron configuration. The others
(``PYIRONRESOURCEPATHS``, ``PYIRONCONNECTIONTIMEOUT``, ``PYIRONUSER``, ...) do not."""

BOOKKEEPING: Final = frozenset(
    {
        *(f"{DB_FILE}{suffix}" for suffix in ("", "-journal", "-wal", "-shm")),
        *(f"assyst_index.db{suffix}" for suffix in ("", "-journal", "-wal", "-shm")),
        ".locks",
    }
)
"""What this package keeps in a project folder beside the jobs (the embedded database, the
structure index, the recorder's lock files): never copied or moved with a project's files."""

_BUSY_TIMEOUT_S: Final = 60.0
_FOREIGN_SCAN_LIMIT: Final = 200
"""How many ``.h5`` files a new embedded root looks into for jobs of another job table."""


class ForeignJobError(ValueError):
    """A job file belongs to another job table than the one in use.

    Raised where a job file that the job table in use has no row for was written from another
    job table (:func:`database_identity`, stored in every assyst job file): the file is left as
    it is. The message says so and suggests opening its folder with the configuration of that
    database, or removing the file where it is no longer needed.

    Parameters
    ----------
    file : str or pathlib.Path
        The job file (``<folder>/<name>.h5``).
    database : str
        The identity of the job table stored in the file; ``""`` where it records none (the
        message then says ``unknown``).
    current : str
        The identity of the job table in use.

    Attributes
    ----------
    file : str
        The job file, as given.
    database : str
        The identity stored in the file, as given.
    current : str
        The identity of the job table in use, as given.
    """

    def __init__(self, file: str | Path, database: str, current: str) -> None:
        super().__init__(
            f"{file} is a job file written from another job table ({database or 'unknown'}) "
            f"than the one in use ({current}); it is not in this job table, and it is left as "
            "it is. Open its folder with the configuration of that database, or remove the "
            "file yourself if it is no longer needed."
        )
        self.file = str(file)
        self.database = database
        self.current = current


def _config_file() -> Path:
    """The pyiron configuration file pyiron would read (``PYIRONCONFIG`` or ``~/.pyiron``)."""
    return Path(os.environ.get("PYIRONCONFIG") or "~/.pyiron").expanduser()


def user_config_present() -> bool:
    """Whether the user has a pyiron configuration that says where jobs go.

    Returns
    -------
    bool
        ``True`` where one of :data:`DATABASE_VARIABLES` is set (non-empty), or a configuration
        file exists (the file named by ``PYIRONCONFIG``, else ``~/.pyiron``). Other ``PYIRON*``
        variables (``PYIRONRESOURCEPATHS``, ...) do not count.
    """
    if any(os.environ.get(name) for name in DATABASE_VARIABLES):
        return True
    return _config_file().is_file()


def _user_config_fingerprint() -> tuple[Any, ...]:
    """What identifies the user's configuration now (its variables and config file)."""
    variables = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("PYIRON")))
    file = _config_file()
    try:
        stamp: Any = (str(file), file.stat().st_mtime_ns)
    except OSError:
        stamp = None
    return variables, stamp


def _drop_log_file(existed: bool) -> None:
    """Detach pyiron's ``pyiron.log`` file handler (opened in the working directory at import);
    remove the file if the import created it empty. Warnings still reach stderr."""
    log = logging.getLogger("pyiron_log")
    target = Path("pyiron.log").absolute()
    for handler in list(log.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == target:
            log.removeHandler(handler)
            handler.close()
    # pyiron logs every SQL query at DEBUG for its (now detached) file; without this they would
    # reach any handler the application configured (e.g. logging.basicConfig) and flood stderr
    if log.level < logging.WARNING:
        log.setLevel(logging.WARNING)
    with contextlib.suppress(OSError):
        if not existed and target.stat().st_size == 0:
            target.unlink()


def _import_pyiron_base() -> Any:
    """Import pyiron_base (no-op if already imported).

    With a user configuration it is imported as it is (it connects to the user's database, as a
    plain ``import pyiron_base`` would). Without one, pyiron would create ``~/pyiron.db`` on
    import; the database is switched off for the import only (no other ``PYIRON*`` variable is
    set then, so pyiron's consistency checks cannot object). Either way pyiron's ``pyiron.log``
    in the working directory is detached.
    """
    if "pyiron_base" in sys.modules:
        import pyiron_base

        return pyiron_base
    fresh_logger = "pyiron_snippets.logger" not in sys.modules
    log_existed = Path("pyiron.log").exists()
    switch_off = not user_config_present()
    if switch_off:
        os.environ["PYIRONDISABLE"] = "True"
    try:
        import pyiron_base
    finally:
        if switch_off:
            os.environ.pop("PYIRONDISABLE", None)
        if fresh_logger:
            _drop_log_file(log_existed)
    return pyiron_base


pyiron_base = _import_pyiron_base()
pyiron_internals.check_version(pyiron_base.__version__)
pyiron_internals.check_internals()
state = pyiron_base.state
from pyiron_base.state.queue_adapter import queue_adapters as _queue_adapters  # noqa: E402

pyiron_lock = threading.RLock()
"""Serialises this process's use of pyiron's global state (re-entrant)."""

Binding = tuple[Any, ...]
"""Which database a project is bound to: ``("user",)`` or ``("embedded", root folder)``."""

_live: tuple[Any, ...] | None = None
"""The binding pyiron's global state points at now: ("user", fingerprint) or ("embedded", root)."""
_embedded_connections: dict[str, Any] = {}
"""One pyiron ``DatabaseAccess`` per embedded root, kept open until :func:`close_connections`."""
_user_connections: dict[tuple[Any, ...], Any] = {}
"""The user's database connections, by configuration fingerprint (a new one when it changes)."""
_resource_paths: list[str] | None = None
"""The resource paths of the embedded configuration last set (queue adapters follow them)."""
_roots: dict[str, str] = {}
"""Folder -> the embedded root it belongs to (cache of :func:`embedded_root`)."""
_hiding_bookkeeping: ContextVar[bool] = ContextVar("hiding_bookkeeping", default=False)
"""Whether projects hide :data:`BOOKKEEPING` from their file and folder lists now (while
pyiron copies or moves a project's files)."""
_prepared: set[str] = set()
_identities: dict[Any, str] = {}
"""Embedded root, or the user's configuration (its key of ``_live``) -> its
:func:`database_identity`."""
"""Embedded roots checked in this process (place, id, journal mode, stage-job ownership)."""


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow what pyiron prints on stdout (e.g. 'The job ... was saved and received the ID').

    A context manager: standard output is redirected to a buffer that is discarded; standard
    error (pyiron's warnings) is left as it is.

    Yields
    ------
    None
    """
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def project_folder(path: str | os.PathLike[str]) -> Path:
    """``path`` as an absolute, resolved folder that exists and is writable (created if missing).

    Parameters
    ----------
    path : str or os.PathLike
        The folder, absolute or relative to the working directory (``~`` is expanded). It and
        any missing parents are created; whether it can be written is tried with a temporary
        file (removed again).

    Returns
    -------
    pathlib.Path
        The absolute folder, symbolic links resolved.

    Raises
    ------
    PermissionError
        If it may not be created or written (permissions, read-only file system); names the
        path.
    ValueError
        If it may not be created or written for any other reason (e.g. ``path`` or a parent is
        a file); names the path.
    """
    folder = Path(path).expanduser().absolute()
    if folder.exists() and not folder.is_dir():
        raise ValueError(
            f"project path {folder} exists and is not a folder; give a folder (existing or new)"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        message = (
            f"cannot create or write project folder {folder}: {error}; give a folder that "
            "can be created and written"
        )
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise PermissionError(message) from error
        raise ValueError(message) from error
    return folder.resolve()


def _posix_dir(path: Path) -> str:
    """``path`` as pyiron writes folders: absolute POSIX with a trailing slash."""
    return path.as_posix().rstrip("/") + "/"


@contextlib.contextmanager
def _sqlite(file: Path) -> Iterator[sqlite3.Connection]:
    """A connection to ``file`` with a long busy timeout (closed afterwards, autocommit off)."""
    connection = sqlite3.connect(file, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    try:
        connection.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
        yield connection
    finally:
        connection.close()


def _retry_locked(action: Any) -> Any:
    """Run ``action()``, retrying for up to the busy timeout while SQLite says it is locked
    (``journal_mode`` changes do not wait on the busy handler)."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            return action()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _marker(file: Path, key: str = "root") -> str | None:
    """Value ``key`` of the marker table in embedded database ``file`` (None if it is none of
    ours, or has no such row)."""
    try:
        with _sqlite(file) as db:
            row = db.execute(f"SELECT value FROM {MARKER_TABLE} WHERE key = ?", (key,)).fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])


def embedded_root(path: str | os.PathLike[str]) -> Path | None:
    """The embedded root ``path`` belongs to: the nearest folder with an embedded root's database.

    Parameters
    ----------
    path : str or os.PathLike
        A folder (``~`` is expanded; it need not exist). It and then its ancestors are looked
        at, nearest first.

    Returns
    -------
    pathlib.Path or None
        The nearest folder, ``path`` itself or an ancestor, whose ``pyiron.db`` (:data:`DB_FILE`)
        is an embedded root's (one this package marked as such; a plain pyiron SQLite file does
        not count); ``None`` if there is none.
    """
    folder = Path(path).expanduser().absolute().resolve()
    key = str(folder)
    if key in _roots and (Path(_roots[key]) / DB_FILE).is_file():
        return Path(_roots[key])
    for candidate in (folder, *folder.parents):
        file = candidate / DB_FILE
        if file.is_file() and _marker(file) is not None:
            _roots[key] = str(candidate)
            return candidate
    return None


def _job_files(folder: Path, limit: int = _FOREIGN_SCAN_LIMIT) -> list[Path]:
    """pyiron job files below ``folder`` (HDF5 files with a job group: one holding ``TYPE``),
    at most the first ``limit`` ``.h5`` files looked into."""
    import h5py

    found = []
    for k, file in enumerate(folder.rglob("*.h5")):
        if k >= limit:
            break
        try:
            with h5py.File(file, "r") as handle:
                if any(isinstance(g, h5py.Group) and "TYPE" in g for g in handle.values()):
                    found.append(file)
        except (OSError, ValueError):
            continue
    return found


def _make_root(root: Path) -> None:
    """Make ``root/pyiron.db`` an embedded root's database (rollback journal, marker rows);
    refused where the folder holds pyiron jobs of another job table."""
    foreign = _job_files(root)
    if foreign:
        shown = ", ".join(str(f.relative_to(root)) for f in foreign[:3])
        raise ValueError(
            f"{root} holds pyiron job files ({shown}{', ...' if len(foreign) > 3 else ''}) but "
            "no embedded database: they belong to another job table, most likely the database "
            "of a pyiron configuration that is not set now (~/.pyiron, PYIRON* variables). Set "
            "that configuration again to open this folder, or give another folder"
        )

    def create() -> None:
        with _sqlite(root / DB_FILE) as db:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "delete":
                db.execute("PRAGMA journal_mode=DELETE")
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} "
                "(key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            db.execute(
                f"INSERT OR IGNORE INTO {MARKER_TABLE} VALUES ('root', ?)", (_posix_dir(root),)
            )
            db.execute(
                f"INSERT OR IGNORE INTO {MARKER_TABLE} VALUES ('id', ?)", (str(uuid.uuid4()),)
            )

    _retry_locked(create)
    _identities.pop(str(root), None)
    nested = [
        str(file.parent) for file in root.glob(f"*/**/{DB_FILE}") if _marker(file) is not None
    ]
    if nested:
        warnings.warn(
            f"new embedded project root {root} contains other embedded roots ({nested[:3]}); "
            "their jobs stay in their own databases and are not listed by this root's "
            "job_table(recursive=True)",
            RuntimeWarning,
            stacklevel=4,
        )


def _prepare_root(root: Path) -> None:
    """Once per process and root: rewrite the job-table paths if the root was moved or copied
    here (its marker names another folder; one transaction, idempotent), give a root of an
    older version its id, and switch a write-ahead-log database to the rollback journal (the
    job table then lives in ``pyiron.db`` alone; retried while another process has it open,
    left as it is if that never ends)."""
    if str(root) in _prepared:
        return
    file = root / DB_FILE
    new = _posix_dir(root)

    def rewrite() -> None:
        with _sqlite(file) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                old = db.execute(
                    f"SELECT value FROM {MARKER_TABLE} WHERE key = 'root'"
                ).fetchone()[0]
                if old != new:
                    _rewrite_paths(db, old, new)
                    db.execute(
                        f"UPDATE {MARKER_TABLE} SET value = ? WHERE key = 'root'", (new,)
                    )
                db.execute(
                    f"INSERT OR IGNORE INTO {MARKER_TABLE} VALUES ('id', ?)", (str(uuid.uuid4()),)
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    if _marker(file) != new or _marker(file, "id") is None:
        _retry_locked(rewrite)

    def journal() -> None:
        with _sqlite(file) as db:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "delete":
                db.execute("PRAGMA journal_mode=DELETE")  # checkpoints the log into the file

    try:
        _retry_locked(journal)
    except sqlite3.OperationalError as error:  # another process holds it for a minute
        warnings.warn(
            f"{file} stays in write-ahead-log mode for now ({error}): copy it together with "
            f"its {DB_FILE}-wal file",
            RuntimeWarning,
            stacklevel=3,
        )
    _prepared.add(str(root))


def _rewrite_paths(db: sqlite3.Connection, old: str, new: str) -> None:
    """Point every job-table row under folder ``old`` at the same place under ``new``."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if JOB_TABLE not in tables:
        return
    parent = _posix_dir(Path(new).parent)
    rows = db.execute(f"SELECT id, projectpath, project FROM {JOB_TABLE}").fetchall()
    for job_id, projectpath, project in rows:
        full = (projectpath or "") + (project or "")
        if not full.startswith(old):
            continue
        relative = Path(new, full[len(old) :]).relative_to(parent).as_posix()
        db.execute(
            f"UPDATE {JOB_TABLE} SET projectpath = ?, project = ? WHERE id = ?",
            (parent, relative.rstrip("/") + "/", job_id),
        )


def _embedded_configuration(root: Path) -> dict[str, Any]:
    """pyiron's configuration for embedded root ``root``; the resource paths (queue adapters
    live there) are the user's configuration's."""
    return {
        "sql_type": "SQLite",
        "sql_file": str(root / DB_FILE),
        "sql_table_name": JOB_TABLE,
        "project_paths": [_posix_dir(root.parent)],
        "resource_paths": pyiron_internals.configured_resource_paths(state),
        "project_check_enabled": False,
        "disable_database": False,
        "write_work_dir_warnings": False,
    }


def _ours(connection: Any) -> bool:
    """Whether ``connection`` is one this module keeps (embedded or the user's)."""
    kept = [*_embedded_connections.values(), *_user_connections.values()]
    return any(connection is c for c in kept)


def _activate(binding: Binding) -> None:
    """Point pyiron's global state at ``binding``: ("user",) or ("embedded", root)."""
    global _live, _resource_paths
    manager = state.database
    if _live is None and manager.database is not None and not _ours(manager.database):
        # pyiron's state as it stands (read from the configuration at import, or set up by the
        # user in code with state.update({...})): the user's database, never replaced by a re-read
        _user_connections[("user", _user_config_fingerprint())] = manager.database
        _live = ("user", _user_config_fingerprint())
    if binding[0] == "user":
        key: tuple[Any, ...] = ("user", _user_config_fingerprint())
        if _live == key and manager.database is not None:
            return
        pyiron_internals.release_database(state, _ours)
        connection = _user_connections.get(key)
        if connection is None:
            state.update()  # pyiron reads the user's configuration and connects
            if manager.database_is_disabled:
                raise ValueError(
                    "the pyiron configuration disables the database (disable_database / "
                    "PYIRONDISABLE); assyst_nodes records stage runs as jobs in a job table: "
                    "enable a database in the configuration, or pass use_user_config=False for "
                    "an embedded SQLite database in a new project folder"
                )
            _user_connections[key] = manager.database
        else:
            state.settings.update()
            _queue_adapters.update()
            pyiron_internals.set_database(state, connection)
        _resource_paths = None
        _live = key
        return
    root = Path(binding[1])
    key = ("embedded", str(root))
    if _live == key and manager.database is not None:
        return
    pyiron_internals.release_database(state, _ours)
    configuration = _embedded_configuration(root)
    state.settings.update(user_dict=configuration)
    if configuration["resource_paths"] != _resource_paths:
        _queue_adapters.update()
        _resource_paths = configuration["resource_paths"]
    connection = _embedded_connections.get(str(root))
    if connection is not None and getattr(connection.conn, "closed", False):
        connection = None  # closed by pyiron (its queue wrapper closes the live connection)
    if connection is None:
        from pyiron_base.database.generic import DatabaseAccess

        connection = DatabaseAccess(f"sqlite:///{root / DB_FILE}", JOB_TABLE)
        connection.conn.exec_driver_sql(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
        connection.conn.commit()
        _embedded_connections[str(root)] = connection
    elif manager.database is not None and manager.database is not connection:
        manager.close_connection()  # a connection pyiron opened itself
    pyiron_internals.set_database(state, connection)
    _live = key


def close_connections() -> None:
    """Close every database connection this process opened through this module.

    Closes the connections of embedded roots and of the user's database, with pyiron's
    watchdog threads, so nothing holds the interpreter's exit; the next use opens them again.

    Notes
    -----
    Called at exit; the CLI calls it when a command is done. Where another thread still holds
    :data:`pyiron_lock` after the busy timeout of the SQLite connections, it returns without
    closing anything (that thread still uses pyiron).
    """
    global _live
    if not pyiron_lock.acquire(timeout=_BUSY_TIMEOUT_S):  # a thread still uses pyiron: leave it
        return
    try:
        connections = [*_embedded_connections.values(), *_user_connections.values()]
        manager = state.database
        if manager.database is not None and not _ours(manager.database):
            connections.append(manager.database)
        pyiron_internals.release_database(state, lambda _: True)
        for connection in connections:
            pyiron_internals.close_access(connection)
        _embedded_connections.clear()
        _user_connections.clear()
        _live = None
    finally:
        pyiron_lock.release()


pyiron_internals.on_exit(close_connections)


def database_identity(binding: Binding) -> str:
    """A name of the job table ``binding`` uses, stored in every assyst job file written from it.

    Parameters
    ----------
    binding : tuple
        ``("embedded", root)`` for an embedded root's database, ``("user",)`` for the user's
        configured database (see :func:`binding_of`).

    Returns
    -------
    str
        ``embedded:<id of the root>`` (the id in the root's ``pyiron.db``, kept when the root
        is moved or copied), or the user's database as
        ``<dialect>://<host or file>/<database>#<table>`` (no user name, no password).

    Notes
    -----
    Computed once per process and database. For the user's database, pyiron's global state
    is pointed at it (under :data:`pyiron_lock`) to read its connection string.
    """
    if binding[0] == "embedded":
        root = Path(binding[1])
        if str(root) not in _identities:
            _identities[str(root)] = f"embedded:{_marker(root / DB_FILE, 'id')}"
        return _identities[str(root)]
    with pyiron_lock:
        _activate(binding)
        if _live in _identities:
            return _identities[_live]
        from sqlalchemy.engine import make_url

        url = make_url(state.database.sql_connection_string)
        location = url.host or ""
        if url.port:
            location += f":{url.port}"
        identity = f"{url.drivername}://{location}/{url.database or ''}"
        _identities[_live] = f"{identity}#{state.database.sql_table_name}"
        return _identities[_live]


def database_kind(use_user_config: bool | None = None) -> str:
    """``"user"`` or ``"embedded"``: what ``use_user_config`` selects outside every embedded root.

    Parameters
    ----------
    use_user_config : bool, optional
        ``True``: the user's pyiron configuration's database; ``False``: an embedded root.
        Default: ``None`` (automatic: ``"user"`` where :func:`user_config_present`, else
        ``"embedded"``).

    Returns
    -------
    str
        ``"user"`` or ``"embedded"``: the kind of database a folder outside every embedded root
        would be opened on (a folder inside one is always opened on that root's).
    """
    if use_user_config is None:
        use_user_config = user_config_present()
    return "user" if use_user_config else "embedded"


def _move_hint(root: Path) -> str:
    return (
        f"its jobs are in the embedded database {root / DB_FILE}, and a folder with an "
        "embedded database is always opened on it. To move the jobs into your configured "
        "database: pr = open_project(<folder>); pr.pack(destination_path='jobs'); then "
        "open_project(<a new folder>, use_user_config=True).unpack('jobs.tar.gz')"
    )


def binding_of(folder: str | os.PathLike[str], use_user_config: bool | None = None) -> Binding:
    """The database of ``folder``: its embedded root's, else the user's, else a new embedded root.

    In that order: the embedded root ``folder`` belongs to (:func:`embedded_root`), whatever
    ``use_user_config`` says; else the user's database (with a configuration, or
    ``use_user_config=True``); else a new embedded root, a ``pyiron.db`` made in ``folder``.
    An embedded root is prepared once per process (its job-table paths are rewritten where the
    root was moved or copied).

    Parameters
    ----------
    folder : str or os.PathLike
        The project folder (``~`` is expanded); it must exist where a new embedded root is made
        in it (:func:`project_folder` makes it).
    use_user_config : bool, optional
        For a folder outside every embedded root: ``True`` the user's database, ``False`` a new
        embedded root. Default: ``None`` (automatic, see :func:`database_kind`).

    Returns
    -------
    tuple
        The binding: ``("embedded", root)`` (the root folder as ``str``) or ``("user",)``.

    Raises
    ------
    ValueError
        For ``use_user_config=True`` inside an embedded root (the message says how to move the
        jobs: pack, then unpack), and for a new embedded root in a folder that holds job files
        of another job table.
    """
    folder = Path(folder).expanduser().absolute().resolve()
    root = embedded_root(folder)
    if root is not None:
        if use_user_config:
            raise ValueError(f"cannot open {folder} on your configured pyiron database: " + (
                _move_hint(root)
            ))
        _prepare_root(root)
        return ("embedded", str(root))
    if database_kind(use_user_config) == "user":
        return ("user",)
    _make_root(folder)
    _roots[str(folder)] = str(folder)
    _prepare_root(folder)
    return ("embedded", str(folder))




def _current_binding() -> Binding:
    """The binding pyiron's global state points at now (the user's if none yet)."""
    if _live is not None and _live[0] == "embedded":
        return ("embedded", _live[1])
    return ("user",)
