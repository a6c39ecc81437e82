"""Which pyiron database a project's jobs go to, and opening pyiron projects bound to it.

Two kinds of database, chosen per call (``use_user_config``) or automatically (``None``):

* **the user's pyiron configuration** (``~/.pyiron``, the file named by ``PYIRONCONFIG``, or
  ``PYIRON*`` environment variables: a central PostgreSQL, or the user's SQLite file). This is
  the default whenever such a configuration exists, exactly as a plain ``pyiron_base.Project``
  would use it, so jobs sit in the same job table as the user's other jobs;
* **an embedded SQLite database** when there is no pyiron configuration at all: the file
  ``pyiron.db`` in the *root* folder of the project (the folder first opened, or the nearest
  ancestor that is already an embedded root). Sub-projects (``create_group``/``open``) share
  their root's database. Nothing is read from or written to the home directory.

pyiron_base keeps its configuration and connection in process-wide singletons. The projects
this module returns are :class:`BoundProject` instances: ``pyiron_base.Project`` objects (and
the groups, copies and jobs made from them) that re-point pyiron's global state at *their*
database whenever they touch it, so several embedded roots (or an embedded root and the user's
database) can be used side by side in one process. Not thread-safe on its own: hold
:data:`pyiron_lock` around pyiron calls made from several threads.

An embedded root remembers where it lives (a one-row table ``assyst_embedded_root`` in its
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
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

__all__ = [
    "DB_FILE",
    "BoundProject",
    "database_kind",
    "embedded_root",
    "open_project",
    "project_folder",
    "pyiron_lock",
    "quiet",
    "user_config_present",
]

DB_FILE: Final = "pyiron.db"
"""Name of the embedded job-table SQLite file inside a root project folder."""
MARKER_TABLE: Final = "assyst_embedded_root"
"""Table in an embedded ``pyiron.db`` that marks its folder as a root and remembers its path."""
JOB_TABLE: Final = "jobs_pyiron"
"""pyiron's default job-table name (used by the embedded database)."""

_BUSY_TIMEOUT_S: Final = 60.0


def user_config_present() -> bool:
    """Whether the user has a pyiron configuration: a ``PYIRON*`` configuration variable
    (pyiron_base's own list), ``PYIRONCONFIG`` naming a file, or ``~/.pyiron``."""
    if any(name.startswith("PYIRON") for name in os.environ):
        return True
    return Path("~/.pyiron").expanduser().is_file()


def _user_config_fingerprint() -> tuple[Any, ...]:
    """What identifies the user's configuration now (its variables and config file)."""
    variables = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("PYIRON")))
    file = Path(os.environ.get("PYIRONCONFIG", "~/.pyiron")).expanduser()
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
state = pyiron_base.state

pyiron_lock = threading.RLock()
"""Serialises this process's use of pyiron's global state (re-entrant)."""

_live: tuple[Any, ...] | None = None
"""The binding pyiron's global state points at now: ("user", fingerprint) or ("embedded", root)."""
_embedded_connections: dict[str, Any] = {}
"""One pyiron ``DatabaseAccess`` per embedded root, kept open for the whole process."""
_roots: dict[str, str] = {}
"""Folder -> the embedded root it belongs to (cache of :func:`embedded_root`)."""


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow what pyiron prints on stdout (e.g. 'The job ... was saved and received the ID')."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def project_folder(path: str | os.PathLike[str]) -> Path:
    """``path`` as an absolute, resolved folder that exists and is writable (created if missing).

    Raises ``PermissionError`` if it may not be created or written (permissions, read-only file
    system), ``ValueError`` for any other reason (e.g. ``path`` or a parent is a file); both name
    the path.
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


def _marked_root(file: Path) -> str | None:
    """The root path recorded in embedded database ``file`` (None if it is none of ours)."""
    try:
        with _sqlite(file) as db:
            row = db.execute(
                f"SELECT value FROM {MARKER_TABLE} WHERE key = 'root'"
            ).fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])


def embedded_root(path: str | os.PathLike[str]) -> Path | None:
    """The embedded root ``path`` belongs to: the nearest folder, ``path`` itself or an
    ancestor, whose ``pyiron.db`` is an embedded root's (None if there is none)."""
    folder = Path(path).expanduser().absolute().resolve()
    key = str(folder)
    if key in _roots and (Path(_roots[key]) / DB_FILE).is_file():
        return Path(_roots[key])
    for candidate in (folder, *folder.parents):
        file = candidate / DB_FILE
        if file.is_file() and _marked_root(file) is not None:
            _roots[key] = str(candidate)
            return candidate
    return None


