"""The exports for fitting codes, checked against the real codes: docs/fitting.md as written.

The commands of the page's ``bash`` blocks (``assyst-nodes run``, ``export``,
``mace_run_train``, ``pacemaker``), its ``yaml`` block (pacemaker's ``input.yaml``) and its
``{code-block} python`` blocks (the fitted models as ASE calculators) are read from the page
and run as they are, in one temporary folder, so the page and what is tested cannot diverge.
Then what the codes made of the files is checked: MACE took its ``E0s`` from the isolated atoms
and reads the labels we wrote (compared with EMT recomputed), pacemaker loaded every row of
our table with our weights and our ``energy_corrected``, the split keeps each family in one
part, and the libAtoms ``extxyz`` reader reads the stress as 6 numbers.

They need the extra ``fit`` (torch, mace-torch, python-ace, extxyz; ``mace_run_train`` and
``pacemaker`` beside this Python); without it they skip with the reason printed, except under
CI (``CI=true``), where a missing extra fails them. Reading the page runs everywhere.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from ase import Atoms
from ase.calculators.emt import EMT
from ase.data import atomic_numbers
from ase.io import read
from ase.stress import voigt_6_to_full_3x3_stress
from services import missing_fit_extra

from assyst_nodes.stages.label import ORIGINS

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "fitting.md"
BIN = Path(sys.executable).parent
FIT_MODULES = ("torch", "mace", "pyace", "extxyz")
FIT_PROGRAMS = ("mace_run_train", "pacemaker")
INSTALL = 'pip install -e ".[fit]" (torch\'s CPU build first, see docs/fitting.md)'
PARTS = ("train", "validation", "test")
ISOLATED = "IsolatedAtom"


# --- the page ---------------------------------------------------------------------------------
def _blocks(fence: str) -> list[str]:
    """The bodies of the page's blocks that open with ```` ```<fence> ````."""
    text = PAGE.read_text(encoding="utf-8")
    return re.findall(rf"^```{re.escape(fence)}\n(.*?)^```", text, re.S | re.M)


def _commands() -> list[list[str]]:
    """Every command of the page's ``bash`` blocks (continuations joined, comments dropped),
    as words; ``pip`` lines (installing) are not run."""
    out = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] != "pip":
                out.append(words)
    return out


def _kind(words: list[str]) -> str:
    """Which step of the page a command is."""
    if words[:2] == ["assyst-nodes", "run"]:
        return "run"
    if words[:2] == ["assyst-nodes", "export"]:
        return "export_pacemaker" if "--pacemaker" in words else "export_extxyz"
    return words[0]


KINDS = ("run", "export_extxyz", "mace_run_train", "export_pacemaker", "pacemaker")


def _command(kind: str) -> list[str]:
    (found,) = [words for words in _commands() if _kind(words) == kind]
    return found


def _option(words: list[str], name: str) -> str:
    """The value after option ``name`` in ``words``."""
    return words[words.index(name) + 1]


def _output(words: list[str]) -> str:
    """The output file of an ``assyst-nodes export`` command (its second positional)."""
    positional = [w for w in words[2:] if not w.startswith("-")]
    return positional[1]


def test_the_page_shows_each_step_once_and_valid_input() -> None:
    """Runs everywhere: what the other tests run is on the page, once each."""
    kinds = [_kind(words) for words in _commands()]
    assert sorted(kinds) == sorted(KINDS), kinds
    (config,) = _blocks("yaml")
    data = yaml.safe_load(config)
    assert "reference_energy" not in data["data"]  # our energy_corrected is used as it is
    assert data["backend"]["evaluator"] == "pyace"
    mace = _command("mace_run_train")
    assert "--E0s" not in mace  # taken from the isolated atoms of the train file
    extxyz = _command("export_extxyz")
    for part in PARTS:
        stem = _output(extxyz).removesuffix(".extxyz")
        assert f"{stem}_{part}.extxyz" in mace
    stem = _output(_command("export_pacemaker")).removesuffix(".pkl.gzip")
    assert data["data"]["filename"] == f"{stem}_train.pkl.gzip"
    assert len(_blocks("{code-block} python")) == 2
    for block in _blocks("{code-block} python"):
        compile(block, str(PAGE), "exec")


