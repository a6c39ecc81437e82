"""The structure index of a project folder: ``<folder>/assyst_index.db`` (SQLite, WAL mode).

pyiron's job table knows jobs, not structures; this small side table maps every stored structure
to the job and row that hold it, so queries by uuid, step or seed never open a job they do not
need. Two processes may write at once (WAL mode, 60 s busy timeout, one short transaction per
job).

Tables::

    jobs(job_id, name, stage, digest, n, status)
        one row per stage job whose output is stored; ``digest`` is a hash of the ordered output
        uuids (finds the job that produced an input list exactly); ``status`` is ``stored``
        until pyiron marks the job finished, then ``finished``
    structures(uuid, job_id, row, step, seed, parent, created)
        one row per output structure of a job: ``row`` is its index in the job's store,
        ``parent`` the last lineage entry, ``created`` 1 if the job made it (its uuid is not one
        of the job's inputs, e.g. a relaxed structure) and 0 if it passed it on (filter,
        combine)

Only rows of jobs with status ``finished`` are visible to queries.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
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
    n INTEGER NOT NULL, status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_digest ON jobs(digest);
CREATE TABLE IF NOT EXISTS structures (
    uuid TEXT NOT NULL, job_id INTEGER NOT NULL, row INTEGER NOT NULL, step TEXT, seed TEXT,
    parent TEXT, created INTEGER NOT NULL, PRIMARY KEY (job_id, row)
);
CREATE INDEX IF NOT EXISTS structures_uuid ON structures(uuid);
CREATE INDEX IF NOT EXISTS structures_step ON structures(step);
"""


def digest_of(uuids: Iterable[str]) -> str:
    """Hex digest of an ordered list of uuids."""
    digest = hashlib.blake2b(digest_size=16)
    for uid in uuids:
        digest.update(str(uid).encode())
        digest.update(b"\n")
    return digest.hexdigest()


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
            if write:
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
        """Record the output ``structures`` of job ``job_id`` (status ``stored``)."""
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
        with self._connect(write=True) as db:
            db.execute("DELETE FROM structures WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
            db.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, 'stored')",
                (job_id, name, stage, digest_of(uuids), len(uuids)),
            )
            db.executemany("INSERT INTO structures VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def finish(self, job_id: int) -> None:
        """Make the rows of job ``job_id`` visible to queries."""
        with self._connect(write=True) as db:
            db.execute("UPDATE jobs SET status = 'finished' WHERE job_id = ?", (job_id,))

    def is_finished(self, job_id: int) -> bool:
        """Whether job ``job_id`` has finished rows (is visible to queries)."""
        with self._connect() as db:
            hit = db.execute(
                "SELECT 1 FROM jobs WHERE job_id = ? AND status = 'finished'", (int(job_id),)
            ).fetchone()
        return hit is not None

    def remove_job(self, job_id: int) -> None:
        """Forget job ``job_id`` and its structures."""
        with self._connect(write=True) as db:
            db.execute("DELETE FROM structures WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))

    def producer(self, uuids: Sequence[str]) -> int | None:
        """The job whose output is exactly ``uuids`` (newest first), else the job that made the
        first of them; ``None`` if unknown or empty."""
        if not uuids:
            return None
        with self._connect() as db:
            hit = db.execute(
                "SELECT job_id FROM jobs WHERE digest = ? AND status = 'finished' "
                "ORDER BY job_id DESC LIMIT 1",
                (digest_of(uuids),),
            ).fetchone()
            if hit is None:
                hit = db.execute(
                    "SELECT s.job_id FROM structures s JOIN jobs j ON s.job_id = j.job_id "
                    "WHERE s.uuid = ? AND j.status = 'finished' "
                    "ORDER BY s.created DESC, s.job_id ASC LIMIT 1",
                    (str(uuids[0]),),
                ).fetchone()
        return None if hit is None else int(hit[0])

    def select(
        self,
        step: str | None = None,
        job_ids: Sequence[int] | None = None,
        stage: str | None = None,
        uuids: Sequence[str] | None = None,
        unique: bool = True,
    ) -> list[tuple[str, int, int, str, str | None]]:
        """Rows (uuid, job_id, row, stage, step) of finished jobs matching all given filters,
        ordered by job id and row (or in the order of ``uuids`` when given).

        With ``unique`` each uuid appears once, taken from the job that made it (else the
        oldest job holding it).
        """
        where = ["j.status = 'finished'"]
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
        if unique:
            best: dict[str, tuple[int, int, int]] = {}
            for uid, job_id, row, _, _, created in rows:
                rank = (-created, job_id, row)
                if uid not in best or rank < best[uid]:
                    best[uid] = rank
            keep = {(uid, rank[1], rank[2]) for uid, rank in best.items()}
            rows = [r for r in rows if (r[0], r[1], r[2]) in keep]
        return [(uid, job_id, row, stage_, step_) for uid, job_id, row, stage_, step_, _ in rows]

    def job_names(self) -> dict[int, str]:
        """Job id -> job name of the finished jobs."""
        with self._connect() as db:
            rows = db.execute("SELECT job_id, name FROM jobs WHERE status = 'finished'").fetchall()
        return {int(i): str(n) for i, n in rows}
