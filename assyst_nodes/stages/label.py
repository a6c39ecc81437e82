"""Label stage: single points of each structure with a reference calculator (e.g. DFT).

Nothing moves: :class:`SinglePoint` evaluates the calculator once, and :func:`label` runs it
through the relaxation machinery (:func:`assyst_nodes.stages.relax.relax`), so labels fan out,
keep their lineage and report failures exactly as relaxations do. Before that, :func:`label`
finds equivalent structures (:mod:`assyst_nodes.stages.duplicates`) and labels each once, and
adds the isolated atoms of the elements (:mod:`assyst_nodes.stages.isolated`), so the training
set and the reference energies of the fitting codes come from one calculator in one stage.

Each labelled structure says in ``Atoms.info`` where it came from, for the fitting codes:

==================  ==========================================================================
key                 meaning
==================  ==========================================================================
``config_type``     its origin (:func:`origin_of` of its input): ``sampled``,
                    ``volume_relaxed``, ``relaxed``, ``perturbed`` or ``IsolatedAtom``
``family``          its seed crystal, merged across duplicates (see
                    :func:`~assyst_nodes.stages.duplicates.families`): splits keep a family
                    in one part
``duplicates``      the uuids of the input structures it stands for (equivalent to its input,
                    not labelled); absent where none
==================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import ClassVar, Final, Literal  # noqa: F401 - Literal: inherited fields' hints

from ase import Atoms
from ase.calculators.calculator import BaseCalculator

from ..calculators import EMT, CalculatorConfig
from ..lineage import LINEAGE, PERTURBATION, STEP, UUID
from ..reports import DUPLICATE, StageReport
from ..validation import structure_list
from .duplicates import Duplicates, duplicate_groups, families
from .isolated import CONFIG_TYPE, IsolatedAtoms, isolated_atoms
from .relax import CellRelax, FullRelax, OutcomeCache, Relax, SymmetryRelax, VolumeRelax, relax

__all__ = [
    "DUPLICATE",
    "DUPLICATES",
    "FAMILY",
    "ORIGINS",
    "SinglePoint",
    "check_label_settings",
    "label",
    "origin_of",
]

FAMILY: Final[str] = "family"
"""``Atoms.info`` key of a labelled structure's family (its seed crystal, merged across
duplicates)."""

DUPLICATES: Final[str] = "duplicates"
"""``Atoms.info`` key of the uuids a labelled structure stands for."""

ORIGINS: Final[tuple[str, ...]] = (
    "sampled", "volume_relaxed", "relaxed", "perturbed", "IsolatedAtom"
)
"""The origins (``config_type``) of the canonical run's labelled structures."""

_RELAXED: Final[frozenset[str]] = frozenset(
    cls.step_name for cls in (Relax, CellRelax, SymmetryRelax, FullRelax)
)


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



def check_label_settings(duplicates: object, isolated: object) -> None:
    """Check the choosing settings of :func:`label` before any work.

    Parameters
    ----------
    duplicates : object
        Must be :class:`~assyst_nodes.stages.duplicates.Duplicates` or ``None``.
    isolated : object
        Must be :class:`~assyst_nodes.stages.isolated.IsolatedAtoms` or ``None``.

    Raises
    ------
    TypeError
        Either is of another type (the message names the value).
    """
    if duplicates is not None and not isinstance(duplicates, Duplicates):
        raise TypeError(
            f"duplicates must be Duplicates(...) (tolerances) or None, got {duplicates!r}"
        )
    if isolated is not None and not isinstance(isolated, IsolatedAtoms):
        raise TypeError(f"isolated must be IsolatedAtoms(box=...) or None, got {isolated!r}")


def origin_of(structure: Atoms) -> str:
    """The origin of ``structure``: the ``config_type`` its label gets.

    Parameters
    ----------
    structure : ase.Atoms
        A structure of the run, before labelling.

    Returns
    -------
    str
        Its own ``info["config_type"]`` if it has one (an isolated atom's is
        ``IsolatedAtom``); else ``sampled`` for a structure without ancestors (a sampled
        crystal), ``volume_relaxed`` for the step ``volume_relax``, ``relaxed`` for the other
        relaxations of this package (``relax``, ``cell_relax``, ``symmetry_relax``,
        ``full_relax``, at any pressure), ``perturbed`` for a structure whose last step was a
        perturbation, and otherwise its step up to the first ``(`` (a custom engine's name).
    """
    info = structure.info
    if info.get(CONFIG_TYPE):
        return str(info[CONFIG_TYPE])
    if not info.get(LINEAGE):
        return "sampled"
    step = str(info.get(STEP, "unknown"))
    name = step.partition("(")[0]
    if name == VolumeRelax.step_name:
        return "volume_relaxed"
    if name in _RELAXED:
        return "relaxed"
    if info.get(PERTURBATION):
        return "perturbed"
    return name or "unknown"


