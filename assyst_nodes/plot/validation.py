"""Figures of a validation (:class:`~assyst_nodes.stages.validate.Validation`): parity of
energies and forces, E-V curves and phonon bands, the calculator under test against the
reference.

Like the other figures, each function builds a :class:`matplotlib.figure.Figure` without
``pyplot`` (headless, thread-safe); a table without data gives an axis saying so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..stages.validate import Validation
from .drawing import _message, _new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["VALIDATION_FIGURES", "ev_curves", "parity", "phonon_bands", "save_validation_figures"]

_COLOURS = {"near": "tab:blue", "transfer": "tab:orange"}
_REFERENCE = {"color": "black", "lw": 1.4}
_TEST = {"color": "tab:red", "lw": 1.2, "ls": "--"}


def _diagonal(ax: Axes, values: np.ndarray) -> None:
    finite = values[np.isfinite(values)]
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        pad = 0.05 * (high - low or 1.0)
        ax.plot([low - pad, high + pad], [low - pad, high + pad], color="grey", lw=0.8, zorder=0)


def _check(validation: Validation) -> None:
    if not isinstance(validation, Validation):
        raise TypeError(f"validation must be a Validation (validate(...)), got "
                        f"{type(validation).__name__}")


def parity(validation: Validation, ax: Sequence[Axes] | None = None) -> Figure:
    """Energy and force parity, test against reference, coloured by domain.

    Parameters
    ----------
    validation : Validation
        As :func:`~assyst_nodes.stages.validate.validate` gives it.
    ax : sequence of two matplotlib.axes.Axes, optional
        Where to draw energies (eV/atom) and forces (eV/Å, components). Default: ``None``, a
        new figure with two axes.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Raises
    ------
    TypeError
        ``validation`` is not a :class:`~assyst_nodes.stages.validate.Validation`.
    ValueError
        ``ax`` is not two axes.
    """
    _check(validation)
    if ax is None:
        fig = _new_figure(2)
        axes = [fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)]
    else:
        axes = list(ax)
        if len(axes) != 2:
            raise ValueError(f"ax must be two axes (energies, forces), got {len(axes)}")
        fig = axes[0].get_figure()
    frame = validation.structures[~validation.structures["failed"]]
    rows = validation.errors.set_index("group")
    e_ax, f_ax = axes
    if frame.empty:
        _message(e_ax, "energy parity", "no structures")
        _message(f_ax, "force parity", "no structures")
        return fig
    energies, forces = [], []
    for domain, colour in _COLOURS.items():
        part = frame[frame["domain"] == domain]
        if part.empty:
            continue
        ref, test = part["reference_energy"].to_numpy(float), part["test_energy"].to_numpy(float)
        e_ax.scatter(ref, test, s=14, color=colour, label=domain, alpha=0.8)
        energies.extend([ref, test])
        ref_f = np.concatenate([np.ravel(f) for f in part["reference_forces"]])
        test_f = np.concatenate([np.ravel(f) for f in part["test_forces"]])
        f_ax.scatter(ref_f, test_f, s=5, color=colour, label=domain, alpha=0.5)
        forces.extend([ref_f, test_f])
    _diagonal(e_ax, np.concatenate(energies))
    _diagonal(f_ax, np.concatenate(forces))
    e_ax.set_xlabel("reference energy (eV/atom)")
    e_ax.set_ylabel("test energy (eV/atom)")
    fig.suptitle(f"{validation.calculator} against {validation.reference}", fontsize=10)
    e_ax.set_title(f"energy: RMSE {rows.loc['all', 'energy_rmse']:.3g} meV/atom")
    f_ax.set_xlabel("reference force component (eV/Å)")
    f_ax.set_ylabel("test force component (eV/Å)")
    f_ax.set_title(f"forces: RMSE {rows.loc['all', 'force_rmse']:.3g} meV/Å")
    for axis in axes:
        axis.legend(loc="upper left", fontsize=8)
    return fig


def ev_curves(validation: Validation) -> Figure:
    """E-V curves of every crystal of the suite, reference (solid) and test (dashed).

    Parameters
    ----------
    validation : Validation
        As :func:`~assyst_nodes.stages.validate.validate` gives it.

    Returns
    -------
    matplotlib.figure.Figure
        One axis per crystal (energy in eV/atom against volume in Å^3/atom).

    Raises
    ------
    TypeError
        ``validation`` is not a :class:`~assyst_nodes.stages.validate.Validation`.
    """
    _check(validation)
    curves = validation.ev_curves()
    subjects = list(dict.fromkeys(curves["subject"]))
    if not subjects:
        fig = _new_figure()
        _message(fig.add_subplot(), "E-V curves", "no E-V curves")
        return fig
    ncols = min(5, len(subjects))
    nrows = math.ceil(len(subjects) / ncols)
    fig = _new_figure(ncols, nrows, size=(3.0 * ncols + 0.6, 2.6 * nrows + 0.6))
    for index, subject in enumerate(subjects):
        ax = fig.add_subplot(nrows, ncols, index + 1)
        part = curves[curves["subject"] == subject]
        volume = part["volume"].to_numpy(float)
        ax.plot(volume, part["reference_energy"].to_numpy(float), marker="o", ms=3,
                label=validation.reference, **_REFERENCE)
        ax.plot(volume, part["test_energy"].to_numpy(float), marker="s", ms=3,
                label=validation.calculator, **_TEST)
        ax.set_title(subject, fontsize=9)
        ax.set_xlabel("volume (Å$^3$/atom)", fontsize=8)
        ax.set_ylabel("energy (eV/atom)", fontsize=8)
        ax.tick_params(labelsize=7)
        if index == 0:
            ax.legend(fontsize=7)
    return fig


def _label(name: str) -> str:
    return "Γ" if name in ("G", "Gamma") else name


def phonon_bands(validation: Validation) -> Figure:
    """Phonon bands of each element's ground state, reference (solid) and test (dashed).

    Parameters
    ----------
    validation : Validation
        As :func:`~assyst_nodes.stages.validate.validate` gives it.

    Returns
    -------
    matplotlib.figure.Figure
        One axis per ground state, frequency (THz) along the high-symmetry path (both on the
        reference's path coordinate: the same reduced q-points).

    Raises
    ------
    TypeError
        ``validation`` is not a :class:`~assyst_nodes.stages.validate.Validation`.
    """
    _check(validation)
    if not validation.phonons:
        fig = _new_figure()
        _message(fig.add_subplot(), "phonon bands", "no phonons")
        return fig
    n = len(validation.phonons)
    fig = _new_figure(n)
    for index, (subject, bands) in enumerate(validation.phonons.items()):
        ax = fig.add_subplot(1, n, index + 1)
        x = np.asarray(bands["x"], dtype=float)
        for key, style, name in (("reference", _REFERENCE, validation.reference),
                                 ("test", _TEST, validation.calculator)):
            frequencies = np.asarray(bands[key], dtype=float)
            for band in range(frequencies.shape[1]):
                ax.plot(x, frequencies[:, band], label=name if band == 0 else None, **style)
        for position in bands["special_x"]:
            ax.axvline(position, color="grey", lw=0.6)
        ax.axhline(0.0, color="grey", lw=0.6)
        ax.set_xticks(list(bands["special_x"]), [_label(s) for s in bands["labels"]])
        ax.set_xlim(float(x[0]), float(x[-1]))
        ax.set_ylabel("frequency (THz)")
        ax.set_title(subject)
        ax.legend(fontsize=8)
    return fig


VALIDATION_FIGURES = {"parity": parity, "ev_curves": ev_curves, "phonon_bands": phonon_bands}
"""The figures :func:`save_validation_figures` writes, by file stem."""


def save_validation_figures(validation: Validation, folder: str | Path, dpi: int = 100
                            ) -> list[Path]:
    """Write every figure of :data:`VALIDATION_FIGURES` as ``<folder>/<name>.png``.

    Parameters
    ----------
    validation : Validation
        As :func:`~assyst_nodes.stages.validate.validate` gives it.
    folder : str or pathlib.Path
        Where to write; created (with its parents) if missing. Existing files are overwritten.
    dpi : int, default 100
        Resolution of the PNG files (dots per inch).

    Returns
    -------
    list of pathlib.Path
        The files written: ``parity.png``, ``ev_curves.png``, ``phonon_bands.png``.

    Raises
    ------
    TypeError
        ``validation`` is not a :class:`~assyst_nodes.stages.validate.Validation`.
    """
    _check(validation)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in VALIDATION_FIGURES.items():
        path = folder / f"{name}.png"
        draw(validation).savefig(path, dpi=dpi)
        written.append(path)
    return written
