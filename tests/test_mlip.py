"""SevenNet-0 (:mod:`assyst_nodes.calculators.mlip`), a universal MLIP with weights in the
sevenn wheel.

The relaxations need the extra ``mlip`` (torch and sevenn); without it they skip with the
reason printed, except under CI (``CI=true``), where a missing extra fails them. Config
validation and the missing-extra errors run everywhere.
"""

from __future__ import annotations

import importlib
import math
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from services import in_ci

from assyst_nodes.calculators import get_calculator
from assyst_nodes.calculators.mlip import INSTALL_HINT, SevenNet, available_devices
from assyst_nodes.cli.settings import RunSettings
from assyst_nodes.reports import StageReport
from assyst_nodes.runtime.fanout import process_pool
from assyst_nodes.stages.relax import FullRelax, VolumeRelax, relax
from assyst_nodes.stages.sample import sample


def _require_mlip() -> None:
    """Skip (with the reason, printed) without torch and sevenn; fail under CI."""
    try:
        importlib.import_module("torch")
        importlib.import_module("sevenn")
    except ImportError as error:
        reason = f"the extra mlip is not installed ({error}); install it with: {INSTALL_HINT}"
        if in_ci():
            pytest.fail(f"{reason} (CI=true: the extra is required, not skipped)", pytrace=False)
        print(reason)
        pytest.skip(reason)


@dataclass(frozen=True)
class CountedSevenNet(SevenNet):
    """SevenNet that appends ``<pid>`` to the file ``builds`` each time a model is built."""

    builds: str = ""

    def build(self):  # type: ignore[no-untyped-def]
        with open(self.builds, "a") as log:
            log.write(f"{os.getpid()}\n")
        return super().build()


def crystals() -> list[Atoms]:
    """Two seeded Cu-Ag crystals: CuAg in group 221 (CsCl type) and Cu2Ag in group 164."""
    out = list(sample([{"Cu": 1, "Ag": 1}, {"Cu": 2, "Ag": 1}], [221, 164], max_atoms=3,
                      rng=4, progress=False))
    out = [out[0], out[-1]]
    assert len(out) == 2
    return out


