"""The base of every perturbation and the algebra on them: :class:`Perturbation`, series
(``+``, :class:`Series`), :class:`RandomChoice`, plain functions as perturbations, and what
every perturbation shares (checks, one attempt at a structure, its new uuid)."""

from __future__ import annotations

import copy as _copy
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ...lineage import (
    LINEAGE,
    PERTURBATION,
    RNG_SEED,
    SEED,
    UUID,
    geometry_digest,
    make_root,
    update_uuid,
)
from ...random import derive_seed, resolve_seed, stream

__all__ = [
    "SUPERCELL_MIN_ATOMS",
    "CannotApply",
    "FunctionPerturbation",
    "Perturbation",
    "PerturbationLike",
    "RandomChoice",
    "Series",
    "as_perturbation",
]


SUPERCELL_MIN_ATOMS = 8
"""With ``create_supercells=True`` a one-atom cell is repeated to at least this many atoms."""

_SHEAR_INDICES = np.triu_indices(3, k=1)


class CannotApply(ValueError):
    """A perturbation cannot be applied to a structure at all (retrying would not help)."""


class Perturbation(ABC):
    """Base of the perturbation configs: frozen dataclasses that change a structure randomly.

    The abstract base takes no parameters itself; subclasses implement ``__str__`` and
    :meth:`apply`. ``str()`` is the step name. ``p + q`` is a :class:`Series` (``p`` first).

    Calling a config on a structure, ``Rattle(0.1)(atoms)``, perturbs ``atoms`` *in place* and
    returns it, as the reference implementation does: new positions (and cell), a new uuid with
    the old one appended to ``lineage``, drawn with the config's own ``rng`` seed (fresh entropy
    when it is ``None``); the result equals the first draw of ``perturb([atoms], p)`` (which
    never modifies its inputs). Where the result has other atoms (a one-atom cell rattled with
    ``create_supercells=True``) the input stays as it is and a new structure is returned, as
    in the reference. It raises :class:`CannotApply` where :func:`perturb` reports
    ``cannot_apply``.
    """

    @abstractmethod
    def __str__(self) -> str:
        """The step name, e.g. ``rattle(0.1)``."""

    @abstractmethod
    def apply(self, structure: Atoms, rng: np.random.Generator) -> Atoms | None:
        """Perturb ``structure`` (a private copy, free to modify) drawing only from ``rng``.

        Only geometry changes here; uuid and lineage are set by the caller.

        Parameters
        ----------
        structure : ase.Atoms
            A private copy of the structure to perturb, free to modify in place.
        rng : numpy.random.Generator
            The only source of randomness this draw may use.

        Returns
        -------
        ase.Atoms or None
            The perturbed structure (``structure`` itself or a new ``Atoms``), or ``None`` if
            this draw gave no result (the attempt then counts as rejected).

        Raises
        ------
        CannotApply
            If the structure can never be perturbed this way.
        """

    def choose(self, rng: np.random.Generator) -> Perturbation:
        """The concrete perturbation: every :class:`RandomChoice` replaced by its branch.

        Parameters
        ----------
        rng : numpy.random.Generator
            The stream the branch decisions are drawn from (apart from the geometry draws).

        Returns
        -------
        Perturbation
            This config with every :class:`RandomChoice` in it replaced by its chosen branch;
            the config itself if it holds no random choice.
        """
        return self

    @property
    def base_seed(self) -> int | None:
        """The config's own base seed (``rng`` field), ``None`` if it has none."""
        return getattr(self, "rng", None)

    def __add__(self, other: PerturbationLike) -> Series:
        if not (isinstance(other, Perturbation) or callable(other)):
            return NotImplemented
        return Series((self, other))

    def __radd__(self, other: PerturbationLike) -> Series:
        if not callable(other):
            return NotImplemented
        return Series((other, self))

    def __call__(self, structure: Atoms) -> Atoms:
        """Perturb ``structure`` in place and return it (see the class docstring).

        Parameters
        ----------
        structure : ase.Atoms
            The structure to perturb, in place.

        Returns
        -------
        ase.Atoms
            ``structure`` itself, perturbed; a new structure where the result has other atoms
            (a supercell), the input then unchanged.

        Raises
        ------
        TypeError
            If ``structure`` is not an ``ase.Atoms``.
        CannotApply
            If the structure cannot be perturbed this way, or the draw gave no result.
        """
        if not isinstance(structure, Atoms):
            raise TypeError(f"expected ase.Atoms, got {type(structure).__name__}")
        seed = resolve_seed(self.base_seed)
        parent = _with_uuid(structure)
        result = _attempt(
            parent,
            self,
            self.choose(_choice_stream(seed, parent, self, 0)),
            seed,
            0,
            0,
            root=parent is not structure,
        )
        if result is None:
            raise CannotApply(f"{self} gave no result for {parent.info[UUID]}")
        if len(result) != len(structure) or not np.array_equal(result.numbers, structure.numbers):
            return result  # a supercell (or a callable's new structure): the input stays
        # in place, as the reference implementation: geometry and metadata, the calculator
        # stays attached (its results no longer match, so ASE recomputes or refuses them)
        structure.set_cell(result.cell)
        structure.set_positions(result.positions, apply_constraint=False)
        structure.pbc = result.pbc
        structure.info.clear()
        structure.info.update(result.info)
        return structure


