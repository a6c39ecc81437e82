"""Every notebook under notebooks/ runs top to bottom in a fresh kernel (so none can rot), and
shows what it is meant to show: each has a check of its executed outputs and of the files it
wrote into its working directory (a temporary folder)."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from ase.io import read
from nbclient import NotebookClient
from services import in_ci, missing_fit_extra

from assyst_nodes import plot
from assyst_nodes.lineage import LINEAGE, STEP, UUID
from assyst_nodes.project import history, structure_frame, structures

NOTEBOOK_DIR = Path(__file__).parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


class Executed:
    """An executed notebook: its cells, the text it printed or displayed, its working folder."""

    def __init__(self, notebook: nbformat.NotebookNode, folder: Path) -> None:
        self.notebook = notebook
        self.folder = folder
        self.code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        self.outputs = [output for cell in self.code for output in cell.outputs]

    def text(self) -> str:
        """Everything printed (stdout) and every displayed value's plain text, in order."""
        parts = []
        for output in self.outputs:
            if output.output_type == "stream" and output.name == "stdout":
                parts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                parts.append(output.data.get("text/plain", ""))
        return "\n".join(parts)

    def source(self) -> str:
        return "\n".join(cell.source for cell in self.code)

    def images(self) -> int:
        """Number of displayed PNG images."""
        return sum(
            1
            for output in self.outputs
            if output.output_type in ("execute_result", "display_data")
            and "image/png" in output.data
        )

    def cell_printing(self, marker: str) -> str:
        """The stdout of the (first) code cell whose source contains ``marker``."""
        for cell in self.code:
            if marker in cell.source:
                return "".join(
                    o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"
                )
        raise AssertionError(f"no code cell contains {marker!r}")


def check_quickstart(run: Executed) -> None:
    text = run.text()
    assert "types valid: True complete: True" in text
    assert (run.folder / "training_set.extxyz").is_file()


def check_custom_relaxer(run: Executed) -> None:
    text = run.text()
    # the engine without a radius for Au drops it with its own reason, the others go on
    assert "dropped: no_reference_radius 1" in text
    assert "no reference radius for ['Au']" in text
    # the numpy steepest descent lands where LBFGS does (energies agree to < 1 meV/atom)
    difference = float(text.split("largest energy difference: ")[1].split(" meV/atom")[0])
    assert difference < 1.0
    assert "not_converged" in run.cell_printing("max_steps=2")
    # as a node, in a hand-built graph with the engine as a config node, and in the macro
    assert "types valid: True complete: True" in text
    assert "identical to the plain-Python run: True" in text
    steps = [line.split()[-1] for line in run.cell_printing("chain(last").splitlines()[:3]]
    assert steps == ["pyxtal", "bond_scale", "full_relax"]


def check_lineage(run: Executed) -> None:
    text = run.text()
    for expected in (
        "consistent",
        "positions, cells, energies and forces identical bit for bit",
        "job table unchanged: True",
        "same training set: True",
    ):
        assert expected in text, expected
    project = run.folder / "cu_ag_project"
    assert (project / "pyiron.db").is_file() and (project / "assyst_index.db").is_file()
    # the project the notebook left behind answers queries from another process
    frame = structure_frame(project, stage="filter")
    assert len(frame) > 0 and set(frame.step) >= {"pyxtal", "volume_relax", "full_relax"}
    assert len(structures(project, stage="perturb")) > 0
    perturbed = frame[frame.perturbation.notna()].iloc[-1]
    chain = history(project, perturbed.uuid)
    assert [link.step for link in chain[:2]] == ["pyxtal", "volume_relax"]
    assert chain[-1].step == perturbed.step and chain[0].uuid == perturbed.seed
    assert [link.uuid for link in chain[:-1]] == list(chain[-1].structure.info[LINEAGE])


FIGURE_FUNCTIONS = [
    name
    for name in plot.__all__
    if inspect.isfunction(getattr(plot, name)) and name not in ("features", "save_figures")
]


def check_plot_gallery(run: Executed) -> None:
    source = run.source()
    missing = [name for name in FIGURE_FUNCTIONS if f"plot.{name}(" not in source]
    assert not missing, f"the gallery does not show {missing}"
    assert run.images() >= len(FIGURE_FUNCTIONS)
    assert 'by="step"' in source
    figures = sorted((run.folder / "figures").glob("*.png"))
    names = {path.stem for path in figures}
    assert names >= set(FIGURE_FUNCTIONS)
    assert all(path.stat().st_size > 1000 for path in figures)


