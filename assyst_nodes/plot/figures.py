"""The figures of a training set (:data:`FIGURES`), an overview of all, and
:func:`save_figures`."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from ase import Atoms

from ..reports import StageReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
from .drawing import (
    _concentration,
    _empty,
    _histogram,
    _message,
    _new_figure,
    _required,
    _scatter,
    _single,
    _spacegroups,
)
from .features import _table, features

__all__ = [
    "FIGURES",
    "concentration_histogram",
    "energy_distance",
    "energy_histogram",
    "energy_volume",
    "lattice_angles",
    "lattice_parameters",
    "min_distance_histogram",
    "natoms_histogram",
    "overview",
    "save_figures",
    "spacegroup_distribution",
    "stage_counts",
    "volume_histogram",
]


def _histogram_figure(
    data: Iterable[Atoms] | pd.DataFrame,
    by: str | None,
    column: str,
    title: str,
    caller: str,
    noun: str,
    integer: bool = False,
) -> Figure:
    """One histogram of ``column`` titled ``title`` (the body of the ``*_histogram`` figures)."""
    frame = _table(data, _required([column], by), caller)
    if frame.empty:
        return _empty(title)
    return _single(title, lambda ax: _histogram(ax, frame, column, by, noun, integer=integer))


def volume_histogram(data: Iterable[Atoms] | pd.DataFrame, by: str | None = None) -> Figure:
    """Histogram of the volume per atom (Å³/atom), stacked per value of column ``by``.

    Structures without a finite value are left out and counted in a corner note; without any
    finite value the axis says so ("no volumes").

    Parameters
    ----------
    data : iterable of ase.Atoms or pandas.DataFrame
        The structures (a generator is consumed once), or a table as made by :func:`features`
        (the project layer's structure table has the same column names).
    by : str or None, optional
        Column to group by (e.g. ``"step"``, ``"formula"``; with a DataFrame it must have it):
        one colour per value, at most :data:`MAX_GROUPS` groups, the rest merged into
        "other". Default: ``None`` (not grouped).

    Returns
    -------
    matplotlib.figure.Figure
        A new figure, not registered with pyplot; one saying "no structures" for empty
        input.

    Raises
    ------
    ValueError
        If ``data`` is a DataFrame without a column the figure needs, naming it:
        ``volume_per_atom``, and ``by`` if given.
    TypeError
        If ``data`` is a single :class:`ase.Atoms` or yields something else than
        :class:`ase.Atoms`.
    """
    return _histogram_figure(
        data, by, "volume_per_atom", "Volume per atom", "volume_histogram", "volume"
    )


def energy_histogram(data: Iterable[Atoms] | pd.DataFrame, by: str | None = None) -> Figure:
    """Histogram of the energy per atom (eV/atom); says "no energies" if none was calculated.

    Stacked per group of ``by``. Energies are read from ``atoms.calc.results``, never
    calculated; structures without one are left out and counted in a corner note.

    Parameters
    ----------
    data : iterable of ase.Atoms or pandas.DataFrame
        The structures (a generator is consumed once), or a table as made by :func:`features`
        (the project layer's structure table has the same column names).
    by : str or None, optional
        Column to group by (e.g. ``"step"``, ``"formula"``; with a DataFrame it must have it):
        one colour per value, at most :data:`MAX_GROUPS` groups, the rest merged into
        "other". Default: ``None`` (not grouped).

    Returns
    -------
    matplotlib.figure.Figure
        A new figure, not registered with pyplot; one saying "no structures" for empty
        input.

    Raises
    ------
    ValueError
        If ``data`` is a DataFrame without a column the figure needs, naming it:
        ``energy_per_atom``, and ``by`` if given.
    TypeError
        If ``data`` is a single :class:`ase.Atoms` or yields something else than
        :class:`ase.Atoms`.
    """
    return _histogram_figure(
        data, by, "energy_per_atom", "Energy per atom", "energy_histogram", "energy"
    )


def min_distance_histogram(data: Iterable[Atoms] | pd.DataFrame, by: str | None = None) -> Figure:
    """Histogram of each structure's shortest interatomic distance (Å).

    The distance is taken over periodic images (own images included); stacked per group
    of ``by``. Structures without a finite value (none within 30 Å) are left out and
    counted in a corner note.

    Parameters
    ----------
    data : iterable of ase.Atoms or pandas.DataFrame
        The structures (a generator is consumed once), or a table as made by :func:`features`
        (the project layer's structure table has the same column names).
    by : str or None, optional
        Column to group by (e.g. ``"step"``, ``"formula"``; with a DataFrame it must have it):
        one colour per value, at most :data:`MAX_GROUPS` groups, the rest merged into
        "other". Default: ``None`` (not grouped).

    Returns
    -------
    matplotlib.figure.Figure
        A new figure, not registered with pyplot; one saying "no structures" for empty
        input.

    Raises
    ------
    ValueError
        If ``data`` is a DataFrame without a column the figure needs, naming it: ``min_distance``,
        and ``by`` if given.
    TypeError
        If ``data`` is a single :class:`ase.Atoms` or yields something else than
        :class:`ase.Atoms`.
    """
    return _histogram_figure(
        data,
        by,
        "min_distance",
        "Shortest interatomic distance",
        "min_distance_histogram",
        "distance",
    )


def natoms_histogram(data: Iterable[Atoms] | pd.DataFrame, by: str | None = None) -> Figure:
    """Histogram of the number of atoms per structure.

    Stacked per group of ``by``; unit bins for a range of up to 60 sizes.

    Parameters
    ----------
    data : iterable of ase.Atoms or pandas.DataFrame
        The structures (a generator is consumed once), or a table as made by :func:`features`
        (the project layer's structure table has the same column names).
    by : str or None, optional
        Column to group by (e.g. ``"step"``, ``"formula"``; with a DataFrame it must have it):
        one colour per value, at most :data:`MAX_GROUPS` groups, the rest merged into
        "other". Default: ``None`` (not grouped).

    Returns
    -------
    matplotlib.figure.Figure
        A new figure, not registered with pyplot; one saying "no structures" for empty
        input.

    Raises
    ------
    ValueError
        If ``data`` is a DataFrame without a column the figure needs, naming it: ``natoms``, and
        ``by`` if given.
    TypeError
        If ``data`` is a single :class:`ase.Atoms` or yields something else than
        :class:`ase.Atoms`.
    """
    return _histogram_figure(
        data, by, "natoms", "Atoms per structure", "natoms_histogram", "size", integer=True
    )


def concentration_histogram(data: Iterable[Atoms] | pd.DataFrame) -> Figure:
    """Histograms of the atomic fraction of each element, overlaid on one axis.

    The fractions come from the ``x_<El>`` columns of the table, else from its
    ``formula`` column. Not grouped.

    Parameters
    ----------
    data : iterable of ase.Atoms or pandas.DataFrame
        The structures (a generator is consumed once), or a table as made by :func:`features`
        (the project layer's structure table has the same column names).

    Returns
    -------
    matplotlib.figure.Figure
        A new figure, not registered with pyplot; one saying "no structures" for empty
        input.

    Raises
    ------
    ValueError
        If ``data`` is a DataFrame with neither ``x_<El>`` columns nor a ``formula`` column.
    TypeError
        If ``data`` is a single :class:`ase.Atoms` or yields something else than
        :class:`ase.Atoms`.
    """
    title = "Concentrations"
    frame = data if isinstance(data, pd.DataFrame) else features(data, min_distance=False)
    if frame.empty:
        return _empty(title)
    return _single(title, lambda ax: _concentration(ax, frame, "concentration_histogram"))


def energy_volume(data: Iterable[Atoms] | pd.DataFrame, by: str | None = None) -> Figure:
    """Energy per atom (eV/atom) against volume per atom (Å³/atom).

    A scatter coloured by ``by`` up to :data:`SCATTER_LIMIT` points, a hexbin of counts
    above (then ``by`` is not shown). Only structures with both values finite are drawn.

    Parameters
    ----------
    data : iterable of ase.Atoms or pandas.DataFrame
        The structures (a generator is consumed once), or a table as made by :func:`features`
        (the project layer's structure table has the same column names).
    by : str or None, optional
        Column to group by (e.g. ``"step"``, ``"formula"``; with a DataFrame it must have it):
        one colour per value, at most :data:`MAX_GROUPS` groups, the rest merged into
        "other". Default: ``None`` (not grouped).

    Returns
    -------
    matplotlib.figure.Figure
        A new figure, not registered with pyplot; one saying "no structures" for empty
        input.

    Raises
    ------
    ValueError
        If ``data`` is a DataFrame without a column the figure needs, naming it:
        ``volume_per_atom``, ``energy_per_atom``, and ``by`` if given.
    TypeError
        If ``data`` is a single :class:`ase.Atoms` or yields something else than
        :class:`ase.Atoms`.
    """
    title = "Energy vs volume"
    frame = _table(data, _required(["volume_per_atom", "energy_per_atom"], by), "energy_volume")
    if frame.empty:
        return _empty(title)
    return _single(title, lambda ax: _scatter(ax, frame, "volume_per_atom", "energy_per_atom", by))


def energy_distance(data: Iterable[Atoms] | pd.DataFrame, by: str | None = None) -> Figure:
    """Energy per atom (eV/atom) against the shortest interatomic distance (Å).

    A scatter (coloured by ``by``) up to :data:`SCATTER_LIMIT` points, a hexbin of counts
    above (then ``by`` is not shown). Only structures with both values finite are drawn.

    Parameters
    ----------
    data : iterable of ase.Atoms or pandas.DataFrame
        The structures (a generator is consumed once), or a table as made by :func:`features`
        (the project layer's structure table has the same column names).
    by : str or None, optional
        Column to group by (e.g. ``"step"``, ``"formula"``; with a DataFrame it must have it):
        one colour per value, at most :data:`MAX_GROUPS` groups, the rest merged into
        "other". Default: ``None`` (not grouped).

    Returns
    -------
    matplotlib.figure.Figure
        A new figure, not registered with pyplot; one saying "no structures" for empty
        input.

    Raises
    ------
    ValueError
        If ``data`` is a DataFrame without a column the figure needs, naming it: ``min_distance``,
        ``energy_per_atom``, and ``by`` if given.
    TypeError
        If ``data`` is a single :class:`ase.Atoms` or yields something else than
        :class:`ase.Atoms`.
    """
    title = "Energy vs shortest distance"
    frame = _table(data, _required(["min_distance", "energy_per_atom"], by), "energy_distance")
    if frame.empty:
        return _empty(title)
    return _single(title, lambda ax: _scatter(ax, frame, "min_distance", "energy_per_atom", by))


def _three(
    data: Iterable[Atoms] | pd.DataFrame, columns: Sequence[str], title: str, figure: str,
    by: str | None,
) -> Figure:  # fmt: skip
    frame = _table(data, _required(columns, by), figure)
    if frame.empty:
        return _empty(title)
    fig = _new_figure(ncols=3)
    for ax, column in zip(fig.subplots(1, 3), columns, strict=True):
        _histogram(ax, frame, column, by, title=column)
    fig.suptitle(title)
    return fig


def lattice_parameters(data: Iterable[Atoms] | pd.DataFrame, by: str | None = None) -> Figure:
    """Histograms of the cell lengths a, b, c (Å), one axis each.

    Each stacked per group of ``by``.

    Parameters
    ----------
    data : iterable of ase.Atoms or pandas.DataFrame
        The structures (a generator is consumed once), or a table as made by :func:`features`
        (the project layer's structure table has the same column names).
    by : str or None, optional
        Column to group by (e.g. ``"step"``, ``"formula"``; with a DataFrame it must have it):
        one colour per value, at most :data:`MAX_GROUPS` groups, the rest merged into
        "other". Default: ``None`` (not grouped).

    Returns
    -------
    matplotlib.figure.Figure
        A new figure, not registered with pyplot; one saying "no structures" for empty
        input.

    Raises
    ------
    ValueError
        If ``data`` is a DataFrame without a column the figure needs, naming it: ``a``, ``b``,
        ``c``, and ``by`` if given.
    TypeError
        If ``data`` is a single :class:`ase.Atoms` or yields something else than
        :class:`ase.Atoms`.
    """
    return _three(data, ("a", "b", "c"), "Cell lengths", "lattice_parameters", by)


def lattice_angles(data: Iterable[Atoms] | pd.DataFrame, by: str | None = None) -> Figure:
    """Histograms of the cell angles alpha, beta, gamma (degrees), one axis each.

    Each stacked per group of ``by``.

    Parameters
    ----------
    data : iterable of ase.Atoms or pandas.DataFrame
        The structures (a generator is consumed once), or a table as made by :func:`features`
        (the project layer's structure table has the same column names).
    by : str or None, optional
        Column to group by (e.g. ``"step"``, ``"formula"``; with a DataFrame it must have it):
        one colour per value, at most :data:`MAX_GROUPS` groups, the rest merged into
        "other". Default: ``None`` (not grouped).

    Returns
    -------
    matplotlib.figure.Figure
        A new figure, not registered with pyplot; one saying "no structures" for empty
        input.

    Raises
    ------
    ValueError
        If ``data`` is a DataFrame without a column the figure needs, naming it: ``alpha``,
        ``beta``, ``gamma``, and ``by`` if given.
    TypeError
        If ``data`` is a single :class:`ase.Atoms` or yields something else than
        :class:`ase.Atoms`.
    """
    return _three(data, ("alpha", "beta", "gamma"), "Cell angles", "lattice_angles", by)


def spacegroup_distribution(data: Iterable[Atoms] | pd.DataFrame, by: str | None = None) -> Figure:
    """Bar chart of the number of structures per space group (``info["spacegroup"]``).

    Stacked per group of ``by``: one labelled bar per space group up to 30 of them, else
    a histogram over them. Structures without a space group are counted in a corner
    note.

    Parameters
    ----------
    data : iterable of ase.Atoms or pandas.DataFrame
        The structures (a generator is consumed once), or a table as made by :func:`features`
        (the project layer's structure table has the same column names).
    by : str or None, optional
        Column to group by (e.g. ``"step"``, ``"formula"``; with a DataFrame it must have it):
        one colour per value, at most :data:`MAX_GROUPS` groups, the rest merged into
        "other". Default: ``None`` (not grouped).

    Returns
    -------
    matplotlib.figure.Figure
        A new figure, not registered with pyplot; one saying "no structures" for empty
        input.

    Raises
    ------
    ValueError
        If ``data`` is a DataFrame without a column the figure needs, naming it: ``spacegroup``, and
        ``by`` if given.
    TypeError
        If ``data`` is a single :class:`ase.Atoms` or yields something else than
        :class:`ase.Atoms`.
    """
    title = "Space groups"
    frame = _table(data, _required(["spacegroup"], by), "spacegroup_distribution")
    if frame.empty:
        return _empty(title)
    return _single(title, lambda ax: _spacegroups(ax, frame, by))


def stage_counts(reports: Iterable[StageReport]) -> Figure:
    """Structures per stage: a bar of ``n_in`` and one of ``n_out`` with the drops stacked on it.

    One colour per drop reason (for a filter, out + dropped = in); the stages are
    labelled by their name (``stage <i>`` where they have none).

    Parameters
    ----------
    reports : iterable of StageReport
        The stages' reports (:class:`~assyst_nodes.reports.StageReport`), in pipeline order.

    Returns
    -------
    matplotlib.figure.Figure
        A new figure, not registered with pyplot; one saying "no stages" without
        reports.

    Raises
    ------
    TypeError
        If an item of ``reports`` is not a :class:`~assyst_nodes.reports.StageReport`.
    """
    title = "Structures per stage"
    reports = list(reports)
    for position, report in enumerate(reports):
        if not isinstance(report, StageReport):
            raise TypeError(f"report {position} is a {type(report).__name__}, expected StageReport")
    if not reports:
        return _empty(title, "no stages")
    fig = _new_figure(size=(max(5.0, 1.3 * len(reports) + 2.5), 4.5))
    ax = fig.add_subplot()
    x = np.arange(len(reports))
    width = 0.38
    n_in = np.array([r.n_in for r in reports], dtype=float)
    n_out = np.array([r.n_out for r in reports], dtype=float)
    bars = ax.bar(x - width / 2, n_in, width, color="0.65", label="in")
    ax.bar_label(bars, fmt="%d", fontsize="small")
    bars = ax.bar(x + width / 2, n_out, width, color="C0", label="out")
    ax.bar_label(bars, fmt="%d", fontsize="small", label_type="center", color="white")
    reasons = sorted({reason for r in reports for reason in r.dropped})
    bottom = n_out.copy()
    for index, reason in enumerate(reasons):
        counts = np.array([r.dropped.get(reason, 0) for r in reports], dtype=float)
        ax.bar(
            x + width / 2, counts, width, bottom=bottom, color=f"C{(index + 1) % 10}",
            label=f"dropped: {reason}", hatch="//", alpha=0.85,
        )  # fmt: skip
        bottom += counts
    labels = [r.stage or f"stage {i}" for i, r in enumerate(reports)]
    tilted = len(reports) > 4
    ax.set_xticks(x, labels, rotation=30 if tilted else 0, ha="right" if tilted else "center")
    ax.set_ylabel("structures")
    ax.set_xlabel("stage")
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.margins(y=0.08)
    return fig


def overview(data: Iterable[Atoms] | pd.DataFrame, by: str | None = None) -> Figure:
    """The main figures on one: eight panels in two rows.

    Histograms of volume (Å³/atom), energy (eV/atom), shortest distance (Å), atoms per
    structure and concentrations, energy vs volume, energy vs shortest distance, space
    groups. Needs ``volume_per_atom``, ``energy_per_atom`` and ``natoms``; a panel whose
    column a DataFrame lacks says so instead. Structures are measured with
    :func:`features` (distances included).

    Parameters
    ----------
    data : iterable of ase.Atoms or pandas.DataFrame
        The structures (a generator is consumed once), or a table as made by :func:`features`
        (the project layer's structure table has the same column names).
    by : str or None, optional
        Column to group by (e.g. ``"step"``, ``"formula"``; with a DataFrame it must have it):
        one colour per value, at most :data:`MAX_GROUPS` groups, the rest merged into
        "other". Only the first panel shows the legend. Default: ``None`` (not grouped).

    Returns
    -------
    matplotlib.figure.Figure
        A new figure, not registered with pyplot; one saying "no structures" for empty
        input. The title gives the number of structures.

    Raises
    ------
    ValueError
        If ``data`` is a DataFrame without a column the figure needs, naming it:
        ``volume_per_atom``, ``energy_per_atom``, ``natoms``, and ``by`` if given.
    TypeError
        If ``data`` is a single :class:`ase.Atoms` or yields something else than
        :class:`ase.Atoms`.
    """
    title = "Training set overview"
    frame = _table(  # from structures, measure distances too: two panels show them
        data if isinstance(data, pd.DataFrame) else features(data),
        _required(["volume_per_atom", "energy_per_atom", "natoms"], by),
        "overview",
    )
    if frame.empty:
        return _empty(title)
    fig = _new_figure(ncols=4, nrows=2, size=(18.0, 8.0))
    axes = fig.subplots(2, 4).ravel()
    n = len(frame)
    has = set(frame.columns)

    def missing(ax: Axes, name: str, column: str) -> None:
        _message(ax, name, f"no {column!r} column\n(call features(structures))")

    _histogram(axes[0], frame, "volume_per_atom", by, "volume")
    _histogram(axes[1], frame, "energy_per_atom", by, "energy")
    if "min_distance" in has:
        _histogram(axes[2], frame, "min_distance", by, "shortest distance")
        _scatter(axes[5], frame, "min_distance", "energy_per_atom", by)
    else:
        missing(axes[2], "shortest distance", "min_distance")
        missing(axes[5], "energy vs shortest distance", "min_distance")
    _histogram(axes[3], frame, "natoms", by, "size", integer=True)
    _scatter(axes[4], frame, "volume_per_atom", "energy_per_atom", by)
    try:
        _concentration(axes[6], frame, "overview")
    except ValueError:
        missing(axes[6], "concentrations", "x_<El>")
    if "spacegroup" in has:
        _spacegroups(axes[7], frame, by)
    else:
        missing(axes[7], "space groups", "spacegroup")
    for ax in axes[1:]:  # one legend (the first panel's) says what the colours are
        legend = ax.get_legend()
        if legend is not None and by is not None and legend.get_title().get_text() == by:
            legend.remove()
    fig.suptitle(f"{title}: {n} structure{'s' if n != 1 else ''}")
    return fig


FIGURES: dict[str, Any] = {
    "overview": overview,
    "volume_histogram": volume_histogram,
    "energy_histogram": energy_histogram,
    "min_distance_histogram": min_distance_histogram,
    "natoms_histogram": natoms_histogram,
    "concentration_histogram": concentration_histogram,
    "energy_volume": energy_volume,
    "energy_distance": energy_distance,
    "lattice_parameters": lattice_parameters,
    "lattice_angles": lattice_angles,
    "spacegroup_distribution": spacegroup_distribution,
}
"""The figures of a structure set, by the file name :func:`save_figures` gives them."""


def save_figures(
    data: Iterable[Atoms] | pd.DataFrame,
    folder: str | Path,
    reports: Iterable[StageReport] | None = None,
    by: str | None = "step",
    dpi: int = 100,
) -> list[Path]:
    """Write every figure of :data:`FIGURES` and, given ``reports``, the stage counts as PNG files.

    Structures are measured once (:func:`features`) for all figures. Each figure is
    written as ``<folder>/<name>.png``, ``name`` its key in :data:`FIGURES`, and
    ``stage_counts.png`` (:func:`stage_counts`) given ``reports``.

    Parameters
    ----------
    data : iterable of ase.Atoms or pandas.DataFrame
        The structures (a generator is consumed once), or a table as made by :func:`features`
        (the project layer's structure table has the same column names).
    folder : str or pathlib.Path
        Where to write; created (with its parents) if missing. Existing files are overwritten.
    reports : iterable of StageReport or None, optional
        Stage reports (:class:`~assyst_nodes.reports.StageReport`) for ``stage_counts.png``.
        Default: ``None`` (no such figure).
    by : str or None, default "step"
        Column by which the figures that take ``by`` are grouped (as in :func:`overview`);
        ``None``, or a column the table lacks: not grouped.
    dpi : int, default 100
        Resolution of the PNG files (dots per inch).

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of :data:`FIGURES`, then ``stage_counts.png``.

    Raises
    ------
    ValueError
        If ``data`` is a DataFrame without a column a figure needs (see the figure functions).
    TypeError
        If ``data`` is a single :class:`ase.Atoms` or yields something else than
        :class:`ase.Atoms`, or an item of ``reports`` is not a
        :class:`~assyst_nodes.reports.StageReport`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frame = data if isinstance(data, pd.DataFrame) else features(data)
    if by is not None and by not in frame.columns:
        by = None
    figures: dict[str, Figure] = {}
    for name, draw in FIGURES.items():
        grouped = by is not None and "by" in inspect.signature(draw).parameters
        figures[name] = draw(frame, by=by) if grouped else draw(frame)
    if reports is not None:
        figures["stage_counts"] = stage_counts(reports)
    written = []
    for name, fig in figures.items():
        path = folder / f"{name}.png"
        fig.savefig(path, dpi=dpi)
        written.append(path)
    return written
