"""The structure index of a project folder: ``<folder>/assyst_index.db`` (SQLite, WAL mode).

pyiron's job table knows jobs, not structures; this small side table maps every stored structure
of the stage jobs *in this folder* to the job and row that hold it, and keeps the per-structure
columns of :func:`~assyst_nodes.project.queries.structure_frame`, so queries by uuid, step or
seed never open a job they do not need, and a table of every structure opens none.

Jobs are keyed by **name** (unique within a folder, and kept by pyiron's ``pack``/``unpack``,
``copy_to`` and ``cp -r``), never by pyiron's numeric id, which ``unpack`` renumbers. Each job
row keeps the ``stamp`` it was indexed with (:func:`~assyst_nodes.project.jobs.job_stamp`: the
job's id in the job table, its file's size and modification time): a job whose stamp changed
(renumbered by ``unpack``, removed and made again under its name, its file written, truncated
or deleted) is indexed again from its file, so a damaged file is reported instead of listed. A
query therefore costs one ``stat`` per job, not one file read.

The index is a cache, never the record: pyiron's job table is. Before every query it is
reconciled with the job table (:meth:`Index.reconcile`): rows of a job that is no longer in the
table (removed with pyiron's ``remove_job``, ``remove_jobs``, ``remove``; or a folder copied
without its database), whose stamp changed, or that is not usable (status other than
``finished``/``warning``) are dropped; a usable job that the index lacks (unpacked, copied with
``copy_to``, or recorded by a process killed before it indexed) is indexed from its file. Two
processes may write at once (WAL mode, 60 s busy timeout, one short transaction per change).

Tables::

    jobs(name, job_id, stamp, stage, digest, n, key)
        one row per indexed stage job; ``digest`` is a hash of the ordered output uuids (finds
        the job that produced an input list exactly); ``key`` a hash of the stage and its
        settings (:func:`settings_key`): jobs of one key give one structure the same outcome
    structures(name, row, uuid, step, seed, parent, created, formula, natoms, volume_per_atom,
               energy_per_atom, max_force, spacegroup, relax_converged, extra)
        one row per output structure of a job: ``row`` is its index in the job's store,
        ``parent`` the last lineage entry, ``created`` 1 if the job made it (its uuid is not one
        of the job's inputs, e.g. a relaxed structure) and 0 if it passed it on (filter,
        combine); then the columns of ``structure_frame`` (Å^3, eV, eV/Å), ``extra`` holding
        the other scalar ``info`` values as JSON
    drops(name, label, reason, detail)
        one row per structure (or grid point) the job dropped; ``label`` is the input's uuid
        for the per-structure stages

A file of an older layout (``PRAGMA user_version``) is emptied and rebuilt from the jobs.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from assyst_nodes.lineage import RELAX_CONVERGED, SEED, SPACEGROUP, STEP, UUID

__all__ = [
    "FRAME_COLUMNS",
    "INDEX_FILE",
    "Index",
    "Stored",
    "digest_of",
    "frame_of",
    "settings_key",
]

INDEX_FILE: Final = "assyst_index.db"
"""Name of the index file inside a project folder."""

_VERSION: Final = 3
FRAME_COLUMNS: Final = (
    UUID,
    SEED,
    STEP,
    "formula",
    "natoms",
    "volume_per_atom",
    "energy_per_atom",
    "max_force",
    SPACEGROUP,
    RELAX_CONVERGED,
)
"""The fixed columns of a structure table (:func:`~assyst_nodes.project.store.structure_table`),
in order; the index keeps every other scalar ``info`` column in ``extra``."""
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY, job_id INTEGER NOT NULL, stamp TEXT NOT NULL, stage TEXT NOT NULL,
    digest TEXT NOT NULL, n INTEGER NOT NULL, key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_digest ON jobs(digest);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(key);
CREATE TABLE IF NOT EXISTS drops (
    name TEXT NOT NULL, label TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT
);
CREATE INDEX IF NOT EXISTS drops_label ON drops(label);
CREATE INDEX IF NOT EXISTS drops_name ON drops(name);
CREATE TABLE IF NOT EXISTS structures (
    name TEXT NOT NULL, row INTEGER NOT NULL, uuid TEXT NOT NULL, step TEXT, seed TEXT,
    parent TEXT, created INTEGER NOT NULL, formula TEXT, natoms INTEGER,
    volume_per_atom REAL, energy_per_atom REAL, max_force REAL, spacegroup INTEGER,
    relax_converged INTEGER, extra TEXT, PRIMARY KEY (name, row)
);
CREATE INDEX IF NOT EXISTS structures_uuid ON structures(uuid);
CREATE INDEX IF NOT EXISTS structures_step ON structures(step);
CREATE INDEX IF NOT EXISTS structures_parent ON structures(parent);
"""
_TABLES: Final = ("jobs", "structures", "drops")
"""The tables of the index (those of older layouts had the same names)."""

