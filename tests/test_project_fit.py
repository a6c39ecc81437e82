"""Fits and validations as pyiron jobs: listed, loaded, reused, redone after a failure, and kept
working (the potential file the job's own) through pyiron's remove, copy and pack tools."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from services import _missing

import assyst_nodes.stages.fit as fit_stage
import assyst_nodes.stages.validate as validate_stage
from assyst_nodes.calculators import EMT
from assyst_nodes.calculators.fitted import ACEPotential, file_digest
from assyst_nodes.lineage import UUID, update_uuid
from assyst_nodes.nodes import stages
from assyst_nodes.project import (
    AssystFit,
    AssystSuite,
    AssystValidate,
    ProjectRecorder,
    fit_in_project,
    fit_result_of,
    open_project,
    potential_of,
    validate_in_project,
)
from assyst_nodes.project.fitting import fit_job_name
from assyst_nodes.project.validating import calculator_key
from assyst_nodes.stages.fit import LinearACE
from assyst_nodes.stages.validate import Suite

pytestmark = pytest.mark.usefixtures("pyiron_database")  # SQLite and PostgreSQL

SMALL = LinearACE(functions=30, radial=(8, 2), angular=(0, 1), cutoff=5.0)
SUITE = Suite(("Cu",), phases=("fcc", "bcc"), compounds=(), phonons=False, vacancy_repeat=0,
              md_snapshots=0, volume_points=5)


@pytest.fixture(autouse=True)
def _needs_pyace() -> None:
    if importlib.util.find_spec("pyace") is None:
        _missing('python-ace is not installed: pip install -e ".[ace]"')


def cells(n: int = 12) -> list[Atoms]:
    """Strained and rattled Cu and Ag cells with uuids."""
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        atoms = bulk("Cu" if k % 2 else "Ag", "fcc", a=3.6 if k % 2 else 4.1, cubic=True)
        atoms.set_cell(atoms.cell * (1 + rng.uniform(-0.04, 0.04)), scale_atoms=True)
        atoms.rattle(0.05, seed=k)
        out.append(update_uuid(atoms, "cells", k))
    return out


def labelled_in(project: Any) -> tuple[list[Atoms], str]:
    """The cells labelled with EMT by a label job of ``project`` (with the isolated atoms);
    the structures and the label job's name."""
    labelled, _ = stages.label(cells(), EMT(), recorder=ProjectRecorder(project))
    table = open_project(project).job_table()
    return labelled, str(table.loc[table["hamilton"] == "AssystLabel", "job"].iloc[0])


def energies(potential: Any, structures: list[Atoms]) -> np.ndarray:
    calculator = potential.build()
    out = []
    for atoms in structures:
        trial = atoms.copy()
        trial.calc = calculator
        out.append(trial.get_potential_energy())
    return np.array(out)


