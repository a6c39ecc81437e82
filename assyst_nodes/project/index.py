"""The structure index of a project folder: ``<folder>/assyst_index.db`` (SQLite, WAL mode).

pyiron's job table knows jobs, not structures; this small side table maps every stored structure
of the stage jobs *in this folder* to the job and row that hold it, so queries by uuid, step or
seed never open a job they do not need. Each folder (a pyiron project or group) that holds
stage jobs has its own index, next to the jobs' HDF5 files.

The index is a cache, never the record: pyiron's job table is. Before every query it is
reconciled with the job table (:meth:`Index.reconcile`): rows of a job that is no longer in the
table (removed with pyiron's ``remove_job``, ``remove_jobs``, ``remove``; or a folder copied
without its database), whose id now names another job, or that is not usable (status other than
``finished``/``warning``) are dropped; a usable job that the index lacks (unpacked, copied with
``copy_to``, or recorded by a process killed before it indexed) is indexed from its file. Two
processes may write at once (WAL mode, 60 s busy timeout, one short transaction per change).

Tables::

    jobs(job_id, name, stage, digest, n, key)
        one row per indexed stage job; ``digest`` is a hash of the ordered output uuids (finds
        the job that produced an input list exactly); ``key`` a hash of the stage and its
        settings (:func:`settings_key`): jobs of one key give one structure the same outcome
    structures(uuid, job_id, row, step, seed, parent, created)
        one row per output structure of a job: ``row`` is its index in the job's store,
        ``parent`` the last lineage entry, ``created`` 1 if the job made it (its uuid is not one
        of the job's inputs, e.g. a relaxed structure) and 0 if it passed it on (filter,
        combine)
    drops(job_id, label, reason, detail)
        one row per structure (or grid point) the job dropped; ``label`` is the input's uuid
        for the per-structure stages

A file of an older layout (``PRAGMA user_version``) is emptied and rebuilt from the jobs.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ase import Atoms

from assyst_nodes.lineage import SEED, STEP, UUID, parent_of

__all__ = ["INDEX_FILE", "Index", "Stored", "digest_of", "settings_key"]

INDEX_FILE: Final = "assyst_index.db"
"""Name of the index file inside a project folder."""

_VERSION: Final = 2
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id INTEGER PRIMARY KEY, name TEXT NOT NULL, stage TEXT NOT NULL, digest TEXT NOT NULL,
    n INTEGER NOT NULL, key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_digest ON jobs(digest);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(key);
CREATE TABLE IF NOT EXISTS drops (
    job_id INTEGER NOT NULL, label TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT
);
CREATE INDEX IF NOT EXISTS drops_label ON drops(label);
CREATE TABLE IF NOT EXISTS structures (
    uuid TEXT NOT NULL, job_id INTEGER NOT NULL, row INTEGER NOT NULL, step TEXT, seed TEXT,
    parent TEXT, created INTEGER NOT NULL, PRIMARY KEY (job_id, row)
);
CREATE INDEX IF NOT EXISTS structures_uuid ON structures(uuid);
CREATE INDEX IF NOT EXISTS structures_step ON structures(step);
CREATE INDEX IF NOT EXISTS structures_parent ON structures(parent);
"""
_TABLES: Final = ("jobs", "structures", "drops")

Loader = Callable[[int, str], "Stored"]
"""Reads what the index keeps of a job from its file, given its id and name."""


@dataclass(frozen=True)
class Stored:
    """What the index keeps of one job: its output structures, its inputs' uuids, its
    :func:`settings_key` and its drops (label, reason, detail)."""

    structures: Sequence[Atoms]
    input_uuids: Sequence[str]
    key: str = ""
    drops: Sequence[tuple[str, str, str]] = ()


def settings_key(stage: str, settings_text: str) -> str:
    """Hash of a stage and the readable text of its settings (``settings_repr``)."""
    return hashlib.sha256(f"{stage}\x00{settings_text}".encode()).hexdigest()[:24]