# --- running the page -------------------------------------------------------------------------
def _require_fit() -> None:
    """Skip (with the reason, printed) without the extra fit; fail under CI."""
    missing = [name for name in FIT_MODULES if importlib.util.find_spec(name) is None]
    missing += [name for name in FIT_PROGRAMS if not (BIN / name).is_file()]
    if missing:
        missing_fit_extra(
            f"the extra fit is not installed (missing {', '.join(missing)}): {INSTALL}"
        )


def _program(words: list[str]) -> list[str]:
    """``words`` with the program of this Python's environment."""
    if words[0] == "assyst-nodes":
        script = BIN / "assyst-nodes"
        head = [str(script)] if script.is_file() else [sys.executable, "-m", "assyst_nodes"]
        return head + words[1:]
    return [str(BIN / words[0]), *words[1:]]


@dataclass
class Work:
    """The folder the page's commands run in, their environment and their outputs."""

    folder: Path
    env: dict[str, str]
    stdout: dict[str, str] = field(default_factory=dict)

    def run(self, kind: str, words: list[str], cwd: Path | None = None) -> str:
        done = subprocess.run(
            _program(words), cwd=cwd or self.folder, env=self.env, capture_output=True,
            text=True, timeout=600,
        )  # fmt: skip
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{shlex.join(words)} exited {done.returncode}:\n{output}"
        self.stdout[kind] = output
        return output


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Work:
    """The page's ``assyst-nodes run``, once for the module, in a fresh folder with its own
    HOME (module fixtures run before the per-test HOME of conftest.py)."""
    _require_fit()
    folder = tmp_path_factory.mktemp("fitting")
    home = folder / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYIRON")}
    env.update(HOME=str(home), MPLBACKEND="Agg", ASSYST_PROGRESS="0")
    out = Work(folder, env)
    out.run("run", _command("run"))
    return out


@pytest.fixture(scope="module")
def mace(work: Work) -> Work:
    """The extxyz export and the MACE fit of the page."""
    work.run("export_extxyz", _command("export_extxyz"))
    work.run("mace_run_train", _command("mace_run_train"))
    return work


@pytest.fixture(scope="module")
def pace(work: Work) -> Work:
    """pacemaker's export and fit of the page, with the page's input.yaml."""
    work.run("export_pacemaker", _command("export_pacemaker"))
    (config,) = _blocks("yaml")
    (work.folder / "input.yaml").write_text(config, encoding="utf-8")
    work.run("pacemaker", _command("pacemaker"))
    return work


@pytest.fixture
def mace_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """For a test that uses mace in this process: mace sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``
    (on import, to load its pickled models) and the default torch dtype (on use), for the
    whole process; both are set here and put back after the test."""
    import torch

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # as --default_dtype float64
    yield
    torch.set_default_dtype(dtype)


