"""Label stage: single points of each structure with a reference calculator (e.g. DFT).

Nothing moves: :class:`SinglePoint` evaluates the calculator once, and :func:`label` runs it
through the relaxation machinery (:func:`assyst_nodes.stages.relax.relax`), so labels fan out,
keep their lineage and report failures exactly as relaxations do.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import ClassVar, Literal  # noqa: F401 - Literal: the inherited fields' hints resolve here

from ase import Atoms
from ase.calculators.calculator import BaseCalculator

from ..calculators import EMT, CalculatorConfig
from ..reports import StageReport
from .relax import OutcomeCache, Relax, relax

__all__ = ["SinglePoint", "label"]


@dataclass(frozen=True)
class SinglePoint(Relax):
    """Evaluate the calculator once (labelling): nothing moves; ``max_steps`` etc. are unused.

    The settings of :func:`label`, usable with :func:`~assyst_nodes.stages.relax.relax` like any
    :class:`~assyst_nodes.stages.relax.Relax`. ``str()`` is the step name, ``single_point``.
    The result keeps the input's ``relax_converged`` (if any) instead of setting its own, so
    :func:`~assyst_nodes.stages.relax.relax` does not count it as ``not_converged``.

    Parameters
    ----------
    calculator : CalculatorConfig or ASE calculator or None, optional
        The reference calculator: a calculator config (e.g. ``EMT()``,
        ``ImportedCalculator("ase.calculators.vasp:Vasp", ...)``), built where the evaluation
        runs, or a live ASE calculator, used in this process only. Default: none, each
        structure's own calculator (or :class:`~assyst_nodes.calculators.EMT` for a structure
        without one or with only a ``SinglePointCalculator``), as in
        :class:`~assyst_nodes.stages.relax.Relax`.
    max_steps : int, default 100
        Unused, since nothing moves (inherited from :class:`~assyst_nodes.stages.relax.Relax`
        and still checked as there, like the fields below).
    force_tolerance : float, default 1e-3
        Unused (eV/Å).
    algorithm : {"BFGS", "LBFGS", "FIRE"}, default "BFGS"
        Unused.
    alpha : float, default 20.0
        Unused (eV/Å^2).
    maxstep : float or None, optional
        Unused (Å). Default: none.

    Raises
    ------
    TypeError
        A field of the wrong type, as for :class:`~assyst_nodes.stages.relax.Relax`.
    ValueError
        A field out of range, as for :class:`~assyst_nodes.stages.relax.Relax`.
    """

    step_name: ClassVar[str] = "single_point"
    optimises: ClassVar[bool] = False

    def relax(self, structure: Atoms) -> Atoms:
        """Evaluate the energy of ``structure`` once with the calculator of
        :meth:`~assyst_nodes.stages.relax.Relax.calculator_for`; nothing moves.

        Forces and stress are then read from that calculator by ``Relax.__call__``.

        Parameters
        ----------
        structure : ase.Atoms
            A private copy of the input, free to modify.

        Returns
        -------
        ase.Atoms
            ``structure`` itself, with the calculator attached and its results computed;
            ``info["relax_converged"]`` is not set.
        """
        structure.calc = self.calculator_for(structure)
        structure.get_potential_energy()
        return structure



def label(
    structures: Iterable[Atoms],
    calculator: CalculatorConfig | BaseCalculator = EMT(),
    report: StageReport | None = None,
    workers: int = 1,
    executor: Executor | None = None,
    chunksize: int | None = None,
    progress: bool | None = None,
    time_limit: float | None = None,
    resubmit: int = 1,
    cache: OutcomeCache | None = None,
) -> list[Atoms]:
    """Energy, forces and stress of each structure with ``calculator``, nothing moved.

    Shorthand for ``relax(structures, SinglePoint(calculator=calculator), ...)``: each result
    is a new structure (step ``single_point``, parent in its lineage) carrying a
    ``SinglePointCalculator``; failures are dropped and reported as in
    :func:`~assyst_nodes.stages.relax.relax`, whose parameters these are.

    Parameters
    ----------
    structures : iterable of ase.Atoms
        The structures to label; never modified.
    calculator : CalculatorConfig or ASE calculator or None, default EMT()
        The reference calculator (e.g. a DFT code through
        :class:`~assyst_nodes.calculators.ImportedCalculator`): a config, built where the
        labelling runs (once per process), or a live ASE calculator, used in this process only.
        ``None``: each structure's own calculator, see :class:`SinglePoint`.
    report : StageReport or None, optional
        A :class:`~assyst_nodes.reports.StageReport` to add this run's counts, drops (reasons
        ``calculator_error``, ``non_finite``, ``time_limit``, ``worker_lost``) and wall time
        (s) to. Its ``not_converged`` flag is not set by labelling. Default: none (no report).
    workers : int, default 1
        Local processes to fan out over (an int >= 1); 1 labels in this process.
    executor : concurrent.futures.Executor or None, optional
        An executor to use instead of local processes (e.g.
        ``executorlib.SingleNodeExecutor``). Default: none.
    chunksize : int or None, optional
        Structures per task when fanned out (an int >= 1). Default: none, chosen by
        :func:`~assyst_nodes.runtime.fanout.auto_chunksize`.
    progress : bool or None, optional
        Show a progress bar. Default: none, only in terminals and notebooks (see
        :mod:`assyst_nodes.runtime.progress`).
    time_limit : float or None, optional
        Wall time (s) one structure may take; one that takes longer is dropped with reason
        ``time_limit`` (see :mod:`assyst_nodes.runtime.deadline`). Default: none (no limit).
    resubmit : int, default 1
        Times a chunk whose worker process or scheduler job was lost is sent again (an int
        >= 0); then its structures are dropped with reason ``worker_lost``.
    cache : OutcomeCache or None, optional
        Outcomes stored before (see :class:`~assyst_nodes.stages.relax.OutcomeCache`): taken
        from it, not computed (flagged ``reused`` in ``report``); each computed chunk is
        handed to it. Default: none.

    Returns
    -------
    list of ase.Atoms
        The labelled structures, in input order, without those that failed. Each carries a
        ``SinglePointCalculator`` with ``energy`` and ``free_energy`` (eV), ``forces``
        (eV/Å) and, where the calculator gives one, ``stress`` (eV/Å^3, ASE's Voigt order),
        and keeps the input's ``relax_converged``.

    Raises
    ------
    TypeError
        Before any work: an item that is not ``Atoms``, or, with ``calculator=None``, a
        structure's own calculator that cannot be pickled to the worker processes (or
        ``executor``) that would need it (as in :func:`~assyst_nodes.stages.relax.relax`).
    ImportError
        Before any work: a calculator path that does not import.
    ValueError
        Before any work: a structure periodic along zero or linearly dependent cell vectors,
        or ``workers``, ``chunksize``, ``resubmit`` or ``time_limit`` out of range.
    """
    return relax(
        structures,
        SinglePoint(calculator=calculator),
        report=report,
        workers=workers,
        executor=executor,
        chunksize=chunksize,
        progress=progress,
        time_limit=time_limit,
        resubmit=resubmit,
        cache=cache,
    )