def no_fit(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("fitted again instead of reusing the fit job")


def test_a_fit_is_a_job_that_pyiron_lists_loads_and_reuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pr = open_project(tmp_path / "study")
    labelled, label_job = labelled_in(pr)
    training, validation = labelled[3:], labelled[:3]
    assert len(validation[0]) > 1  # the isolated atoms are in the training part
    result = fit_in_project(pr, training, SMALL, validation=validation)
    name = fit_job_name(training, SMALL, validation)
    table = pr.job_table()
    row = table[table["job"] == name]
    assert list(row["hamilton"]) == ["AssystFit"] and list(row["status"]) == ["finished"]
    job = pr.load(name)
    assert isinstance(job, AssystFit)
    folder = Path(job.working_directory)
    assert Path(result.potential.path) == folder / "linear_ace.yaml"
    assert result.files[0] == result.potential.path and len(result.files) >= 2
    assert job.output["errors"] == result.errors and "validation" in result.errors
    assert job.output["potential"] == str(result.potential)
    assert job.input_uuids() == [[a.info[UUID] for a in training],
                                 [a.info[UUID] for a in validation]]
    assert label_job in job.input["input_jobs"]  # the label job, by name
    assert job.content["input/settings"] == job.input["settings"]
    assert potential_of(name, pr) == result.potential
    assert potential_of(job) == result.potential
    # a second call fits nothing and returns the stored result
    monkeypatch.setattr(fit_stage, "fit", no_fit)
    again = fit_in_project(tmp_path / "study", training, SMALL, validation=validation)
    assert again.potential == result.potential and again.errors == result.errors
    assert again.settings == SMALL and again.files == result.files
    assert len(pr.job_table()) == len(table)
    # a recorder with a pipeline lists the (reused) fit job
    recorder = ProjectRecorder(pr, pipeline="fits")
    assert recorder.record_fit(training, SMALL, validation).potential == result.potential
    pipeline = pr.load(pr.job_table().query("hamilton == 'AssystPipeline'")["job"].iloc[0])
    assert pipeline.output["jobs"] == [name] and pipeline.output["status"] == "finished"


def test_a_fit_that_raises_leaves_an_aborted_job_that_is_fitted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pr = open_project(tmp_path / "study")
    labelled, _ = labelled_in(pr)
    real = fit_stage.fit

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the fitting code crashed")

    monkeypatch.setattr(fit_stage, "fit", broken)
    with pytest.raises(RuntimeError, match="crashed"):
        fit_in_project(pr, labelled, SMALL)
    name = fit_job_name(labelled, SMALL)
    assert pr.job_table().set_index("job").loc[name, "status"] == "aborted"
    with pytest.raises(ValueError, match="aborted"):
        potential_of(name, pr)
    monkeypatch.setattr(fit_stage, "fit", real)
    result = fit_in_project(pr, labelled, SMALL)
    table = pr.job_table()
    assert list(table.loc[table["job"] == name, "status"]) == ["finished"]
    assert Path(result.potential.path).is_file()


def test_concurrent_calls_fit_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pr = open_project(tmp_path / "study")
    labelled, _ = labelled_in(pr)
    real, calls = fit_stage.fit, []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(fit_stage, "fit", counted)
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(fit_in_project(pr, labelled, SMALL)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 2
    assert results[0].potential == results[1].potential


def test_removing_jobs_keeps_fit_and_label_jobs_apart(tmp_path: Path) -> None:
    pr = open_project(tmp_path / "study")
    labelled, label_job = labelled_in(pr)
    result = fit_in_project(pr, labelled, SMALL)
    name = fit_job_name(labelled, SMALL)
    # removing the label job leaves the potential working: its file is the fit job's own
    pr.remove_job(label_job)
    assert potential_of(name, pr) == result.potential
    np.testing.assert_allclose(energies(potential_of(name, pr), labelled[:3]),
                               energies(result.potential, labelled[:3]))
    # removing the fit job removes its row and its files, nothing else
    labelled2, label_job2 = labelled_in(pr)  # labelled again: the same label job's name
    other = LinearACE(functions=20, radial=(8, 2), angular=(0, 1), cutoff=5.0)
    second = fit_in_project(pr, labelled2, other)
    folder = Path(second.potential.path).parent
    pr.remove_job(fit_job_name(labelled2, other))
    assert not folder.exists() and not folder.parent.exists()
    assert not (tmp_path / "study" / f"{fit_job_name(labelled2, other)}.h5").exists()
    assert set(pr.job_table()["job"]) == {name, label_job2}
    assert Path(result.potential.path).is_file()


def test_copy_to_gives_a_working_potential_in_the_copy_and_leaves_the_original(
    tmp_path: Path,
) -> None:
    pr = open_project(tmp_path / "study")
    labelled, _ = labelled_in(pr)
    result = fit_in_project(pr, labelled, SMALL)
    name = fit_job_name(labelled, SMALL)
    original = file_digest(result.potential.path)
    expected = energies(result.potential, labelled[:3])
    for target in (open_project(tmp_path / "other"), pr.create_group("group")):
        copy = pr.load(name).copy_to(project=target)
        potential = potential_of(copy)
        assert Path(potential.path).is_relative_to(Path(target.path))
        assert potential.digest == result.potential.digest
        np.testing.assert_allclose(energies(potential, labelled[:3]), expected)
        assert potential_of(name, target) == potential
        assert fit_result_of(name, target).errors == result.errors
    renamed = pr.load(name).copy_to(new_job_name="fit_copy")
    assert potential_of(renamed).digest == result.potential.digest
    assert Path(potential_of(renamed).path).parent.name == "fit_copy"
    # the original is untouched and still reused
    assert file_digest(result.potential.path) == original
    assert fit_in_project(pr, labelled, SMALL).potential == result.potential


@pytest.mark.parametrize("copy_all_files", [False, True])
def test_pack_and_unpack_keep_the_potential(tmp_path: Path, copy_all_files: bool) -> None:
    pr = open_project(tmp_path / "study")
    labelled, _ = labelled_in(pr)
    result = fit_in_project(pr, labelled, SMALL)
    name = fit_job_name(labelled, SMALL)
    pr.pack(destination_path=str(tmp_path / "archive"), copy_all_files=copy_all_files)
    target = open_project(tmp_path / "unpacked")
    target.unpack(origin_path=str(tmp_path / "archive.tar.gz"))
    unpacked = fit_result_of(name, target)
    assert Path(unpacked.potential.path).is_relative_to(tmp_path / "unpacked")
    assert unpacked.potential.digest == result.potential.digest
    assert unpacked.errors == result.errors
    assert all(Path(f).is_file() for f in unpacked.files)
    np.testing.assert_allclose(energies(unpacked.potential, labelled[:3]),
                               energies(result.potential, labelled[:3]))


def test_a_potential_file_removed_or_changed_is_written_again_from_the_job(
    tmp_path: Path,
) -> None:
    pr = open_project(tmp_path / "study")
    labelled, _ = labelled_in(pr)
    result = fit_in_project(pr, labelled, SMALL)
    path = Path(result.potential.path)
    path.write_text("not a potential")
    assert file_digest(potential_of(fit_job_name(labelled, SMALL), pr).path) == (
        result.potential.digest
    )
    path.unlink()
    assert potential_of(fit_job_name(labelled, SMALL), pr) == result.potential


def test_validations_are_jobs_sharing_one_labelled_suite_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pr = open_project(tmp_path / "study")
    labelled, _ = labelled_in(pr)
    potential = fit_in_project(pr, labelled, SMALL).potential
    assert isinstance(potential, ACEPotential)
    recorder = ProjectRecorder(pr, pipeline="validated")
    validation = recorder.record_validation(potential, EMT(), SUITE)
    table = pr.job_table()
    assert sorted(table["hamilton"]) == sorted(
        ["AssystLabel", "AssystFit", "AssystPipeline", "AssystSuite", "AssystValidate"]
    )
    assert set(table["status"]) == {"finished"}
    job = pr.load(str(table.loc[table["hamilton"] == "AssystValidate", "job"].iloc[0]))
    assert isinstance(job, AssystValidate)
    assert job.output["calculator"] == validation.calculator
    assert job.input["digest"] == potential.digest
    assert job.input["calculator"] == calculator_key(potential)
    figures = sorted(Path(job.working_directory).glob("*.png"))
    assert figures, "the figures are in the job's working directory"
    suite_job = pr.load(str(table.loc[table["hamilton"] == "AssystSuite", "job"].iloc[0]))
    assert isinstance(suite_job, AssystSuite) and job.input["suite_job"] == suite_job.job_name
    pipeline = pr.load(str(table.loc[table["hamilton"] == "AssystPipeline", "job"].iloc[0]))
    assert sorted(pipeline.output["jobs"]) == sorted([suite_job.job_name, job.job_name])

    # equal validation: nothing computed; another calculator: the suite is not labelled again
    real_validate = validate_stage.validate
    monkeypatch.setattr(validate_stage, "reference_suite", no_fit)
    monkeypatch.setattr(validate_stage, "validate", no_fit)
    again = validate_in_project(pr, potential, EMT(), SUITE)
    assert again.summary() == pytest.approx(validation.summary(), nan_ok=True)
    monkeypatch.setattr(validate_stage, "validate", real_validate)  # not undo(): the fixtures'
    other = validate_in_project(pr, EMT(), EMT(), SUITE)
    assert other.summary()["energy_rmse_all"] == pytest.approx(0.0, abs=1e-9)
    table = pr.job_table()
    assert (table["hamilton"] == "AssystSuite").sum() == 1
    assert (table["hamilton"] == "AssystValidate").sum() == 2

    # the potential of a copied fit job is the same potential: its validation is reused
    other_project = open_project(tmp_path / "other")
    pr.copy_to(other_project)
    monkeypatch.setattr(validate_stage, "validate", no_fit)
    copied = potential_of(fit_job_name(labelled, SMALL), other_project)
    assert copied.path != potential.path
    reused = validate_in_project(other_project, copied, EMT(), SUITE)
    assert reused.summary() == pytest.approx(validation.summary(), nan_ok=True)
    # removing the validation job removes its figures
    pr.remove_job(job.job_name)
    assert not any(Path(job.working_directory).parent.glob("*"))
