"""The benchmark harness (``benchmarks/run.py``) in its tiny quick mode, our side only: it runs,
writes well-formed JSON and a Markdown table, and reports the reference comparisons as missing
instead of inventing them. No timing is asserted."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def harness() -> ModuleType:
    """``benchmarks/run.py`` imported as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location("benchmark_run", BENCHMARKS / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """One quick run of distance, perturb and storage without the reference: JSON and stdout."""
    folder = tmp_path_factory.mktemp("bench")
    output = folder / "results.json"
    command = [
        sys.executable,
        str(BENCHMARKS / "run.py"),
        "--quick",
        "--no-reference",
        "--only",
        "distance",
        "perturb",
        "storage",
        "--output",
        str(output),
    ]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(output.read_text()), done.stdout


def test_quick_run_reports_every_requested_benchmark_with_counts_and_load(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    results, _ = quick_run
    assert results["mode"] == "quick"
    assert results["repeats"] == 1
    assert results["machine"]["logical_cores"] >= 1
    assert results["ours_versions"]["assyst_nodes"]
    names = [row["name"] for row in results["benchmarks"]]
    assert names == [
        "distance 4 atoms",
        "distance 108 atoms",
        "perturb",
        "storage write",
        "storage read",
        "storage disk size",
    ]
    for row in results["benchmarks"]:
        assert row["load_before"] >= 0 and row["load_after"] >= 0
        for variant, summary in row["summary"].items():
            assert variant.startswith("ours")
            assert summary["wall"] > 0
            assert all(count > 0 for count in summary["counts"])
    distance = results["benchmarks"][0]
    assert distance["runs"]["ours"][0]["count"] == 60
    assert 0 < distance["kept"]["ours"] < 60
    storage = {row["name"]: row for row in results["benchmarks"]}
    write = storage["storage write"]
    assert write["round_trip_equal"] is True
    assert write["runs"]["ours"][0]["count"] == 2000
    assert write["disk_bytes"] > write["raw_bytes"] > 0
    assert storage["storage read"]["target"]["met"] in (True, False)


def test_comparisons_without_the_reference_are_missing_not_invented(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    results, table = quick_run
    assert results["reference"]["status"] == "not run (--no-reference)"
    compared = [row for row in results["benchmarks"] if not row["name"].startswith("storage")]
    for row in compared:
        assert "reference" not in row["runs"]
        assert row["ratio"] is None
        assert row["target"]["value"] is None and row["target"]["met"] is None
    assert "verdict_mismatches" not in compared[0]
    lines = [line for line in table.splitlines() if line.startswith("| distance")]
    assert len(lines) == 2 and all("missing" in line for line in lines)
    assert table.count("\n| ") == 1 + 6  # the header and one row per measured quantity


def test_reference_status_says_why_it_is_missing(tmp_path: Path) -> None:
    run = harness()
    worker, status = run.start_reference(sys.executable, tmp_path)
    if importlib.util.find_spec("assyst") is None:
        assert worker is None
        assert status.startswith(f"unavailable with {sys.executable}")
        assert "assyst" in status
    else:  # the benchmark extra is installed here: the reference worker starts
        assert worker is not None and status == "ok"
        assert worker.call("info")["assyst"] == "1.0.0"
        worker.close()
    assert run.start_reference(None, tmp_path) == (None, "not run (--no-reference)")


def test_targets_compare_in_their_direction() -> None:
    run = harness()
    assert run.verdict("distance 108 atoms", 12.0)["met"] is True
    assert run.verdict("distance 108 atoms", 9.0)["met"] is False
    assert run.verdict("storage_write", 9.0)["met"] is True
    assert run.verdict("storage_write", 11.0)["met"] is False
    assert run.verdict("memory", None) == {
        "measures": "our peak RSS / reference peak RSS",
        "bound": "<= 1.5",
        "value": None,
        "met": None,
    }


def test_bad_options_are_refused_with_the_bad_value(capsys: pytest.CaptureFixture[str]) -> None:
    run = harness()
    with pytest.raises(SystemExit):
        run.parse(["--repeats", "0"])
    assert "--repeats must be >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run.parse(["--only", "nonsense"])
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run.parse(["--reference-python", "/no/such/python"])
    assert "'/no/such/python' is not an executable" in capsys.readouterr().err
