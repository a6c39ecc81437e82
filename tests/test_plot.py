"""Tests of ``assyst_nodes.plot``: feature values against hand-computed ones, and every figure
rendered to PNG for real (1, 10 and 100 000 rows, generators, empty input, no energies)."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from matplotlib.figure import Figure

from assyst_nodes import plot
from assyst_nodes.reports import StageReport

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# figure function -> number of axes (without colorbars) it draws for non-empty input
FIGURES: dict[str, int] = {
    "volume_histogram": 1,
    "energy_histogram": 1,
    "min_distance_histogram": 1,
    "natoms_histogram": 1,
    "concentration_histogram": 1,
    "energy_volume": 1,
    "energy_distance": 1,
    "lattice_parameters": 3,
    "lattice_angles": 3,
    "spacegroup_distribution": 1,
    "overview": 8,
}
BY_FIGURES = [name for name in FIGURES if name != "concentration_histogram"]


def _structures() -> list[Atoms]:
    """Five small structures: primitive and cubic fcc Cu, a rattled copy, one with a
    single-point energy and forces, one Ag-Cu mix."""
    primitive = bulk("Cu", "fcc", a=3.6)
    cubic = bulk("Cu", "fcc", a=3.6, cubic=True)
    rattled = cubic.copy()
    rattled.rattle(0.05, seed=3)
    calculated = cubic.copy()
    forces = np.zeros((4, 3))
    forces[2] = [0.3, 0.4, 0.0]
    calculated.calc = SinglePointCalculator(calculated, energy=-14.0, forces=forces)
    mixed = cubic.copy()
    mixed.symbols[0] = "Ag"
    structures = [primitive, cubic, rattled, calculated, mixed]
    steps = ["crystal", "crystal", "rattle(0.05)", "crystal", "crystal"]
    for index, (structure, step) in enumerate(zip(structures, steps, strict=True)):
        structure.info.update(uuid=f"u{index}", step=step, spacegroup=225)
    structures[2].info["spacegroup"] = 1
    return structures


@pytest.fixture
def structures() -> list[Atoms]:
    return _structures()


def _ten() -> list[Atoms]:
    """Ten structures of different sizes and volumes, some with energies."""
    out = []
    for index in range(10):
        atoms = bulk("Cu", "fcc", a=3.4 + 0.05 * index, cubic=index % 2 == 0)
        if index % 3 == 0:
            atoms = atoms.repeat((1, 1, 2))
        if index % 4:
            atoms.calc = SinglePointCalculator(atoms, energy=-3.0 * len(atoms) + 0.1 * index)
        atoms.info.update(uuid=f"t{index}", step=f"s{index % 3}", spacegroup=225 if index else 1)
        out.append(atoms)
    return out


def _synthetic(n: int, seed: int = 0) -> pd.DataFrame:
    """A features-like table of ``n`` rows of random numbers (no Atoms built)."""
    rng = np.random.default_rng(seed)
    x_ag = rng.integers(0, 9, n) / 8
    return pd.DataFrame(
        {
            "uuid": np.arange(n).astype(str),
            "step": rng.choice(["crystal", "relax", "rattle", "stretch"], n),
            "formula": np.where(x_ag > 0.5, "Ag5Cu3", "AgCu7"),
            "natoms": rng.integers(1, 40, n),
            "volume_per_atom": rng.normal(13.0, 1.5, n),
            "energy_per_atom": rng.normal(-3.5, 0.3, n),
            "max_force": rng.exponential(0.5, n),
            "min_distance": rng.normal(2.5, 0.2, n),
            "a": rng.uniform(2.0, 12.0, n),
            "b": rng.uniform(2.0, 12.0, n),
            "c": rng.uniform(2.0, 12.0, n),
            "alpha": rng.uniform(60.0, 120.0, n),
            "beta": rng.uniform(60.0, 120.0, n),
            "gamma": rng.uniform(60.0, 120.0, n),
            "spacegroup": rng.integers(1, 231, n),
            "x_Ag": x_ag,
            "x_Cu": 1.0 - x_ag,
        }
    )


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    return _synthetic(100_000)


def _render(fig: Figure, path: Path) -> None:
    """Save ``fig`` as PNG for real (low dpi: drawing text dominates) and check it is one."""
    assert isinstance(fig, Figure)
    fig.savefig(path, dpi=50)
    data = path.read_bytes()
    assert len(data) > 1000
    assert data[:8] == PNG_MAGIC


def _main_axes(fig: Figure) -> list:
    """The axes of ``fig`` that are not colorbars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def _texts(fig: Figure) -> str:
    return " ".join(text.get_text() for ax in fig.axes for text in ax.texts)


