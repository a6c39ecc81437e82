"""The project-scale benchmark (``benchmarks/project_scale.py``) on a tiny project: it runs on
the embedded SQLite database and on PostgreSQL, writes well-formed JSON and a Markdown table,
and every query returns the rows the recorded jobs imply. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from services import require_postgres

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "project_scale.py"
JOBS = 20
QUERIES = (
    "job_table",
    "stage_jobs",
    "structure_frame",
    "structure_frame_stage",
    "structures_uuids",
    "history",
    "structure_frame_index_deleted",
    "structure_frame_one_job",
)


def run_benchmark(
    tmp_path: Path, database: str, env: dict[str, str], *more: str
) -> tuple[dict[str, Any], str]:
    """Run the script with ``--jobs 20 --repeats 1`` (and ``more`` options) on ``database``:
    its JSON and stdout."""
    output = tmp_path / "project_scale.json"
    command = [
        sys.executable,
        str(SCRIPT),
        "--jobs",
        str(JOBS),
        "--repeats",
        "1",
        "--databases",
        database,
        "--json",
        str(output),
        *more,
    ]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(output.read_text()), done.stdout


def check(results: dict[str, Any], database: str, stdout: str) -> None:
    """The run's JSON holds positive times and the expected row counts for ``database``."""
    assert results["jobs"] == JOBS and results["repeats"] == 1
    assert list(results["databases"]) == [database]
    result = results["databases"][database]
    assert result["pyiron_database"] == ("embedded" if database == "sqlite" else "user")
    per_job = result["structures_per_job"]
    assert result["cubes_jobs"] + result["shift_jobs"] == JOBS
    assert result["unique_structures"] == JOBS * per_job
    assert result["record"]["seconds"] > 0 and result["record"]["per_job_ms"] > 0
    queries = result["queries"]
    assert set(queries) == set(QUERIES)
    for name in QUERIES:
        assert queries[name]["median_s"] > 0, name
        assert len(queries[name]["runs_s"]) == 1, name
    expected = {
        "job_table": JOBS,
        "stage_jobs": JOBS,
        "structure_frame": JOBS * per_job,  # one row per unique uuid
        "structure_frame_stage": result["shift_jobs"] * per_job,
        "structures_uuids": result["uuids_asked"],
        "history": 2,  # the shift structure and its cubes parent
        "structure_frame_index_deleted": JOBS * per_job,
        "structure_frame_one_job": JOBS * per_job,  # the same structures, one job
    }
    assert result["uuids_asked"] == 10
    assert {name: queries[name]["rows"] for name in QUERIES} == expected
    assert result["bytes_per_job"] == result["folder_bytes"] / JOBS
    assert result["frame_ratio_to_one_job"] == (
        queries["structure_frame"]["median_s"] / queries["structure_frame_one_job"]["median_s"]
    )
    rebuilt = queries["structure_frame_index_deleted"]
    assert rebuilt["next_query_s"] > 0
    assert rebuilt["next_query_rows"] == JOBS * per_job
    assert result["folder_bytes"] > 0
    assert results["total_s"] > 0
    assert "| structure_frame() |" in stdout and f"({JOBS * per_job} rows)" in stdout


def test_project_scale_benchmark_on_sqlite(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ASSYST_TEST_POSTGRES"}
    results, stdout = run_benchmark(tmp_path, "sqlite", env)
    check(results, "sqlite", stdout)


def test_project_scale_benchmark_on_postgres(tmp_path: Path) -> None:
    url = require_postgres()
    results, stdout = run_benchmark(
        tmp_path, "postgres", {**os.environ, "ASSYST_TEST_POSTGRES": url}
    )
    check(results, "postgres", stdout)


def test_project_scale_benchmark_measures_a_revision_side_by_side(tmp_path: Path) -> None:
    """``--compare HEAD``: the committed package in a worktree, then the working tree's."""
    env = {k: v for k, v in os.environ.items() if k != "ASSYST_TEST_POSTGRES"}
    results, stdout = run_benchmark(tmp_path, "sqlite", env, "--compare", "HEAD")
    check(results, "sqlite", stdout)
    baseline = results["baseline"]
    assert baseline["revision"] == "HEAD"
    old = baseline["databases"]["sqlite"]
    assert "project-scale-baseline-" in old["package"]
    assert old["queries"]["structure_frame"]["rows"] == JOBS * old["structures_per_job"]
    assert "| sqlite HEAD | sqlite now | sqlite now / HEAD |" in stdout


def test_project_scale_benchmark_skips_postgres_without_a_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ASSYST_TEST_POSTGRES"}
    results, stdout = run_benchmark(tmp_path, "postgres", env)
    assert "ASSYST_TEST_POSTGRES is not set" in results["databases"]["postgres"]["skipped"]
    assert "postgres skipped" in stdout


@pytest.mark.parametrize("bad", [["--jobs", "1"], ["--repeats", "0"]])
def test_project_scale_benchmark_rejects_bad_options(tmp_path: Path, bad: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *bad], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 2 and "must be at least" in done.stderr
