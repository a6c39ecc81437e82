"""Stored results are keyed by what computed them: after an upgrade of a package a rerun
computes again (and keeps the old jobs); settings a project could not load again are refused."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from ase.build import bulk
from stand_ins import cubes

from assyst_nodes import provenance
from assyst_nodes.calculators import EMT, ImportedCalculator
from assyst_nodes.lineage import UUID
from assyst_nodes.nodes import stages
from assyst_nodes.project import ProjectRecorder, open_project, rerun, structure_frame
from assyst_nodes.stages.perturb import Rattle
from assyst_nodes.stages.relax import VolumeRelax
from assyst_nodes.stages.sample import Formulas

pytestmark = pytest.mark.usefixtures("pyiron_database")  # SQLite and PostgreSQL


def test_computed_with_names_the_stage_code_and_the_calculators_packages() -> None:
    ase = importlib.metadata.version("ase")
    sample = provenance.computed_with("sample", {"seed": 1})
    assert sample["ase"] == ase and sample["pyxtal"] == importlib.metadata.version("pyxtal")
    assert sample["assyst_nodes"] == importlib.metadata.version("assyst_nodes")
    relax = provenance.computed_with(
        "relax", {"settings": VolumeRelax(calculator=ImportedCalculator("h5py:File"))}
    )
    assert relax["h5py"] == importlib.metadata.version("h5py")  # the calculator's package
    assert "pyxtal" not in relax and relax["scipy"] == importlib.metadata.version("scipy")
    assert list(relax) == sorted(relax)


def _run(folder: Path):
    recorder = ProjectRecorder(folder)
    crystals, _ = stages.sample(
        Formulas.range("Cu", 1, 3), spacegroups=[221, 225, 229], max_atoms=2, seed=1,
        recorder=recorder,
    )
    assert crystals
    relaxed, _ = stages.relax(crystals, VolumeRelax(max_steps=3, calculator=EMT()),
                              recorder=recorder)
    perturbed, _ = stages.perturb(relaxed, [Rattle(0.05)], seed=1, recorder=recorder)
    return relaxed, perturbed


def test_an_upgrade_recomputes_and_keeps_the_jobs_of_the_old_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "proj"
    relaxed, perturbed = _run(folder)
    pr = open_project(folder)
    before = set(pr.job_table()["job"])
    stored = pr.load(sorted(n for n in before if n.startswith("relax"))[0])
    assert stored.computed_with() == provenance.computed_with("relax", stored.settings_object())

    _run(folder)  # same versions: every job reused
    assert set(open_project(folder).job_table()["job"]) == before

    real = provenance._version
    monkeypatch.setattr(
        provenance, "_version", lambda name: "99.0" if name == "ase" else real(name)
    )
    computed = []
    original = stages._fan_out

    def counting(*args, **kwargs):
        computed.append(args[0].__name__)
        return original(*args, **kwargs)

    monkeypatch.setattr(stages, "_fan_out", counting)
    relaxed_new, perturbed_new = _run(folder)
    assert "relax" in computed  # the relaxation was computed again, not reused
    after = set(open_project(folder).job_table()["job"])
    assert before < after and len(after) == 2 * len(before)  # old jobs kept, new ones beside
    assert [a.info[UUID] for a in relaxed_new] == [a.info[UUID] for a in relaxed]
    assert [a.info[UUID] for a in perturbed_new] == [a.info[UUID] for a in perturbed]
    new_relax = next(n for n in after - before if n.startswith("relax"))
    assert open_project(folder).load(new_relax).computed_with()["ase"] == "99.0"
    frame = structure_frame(folder, stage="relax")
    assert set(frame["job_id"]) == set(open_project(folder).job_table().query(
        "job.str.startswith('relax')")["id"])  # both relaxations' structures, old and new

    old_relax = sorted(n for n in before if n.startswith("relax"))[0]
    rerun(folder, old_relax, force=True)  # other versions: kept, the new job is reused
    assert set(open_project(folder).job_table()["job"]) == after


def test_settings_that_cannot_be_pickled_are_refused_naming_them(tmp_path: Path) -> None:
    recorder = ProjectRecorder(tmp_path / "proj")
    with pytest.raises(TypeError, match=r"shape=<function"):
        recorder.record("cubes", {"seed": 1, "shape": lambda: 1}, [], cubes)
    assert open_project(tmp_path / "proj").job_table().empty


def test_a_job_a_user_makes_records_what_computes_it(tmp_path: Path) -> None:
    pr = open_project(tmp_path / "proj")
    job = pr.create.job.AssystRelax("mine")
    job.input.settings = VolumeRelax(max_steps=2, calculator=EMT())
    job.input.structures = [bulk("Cu", cubic=True)]
    job.run()
    loaded = pr.load("mine")
    assert loaded.computed_with() == provenance.computed_with(
        "relax", {"settings": VolumeRelax(max_steps=2, calculator=EMT())}
    )