def _check_axes(fig: Figure, expected: int) -> None:
    axes = _main_axes(fig)
    assert len(axes) == expected
    for ax in axes:
        assert ax.get_title()
        if not ax.texts or ax.get_xticks().size:  # a drawn axis (a note has no ticks)
            assert ax.get_xlabel()
            assert ax.get_ylabel()


# --------------------------------------------------------------------------------------------
# features


def test_features_values(structures: list[Atoms]) -> None:
    table = plot.features(structures)
    assert len(table) == 5
    for column in plot.COLUMNS:
        assert column in table.columns
    assert list(table.columns[-2:]) == ["x_Ag", "x_Cu"]
    assert table["uuid"].tolist() == [f"u{i}" for i in range(5)]
    assert table["step"].tolist()[:3] == ["crystal", "crystal", "rattle(0.05)"]
    assert table["formula"].tolist() == ["Cu", "Cu4", "Cu4", "Cu4", "AgCu3"]
    assert table["natoms"].tolist() == [1, 4, 4, 4, 4]
    np.testing.assert_allclose(table["volume_per_atom"], 3.6**3 / 4)
    nearest = 3.6 / math.sqrt(2)
    np.testing.assert_allclose(table["min_distance"].iloc[[0, 1, 3, 4]], nearest)
    assert 0.5 * nearest < table["min_distance"].iloc[2] < nearest  # rattled: shorter
    energies = table["energy_per_atom"].to_numpy()
    assert np.isnan(energies[[0, 1, 2, 4]]).all()
    assert energies[3] == pytest.approx(-3.5)
    forces = table["max_force"].to_numpy()
    assert np.isnan(forces[[0, 1, 2, 4]]).all()
    assert forces[3] == pytest.approx(0.5)
    np.testing.assert_allclose(table.loc[0, ["a", "b", "c"]].astype(float), nearest)
    np.testing.assert_allclose(table.loc[0, ["alpha", "beta", "gamma"]].astype(float), 60.0)
    np.testing.assert_allclose(table.loc[1, ["a", "b", "c"]].astype(float), 3.6)
    np.testing.assert_allclose(table.loc[1, ["alpha", "beta", "gamma"]].astype(float), 90.0)
    assert table["spacegroup"].tolist() == [225, 225, 1, 225, 225]
    assert table["x_Ag"].tolist() == [0.0, 0.0, 0.0, 0.0, 0.25]
    assert table["x_Cu"].tolist() == [1.0, 1.0, 1.0, 1.0, 0.75]


