"""Where a stage job keeps its data inside its HDF5 file, and the report's JSON form.

Plain h5py (no pyiron), so queries read stored jobs without importing pyiron_base. See
:mod:`assyst_nodes.project.jobs` for the whole layout of a job file.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import h5py
import numpy as np
import pandas as pd
from ase import Atoms

from assyst_nodes.lineage import UUID
from assyst_nodes.reports import Drop, StageReport

from .index import Stored, settings_key
from .pyiron_internals import write_h5io
from .store import (
    LIBVER,
    append_structures,
    lineage_parents,
    read_structures,
    structure_table,
    write_structures,
)

__all__ = [
    "DATABASE",
    "INPUT_LISTS",
    "INPUT_SIZES",
    "INPUT_UUIDS",
    "STRUCTURES",
    "USABLE_STATUSES",
    "DamagedJobError",
    "append_partial",
    "input_uuid_arrays",
    "job_file",
    "read_database",
    "read_for_index",
    "read_input_uuids",
    "read_output",
    "read_output_uuids",
    "read_partial",
    "read_stage",
    "report_from_json",
    "report_to_json",
    "write_input_lists",
    "write_result",
]

USABLE_STATUSES: Final = ("finished", "warning")
"""Statuses of a stage job whose output is complete and may be reused and queried."""
STRUCTURES: Final = "output/structures"
"""Path of the structure store inside a job's group."""
INPUT_UUIDS: Final = "input_structures/uuids"
"""Path of the input uuid column (all input lists concatenated) inside a job's group."""
PARTIAL: Final = "partial"
"""Group of a job computing a per-structure stage: the outcomes of the chunks done so far
(``structures``, a store of results; ``drops``, JSON [label, reason, detail] per drop), so a
run killed half-way resumes at the structure. Deleted when the job finishes."""
INPUT_SIZES: Final = "input_structures/sizes"
"""Path of the length of each input list inside a job's group."""
INPUT_LISTS: Final = "input_structures/list_{}"
"""Path (format with the list's position) of an input list stored in the job itself: a
structure store like the output's, for inputs that are no job's output."""
DATABASE: Final = "assyst_database"
"""Path of the identity of the job table a job was written from (see
:func:`assyst_nodes.project.database.database_identity`) inside a job's group."""