@pytest.fixture
def in_work(work: Work, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The test in the page's folder (for the in-process code blocks)."""
    monkeypatch.chdir(work.folder)
    yield work.folder


def _parts(work: Work) -> dict[str, Path]:
    stem = _output(_command("export_extxyz")).removesuffix(".extxyz")
    return {part: work.folder / f"{stem}_{part}.extxyz" for part in PARTS}


def _tables(work: Work) -> dict[str, Path]:
    stem = _output(_command("export_pacemaker")).removesuffix(".pkl.gzip")
    return {part: work.folder / f"{stem}_{part}.pkl.gzip" for part in ("train", "test")}


def _printed_references(stdout: str) -> dict[str, float]:
    """The reference energies an export printed, ``{Ag: 2.96, Cu: 3.51}``."""
    text = re.search(r"reference energies \(eV per isolated atom\): \{(.*?)\}", stdout)
    assert text, stdout
    pairs = (item.split(":") for item in text.group(1).split(","))
    return {element.strip(): float(value) for element, value in pairs}


def _isolated_emt(element: str, box: float = 12.0) -> float:
    atoms = Atoms(element, positions=[[box / 2] * 3], cell=[box] * 3, pbc=True)
    atoms.calc = EMT()
    return float(atoms.get_potential_energy())


def _emt(structure: Atoms) -> Atoms:
    """A copy of ``structure`` with EMT, the label calculator of the page."""
    copy = Atoms(structure.numbers, positions=structure.positions, cell=structure.cell, pbc=True)
    copy.calc = EMT()
    return copy


# --- MACE -------------------------------------------------------------------------------------
def test_mace_fits_with_the_isolated_atoms_as_e0s(mace: Work) -> None:
    words = _command("mace_run_train")
    name, seed = _option(words, "--name"), _option(words, "--seed")
    where = mace.folder / _option(words, "--work_dir")
    assert (where / f"{name}.model").is_file()
    log = (where / "logs" / f"{name}_run-{seed}.log").read_text(encoding="utf-8")
    assert "Using isolated atom energies from training file" in log
    used = re.search(r"Atomic Energies used \(z: eV\) for head Default: (\{.*?\})", log)
    assert used, log[-3000:]
    e0s = ast.literal_eval(used.group(1))
    references = _printed_references(mace.stdout["export_extxyz"])
    assert references == pytest.approx({"Ag": 2.96, "Cu": 3.51}, abs=0.005)  # as the page says
    assert e0s == pytest.approx({atomic_numbers[e]: v for e, v in references.items()}, abs=1e-9)
    for element, value in references.items():
        assert value == pytest.approx(_isolated_emt(element), abs=1e-9)
    # the error tables (the test set per config_type only) and the evaluations as JSON lines
    assert "Error-table on TRAIN and VALID" in log and "Error-table on TEST" in log
    test_table = log[log.index("Error-table on TEST") :]
    assert "perturbed_Default" in test_table
    print(log[log.index("Error-table on TRAIN and VALID") :])
    lines = (where / "results" / f"{name}_run-{seed}_train.txt").read_text().splitlines()
    evaluations = [json.loads(line) for line in lines if '"mode": "eval"' in line]
    assert evaluations
    for key in ("rmse_e_per_atom", "rmse_f", "rmse_stress"):
        assert all(math.isfinite(e[key]) for e in evaluations), key


def test_the_mace_model_is_an_ase_calculator(mace: Work, in_work: Path, mace_state: None) -> None:
    block = _blocks("{code-block} python")[0]
    namespace: dict[str, object] = {}
    exec(compile(block, f"{PAGE.name} MACE calculator", "exec"), namespace)
    atoms = namespace["atoms"]
    assert isinstance(atoms, Atoms) and atoms.info["config_type"] != ISOLATED
    assert math.isfinite(atoms.get_potential_energy())
    assert atoms.get_forces().shape == (len(atoms), 3) and np.isfinite(atoms.get_forces()).all()
    assert atoms.get_stress().shape == (6,) and np.isfinite(atoms.get_stress()).all()


def test_mace_reads_the_labels_as_written_and_as_emt_computes_them(
    mace: Work, mace_state: None
) -> None:
    from mace import data, tools
    from mace.data.utils import KeySpecification, update_keyspec_from_kwargs

    words = _command("mace_run_train")
    keys = {k: _option(words, f"--{k}") for k in ("energy_key", "forces_key", "stress_key")}
    specification = update_keyspec_from_kwargs(KeySpecification.from_defaults(), keys)
    path = mace.folder / _option(words, "--test_file")
    written = read(path, index=":")
    _, configs = data.load_from_xyz(str(path), key_specification=specification)
    assert len(configs) == len(written) > 0
    table = tools.AtomicNumberTable([29, 47])
    for config, frame in zip(configs, written, strict=True):
        atomic = data.AtomicData.from_config(config, z_table=table, cutoff=4.0, heads=["Default"])
        stress = atomic.stress[0].numpy()
        voigt = np.asarray(frame.info["REF_stress"])
        assert voigt.shape == (6,)
        assert np.array_equal(stress, voigt_6_to_full_3x3_stress(voigt))
        assert float(atomic.energy) == frame.info["REF_energy"]
        assert np.array_equal(atomic.forces.numpy(), frame.arrays["REF_forces"])
        # independent: EMT recomputed on the structure as written (positions to 1e-8 Å)
        emt = _emt(frame)
        assert np.allclose(stress, emt.get_stress(voigt=False), rtol=0, atol=1e-8)
        assert abs(float(atomic.energy) - emt.get_potential_energy()) < 1e-6
        assert np.allclose(atomic.forces.numpy(), emt.get_forces(), rtol=0, atol=1e-5)


def test_the_split_keeps_each_family_in_one_part_and_the_isolated_atoms_in_training(
    mace: Work,
) -> None:
    frames = {part: read(path, index=":") for part, path in _parts(mace).items()}
    families = {
        part: {f.info["family"] for f in found if f.info["config_type"] != ISOLATED}
        for part, found in frames.items()
    }
    for one, other in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not families[one] & families[other], (one, other)
    isolated = {part: sum(f.info["config_type"] == ISOLATED for f in found)
                for part, found in frames.items()}  # fmt: skip
    assert isolated == {"train": 2, "validation": 0, "test": 0}
    for part, found in frames.items():
        assert f"{part}: {len(found)} structures written to" in mace.stdout["export_extxyz"]
    # the numbers the page states
    page = " ".join(PAGE.read_text(encoding="utf-8").split())
    stated = re.search(
        r"labels (\d+) distinct structures of the (\d+) \((\d+) duplicates labelled once\) and "
        r"the two isolated atoms; the split writes (\d+) frames for training \(the isolated "
        r"atoms among them\), (\d+) for validation and (\d+) for testing", page
    )  # fmt: skip
    assert stated, "docs/fitting.md no longer states the numbers of its run"
    distinct, total, duplicates, train, validation, test = map(int, stated.groups())
    assert [len(frames[p]) for p in PARTS] == [train, validation, test]
    labelled = [f for found in frames.values() for f in found if f.info["config_type"] != ISOLATED]
    assert len(labelled) == distinct
    stood_for = sum(len(str(f.info.get("duplicates", "")).split()) for f in labelled)
    assert stood_for == duplicates == total - distinct
    assert {f.info["config_type"] for f in labelled} <= set(ORIGINS) - {ISOLATED}


def test_the_libatoms_extxyz_reader_reads_the_stress_as_six_numbers(mace: Work) -> None:
    import extxyz

    for path in _parts(mace).values():
        frames = extxyz.read_dicts(str(path))
        frames = frames if isinstance(frames, list) else [frames]
        by_ase = read(path, index=":")
        assert len(frames) == len(by_ase) > 0
        for frame, atoms in zip(frames, by_ase, strict=True):
            stress = frame.info["REF_stress"]
            assert isinstance(stress, np.ndarray) and stress.shape == (6,)
            assert np.array_equal(stress, atoms.info["REF_stress"])
            assert np.allclose(stress, _emt(atoms).get_stress(), rtol=0, atol=1e-8)
            assert isinstance(frame.info["config_type"], str)
            assert frame.info["config_type"] in ORIGINS
            assert frame.info["REF_energy"] == atoms.info["REF_energy"]
            assert np.array_equal(frame.arrays["REF_forces"], atoms.arrays["REF_forces"])
            assert frame.info["config_weight"] == 1.0


# --- pacemaker --------------------------------------------------------------------------------
def _rows_found(log: str) -> list[int]:
    return [int(n) for n in re.findall(r"^.* - +(\d+) structures found$", log, re.M)]


def _error_tables(log: str) -> list[dict[str, float]]:
    """pacemaker's error tables in ``log``: RMSE of energy (meV/atom) and force (meV/Å)."""
    out = []
    for match in re.finditer(
        r"Energy/at, meV/at.*?Force, meV/A.*?\n\s*RMSE:\s+(\S+)\s+(\S+)\s+(\S+)", log, re.S
    ):
        out.append({"energy": float(match.group(1)), "force": float(match.group(3))})
    return out


def test_pacemaker_fits_every_row_of_our_tables_with_our_weights(pace: Work) -> None:
    assert (pace.folder / "output_potential.yaml").is_file()
    log = (pace.folder / "log.txt").read_text(encoding="utf-8")
    ours = {p: pd.read_pickle(path, compression="gzip") for p, path in _tables(pace).items()}
    assert _rows_found(log)[:2] == [len(ours["train"]), len(ours["test"])]
    page = " ".join(PAGE.read_text(encoding="utf-8").split())
    stated = re.search(r"_train.pkl.gzip` \((\d+) rows here\) and `\S+_test.pkl.gzip` "
                       r"\((\d+) rows\)", page)  # fmt: skip
    assert stated, "docs/fitting.md no longer states the rows of its tables"
    assert [int(n) for n in stated.groups()] == [len(ours["train"]), len(ours["test"])]
    assert f"Fitting dataset size: {len(ours['train'])} structures" in log
    assert f"Test dataset size: {len(ours['test'])} structures" in log
    assert "Both weighting columns (w_energy and w_forces) are found" in log
    fitted = pd.read_pickle(pace.folder / "fitting_data_info.pckl.gzip", compression="gzip")
    assert len(fitted) == len(ours["train"])
    fitted = fitted.set_index("uuid").loc[ours["train"]["uuid"]]
    # our energy_corrected as it is (no reference_energy recomputes it), our weights
    assert np.allclose(fitted["energy_corrected"], ours["train"]["energy_corrected"], atol=1e-12)
    share = fitted["w_energy"].to_numpy() / ours["train"]["w_energy"].to_numpy()
    assert np.allclose(share, share[0], rtol=1e-12)
    tables = _error_tables(log)
    assert tables and all(math.isfinite(v) for t in tables for v in t.values())
    assert (pace.folder / "metrics.txt").is_file()
    # the last table is the training set's errors of the potential written, as the page says
    errors = {part: _pace_errors(pace.folder / f"{part}_pred.pckl.gzip") for part in PARTS[::2]}
    assert errors["train"] == pytest.approx(tables[-1], abs=0.01)
    print("pacemaker (RMSE meV/atom, meV/Å): train first", tables[0], "last", tables[-1],
          "test", errors["test"])  # fmt: skip


def _pace_errors(path: Path) -> dict[str, float]:
    """RMSE of energy (meV/atom, on the energy_corrected scale) and of the force components
    (meV/Å) of pacemaker's predictions in ``path``."""
    found = pd.read_pickle(path, compression="gzip")
    energy = (found["energy_pred"] - found["energy_corrected"]) / found["NUMBER_OF_ATOMS"]
    forces = np.concatenate(
        [
            (np.asarray(p) - np.asarray(f)).ravel()
            for p, f in zip(found["forces_pred"], found["forces"], strict=True)
        ]
    )
    return {
        "energy": round(1000 * float(np.sqrt(np.mean(energy**2))), 2),
        "force": round(1000 * float(np.sqrt(np.mean(forces**2))), 2),
    }


def test_the_pacemaker_potential_is_an_ase_calculator_on_the_corrected_scale(
    pace: Work, in_work: Path
) -> None:
    test = pd.read_pickle(_tables(pace)["test"], compression="gzip")
    row = test.iloc[0]
    namespace: dict[str, object] = {"atoms": row["ase_atoms"].copy()}
    exec(compile(_blocks("{code-block} python")[1], f"{PAGE.name} pyace", "exec"), namespace)
    atoms = namespace["atoms"]
    assert isinstance(atoms, Atoms)
    energy = atoms.get_potential_energy()
    assert math.isfinite(energy) and np.isfinite(atoms.get_forces()).all()
    # the energies pacemaker compares with energy_corrected (its predictions of the test set)
    predicted = pd.read_pickle(pace.folder / "test_pred.pckl.gzip", compression="gzip")
    (mine,) = predicted.index[predicted["uuid"] == row["uuid"]]
    # to a µeV: the potential file holds its coefficients as decimal text (~1e-7 eV seen)
    assert energy == pytest.approx(predicted.loc[mine, "energy_pred"], abs=1e-6)
    assert row["energy_corrected"] == pytest.approx(
        row["energy"] - sum(_isolated_emt(s) for s in atoms.get_chemical_symbols()), abs=1e-9
    )


def test_pacemaker_takes_weights_per_origin(pace: Work) -> None:
    """The page's export and input.yaml with other weights (no split, one iteration)."""
    words = _command("export_pacemaker")
    if "--split" in words:
        at = words.index("--split")
        words = words[:at] + words[at + 4 :]
    words = [("weighted.pkl.gzip" if w == _output(words) else w) for w in words]
    pace.run("export_weighted", [*words, "--weight", "sampled=0.25", "relaxed=4"])
    folder = pace.folder / "weighted"
    folder.mkdir()
    config = yaml.safe_load(_blocks("yaml")[0])
    config["data"] = {"filename": str(pace.folder / "weighted.pkl.gzip")}
    config["fit"]["maxiter"] = 1
    (folder / "input.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    pace.run("pacemaker_weighted", [*_command("pacemaker"), "--no-predict"], cwd=folder)
    ours = pd.read_pickle(pace.folder / "weighted.pkl.gzip", compression="gzip")
    fitted = pd.read_pickle(folder / "fitting_data_info.pckl.gzip", compression="gzip")
    fitted = fitted.set_index("uuid").loc[ours["uuid"]]
    assert np.allclose(fitted["w_energy"].to_numpy(), ours["w_energy"].to_numpy(), rtol=1e-12)
    by_origin = ours.groupby("config_type")["w_energy"].first()
    assert by_origin["sampled"] / by_origin["perturbed"] == pytest.approx(0.25)
    assert by_origin["relaxed"] / by_origin["perturbed"] == pytest.approx(4.0)
    for w_energy, w_forces in zip(ours["w_energy"], ours["w_forces"], strict=True):
        assert np.sum(w_forces) == pytest.approx(w_energy)
