"""Labels in a project: the de-duplicated label job keeps every uuid resolvable, its isolated
atoms and origins are stored and read back, and a label is computed once per structure and
calculator whatever the de-duplication settings of the run that asks for it."""

from __future__ import annotations

from pathlib import Path

import pytest
from ase.io import read

from assyst_nodes.calculators import EMT
from assyst_nodes.cli import main
from assyst_nodes.lineage import LINEAGE, UUID
from assyst_nodes.pipeline import run_pipeline
from assyst_nodes.project import ProjectRecorder, history, open_project, structures
from assyst_nodes.stages.duplicates import Duplicates

pytestmark = pytest.mark.usefixtures("pyiron_database")  # SQLite and PostgreSQL

RUN = {"max_atoms": 2, "max_structures": 12, "progress": False, "label_calculator": EMT()}


@pytest.fixture
def first(tmp_path: Path):
    """A labelled run into a project (its folder, result), in the database of the test."""
    folder = tmp_path / "project"
    return folder, run_pipeline(**RUN, recorder=ProjectRecorder(folder, pipeline="first"))


def test_every_training_uuid_resolves_to_the_label_that_stands_for_it(first) -> None:
    folder, result = first
    pr = open_project(folder)
    stored = structures(pr, stage="label")
    assert sorted(a.info[UUID] for a in stored) == sorted(
        a.info[UUID] for a in result.stages["labelled"]
    )
    training = {a.info[UUID] for a in result.structures}
    stands_for: dict[str, str] = {}
    for label in stored:
        if label.info["config_type"] == "IsolatedAtom":
            assert label.info[LINEAGE] and label.calc.results["energy"] > 0  # EMT: > 0 alone
            continue
        for uuid in [label.info[LINEAGE][-1], *label.info.get("duplicates", [])]:
            assert stands_for.setdefault(uuid, label.info[UUID]) == label.info[UUID]
        assert label.info["config_type"] in {"sampled", "volume_relaxed", "relaxed", "perturbed"}
        assert label.info["family"]
    assert set(stands_for) == training
    duplicates = [u for u, k in stands_for.items() if k and u not in
                  {lab.info[LINEAGE][-1] for lab in stored}]
    assert duplicates, "the run has equivalent structures (relaxed from several seeds)"
    for uuid in duplicates:  # still in the project, with their whole history
        chain = history(pr, uuid)
        assert chain[-1].uuid == uuid and chain[0].step == "pyxtal"


def test_labels_are_reused_across_deduplication_settings(first) -> None:
    folder, result = first
    kept = len(result.stages["labelled"])
    every = run_pipeline(**RUN, duplicates=None,
                         recorder=ProjectRecorder(folder, pipeline="every"))
    report = every.reports[-1]
    assert report.dropped.get("duplicate", 0) == 0
    assert report.n_out == len(every.structures) + 2  # each structure, and Cu and Ag alone
    assert report.flags["reused"] == kept  # computed: only the duplicates of the first run
    looser = run_pipeline(**RUN, duplicates=Duplicates(length_tolerance=0.05),
                          recorder=ProjectRecorder(folder, pipeline="looser"))
    assert looser.reports[-1].flags["reused"] == looser.reports[-1].n_out  # nothing computed


def test_cli_exports_the_projects_labels_split_by_family(first, tmp_path: Path) -> None:
    folder, _ = first
    out = tmp_path / "set.extxyz"
    assert main(["export", str(folder), str(out), "--labels-prefix", "REF_", "--split",
                 "0.6", "0.2", "0.2", "--split-seed", "4"]) == 0
    parts = {p: read(tmp_path / f"set_{p}.extxyz", index=":")
             for p in ("train", "validation", "test")}
    families = {p: {a.info["family"] for a in frames} for p, frames in parts.items()}
    assert not families["train"] & families["validation"]
    assert not families["train"] & families["test"]
    assert not families["validation"] & families["test"]
    isolated = [a for a in parts["train"] if a.info["config_type"] == "IsolatedAtom"]
    assert sorted(a.get_chemical_formula() for a in isolated) == ["Ag", "Cu"]
    labelled = {a.info[UUID] for a in structures(open_project(folder), stage="label")}
    assert {a.info[UUID] for frames in parts.values() for a in frames} <= labelled
