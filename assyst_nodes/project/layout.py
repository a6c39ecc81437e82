"""Where a stage job keeps its data inside its HDF5 file, and the report's JSON form.

Plain h5py (no pyiron), so queries read stored jobs without importing pyiron_base. See
:mod:`assyst_nodes.project.jobs` for the whole layout of a job file.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import h5py
import numpy as np
from ase import Atoms

from assyst_nodes.reports import Drop, StageReport

from .store import read_structures, write_structures

__all__ = [
    "INPUT_LISTS",
    "INPUT_UUIDS",
    "STRUCTURES",
    "DamagedJobError",
    "job_file",
    "read_input_uuids",
    "read_output",
    "read_stage",
    "report_from_json",
    "report_to_json",
    "write_input_lists",
    "write_input_uuids",
    "write_output",
]

STRUCTURES: Final = "output/structures"
"""Path of the structure store inside a job's group."""
INPUT_UUIDS: Final = "input_structures/uuids"
"""Path of the input uuid column (all input lists concatenated) inside a job's group."""
INPUT_SIZES: Final = "input_structures/sizes"
"""Path of the length of each input list inside a job's group."""
INPUT_LISTS: Final = "input_structures/list_{}"
"""Path (format with the list's position) of an input list stored in the job itself: a
structure store like the output's, for inputs that are no job's output."""


class DamagedJobError(ValueError):
    """A stage job's HDF5 file is missing, truncated, damaged or half-written.

    ``job`` and ``file`` name them. :class:`~assyst_nodes.project.ProjectRecorder` computes
    such a job again when a pipeline asks for it (with a ``RuntimeWarning``).
    """

    def __init__(self, job: str, file: str | Path, cause: BaseException | str) -> None:
        if isinstance(cause, BaseException):
            cause = f"{type(cause).__name__}: {cause}"
        super().__init__(
            f"job {job}: its file {file} cannot be read ({cause}); it is missing, truncated, "
            "damaged or half-written (e.g. the process writing it was killed). Run the pipeline "
            "again to compute the job again, or remove the job."
        )
        self.job = job
        self.file = str(file)


@contextmanager
def job_file(file: str | Path, name: str) -> Iterator[h5py.File]:
    """Job ``name``'s HDF5 ``file`` open for reading; any failure to open or read it inside the
    ``with`` block becomes a :class:`DamagedJobError` naming the job and the file."""
    try:
        with h5py.File(file, "r") as handle:
            yield handle
    except DamagedJobError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError) as error:
        raise DamagedJobError(name, file, error) from error


def report_to_json(report: StageReport) -> str:
    """``report`` as JSON: stage, n_in, n_out, drops ([label, reason, detail]), flags, seconds."""
    return json.dumps(
        {
            "stage": report.stage,
            "n_in": report.n_in,
            "n_out": report.n_out,
            "drops": [[d.label, d.reason, d.detail] for d in report.drops],
            "flags": dict(report.flags),
            "seconds": report.seconds,
        }
    )


def report_from_json(text: str) -> StageReport:
    """The :class:`StageReport` of :func:`report_to_json`."""
    data = json.loads(text)
    return StageReport(
        stage=data["stage"],
        n_in=int(data["n_in"]),
        n_out=int(data["n_out"]),
        drops=[Drop(*d) for d in data["drops"]],
        flags=Counter(data["flags"]),
        seconds=float(data["seconds"]),
    )


def write_output(file: str | Path, name: str, structures: list[Atoms], report_json: str) -> None:
    """Write the structure store and report of job ``name`` into its HDF5 ``file``."""
    with h5py.File(file, "a") as handle:
        output = handle.require_group(f"{name}/output")
        if "structures" in output:
            del output["structures"]
        write_structures(output.create_group("structures"), structures)
        output.attrs["report"] = report_json


def read_output(file: str | Path, name: str) -> tuple[list[Atoms], StageReport]:
    """The stored structures and report of job ``name`` (read with h5py only, no pyiron).

    Raises :class:`DamagedJobError` if the file is missing, damaged or half-written."""
    with job_file(file, name) as handle:
        output = handle[f"{name}/output"]
        report = output.attrs["report"]
        structures = read_structures(output["structures"])
        text = report.decode() if isinstance(report, bytes) else report
        return structures, report_from_json(text)


def _replace(group: h5py.Group, path: str, data: np.ndarray, dtype: object = None) -> None:
    """Write dataset ``path`` of ``group`` anew (titled, so pyiron's accessors read it)."""
    if path in group:
        del group[path]
    dataset = group.create_dataset(path, data=data, dtype=dtype)
    dataset.attrs["TITLE"] = "ndarray"


def write_input_uuids(file: str | Path, name: str, uuids: list[list[str]]) -> None:
    """Store the uuids of each input list (concatenated, plus the lists' sizes)."""
    flat = np.array([u for us in uuids for u in us], dtype=object)
    with h5py.File(file, "a") as handle:
        group = handle.require_group(name)
        _replace(group, INPUT_UUIDS, flat, h5py.string_dtype("utf-8"))
        _replace(group, INPUT_SIZES, np.array([len(us) for us in uuids], dtype=np.int64))


def read_input_uuids(file: str | Path, name: str) -> list[list[str]]:
    """The uuids of each input list as :func:`write_input_uuids` stored them ([] if none)."""
    with job_file(file, name) as handle:
        group = handle[name]
        if INPUT_UUIDS not in group:
            return []
        flat = group[INPUT_UUIDS].asstr()[...].tolist()
        sizes = group[INPUT_SIZES][...].tolist()
    out, start = [], 0
    for n in sizes:
        out.append(flat[start : start + n])
        start += n
    return out


def write_input_lists(file: str | Path, name: str, lists: list[list[Atoms]]) -> None:
    """Store the input lists given as structures, each a structure store
    (``input_structures/list_<k>``, k counting only such lists)."""
    with h5py.File(file, "a") as handle:
        group = handle.require_group(name)
        for k, structures in enumerate(lists):
            path = INPUT_LISTS.format(k)
            if path in group:
                del group[path]
            write_structures(group.create_group(path), structures)


def read_stage(file: str | Path, name: str) -> str:
    """The stage name stored in job ``name``'s file (``input/stage``, as pyiron's h5io wrote
    it: UTF-8 bytes)."""
    with job_file(file, name) as handle:
        return np.asarray(handle[f"{name}/input/stage"]).tobytes().decode()