def test_features_reads_results_only(structures: list[Atoms]) -> None:
    class Exploding(SinglePointCalculator):
        def get_property(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("features must not trigger a calculation")

    atoms = structures[1]
    atoms.calc = Exploding(atoms)
    assert math.isnan(plot.features([atoms])["energy_per_atom"].iloc[0])


@pytest.mark.parametrize(
    ("atoms", "expected"),
    [
        (Atoms("Cu", cell=[2.0, 3.0, 4.0], pbc=True), 2.0),
        (bulk("Fe", "bcc", a=2.87), 2.87 * math.sqrt(3) / 2),
        (
            Atoms("Cu", cell=[[7.0, 0, 0], [6.5, 2.0, 0], [0, 0, 9.0]], pbc=True),
            math.sqrt(0.5**2 + 2.0**2),  # b - a, shorter than any cell vector
        ),
        (Atoms("Ar", cell=[20.0, 20.0, 20.0], pbc=True), 20.0),  # needs cutoff 24 Å
    ],
)
def test_min_distance_one_atom_cell(atoms: Atoms, expected: float) -> None:
    """A one-atom cell's shortest distance is its shortest lattice vector."""
    assert plot.features([atoms])["min_distance"].iloc[0] == pytest.approx(expected)


def test_min_distance_nan_cases() -> None:
    lonely = Atoms("Cu", positions=[[0, 0, 0]])  # no cell, not periodic
    far = Atoms("Ar", cell=[40.0, 40.0, 40.0], pbc=True)  # beyond 30 Å
    table = plot.features([lonely, far, Atoms()])
    assert table["min_distance"].isna().all()
    assert plot.features([bulk("Cu")], min_distance=False)["min_distance"].isna().all()


def test_features_generator_and_passthrough(structures: list[Atoms]) -> None:
    table = plot.features(atoms for atoms in structures)
    assert len(table) == 5
    assert plot.features(table) is table
    empty = plot.features(iter([]))
    assert len(empty) == 0
    assert list(empty.columns) == list(plot.COLUMNS)


def test_features_rejects_non_atoms(structures: list[Atoms]) -> None:
    with pytest.raises(TypeError, match="structure 1 is a str"):
        plot.features([structures[0], "Cu"])
    with pytest.raises(TypeError, match="single Atoms"):
        plot.features(structures[0])


# --------------------------------------------------------------------------------------------
# figures


@pytest.mark.parametrize("name", FIGURES)
def test_figure_one_structure(name: str, tmp_path: Path) -> None:
    atoms = _structures()[3]  # with an energy
    fig = getattr(plot, name)([atoms])
    _render(fig, tmp_path / "one.png")
    _check_axes(fig, FIGURES[name])


@pytest.mark.parametrize("name", FIGURES)
def test_figure_ten_structures_generator(name: str, tmp_path: Path) -> None:
    fig = getattr(plot, name)(atoms for atoms in _ten())
    _render(fig, tmp_path / "ten.png")
    _check_axes(fig, FIGURES[name])
    assert "no structures" not in _texts(fig)


@pytest.mark.parametrize("name", FIGURES)
def test_figure_100k_rows(name: str, big: pd.DataFrame, tmp_path: Path) -> None:
    fig = getattr(plot, name)(big)
    _render(fig, tmp_path / "big.png")
    _check_axes(fig, FIGURES[name])
    if name in ("energy_volume", "energy_distance"):
        assert len(fig.axes) == 2  # hexbin with its colorbar above the scatter limit
        assert type(fig.axes[0].collections[0]).__name__ == "PolyCollection"


@pytest.mark.parametrize("name", BY_FIGURES)
def test_figure_by_step(name: str, tmp_path: Path) -> None:
    fig = getattr(plot, name)(plot.features(_ten()), by="step")
    assert isinstance(fig, Figure)
    _check_axes(fig, FIGURES[name])
    legends = [ax.get_legend() for ax in _main_axes(fig) if ax.get_legend() is not None]
    assert legends
    assert {t.get_text() for t in legends[0].get_texts()} >= {"s0", "s1", "s2"}


def test_by_many_groups_merged(big: pd.DataFrame, tmp_path: Path) -> None:
    frame = big.iloc[:3000].assign(step=np.arange(3000) % 25)
    fig = plot.energy_volume(frame, by="step")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(labels) == plot.MAX_GROUPS
    assert labels[-1] == "other"
    fig = plot.volume_histogram(big, by="step")
    assert len(fig.axes[0].get_legend().get_texts()) == 4


@pytest.mark.parametrize("name", FIGURES)
@pytest.mark.parametrize(
    "empty",
    [list, lambda: iter(()), lambda: plot.features([])],
    ids=["list", "generator", "table"],
)
def test_figure_empty(name: str, empty: Callable[[], object], tmp_path: Path) -> None:
    fig = getattr(plot, name)(empty())
    if empty is list:  # the others build the same figure
        _render(fig, tmp_path / "empty.png")
    assert len(fig.axes) == 1
    assert "no structures" in _texts(fig)
    assert fig.axes[0].get_title()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("energy_histogram", 1),
        ("energy_volume", 1),
        ("energy_distance", 1),
        ("overview", 3),
    ],
)
def test_figure_without_energies(
    name: str, expected: int, structures: list[Atoms], tmp_path: Path
) -> None:
    without = [s for s in structures if s.calc is None]
    for data in (
        without,
        plot.features(without),
        _synthetic(10_000).assign(energy_per_atom=np.nan),
    ):
        fig = getattr(plot, name)(data)
        if isinstance(data, list):
            _render(fig, tmp_path / "no_energy.png")
        assert _texts(fig).count("no energies") == expected


