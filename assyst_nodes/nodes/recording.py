"""Where a stage node records its run: the seam between the node layer and the project layer.

A stage node takes ``recorder: Recorder | None``. With ``None`` the stage runs in memory; with a
recorder (e.g. :class:`assyst_nodes.project.ProjectRecorder`, a picklable handle on a project
folder) the recorder decides whether to compute (calling ``compute``) or to return a finished
run's stored result, and stores what was computed. The same graph thus runs in memory or into
a project by one input. The node layer never imports the project layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ase import Atoms

from ..reports import StageReport

__all__ = ["Recorder", "recorded"]


@runtime_checkable
class Recorder(Protocol):
    """Records stage runs: the interface of a stage node's ``recorder`` input.

    A recorder is any object with a :meth:`~assyst_nodes.nodes.recording.Recorder.record`
    method of this signature (e.g. :class:`assyst_nodes.project.ProjectRecorder`); it need not
    subclass ``Recorder``. The protocol is ``runtime_checkable``: ``isinstance(obj, Recorder)``
    checks that ``obj`` has a ``record`` method, as :func:`recorded` does.
    """

    def record(
        self,
        stage: str,
        settings: Mapping[str, Any],
        inputs: Sequence[Sequence[Atoms]],
        compute: Callable[[], tuple[list[Atoms], StageReport]],
    ) -> tuple[list[Atoms], StageReport]:
        """Run a stage through the recorder: compute it, or reload a finished run's result.

        Parameters
        ----------
        stage : str
            The stage name: ``sample``, ``relax``, ``label``, ``perturb``, ``filter`` or
            ``combine``.
        settings : Mapping of str to Any
            Everything that determines the result (configs, seeds, counts; never workers,
            executors or progress).
        inputs : Sequence of Sequence of Atoms
            The input structure lists (empty for sampling).
        compute : callable
            Called with no arguments, runs the stage and returns ``(structures, report)``. The
            computes of the per-structure stages (``relax``, ``label``) also take a keyword
            ``cache`` (an :class:`~assyst_nodes.stages.relax.OutcomeCache`): a recorder that
            keeps per-structure outcomes passes one, so only what it does not hold is
            computed.

        Returns
        -------
        structures : list of Atoms
            The stage's structures, computed or reloaded; a reloaded result must equal the
            computed one.
        report : StageReport
            The stage's report, computed or reloaded.
        """
        ...


def recorded(
    recorder: Recorder | None,
    stage: str,
    settings: Mapping[str, Any],
    inputs: Sequence[Sequence[Atoms]],
    compute: Callable[[], tuple[list[Atoms], StageReport]],
) -> tuple[list[Atoms], StageReport]:
    """``compute()`` directly, or through ``recorder``.

    Parameters
    ----------
    recorder : Recorder or None
        Where the run is recorded (see :meth:`Recorder.record`); ``None`` runs ``compute()``
        in memory.
    stage : str
        The stage name (``sample``, ``relax``, ``label``, ``perturb``, ``filter``,
        ``combine``).
    settings : Mapping of str to Any
        Everything that determines the result (configs, seeds, counts; never workers,
        executors or progress).
    inputs : Sequence of Sequence of Atoms
        The input structure lists (empty for sampling).
    compute : callable
        Runs the stage (no arguments) and returns ``(structures, report)``.

    Returns
    -------
    structures : list of Atoms
        The stage's structures, computed or reloaded by ``recorder``.
    report : StageReport
        The stage's report.

    Raises
    ------
    TypeError
        ``recorder`` is neither ``None`` nor has a ``record`` method.
    """
    if recorder is None:
        return compute()
    if not isinstance(recorder, Recorder):
        raise TypeError(
            "recorder must have a record(stage, settings, inputs, compute) method (e.g. "
            f"assyst_nodes.project.ProjectRecorder('my_project')) or be None, got {recorder!r}"
        )
    return recorder.record(stage, settings, inputs, compute)
