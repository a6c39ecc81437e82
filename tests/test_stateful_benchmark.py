"""``benchmarks/stateful_project.py`` with a tiny budget: it runs the machine of the stateful
test in a subprocess with a temporary HOME, reports what it did in its JSON and output, and
leaves the home directory empty. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "stateful_project.py"


@pytest.mark.slow
def test_stateful_benchmark_runs_and_reports_what_it_did(tmp_path: Path) -> None:
    out = tmp_path / "stateful.json"
    env = {k: v for k, v in os.environ.items() if k != "ASSYST_TEST_POSTGRES"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--examples", "1", "--steps", "3", "--databases",
         "sqlite", "postgres", "--json", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    sqlite = results["databases"]["sqlite"]
    assert sqlite["passed"] and sqlite["home_left_empty"]
    assert sqlite["figures"]["examples"] >= 1 and sqlite["steps"] == 3
    assert results["databases"]["postgres"]["skipped"] == "ASSYST_TEST_POSTGRES is not set"
    assert "sqlite: passed; " in done.stdout and "postgres: skipped" in done.stdout


def test_stateful_benchmark_rejects_an_empty_budget(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--examples", "0"], cwd=tmp_path, capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "must be at least 1" in done.stderr
