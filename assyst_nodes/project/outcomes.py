"""Per-structure outcomes of the relax and label stages kept in a project, so no structure is
computed twice for the same stage and settings.

:class:`ProjectOutcomes` is the :class:`~assyst_nodes.stages.relax.OutcomeCache` a
:class:`~assyst_nodes.project.recorder.ProjectRecorder` hands to these stages. For each input
structure (by uuid) it gives, in this order:

1. what the job being computed already holds: outcomes carried over from an earlier,
   interrupted or partly lost run of the same job;
2. what any finished job of the same stage and settings (the same
   :func:`~assyst_nodes.project.index.settings_key`) in the folder made of it: its result, or
   its drop, except drops that say nothing about the structure
   (:data:`~assyst_nodes.reports.RETRYABLE_REASONS`, e.g. ``worker_lost``);

and ``None`` for the rest, which the stage computes. Each computed chunk is appended to the
job's ``partial`` group at once (:func:`~assyst_nodes.project.layout.append_partial`), so a run
killed half-way resumes at the structure. Structures without a uuid are always computed.

:class:`SampledPoints` does the same for the grid points of the sample stage
(a :class:`~assyst_nodes.stages.sample.PointCache`): a point drawn by any finished sample job of the
same seed, dimension and tolerance (its settings key leaves out formulas, groups, cap, order and
time limit, which do not change a point's crystal) is read, not drawn again, so a run with a
higher ``max_structures`` or more formulas draws only the new points. Points that ran out of
their time limit are drawn again (the limit may have been raised since).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ase import Atoms

from assyst_nodes.lineage import RNG_SEED, UUID, parent_of
from assyst_nodes.reports import CHOSEN_REASONS, RETRYABLE_REASONS, Drop

from ..stages.relax import Outcome
from .index import Index
from .layout import STRUCTURES, USABLE_STATUSES, DamagedJobError, append_partial, job_file
from .store import read_structures

__all__ = ["ProjectOutcomes", "SampledPoints", "outcomes_by_input", "with_cache"]


def outcomes_by_input(results: Iterable[Atoms], drops: Iterable[Drop]) -> dict[str, Outcome]:
    """Key the outcomes of a per-structure stage by the uuid of their input structure.

    Parameters
    ----------
    results : iterable of ase.Atoms
        The stage's result structures; each is keyed by its parent (its last lineage entry),
        those without a parent are left out.
    drops : iterable of Drop
        The stage's drops, each keyed by its label (the input's uuid); drops with a retryable
        reason (:data:`~assyst_nodes.reports.RETRYABLE_REASONS`) or a chosen one
        (:data:`~assyst_nodes.reports.CHOSEN_REASONS`) are left out, to be computed again.

    Returns
    -------
    dict of str to tuple
        Input uuid -> outcome ``(result, None)`` or ``(None, drop)``; a result wins over a
        drop of the same input.
    """
    found: dict[str, Outcome] = {}
    for drop in drops:
        if drop.reason not in RETRYABLE_REASONS | CHOSEN_REASONS:
            found[str(drop.label)] = (None, drop)
    for result in results:
        parent = parent_of(result)
        if parent:
            found[str(parent)] = (result, None)
    return found


class ProjectOutcomes:
    """The outcome cache of one job (see the module docstring).

    Parameters
    ----------
    folder : pathlib.Path
        The job's project folder.
    name : str
        The job's name; its file ``<folder>/<name>.h5`` gets the ``partial`` group.
    key : str
        The job's settings key (:func:`~assyst_nodes.project.index.settings_key`).
    carried : mapping of str to tuple, optional
        Outcomes ``(result, drop)`` by input uuid that the job already holds (also written to
        its ``partial`` group now, so a second interruption keeps them). Default: none.
    usable : iterable of str, optional
        Names of the folder's usable jobs in the job table (the index may hold a removed
        job); only their outcomes are taken. Default: none (empty).
    """

    def __init__(
        self,
        folder: Path,
        name: str,
        key: str,
        carried: Mapping[str, Outcome] | None = None,
        usable: Iterable[str] = (),
    ) -> None:
        self.folder = Path(folder)
        self.name = name
        self.key = key
        self.usable = {str(n) for n in usable}
        self.carried = dict(carried or {})
        if self.carried:
            outcomes = list(self.carried.values())
            self._keep(outcomes)

    @property
    def file(self) -> Path:
        return self.folder / f"{self.name}.h5"

    def get(self, structures: Sequence[Atoms]) -> list[Outcome | None]:
        uuids = [str(s.info.get(UUID) or "") for s in structures]
        wanted = [u for u in uuids if u and u not in self.carried]
        stored = Index(self.folder).outcomes(
            self.key, wanted, RETRYABLE_REASONS | CHOSEN_REASONS, self.usable
        )
        found = dict(self.carried)
        by_job: dict[str, list[tuple[str, int]]] = {}
        for uid, (kind, first, second) in stored.items():
            if kind == "drop":
                found[uid] = (None, Drop(uid, str(first), str(second)))
            else:
                by_job.setdefault(str(first), []).append((uid, int(second)))
        taken: list[Outcome] = []
        for name, rows in by_job.items():
            try:
                with job_file(self.folder / f"{name}.h5", name) as handle:
                    read = read_structures(handle[f"{name}/{STRUCTURES}"], [r for _, r in rows])
            except DamagedJobError:  # unreadable: compute these again
                continue
            for (uid, _), atoms in zip(rows, read, strict=True):
                found[uid] = (atoms, None)
                taken.append((atoms, None))
        taken.extend(o for u, o in found.items() if u not in self.carried and o[0] is None)
        if taken:
            self._keep(taken)  # this job now holds them too
        return [found.get(u) if u else None for u in uuids]

    def put(self, structures: Sequence[Atoms], outcomes: list[Outcome]) -> None:
        self._keep(outcomes)

    def _keep(self, outcomes: Sequence[Outcome]) -> None:
        results = [r for r, _ in outcomes if r is not None]
        drops = [d for _, d in outcomes if d is not None]
        append_partial(self.file, self.name, results, drops)


class SampledPoints:
    """The :class:`~assyst_nodes.stages.sample.PointCache` of a sample job (see the module
    docstring).

    Parameters
    ----------
    folder : pathlib.Path
        The job's project folder.
    key : str
        The job's settings key (:func:`~assyst_nodes.project.index.settings_key`).
    usable : iterable of str, optional
        Names of the folder's usable jobs in the job table; only their points are taken.
        Default: none (empty).
    """

    def __init__(self, folder: Path, key: str, usable: Iterable[str] = ()) -> None:
        self.folder = Path(folder)
        self.key = key
        self.usable = {str(n) for n in usable}

    def get(
        self, points: Sequence[tuple[str, int]]
    ) -> list[tuple[Atoms | None, Drop | None] | None]:
        index = Index(self.folder)
        jobs = [n for n in index.jobs_of_key(self.key) if n in self.usable]
        by_seed: dict[int, Atoms] = {}
        for name in reversed(jobs):  # the oldest job wins among equals
            try:
                with job_file(self.folder / f"{name}.h5", name) as handle:
                    structures = read_structures(handle[f"{name}/{STRUCTURES}"])
            except (DamagedJobError, KeyError):  # unreadable: draw these again
                continue
            by_seed.update((int(a.info[RNG_SEED]), a) for a in structures if RNG_SEED in a.info)
        drops = {
            label: Drop(label, reason, detail)
            for label, reason, detail in reversed(index.drops_of(jobs))
            if reason not in RETRYABLE_REASONS and reason != "time_limit"
        }
        found: list[tuple[Atoms | None, Drop | None] | None] = []
        for label, seed in points:
            if seed in by_seed:
                found.append((by_seed[seed], None))
            elif label in drops:
                found.append((None, drops[label]))
            else:
                found.append(None)
        return found


def with_cache(
    compute: Callable[..., Any], job: Any, carried: Mapping[str, Outcome]
) -> Callable[..., Any]:
    """Give a stage's ``compute`` the project's cache of what is already known.

    Parameters
    ----------
    compute : callable
        What computes the stage run.
    job : AssystStage
        The stage job (saved, in its project) whose run ``compute`` is.
    carried : mapping of str to tuple
        Outcomes ``(result, drop)`` by input uuid that the job already holds (for
        :class:`ProjectOutcomes`).

    Returns
    -------
    callable
        ``compute`` given a :class:`ProjectOutcomes` of ``job`` if it takes a ``cache`` (the
        per-structure stages), or a :class:`SampledPoints` if it takes ``points`` (the sample
        stage), else ``compute`` as it is.
    """
    try:
        parameters = inspect.signature(compute).parameters
    except (TypeError, ValueError):  # no signature to read
        parameters = {}  # type: ignore[assignment]
    if "cache" not in parameters and "points" not in parameters:
        return compute
    project = job.project
    rows = project.db.get_items_dict(
        {"project": project.project_path, "status": list(USABLE_STATUSES)}
    )
    usable = [str(r["job"]) for r in rows]
    if "points" in parameters:
        points = SampledPoints(job.folder, job.settings_key(), usable)
        return functools.partial(compute, points=points)
    cache = ProjectOutcomes(job.folder, job.job_name, job.settings_key(), carried, usable)
    return functools.partial(compute, cache=cache)