Loader = Callable[[str], "Stored"]
"""Reads what the index keeps of a job from its file, given its name."""
JobRow = tuple[int, str, str]
"""(job id, stamp, stage) of a usable job of the job table."""


@dataclass(frozen=True)
class Stored:
    """What the index keeps of one job, as read from its file.

    Parameters
    ----------
    table : pandas.DataFrame
        The structure table of the job's output
        (:func:`~assyst_nodes.project.store.structure_table`; volumes in Å^3/atom, energies in
        eV/atom, forces in eV/Å), one row per output structure.
    parents : sequence of str or None
        The parent of each output structure (its last lineage entry; ``None``: none), in the
        order of ``table``.
    input_uuids : sequence of str
        The uuids of the job's input structures; an output structure whose uuid is among
        them was passed on, not made, by the job.
    key : str, default ""
        The job's :func:`settings_key`: jobs of one key give one structure the same outcome.
    drops : sequence of tuple of str, optional
        The job's drops as (label, reason, detail); ``label`` is the input's uuid for the
        per-structure stages. Default: none (empty).
    """

    table: pd.DataFrame
    parents: Sequence[str | None]
    input_uuids: Sequence[str]
    key: str = ""
    drops: Sequence[tuple[str, str, str]] = field(default_factory=list)


def settings_key(stage: str, settings_text: str) -> str:
    """Hash of a stage and the readable text of its settings.

    Parameters
    ----------
    stage : str
        The stage name, e.g. ``"relax"``.
    settings_text : str
        The readable text of its settings
        (:func:`~assyst_nodes.project.jobs.settings_repr`).

    Returns
    -------
    str
        24 hex digits; jobs of one key give one structure the same outcome.
    """
    return hashlib.sha256(f"{stage}\x00{settings_text}".encode()).hexdigest()[:24]