def label(
    structures: Iterable[Atoms],
    calculator: CalculatorConfig | BaseCalculator | None = EMT(),
    report: StageReport | None = None,
    workers: int = 1,
    executor: Executor | None = None,
    chunksize: int | None = None,
    progress: bool | None = None,
    time_limit: float | None = None,
    resubmit: int = 1,
    cache: OutcomeCache | None = None,
    duplicates: Duplicates | None = Duplicates(),
    isolated: IsolatedAtoms | None = IsolatedAtoms(),
) -> list[Atoms]:
    """Energy, forces and stress of each distinct structure and of the isolated atoms of its
    elements, with ``calculator``; nothing moves.

    Equivalent structures (within ``duplicates``' tolerances) are labelled once: the one with
    the fewest atoms stands for its group and records the uuids of the others
    (``info["duplicates"]``); they are reported as dropped with reason ``duplicate`` (not a
    loss). Then the single points run as ``relax(kept + isolated atoms,
    SinglePoint(calculator=calculator), ...)``: each result is a new structure (step
    ``single_point``, parent in its lineage) carrying a ``SinglePointCalculator``; failures
    are dropped and reported as in :func:`~assyst_nodes.stages.relax.relax`, whose parameters
    these are. Each result carries ``config_type`` (:func:`origin_of` its input) and
    ``family`` (see the module docstring).

    Parameters
    ----------
    structures : iterable of ase.Atoms
        The structures to label; never modified.
    calculator : CalculatorConfig or ASE calculator or None, default EMT()
        The reference calculator (e.g. a DFT code through
        :class:`~assyst_nodes.calculators.ImportedCalculator`): a config, built where the
        labelling runs (once per process), or a live ASE calculator, used in this process only.
        ``None``: each structure's own calculator, see :class:`SinglePoint`. The isolated atoms
        are computed with the same calculator and settings: give DFT k-points as a density
        (not a fixed grid), so the large box of an atom gets few.
    report : StageReport or None, optional
        A :class:`~assyst_nodes.reports.StageReport` to add this run's counts (``n_in``: the
        structures and the isolated atoms), drops (reasons ``duplicate``,
        ``calculator_error``, ``non_finite``, ``time_limit``, ``worker_lost``), flags
        (``isolated_atom``: how many were added) and wall time (s) to. Its ``not_converged``
        flag is not set by labelling. Default: none (no report).
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
    duplicates : Duplicates or None, default Duplicates()
        When structures are equivalent (see :class:`~assyst_nodes.stages.duplicates.Duplicates`).
        ``None``: every structure is labelled.
    isolated : IsolatedAtoms or None, default IsolatedAtoms()
        How the isolated atoms of the input's elements are built (a 12 Å box, spin-polarised;
        see :class:`~assyst_nodes.stages.isolated.IsolatedAtoms`). ``None``: no isolated
        atoms; nor are there any with ``calculator=None`` (no one calculator for them).

    Returns
    -------
    list of ase.Atoms
        The labelled structures, in input order (of those that stand for their group), then
        the isolated atoms (alphabetical), without those that failed. Each carries a
        ``SinglePointCalculator`` with ``energy`` and ``free_energy`` (eV, both as the
        calculator gave them: they differ under electronic smearing), ``forces`` (eV/Å) and,
        where the calculator gives one, ``stress`` (eV/Å^3, ASE's Voigt order), and keeps the
        input's ``relax_converged``.

    Raises
    ------
    TypeError
        Before any work: an item that is not ``Atoms``, ``duplicates`` or ``isolated`` of
        the wrong type, or, with ``calculator=None``, a structure's own calculator that cannot
        be pickled to the worker processes (or ``executor``) that would need it (as in
        :func:`~assyst_nodes.stages.relax.relax`).
    ImportError
        Before any work: a calculator path that does not import.
    ValueError
        Before any work: a structure periodic along zero or linearly dependent cell vectors,
        or ``workers``, ``chunksize``, ``resubmit`` or ``time_limit`` out of range.
    """
    items = structure_list(structures)
    check_label_settings(duplicates, isolated)
    groups = (
        duplicate_groups(items, duplicates)
        if duplicates is not None
        else [[i] for i in range(len(items))]
    )
    family = families(items, groups)
    kept = [items[group[0]] for group in groups]
    atoms = (
        []
        if isolated is None or calculator is None or not items
        else isolated_atoms({s for a in items for s in a.get_chemical_symbols()}, isolated)
    )
    single_point = SinglePoint(calculator=calculator)
    results = relax(
        [*kept, *atoms],
        single_point,
        report=report,
        workers=workers,
        executor=executor,
        chunksize=chunksize,
        progress=progress,
        time_limit=time_limit,
        resubmit=resubmit,
        cache=cache,
    )
    annotations: dict[str, tuple[str, str, list[str]]] = {}  # by the uuid of the result
    for group in groups:
        first = items[group[0]]
        annotations[single_point.result_uuid(first)] = (
            origin_of(first),
            family[group[0]],
            [str(items[i].info.get(UUID)) for i in group[1:] if items[i].info.get(UUID)],
        )
    for single in atoms:
        annotations[single_point.result_uuid(single)] = (
            origin_of(single), str(single.info[UUID]), []
        )
    for result in results:
        origin, kin, others = annotations[str(result.info[UUID])]
        result.info[CONFIG_TYPE] = origin
        result.info[FAMILY] = kin
        if others:
            result.info[DUPLICATES] = others
        else:
            result.info.pop(DUPLICATES, None)
    if report is not None:
        report.n_in += len(items) - len(kept)
        for group in groups:
            for index in group[1:]:
                report.drop(
                    str(items[index].info.get(UUID, index)),
                    DUPLICATE,
                    f"equivalent to {items[group[0]].info.get(UUID, group[0])}",
                )
        if atoms:
            report.flag("isolated_atom", len(atoms))
    return results
