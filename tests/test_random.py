"""Seeds and streams: reproducible in any process, independent per identity."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from assyst_nodes.random import MAX_SEED, derive_seed, resolve_seed, stream

seeds = st.integers(min_value=0, max_value=MAX_SEED)
parts = st.one_of(
    st.integers(0, 2**64 + 5),
    st.integers(-(2**40), -1),
    st.text(max_size=8),
    st.tuples(st.integers(0, 300), st.integers(0, 300)),
)
identities = st.lists(parts, max_size=4)


def canonical(identity: list) -> list[str]:
    """What derive_seed may tell apart: the repr of each part (ints from numpy included)."""
    return [repr(int(p)) if isinstance(p, int | np.integer) else repr(p) for p in identity]


# --- resolve_seed --------------------------------------------------------------------------


@given(seeds)
def test_resolve_seed_keeps_an_int(seed: int) -> None:
    assert resolve_seed(seed) == seed
    assert type(resolve_seed(np.int64(seed))) is int
    assert resolve_seed(np.uint64(seed)) == seed


def test_resolve_seed_accepts_both_ends_of_the_range() -> None:
    assert resolve_seed(0) == 0
    assert resolve_seed(MAX_SEED) == MAX_SEED == 2**63 - 1


def test_resolve_seed_draws_once_from_a_generator() -> None:
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    first = resolve_seed(a)
    assert type(first) is int and 0 <= first <= MAX_SEED
    assert first == resolve_seed(b)
    # it advanced by exactly one draw
    one_draw = np.random.default_rng(5)
    one_draw.integers(0, MAX_SEED, endpoint=True)
    assert a.bit_generator.state == one_draw.bit_generator.state
    assert resolve_seed(a) != first


def test_resolve_seed_of_none_gives_fresh_valid_seeds() -> None:
    drawn = [resolve_seed(None) for _ in range(8)]
    assert len(set(drawn)) == len(drawn)
    assert all(type(s) is int and 0 <= s <= MAX_SEED for s in drawn)


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (-1, ValueError, "got -1"),
        (np.int64(-3), ValueError, "got -3"),
        (2**63, ValueError, str(2**63)),
        (np.uint64(2**63), ValueError, str(2**63)),
        (True, TypeError, "True"),
        (np.bool_(False), TypeError, "False"),
        (1.5, TypeError, "1.5"),
        (2.0, TypeError, "2.0"),
        ("7", TypeError, "'7'"),
        (np.random.RandomState(1), TypeError, "RandomState"),
    ],
)
def test_resolve_seed_rejects_bad_values_by_name(bad: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        resolve_seed(bad)  # type: ignore[arg-type]


# --- derive_seed ---------------------------------------------------------------------------


@given(seeds, identities)
def test_derive_seed_is_deterministic_and_in_range(seed: int, identity: list) -> None:
    derived = derive_seed(seed, *identity)
    assert type(derived) is int
    assert derived == derive_seed(seed, *identity)
    assert 0 <= derived <= MAX_SEED
    assert resolve_seed(derived) == derived  # usable as a base seed again


@given(seeds, identities, identities)
def test_different_identities_give_different_seeds(seed: int, a: list, b: list) -> None:
    assert (derive_seed(seed, *a) == derive_seed(seed, *b)) == (canonical(a) == canonical(b))


@given(seeds, seeds, identities)
def test_different_base_seeds_give_different_seeds(one: int, two: int, identity: list) -> None:
    assert (derive_seed(one, *identity) == derive_seed(two, *identity)) == (one == two)


@given(seeds, parts, parts)
def test_identity_order_matters(seed: int, a: object, b: object) -> None:
    swapped = derive_seed(seed, a, b) == derive_seed(seed, b, a)
    assert swapped == (canonical([a]) == canonical([b]))


@pytest.mark.parametrize(
    ("one", "two"),
    [
        ((3, 2**32, 5), (3, 0, 1 + 5 * 2**32)),  # a big int is not two small ones
        ((7 + 2**32,), (7, 0)),  # a big base seed is not a small one plus a part
        ((7 + 4 * 2**32, "pyxtal", "Cu1", 225), (7, 3, "pyxtal", "Cu1", 225)),
        ((7,), (7, 0)),  # trailing zeros count
        ((7, 0), (7, 0, 0)),
        ((7, 1), (7, "1")),  # an int is not its string
        ((7, 1), (7, True)),  # nor a bool
        ((7, 2**64), (7, 0)),  # ints beyond 64 bits are hashed, not truncated
    ],
)
def test_derive_seed_tells_apart_identities_that_share_words(one: tuple, two: tuple) -> None:
    assert derive_seed(*one) != derive_seed(*two)


def test_numpy_ints_derive_the_same_seed_as_python_ints() -> None:
    assert derive_seed(np.int64(4), np.int32(5), np.uint8(6)) == derive_seed(4, 5, 6)


def test_derived_seeds_are_the_same_in_another_process() -> None:
    identity = "'pyxtal', 'Cu2Ag1', 225, 3, (1, 2), -5, 2**40"
    code = (
        "from assyst_nodes.random import derive_seed, stream;"
        f"print(derive_seed(42, {identity}), derive_seed(2**62, {identity}),"
        "stream(42, 'x').integers(1 << 60))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "77"},  # str hashing differs from this process
    ).stdout.split()
    expected = [
        derive_seed(42, "pyxtal", "Cu2Ag1", 225, 3, (1, 2), -5, 2**40),
        derive_seed(2**62, "pyxtal", "Cu2Ag1", 225, 3, (1, 2), -5, 2**40),
        stream(42, "x").integers(1 << 60),
    ]
    assert [int(x) for x in out] == expected


# --- stream --------------------------------------------------------------------------------


@given(seeds, identities)
def test_stream_reproduces_the_same_draws(seed: int, identity: list) -> None:
    first = stream(seed, *identity).normal(size=8)
    assert np.array_equal(first, stream(seed, *identity).normal(size=8))
    assert np.array_equal(first, np.random.default_rng(derive_seed(seed, *identity)).normal(size=8))


def test_streams_of_neighbouring_identities_are_uncorrelated() -> None:
    draws = np.array([stream(11, "rattle", i).normal(size=4000) for i in range(6)])
    correlation = np.corrcoef(draws)
    off_diagonal = correlation[~np.eye(len(draws), dtype=bool)]
    assert np.abs(off_diagonal).max() < 0.1
    assert not np.array_equal(stream(3, "a", 1).normal(size=10), stream(3, "a", 2).normal(size=10))