PerturbationLike = Perturbation | Callable[[Atoms], Atoms]
"""What :func:`perturb`, :class:`Series` and :class:`RandomChoice` accept as a perturbation."""


def as_perturbation(perturbation: PerturbationLike) -> Perturbation:
    """``perturbation`` itself if it is a config, else a callable wrapped in a config.

    Parameters
    ----------
    perturbation : Perturbation or callable
        A config (``Rattle(0.1)``, ...) or a plain callable ``Atoms -> Atoms``.

    Returns
    -------
    Perturbation
        ``perturbation`` itself if it is a :class:`Perturbation`, else
        ``FunctionPerturbation(perturbation)`` (:class:`FunctionPerturbation`).

    Raises
    ------
    TypeError
        For anything that is neither a config nor callable.
    """
    if isinstance(perturbation, Perturbation):
        return perturbation
    if callable(perturbation):
        return FunctionPerturbation(perturbation)
    raise TypeError(
        "a perturbation must be a Perturbation config (Rattle(0.1), ...) or a callable "
        f"Atoms -> Atoms, not {perturbation!r} ({type(perturbation).__name__})"
    )


def _number(name: str, value: object, valid: str = "") -> float:
    """``value`` as a finite float, else ``TypeError``/``ValueError`` naming ``name``, the value
    and (when given) the ``valid`` range."""
    detail = f" ({valid})" if valid else ""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(
            f"{name} must be a number{detail}, got {value!r} ({type(value).__name__})"
        )
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite{detail}, got {value!r}")
    return number


def _check_seed(owner: object, rng: object) -> int | None:
    """A config's ``rng`` field as a plain int in [0, 2**63 - 1] or ``None``."""
    if rng is None:
        return None
    if isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{type(owner).__name__}.rng must be an int seed or None (configs hold plain seeds, "
            "never a live generator); pass a generator to perturb(rng=...) instead"
        )
    return resolve_seed(rng)  # type: ignore[arg-type]


def _set(instance: object, name: str, value: object) -> None:
    object.__setattr__(instance, name, value)


def _members_seed(members: Iterable[Perturbation]) -> int | None:
    """The base seed a composite takes from its members' seeds: ``None`` if no member has
    one, else a seed derived from all of them (in order, ``None`` for an unseeded member)."""
    seeds = [member.base_seed for member in members]
    if all(seed is None for seed in seeds):
        return None
    return derive_seed(0, "members", *seeds)