@pytest.fixture(scope="module")
def relaxed(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[int, tuple[list[Atoms], StageReport, list[str]]]:
    """Two Cu-Ag crystals relaxed (volume, then full, 30 steps) with SevenNet-0 with 1 and with 2
    workers: per number of workers the results, the report of the full relaxation and the pids
    that built a model."""
    _require_mlip()
    out = {}
    for workers in (1, 2):
        builds = tmp_path_factory.mktemp(f"builds{workers}") / "pids"
        builds.touch()
        model = CountedSevenNet(builds=str(builds))
        report = StageReport()
        with process_pool(workers) as pool:  # both stages in the same worker processes
            volume = relax(crystals(), VolumeRelax(calculator=model, max_steps=30),
                           workers=workers, executor=pool, progress=False)
            full = relax(volume, FullRelax(calculator=model, max_steps=30), report=report,
                         workers=workers, executor=pool, progress=False)
        out[workers] = (full, report, builds.read_text().split())
    return out


def test_relaxes_two_copper_silver_crystals(relaxed) -> None:  # type: ignore[no-untyped-def]
    structures, report, _ = relaxed[1]
    assert len(structures) == 2 and report.drops == []
    starts = crystals()
    calculator = get_calculator(SevenNet())
    for start, atoms in zip(starts, structures, strict=True):
        assert atoms.get_chemical_formula() == start.get_chemical_formula()
        energy = atoms.get_potential_energy()  # eV
        start = start.copy()
        start.calc = calculator
        assert math.isfinite(energy) and energy < start.get_potential_energy()  # went downhill
        assert np.isfinite(atoms.get_forces()).all() and np.isfinite(atoms.get_stress()).all()
        assert isinstance(atoms.info["relax_converged"], bool)
    # the unconverged ones (Cu2Ag with 1.9 Å contacts does not converge in 30 steps) are kept
    # and counted
    n_unconverged = sum(not a.info["relax_converged"] for a in structures)
    assert report.flags.get("not_converged", 0) == n_unconverged


def test_one_and_two_workers_give_identical_results(relaxed) -> None:  # type: ignore[no-untyped-def]
    one, _, _ = relaxed[1]
    two, _, _ = relaxed[2]
    assert [a.info["uuid"] for a in one] == [a.info["uuid"] for a in two]
    for a, b in zip(one, two, strict=True):
        assert a.get_potential_energy() == b.get_potential_energy()  # bit for bit
        assert np.array_equal(a.positions, b.positions) and np.array_equal(a.cell[:], b.cell[:])
        assert np.array_equal(a.get_forces(), b.get_forces())
        assert a.info["relax_converged"] == b.info["relax_converged"]


def test_the_model_is_loaded_once_per_worker_process(relaxed) -> None:  # type: ignore[no-untyped-def]
    _, _, serial_builds = relaxed[1]
    _, _, parallel_builds = relaxed[2]
    # one worker process, two stages, four relaxations: one model
    assert len(serial_builds) == 1 and serial_builds[0] != str(os.getpid())
    # two worker processes: at most one model each, for both stages and all structures
    assert len(parallel_builds) == len(set(parallel_builds)) <= 2
    assert str(os.getpid()) not in parallel_builds
    # what travels with every task is the config (a few hundred bytes), not the model
    assert len(pickle.dumps(FullRelax(calculator=SevenNet()))) < 1000


def test_cached_calculator_is_built_once_per_process() -> None:
    _require_mlip()
    config = SevenNet()
    calculator = get_calculator(config)
    assert calculator is get_calculator(SevenNet())
    import torch
    from ase.build import bulk
    from threadpoolctl import threadpool_limits

    atoms = bulk("Cu")
    atoms.calc = calculator
    with threadpool_limits(2):  # whatever changed the thread count since the build
        atoms.get_potential_energy()
        assert torch.get_num_threads() == config.threads  # set again for the calculation


def test_a_missing_device_is_a_clear_error() -> None:
    _require_mlip()
    valid = available_devices()
    assert valid[0] == "cpu"
    missing = next(d for d in ("cuda", "cuda:7", "mps") if d not in valid)
    with pytest.raises(ValueError) as raised:
        SevenNet(device=missing).check()
    assert repr(missing) in str(raised.value) and "cpu" in str(raised.value)
    with pytest.raises(ValueError, match=r"'gpu0'.*valid here: cpu"):
        SevenNet(device="gpu0").check()


def test_models_that_would_be_downloaded_are_refused() -> None:
    _require_mlip()
    assert SevenNet().checkpoint().endswith(".pth")
    assert SevenNet("SevenNet-0").checkpoint() == SevenNet().checkpoint()
    with pytest.raises(ValueError, match=r"'7net-omat'.*download"):
        SevenNet("7net-omat").check()
    with pytest.raises(ValueError, match=r"'no-such-model'.*neither"):
        SevenNet("no-such-model").check()


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"model": ""}, ["model", "''"]),
        ({"device": ""}, ["device", "''"]),
        ({"threads": 0}, ["threads", "0"]),
        ({"threads": True}, ["threads", "True"]),
        ({"modal": ""}, ["modal", "''"]),
    ],
)
def test_config_errors_name_the_bad_value(kwargs: dict[str, object], words: list[str]) -> None:
    with pytest.raises(ValueError) as raised:
        SevenNet(**kwargs)  # type: ignore[arg-type]
    for word in words:
        assert word in str(raised.value)


def test_config_is_readable_hashable_and_picklable() -> None:
    assert str(SevenNet()) == "sevennet(7net-0)"
    tuned = SevenNet("7net-mf-0", modal="PBE", threads=2)
    assert str(tuned) == "sevennet(7net-mf-0, modal=PBE, threads=2)"
    for config in (SevenNet(), tuned):
        copy = pickle.loads(pickle.dumps(config))
        assert copy == config and hash(copy) == hash(config)


def test_missing_extra_is_an_import_error_saying_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sevenn", None)
    monkeypatch.setitem(sys.modules, "sevenn.calculator", None)
    for call in (SevenNet().check, SevenNet().build):
        with pytest.raises(ImportError, match=r"assyst_nodes\[mlip\]"):
            call()


def test_cli_settings_know_it_by_name(tmp_path: Path) -> None:
    _require_mlip()
    settings = RunSettings(calculator="sevennet", calculator_kwargs={"threads": 1})
    assert settings.calculator_config() == SevenNet()
    settings = RunSettings(label="SevenNet", label_kwargs={"model": "7net-0_22May2024"})
    assert settings.label_config() == SevenNet("7net-0_22May2024")
    on_a_missing_gpu = RunSettings(calculator="sevennet", calculator_kwargs={"device": "cuda:9"})
    with pytest.raises(ValueError, match="'cuda:9'"):
        on_a_missing_gpu.calculator_config()


def test_checking_a_cpu_config_does_not_import_torch() -> None:
    """The calling process only checks; the workers import torch and load the model (a run that
    imported torch in both paid the seconds twice)."""
    _require_mlip()
    code = (
        "import sys\n"
        "from assyst_nodes.calculators.mlip import SevenNet\n"
        "SevenNet().check(); SevenNet('7net-0_22May2024').check()\n"
        "print(sorted({'torch', 'sevenn'} & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "[]"