def check_macro_in_workflow(run: Executed) -> None:
    text = run.text()
    assert "Type validation for 'assyst_labelled' (valid=True, complete=True)" in text
    assert "Type validation for 'miswired' (valid=False" in text
    assert "assyst.reports->labelling.structures" in text
    assert run.images() >= 1
    written = read(run.folder / "training_set.extxyz", index=":")
    assert len(written) > 0
    for structure in written:
        assert structure.info[STEP] == "single_point" and structure.info[UUID]
        assert structure.get_forces().shape == (len(structure), 3)
        largest = (structure.get_forces() ** 2).sum(axis=1).max() ** 0.5
        assert largest <= 3.0  # the workflow's force cap (eV/Å)


def check_pyiron_project(run: Executed) -> None:
    text = run.text()
    for expected in (
        "a pyiron_base.Project: True\ndatabase: embedded",
        "CuAg: ",
        "AlNi: ",
        "each uuid once: True",
        "removed job cited: False",
        "every cited job in the table: True",
        "missing: [] status: finished",
        "structures kept: True",
        "same uuids after unpack: True",
    ):
        assert expected in text, expected
    cu_ag = int(text.split("CuAg: ")[1].split()[0])
    labelled = run.cell_printing("AssystLabel").splitlines()[-1].split()
    assert labelled[:3] == ["finished", str(cu_ag), "labelled;"]  # every Cu-Ag training structure
    per_group = run.cell_printing("stage jobs per sub-project")
    assert "assyst_study/AlNi/    7" in per_group and "assyst_study/CuAg/    7" in per_group
    jobs = text.split("jobs: ")[1].split("\n")[0]
    before, after = (int(n) for n in jobs.split(" -> "))
    assert before == after == 16
    svg = [o for o in run.outputs if "image/svg+xml" in o.get("data", {})]
    assert svg and "sample_0" in svg[0].data["image/svg+xml"]  # the drawn graph
    listed = int(text.split("stage jobs listed by the second pipeline: ")[1].split()[0])
    assert listed == 7  # every Cu-Ag stage job, all reused
    study = run.folder / "assyst_study"
    assert (study / "pyiron.db").is_file() and not (study / "CuAg" / "pyiron.db").exists()
    assert (run.folder / "assyst_study_archive.tar.gz").is_file()
    # the project the notebook left behind: two sub-projects, one database
    frame = structure_frame(study)
    assert frame["uuid"].is_unique and set(frame["formula"].str.contains("Al|Ni")) == {True, False}


def check_real_calculators(run: Executed) -> None:
    text = run.text()
    # the MLIP: a config of a few hundred bytes; a missing device named with the valid ones
    assert "sevennet(7net-0) | pickled config:" in text
    assert "ValueError: SevenNet device 'cuda:3' is not available on this machine" in text
    relaxed = run.cell_printing("FullRelax(calculator=mlip").splitlines()
    rows = [line for line in relaxed if "eV/atom" in line]
    assert len(rows) == 4
    for row in rows:  # SevenNet-0 total energies: around -3 to -4 eV/atom for Cu-Ag
        assert -5.0 < float(row.split("eV/atom")[0].split()[-1]) < -2.0
    # DFT: a mesh per structure, every structure labelled, then all of them reused
    labels = run.cell_printing("dft = GPAW(").splitlines()
    assert "gpaw(PBE, 250 eV, k 2.0/Å⁻¹, FD 0.1 eV)" in labels[0]
    assert sum("k-point mesh" in line for line in labels) == 4
    assert sum("largest DFT force" in line for line in labels) == 3
    assert "single_point: 3 in -> 3 out" in "\n".join(labels)
    # a grown set: only the new structure is computed
    again = run.cell_printing("again, report")
    assert "single_point: 4 in -> 4 out [reused 3]" in again and "same labels: True" in again
    assert "AssystLabel" in again
    # export: both files written and read back
    assert "4 structures in labels.extxyz | left out: 0" in text
    assert "['REF_energy', 'REF_stress'] ['REF_forces']" in text
    assert "energies read back: True" in text
    back = read(run.folder / "labels.extxyz", index=":")
    assert len(back) == 4 and all(a.arrays["REF_forces"].shape == (len(a), 3) for a in back)
    assert (run.folder / "labels.pkl.gzip").is_file()
    assert (run.folder / "real_calculators" / "pyiron.db").is_file()


