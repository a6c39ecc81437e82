"""Drawing helpers of the figures: new figures without pyplot, histograms, scatter plots,
groups by stage, and what an empty axis says."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
from .features import _LABELS, _NOUNS, MAX_GROUPS, SCATTER_LIMIT, _concentrations

__all__ = ["LABEL_WIDTH"]


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