def test_other_quantities_all_nan(tmp_path: Path) -> None:
    frame = _synthetic(50).assign(min_distance=np.nan, spacegroup=None, a=np.nan)
    for fig, text in [
        (plot.min_distance_histogram(frame), "no distances"),
        (plot.spacegroup_distribution(frame), "no space groups"),
        (plot.lattice_parameters(frame), "no cells"),
        (plot.energy_distance(frame), "no distances"),
    ]:
        assert isinstance(fig, Figure)
        assert text in _texts(fig)


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("volume_histogram", "volume_per_atom"),
        ("energy_histogram", "energy_per_atom"),
        ("min_distance_histogram", "min_distance"),
        ("natoms_histogram", "natoms"),
        ("energy_volume", "volume_per_atom"),
        ("energy_distance", "min_distance"),
        ("lattice_parameters", "b"),
        ("lattice_angles", "gamma"),
        ("spacegroup_distribution", "spacegroup"),
        ("overview", "energy_per_atom"),
    ],
)
def test_missing_column(name: str, column: str, structures: list[Atoms]) -> None:
    table = plot.features(structures).drop(columns=[column])
    with pytest.raises(ValueError, match=rf"'{column}'.*features\(structures\)"):
        getattr(plot, name)(table)


def test_missing_by_column(structures: list[Atoms]) -> None:
    with pytest.raises(ValueError, match="'job_id'"):
        plot.volume_histogram(plot.features(structures), by="job_id")


def test_concentrations_from_formula_or_error(structures: list[Atoms], tmp_path: Path) -> None:
    """A project-like table without x_ columns: concentrations from the formula."""
    table = plot.features(structures).drop(columns=["x_Ag", "x_Cu", "min_distance"])
    fig = plot.concentration_histogram(table)
    _render(fig, tmp_path / "formula.png")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["Ag", "Cu"]
    fig = plot.overview(table)  # panels lacking min_distance say so
    assert "'min_distance'" in _texts(fig)
    with pytest.raises(ValueError, match=r"x_<El>.*features"):
        plot.concentration_histogram(table.drop(columns=["formula"]))


def test_stage_counts(tmp_path: Path) -> None:
    filtered = StageReport("filter", n_in=10, n_out=7)
    filtered.drop("a", "distance")
    filtered.drop("b", "distance")
    filtered.drop("c", "volume")
    reports = [StageReport("sample", 0, 10), filtered, StageReport("relax", 7, 7)]
    fig = plot.stage_counts(iter(reports))
    _render(fig, tmp_path / "stages.png")
    _check_axes(fig, 1)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["sample", "filter", "relax"]
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    assert legend == {"in", "out", "dropped: distance", "dropped: volume"}
    # the out bar of the filter plus its drops reaches n_in
    tops = [p.get_y() + p.get_height() for p in ax.patches]
    assert max(tops) == pytest.approx(10)

    many = [StageReport(f"stage{i}", 5, 4) for i in range(8)]
    assert len(plot.stage_counts(many).axes[0].patches) == 16
    empty = plot.stage_counts([])
    _render(empty, tmp_path / "none.png")
    assert "no stages" in _texts(empty)
    with pytest.raises(TypeError, match="StageReport"):
        plot.stage_counts([filtered, "relax"])  # type: ignore[list-item]


def test_spacegroup_bars_count(structures: list[Atoms]) -> None:
    fig = plot.spacegroup_distribution(structures)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "225"]
    assert [p.get_height() for p in ax.patches] == [1, 4]


