"""A second run of the perturb, filter, label and combine stages into a project reuses their
stored jobs and computes nothing (as relax and sample do, see test_project.py); other inputs
make new jobs. ``AssystLabel`` jobs: what they store, and what pyiron's ``load`` reads back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ase import Atoms
from stand_ins import cubes

from assyst_nodes.calculators import EMT
from assyst_nodes.lineage import LINEAGE, STEP, UUID
from assyst_nodes.nodes import stages
from assyst_nodes.project import AssystLabel, ProjectRecorder, open_project
from assyst_nodes.stages import label as labelling
from assyst_nodes.stages.filter import DistanceFilter
from assyst_nodes.stages.perturb import Rattle

pytestmark = pytest.mark.usefixtures("pyiron_database")  # SQLite and PostgreSQL

KEEP = DistanceFilter({"Cu": 1.2})  # 2.4 Å: rejects two of the rattled cells of seed 1


def fingerprint(structures: list[Atoms]) -> list[tuple[Any, ...]]:
    """uuid, positions, cell and energy/forces (where labelled), bit for bit."""
    return [
        (
            a.info[UUID],
            a.positions.tobytes(),
            a.cell.array.tobytes(),
            None if a.calc is None else a.calc.results["energy"],
            None if a.calc is None else a.calc.results["forces"].tobytes(),
        )
        for a in structures
    ]


def chain(recorder: ProjectRecorder, crystals: list[Atoms], seed: int = 1) -> dict[str, Any]:
    """perturb -> filter -> label -> combine, each recorded."""
    perturbed, perturb_report = stages.perturb(
        crystals, [Rattle(0.3)], seed=seed, recorder=recorder
    )
    kept, filter_report = stages.filter_structures(perturbed, KEEP, recorder=recorder)
    labelled, label_report = stages.label(kept, EMT(), recorder=recorder)
    combined = stages.combine(crystals, kept, labelled, recorder=recorder)
    return {
        "perturbed": perturbed, "kept": kept, "labelled": labelled, "combined": combined,
        "reports": [perturb_report.summary(), filter_report.summary(), label_report.summary()],
    }  # fmt: skip


def _never(*args: object, **kwargs: object) -> None:
    raise AssertionError("computed although the project holds the result")


def test_a_rerun_of_perturb_filter_label_and_combine_reuses_every_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "proj"
    crystals, _ = cubes(n=4)
    first = chain(ProjectRecorder(folder), crystals)
    assert 0 < len(first["kept"]) < len(first["perturbed"]) == 4  # the filter did something
    table = open_project(folder).job_table()
    counts = table["hamilton"].value_counts().to_dict()
    assert counts == {"AssystPerturb": 1, "AssystFilter": 1, "AssystLabel": 1, "AssystCombine": 1}

    with monkeypatch.context() as patched:  # undone at its end (not the database settings)
        for module, name in [
            (stages, "core_perturb"), (stages, "core_filter"), (labelling, "label"),
            (labelling, "relax"), (stages, "combine_sets"),
        ]:  # fmt: skip
            patched.setattr(module, name, _never)
        second = chain(ProjectRecorder(folder), crystals)  # a new recorder, as a new run makes
        for key in ("perturbed", "kept", "labelled", "combined"):
            assert fingerprint(second[key]) == fingerprint(first[key]), key
        again = open_project(folder).job_table()
        assert again[["id", "job", "status"]].equals(table[["id", "job", "status"]])

    # other inputs are other jobs: another seed perturbs (and so filters ...) anew
    third = chain(ProjectRecorder(folder), crystals, seed=2)
    assert fingerprint(third["perturbed"]) != fingerprint(first["perturbed"])
    counts = open_project(folder).job_table()["hamilton"].value_counts().to_dict()
    assert counts == {"AssystPerturb": 2, "AssystFilter": 2, "AssystLabel": 2, "AssystCombine": 2}


def test_an_assyst_label_job_stores_the_labels_and_pyirons_load_reads_them_back(
    tmp_path: Path,
) -> None:
    pr = open_project(tmp_path / "proj")
    crystals, _ = cubes(n=3)
    job = pr.create.job.AssystLabel("labels")
    assert isinstance(job, AssystLabel)
    job.input.calculator = EMT()
    job.input.structures = crystals  # stored in the job itself
    job.input.isolated = None  # no isolated atoms: the labels are the crystals' only
    job.input.duplicates = None  # each labelled, though the cubes are one structure
    job.run()
    direct = labelling.label(crystals, EMT(), duplicates=None, isolated=None)

    loaded = pr.load("labels")  # pyiron's own load, by name and by id
    assert loaded.job_id == job.job_id and loaded.status == "finished"
    assert type(pr.load(job.job_id)) is AssystLabel
    stored = loaded.output.structures
    assert fingerprint(stored) == fingerprint(direct)
    assert loaded.output.n_structures == 3 and loaded.output.n_lost == 0
    for label, crystal in zip(stored, crystals, strict=True):
        assert label.info[STEP] == "single_point"
        assert list(label.info[LINEAGE]) == [crystal.info[UUID]]
        assert np.array_equal(label.positions, crystal.positions)  # nothing moved
        assert set(label.calc.results) >= {"energy", "forces", "stress"}
    report = loaded.output.report
    assert (report.n_in, report.n_out, report.drops) == (3, 3, [])
    assert loaded.content["input/stage"] == "label"
    positions = loaded.content["output/structures/positions"]
    assert np.array_equal(positions, np.concatenate([a.positions for a in direct]))
    job.run()  # a finished job runs again only when asked (delete_existing_job=True)
    assert len(pr.job_table()) == 1
    assert fingerprint(pr.load("labels").output.structures) == fingerprint(direct)
