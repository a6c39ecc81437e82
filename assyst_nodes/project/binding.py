"""A pyiron ``Project`` bound to its database (:class:`BoundProject`), and how a folder is
bound: :func:`bind_project` (the database level of
:func:`~assyst_nodes.project.operations.open_project`) and :func:`bound_project` (the folder of
a loaded job). Which database a folder belongs to, and the process-wide connections, are
:mod:`assyst_nodes.project.database`'s.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from .database import (
    BOOKKEEPING,
    Binding,
    _activate,
    _current_binding,
    _hiding_bookkeeping,
    _prepare_root,
    binding_of,
    database_kind,
    embedded_root,
    project_folder,
    pyiron_base,
    pyiron_lock,
    quiet,
)

__all__ = ["BoundProject", "bind_project", "bound_project"]


class BoundProject(pyiron_base.Project):  # type: ignore[misc,name-defined]
    """A ``pyiron_base.Project`` bound to one database (the user's, or an embedded root's).

    It re-points pyiron's global state at its database whenever it touches the job table. A
    project pyiron makes from it (groups, copies) is bound to the database live when it is made,
    which is this one. ``pack`` and ``unpack`` work from any working directory, with relative
    or absolute paths; ``unpack`` refuses an archive whose jobs would take the names of jobs
    already there. Everything else is pyiron's.

    Usually made by :func:`~assyst_nodes.project.operations.open_project` rather than directly.

    Parameters
    ----------
    path : str, default ""
        The project folder, absolute or relative to the working directory (pyiron's ``path``).
    user : str, optional
        pyiron's user of the project. Default: ``None`` (pyiron's).
    sql_query : str, optional
        pyiron's SQL query selecting a subset of the project's jobs. Default: ``None`` (all
        jobs).
    default_working_directory : bool, default False
        pyiron's: with ``path=""``, open the project folder of the pyiron ``ScriptJob`` this
        runs in (else the working directory).
    binding : tuple, optional
        The database: ``("user",)`` or ``("embedded", root)`` (see :func:`binding_of`).
        Default: ``None`` (the one pyiron's global state points at now; the user's if none
        yet).
    """

    def __init__(
        self,
        path: str = "",
        user: str | None = None,
        sql_query: str | None = None,
        default_working_directory: bool = False,
        binding: Binding | None = None,
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

    @property
    def binding(self) -> Binding:
        """The database this project is bound to: ``("user",)`` or ``("embedded", root)``."""
        return self._assyst_binding

    def copy(self) -> BoundProject:
        with pyiron_lock:
            _activate(self._assyst_binding)  # the copy is made bound to the live database
            return super().copy()

    def list_files(self, extension: str | None = None) -> list[str]:
        files = super().list_files(extension)
        if _hiding_bookkeeping.get() and extension is None:
            return [f for f in files if f not in BOOKKEEPING]
        return files

    def list_groups(self) -> list[str]:
        groups = super().list_groups()
        if _hiding_bookkeeping.get():
            return [g for g in groups if g not in BOOKKEEPING]
        return groups

    def copy_to(self, destination: Any, delete_original_data: bool = False) -> Any:
        """pyiron's ``copy_to`` (and so ``move_to``) of this project into ``destination``.

        Jobs and files are copied, except what this package keeps beside the jobs
        (:data:`BOOKKEEPING`): pyiron copies every other file of the folder, which would put
        this folder's embedded database and structure index over the destination's.

        Parameters
        ----------
        destination : pyiron_base.Project
            The project (folder) to copy into.
        delete_original_data : bool, default False
            pyiron's: remove this project's jobs and files after copying (a move).

        Returns
        -------
        pyiron_base.Project
            What pyiron's ``copy_to`` returns: the destination project.
        """
        token = _hiding_bookkeeping.set(True)
        try:
            return super().copy_to(destination, delete_original_data=delete_original_data)
        finally:
            _hiding_bookkeeping.reset(token)

    def pack(
        self,
        destination_path: str | None = None,
        compress: bool = True,
        copy_all_files: bool = False,
        **kwargs: Any,
    ) -> None:
        """pyiron's ``pack`` of this project's jobs, from any working directory.

        Parameters
        ----------
        destination_path : str, optional
            Where the archive goes (``<destination_path>.tar.gz``, or a folder), relative to
            the working directory or absolute. Default: ``None`` (this project's folder).
        compress : bool, default True
            pyiron's: a ``.tar.gz`` archive (else a folder).
        copy_all_files : bool, default False
            pyiron's: every file of the project folder, not only the ``.h5`` job files.
        **kwargs
            Passed on to pyiron's ``pack``.

        Notes
        -----
        pyiron computes the paths it stores relative to the working directory, so the pack
        itself runs from the folder pyiron's paths start at (``root_path``; the file-system
        root where pyiron has no project paths).
        """
        destination = os.path.abspath(destination_path or self.path.rstrip("/"))
        with pyiron_lock:
            _activate(self._assyst_binding)
            # without project paths pyiron stores absolute folders: from the file-system root
            # its relative paths have no "..", which the archive could not hold
            with contextlib.chdir(self.root_path or os.path.abspath(os.sep)):
                super().pack(
                    destination_path=destination, compress=compress,
                    copy_all_files=copy_all_files, **kwargs,
                )

    def unpack(self, origin_path: str, **kwargs: Any) -> None:
        """pyiron's ``unpack`` of ``origin_path`` into this project, from any working directory.

        An archive without jobs is taken in as nothing. The ``export.csv`` (the archive's job
        table) pyiron copies into the project folder is removed again, unless one was there.

        Parameters
        ----------
        origin_path : str
            An archive (``.tar.gz``) or a folder, as :meth:`pack` writes it; relative to the
            working directory or absolute.
        **kwargs
            Passed on to pyiron's ``unpack``.

        Raises
        ------
        ValueError
            If a job of the archive would take the name of a job already in its project (pyiron
            would overwrite that job's file); names them, and nothing is changed.
        """
        origin = os.path.abspath(origin_path)
        with pyiron_lock:
            _activate(self._assyst_binding)
            if _archived_jobs(origin).empty:
                return  # an archive of a project without jobs: nothing to take in
            clashes = _unpack_clashes(self, origin)
            if clashes:
                shown = ", ".join(clashes[:5]) + (", ..." if len(clashes) > 5 else "")
                raise ValueError(
                    f"cannot unpack {origin} into {self.path}: {len(clashes)} of its jobs have "
                    f"the names of jobs already there ({shown}); pyiron would overwrite their "
                    "files. Unpack into a new group instead (pr.create_group('imported'))"
                )
            left = Path(self.path) / "export.csv"
            had = left.exists()
            with tempfile.TemporaryDirectory() as empty, contextlib.chdir(empty):
                # pyiron reads an export.csv of the working directory before the archive's
                super().unpack(origin_path=origin, **kwargs)
            if not had:  # pyiron copies the archive's job table along; it is no project file
                left.unlink(missing_ok=True)

    def __getstate__(self) -> dict[str, Any]:
        data = super().__getstate__()
        data["assyst_binding"] = self._assyst_binding
        return data

    def __setstate__(self, data: dict[str, Any]) -> None:
        super().__setstate__(data)
        self._assyst_binding = data.get("assyst_binding", ("user",))


def _archived_jobs(origin: str) -> Any:
    """The job table pyiron's ``pack`` wrote into the archive ``origin`` (``.tar.gz`` or a
    folder)."""
    import pandas as pd

    if origin.endswith(".tar.gz"):
        return pyiron_base.Project.unpack_csv(origin)
    for folder, _, files in os.walk(origin):  # the one pyiron's unpack reads: the first found
        if "export.csv" in files:
            return pd.read_csv(os.path.join(folder, "export.csv"), index_col=0)
    raise FileNotFoundError(f"no export.csv (pyiron's archived job table) in {origin}")


def _unpack_clashes(project: BoundProject, origin: str) -> list[str]:
    """Names of the archive's jobs (``origin``: ``.tar.gz`` or a folder) that would land on a
    job of the same name in ``project``'s database."""
    import posixpath

    table = _archived_jobs(origin)
    if table.empty:
        return []
    common = posixpath.commonpath(list(table["project"]))
    clashes = []
    for name, folder in zip(table["job"], table["project"], strict=True):
        target = posixpath.normpath(
            posixpath.join(project.project_path, posixpath.relpath(folder, common))
        ) + "/"
        if project.db.get_items_dict({"job": str(name), "project": target}):
            clashes.append(f"{target}{name}")
    return clashes