def test_no_pyplot_and_threads(tmp_path: Path) -> None:
    """Importing and drawing never touches pyplot (nor pyiron); figures render from threads."""
    code = (
        "import sys, threading\n"
        "from ase.build import bulk\n"
        "import assyst_nodes.plot as p\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported eagerly'\n"
        "errors = []\n"
        "def work(i):\n"
        "    try:\n"
        "        p.energy_volume([bulk('Cu', a=3.5 + 0.1 * i)]).savefig(f'f{i}.png', dpi=50)\n"
        "    except Exception as e:\n"
        "        errors.append(e)\n"
        "ts = [threading.Thread(target=work, args=(i,)) for i in range(3)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "assert not errors, errors\n"
        "bad = [m for m in sys.modules if m.startswith(('matplotlib.pyplot', 'pyiron'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=120)
    for i in range(3):
        assert (tmp_path / f"f{i}.png").read_bytes()[:8] == PNG_MAGIC


def test_long_group_labels_are_cut_and_stay_distinct() -> None:
    long = "random_choice(stretch(hydro=0.8, shear=0.05), stretch(hydro=0.05, shear=0.2), 0.5)"
    frame = plot.features(_ten()).assign(step=[long, long + "x", "pyxtal", *["s"] * 7])
    fig = plot.energy_volume(frame, by="step")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert all(len(label) <= plot.LABEL_WIDTH + 3 for label in labels)
    assert len(set(labels)) == len(labels) == 4


def test_overview_keeps_one_step_legend(tmp_path: Path) -> None:
    fig = plot.overview(plot.features(_ten()), by="step")
    titles = [ax.get_legend().get_title().get_text() for ax in fig.axes if ax.get_legend()]
    assert titles.count("step") == 1


def test_save_figures_writes_every_figure_from_a_generator(tmp_path: Path) -> None:
    reports = [StageReport("sample", n_in=5, n_out=3)]
    reports[0].drop("Cu2 @ 225", "incompatible")
    paths = plot.save_figures(iter(_ten()), tmp_path / "figs", reports=reports)
    assert sorted(p.stem for p in paths) == sorted([*plot.FIGURES, "stage_counts"])
    for path in paths:
        assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 5_000
    table = plot.features(_ten()).drop(columns=["step"])
    assert len(plot.save_figures(table, tmp_path / "plain")) == len(plot.FIGURES)  # no "step"


def test_overview_of_structures_shows_the_distance_panels() -> None:
    fig = plot.overview(_ten())
    assert "no 'min_distance' column" not in _texts(fig)
    assert any(ax.get_title() == "shortest distance" for ax in fig.axes)


# --------------------------------------------------------------------------------------------
# what is drawn: the plotted values against values measured here from the structures, without
# plot.features (ASE's neighbour list, the cell matrix, the calculators' results)


def _measured() -> list[Atoms]:
    """Twelve structures of 4 or 8 atoms: volumes, sizes, Ag fractions, distances, energies
    (9 of 12), space groups and steps (three) all varied."""
    out = []
    for index in range(12):
        atoms = bulk("Cu", "fcc", a=3.45 + 0.04 * index, cubic=True)
        if index % 3 == 0:
            atoms = atoms.repeat((1, 1, 2))
        if index % 4 == 1:
            atoms.symbols[0] = "Ag"
        if index % 5 == 2:
            atoms.rattle(0.05, seed=index)
        if index % 3 == 1:  # a sheared cell: angles other than 90 degrees
            cell = atoms.cell.array.copy()
            cell[1, 0] += 0.3
            atoms.set_cell(cell, scale_atoms=True)
        if index % 4 != 0:
            forces = np.full((len(atoms), 3), 0.01 * index)
            atoms.calc = SinglePointCalculator(
                atoms, energy=-3.0 * len(atoms) + 0.1 * index, forces=forces
            )
        atoms.info.update(
            uuid=f"m{index}", step=f"s{index % 3}", spacegroup=(225, 221, 1)[index % 3]
        )
        out.append(atoms)
    return out


def _volume(atoms: Atoms) -> float:
    return abs(float(np.linalg.det(atoms.cell.array))) / len(atoms)


def _energy(atoms: Atoms) -> float:
    return atoms.get_potential_energy() / len(atoms) if atoms.calc is not None else math.nan


def _shortest(atoms: Atoms) -> float:
    from ase.neighborlist import neighbor_list

    return float(neighbor_list("d", atoms, 6.0).min())


def _lengths_and_angles(atoms: Atoms) -> list[float]:
    cell = atoms.cell.array
    lengths = np.linalg.norm(cell, axis=1)
    angles = [
        math.degrees(math.acos(cell[j] @ cell[k] / (lengths[j] * lengths[k])))
        for j, k in ((1, 2), (0, 2), (0, 1))
    ]
    return [*lengths.tolist(), *angles]


QUANTITIES: dict[str, Callable[[Atoms], float]] = {
    "volume_histogram": _volume,
    "energy_histogram": _energy,
    "min_distance_histogram": _shortest,
    "natoms_histogram": lambda atoms: float(len(atoms)),
}


def _stairs(ax: object) -> list[tuple[str | None, np.ndarray, np.ndarray]]:
    """(label, counts, edges) of each stacked histogram on ``ax`` (the top minus its base)."""
    out = []
    for patch in ax.patches:  # type: ignore[attr-defined]
        if type(patch).__name__ == "StepPatch":
            values, edges, baseline = patch.get_data()
            base = 0.0 if baseline is None else np.asarray(baseline)
            label = patch.get_label()
            named = label is not None and not label.startswith("_")
            out.append((label if named else None, values - base, edges))
    return out


def _assert_histogram(ax: object, values: list[float], groups: list[str] | None = None) -> None:
    """The stacked histogram on ``ax`` counts exactly the finite ``values`` (per group of
    ``groups``, the labels its legend shows), in bins that cover them all."""
    finite = np.isfinite(values)
    drawn = _stairs(ax)
    assert drawn, "no histogram drawn"
    edges = drawn[0][2]
    assert all(np.array_equal(e, edges) for _, _, e in drawn)  # one set of bins
    kept = np.asarray(values)[finite]
    assert edges[0] <= kept.min() and kept.max() <= edges[-1]
    total = sum(counts for _, counts, _ in drawn)
    np.testing.assert_array_equal(total, np.histogram(kept, bins=edges)[0])
    assert total.sum() == finite.sum()
    if groups is not None:
        names = np.asarray(groups)[finite]
        for label, counts, _ in drawn:
            np.testing.assert_array_equal(counts, np.histogram(kept[names == label], edges)[0])
        assert {label for label, _, _ in drawn} == set(names.tolist())


@pytest.mark.parametrize("name", QUANTITIES)
@pytest.mark.parametrize("by", [None, "step"])
def test_histograms_count_the_structures_values(name: str, by: str | None) -> None:
    structures = _measured()
    values = [QUANTITIES[name](atoms) for atoms in structures]
    steps = [atoms.info["step"] for atoms in structures]
    fig = getattr(plot, name)(structures, by=by)
    (ax,) = fig.axes
    _assert_histogram(ax, values, steps if by else None)
    missing = sum(not np.isfinite(v) for v in values)
    assert (f"{missing} without a value" in _texts(fig)) == bool(missing)
    if name == "natoms_histogram":  # unit bins centred on the sizes
        edges = _stairs(ax)[0][2]
        np.testing.assert_allclose(edges, np.arange(3.5, 9.0))


@pytest.mark.parametrize(
    ("name", "first"), [("lattice_parameters", 0), ("lattice_angles", 3)]
)
def test_cell_histograms_count_the_lengths_and_angles(name: str, first: int) -> None:
    structures = _measured()
    fig = getattr(plot, name)(structures)
    axes = _main_axes(fig)
    assert [ax.get_title() for ax in axes] == (
        ["a", "b", "c"] if first == 0 else ["alpha", "beta", "gamma"]
    )
    for offset, ax in enumerate(axes):
        _assert_histogram(ax, [_lengths_and_angles(s)[first + offset] for s in structures])
    angles = [_lengths_and_angles(s)[5] for s in structures]
    assert min(angles) < 89.0 and max(angles) == pytest.approx(90.0)  # the data vary


@pytest.mark.parametrize(
    ("name", "x"), [("energy_volume", _volume), ("energy_distance", _shortest)]
)
@pytest.mark.parametrize("by", [None, "step"])
def test_scatters_place_a_point_per_structure_with_an_energy(
    name: str, x: Callable[[Atoms], float], by: str | None
) -> None:
    structures = _measured()
    fig = getattr(plot, name)(structures, by=by)
    (ax,) = fig.axes
    expected = sorted((x(s), _energy(s), s.info["step"]) for s in structures if s.calc)
    assert len(expected) == 9
    drawn = []
    for collection in ax.collections:
        label = collection.get_label() if by else None
        drawn += [(px, py, label) for px, py in collection.get_offsets()]
    drawn.sort()
    assert len(drawn) == len(expected)
    for (px, py, label), (ex, ey, step) in zip(drawn, expected, strict=True):
        assert (px, py) == pytest.approx((ex, ey))
        assert label in (None, step)


def test_concentration_histogram_counts_each_elements_fraction() -> None:
    structures = _measured()
    fig = plot.concentration_histogram(structures)
    (ax,) = fig.axes
    drawn = {label: (counts, edges) for label, counts, edges in _stairs(ax)}
    assert set(drawn) == {"Ag", "Cu"}
    for element, (counts, edges) in drawn.items():
        fractions = [s.get_chemical_symbols().count(element) / len(s) for s in structures]
        np.testing.assert_array_equal(counts, np.histogram(fractions, bins=edges)[0])
        assert edges[0] == 0.0 and edges[-1] == 1.0
    assert drawn["Ag"][0].sum() == drawn["Cu"][0].sum() == len(structures)
    assert drawn["Ag"][0][0] == 9  # nine structures without Ag: the first bin


@pytest.mark.parametrize("by", [None, "step"])
def test_spacegroup_bars_stack_the_counts_per_group(by: str | None) -> None:
    structures = _measured()
    fig = plot.spacegroup_distribution(structures, by=by)
    (ax,) = fig.axes
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["1", "221", "225"]
    totals = dict.fromkeys(ticks, 0.0)
    per_group: dict[tuple[str, str], float] = {}
    for container in ax.containers:
        for bar in container:
            group = ticks[round(bar.get_x() + bar.get_width() / 2)]
            totals[group] += bar.get_height()
            per_group[(container.get_label(), group)] = bar.get_height()
    counted = {
        str(number): sum(s.info["spacegroup"] == number for s in structures)
        for number in (1, 221, 225)
    }
    assert totals == counted
    if by:  # each step sits in one space group here: its bar is that many high, 0 elsewhere
        for s in structures:
            step, group = s.info["step"], str(s.info["spacegroup"])
            assert per_group[(step, group)] == 4


def test_overview_panels_show_the_structures_values() -> None:
    structures = _measured()
    fig = plot.overview(structures)
    axes = fig.axes
    assert fig._suptitle.get_text().endswith("12 structures")
    for ax, quantity in zip(axes[:4], QUANTITIES.values(), strict=True):
        _assert_histogram(ax, [quantity(s) for s in structures])
    for ax, x in ((axes[4], _volume), (axes[5], _shortest)):
        drawn = sorted(tuple(p) for c in ax.collections for p in c.get_offsets())
        expected = sorted((x(s), _energy(s)) for s in structures if s.calc)
        np.testing.assert_allclose(drawn, expected)
    assert {label for label, _, _ in _stairs(axes[6])} == {"Ag", "Cu"}
    assert [p.get_height() for p in axes[7].patches] == [4, 4, 4]


def test_stage_counts_bars_are_the_reports_numbers() -> None:
    sampled = StageReport("sample", n_in=0, n_out=9)
    sampled.drop("Cu2 @ 225", "incompatible")
    filtered = StageReport("filter", n_in=9, n_out=5)
    for uuid, reason in [("a", "distance"), ("b", "distance"), ("c", "volume"), ("d", "distance")]:
        filtered.drop(uuid, reason)
    relaxed = StageReport("relax", n_in=5, n_out=4)
    relaxed.drop("e", "calculator_error")
    reports = [sampled, filtered, relaxed]
    ax = plot.stage_counts(reports).axes[0]
    bars = ax.patches
    assert [b.get_height() for b in bars[:3]] == [0, 9, 5]  # in
    assert [b.get_height() for b in bars[3:6]] == [9, 5, 4]  # out
    reasons = sorted(set(sampled.dropped) | set(filtered.dropped) | set(relaxed.dropped))
    assert reasons == ["calculator_error", "distance", "incompatible", "volume"]
    for index, reason in enumerate(reasons):  # each reason's bars stacked on the out bar
        stacked = bars[6 + 3 * index : 9 + 3 * index]
        assert [b.get_height() for b in stacked] == [r.dropped.get(reason, 0) for r in reports]
        assert ax.containers[2 + index].get_label() == f"dropped: {reason}"
    tops = [max(b.get_y() + b.get_height() for b in bars[3:][k::3]) for k in range(3)]
    assert tops == [10, 9, 5]  # out + dropped: a filter's reaches its n_in
