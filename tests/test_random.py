"""Seeds and streams: reproducible in any process, independent per identity."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from assyst_nodes.random import MAX_SEED, derive_seed, resolve_seed, stream

seeds = st.integers(min_value=0, max_value=MAX_SEED)
identities = st.lists(st.one_of(st.integers(0, 10**6), st.text(max_size=8)), max_size=4)


@given(seeds)
def test_resolve_seed_keeps_an_int(seed: int) -> None:
    assert resolve_seed(seed) == seed
    assert resolve_seed(np.int64(seed)) == seed


def test_resolve_seed_draws_once_from_a_generator() -> None:
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    first = resolve_seed(a)
    assert first == resolve_seed(b)
    assert resolve_seed(a) != first  # the generator advanced
    assert 0 <= first <= MAX_SEED


def test_resolve_seed_of_none_gives_fresh_valid_seeds() -> None:
    drawn = {resolve_seed(None) for _ in range(5)}
    assert len(drawn) == 5
    assert all(0 <= s <= MAX_SEED for s in drawn)


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (-1, ValueError, "-1"),
        (2**63, ValueError, str(2**63)),
        (True, TypeError, "True"),
        (1.5, TypeError, "1.5"),
        ("7", TypeError, "'7'"),
    ],
)
def test_resolve_seed_rejects_bad_values_by_name(bad: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        resolve_seed(bad)  # type: ignore[arg-type]


@given(seeds, identities)
def test_derive_seed_is_deterministic_and_in_range(seed: int, identity: list) -> None:
    derived = derive_seed(seed, *identity)
    assert derived == derive_seed(seed, *identity)
    assert 0 <= derived <= MAX_SEED


@given(seeds, identities, identities)
def test_different_identities_give_different_seeds(seed: int, a: list, b: list) -> None:
    if [repr(x) for x in a] != [repr(x) for x in b]:
        assert derive_seed(seed, *a) != derive_seed(seed, *b)


def test_identity_order_matters_and_base_seed_matters() -> None:
    assert derive_seed(1, "a", "b") != derive_seed(1, "b", "a")
    assert derive_seed(1, "a") != derive_seed(2, "a")


def test_derived_seeds_are_the_same_in_another_process() -> None:
    code = (
        "from assyst_nodes.random import derive_seed, stream;"
        "print(derive_seed(42, 'pyxtal', 'Cu2Ag1', 225, 3), stream(42, 'x').integers(1 << 60))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert int(out[0]) == derive_seed(42, "pyxtal", "Cu2Ag1", 225, 3)
    assert int(out[1]) == stream(42, "x").integers(1 << 60)


def test_stream_reproduces_the_same_draws() -> None:
    assert np.array_equal(stream(3, "a", 1).normal(size=10), stream(3, "a", 1).normal(size=10))
    assert not np.array_equal(stream(3, "a", 1).normal(size=10), stream(3, "a", 2).normal(size=10))
