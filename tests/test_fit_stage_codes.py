"""The fit stage with the real nonlinear codes: pacemaker (PacemakerACE) and MACE (MACE).

What the stage reports is checked against what each code says of its own fit: pacemaker's
last training RMSE in its log equals the stage's training errors computed through
``PyACECalculator`` (plus the reference energies), MACE's validation RMSE of its last epoch
equals the stage's validation errors through ``MACECalculator``; each potential then relaxes a
crystal. Tiny sizes (seconds on two cores): they check the plumbing, not a potential to use.

They need the extra ``fit`` (mace-torch, python-ace; ``pacemaker`` and ``mace_run_train``
beside this Python); without it they skip with the reason printed, except under CI, where
``.ci/run`` runs them in the environment ``$ASSYST_FIT_VENV`` names.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from ase.build import bulk
from services import missing_fit_extra
from test_fit import small_set

from assyst_nodes.calculators.fitted import ACEPotential, MACEPotential
from assyst_nodes.stages.fit import MACE, PacemakerACE, fit
from assyst_nodes.stages.relax import FullRelax, relax
from assyst_nodes.stages.split import Split, split

BIN = Path(sys.executable).parent


def _require(module: str, program: str) -> None:
    if importlib.util.find_spec(module) is None or not (BIN / program).is_file():
        missing_fit_extra(
            f"{module} and {program} are not installed beside {sys.executable}: "
            'pip install -e ".[fit]"'
        )


def test_pacemaker_fit_reports_the_errors_pacemaker_logs(tmp_path) -> None:
    _require("pyace", "pacemaker")
    settings = PacemakerACE(
        cutoff=5.0, functions=8, radial=(4, 2), angular=(0, 1), iterations=5, seed=1
    )
    result = fit(small_set(24), settings, tmp_path)
    assert isinstance(result.potential, ACEPotential)
    log = (tmp_path / "pacemaker.log").read_text()
    last = re.findall(
        r"RMSE Energy\(low\): ([\d.]+) \([\d.]+\) meV/at \| Forces\(low\): ([\d.]+)", log
    )
    assert last, log[-2000:]
    energy, force = map(float, last[-1])
    assert result.errors["train"]["energy_rmse"] == pytest.approx(energy, abs=0.01)
    assert result.errors["train"]["force_rmse"] == pytest.approx(force, abs=0.01)
    relaxed = relax([bulk("Cu", "fcc", a=3.7)], FullRelax(calculator=result.potential, max_steps=3))
    assert len(relaxed) == 1


def test_mace_fit_reports_the_validation_errors_mace_logs(tmp_path) -> None:
    _require("mace", "mace_run_train")
    structures = small_set(24)
    parts = split(structures, Split(0.75, 0.25, 0.0, seed=2))
    settings = MACE(
        channels=8,
        max_L=0,
        correlation=2,
        r_max=4.0,
        epochs=1,
        batch_size=4,
        device="cpu",
        seed=1,
    )
    result = fit(parts["train"], settings, tmp_path, validation=parts["validation"])
    assert isinstance(result.potential, MACEPotential)
    log = (tmp_path / "mace.log").read_text()
    epochs = re.findall(
        r"Epoch \d+: head: Default, loss=[\d.]+, "
        r"RMSE_E_per_atom=\s*([\d.]+) meV, RMSE_F=\s*([\d.]+) meV",
        log,
    )
    assert epochs, log[-2000:]
    energy, force = map(float, epochs[-1])
    assert result.errors["validation"]["energy_rmse"] == pytest.approx(energy, abs=0.01)
    assert result.errors["validation"]["force_rmse"] == pytest.approx(force, abs=0.01)
    relaxed = relax([bulk("Ag", "fcc", a=4.2)], FullRelax(calculator=result.potential, max_steps=3))
    assert len(relaxed) == 1