class DamagedJobError(ValueError):
    """A stage job's HDF5 file is missing, truncated, damaged or half-written.

    :class:`~assyst_nodes.project.ProjectRecorder` computes such a job again when a pipeline
    asks for it (with a ``RuntimeWarning``). The message names the job, its file and the cause,
    and says how to recover (run the pipeline again to compute the job again, or remove the job).
    A subclass of ``ValueError``.

    Parameters
    ----------
    job : str
        Name of the stage job; kept as attribute ``job``.
    file : str or pathlib.Path
        The job's HDF5 file; kept, as a ``str``, as attribute ``file``.
    cause : BaseException or str
        Why the file cannot be read: an exception (shown as ``TypeName: message``) or a text.
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
    """Job ``name``'s HDF5 ``file`` open for reading, read failures becoming DamagedJobError.

    Any failure to open the file, or to read it inside the ``with`` block, becomes a
    :class:`DamagedJobError` naming the job and the file.

    Parameters
    ----------
    file : str or pathlib.Path
        The job's HDF5 file.
    name : str
        The job's name (its group in the file), named in the error.

    Yields
    ------
    h5py.File
        The file, open read-only.

    Raises
    ------
    DamagedJobError
        If opening the file or a read inside the block raises ``OSError``, ``KeyError``,
        ``ValueError``, ``RuntimeError``, ``TypeError`` or ``IndexError`` (chained as its cause);
        a ``DamagedJobError`` raised inside the block passes unchanged.
    """
    try:
        with h5py.File(file, "r") as handle:
            yield handle
    except DamagedJobError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError) as error:
        raise DamagedJobError(name, file, error) from error


def report_to_json(report: StageReport) -> str:
    """``report`` as JSON text, the form a job file keeps it in (see :func:`report_from_json`).

    Parameters
    ----------
    report : StageReport
        The report of one stage run.

    Returns
    -------
    str
        A JSON object with ``stage``, ``n_in``, ``n_out``, ``drops`` (a list of
        ``[label, reason, detail]``), ``flags`` (count per remark), ``seconds`` (wall time, s)
        and ``execution`` (where it ran).
    """
    return json.dumps(
        {
            "stage": report.stage,
            "n_in": report.n_in,
            "n_out": report.n_out,
            "drops": [[d.label, d.reason, d.detail] for d in report.drops],
            "flags": dict(report.flags),
            "seconds": report.seconds,
            "execution": report.execution,
        }
    )


def report_from_json(text: str) -> StageReport:
    """The :class:`StageReport` of :func:`report_to_json`: its inverse.

    Parameters
    ----------
    text : str
        JSON text as :func:`report_to_json` writes it; a missing ``execution`` reads as empty.

    Returns
    -------
    StageReport
        The report, its drops as :class:`Drop` objects and its flags as a ``Counter``.
    """
    data = json.loads(text)
    return StageReport(
        stage=data["stage"],
        n_in=int(data["n_in"]),
        n_out=int(data["n_out"]),
        drops=[Drop(*d) for d in data["drops"]],
        flags=Counter(data["flags"]),
        seconds=float(data["seconds"]),
        execution=dict(data.get("execution", {})),
    )


def write_result(
    file: str | Path,
    name: str,
    structures: list[Atoms],
    report_json: str,
    values: dict[str, object],
    status: str,
    started: float,
) -> tuple[pd.DataFrame, list[str | None], float]:
    """Write what job ``name`` computed into its HDF5 ``file``, in one session.

    Written: the output structure store (``output/structures``, replacing one already there), the
    report (JSON, attribute ``report`` of ``output``), ``values`` as ``output/<key>`` datasets
    pyiron's readers know, ``status``, and last ``output/seconds_store``; the ``partial`` group of
    an interrupted run (see :func:`append_partial`) goes.

    Parameters
    ----------
    file : str or pathlib.Path
        The job's HDF5 file, opened for appending (with
        :data:`~assyst_nodes.project.store.columns.LIBVER`).
    name : str
        The job's name: its group in the file, which must exist.
    structures : list of ase.Atoms
        The output structures, written as a new structure store (see
        :func:`~assyst_nodes.project.store.write_structures`).
    report_json : str
        The stage report as :func:`report_to_json` gives it.
    values : dict of str to object
        Further outputs, each written as dataset ``output/<key>`` by
        :func:`~assyst_nodes.project.pyiron_internals.write_h5io` (int, float, str or a
        numeric ndarray).
    status : str
        The job's status (e.g. ``"finished"``), written as its ``status`` dataset.
    started : float
        A ``time.perf_counter()`` reading (s) taken when storing began.

    Returns
    -------
    table : pandas.DataFrame
        The structure table of the output (see
        :func:`~assyst_nodes.project.store.structure_table`).
    parents : list of str or None
        Each output structure's parent (last lineage entry, None if it has none): what the
        structure index keeps.
    seconds_store : float
        Wall seconds (s) since ``started``, as written to ``output/seconds_store``.
    """
    with h5py.File(file, "a", libver=LIBVER) as handle:
        group = handle[name]
        output = group.require_group("output")
        if "structures" in output:
            del output["structures"]
        store = output.create_group("structures")
        write_structures(store, structures)
        output.attrs["report"] = report_json
        for key, value in values.items():
            write_h5io(output, key, value)
        write_h5io(group, "status", status)
        if PARTIAL in group:
            del group[PARTIAL]
        table, parents = structure_table(store), lineage_parents(store)
        seconds = time.perf_counter() - started
        write_h5io(output, "seconds_store", seconds)
        return table, parents, seconds


def read_output(file: str | Path, name: str) -> tuple[list[Atoms], StageReport]:
    """The stored structures and report of job ``name``, read with h5py only (no pyiron).

    Parameters
    ----------
    file : str or pathlib.Path
        The job's HDF5 file.
    name : str
        The job's name (its group in the file).

    Returns
    -------
    structures : list of ase.Atoms
        The output structures, in order; calculator results come back as a
        ``SinglePointCalculator`` (see :func:`~assyst_nodes.project.store.read_structures`).
    report : StageReport
        The job's stage report.

    Raises
    ------
    DamagedJobError
        If the file is missing, damaged or half-written.
    """
    with job_file(file, name) as handle:
        output = handle[f"{name}/output"]
        report = output.attrs["report"]
        structures = read_structures(output["structures"])
        text = report.decode() if isinstance(report, bytes) else report
        return structures, report_from_json(text)


def read_output_uuids(file: str | Path, name: str) -> list[str]:
    """The uuids of job ``name``'s output structures, in order, without building the structures.

    Read from the store's table (see :func:`~assyst_nodes.project.store.structure_table`).

    Parameters
    ----------
    file : str or pathlib.Path
        The job's HDF5 file.
    name : str
        The job's name (its group in the file).

    Returns
    -------
    list of str
        One uuid per output structure; ``""`` where a structure has none.

    Raises
    ------
    DamagedJobError
        If the file is missing, damaged or half-written.
    """
    with job_file(file, name) as handle:
        table = structure_table(handle[f"{name}/{STRUCTURES}"])
    return ["" if u is None else str(u) for u in table[UUID].tolist()]


def input_uuid_arrays(uuids: list[list[str]]) -> dict[str, np.ndarray]:
    """The datasets, by path inside a job's group, that hold the uuids of each input list.

    What pyiron's writer stores with the job's input when it is saved (read back with
    :func:`read_input_uuids`).

    Parameters
    ----------
    uuids : list of list of str
        The uuids of the structures of each input list, one list per input.

    Returns
    -------
    dict of str to numpy.ndarray
        At :data:`INPUT_UUIDS`, all uuids of all lists, concatenated, as fixed-length UTF-8
        bytes; at :data:`INPUT_SIZES`, the length of each list (int64).
    """
    flat = [u.encode("utf-8") for us in uuids for u in us]
    return {
        INPUT_UUIDS: np.array(flat, dtype=f"S{max([1, *map(len, flat)])}"),
        INPUT_SIZES: np.array([len(us) for us in uuids], dtype=np.int64),
    }


def write_input_lists(file: str | Path, name: str, lists: list[list[Atoms]]) -> None:
    """Store the input lists given as structures in job ``name``'s group, in one session.

    Each list becomes a structure store ``input_structures/list_<k>`` (see
    :data:`INPUT_LISTS`), ``k`` counting only such lists; a store already at that path is
    replaced.

    Parameters
    ----------
    file : str or pathlib.Path
        The job's HDF5 file, opened for appending (created if missing).
    name : str
        The job's name: its group in the file (created if missing).
    lists : list of list of ase.Atoms
        The input lists given as structures (inputs that are no job's output), in order.
    """
    with h5py.File(file, "a", libver=LIBVER) as handle:
        group = handle.require_group(name)
        for k, structures in enumerate(lists):
            path = INPUT_LISTS.format(k)
            if path in group:
                del group[path]
            write_structures(group.create_group(path), structures)


def read_input_uuids(file: str | Path, name: str) -> list[list[str]] | None:
    """The uuids of each input list of job ``name``, as :func:`input_uuid_arrays` gives them.

    Parameters
    ----------
    file : str or pathlib.Path
        The job's HDF5 file.
    name : str
        The job's name (its group in the file).

    Returns
    -------
    list of list of str or None
        The uuids of each input list, one list per input; None if none are stored. Uuids an
        older version stored as variable-length strings are read too.

    Raises
    ------
    DamagedJobError
        If the file is missing, damaged or half-written.
    """
    with job_file(file, name) as handle:
        group = handle[name]
        if INPUT_UUIDS not in group:
            return None
        dataset = group[INPUT_UUIDS]
        if dataset.dtype.kind == "S":
            flat = [b.decode("utf-8") for b in dataset[...].tolist()]
        else:  # written by an older version: variable-length strings
            flat = dataset.asstr()[...].tolist()
        sizes = group[INPUT_SIZES][...].tolist()
    out, start = [], 0
    for n in sizes:
        out.append(flat[start : start + n])
        start += n
    return out


def _text(handle: h5py.File, path: str) -> str:
    """A string pyiron's h5io wrote (UTF-8 bytes), '' if there is none."""
    return np.asarray(handle[path]).tobytes().decode() if path in handle else ""


def read_stage(file: str | Path, name: str) -> str:
    """The stage name stored in job ``name``'s file (``input/stage``).

    Parameters
    ----------
    file : str or pathlib.Path
        The job's HDF5 file.
    name : str
        The job's name (its group in the file).

    Returns
    -------
    str
        The stage name; ``""`` if none is stored.

    Raises
    ------
    DamagedJobError
        If the file is missing, damaged or half-written.
    """
    with job_file(file, name) as handle:
        return _text(handle, f"{name}/input/stage")


def read_database(file: str | Path, name: str) -> str:
    """The identity of the job table job ``name`` was written from ('' if none is stored).

    Stored at :data:`DATABASE` in the job's group (see
    :func:`assyst_nodes.project.database.database_identity`).

    Parameters
    ----------
    file : str or pathlib.Path
        The job's HDF5 file.
    name : str
        The job's name (its group in the file).

    Returns
    -------
    str
        The identity; ``""`` if none is stored.

    Raises
    ------
    DamagedJobError
        If the file is missing, damaged or half-written.
    """
    with job_file(file, name) as handle:
        return _text(handle, f"{name}/{DATABASE}")


def read_for_index(file: str | Path, name: str) -> Stored:
    """What the structure index keeps of job ``name``, read without building any structure.

    Parameters
    ----------
    file : str or pathlib.Path
        The job's HDF5 file.
    name : str
        The job's name (its group in the file).

    Returns
    -------
    Stored
        The table and parents of its output structures (see
        :func:`~assyst_nodes.project.store.structure_table` and
        :func:`~assyst_nodes.project.store.lineage_parents`), its input uuids (all input lists
        concatenated; none if none are stored), the key of its stage and settings (from
        ``input/key_settings``, or ``input/settings``, all settings, for older jobs) and its
        drops as ``(label, reason, detail)``.

    Raises
    ------
    DamagedJobError
        If the file is missing, damaged or half-written.
    """
    with job_file(file, name) as handle:
        output = handle[f"{name}/output"]
        store = output["structures"]
        table, parents = structure_table(store), lineage_parents(store)
        report = output.attrs["report"]
        report = report_from_json(report.decode() if isinstance(report, bytes) else report)
        settings = f"{name}/input/key_settings"  # older jobs: all settings
        if settings not in handle:
            settings = f"{name}/input/settings"
        key = settings_key(_text(handle, f"{name}/input/stage"), _text(handle, settings))
    uuids = [u for us in read_input_uuids(file, name) or [] for u in us]
    drops = [(d.label, d.reason, d.detail) for d in report.drops]
    return Stored(table, parents, uuids, key, drops)


def append_partial(
    file: str | Path, name: str, results: list[Atoms], drops: list[Drop]
) -> None:
    """Keep the outcomes of a finished chunk in job ``name``'s ``partial`` group.

    A run killed half-way then resumes at the structure (:func:`read_partial` reads them back);
    :func:`write_result` deletes the group when the job finishes.

    Parameters
    ----------
    file : str or pathlib.Path
        The job's HDF5 file, opened for appending.
    name : str
        The job's name (its group in the file).
    results : list of ase.Atoms
        The structures the chunk produced, appended to the structure store
        ``partial/structures``.
    drops : list of Drop
        What the chunk dropped, appended to ``partial/drops`` as JSON
        ``[label, reason, detail]``, one per drop.
    """
    with h5py.File(file, "a", libver=LIBVER) as handle:
        group = handle.require_group(f"{name}/{PARTIAL}")
        if results:
            append_structures(group.require_group("structures"), results)
        if drops:
            texts = [json.dumps([d.label, d.reason, d.detail]) for d in drops]
            if "drops" not in group:
                group.create_dataset(
                    "drops", shape=(0,), maxshape=(None,), dtype=h5py.string_dtype("utf-8"),
                    chunks=(256,),
                )
            dataset = group["drops"]
            start = dataset.shape[0]
            dataset.resize(start + len(texts), axis=0)
            dataset[start:] = texts


def read_partial(file: str | Path, name: str) -> tuple[list[Atoms], list[Drop]]:
    """The outcomes :func:`append_partial` kept for job ``name`` (none if there are none).

    Parameters
    ----------
    file : str or pathlib.Path
        The job's HDF5 file.
    name : str
        The job's name (its group in the file).

    Returns
    -------
    results : list of ase.Atoms
        The structures the chunks done so far produced, in order; empty if none.
    drops : list of Drop
        What those chunks dropped, in order; empty if none.

    Raises
    ------
    DamagedJobError
        If the file is missing, damaged or half-written.
    """
    with job_file(file, name) as handle:
        if f"{name}/{PARTIAL}" not in handle:
            return [], []
        group = handle[f"{name}/{PARTIAL}"]
        results = read_structures(group["structures"]) if "structures" in group else []
        drops = [Drop(*json.loads(t)) for t in group["drops"].asstr()[...]] if (
            "drops" in group
        ) else []
    return results, drops