def check_fitting(run: Executed) -> None:
    text = run.text()
    # the label report: duplicates labelled once, with the uuids they stand for; isolated atoms
    report = run.cell_printing("labelled = structures(")
    assert "[isolated_atom 2]" in report and "duplicate " in report
    stood_for = report.split("uuids stood for by labelled structures: ")[1].split()[0]
    reported = report.split("| reported duplicates: ")[1].split()[0]
    assert int(stood_for) == int(reported) > 0
    assert "isolated atoms (eV): {'Ag': 2.96, 'Cu': 3.51}" in report
    # the export: three parts by family, the isolated atoms' energies as reference energies
    assert "reference energies (eV per isolated atom): {'Ag': 2.96, 'Cu': 3.51}" in text
    assert "families in two parts: 0" in text
    parts = {part: read(run.folder / f"cuag_{part}.extxyz", index=":")
             for part in ("train", "validation", "test")}  # fmt: skip
    assert all(parts.values())
    isolated = [a for a in parts["train"] if a.info["config_type"] == "IsolatedAtom"]
    assert len(isolated) == 2
    # MACE: fitted, E0s from the isolated atoms, a per-config_type test table
    assert "mace_run_train exit status 0" in text
    assert "Atomic Energies used (z: eV) for head Default: {29: 3.51, 47: 2.96}" in text
    assert "perturbed_Default" in text
    assert (run.folder / "mace" / "cuag.model").is_file()
    # the model as an ASE calculator against the reference labels of the test file
    line = text.split(f"test set, {len(parts['test'])} structures: RMSE energy ")[1]
    numbers = [float(word) for word in line.split()[:7:3]]  # meV/atom, meV/Å, meV/Å³
    assert len(numbers) == 3 and all(0 < value < 1e5 for value in numbers)


def check_validation(run: Executed) -> None:
    text = run.text()
    # the run: labelled, fitted (training and held-out family errors), validated, as jobs
    assert "single_point" in text and "[isolated_atom: 2]" in text
    assert "train: " in text and "validation: " in text
    for job in ("AssystFit", "AssystSuite", "AssystValidate"):
        assert f"{job} finished" in text, job
    # the errors per group and domain, the properties, the figures
    errors = run.cell_printing("validation.errors[")
    for group in ("ev:fcc:Cu", "ev:diamond:Ag", "ev:B2:CuAg", "vacancy:Cu", "md:liquid",
                  "near", "transfer", "all"):
        assert group in errors, group
    properties = run.cell_printing("properties = validation.properties")
    assert "C44" in properties and "vacancy_energy" in properties and "phonon_rmse" in properties
    assert run.images() >= 3
    # the rerun reads everything back; the second run relaxes with the potential
    assert "same potential: True | same errors: True" in text
    rows = [line for line in run.cell_printing("second = run_pipeline(").splitlines()
            if "recomputed with the potential" in line]
    assert rows
    for row in rows:
        stored = float(row.split("eV/atom")[0].split()[-1])
        assert stored == float(row.split(":")[-1])


CHECKS: dict[str, Callable[[Executed], None]] = {
    "quickstart.ipynb": check_quickstart,
    "custom_relaxer.ipynb": check_custom_relaxer,
    "lineage.ipynb": check_lineage,
    "plot_gallery.ipynb": check_plot_gallery,
    "macro_in_workflow.ipynb": check_macro_in_workflow,
    "pyiron_project.ipynb": check_pyiron_project,
    "real_calculators.ipynb": check_real_calculators,
    "fitting.ipynb": check_fitting,
    "validation.ipynb": check_validation,
}

# notebooks that need an optional extra: its name, and the modules and programs (beside this
# Python) it brings. Without them the notebook's run skips, except under CI=true: it fails.
EXTRAS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "fitting.ipynb": ("fit", ("torch", "mace"), ("mace_run_train",)),
    "validation.ipynb": ("ace", ("pyace",), ()),
    "real_calculators.ipynb": ("mlip,dft", ("torch", "sevenn", "gpaw"), ()),
}


def _require_extra(notebook: str) -> None:
    if notebook not in EXTRAS:
        return
    extra, modules, programs = EXTRAS[notebook]
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    missing += [name for name in programs if not (Path(sys.executable).parent / name).is_file()]
    if missing:
        reason = (f"{notebook} needs the extra {extra} (missing {', '.join(missing)}): "
                  f'pip install -e ".[{extra}]"')  # fmt: skip
        if extra == "fit":
            missing_fit_extra(reason)
        if in_ci():
            pytest.fail(f"{reason} (CI=true: the extra is required, not skipped)", pytrace=False)
        print(reason)
        pytest.skip(reason)


def test_every_notebook_has_a_check_and_every_check_a_notebook() -> None:
    assert sorted(path.name for path in NOTEBOOKS) == sorted(CHECKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_and_shows_what_it_is_for(
    path: Path, tmp_path: Path, isolated_home: Path
) -> None:
    _require_extra(path.name)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()  # raises CellExecutionError, with the failing cell, on any error
    run = Executed(notebook, tmp_path)
    assert not [o for o in run.outputs if o.get("output_type") == "error"]
    CHECKS[path.name](run)
    # the kernel's HOME is the test's: no pyiron job table or log was made there or here
    assert not (isolated_home / "pyiron.db").exists() and not (tmp_path / "pyiron.log").exists()