def digest_of(uuids: Iterable[str]) -> str:
    """Hex digest of an ordered list of uuids."""
    digest = hashlib.blake2b(digest_size=16)
    for uid in uuids:
        digest.update(str(uid).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _rows(
    job_id: int, structures: Sequence[Atoms], input_uuids: Iterable[str]
) -> tuple[list[tuple[object, ...]], list[str]]:
    """The structure rows of job ``job_id`` and its output uuids in order."""
    inputs = set(input_uuids)
    rows = []
    uuids = []
    for row, atoms in enumerate(structures):
        info = atoms.info
        uid = str(info.get(UUID, ""))
        uuids.append(uid)
        seed = info.get(SEED)
        step = info.get(STEP)
        rows.append(
            (
                uid,
                job_id,
                row,
                None if step is None else str(step),
                None if seed is None else str(seed),
                parent_of(atoms),
                int(uid not in inputs),
            )
        )
    return rows, uuids


class Index:
    """Handle on the index file of one project folder (opens a connection per operation)."""

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

    def add_job(self, job_id: int, name: str, stage: str, stored: Stored) -> None:
        """Record job ``job_id``'s output structures and drops (replacing what it had)."""
        with self._connect(write=True) as db:
            self._insert(db, job_id, name, stage, stored)

    @staticmethod
    def _delete(db: sqlite3.Connection, job_id: int) -> None:
        for table in _TABLES:
            db.execute(f"DELETE FROM {table} WHERE job_id = ?", (int(job_id),))

    @classmethod
    def _insert(
        cls, db: sqlite3.Connection, job_id: int, name: str, stage: str, stored: Stored
    ) -> None:
        rows, uuids = _rows(job_id, stored.structures, stored.input_uuids)
        cls._delete(db, job_id)
        db.execute(
            "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?)",
            (job_id, name, stage, digest_of(uuids), len(uuids), stored.key),
        )
        db.executemany("INSERT INTO structures VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        db.executemany(
            "INSERT INTO drops VALUES (?, ?, ?, ?)",
            [(job_id, str(lbl), str(why), str(detail)) for lbl, why, detail in stored.drops],
        )

    def remove_job(self, job_id: int) -> None:
        """Forget job ``job_id``, its structures and drops."""
        if not self.file.exists():
            return
        with self._connect(write=True) as db:
            self._delete(db, job_id)

    def jobs_of_key(self, key: str) -> list[tuple[int, str]]:
        """(job id, name) of the jobs of settings key ``key``, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT job_id, name FROM jobs WHERE key = ? ORDER BY job_id", (key,)
            ).fetchall()
        return [(int(i), str(n)) for i, n in rows]

    def drops_of(self, job_ids: Iterable[int]) -> list[tuple[str, str, str]]:
        """(label, reason, detail) of the drops of jobs ``job_ids``, newest job first."""
        ids = [int(i) for i in job_ids]
        if not ids:
            return []
        with self._connect() as db:
            rows = db.execute(
                f"SELECT label, reason, detail FROM drops WHERE job_id IN "
                f"({', '.join('?' * len(ids))}) ORDER BY job_id DESC",
                ids,
            ).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def jobs(self) -> dict[int, tuple[str, str]]:
        """Job id -> (name, stage) of every indexed job."""
        with self._connect() as db:
            rows = db.execute("SELECT job_id, name, stage FROM jobs").fetchall()
        return {int(i): (str(n), str(s)) for i, n, s in rows}

    def reconcile(self, table: Mapping[int, tuple[str, str]], load: Loader) -> list[int]:
        """Make the index hold exactly the usable stage jobs ``table`` lists (job id -> (name,
        stage), from pyiron's job table for this folder): drop the others, index the missing
        ones with ``load`` (which may raise, e.g. for a damaged file). Returns the ids indexed
        now."""
        indexed = self.jobs()
        stale = [i for i, (name, _) in indexed.items() if table.get(i, (None,))[0] != name]
        missing = [i for i in table if i not in indexed or indexed[i][0] != table[i][0]]
        if not stale and not missing:
            return []
        loaded = [(i, *table[i], load(i, table[i][0])) for i in missing]  # outside the lock
        with self._connect(write=True) as db:
            for job_id in stale:
                self._delete(db, job_id)
            for job_id, name, stage, stored in loaded:
                self._insert(db, job_id, name, stage, stored)
        return [job_id for job_id, *_ in loaded]

    def outcomes(
        self,
        key: str,
        uuids: Sequence[str],
        skip_reasons: Iterable[str] = (),
        job_ids: Iterable[int] | None = None,
    ) -> dict[str, tuple[str, Any, Any]]:
        """What the jobs of ``key`` (only those of ``job_ids`` if given: the usable ones of the
        job table) made of the structures ``uuids``: per known uuid ``("result", job_id,
        row)`` (the structure made from it) or ``("drop", reason, detail)`` (drops with a reason
        in ``skip_reasons`` left out). A result wins over a drop; the oldest job wins among
        equals."""
        skip = set(skip_reasons)
        allowed = None if job_ids is None else {int(i) for i in job_ids}
        found: dict[str, tuple[str, Any, Any]] = {}
        with self._connect() as db:
            db.execute("CREATE TEMP TABLE wanted (uuid TEXT PRIMARY KEY)")
            db.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", [(str(u),) for u in uuids])
            for uid, job_id, row in db.execute(
                "SELECT s.parent, s.job_id, s.row FROM structures s "
                "JOIN jobs j ON s.job_id = j.job_id JOIN wanted w ON s.parent = w.uuid "
                "WHERE j.key = ? AND s.created = 1 ORDER BY s.job_id DESC",
                (key,),
            ):
                if allowed is None or int(job_id) in allowed:
                    found[str(uid)] = ("result", int(job_id), int(row))
            for job_id, label, reason, detail in db.execute(
                "SELECT d.job_id, d.label, d.reason, d.detail FROM drops d "
                "JOIN jobs j ON d.job_id = j.job_id JOIN wanted w ON d.label = w.uuid "
                "WHERE j.key = ? ORDER BY d.job_id DESC",
                (key,),
            ):
                if allowed is not None and int(job_id) not in allowed:
                    continue
                if reason not in skip and found.get(str(label), ("drop",))[0] == "drop":
                    found[str(label)] = ("drop", str(reason), str(detail))
        return found

    def exact_producer(self, uuids: Sequence[str]) -> int | None:
        """The newest job whose output is exactly ``uuids`` in this order (None if none)."""
        if not uuids:
            return None
        with self._connect() as db:
            hit = db.execute(
                "SELECT job_id FROM jobs WHERE digest = ? AND n = ? ORDER BY job_id DESC LIMIT 1",
                (digest_of(uuids), len(uuids)),
            ).fetchone()
        return None if hit is None else int(hit[0])

    def producer(self, uuids: Sequence[str]) -> int | None:
        """:meth:`exact_producer`, else the job that made the first of ``uuids``; ``None`` if
        unknown or empty."""
        exact = self.exact_producer(uuids)
        if exact is not None or not uuids:
            return exact
        with self._connect() as db:
            hit = db.execute(
                "SELECT job_id FROM structures WHERE uuid = ? "
                "ORDER BY created DESC, job_id ASC LIMIT 1",
                (str(uuids[0]),),
            ).fetchone()
        return None if hit is None else int(hit[0])

    def select(
        self,
        step: str | None = None,
        job_ids: Sequence[int] | None = None,
        stage: str | None = None,
        uuids: Sequence[str] | None = None,
    ) -> list[tuple[str, int, int, str, str | None, int]]:
        """Rows (uuid, job_id, row, stage, step, created) matching all given filters, ordered
        by job id and row (or in the order of ``uuids`` when given)."""
        where = ["1 = 1"]
        params: list[object] = []
        if step is not None:
            where.append("s.step = ?")
            params.append(step)
        if stage is not None:
            where.append("j.stage = ?")
            params.append(stage)
        if job_ids is not None:
            where.append(f"s.job_id IN ({', '.join('?' * len(job_ids))})")
            params.extend(int(i) for i in job_ids)
        query = (
            "SELECT s.uuid, s.job_id, s.row, j.stage, s.step, s.created FROM structures s "
            "JOIN jobs j ON s.job_id = j.job_id"
        )
        with self._connect() as db:
            if uuids is not None:
                db.execute("CREATE TEMP TABLE wanted (pos INTEGER, uuid TEXT)")
                db.executemany(
                    "INSERT INTO wanted VALUES (?, ?)", [(k, str(u)) for k, u in enumerate(uuids)]
                )
                query += " JOIN wanted w ON s.uuid = w.uuid"
                order = " ORDER BY w.pos, s.created DESC, s.job_id, s.row"
            else:
                order = " ORDER BY s.job_id, s.row"
            rows = db.execute(query + " WHERE " + " AND ".join(where) + order, params).fetchall()
        return [
            (str(u), int(j), int(r), str(st), sp, int(c)) for u, j, r, st, sp, c in rows
        ]
