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
    """Records stage runs.

    ``stage``: the stage name (``sample``, ``relax``, ``label``, ``perturb``, ``filter``,
    ``combine``); ``settings``: everything that determines the result (configs, seeds, counts;
    never workers, executors or progress); ``inputs``: the input structure lists (empty for
    sampling); ``compute``: runs the stage. Returns the structures and report, computed or
    reloaded; a reloaded result must equal the computed one.

    The computes of the per-structure stages (``relax``, ``label``) also take a keyword
    ``cache`` (an :class:`~assyst_nodes.stages.relax.OutcomeCache`): a recorder that keeps
    per-structure outcomes passes one, so only what it does not hold is computed.
    """

    def record(
        self,
        stage: str,
        settings: Mapping[str, Any],
        inputs: Sequence[Sequence[Atoms]],
        compute: Callable[[], tuple[list[Atoms], StageReport]],
    ) -> tuple[list[Atoms], StageReport]: ...


def recorded(
    recorder: Recorder | None,
    stage: str,
    settings: Mapping[str, Any],
    inputs: Sequence[Sequence[Atoms]],
    compute: Callable[[], tuple[list[Atoms], StageReport]],
) -> tuple[list[Atoms], StageReport]:
    """``compute()`` directly, or through ``recorder``."""
    if recorder is None:
        return compute()
    if not isinstance(recorder, Recorder):
        raise TypeError(
            "recorder must have a record(stage, settings, inputs, compute) method (e.g. "
            f"assyst_nodes.project.ProjectRecorder('my_project')) or be None, got {recorder!r}"
        )
    return recorder.record(stage, settings, inputs, compute)
