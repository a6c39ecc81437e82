"""pyiron_base job classes: one per stage (its class name is the job table's ``hamilton``).

A stage job is a record, not a runner: :class:`~assyst_nodes.project.ProjectRecorder` creates it,
calls the stage's ``compute`` in the recording process and stores the result, so ``job.run()``
is not used (:func:`assyst_nodes.project.rerun` runs one again from what it stores). Layout of
a stage job ``<name>`` in project folder ``<folder>``::

    <folder>/pyiron.db             pyiron's job table (SQLite, WAL mode)
    <folder>/assyst_index.db       structure index (see :mod:`assyst_nodes.project.index`)
    <folder>/.locks/<name>.lock    per-job lock files (see :mod:`assyst_nodes.project.recorder`)
    <folder>/<name>.h5
      /<name>/storage/input__index_0   pyiron DataContainer (``job.input``): ``stage``, ``settings``
                                   (readable repr, keys sorted), ``settings_pickle`` (base64 of
                                   the pickled settings mapping; :meth:`settings_object`),
                                   ``input_job_ids`` (per input list, -1 if unknown),
                                   ``input_sizes`` (length of each input list)
      /<name>/storage/output__index_1  pyiron DataContainer (``job.output``): ``report`` (JSON),
                                   ``n_structures``, ``seconds_compute``, ``seconds_store`` (s)
      /<name>/assyst_input/uuids   the input structures' uuids, all lists concatenated
                                   (split by ``input_sizes``)
      /<name>/output/structures    the output structures, a columnar group of
                                   :mod:`assyst_nodes.project.store` (written with h5py after
                                   pyiron wrote its own groups); attribute ``report`` of
                                   ``/<name>/output`` holds the report JSON again for fast reads

``parentid`` is the job that produced the first input list, ``masterid`` the
:class:`AssystPipeline` job of the pipeline name given to the recorder (the first one that
created the job; a job reused by another pipeline keeps it).
"""

from __future__ import annotations

import base64
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ase import Atoms

from assyst_nodes.reports import StageReport

from .database import pyiron_base
from .layout import (
    INPUT_UUIDS,
    STRUCTURES,
    job_file,
    read_output,
    report_from_json,
    report_to_json,
    write_output,
)

__all__ = [
    "INPUT_UUIDS",
    "STAGE_JOBS",
    "STRUCTURES",
    "AssystCombine",
    "AssystFilter",
    "AssystJob",
    "AssystLabel",
    "AssystPerturb",
    "AssystPipeline",
    "AssystRelax",
    "AssystSample",
    "AssystStage",
    "job_class",
    "read_output",
    "report_from_json",
    "report_to_json",
    "write_output",
]


class AssystJob(pyiron_base.PythonTemplateJob):  # type: ignore[misc,name-defined]
    """Base of the assyst job classes (records only; ``run()`` is not supported)."""

    def run_static(self) -> None:
        """Not used: stage jobs are created and filled by ``ProjectRecorder``."""
        raise NotImplementedError(
            f"{type(self).__name__} jobs are recorded by assyst_nodes.project.ProjectRecorder, "
            "not run by pyiron"
        )

    @property
    def h5_file(self) -> Path:
        """The job's HDF5 file."""
        return Path(self.project_hdf5.file_name)


class AssystStage(AssystJob):
    """A stage run: input settings and uuids, output structures, report and timings."""

    def structures(self) -> list[Atoms]:
        """The output structures."""
        return read_output(self.h5_file, self.job_name)[0]

    def report(self) -> StageReport:
        """The stage report."""
        return report_from_json(self.output.report)

    def settings_object(self) -> Mapping[str, Any]:
        """The settings mapping the stage ran with (unpickled: trust the project you load)."""
        blob = self.input.get("settings_pickle")
        if not blob:
            raise ValueError(f"job {self.job_name} holds no pickled settings")
        return pickle.loads(base64.b64decode(blob))

    def input_uuids(self) -> list[list[str]]:
        """The uuids of each input list, in order."""
        sizes = [int(n) for n in self.input.get("input_sizes", [])]
        with job_file(self.h5_file, self.job_name) as handle:
            path = f"{self.job_name}/{INPUT_UUIDS}"
            flat = handle[path].asstr()[...].tolist() if path in handle else []
        out, start = [], 0
        for n in sizes:
            out.append(flat[start : start + n])
            start += n
        return out


class AssystSample(AssystStage):
    """A ``sample`` run (random symmetric crystals)."""


class AssystRelax(AssystStage):
    """A ``relax`` run."""


class AssystLabel(AssystStage):
    """A ``label`` run (single points: energy eV, forces eV/Å, stress)."""


class AssystPerturb(AssystStage):
    """A ``perturb`` run."""


class AssystFilter(AssystStage):
    """A ``filter`` run."""


class AssystCombine(AssystStage):
    """A ``combine`` run (concatenation, each uuid once)."""


class AssystPipeline(AssystJob):
    """Groups the stage jobs of one named pipeline run (their ``masterid``); input ``pipeline``
    holds the name. It is marked finished when created: its children carry their own status."""


STAGE_JOBS: Final[dict[str, type[AssystStage]]] = {
    "sample": AssystSample,
    "relax": AssystRelax,
    "label": AssystLabel,
    "perturb": AssystPerturb,
    "filter": AssystFilter,
    "combine": AssystCombine,
}


def job_class(stage: str) -> type[AssystStage]:
    """The job class of ``stage`` (:class:`AssystStage` for a stage without its own class)."""
    return STAGE_JOBS.get(stage, AssystStage)
