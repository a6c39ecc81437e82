"""How the project layer scales with the number of stage jobs, on SQLite and on PostgreSQL.

    python benchmarks/project_scale.py [--jobs 1000] [--repeats 5] [--json OUT]
                                       [--databases sqlite postgres] [--compare REV]

For each database it records ``--jobs`` stage jobs into one new project folder and times:

* recording them (informational: pyiron's job creation dominates);
* the job table: ``open_project(folder).job_table()`` (pyiron's own call) and
  ``assyst_nodes.project.queries.stage_jobs(folder)``;
* ``structure_frame(folder)`` (every structure) and ``structure_frame(folder, stage="shift")``;
* ``structures(folder, uuids=[10 uuids])`` and ``history(folder, uuid)``;
* the first ``structure_frame(folder)`` after the folder's index file ``assyst_index.db`` was
  deleted (the index is a cache of the job files: it is rebuilt from all of them);
* ``structure_frame`` of a second project holding the same structures in *one* job (so
  the cost per job shows: ``frame_ratio_to_one_job``), and the bytes on disk per job.

``--compare REV`` runs the same measurements with the package of git revision ``REV`` (a
temporary ``git worktree`` put first on ``PYTHONPATH`` of the worker) right before the working
tree's, for each database, and reports both side by side with their ratios: one run, one
machine, one load.

Every query is run once as a warm-up, then ``--repeats`` times; the median is reported. The jobs
are cheap on purpose, so that the database and the index are what is measured: half of them are
``cubes`` jobs (one seed setting each; 8 fcc Cu cells of 4 atoms with energy and forces), the
other half ``shift`` jobs, each taking one ``cubes`` job's output as input and giving it new
uuids, so every ``shift`` structure has a lineage chain of two.

Each database runs in its own subprocess (this script with ``--worker``) with a temporary HOME
and no ``PYIRON*`` variable of the caller, so pyiron's process-wide state starts fresh:

* ``sqlite``: no pyiron configuration, so the project gets its embedded ``pyiron.db``;
* ``postgres``: ``PYIRON*`` variables for a new database on the server of
  ``ASSYST_TEST_POSTGRES`` (``eval "$(bash .ci/services.sh env)"``), dropped afterwards. Without
  that variable PostgreSQL is skipped with a message.

Progress goes to stderr, a Markdown table to stdout, everything (every single timing, row
counts, machine, date, commit) to ``--json``. Times are wall-clock seconds
(``time.perf_counter``). A full run (1000 jobs, both databases) took 5.4 minutes on a
2-core VM with a load of about 2 from other work.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Final

HERE: Final = Path(__file__).resolve().parent
REPO: Final = HERE.parent
DATABASES: Final = ("sqlite", "postgres")
STRUCTURES_PER_JOB: Final = 8
"""Output structures per stage job (fcc Cu cells of 4 atoms)."""
N_UUIDS: Final = 10
"""How many uuids the ``structures(folder, uuids=...)`` query asks for."""
WORKER_TIMEOUT_S: Final = 3600.0
"""Upper bound on one database's subprocess (s)."""
PYIRON_CONNECTION_TIMEOUT_S: Final = 60
"""pyiron_base's default ``PYIRONCONNECTIONTIMEOUT`` (s): it keeps a PostgreSQL connection
open between queries until it has been idle this long; 0 opens a new one for every query."""


def log(message: str) -> None:
    """Progress to stderr (stdout carries the table)."""
    print(
        f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.2f}] {message}",
        file=sys.stderr,
        flush=True,
    )


# ------------------------------------------------------------------------------ the worker
def _cubes(seed: int) -> tuple[list[Any], Any]:
    """The output of ``cubes`` job ``seed``: 8 rattled fcc Cu cells (4 atoms, a = 3.6 Å) with
    uuids, energy (eV) and forces (eV/Å); and its report."""
    import numpy as np
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    from assyst_nodes.lineage import update_uuid
    from assyst_nodes.reports import StageReport

    rng = np.random.default_rng(seed)
    out = []
    for k in range(STRUCTURES_PER_JOB):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.positions += rng.normal(0.0, 0.02, atoms.positions.shape)
        update_uuid(atoms, "cubes", key=f"{seed}-{k}")
        atoms.calc = SinglePointCalculator(
            atoms,
            energy=float(-3.5 * len(atoms) + rng.normal(0.0, 0.01)),
            forces=rng.normal(0.0, 0.05, (len(atoms), 3)),
        )
        out.append(atoms)
    return out, StageReport(stage="cubes", n_in=0, n_out=len(out))


