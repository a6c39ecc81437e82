"""Open a pyiron_base project backed by its own SQLite file, without any user configuration.

pyiron_base keeps its configuration and database connection in process-wide singletons
(``pyiron_base.state``). Importing pyiron_base with no ``~/.pyiron`` would connect to (and create)
``~/pyiron.db``; this module therefore imports pyiron_base with the database switched off (only
for the import; the caller's environment is restored right after) and detaches pyiron's
``pyiron.log`` file in the working directory (its warnings still go to stderr).
:func:`open_project` points the global state at ``<folder>/pyiron.db`` before returning the
project.

Because the state is global, only the most recently opened folder is live: a ``Project`` object
of a folder opened earlier talks to the database of the folder opened last. Every function of
this package therefore calls :func:`open_project` again before it touches the job table
(cheap when the folder is already the live one). Not thread-safe: use one folder per thread or
processes.

If pyiron_base was imported before this module (by the user), that import has already read the
user's configuration (and may have created ``~/pyiron.db``); :func:`open_project` re-points the
state anyway.
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
from pathlib import Path
from typing import Any, Final

__all__ = ["DB_FILE", "open_project", "project_folder", "pyiron_lock", "quiet"]

DB_FILE: Final = "pyiron.db"
"""Name of the job-table SQLite file inside a project folder."""

_BUSY_TIMEOUT_MS: Final = 60_000


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
    """Import pyiron_base without letting it open ``~/pyiron.db`` or leave a ``pyiron.log`` in
    the working directory (no-op if already imported)."""
    if "pyiron_base" in sys.modules:
        import pyiron_base

        return pyiron_base
    fresh_logger = "pyiron_snippets.logger" not in sys.modules
    log_existed = Path("pyiron.log").exists()
    old = os.environ.get("PYIRONDISABLE")
    os.environ["PYIRONDISABLE"] = "True"
    try:
        import pyiron_base
    finally:
        if old is None:
            os.environ.pop("PYIRONDISABLE", None)
        else:
            os.environ["PYIRONDISABLE"] = old
        if fresh_logger:
            _drop_log_file(log_existed)
    return pyiron_base


pyiron_base = _import_pyiron_base()
state = pyiron_base.state

# (folder, use_user_config) the global pyiron state currently points at
_live: tuple[str, bool] | None = None

pyiron_lock = threading.RLock()
"""Serialises this process's use of pyiron's global state: hold it from :func:`open_project`
until done with the job table, so threads recording into different folders do not mix."""


@contextlib.contextmanager
def quiet() -> Any:
    """Swallow what pyiron prints on stdout (e.g. 'The job ... was saved and received the ID')."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def project_folder(path: str | os.PathLike[str]) -> Path:
    """``path`` as an absolute folder that exists and is writable (created if missing).

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
    return folder


def _prepare_sqlite(file: Path) -> None:
    """Create ``file`` if missing and switch it to WAL mode (lets two processes write at once)."""
    connection = sqlite3.connect(file, timeout=_BUSY_TIMEOUT_MS / 1000)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def _tune_connection() -> None:
    """Give pyiron's kept SQLite connection a long busy timeout (default is 5 s)."""
    database = state.database.database
    conn = getattr(database, "conn", None)
    if conn is None or not getattr(database, "_sql_lite", False):
        return
    conn.exec_driver_sql(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    conn.commit()


def open_project(path: str | os.PathLike[str], use_user_config: bool = False) -> Any:
    """Open (or create) the pyiron_base ``Project`` in folder ``path``.

    By default the job table lives in ``<path>/pyiron.db`` (SQLite, WAL mode); no config file is
    read and nothing is written outside ``path``. With ``use_user_config=True`` the user's pyiron
    configuration (``~/.pyiron``, ``PYIRON*`` variables; e.g. a Postgres server) is used instead.
    The job table stores project paths relative to the folder's parent, so a project folder can
    be moved or copied elsewhere as a whole.
    Re-points pyiron's global state at this folder (see the module docstring).
    """
    global _live
    folder = project_folder(path)
    key = (str(folder), use_user_config)
    db_file = folder / DB_FILE
    stale = not use_user_config and (
        not db_file.exists()
        or state.database.database is None
        or state.settings.configuration.get("sql_file") != db_file.resolve().as_posix()
    )
    if _live != key or stale:
        if use_user_config:
            state.update()
        else:
            _prepare_sqlite(db_file)
            state.update(
                {
                    "sql_type": "SQLite",
                    "sql_file": str(db_file),
                    "project_paths": [str(folder.parent)],
                    "resource_paths": [],
                    "project_check_enabled": False,
                    "disable_database": False,
                    "write_work_dir_warnings": False,
                }
            )
            _tune_connection()
        _live = key
    with quiet():
        return pyiron_base.Project(str(folder))