def _make_root(root: Path) -> None:
    """Make ``root/pyiron.db`` an embedded root's database (WAL mode, marker row)."""

    def create() -> None:
        with _sqlite(root / DB_FILE) as db:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} "
                "(key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            db.execute(
                f"INSERT OR IGNORE INTO {MARKER_TABLE} VALUES ('root', ?)", (_posix_dir(root),)
            )

    _retry_locked(create)
    nested = [
        str(file.parent)
        for file in root.glob(f"*/**/{DB_FILE}")
        if _marked_root(file) is not None
    ]
    if nested:
        warnings.warn(
            f"new embedded project root {root} contains other embedded roots ({nested[:3]}); "
            "their jobs stay in their own databases and are not listed by this root's "
            "job_table(recursive=True)",
            RuntimeWarning,
            stacklevel=4,
        )


def _relocate(root: Path) -> None:
    """Rewrite the job-table paths of the embedded database in ``root`` if it was moved or
    copied there (its marker names another folder). One transaction; idempotent."""
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
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    if _marked_root(file) != new:
        _retry_locked(rewrite)


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
    return {
        "sql_type": "SQLite",
        "sql_file": str(root / DB_FILE),
        "sql_table_name": JOB_TABLE,
        "project_paths": [_posix_dir(root.parent)],
        "resource_paths": [],
        "project_check_enabled": False,
        "disable_database": False,
        "write_work_dir_warnings": False,
    }


def _release_embedded_connection() -> None:
    """Take an embedded connection out of pyiron's manager before pyiron replaces it (pyiron
    closes the connection it holds; ours stay open for the objects still holding them)."""
    manager = state.database
    if manager.database is not None and manager.database in _embedded_connections.values():
        manager._database = None