@dataclass(frozen=True)
class FunctionPerturbation(Perturbation):
    """A plain callable ``Atoms -> Atoms`` as a perturbation.

    It draws no randomness from the stream (a random callable is reproducible only through its
    own means). ``str()``: the callable's ``__name__`` (or ``repr`` when it has none).

    Parameters
    ----------
    function : callable
        ``Atoms -> Atoms``. It gets a private copy, free to modify, and returns the perturbed
        structure (that copy or a new ``Atoms``) or ``None`` for "no result". A
        ``ValueError`` it raises makes :func:`perturb` report the pair as ``cannot_apply``.

    Raises
    ------
    TypeError
        If ``function`` is not callable or is a :class:`Perturbation` config (use it as it
        is); when applied, if ``function`` returns neither ``Atoms`` nor ``None``.
    """

    function: Callable[[Atoms], Atoms | None]

    def __post_init__(self) -> None:
        if isinstance(self.function, Perturbation) or not callable(self.function):
            raise TypeError(
                f"function must be a plain callable Atoms -> Atoms, got {self.function!r}"
            )

    def __str__(self) -> str:
        name = getattr(self.function, "__name__", None)
        return name if isinstance(name, str) else repr(self.function)

    def apply(self, structure: Atoms, rng: np.random.Generator) -> Atoms | None:
        result = self.function(structure)
        if result is not None and not isinstance(result, Atoms):
            raise TypeError(f"perturbation {self} returned {type(result).__name__}, not Atoms")
        return result


@dataclass(frozen=True)
class Series(Perturbation):
    """Apply ``perturbations`` one after the other, all drawing from one generator.

    Built by ``a + b``. One application mints one uuid (intermediate results are not
    structures of the data set). ``str()``: the members' names joined by ``+``.

    Parameters
    ----------
    perturbations : tuple of Perturbation or callable
        The members, in order; plain callables ``Atoms -> Atoms`` are wrapped by
        :func:`as_perturbation`. Nested series are flattened, so
        ``(a + b) + c == a + (b + c)``.

    Raises
    ------
    TypeError
        If ``perturbations`` is a single perturbation rather than a tuple (build a series
        with ``a + b``), or a member is not a perturbation.
    ValueError
        If ``perturbations`` is empty.
    """

    perturbations: tuple[Perturbation, ...]

    def __post_init__(self) -> None:
        if isinstance(self.perturbations, Perturbation) or callable(self.perturbations):
            raise TypeError("Series takes a tuple of perturbations; build one with a + b")
        flat: list[Perturbation] = []
        for item in self.perturbations:
            member = as_perturbation(item)
            flat.extend(member.perturbations if isinstance(member, Series) else (member,))
        if not flat:
            raise ValueError("a Series needs at least one perturbation")
        _set(self, "perturbations", tuple(flat))

    @property
    def base_seed(self) -> int | None:
        """Derived from the members' seeds (``None`` if no member has one), so
        ``Rattle(0.1, rng=5) + Stretch(0.05, 0.05, rng=6)`` is reproducible on its own."""
        return _members_seed(self.perturbations)

    def __str__(self) -> str:
        return "+".join(str(member) for member in self.perturbations)

    def choose(self, rng: np.random.Generator) -> Perturbation:
        chosen = tuple(member.choose(rng) for member in self.perturbations)
        if chosen == self.perturbations:
            return self
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Series(chosen)

    def apply(self, structure: Atoms, rng: np.random.Generator) -> Atoms | None:
        result: Atoms | None = structure
        for member in self.perturbations:
            result = member.apply(result, rng)
            if result is None:
                return None
        return result


