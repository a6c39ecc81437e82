"""What a stage did: structures in and out, what it dropped and why, how long it took.

Every stage function takes an optional ``report: StageReport | None``; when given, the stage fills
it while it runs (also while a generator is consumed), so nothing is ever dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CHOSEN_REASONS",
    "DUPLICATE",
    "LOST_REASONS",
    "RETRYABLE_REASONS",
    "WORKER_LOST",
    "Drop",
    "StageReport",
]

WORKER_LOST = "worker_lost"
"""Drop reason of a structure whose chunk of work never came back: the worker process or the
scheduler job running it died, was cancelled, ran out of wall time or never started (after
the resubmissions allowed), so it was not computed at all."""

LOST_REASONS: frozenset[str] = frozenset(
    {"calculator_error", "non_finite", "time_limit", WORKER_LOST}
)
"""Drop reasons that mean a structure was *lost to an error* (a calculator failed, a result
was not finite, a time limit ran out, its worker was lost), as opposed to a verdict of the
method (a filter rejected it, a space group cannot host a composition, pyxtal found no
crystal, a perturbation cannot apply to it or its retries were rejected)."""

RETRYABLE_REASONS: frozenset[str] = frozenset({WORKER_LOST})
"""Drop reasons that say nothing about the structure, only about where it ran: a rerun
computes such structures again (the others it takes from the stored run)."""

DUPLICATE = "duplicate"
"""Drop reason of an input equivalent to another one that the label stage labelled instead
(see :mod:`assyst_nodes.stages.duplicates`); not a loss."""

CHOSEN_REASONS: frozenset[str] = frozenset({DUPLICATE})
"""Drop reasons that are a choice of one stage run, not an outcome of the structure: the label
stage labels one of equivalent structures and drops the others as ``duplicate``. A stored
drop of this kind is never reused for the structure by another run (which may choose
otherwise)."""


@dataclass(frozen=True)
class Drop:
    """One structure (or grid point) a stage did not turn into an output.

    Parameters
    ----------
    label : str
        What was dropped: a uuid, or e.g. ``"Cu2Ag1 @ 225"`` for a grid point.
    reason : str
        A short category used for counting, e.g. ``"time_limit"`` or :data:`WORKER_LOST`
        (see :data:`LOST_REASONS` and :data:`RETRYABLE_REASONS`).
    detail : str, default ""
        The message behind it.
    """

    label: str
    reason: str
    detail: str = ""


@dataclass
class StageReport:
    """Counts and records of one stage run.

    A stage fills the report it is given while it runs; all fields start empty.

    Parameters
    ----------
    stage : str, default ""
        The stage, e.g. the ``str`` of its config.
    n_in, n_out : int, default 0
        Structures (or grid points) in and out.
    drops : list of Drop, optional
        What was dropped and why (see :meth:`drop`). Default: none (an empty list).
    flags : collections.Counter of str, optional
        Kept structures with a remark, counted per remark (see :meth:`flag`). Default: none
        (an empty counter).
    seconds : float, default 0.0
        Wall time (s).
    execution : dict of str to object, optional
        Where the work ran (see the attribute :attr:`execution`). Default: empty, for a stage
        that does not fan out.
    """

    stage: str = ""
    n_in: int = 0
    n_out: int = 0
    drops: list[Drop] = field(default_factory=list)
    flags: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    execution: dict[str, Any] = field(default_factory=dict)
    """Where the work ran (see :func:`assyst_nodes.runtime.fanout.map_chunks`): ``executor`` (its
    class name, ``"in process"`` without one), ``chunks``, ``resubmitted``, ``hosts`` and
    ``slurm_job_ids`` (sorted lists). Empty for a stage that does not fan out."""

    def drop(self, label: str, reason: str, detail: str = "") -> None:
        """Record that ``label`` was dropped for ``reason``.

        Parameters
        ----------
        label : str
            What was dropped (a uuid or a grid point); converted with ``str``.
        reason : str
            A short category used for counting (see :class:`Drop`).
        detail : str, default ""
            The message behind it.
        """
        self.drops.append(Drop(str(label), reason, detail))

    def flag(self, reason: str, count: int = 1) -> None:
        """Count a kept structure with a remark (e.g. ``"not_converged"``).

        Parameters
        ----------
        reason : str
            The remark.
        count : int, default 1
            How many structures to count.
        """
        self.flags[reason] += count

    @property
    def dropped(self) -> dict[str, int]:
        """Number of drops per reason."""
        return dict(Counter(d.reason for d in self.drops))

    @property
    def n_lost(self) -> int:
        """Number of drops lost to errors (reasons in :data:`LOST_REASONS`)."""
        return sum(d.reason in LOST_REASONS for d in self.drops)

    @property
    def n_dropped(self) -> int:
        """Total number of drops."""
        return len(self.drops)

    def merge(self, other: StageReport) -> StageReport:
        """Add ``other``'s counts and records to this one (e.g. per worker chunk); return self.

        Parameters
        ----------
        other : StageReport
            The report to add: counts, drops, flags and seconds are added, the
            :attr:`execution` records merged.

        Returns
        -------
        StageReport
            This report.
        """
        self.n_in += other.n_in
        self.n_out += other.n_out
        self.drops.extend(other.drops)
        self.flags.update(other.flags)
        self.seconds += other.seconds
        self.execution = merge_execution(self.execution, other.execution)
        return self

    def summary(self) -> str:
        """One line: ``stage: in -> out (dropped: reason n, ...) [flags] in s``."""
        dropped = ", ".join(f"{reason} {n}" for reason, n in sorted(self.dropped.items()))
        flags = ", ".join(f"{reason} {n}" for reason, n in sorted(self.flags.items()))
        text = f"{self.stage or 'stage'}: {self.n_in} in -> {self.n_out} out"
        if dropped:
            text += f" (dropped: {dropped})"
        if flags:
            text += f" [{flags}]"
        return text + f" in {self.seconds:.2f} s"


def merge_execution(first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, Any]:
    """Two :attr:`StageReport.execution` records as one: counts added, lists united (sorted),
    other values taken from ``second`` where given."""
    merged: dict[str, Any] = dict(first)
    for key, value in second.items():
        if key in ("chunks", "resubmitted"):
            merged[key] = int(merged.get(key, 0)) + int(value)
        elif isinstance(value, list):
            merged[key] = sorted(set(merged.get(key, [])) | set(value))
        else:
            merged[key] = value
    return merged