def _bound(path: str, binding: Binding) -> BoundProject:
    """A :class:`BoundProject` of folder ``path`` bound to ``binding``."""
    with quiet():
        return BoundProject(path, binding=binding)


def bound_project(path: str | os.PathLike[str]) -> BoundProject:
    """A :class:`BoundProject` of an existing job folder on the database its jobs are in; used
    to bind the project of a loaded job.

    Parameters
    ----------
    path : str or os.PathLike
        The job folder: its embedded root's database if it is inside one, else the user's
        configured database.

    Returns
    -------
    BoundProject
        The project of the folder, bound to that database.
    """
    folder = Path(path).expanduser().absolute()
    root = embedded_root(folder)
    binding: Binding = ("embedded", str(root)) if root is not None else ("user",)
    if root is not None:
        _prepare_root(root)
    return _bound(str(folder), binding)


def bind_project(project_or_path: Any, use_user_config: bool | None = None) -> BoundProject:
    """The pyiron project of ``project_or_path``, bound to its database; the folder is created
    if missing. What :func:`assyst_nodes.project.operations.open_project` (the function to
    use) does at the database level: it also registers the job classes and releases the stage
    jobs of older versions.

    Parameters
    ----------
    project_or_path : str, os.PathLike or object
        A folder (absolute or relative to the working directory), a ``pyiron_base.Project`` or
        any group of one, or an object with a ``path``/``project()`` such as a
        :class:`~assyst_nodes.project.recorder.ProjectRecorder` (whose own ``use_user_config``
        applies where the argument here is ``None``). A :class:`BoundProject` already on the
        kind of database asked for is returned as it is.
    use_user_config : bool, optional
        A folder inside an embedded root always opens on that root's database. Elsewhere:
        ``None`` (default) uses the user's pyiron configuration if there is one, else makes the
        folder an embedded root; ``True``/``False`` force either.

    Returns
    -------
    BoundProject
        The project of the folder, bound to its database.

    Raises
    ------
    ValueError
        For ``use_user_config=True`` inside an embedded root (the message says how to move the
        jobs), for a new embedded root in a folder holding another job table's job files, and
        naming a folder that cannot be created or written (other than for permissions).
    PermissionError
        Naming a folder that may not be created or written (permissions, read-only file system).
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
        binding = binding_of(folder, use_user_config)
        return _bound(str(folder), binding)