@dataclass(frozen=True)
class RandomChoice(Perturbation):
    """Apply ``b`` with probability ``chance``, else ``a``.

    :func:`perturb` draws the branch once per (structure, perturbation) pair from a stream
    independent of the attempt and retries only within that branch, so filters cannot skew
    the mixture; the chosen branch's name is what ``info["perturbation"]`` records.
    ``str()``: ``random_choice(<a>, <b>, <chance>)``.

    Parameters
    ----------
    a, b : Perturbation or callable
        The two branches; plain callables ``Atoms -> Atoms`` are wrapped by
        :func:`as_perturbation`.
    chance : float
        The probability of ``b``, in ``[0, 1]`` (``chance=0``: always ``a``, ``chance=1``:
        always ``b``; the reference implementation's convention).
    rng : int, optional
        The config's own base seed, as for :class:`Rattle`. Default: ``None`` (derived from
        the branches' seeds if they have any, see :attr:`base_seed`).

    Raises
    ------
    TypeError
        If a branch is not a perturbation, ``chance`` is not a number, or ``rng`` is not an
        int seed (a generator included).
    ValueError
        If ``chance`` is outside ``[0, 1]`` or not finite, or ``rng`` is a negative or too
        large seed.
    """

    a: Perturbation
    b: Perturbation
    chance: float
    rng: int | None = None

    def __post_init__(self) -> None:
        _set(self, "a", as_perturbation(self.a))
        _set(self, "b", as_perturbation(self.b))
        chance = _number("chance", self.chance, "in [0, 1], probability of b")
        if not 0 <= chance <= 1:
            raise ValueError(f"chance must be in [0, 1] (probability of b), got {self.chance!r}")
        _set(self, "chance", chance)
        _set(self, "rng", _check_seed(self, self.rng))

    @property
    def base_seed(self) -> int | None:
        """``rng`` if set, else derived from the branches' seeds (``None`` if neither has one)."""
        return self.rng if self.rng is not None else _members_seed((self.a, self.b))

    def __str__(self) -> str:
        return f"random_choice({self.a}, {self.b}, {self.chance})"

    def choose(self, rng: np.random.Generator) -> Perturbation:
        branch = self.b if rng.random() < self.chance else self.a
        return branch.choose(rng)

    def apply(self, structure: Atoms, rng: np.random.Generator) -> Atoms | None:
        return self.choose(rng).apply(structure, rng)


def _with_uuid(structure: Atoms) -> Atoms:
    """``structure`` if it has a uuid, else a copy given one (from its geometry)."""
    if not isinstance(structure, Atoms):
        raise TypeError(f"expected ase.Atoms, got {type(structure).__name__}")
    if structure.info.get(UUID) is not None:
        return structure
    return update_uuid(_private_copy(structure))


def _private_copy(structure: Atoms) -> Atoms:
    """A copy sharing nothing mutable with ``structure``, without a calculator."""
    work = structure.copy()
    work.info = _copy.deepcopy(structure.info)
    work.calc = None
    return work


def _choice_stream(seed: int, parent: Atoms, p: Perturbation, copy: int) -> np.random.Generator:
    return stream(seed, str(parent.info[UUID]), str(p), copy, "choice")


def _attempt(
    parent: Atoms,
    p: Perturbation,
    plan: Perturbation,
    seed: int,
    copy: int,
    attempt: int,
    root: bool = False,
) -> Atoms | None:
    """Attempt ``attempt`` of pair (``parent``, ``p``): a new, fully labelled Atoms or ``None``.

    ``root``: ``parent``'s uuid was minted here (the input had none), so the result becomes the
    first of its line (empty ``lineage``, its own ``seed``, see :func:`make_root`)."""
    draw_seed = derive_seed(seed, str(parent.info[UUID]), str(p), copy, attempt)
    result = plan.apply(_private_copy(parent), np.random.default_rng(draw_seed))
    if result is None:
        return None
    result.calc = None
    info = result.info
    for key in (UUID, LINEAGE, SEED):  # a callable may return an Atoms built from scratch
        if key in parent.info:
            info[key] = _copy.deepcopy(parent.info[key])
    previous = parent.info.get(PERTURBATION)
    info[PERTURBATION] = f"{previous}+{plan}" if previous else str(plan)
    info[RNG_SEED] = draw_seed
    result = update_uuid(result, step=str(p), key=(draw_seed, geometry_digest(result)))
    return make_root(result) if root else result