def _activate(binding: tuple[Any, ...]) -> None:
    """Point pyiron's global state at ``binding``: ("user",) or ("embedded", root)."""
    global _live
    if binding[0] == "user":
        key: tuple[Any, ...] = ("user", _user_config_fingerprint())
        if _live == key and state.database.database is not None:
            return
        if _live is None and state.database.database is not None:
            # pyiron's state as it stands: read from the configuration at import, or set up
            # by the user in code (state.update({...})); never replace that with a re-read
            _live = key
            return
        _release_embedded_connection()
        state.update()
        if state.database.database_is_disabled:
            raise ValueError(
                "the pyiron configuration disables the database (disable_database / "
                "PYIRONDISABLE); assyst_nodes records stage runs as jobs in a job table: enable "
                "a database in the configuration, or pass use_user_config=False for an "
                "embedded SQLite database in the project folder"
            )
        _live = key
        return
    root = Path(binding[1])
    key = ("embedded", str(root))
    if _live == key and state.database.database is not None:
        return
    _release_embedded_connection()
    state.settings.update(user_dict=_embedded_configuration(root))
    connection = _embedded_connections.get(str(root))
    if connection is None:
        from pyiron_base.database.generic import DatabaseAccess

        connection = DatabaseAccess(f"sqlite:///{root / DB_FILE}", JOB_TABLE)
        connection.conn.exec_driver_sql(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
        connection.conn.commit()
        _embedded_connections[str(root)] = connection
    manager = state.database
    if manager.database is not None:
        manager.close_connection()
    manager._database = connection
    manager._use_local_database = False
    manager._database_is_disabled = False
    _live = key


def database_kind(use_user_config: bool | None = None) -> str:
    """``"user"`` or ``"embedded"``: what ``use_user_config`` (None: automatic) selects."""
    if use_user_config is None:
        use_user_config = user_config_present()
    return "user" if use_user_config else "embedded"


class BoundProject(pyiron_base.Project):  # type: ignore[misc,name-defined]
    """A ``pyiron_base.Project`` bound to one database (the user's, or an embedded root's).

    It re-points pyiron's global state at its database whenever it touches the job table. A
    project pyiron makes from it (groups, copies, the project of a loaded job) is bound to the
    database live when it is made, which is this one. Everything else is pyiron's.
    """

    def __init__(
        self,
        path: str = "",
        user: str | None = None,
        sql_query: str | None = None,
        default_working_directory: bool = False,
        binding: tuple[Any, ...] | None = None,
    ) -> None:
        self._assyst_binding = _current_binding() if binding is None else binding
        with pyiron_lock:
            _activate(self._assyst_binding)  # pyiron computes the paths against its roots
            super().__init__(path, user, sql_query, default_working_directory)

    @property
    def db(self) -> Any:
        with pyiron_lock:
            _activate(self._assyst_binding)
            return super().db

    @property
    def database_kind(self) -> str:
        """``"user"`` (the pyiron configuration's database) or ``"embedded"``."""
        return str(self._assyst_binding[0])

    @property
    def embedded_root(self) -> Path | None:
        """The root folder whose ``pyiron.db`` holds this project's jobs (None: user's)."""
        return Path(self._assyst_binding[1]) if self._assyst_binding[0] == "embedded" else None

    def copy(self) -> BoundProject:
        with pyiron_lock:
            _activate(self._assyst_binding)  # the copy is made bound to the live database
            return super().copy()

    def __getstate__(self) -> dict[str, Any]:
        data = super().__getstate__()
        data["assyst_binding"] = self._assyst_binding
        return data

    def __setstate__(self, data: dict[str, Any]) -> None:
        super().__setstate__(data)
        self._assyst_binding = data.get("assyst_binding", ("user",))


def _current_binding() -> tuple[Any, ...]:
    """The binding pyiron's global state points at now (the user's if none yet)."""
    if _live is not None and _live[0] == "embedded":
        return ("embedded", _live[1])
    return ("user",)


def _bound(path: str, binding: tuple[Any, ...]) -> BoundProject:
    """A :class:`BoundProject` of folder ``path`` bound to ``binding``."""
    from . import jobs  # noqa: F401 - registers the stage jobs: pr.create.job.AssystSample ...

    with quiet():
        return BoundProject(path, binding=binding)


def open_project(project_or_path: Any, use_user_config: bool | None = None) -> BoundProject:
    """The pyiron project of ``project_or_path`` (a folder, a ``pyiron_base.Project`` or any
    group of one, or an object with a ``path``/``project()`` such as a ``ProjectRecorder``),
    bound to its database; the folder is created if missing.

    ``use_user_config``: ``None`` (default) uses the user's pyiron configuration if there is one,
    else an embedded SQLite database in the project's root folder; ``True``/``False`` force
    either. A :class:`BoundProject` passed in keeps its database. Raises ``PermissionError`` or
    ``ValueError`` naming a folder that cannot be created or written.
    """
    if isinstance(project_or_path, BoundProject) and (
        use_user_config is None
        or database_kind(use_user_config) == project_or_path.database_kind
    ):
        return project_or_path
    if use_user_config is None:
        use_user_config = getattr(project_or_path, "use_user_config", None)
    path = getattr(project_or_path, "path", project_or_path)
    with pyiron_lock:
        folder = project_folder(path)
        if database_kind(use_user_config) == "user":
            return _bound(str(folder), ("user",))
        root = embedded_root(folder)
        if root is None:
            root = folder
            _make_root(root)
            _roots[str(folder)] = str(root)
        _relocate(root)
        return _bound(str(folder), ("embedded", str(root)))
