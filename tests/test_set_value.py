"""The learning-curve driver (``benchmarks/set_value.py``) end to end on a tiny scale: a pool
stand-in, a reduced suite, every weighting; the rows, the aggregate over seeds, the table, the
figure and the merged report. Needs the extra ``ace`` (skips with the reason, fails under
``CI=true``)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import warnings
from pathlib import Path

import pytest
from services import _missing

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def driver():
    if importlib.util.find_spec("pyace") is None:
        _missing('python-ace is not installed: pip install -e ".[ace]"')
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import set_value
    finally:
        sys.path.remove(str(BENCHMARKS))
    return set_value


@pytest.fixture(scope="module")
def labelled() -> list:
    from assyst_nodes.calculators import EMT
    from assyst_nodes.pipeline import run_pipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_pipeline(max_structures=6, label_calculator=EMT(), workers=1).stages[
            "labelled"
        ]


def test_curves_fit_and_validate_every_cell_and_aggregate_over_seeds(
    driver, labelled, tmp_path, monkeypatch
) -> None:
    from assyst_nodes.stages.validate import Suite

    monkeypatch.setattr(driver, "CACHE", tmp_path)
    monkeypatch.setattr(
        driver,
        "SUITE",
        Suite(("Cu", "Ag"), phases=("fcc",), compounds=("B2",), volume_points=5,
              phonons=False, vacancy_repeat=0, md_snapshots=0),
    )  # fmt: skip
    monkeypatch.setattr(driver, "FIT", driver.FIT.__class__(functions=20, cutoff=5.0))
    monkeypatch.setattr(driver.sets, "pool", lambda kind, seed, labels, cache: labelled)
    args = argparse.Namespace(
        reference="emt", seeds=[0, 1], sizes=[20, 30], kinds=["assyst"],
        weightings=["uniform", "energy"], functions=20,
    )  # fmt: skip
    result = driver.curves(args)
    assert len(result["rows"]) == 2 * 2 * 2
    for row in result["rows"]:
        assert row["fit"].startswith("linear_ace(cutoff=5, functions=20")
        assert math.isfinite(row["energy_rmse_near"]) and row["fit_seconds"] > 0
    cells = result["aggregate"]
    assert len(cells) == 4 and all(cell["seeds"] == 2 for cell in cells)
    first = [r["energy_rmse_all"] for r in result["rows"]
             if r["size"] == 20 and r["weighting"] == "energy"]  # fmt: skip
    cell = next(c for c in cells if c["size"] == 20 and c["weighting"] == "energy")
    assert cell["energy_rmse_all"] == pytest.approx(sum(first) / 2)
    text = driver.table(cells)
    assert text.count("\n") == 2 + 4 and "| emt | assyst | 20 | energy |" in text
    figure = driver.figure(cells, tmp_path / "curves.png")
    assert figure.stat().st_size > 1000
    # the runs merge into one report
    record = tmp_path / "one.json"
    record.write_text(json.dumps({"rows": result["rows"], "seconds": 1.0}))
    merged = driver.report(argparse.Namespace(inputs=[record, record]))
    assert len(merged["rows"]) == 16 and merged["aggregate"][0]["seeds"] == 4


def test_the_reference_must_be_one_the_driver_knows(driver) -> None:
    with pytest.raises(ValueError, match="'emt' or 'sevennet'"):
        driver.reference_calculator("dft")