def digest_of(uuids: Iterable[str]) -> str:
    """Hex digest of an ordered list of uuids.

    Parameters
    ----------
    uuids : iterable of str
        The uuids, in order (the order changes the digest).

    Returns
    -------
    str
        32 hex digits; the index finds the job that produced an input list exactly by it.
    """
    digest = hashlib.blake2b(digest_size=16)
    for uid in uuids:
        digest.update(str(uid).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """A table value as a plain Python scalar (None where it is missing)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    return value


def _rows(name: str, stored: Stored) -> tuple[list[tuple[Any, ...]], list[str]]:
    """The structure rows of job ``name`` and its output uuids in order."""
    table = stored.table
    inputs = set(stored.input_uuids)
    fixed = list(FRAME_COLUMNS)
    extras = [c for c in table.columns if c not in fixed]
    columns = {c: table[c].tolist() if c in table else [None] * len(table) for c in fixed}
    extra_columns = {c: table[c].tolist() for c in extras}
    rows, uuids = [], []
    for k in range(len(table)):
        uid = str(_plain(columns[UUID][k]) or "")
        uuids.append(uid)
        extra = {c: v for c in extras if (v := _plain(extra_columns[c][k])) is not None}
        step, seed = _plain(columns[STEP][k]), _plain(columns[SEED][k])
        rows.append(
            (
                name,
                k,
                uid,
                None if step is None else str(step),
                None if seed is None else str(seed),
                stored.parents[k],
                int(uid not in inputs),
                _plain(columns["formula"][k]),
                _plain(columns["natoms"][k]),
                _plain(columns["volume_per_atom"][k]),
                _plain(columns["energy_per_atom"][k]),
                _plain(columns["max_force"][k]),
                _plain(columns[SPACEGROUP][k]),
                _plain(columns[RELAX_CONVERGED][k]),
                json.dumps(extra) if extra else None,
            )
        )
    return rows, uuids


def _column(values: list[Any]) -> pd.Series:
    """A frame column from plain values (None where missing), typed as a structure table
    types it: booleans ``boolean``, integers ``Int64``, numbers ``float64``, else objects."""
    present = [v for v in values if v is not None]
    kinds = {type(v) for v in present}
    if kinds == {bool}:
        return pd.Series(values, dtype="boolean")
    if kinds == {int}:
        return pd.Series(values, dtype="Int64")
    if kinds and kinds <= {int, float}:
        return pd.Series([np.nan if v is None else float(v) for v in values], dtype="float64")
    return pd.Series(values, dtype=object)


def frame_of(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Build the structure table of index rows.

    Parameters
    ----------
    rows : sequence of sequence
        Index rows, each (uuid, step, seed, formula, natoms, volume_per_atom (Å^3/atom),
        energy_per_atom (eV/atom), max_force (eV/Å), spacegroup, relax_converged, extra), with
        ``None`` where a value is missing and ``extra`` the other scalar ``info`` values as
        JSON text.

    Returns
    -------
    pandas.DataFrame
        The table as :func:`~assyst_nodes.project.store.structure_table` gives it: the fixed
        columns (:data:`FRAME_COLUMNS`), then the other scalar ``info`` keys in the order they
        first appear.
    """
    n = len(rows)
    uuid, step, seed, formula, natoms, volume, energy, force, group, converged, extra = (
        list(c) for c in zip(*rows, strict=True)
    ) if n else ([] for _ in range(11))
    data: dict[str, Any] = {
        UUID: pd.Series(uuid, dtype=object),
        SEED: pd.Series(seed, dtype=object),
        STEP: pd.Series(step, dtype=object),
        "formula": pd.Series([f or "" for f in formula], dtype=object),
        "natoms": pd.Series(natoms, dtype=np.int64),
        "volume_per_atom": pd.Series(volume, dtype="float64"),
        "energy_per_atom": pd.Series(energy, dtype="float64"),
        "max_force": pd.Series(force, dtype="float64"),
        SPACEGROUP: pd.Series(group, dtype="Int64"),
        RELAX_CONVERGED: pd.Series(
            [None if c is None else bool(c) for c in converged], dtype="boolean"
        ),
    }
    others: dict[str, list[Any]] = {}
    for k, text in enumerate(extra):
        if not text:
            continue
        for key, value in json.loads(text).items():
            others.setdefault(key, [None] * n)[k] = value
    for key, values in others.items():
        data[key] = _column(values)
    return pd.DataFrame(data)


class Index:
    """Handle on the index file of one project folder (opens a connection per operation).

    Parameters
    ----------
    folder : str or pathlib.Path
        The project folder; the index is its file :data:`INDEX_FILE`. A missing file (or one
        of an older layout) reads as empty; the first write makes (or rebuilds) it.
    """

    def __init__(self, folder: str | Path) -> None:
        self.file = Path(folder) / INDEX_FILE

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection in WAL mode with a 60 s busy timeout; commits on success if ``write``.
        A missing file, or one of an older layout, reads as empty; a writer rebuilds it."""
        if write or self.file.exists():
            connection = sqlite3.connect(self.file, timeout=60.0)
        else:
            connection = sqlite3.connect(":memory:")
        try:
            connection.execute("PRAGMA busy_timeout=60000")
            if write and connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
            if connection.execute("PRAGMA user_version").fetchone()[0] != _VERSION:
                if write:
                    connection.execute("BEGIN IMMEDIATE")
                    for table in _TABLES:
                        connection.execute(f"DROP TABLE IF EXISTS {table}")
                    connection.executescript(_SCHEMA)  # commits
                    connection.execute(f"PRAGMA user_version={_VERSION}")
                else:
                    connection.close()
                    connection = sqlite3.connect(":memory:")
            connection.executescript(_SCHEMA)
            if write:
                connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
        finally:
            connection.close()

    def add_job(self, name: str, job_id: int, stamp: str, stage: str, stored: Stored) -> None:
        """Record job ``name``'s output structures and drops (replacing what it had)."""
        with self._connect(write=True) as db:
            self._insert(db, name, job_id, stamp, stage, stored)

    @staticmethod
    def _delete(db: sqlite3.Connection, name: str) -> None:
        for table in _TABLES:
            db.execute(f"DELETE FROM {table} WHERE name = ?", (name,))

    @classmethod
    def _insert(
        cls,
        db: sqlite3.Connection,
        name: str,
        job_id: int,
        stamp: str,
        stage: str,
        stored: Stored,
    ) -> None:
        rows, uuids = _rows(name, stored)
        cls._delete(db, name)
        db.execute(
            "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, int(job_id), stamp, stage, digest_of(uuids), len(uuids), stored.key),
        )
        db.executemany(
            f"INSERT INTO structures VALUES ({', '.join('?' * 15)})", rows
        )
        db.executemany(
            "INSERT INTO drops VALUES (?, ?, ?, ?)",
            [(name, str(lbl), str(why), str(detail)) for lbl, why, detail in stored.drops],
        )

    def remove_job(self, name: str) -> None:
        """Forget job ``name``, its structures and drops."""
        if not self.file.exists():
            return
        with self._connect(write=True) as db:
            self._delete(db, name)

    def jobs(self) -> dict[str, tuple[int, str, str]]:
        """Name -> (job id, stamp, stage) of every indexed job."""
        with self._connect() as db:
            rows = db.execute("SELECT name, job_id, stamp, stage FROM jobs").fetchall()
        return {str(n): (int(i), str(s), str(st)) for n, i, s, st in rows}

    def stamp_of(self, name: str) -> str | None:
        """The stamp job ``name`` was indexed with (None if it is not indexed)."""
        with self._connect() as db:
            row = db.execute("SELECT stamp FROM jobs WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def jobs_of_key(self, key: str) -> list[str]:
        """Names of the jobs of settings key ``key``, oldest (lowest job id) first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT name FROM jobs WHERE key = ? ORDER BY job_id", (key,)
            ).fetchall()
        return [str(n) for (n,) in rows]

    def drops_of(self, names: Iterable[str]) -> list[tuple[str, str, str]]:
        """(label, reason, detail) of the drops of jobs ``names``, newest job first."""
        wanted = [str(n) for n in names]
        if not wanted:
            return []
        with self._connect() as db:
            rows = db.execute(
                "SELECT d.label, d.reason, d.detail FROM drops d JOIN jobs j ON d.name = j.name "
                f"WHERE d.name IN ({', '.join('?' * len(wanted))}) ORDER BY j.job_id DESC",
                wanted,
            ).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def reconcile(
        self,
        table: Mapping[str, JobRow],
        load: Loader,
        indexed: Mapping[str, tuple[int, str, str]] | None = None,
    ) -> list[str]:
        """Make the index hold exactly the usable stage jobs ``table`` lists (name -> (job id,
        stamp, stage), from pyiron's job table for this folder): drop the others, index the
        missing or re-stamped ones with ``load`` (which may raise, e.g. for a damaged file).
        ``indexed``: :meth:`jobs`, if the caller has just read it. Returns the names indexed
        now."""
        indexed = self.jobs() if indexed is None else indexed
        stale = [n for n, (_, stamp, _) in indexed.items() if table.get(n, (0, None))[1] != stamp]
        missing = [n for n, (_, stamp, _) in table.items() if indexed.get(n, (0, None))[1] != stamp]
        if not stale and not missing:
            return []
        loaded = [(n, *table[n], load(n)) for n in missing]  # outside the write lock
        with self._connect(write=True) as db:
            for name in stale:
                self._delete(db, name)
            for name, job_id, stamp, stage, stored in loaded:
                self._insert(db, name, job_id, stamp, stage, stored)
        return [name for name, *_ in loaded]

    def outcomes(
        self,
        key: str,
        uuids: Sequence[str],
        skip_reasons: Iterable[str] = (),
        names: Iterable[str] | None = None,
    ) -> dict[str, tuple[str, Any, Any]]:
        """What the jobs of ``key`` (only those of ``names`` if given: the usable ones of the
        job table) made of the structures ``uuids``: per known uuid ``("result", name, row)``
        (the structure made from it) or ``("drop", reason, detail)`` (drops with a reason in
        ``skip_reasons`` left out). A result wins over a drop; the oldest job wins among
        equals."""
        skip = set(skip_reasons)
        allowed = None if names is None else {str(n) for n in names}
        found: dict[str, tuple[str, Any, Any]] = {}
        with self._connect() as db:
            db.execute("CREATE TEMP TABLE wanted (uuid TEXT PRIMARY KEY)")
            db.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", [(str(u),) for u in uuids])
            for uid, name, row in db.execute(
                "SELECT s.parent, s.name, s.row FROM structures s "
                "JOIN jobs j ON s.name = j.name JOIN wanted w ON s.parent = w.uuid "
                "WHERE j.key = ? AND s.created = 1 ORDER BY j.job_id DESC",
                (key,),
            ):
                if allowed is None or str(name) in allowed:
                    found[str(uid)] = ("result", str(name), int(row))
            for name, label, reason, detail in db.execute(
                "SELECT d.name, d.label, d.reason, d.detail FROM drops d "
                "JOIN jobs j ON d.name = j.name JOIN wanted w ON d.label = w.uuid "
                "WHERE j.key = ? ORDER BY j.job_id DESC",
                (key,),
            ):
                if allowed is not None and str(name) not in allowed:
                    continue
                if reason not in skip and found.get(str(label), ("drop",))[0] == "drop":
                    found[str(label)] = ("drop", str(reason), str(detail))
        return found

    def exact_producer(self, uuids: Sequence[str]) -> str | None:
        """The oldest job whose output is exactly ``uuids`` in this order: the one that made
        the list, not a later job that passed it on unchanged (None if none)."""
        if not uuids:
            return None
        with self._connect() as db:
            hit = db.execute(
                "SELECT name FROM jobs WHERE digest = ? AND n = ? ORDER BY job_id ASC LIMIT 1",
                (digest_of(uuids), len(uuids)),
            ).fetchone()
        return None if hit is None else str(hit[0])

    def producer(self, uuids: Sequence[str]) -> str | None:
        """:meth:`exact_producer`, else the job that made the first of ``uuids``; ``None`` if
        unknown or empty."""
        exact = self.exact_producer(uuids)
        if exact is not None or not uuids:
            return exact
        with self._connect() as db:
            hit = db.execute(
                "SELECT s.name FROM structures s JOIN jobs j ON s.name = j.name "
                "WHERE s.uuid = ? ORDER BY s.created DESC, j.job_id ASC LIMIT 1",
                (str(uuids[0]),),
            ).fetchone()
        return None if hit is None else str(hit[0])

    def select(
        self,
        step: str | None = None,
        names: Sequence[str] | None = None,
        stage: str | None = None,
        uuids: Sequence[str] | None = None,
        frame: bool = False,
    ) -> list[tuple[Any, ...]]:
        """Rows (uuid, name, row, stage, step, created, job_id) matching all given filters,
        ordered by job id and row (or in the order of ``uuids`` when given); with ``frame``,
        each row goes on with the structure-table columns (seed, formula, natoms,
        volume_per_atom, energy_per_atom, max_force, spacegroup, relax_converged, extra)."""
        where = ["1 = 1"]
        params: list[object] = []
        if step is not None:
            where.append("s.step = ?")
            params.append(step)
        if stage is not None:
            where.append("j.stage = ?")
            params.append(stage)
        if names is not None:
            where.append(f"s.name IN ({', '.join('?' * len(names))})")
            params.extend(str(n) for n in names)
        columns = "s.uuid, s.name, s.row, j.stage, s.step, s.created, j.job_id"
        if frame:
            columns += (
                ", s.seed, s.formula, s.natoms, s.volume_per_atom, s.energy_per_atom, "
                "s.max_force, s.spacegroup, s.relax_converged, s.extra"
            )
        query = f"SELECT {columns} FROM structures s JOIN jobs j ON s.name = j.name"
        with self._connect() as db:
            if uuids is not None:
                db.execute("CREATE TEMP TABLE wanted (pos INTEGER, uuid TEXT)")
                db.executemany(
                    "INSERT INTO wanted VALUES (?, ?)", [(k, str(u)) for k, u in enumerate(uuids)]
                )
                query += " JOIN wanted w ON s.uuid = w.uuid"
                order = " ORDER BY w.pos, s.created DESC, j.job_id, s.row"
            else:
                order = " ORDER BY j.job_id, s.row"
            return db.execute(query + " WHERE " + " AND ".join(where) + order, params).fetchall()
