"""shardstream.checks: the one module of argument checks, at the boundaries it accepts and refuses."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.checks import (
    SEED_WORD_LIMIT,
    TORCH_SEED_MAX,
    TORCH_SEED_MIN,
    argument_type,
    check_bool,
    check_int,
    check_on_error,
    check_seed,
    check_seed_word,
    check_timeout,
    check_torch_seed,
    non_negative_int,
    parse_int,
    parse_positive_float,
    parse_size,
    positive_int,
    resolve_on_error,
    size_argument,
)
from shardstream.errors import ConfigError

BOUNDED = settings(max_examples=200, deadline=None)
NOT_INTEGERS = [True, False, np.bool_(True), 1.0, np.float32(2), "3", None, [1], object()]


def message(call, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as caught:
        call(*args, **kwargs)
    return str(caught.value)


# --- integers ------------------------------------------------------------------------------


@BOUNDED
@given(
    value=st.integers(-(2**70), 2**70),
    low=st.none() | st.integers(-100, 100),
    span=st.none() | st.integers(0, 200),
    numpy=st.booleans(),
)
def test_check_int_accepts_exactly_the_integers_within_the_bounds(value, low, span, numpy):
    high = None if span is None or low is None else low + span
    given_value = np.int64(value) if numpy and -(2**63) <= value < 2**63 else value
    inside = (low is None or value >= low) and (high is None or value <= high)
    if inside:
        result = check_int(given_value, "n", low=low, high=high)
        assert result == value and type(result) is int
    else:
        text = message(check_int, given_value, "n", "Owner", low=low, high=high)
        bound = f">= {low}" if low is not None and value < low else f"<= {high}"
        assert text == f"Owner: n must be {bound}, got {value}"


@pytest.mark.parametrize("value", NOT_INTEGERS, ids=repr)
def test_check_int_refuses_bools_floats_and_text(value):
    assert message(check_int, value, "n", "Owner") == f"Owner: n must be an integer, got {value!r}"
    assert message(check_int, value, "n") == f"n must be an integer, got {value!r}"


def test_check_int_message_template_is_used_for_every_refusal():
    template = "{name}={value!r} must be an integer >= {low}"
    assert message(check_int, 0, "workers", low=1, message=template) == (
        "workers=0 must be an integer >= 1"
    )
    assert message(check_int, "x", "workers", low=1, message=template) == (
        "workers='x' must be an integer >= 1"
    )


@BOUNDED
@given(st.integers(-5, 5))
def test_positive_and_non_negative_int(value):
    if value >= 1:
        assert positive_int(value, "batch_size") == value
    else:
        assert message(positive_int, value, "batch_size") == (
            f"batch_size must be a positive integer, got {value}"
        )
    if value >= 0:
        assert non_negative_int(np.int32(value), "off") == value
    else:
        assert message(non_negative_int, value, "off") == (
            f"off must be a non-negative integer, got {value}"
        )
    assert message(positive_int, True, "batch_size") == (
        "batch_size must be a positive integer, got True"
    )


def test_check_bool():
    assert check_bool(True, "drop_last") is True
    assert check_bool(np.bool_(False), "drop_last") is False
    for value in (1, 0, "yes", None):
        assert message(check_bool, value, "shuffle", "Sampler") == (
            f"Sampler: shuffle must be True or False, got {value!r}"
        )


# --- seeds ---------------------------------------------------------------------------------


@BOUNDED
@given(st.integers(-(2**80), 2**80))
def test_check_seed_takes_any_integer(value):
    assert check_seed(value) == value


@pytest.mark.parametrize("value", NOT_INTEGERS, ids=repr)
def test_check_seed_refuses_what_is_not_an_integer(value):
    assert message(check_seed, value) == f"seed must be an integer or None, got {value!r}"
    assert message(check_seed, value, owner="Loader") == (
        f"Loader: seed must be an integer or None, got {value!r}"
    )


@BOUNDED
@given(st.integers(-(2**40), 2**40))
def test_check_seed_word_is_one_32_bit_word(value):
    if 0 <= value < SEED_WORD_LIMIT:
        assert check_seed_word(value, "epoch") == value
    elif value < 0:
        assert message(check_seed_word, value, "epoch") == (
            f"seed derivation: epoch must be >= 0, got {value}"
        )
    else:
        assert message(check_seed_word, value, "epoch") == (
            f"epoch must be below 2**32 for seed derivation, got {value}"
        )


@pytest.mark.parametrize("edge", [TORCH_SEED_MIN, TORCH_SEED_MAX])
def test_check_torch_seed_boundaries(edge):
    assert check_torch_seed(edge, "seed", "S") == edge
    outside = edge - 1 if edge == TORCH_SEED_MIN else edge + 1
    assert message(check_torch_seed, outside, "seed", "S") == (
        f"S: seed={outside} is outside torch's seed range [-2**63, 2**64 - 1]"
    )


# --- timeouts and the error policy ---------------------------------------------------------


@BOUNDED
@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10, 10))
def test_check_timeout(value):
    if math.isfinite(value) and value > 0:
        result = check_timeout(value)
        assert result == float(value) and type(result) is float
    else:
        assert message(check_timeout, value) == (
            f"timeout={value!r} must be a positive number of seconds or None"
        )


def test_check_timeout_none_and_bools():
    assert check_timeout(None) is None
    assert message(check_timeout, True) == (
        "timeout=True must be a positive number of seconds or None"
    )


def test_check_on_error():
    assert check_on_error("raise") == "raise" and check_on_error("skip") == "skip"
    for bad in ("ignore", "Skip", True, None):
        assert message(check_on_error, bad) == f"on_error must be 'raise' or 'skip', got {bad!r}"
    assert message(check_on_error, "warn", "on_bad_image") == (
        "on_bad_image must be 'raise' or 'skip', got 'warn'"
    )


@pytest.mark.parametrize(
    "on_error, alias_value, flag, expected",
    [
        (None, None, True, "raise"),
        ("skip", None, True, "skip"),
        (None, True, True, "skip"),
        (None, False, True, "raise"),
        (None, "skip", False, "skip"),
        (None, "raise", False, "raise"),
    ],
)
def test_resolve_on_error(on_error, alias_value, flag, expected):
    got = resolve_on_error(on_error, owner="X", alias="old", alias_value=alias_value, flag=flag)
    assert got == expected


def test_resolve_on_error_refuses_both_and_bad_aliases():
    assert message(
        resolve_on_error, "raise", owner="X", alias="old", alias_value=False, flag=True
    ) == ("X: give on_error or its alias old, not both (on_error='raise', old=False)")
    assert message(
        resolve_on_error, None, owner="X", alias="old", alias_value="skip", flag=True
    ) == ("X: old must be True or False, got 'skip'")
    assert message(
        resolve_on_error, None, owner="X", alias="old", alias_value=True, flag=False
    ) == ("old must be 'raise' or 'skip', got True")


# --- command-line text ---------------------------------------------------------------------


@BOUNDED
@given(st.integers(-1000, 1000))
def test_parse_int_bounds_and_messages(value):
    text = str(value)
    if value >= 1:
        assert parse_int(text, low=1) == value
        assert parse_int(text, low=1, wanted="an integer >= 1") == value
    else:
        assert message(parse_int, text, low=1) == f"must be at least 1, got {value}"
        assert message(parse_int, text, low=1, wanted="an integer >= 1") == (
            f"{text!r} is not an integer >= 1"
        )
    if 1 <= value <= 100:
        assert parse_int(text, low=1, high=100) == value
    elif value > 100:
        assert message(parse_int, text, low=1, high=100) == f"must be in 1..100, got {value}"
        assert message(parse_int, text, high=100) == f"must be at most 100, got {value}"


def test_parse_int_refuses_text():
    assert message(parse_int, "x", low=1) == "not an int: 'x'"
    assert message(parse_int, "1.5", low=0, wanted="an integer >= 0") == (
        "'1.5' is not an integer >= 0"
    )


@pytest.mark.parametrize("text", ["0", "-1", "inf", "nan", "x", ""])
def test_parse_positive_float_refuses(text):
    assert message(parse_positive_float, text) == f"{text!r} is not a number > 0"


def test_parse_positive_float_accepts():
    assert parse_positive_float("0.01") == 0.01
    assert parse_positive_float("3") == 3.0


@BOUNDED
@given(
    number=st.integers(1, 4096),
    unit=st.sampled_from(["", "k", "K", "m", "M", "g", "G", "t", "T"]),
    tail=st.sampled_from(["", "i", "ib", "iB", "b", "B"]),
)
def test_parse_size_units(number, unit, tail):
    # every spelling matches; only a B without i after a unit means powers of 1000
    power = "kmgt".index(unit.lower()) + 1 if unit else 0
    base = 1000 if tail.lower() == "b" and unit else 1024
    assert parse_size(f"{number}{unit}{tail}") == number * base**power


@pytest.mark.parametrize("bad", ["", "12X", "-1M", "M", "1.5.2G"])
def test_parse_size_refuses_what_is_not_a_size(bad):
    assert message(parse_size, bad) == f"not a size: {bad!r} (e.g. 512M, 1G, 1048576)"


@pytest.mark.parametrize("zero", ["0", "0.1", "0K"])
def test_parse_size_refuses_less_than_a_byte(zero):
    assert message(parse_size, zero) == f"size must be at least 1 byte, got {zero!r}"


def test_argument_type_turns_config_errors_into_usage_errors():
    assert size_argument("2K") == 2048 and size_argument.__name__ == "parse_size"
    with pytest.raises(argparse.ArgumentTypeError, match="size must be at least 1 byte"):
        size_argument("0")
    quality = argument_type(parse_int, low=1, high=100)
    assert quality("100") == 100
    parser = argparse.ArgumentParser(prog="p", exit_on_error=False)
    parser.add_argument("--quality", type=quality)
    with pytest.raises(argparse.ArgumentError, match=r"must be in 1\.\.100, got 101"):
        parser.parse_args(["--quality", "101"])
