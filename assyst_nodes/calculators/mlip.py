"""A universal machine-learning interatomic potential as a calculator config: SevenNet.

:class:`SevenNet` builds ``sevenn``'s ASE calculator from a pretrained checkpoint that ships
inside the ``sevenn`` wheel (SevenNet-0 and its relatives, 89 elements, 5 Å cutoff), so nothing
is downloaded at run time. It needs the optional extra ``mlip``::

    pip install "assyst_nodes[mlip]"     # torch (CPU build is enough) and sevenn 0.13

Energies are in eV, forces in eV/Å, stress in eV/Å^3 (ASE's Voigt order); the model computes in
float32. Use it like any other config, e.g.
``relax(structures, FullRelax(calculator=SevenNet()), workers=2)``: the model is loaded once
per worker process (and thread) by :func:`~assyst_nodes.calculators.get_calculator`, never
pickled with the tasks.

Reproducibility: with ``threads=1`` (the default) a structure gives bit-identical energies,
forces and stress in any process, so results do not depend on ``workers`` (tested). PyTorch's
CPU kernels used here are deterministic at a fixed thread count; a different ``threads`` may
change the last bits of float32 sums.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ase.calculators.calculator import BaseCalculator

from . import CalculatorConfig

__all__ = ["INSTALL_HINT", "SHIPPED_MODELS", "SevenNet", "available_devices"]

INSTALL_HINT = 'pip install "assyst_nodes[mlip]"'
"""How to install what :class:`SevenNet` needs (torch and sevenn)."""

SHIPPED_MODELS: dict[str, str] = {
    "7net-0": "SEVENNET_0_11Jul2024",
    "7net-0_11jul2024": "SEVENNET_0_11Jul2024",
    "7net-0_22may2024": "SEVENNET_0_22May2024",
    "7net-l3i5": "SEVENNET_l3i5",
    "7net-mf-0": "SEVENNET_MF_0",
}
"""Pretrained SevenNet models whose checkpoints lie inside the sevenn 0.13 wheel: name (also
spelled ``sevennet-...``, any case) -> the ``sevenn._const`` attribute holding its path. Other
pretrained names (``7net-omat``, ``7net-mf-ompa``, ``7net-omni``, ...) are downloaded by sevenn
on first use, which this package never does: download such a checkpoint elsewhere and give its
file path as ``model``."""

_DEVICE_TYPES = ("cpu", "cuda", "mps")
_NO_ACCELERATOR_WARNING = r"No tensor product accelerator is enabled"


def _normalised(model: str) -> str:
    """``model`` in lower case with ``sevennet-`` spelled ``7net-``."""
    name = model.strip().lower()
    return "7net-" + name[len("sevennet-") :] if name.startswith("sevennet-") else name


def _import_sevenn() -> Any:
    """The ``sevenn.calculator`` module; ``ImportError`` naming the extra when it is missing."""
    try:
        importlib.import_module("torch")
        return importlib.import_module("sevenn.calculator")
    except ImportError as error:
        raise ImportError(
            f"SevenNet needs the optional packages torch and sevenn ({error}); install them "
            f"with: {INSTALL_HINT}"
        ) from error


def _require_installed() -> None:
    """``ImportError`` naming the extra when torch or sevenn is not installed, found without
    importing them (importing takes seconds)."""
    for name in ("torch", "sevenn"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError, AttributeError):  # e.g. sys.modules[name] is None
            found = False
        if not found:
            raise ImportError(
                f"SevenNet needs the optional packages torch and sevenn (No module named "
                f"{name!r}); install them with: {INSTALL_HINT}"
            )


def available_devices() -> list[str]:
    """Torch devices usable in this process (needs torch).

    Returns
    -------
    list of str
        ``"cpu"``; ``"cuda"`` and ``"cuda:N"`` for each GPU when CUDA is available; ``"mps"``
        on Apple silicon.

    Raises
    ------
    ImportError
        If torch is not installed.
    """
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        devices += ["cuda", *(f"cuda:{index}" for index in range(count))]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


@contextlib.contextmanager
def _quiet_build() -> Iterator[None]:
    """While a model is built: no warning that the GPU-only tensor-product accelerators
    (cuEquivariance, FlashTP, OpenEquivariance) are off, and no tqdm monitor thread.

    e3nn's code generation runs ``torch.fx`` with a disabled tqdm bar, which still starts tqdm's
    monitor thread; a second thread in the process would make
    :func:`~assyst_nodes.runtime.fanout.process_pool` use a fork server instead of forking
    (every worker would then import torch and sevenn again, seconds each)."""
    import tqdm

    interval = tqdm.tqdm.monitor_interval
    tqdm.tqdm.monitor_interval = 0
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_NO_ACCELERATOR_WARNING)
            yield
    finally:
        tqdm.tqdm.monitor_interval = interval


@dataclass(frozen=True)
class SevenNet(CalculatorConfig):
    """SevenNet, an equivariant graph neural-network potential (sevenn 0.13), on ``device``.

    Energies in eV, forces in eV/Å, stress in eV/Å^3 (ASE's Voigt order); the model computes
    in float32. Nothing is imported or loaded when the config is made: :meth:`check` tests
    that it can be built, :meth:`build` loads the model.

    Parameters
    ----------
    model : str, default "7net-0"
        A pretrained name from :data:`SHIPPED_MODELS` (any case, ``sevennet-...`` also
        accepted; the default ``7net-0`` is SevenNet-0 of 11 July 2024, trained on MPtrj:
        PBE(+U) energies in eV, 89 elements) or the path of a sevenn checkpoint file
        (``.pth``).
    device : str, default "cpu"
        Torch device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` where they exist (see
        :meth:`check` and :func:`available_devices`).
    threads : int, default 1
        PyTorch CPU threads (intra-op) per process, >= 1. See Notes.
    modal : str, optional
        The fidelity of a multi-fidelity model (for ``7net-mf-0``: ``"PBE"`` or
        ``"R2SCAN"``). Default: ``None``, for a single-fidelity model.

    Raises
    ------
    ValueError
        If ``model`` or ``device`` is not a non-empty string, ``threads`` is not an int >= 1,
        or ``modal`` is neither ``None`` nor a non-empty string.

    Notes
    -----
    :meth:`build` calls ``torch.set_num_threads(threads)``, which holds for the whole process
    that builds it: in a worker process of :func:`~assyst_nodes.stages.relax.relax` that is the
    worker, so ``workers=2, threads=1`` uses two cores. Keep ``threads=1`` with local worker
    processes: they are forked, and a forked child that starts OpenMP threads after its parent
    ran OpenMP with several threads hangs (GNU OpenMP is not fork-safe); ``threads > 1`` is for
    fresh processes (a fork server, executorlib, a SLURM job) and one worker per node. Results
    are bit-identical across processes at the same ``threads``.

    ``str()`` gives ``sevennet(model, ...)``, adding ``modal=``, ``device=`` and ``threads=``
    where they are not the defaults.
    """

    model: str = "7net-0"
    device: str = "cpu"
    threads: int = 1
    modal: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(
                f"SevenNet.model must be a pretrained name ({', '.join(SHIPPED_MODELS)}) or a "
                f"checkpoint path, got {self.model!r}"
            )
        if not isinstance(self.device, str) or not self.device.strip():
            raise ValueError(
                f"SevenNet.device must be a torch device name such as 'cpu', 'cuda', 'cuda:0' "
                f"or 'mps', got {self.device!r}"
            )
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"SevenNet.threads must be an int >= 1, got {self.threads!r}")
        if self.modal is not None and (not isinstance(self.modal, str) or not self.modal):
            raise ValueError(f"SevenNet.modal must be a non-empty str or None, got {self.modal!r}")

    def checkpoint(self) -> str:
        """The checkpoint file of ``model``: a shipped pretrained one or the given path.

        Returns
        -------
        str
            The absolute path of ``model`` if it is a file, else the path of the checkpoint
            shipped inside the installed sevenn package.

        Raises
        ------
        ValueError
            For a name whose checkpoint is not on disk (sevenn would download it) or that
            sevenn does not know.
        ImportError
            Naming the extra ``mlip`` when torch or sevenn is missing.
        """
        if os.path.isfile(self.model):
            return os.path.abspath(self.model)
        attribute = self._shipped_attribute()
        _import_sevenn()
        from sevenn import _const

        path = getattr(_const, attribute, None)
        if path is not None and os.path.isfile(path):
            return str(path)
        raise ValueError(
            f"SevenNet model {self.model!r}: its checkpoint is not inside the installed sevenn "
            f"package (expected sevenn 0.13, which ships it); reinstall with: {INSTALL_HINT}"
        )

    def _shipped_attribute(self) -> str:
        """The ``sevenn._const`` attribute of a shipped pretrained ``model`` (no import);
        ``ValueError`` for other names."""
        name = _normalised(self.model)
        attribute = SHIPPED_MODELS.get(name)
        if attribute is not None:
            return attribute
        shipped = ", ".join(sorted(set(SHIPPED_MODELS)))
        if name.startswith("7net-"):
            raise ValueError(
                f"SevenNet model {self.model!r}: its checkpoint is not inside the installed "
                f"sevenn package (sevenn would download it, which is not done here); use one of "
                f"{shipped} or the path of a downloaded checkpoint file"
            )
        raise ValueError(
            f"SevenNet model {self.model!r} is neither a pretrained name ({shipped}) nor an "
            "existing checkpoint file"
        )

    def check(self) -> None:
        """Raise a clear error now if :meth:`build` cannot work.

        Imports torch only for a device other than ``"cpu"`` (a few seconds), so a run that
        builds the model in worker processes does not import it in the calling process as
        well.

        Raises
        ------
        ImportError
            Naming the extra ``mlip`` when torch or sevenn is not installed.
        ValueError
            Naming the device and the valid ones when ``device`` does not exist here (e.g.
            ``"cuda"`` without a GPU), or naming the model when it is neither shipped with
            sevenn nor a file.
        """
        _require_installed()
        if not os.path.isfile(self.model):
            self._shipped_attribute()
        if self.device == "cpu":
            return
        import torch

        try:
            parsed = torch.device(self.device)
        except (RuntimeError, ValueError) as error:
            raise ValueError(
                f"SevenNet device {self.device!r} is not a torch device name ({error}); valid "
                f"here: {', '.join(available_devices())}"
            ) from None
        valid = available_devices()
        wanted = parsed.type if parsed.index is None else f"{parsed.type}:{parsed.index}"
        if parsed.type not in _DEVICE_TYPES or wanted not in valid:
            raise ValueError(
                f"SevenNet device {self.device!r} is not available on this machine; valid here: "
                f"{', '.join(valid)} (SevenNet runs on {', '.join(_DEVICE_TYPES)} where present)"
            )

    def modules(self) -> tuple[str, ...]:
        return ("torch", "sevenn.calculator")

    def build(self) -> BaseCalculator:
        """A new ``sevenn.calculator.SevenNetCalculator`` with the model loaded on ``device``.

        Runs :meth:`check` first; loading is quick on a CPU once torch and sevenn are imported.
        Sets ``torch.set_num_threads(threads)`` for this process, and again before each
        calculation where something (e.g. a chunk's one-thread BLAS limit) changed it.

        Returns
        -------
        ase.calculators.calculator.BaseCalculator
            The SevenNet ASE calculator (energy in eV, forces in eV/Å, stress in eV/Å^3).

        Raises
        ------
        ImportError, ValueError
            As :meth:`check`.
        """
        self.check()
        import torch

        calculator_module = _import_sevenn()
        torch.set_num_threads(self.threads)
        with _quiet_build():
            calculator = calculator_module.SevenNetCalculator(
                model=self.checkpoint(), device=self.device, modal=self.modal
            )
        threads, calculate = self.threads, calculator.calculate

        def calculate_with_threads(*args: Any, **kwargs: Any) -> Any:
            # a stage's chunk limits OpenMP to one thread while it runs (threadpoolctl), which
            # also limits torch: each calculation restores the config's thread count
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            return calculate(*args, **kwargs)

        calculator.calculate = calculate_with_threads  # type: ignore[method-assign]
        return calculator

    def __str__(self) -> str:
        details = [self.model]
        if self.modal is not None:
            details.append(f"modal={self.modal}")
        if self.device != "cpu":
            details.append(f"device={self.device}")
        if self.threads != 1:
            details.append(f"threads={self.threads}")
        return f"sevennet({', '.join(details)})"
