"""The stateful test of pyiron operations (``tests/project_machine.py``) with a large budget.

    python benchmarks/stateful_project.py [--examples 40] [--steps 25]
                                          [--databases sqlite postgres] [--json OUT]

CI runs the same machine with a few derandomized examples (``tests/test_project_stateful.py``);
this runs many random ones (new ones on every run) on each database and reports how many
examples and steps ran and how often each operation was taken, so a note can say what was
tried. PostgreSQL needs ``ASSYST_TEST_POSTGRES`` (``eval "$(bash .ci/services.sh env)"``):
each run gets a new database on that server, dropped afterwards; without the variable it is
skipped with a message. Each database runs in its own subprocess with a temporary HOME and
working directory and no ``PYIRON*`` variable of the caller.

A failing sequence stops the run: the minimal failing example (hypothesis shrinks it, and
prints it with a blob to reproduce it) is written to the JSON too, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

HERE: Final = Path(__file__).resolve().parent
REPO: Final = HERE.parent
TESTS: Final = REPO / "tests"
DATABASES: Final = ("sqlite", "postgres")


def worker(database: str, examples: int, steps: int, out: Path) -> int:
    """Run the machine on ``database`` (in this process, whose environment selects it)."""
    sys.path.insert(0, str(TESTS))
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.stateful import run_state_machine_as_test
    from project_machine import machine_for

    machine = machine_for(database)
    result: dict[str, Any] = {"database": database, "examples_asked": examples, "steps": steps}
    start = time.perf_counter()
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=examples,
                stateful_step_count=steps,
                deadline=None,
                derandomize=False,
                phases=[Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
                database=None,
            ),
        )
        result["passed"] = True
    except BaseException as error:  # a failing sequence: hypothesis printed it, keep it
        result["passed"] = False
        result["failure"] = f"{type(error).__name__}: {error}"[-20000:]
    result["seconds"] = time.perf_counter() - start
    result["figures"] = dict(machine.figures)
    out.write_text(json.dumps(result, indent=1))
    return 0 if result["passed"] else 1


def run(database: str, examples: int, steps: int) -> dict[str, Any]:
    """The worker for ``database`` in a fresh subprocess: its result, or why it was skipped."""
    sys.path.insert(0, str(TESTS))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYIRON")}
    url = None
    if database == "postgres":
        server = os.environ.get("ASSYST_TEST_POSTGRES")
        if not server:
            return {"database": database, "skipped": "ASSYST_TEST_POSTGRES is not set"}
        import services

        url = services.fresh_postgres_database(server)
        env.update(services.pyiron_postgres_env(url))
    try:
        with tempfile.TemporaryDirectory(prefix=f"stateful-{database}-") as tmp:
            work = Path(tmp)
            (work / "home").mkdir()
            env["HOME"] = str(work / "home")
            out = work / "result.json"
            command = [sys.executable, str(Path(__file__).resolve()), "--worker", database,
                       "--examples", str(examples), "--steps", str(steps), "--json", str(out)]
            subprocess.run(command, cwd=work, env=env, check=False)
            result: dict[str, Any] = json.loads(out.read_text())
            result["home_left_empty"] = not any((work / "home").iterdir())
            return result
    finally:
        if url is not None:
            import services

            services.drop_postgres_database(url)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=40, help="examples per database")
    parser.add_argument("--steps", type=int, default=25, help="steps per example")
    parser.add_argument("--databases", nargs="+", choices=DATABASES, default=list(DATABASES))
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--worker", choices=DATABASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.examples < 1 or args.steps < 1:
        parser.error("--examples and --steps must be at least 1")
    if args.worker:
        return worker(args.worker, args.examples, args.steps, args.json)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "commit": commit,
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "load_at_start": list(os.getloadavg()),
        "databases": {},
    }
    status = 0
    for database in args.databases:
        result = run(database, args.examples, args.steps)
        results["databases"][database] = result
        if "skipped" in result:
            print(f"{database}: skipped ({result['skipped']})")
            continue
        figures = result["figures"]
        taken = sum(v for k, v in figures.items() if k != "examples")
        print(f"{database}: {'passed' if result['passed'] else 'FAILED'}; "
              f"{figures.get('examples', 0)} examples, {taken} operations in "
              f"{result['seconds']:.0f} s; home left empty: {result['home_left_empty']}")
        print("  " + ", ".join(f"{k} {v}" for k, v in sorted(figures.items()) if k != "examples"))
        if not result["passed"]:
            print(result["failure"])
            status = 1
    results["load_at_end"] = list(os.getloadavg())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
