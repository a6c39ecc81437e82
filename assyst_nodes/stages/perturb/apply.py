"""The perturb stage: :func:`perturb` applies perturbations to many structures, redrawn until
the filters keep them, and reports what it could not make."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from ase import Atoms

from ...lineage import (
    UUID,
)
from ...random import RngLike, resolve_seed
from ...reports import StageReport
from ...validation import structure_list
from .base import (
    Perturbation,
    PerturbationLike,
    _attempt,
    _choice_stream,
    _with_uuid,
    as_perturbation,
)

__all__ = [
    "perturb",
]


def _as_list(items: Any, single: Callable[[Any], bool], what: str) -> list[Any]:
    """``items`` as a list: ``[]`` for ``None``, ``[items]`` for a single one."""
    if items is None:
        return []
    if single(items):
        return [items]
    try:
        return list(items)
    except TypeError:
        raise TypeError(f"{what}: expected one or an iterable of them, got {items!r}") from None


def _name(function: object) -> str:
    name = getattr(function, "__name__", None)
    return name if isinstance(name, str) else str(function)


def perturb(
    structures: Iterable[Atoms],
    perturbations: PerturbationLike | Iterable[PerturbationLike],
    filters: Callable[[Atoms], bool] | Iterable[Callable[[Atoms], bool]] | None = None,
    retries: int = 10,
    rng: RngLike = None,
    report: StageReport | None = None,
) -> list[Atoms]:
    """Apply each perturbation to each structure; at most one result per pair.

    Each result records its draw seed in ``info["rng_seed"]``, its parent in ``lineage``,
    ``step = str(p)`` and the accumulated ``info["perturbation"]``. A structure without a uuid
    is first given one from its geometry (on a copy; its streams derive from it) and its
    results are their own ``seed`` with an empty ``lineage``, as in the reference
    implementation, so their chains resolve. Inputs are never modified and results carry no
    calculator.

    Parameters
    ----------
    structures : iterable of ase.Atoms
        The parent structures, each with a distinct uuid (or none).
    perturbations : Perturbation, callable or iterable of them
        One config (``Rattle(0.1)``, ...), a plain callable ``Atoms -> Atoms``, or an iterable
        of them. Listing a perturbation twice gives two draws of each structure.
    filters : callable or iterable of callables, optional
        Predicates (``FilterBase`` or any callable ``Atoms -> bool``; all must be ``True`` to
        keep): a pair is drawn again with a fresh stream until the filters keep it.
        Default: ``None`` (every draw is kept).
    retries : int, default 10
        The number of attempts per pair in total (>= 1).
    rng : int, numpy.random.Generator or None, optional
        The base seed (see the module docstring): an int seed in ``[0, 2**63 - 1]``, a
        generator (one number is drawn from it), or ``None`` for fresh entropy (the default).
        A top-level config with its own ``rng`` uses that seed instead.
    report : StageReport, optional
        Where to record the stage. ``n_in`` counts pairs, so ``n_in == n_out + n_dropped``;
        ``seconds`` (s) grows; ``stage`` becomes ``"perturb"`` if it is empty. A pair whose
        attempts are all rejected is dropped as ``retries_exhausted``, one that cannot be
        perturbed (a one-atom cell rattled without supercells, an element missing from a
        reference, a ``ValueError`` from a callable) as ``cannot_apply``, both labelled
        ``"<parent uuid> <step>"``; kept pairs that needed more than one attempt are flagged
        ``retried``. Default: ``None`` (nothing is recorded).

    Returns
    -------
    list of ase.Atoms
        The kept results, structure-major, then in perturbation order.

    Raises
    ------
    ValueError
        If two input structures share a uuid, ``retries`` is not an int >= 1, or ``rng`` is a
        negative or too large seed.
    TypeError
        If an item of ``structures`` is not an ``Atoms``, a perturbation or filter is not
        callable, or ``rng`` is neither an int, a generator nor ``None``.
    """
    if isinstance(retries, bool) or not isinstance(retries, int | np.integer) or retries < 1:
        raise ValueError(f"retries must be an int >= 1 (attempts per pair), got {retries!r}")
    retries = int(retries)
    configs = [as_perturbation(p) for p in _as_list(perturbations, callable, "perturbations")]
    predicates = _as_list(filters, callable, "filters")
    for predicate in predicates:
        if not callable(predicate):
            raise TypeError(f"a filter must be a callable Atoms -> bool, not {predicate!r}")
    parents: list[tuple[Atoms, bool]] = []
    seen: set[str] = set()
    for structure in structure_list(structures):
        parent = _with_uuid(structure)
        uid = str(parent.info[UUID])
        if uid in seen:
            raise ValueError(
                f"uuid {uid} occurs twice in the input; list a perturbation twice to get two "
                "draws of one structure"
            )
        seen.add(uid)
        parents.append((parent, parent is not structure))  # (parent, uuid minted here)

    base = resolve_seed(rng)
    copies: Counter[str] = Counter()
    plan_ids: list[tuple[Perturbation, int, int]] = []
    for p in configs:
        name = str(p)
        plan_ids.append((p, copies[name], base if p.base_seed is None else p.base_seed))
        copies[name] += 1

    start = time.perf_counter()
    results: list[Atoms] = []
    n_pairs = n_retried = 0
    for parent, minted in parents:
        for p, copy, seed in plan_ids:
            n_pairs += 1
            label = f"{parent.info[UUID]} {p}"
            plan = p.choose(_choice_stream(seed, parent, p, copy))
            rejected: Counter[str] = Counter()
            for attempt in range(retries):
                try:
                    result = _attempt(parent, p, plan, seed, copy, attempt, root=minted)
                except ValueError as error:
                    if report is not None:
                        report.drop(label, "cannot_apply", f"{type(error).__name__}: {error}")
                    break
                if result is None:
                    rejected["no result"] += 1
                    continue
                blame = next((f for f in predicates if not f(result)), None)
                if blame is None:
                    results.append(result)
                    n_retried += attempt > 0
                    break
                rejected[_name(blame)] += 1
            else:
                if report is not None:
                    why = ", ".join(f"{name} {n}" for name, n in sorted(rejected.items()))
                    branch = f" (branch {plan})" if plan is not p else ""
                    report.drop(
                        label, "retries_exhausted", f"{retries} attempts{branch} rejected: {why}"
                    )
    if report is not None:
        report.stage = report.stage or "perturb"
        report.n_in += n_pairs
        report.n_out += len(results)
        if n_retried:
            report.flag("retried", n_retried)
        report.seconds += time.perf_counter() - start
    return results
