"""Figures of a training set: distributions of volume, energy, distances, sizes, cells and more.

Core layer: needs only matplotlib, numpy, pandas and ase. Every figure function builds a
:class:`matplotlib.figure.Figure` directly (no ``pyplot`` and no global state), so it works
headless and from threads; save it with ``fig.savefig("x.png")`` or show it in a notebook.

``data`` is an iterable of :class:`ase.Atoms` (a generator is consumed once) or a
:class:`pandas.DataFrame` as made by :func:`features` (the project layer's structure table has
the same column names). A DataFrame missing a column a figure needs raises ``ValueError``
naming it. Empty input gives a figure saying "no structures"; a quantity without any finite
value (e.g. no energies because nothing was calculated) gives an axis saying so.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from ase import Atoms
from ase.formula import Formula

from .reports import StageReport
from .stages.filter.geometry import _pairs_within

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "FIGURES",
    "concentration_histogram",
    "energy_distance",
    "energy_histogram",
    "energy_volume",
    "features",
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

#: Columns :func:`features` always returns, in order; ``x_<El>`` concentration columns follow.
COLUMNS = (
    "uuid",
    "step",
    "formula",
    "natoms",
    "volume_per_atom",
    "energy_per_atom",
    "max_force",
    "min_distance",
    "a",
    "b",
    "c",
    "alpha",
    "beta",
    "gamma",
    "spacegroup",
)

#: Up to this many points a scatter is drawn, above it a hexbin.
SCATTER_LIMIT = 5000
#: At most this many groups are drawn for ``by``; the rest are merged into "other".
MAX_GROUPS = 10

_FIRST_CUTOFF = 3.0  # Å
_LAST_CUTOFF = 30.0  # Å

_LABELS = {
    "volume_per_atom": "volume (Å³/atom)",
    "energy_per_atom": "energy (eV/atom)",
    "min_distance": "shortest distance (Å)",
    "natoms": "atoms per structure",
    "max_force": "largest force (eV/Å)",
    "a": "a (Å)",
    "b": "b (Å)",
    "c": "c (Å)",
    "alpha": "α (degrees)",
    "beta": "β (degrees)",
    "gamma": "γ (degrees)",
}
_NOUNS = {
    "volume_per_atom": "volumes",
    "energy_per_atom": "energies",
    "min_distance": "distances",
    "natoms": "structures",
    "max_force": "forces",
    "a": "cells",
    "b": "cells",
    "c": "cells",
    "alpha": "cells",
    "beta": "cells",
    "gamma": "cells",
}


# --------------------------------------------------------------------------------------------
# features


def _min_distance(structure: Atoms) -> float:
    """Shortest interatomic distance (Å) over periodic images, own images included.

    The cutoff starts at 3 Å and doubles until a pair is found; NaN when none is within 30 Å
    (or the cell is degenerate)."""
    if len(structure) == 0:
        return math.nan
    cutoff = _FIRST_CUTOFF
    while True:
        try:
            _, _, d = _pairs_within(structure, cutoff)
        except ValueError:
            return math.nan
        if len(d):
            return float(d.min())
        if cutoff >= _LAST_CUTOFF:
            return math.nan
        cutoff = min(2.0 * cutoff, _LAST_CUTOFF)


def _row(structure: Atoms, min_distance: bool) -> dict[str, Any]:
    """One row of :func:`features` (without the concentrations) and the element counts."""
    natoms = len(structure)
    results: dict[str, Any] = {}
    calc = structure.calc
    if calc is not None:
        results = getattr(calc, "results", None) or {}
    energy = results.get("energy")
    forces = results.get("forces")
    energy_per_atom = float(energy) / natoms if energy is not None and natoms else math.nan
    max_force = math.nan
    if forces is not None and natoms:
        forces = np.asarray(forces, dtype=float).reshape(-1, 3)
        if len(forces):
            max_force = float(np.sqrt((forces**2).sum(axis=1)).max())
    volume = abs(float(np.linalg.det(structure.cell.array)))
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b, c, alpha, beta, gamma = (float(v) for v in structure.cell.cellpar())
    info = structure.info
    return {
        "uuid": info.get("uuid"),
        "step": info.get("step"),
        "formula": structure.get_chemical_formula(),
        "natoms": natoms,
        "volume_per_atom": volume / natoms if natoms else math.nan,
        "energy_per_atom": energy_per_atom,
        "max_force": max_force,
        "min_distance": _min_distance(structure) if min_distance else math.nan,
        "a": a,
        "b": b,
        "c": c,
        "alpha": alpha,
        "beta": beta,
        "gamma": gamma,
        "spacegroup": info.get("spacegroup", math.nan),
    }


def features(structures: Iterable[Atoms] | pd.DataFrame, min_distance: bool = True) -> pd.DataFrame:
    """One row per structure: the quantities the figures show.

    ``atoms.calc.results`` is read for energies and forces; nothing is ever calculated.

    Parameters
    ----------
    structures : iterable of ase.Atoms or pandas.DataFrame
        The structures (a generator is consumed once); a DataFrame is returned unchanged.
    min_distance : bool, default True
        Compute the ``min_distance`` column, the slowest one; ``False``: NaN there.

    Returns
    -------
    pandas.DataFrame
        Columns (:data:`COLUMNS`, in order): ``uuid``, ``step`` (from ``atoms.info``,
        ``None`` if absent), ``formula``, ``natoms``, ``volume_per_atom`` (Å³/atom),
        ``energy_per_atom`` (eV/atom, NaN without calculator results), ``max_force`` (largest
        per-atom force norm, eV/Å, NaN if absent), ``min_distance`` (shortest interatomic
        distance over periodic images, Å; NaN if none within 30 Å, or not computed with
        ``min_distance=False``), ``a``, ``b``, ``c`` (Å), ``alpha``, ``beta``, ``gamma``
        (degrees), ``spacegroup`` (``info["spacegroup"]`` or NaN); then ``x_<El>``, the atomic
        fraction of each element (sorted by symbol).

    Raises
    ------
    TypeError
        If ``structures`` is a single :class:`ase.Atoms` (wrap it in a list) or yields
        something else than :class:`ase.Atoms`.
    """
    if isinstance(structures, pd.DataFrame):
        return structures
    if isinstance(structures, Atoms):
        raise TypeError("expected an iterable of ase.Atoms, got a single Atoms; wrap it in a list")
    rows: list[dict[str, Any]] = []
    counts: list[dict[str, int]] = []
    elements: set[str] = set()
    for position, structure in enumerate(structures):
        if not isinstance(structure, Atoms):
            raise TypeError(
                f"structure {position} is a {type(structure).__name__}, expected ase.Atoms"
            )
        rows.append(_row(structure, min_distance))
        symbols, n = np.unique(structure.get_chemical_symbols(), return_counts=True)
        count = dict(zip(symbols.tolist(), n.tolist(), strict=True))
        counts.append(count)
        elements.update(count)
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["natoms"] = frame["natoms"].astype(int)
    for column in COLUMNS[4:14]:
        frame[column] = frame[column].astype(float)
    for element in sorted(elements):
        frame[f"x_{element}"] = np.array(
            [c.get(element, 0) / max(r["natoms"], 1) for c, r in zip(counts, rows, strict=True)],
            dtype=float,
        )
    return frame


def _table(
    data: Iterable[Atoms] | pd.DataFrame, required: Sequence[str], figure: str
) -> pd.DataFrame:
    """``data`` as a :func:`features` table; ``ValueError`` naming a missing required column."""
    if isinstance(data, pd.DataFrame):
        for column in required:
            if column not in data.columns:
                raise ValueError(
                    f"{figure}: the DataFrame has no column {column!r}; call "
                    f"features(structures) to get a table with it"
                )
        return data
    return features(data, min_distance="min_distance" in required)


def _concentrations(frame: pd.DataFrame, figure: str) -> pd.DataFrame:
    """The ``x_<El>`` columns of ``frame``, else computed from its ``formula`` column."""
    columns = [c for c in frame.columns if isinstance(c, str) and c.startswith("x_")]
    if columns:
        return frame[columns]
    if "formula" not in frame.columns:
        raise ValueError(
            f"{figure}: the DataFrame has no 'x_<El>' concentration columns and no 'formula' "
            f"column; call features(structures) to get a table with them"
        )
    parsed: dict[str, dict[str, int]] = {}
    for formula in pd.unique(frame["formula"].dropna()):
        parsed[formula] = Formula(str(formula)).count()
    elements = sorted({e for count in parsed.values() for e in count})
    table = {}
    for element in elements:
        fractions = {
            f: count.get(element, 0) / max(sum(count.values()), 1) for f, count in parsed.items()
        }
        table[f"x_{element}"] = frame["formula"].map(fractions).astype(float)
    return pd.DataFrame(table, index=frame.index)


# --------------------------------------------------------------------------------------------
# drawing helpers


def _values(frame: pd.DataFrame, column: str) -> np.ndarray:
    """``frame[column]`` as a float array, missing values NaN."""
    series = pd.to_numeric(frame[column], errors="coerce")
    return series.to_numpy(dtype=float, na_value=np.nan)


def _new_figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] | None = None) -> Figure:
    """A figure with constrained layout, not registered with pyplot."""
    from matplotlib.figure import Figure

    if size is None:
        size = (4.2 * ncols + 1.0, 3.6 * nrows + 0.4)
    return Figure(figsize=size, layout="constrained")


def _message(ax: Axes, title: str, text: str) -> None:
    """Turn ``ax`` into a titled note saying ``text``."""
    ax.set_title(title)
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])


def _empty(title: str, text: str = "no structures") -> Figure:
    """A one-axis figure saying ``text``."""
    fig = _new_figure()
    _message(fig.add_subplot(), title, text)
    return fig


def _groups(frame: pd.DataFrame, by: str | None) -> list[tuple[str, np.ndarray]]:
    """(label, boolean mask) per value of column ``by``, largest first, at most
    :data:`MAX_GROUPS` (the rest merged into "other"); one unlabelled group without ``by``."""
    n = len(frame)
    if by is None:
        return [("", np.ones(n, dtype=bool))]
    keys = frame[by].astype(object).where(frame[by].notna(), "(none)").astype(str)
    counts = keys.value_counts()
    labels = counts.index.tolist()
    if len(labels) > MAX_GROUPS:
        kept = labels[: MAX_GROUPS - 1]
        keys = keys.where(keys.isin(kept), "other")
        labels = [*kept, "other"]
    values = keys.to_numpy()
    return [(_short(label, labels[:i]), values == label) for i, label in enumerate(labels)]


LABEL_WIDTH = 32
"""Group labels longer than this (e.g. a perturbation's step) are cut to it in legends."""


def _short(label: str, before: Sequence[str]) -> str:
    """``label`` cut to :data:`LABEL_WIDTH` characters, kept distinct from the cut ``before``."""
    if len(label) <= LABEL_WIDTH:
        return label
    cut = label[: LABEL_WIDTH - 1] + "…"
    taken = {other[: LABEL_WIDTH - 1] for other in before if len(other) > LABEL_WIDTH}
    return cut if label[: LABEL_WIDTH - 1] not in taken else f"{cut} #{len(before) + 1}"


def _bins(values: np.ndarray, integer: bool = False) -> np.ndarray | int:
    """Histogram bin edges: unit bins for small integer ranges, else ~sqrt(n) bins (5..60)."""
    low, high = float(values.min()), float(values.max())
    if integer and high - low <= 60:
        return np.arange(low - 0.5, high + 1.5)
    n = int(np.clip(math.sqrt(len(values)), 5, 60))
    if high - low <= 1e-9 * max(1.0, abs(low)):
        half = 0.5 if low == 0 else abs(low) * 0.01
        return np.linspace(low - half, high + half, n + 1)
    return np.linspace(low, high, n + 1)


def _stacked(
    ax: Axes,
    data: Sequence[np.ndarray],
    edges: np.ndarray | int,
    groups: Sequence[tuple[str, np.ndarray]],
) -> None:
    """Filled histograms of ``data`` (one array per group) stacked on each other; one artist
    per group (``ax.stairs``), so 100 000 values or 230 bins stay cheap."""
    bottom: np.ndarray | None = None
    for index, (values, (label, _)) in enumerate(zip(data, groups, strict=True)):
        counts, edges = np.histogram(values, bins=edges)
        base = np.zeros(len(counts)) if bottom is None else bottom
        top = base + counts
        ax.stairs(top, edges, baseline=base, fill=True, color=f"C{index % 10}", label=label or None)
        bottom = top
    ax.set_ylim(bottom=0)


def _histogram(
    ax: Axes,
    frame: pd.DataFrame,
    column: str,
    by: str | None = None,
    title: str | None = None,
    integer: bool = False,
) -> None:
    """Histogram of the finite values of ``column`` on ``ax``, stacked per group of ``by``."""
    title = title or _LABELS[column].split(" (")[0]
    values = _values(frame, column)
    finite = np.isfinite(values)
    if not finite.any():
        _message(ax, title, f"no {_NOUNS.get(column, column)}")
        ax.set_xlabel(_LABELS.get(column, column))
        return
    edges = _bins(values[finite], integer=integer)
    groups = _groups(frame, by)
    _stacked(ax, [values[mask & finite] for _, mask in groups], edges, groups)
    if by is not None:
        ax.legend(fontsize="small", title=by)
    ax.set_title(title)
    ax.set_xlabel(_LABELS.get(column, column))
    ax.set_ylabel("structures")
    missing = int((~finite).sum())
    if missing:
        ax.text(
            0.98, 0.98, f"{missing} without a value", ha="right", va="top",
            transform=ax.transAxes, fontsize="small",
        )  # fmt: skip


def _scatter(
    ax: Axes,
    frame: pd.DataFrame,
    x: str,
    y: str,
    by: str | None = None,
    title: str | None = None,
) -> None:
    """Scatter of ``y`` against ``x`` (finite pairs only) up to :data:`SCATTER_LIMIT` points,
    a hexbin above (then ``by`` is not shown)."""
    title = title or f"{_LABELS[y].split(' (')[0]} vs {_LABELS[x].split(' (')[0]}"
    xs, ys = _values(frame, x), _values(frame, y)
    ax.set_xlabel(_LABELS.get(x, x))
    ax.set_ylabel(_LABELS.get(y, y))
    for column, values in ((y, ys), (x, xs)):
        if not np.isfinite(values).any():
            _message(ax, title, f"no {_NOUNS.get(column, column)}")
            return
    finite = np.isfinite(xs) & np.isfinite(ys)
    if not finite.any():
        _message(ax, title, f"no structure with both {_NOUNS[x]} and {_NOUNS[y]}")
        return
    ax.set_title(title)
    n = int(finite.sum())
    if n <= SCATTER_LIMIT:
        size = float(np.clip(2000.0 / n, 2.0, 30.0))
        groups = _groups(frame, by)
        for label, mask in groups:
            keep = mask & finite
            ax.scatter(xs[keep], ys[keep], s=size, alpha=0.7, linewidths=0, label=label or None)
        if by is not None:
            ax.legend(fontsize="small", title=by, markerscale=max(1.0, 20.0 / size) ** 0.5)
    else:
        image = ax.hexbin(xs[finite], ys[finite], gridsize=60, bins="log", mincnt=1, cmap="viridis")
        ax.figure.colorbar(image, ax=ax, label="structures")


def _concentration(ax: Axes, frame: pd.DataFrame, figure: str) -> None:
    """Overlaid histograms of the atomic fraction of each element on ``ax``."""
    title = "concentrations"
    table = _concentrations(frame, figure)
    ax.set_xlabel("atomic fraction")
    if table.shape[1] == 0 or not np.isfinite(table.to_numpy(dtype=float)).any():
        _message(ax, title, "no elements")
        return
    edges = np.linspace(0.0, 1.0, 22)
    for column in table.columns:
        values = table[column].to_numpy(dtype=float, na_value=np.nan)
        counts, _ = np.histogram(values[np.isfinite(values)], bins=edges)
        ax.stairs(counts, edges, linewidth=1.5, label=column[2:])
    ax.legend(fontsize="small", title="element")
    ax.set_xlim(0.0, 1.0)
    ax.set_title(title)
    ax.set_ylabel("structures")


def _spacegroups(ax: Axes, frame: pd.DataFrame, by: str | None = None) -> None:
    """Bars of the number of structures per space group on ``ax``, stacked per group of ``by``."""
    title = "space groups"
    column = frame["spacegroup"]
    known = column.notna().to_numpy()
    ax.set_xlabel("space group")
    if not known.any():
        _message(ax, title, "no space groups")
        return
    numbers = pd.to_numeric(column[known], errors="coerce")
    if numbers.notna().all():
        labels = numbers.astype(float).astype(int).astype(str)
        order = [str(v) for v in sorted(numbers.astype(float).astype(int).unique())]
    else:
        labels = column[known].astype(str)
        order = sorted(labels.unique())
    groups = _groups(frame[known], by)
    if len(order) <= 30:  # one labelled bar per space group
        positions = np.arange(len(order))
        bottom = np.zeros(len(order))
        for label, mask in groups:
            counts = labels[mask].value_counts().reindex(order, fill_value=0).to_numpy()
            ax.bar(positions, counts, bottom=bottom, label=label or None, width=0.8)
            bottom += counts
        ax.set_xticks(positions, order, rotation=90 if len(order) > 12 else 0)
    elif numbers.notna().all():  # many: unit bins on the space group number axis
        values = numbers.to_numpy(dtype=float)
        edges = np.arange(values.min() - 0.5, values.max() + 1.5)
        _stacked(ax, [values[mask] for _, mask in groups], edges, groups)
    else:  # many named ones: contiguous bins, every n-th labelled
        codes = pd.Categorical(labels, categories=order).codes.astype(float)
        _stacked(ax, [codes[mask] for _, mask in groups], np.arange(len(order) + 1) - 0.5, groups)
        step = max(1, math.ceil(len(order) / 20))
        ax.set_xticks(np.arange(len(order))[::step], order[::step], rotation=90)
    ax.set_ylabel("structures")
    if by is not None:
        ax.legend(fontsize="small", title=by)
    ax.set_title(title)
    missing = int((~known).sum())
    if missing:
        ax.text(
            0.98, 0.98, f"{missing} without a space group", ha="right", va="top",
            transform=ax.transAxes, fontsize="small",
        )  # fmt: skip


def _single(title: str, draw: Any) -> Figure:
    """A one-axis figure, drawn by ``draw(ax)``, its axis titled ``title``."""
    fig = _new_figure()
    ax = fig.add_subplot()
    draw(ax)
    ax.set_title(title)
    return fig


def _required(columns: Sequence[str], by: str | None) -> list[str]:
    return [*columns, by] if by is not None else list(columns)


# --------------------------------------------------------------------------------------------
# figures


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
