"""Label stage: single points of each structure with a reference calculator (e.g. DFT).

Nothing moves: :class:`SinglePoint` evaluates the calculator once, and :func:`label` runs it
through the relaxation machinery (:func:`assyst_nodes.stages.relax.relax`), so labels fan out,
keep their lineage and report failures exactly as relaxations do.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import ClassVar

from ase import Atoms
from ase.calculators.calculator import BaseCalculator

from ..calculators import EMT, CalculatorConfig
from ..reports import StageReport
from .relax import OutcomeCache, Relax, relax

__all__ = ["SinglePoint", "label"]


@dataclass(frozen=True)
class SinglePoint(Relax):
    """Evaluate the calculator once (labelling): nothing moves; ``max_steps`` etc. are unused.

    The result keeps the input's ``relax_converged`` (if any) instead of setting its own.
    """

    step_name: ClassVar[str] = "single_point"
    optimises: ClassVar[bool] = False

    def relax(self, structure: Atoms) -> Atoms:
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
    ``SinglePointCalculator``; failures are dropped and reported as in :func:`relax`.
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
