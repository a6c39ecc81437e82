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

    jobs(job_id, name, stage, digest, n)
        one row per indexed stage job; ``digest`` is a hash of the ordered output uuids (finds
        the job that produced an input list exactly)
    structures(uuid, job_id, row, step, seed, parent, created)
        one row per output structure of a job: ``row`` is its index in the job's store,
        ``parent`` the last lineage entry, ``created`` 1 if the job made it (its uuid is not one
        of the job's inputs, e.g. a relaxed structure) and 0 if it passed it on (filter,
        combine)
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Final

from ase import Atoms

from assyst_nodes.lineage import SEED, STEP, UUID, parent_of

__all__ = ["INDEX_FILE", "Index", "digest_of"]

INDEX_FILE: Final = "assyst_index.db"
"""Name of the index file inside a project folder."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id INTEGER PRIMARY KEY, name TEXT NOT NULL, stage TEXT NOT NULL, digest TEXT NOT NULL,
    n INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_digest ON jobs(digest);
CREATE TABLE IF NOT EXISTS structures (
    uuid TEXT NOT NULL, job_id INTEGER NOT NULL, row INTEGER NOT NULL, step TEXT, seed TEXT,
    parent TEXT, created INTEGER NOT NULL, PRIMARY KEY (job_id, row)
);
CREATE INDEX IF NOT EXISTS structures_uuid ON structures(uuid);
CREATE INDEX IF NOT EXISTS structures_step ON structures(step);
"""

Loader = Callable[[int, str], tuple[Sequence[Atoms], Iterable[str]]]
"""Reads a job's output structures and input uuids from its file, given its id and name."""


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
        """A connection in WAL mode with a 60 s busy timeout; commits on success if ``write``."""
        if not write and not self.file.exists():
            connection = sqlite3.connect(":memory:")
        else:
            connection = sqlite3.connect(self.file, timeout=60.0)
        with closing(connection):
            connection.execute("PRAGMA busy_timeout=60000")
            if write and connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)
            if write:
                connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            connection.commit()

    def add_job(
        self,
        job_id: int,
        name: str,
        stage: str,
        structures: Sequence[Atoms],
        input_uuids: Iterable[str],
    ) -> None:
        """Record the output ``structures`` of job ``job_id`` (replacing what it had)."""
        rows, uuids = _rows(job_id, structures, input_uuids)
        with self._connect(write=True) as db:
            self._insert(db, job_id, name, stage, rows, uuids)

    @staticmethod
    def _insert(
        db: sqlite3.Connection,
        job_id: int,
        name: str,
        stage: str,
        rows: list[tuple[object, ...]],
        uuids: list[str],
    ) -> None:
        db.execute("DELETE FROM structures WHERE job_id = ?", (job_id,))
        db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
        db.execute(
            "INSERT INTO jobs VALUES (?, ?, ?, ?, ?)",
            (job_id, name, stage, digest_of(uuids), len(uuids)),
        )
        db.executemany("INSERT INTO structures VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def remove_job(self, job_id: int) -> None:
        """Forget job ``job_id`` and its structures."""
        if not self.file.exists():
            return
        with self._connect(write=True) as db:
            db.execute("DELETE FROM structures WHERE job_id = ?", (int(job_id),))
            db.execute("DELETE FROM jobs WHERE job_id = ?", (int(job_id),))

    def jobs(self) -> dict[int, tuple[str, str]]:
        """Job id -> (name, stage) of every indexed job."""
        with self._connect() as db:
            rows = db.execute("SELECT job_id, name, stage FROM jobs").fetchall()
        return {int(i): (str(n), str(s)) for i, n, s in rows}

    def reconcile(self, table: Mapping[int, tuple[str, str]], load: Loader) -> list[int]:
        """Make the index hold exactly the usable stage jobs ``table`` lists (job id -> (name,
        stage), from pyiron's job table for this folder): drop the others, index the missing
        ones with ``load``. Returns the ids indexed now. A job whose file cannot be read stays
        out (queries then do not see it; ``load`` may raise to report it instead)."""
        indexed = self.jobs()
        stale = [i for i, (name, _) in indexed.items() if table.get(i, (None,))[0] != name]
        missing = [i for i in table if i not in indexed or indexed[i][0] != table[i][0]]
        if not stale and not missing:
            return []
        loaded = []
        for job_id in missing:  # read outside the write transaction
            name, stage = table[job_id]
            structures, input_uuids = load(job_id, name)
            rows, uuids = _rows(job_id, structures, input_uuids)
            loaded.append((job_id, name, stage, rows, uuids))
        with self._connect(write=True) as db:
            for job_id in stale:
                db.execute("DELETE FROM structures WHERE job_id = ?", (job_id,))
                db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
            for job_id, name, stage, rows, uuids in loaded:
                self._insert(db, job_id, name, stage, rows, uuids)
        return [job_id for job_id, *_ in loaded]

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