def _shift(structures: Sequence[Any], dx: float) -> tuple[list[Any], Any]:
    """The output of a ``shift`` job: copies of ``structures`` moved by ``dx`` Å along x, with
    new uuids (their lineage names the input), energy (eV) and forces (eV/Å); and its report."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from assyst_nodes.lineage import update_uuid
    from assyst_nodes.reports import StageReport

    out = []
    for k, parent in enumerate(structures):
        atoms = parent.copy()  # copies info (uuid, seed, lineage), not the calculator
        atoms.positions[:, 0] += dx
        update_uuid(atoms, "shift", key=k)
        atoms.calc = SinglePointCalculator(
            atoms,
            energy=float(parent.get_potential_energy()),
            forces=parent.get_forces(),
        )
        out.append(atoms)
    report = StageReport(stage="shift", n_in=len(structures), n_out=len(out))
    return out, report


def _report(n: int) -> Any:
    """The report of a job that made ``n`` structures."""
    from assyst_nodes.reports import StageReport

    return StageReport(stage="cubes", n_in=0, n_out=n)


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    """(wall seconds, result) of ``call()``."""
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def _query(call: Callable[[], Any], repeats: int, count: Callable[[Any], int]) -> dict[str, Any]:
    """One warm-up of ``call``, then ``repeats`` timed runs: seconds of each, their median and
    the number of rows/items (``count`` of the last result)."""
    warmup, result = _timed(call)
    runs = []
    for _ in range(repeats):
        seconds, result = _timed(call)
        runs.append(seconds)
    return {
        "median_s": statistics.median(runs),
        "runs_s": runs,
        "warmup_s": warmup,
        "rows": int(count(result)),
    }


def _folder_bytes(folder: Path) -> int:
    """Total size of the files under ``folder`` (bytes)."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def worker(database: str, jobs: int, repeats: int, folder: Path) -> dict[str, Any]:
    """Record ``jobs`` stage jobs into ``folder`` and time the queries (runs in the subprocess
    whose environment selects the database). Keys ending in ``_s`` are seconds, ``_ms``
    milliseconds, ``folder_bytes`` bytes; ``rows`` counts what a query returned."""
    import_s, _ = _timed(lambda: __import__("assyst_nodes.project.queries"))
    from assyst_nodes.project import ProjectRecorder, open_project
    from assyst_nodes.project.database import database_kind
    from assyst_nodes.project.index import INDEX_FILE
    from assyst_nodes.project.queries import history, stage_jobs, structure_frame, structures

    kind = database_kind()
    expected = "embedded" if database == "sqlite" else "user"
    if kind != expected:
        raise RuntimeError(f"database {database}: pyiron would use the {kind} database")
    recorder = ProjectRecorder(str(folder))
    n_cubes = (jobs + 1) // 2
    n_shift = jobs - n_cubes
    per_job: list[float] = []
    outputs: list[list[Any]] = []
    log(f"{database}: recording {n_cubes} cubes + {n_shift} shift jobs")
    start = time.perf_counter()
    for seed in range(n_cubes):
        seconds, (out, _) = _timed(
            lambda seed=seed: recorder.record("cubes", {"seed": seed}, [], lambda: _cubes(seed))
        )
        per_job.append(seconds)
        outputs.append(out)
    shifted: list[list[Any]] = []
    for i in range(n_shift):
        source = outputs[i]
        seconds, (out, _) = _timed(
            lambda source=source: recorder.record(
                "shift", {"dx": 0.01}, [source], lambda: _shift(source, 0.01)
            )
        )
        per_job.append(seconds)
        shifted.append(out)
    record_s = time.perf_counter() - start
    tenth = max(1, len(per_job) // 10)
    log(f"{database}: recorded {jobs} jobs in {record_s:.1f} s")

    n_structures = STRUCTURES_PER_JOB * jobs
    pool = [str(a.info["uuid"]) for out in (shifted or outputs) for a in out]
    some = pool[:: max(1, len(pool) // N_UUIDS)][:N_UUIDS]  # spread over the jobs
    chain_uuid = pool[-1]
    queries: dict[str, dict[str, Any]] = {}
    plan: list[tuple[str, Callable[[], Any], Callable[[Any], int]]] = [
        ("job_table", lambda: open_project(str(folder)).job_table(), len),
        ("stage_jobs", lambda: stage_jobs(str(folder)), len),
        ("structure_frame", lambda: structure_frame(str(folder)), len),
        (
            "structure_frame_stage",
            lambda: structure_frame(str(folder), stage="shift" if n_shift else "cubes"),
            len,
        ),
        ("structures_uuids", lambda: structures(str(folder), uuids=some), len),
        ("history", lambda: history(str(folder), chain_uuid), len),
    ]
    for name, call, count in plan:
        queries[name] = _query(call, repeats, count)
        log(f"{database}: {name} {queries[name]['median_s']:.3f} s ({queries[name]['rows']} rows)")

    size = _folder_bytes(folder)
    single = folder.parent / "one_job"
    everything = [a for out in outputs + shifted for a in out]  # every unique structure
    ProjectRecorder(str(single)).record(
        "cubes", {"seed": "all"}, [], lambda: (everything, _report(len(everything)))
    )
    queries["structure_frame_one_job"] = _query(
        lambda: structure_frame(str(single)), repeats, len
    )
    log(f"{database}: structure_frame of one job "
        f"{queries['structure_frame_one_job']['median_s']:.3f} s")
    for suffix in ("", "-wal", "-shm"):
        (folder / f"{INDEX_FILE}{suffix}").unlink(missing_ok=True)
    cold_s, frame = _timed(lambda: structure_frame(str(folder)))
    after_s, frame_after = _timed(lambda: structure_frame(str(folder)))
    queries["structure_frame_index_deleted"] = {
        "median_s": cold_s,
        "runs_s": [cold_s],
        "warmup_s": None,
        "rows": len(frame),
        "next_query_s": after_s,
        "next_query_rows": len(frame_after),
    }
    log(f"{database}: first structure_frame without the index {cold_s:.2f} s")
    return {
        "database": database,
        "pyiron_database": kind,
        "jobs": jobs,
        "cubes_jobs": n_cubes,
        "shift_jobs": n_shift,
        "structures_per_job": STRUCTURES_PER_JOB,
        "unique_structures": n_structures,
        "stage_structures": STRUCTURES_PER_JOB * (n_shift or n_cubes),
        "uuids_asked": len(some),
        "history_length": 2 if n_shift else 1,
        "repeats": repeats,
        "import_s": import_s,
        "record": {
            "seconds": record_s,
            "per_job_ms": 1000 * record_s / jobs,
            "first_tenth_ms": 1000 * statistics.mean(per_job[:tenth]),
            "last_tenth_ms": 1000 * statistics.mean(per_job[-tenth:]),
        },
        "queries": queries,
        "folder_bytes": size,
        "bytes_per_job": size / jobs,
        "frame_ratio_to_one_job": (
            queries["structure_frame"]["median_s"]
            / queries["structure_frame_one_job"]["median_s"]
        ),
        "package": str(Path(__import__("assyst_nodes").__file__).parent),
    }


# ------------------------------------------------------------------------------ the driver
def _services() -> ModuleType:
    """``tests/services.py`` (PostgreSQL helpers shared with the tests)."""
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import services

    return services


def _clean_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without ``PYIRON*`` variables, with ``HOME`` = ``home`` and
    ``extra`` added."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYIRON")}
    env["HOME"] = str(home)
    env.update(extra)
    return env


def run_database(
    database: str,
    jobs: int,
    repeats: int,
    pg_timeout: int = PYIRON_CONNECTION_TIMEOUT_S,
    package: Path | None = None,
) -> dict[str, Any]:
    """Run the worker for ``database`` in a fresh subprocess; its result, or why it was
    skipped. ``pg_timeout``: pyiron's ``PYIRONCONNECTIONTIMEOUT`` for PostgreSQL (s);
    ``package``: a source tree whose ``assyst_nodes`` the worker imports instead of the
    installed one."""
    extra: dict[str, str] = {}
    if package is not None:
        extra["PYTHONPATH"] = os.pathsep.join(
            [str(package), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
    url = None
    if database == "postgres":
        server = os.environ.get("ASSYST_TEST_POSTGRES")
        if not server:
            return {
                "database": database,
                "skipped": "ASSYST_TEST_POSTGRES is not set: start the server with "
                '`bash .ci/services.sh start` and `eval "$(bash .ci/services.sh env)"`',
            }
        services = _services()
        url = services.fresh_postgres_database(server)
        extra.update(services.pyiron_postgres_env(url))
        extra["PYIRONCONNECTIONTIMEOUT"] = str(pg_timeout)
    try:
        with tempfile.TemporaryDirectory(prefix=f"project-scale-{database}-") as tmp:
            work = Path(tmp)
            (work / "home").mkdir()
            out = work / "result.json"
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                database,
                "--jobs",
                str(jobs),
                "--repeats",
                str(repeats),
                "--folder",
                str(work / "project"),
                "--json",
                str(out),
            ]
            start = time.perf_counter()
            done = subprocess.run(
                command,
                cwd=work,
                env=_clean_env(work / "home", extra),
                timeout=WORKER_TIMEOUT_S,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"{database} worker exited with {done.returncode}")
            result: dict[str, Any] = json.loads(out.read_text())
            result["process_s"] = time.perf_counter() - start
            if url is not None:
                result["pyiron_connection_timeout_s"] = pg_timeout
            return result
    finally:
        if url is not None:
            _services().drop_postgres_database(url)


@contextlib.contextmanager
def _revision(revision: str | None) -> Iterator[Path | None]:
    """A temporary ``git worktree`` of ``revision`` of this repository (None for None)."""
    if revision is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="project-scale-baseline-") as tmp:
        tree = Path(tmp) / "tree"
        git = ["git", "-C", str(REPO), "worktree"]
        subprocess.run([*git, "add", "--detach", str(tree), revision], check=True,
                       capture_output=True)
        try:
            yield tree
        finally:
            subprocess.run([*git, "remove", "--force", str(tree)], check=False,
                           capture_output=True)


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python and the commit of this repository."""
    info: dict[str, Any] = {
        "cpu": platform.processor() or platform.machine(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        git = ["git", "-C", str(REPO)]
        info["commit"] = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain"], capture_output=True, text=True, check=True
        ).stdout
        info["uncommitted_files"] = len(dirty.splitlines())
    except (OSError, subprocess.SubprocessError):
        pass
    return info


ROWS: Final = (
    ("record (all jobs)", "record"),
    ("record per job", "per_job"),
    ("job_table()", "job_table"),
    ("stage_jobs()", "stage_jobs"),
    ("structure_frame()", "structure_frame"),
    ("structure_frame(stage=)", "structure_frame_stage"),
    (f"structures(uuids={N_UUIDS})", "structures_uuids"),
    ("history(uuid)", "history"),
    ("structure_frame(), index deleted", "structure_frame_index_deleted"),
    ("next structure_frame()", "next"),
    ("structure_frame(), the same structures in one job", "structure_frame_one_job"),
    ("structure_frame() / the one job's", "frame_ratio"),
    ("bytes on disk per job", "bytes_per_job"),
)


def _cell(result: dict[str, Any], key: str) -> str:
    """One table cell: a time (s or ms) and the row count where it applies."""
    if "skipped" in result:
        return "skipped"
    if key == "record":
        return f"{result['record']['seconds']:.1f} s"
    if key == "per_job":
        r = result["record"]
        return (
            f"{r['per_job_ms']:.0f} ms (first tenth {r['first_tenth_ms']:.0f}, "
            f"last tenth {r['last_tenth_ms']:.0f})"
        )
    if key == "next":
        q = result["queries"]["structure_frame_index_deleted"]
        return f"{q['next_query_s']:.3f} s ({q['next_query_rows']} rows)"
    if key == "frame_ratio":
        return f"{result['frame_ratio_to_one_job']:.2f}x"
    if key == "bytes_per_job":
        return f"{result['bytes_per_job'] / 1000:.1f} kB"
    q = result["queries"][key]
    return f"{q['median_s']:.3f} s ({q['rows']} rows)"


def _value(result: dict[str, Any], key: str) -> float | None:
    """The number behind a cell (s, a ratio or bytes); None where there is none."""
    if "skipped" in result:
        return None
    if key == "record":
        return float(result["record"]["seconds"])
    if key == "per_job":
        return float(result["record"]["per_job_ms"])
    if key == "next":
        return float(result["queries"]["structure_frame_index_deleted"]["next_query_s"])
    if key == "frame_ratio":
        return float(result["frame_ratio_to_one_job"])
    if key == "bytes_per_job":
        return float(result["bytes_per_job"])
    return float(result["queries"][key]["median_s"])


def markdown(results: dict[str, Any]) -> str:
    """The Markdown table of a run: one row per measurement, one column per database (with
    ``--compare``: the revision's, the working tree's and their ratio, per database)."""
    names = list(results["databases"])
    baseline = results.get("baseline")
    if baseline is None:
        header = names
    else:
        rev = baseline["revision"]
        header = [f"{n} {label}" for n in names for label in (rev, "now", "now / " + rev)]
    lines = [
        f"| measurement | {' | '.join(header)} |",
        f"|---|{'---|' * len(header)}",
    ]
    for label, key in ROWS:
        cells = []
        for n in names:
            now = results["databases"][n]
            if baseline is None:
                cells.append(_cell(now, key))
                continue
            old = baseline["databases"][n]
            a, b = _value(old, key), _value(now, key)
            ratio = f"{b / a:.3f}" if a and b is not None else "-"
            cells += [_cell(old, key), _cell(now, key), ratio]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    for name in names:
        if "skipped" in results["databases"][name]:
            lines.append(f"\n{name} skipped: {results['databases'][name]['skipped']}")
    return "\n".join(lines)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000, help="stage jobs per project (>= 2)")
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs per query after one warm-up"
    )
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    parser.add_argument(
        "--databases",
        nargs="+",
        choices=DATABASES,
        default=list(DATABASES),
        help="which databases to measure (default both)",
    )
    parser.add_argument(
        "--pg-connection-timeout",
        type=int,
        default=PYIRON_CONNECTION_TIMEOUT_S,
        help="pyiron's PYIRONCONNECTIONTIMEOUT for PostgreSQL, s (default 60, pyiron's own; "
        "0 reconnects for every query)",
    )
    parser.add_argument(
        "--compare",
        default=None,
        metavar="REV",
        help="also measure git revision REV (e.g. a commit) in the same run, side by side",
    )
    parser.add_argument("--worker", choices=DATABASES, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.jobs < 2:
        parser.error("--jobs must be at least 2")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with ``--worker``, one database's half of it)."""
    args = parse(argv)
    if args.worker:
        result = worker(args.worker, args.jobs, args.repeats, args.folder)
        args.json.write_text(json.dumps(result, indent=1))
        sys.stdout.flush()
        sys.stderr.flush()
        # pyiron's connection watchdog (a non-daemon thread) would hold the exit for up to
        # PYIRONCONNECTIONTIMEOUT seconds; the result is written, nothing else is pending
        os._exit(0)
    started = dt.datetime.now(dt.UTC)
    start = time.perf_counter()
    results: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "machine": machine(),
        "load_at_start": list(os.getloadavg()),
        "jobs": args.jobs,
        "repeats": args.repeats,
        "structures_per_job": STRUCTURES_PER_JOB,
        "pyiron_connection_timeout_s": args.pg_connection_timeout,
        "databases": {},
    }
    with _revision(args.compare) as baseline:
        if baseline is not None:
            results["baseline"] = {"revision": args.compare, "databases": {}}
        for database in args.databases:
            if baseline is not None:
                log(f"{database}: revision {args.compare}")
                results["baseline"]["databases"][database] = run_database(
                    database, args.jobs, args.repeats, args.pg_connection_timeout, baseline
                )
                log(f"{database}: the working tree")
            result = run_database(database, args.jobs, args.repeats, args.pg_connection_timeout)
            if "skipped" in result:
                log(f"{database} skipped: {result['skipped']}")
            results["databases"][database] = result
    results["load_at_end"] = list(os.getloadavg())
    results["total_s"] = time.perf_counter() - start
    log(f"total {results['total_s']:.1f} s")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
