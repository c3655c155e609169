"""The presets, samplers, augments and torch adapters yield what they yielded before issue 15's moves."""

from __future__ import annotations

import json

import pytest

from .behaviour_digests import EXPECTED, compute_digests


@pytest.fixture(scope="module")
def found() -> dict[str, str]:
    return compute_digests()


def test_every_recorded_behaviour_is_still_computed(found):
    assert sorted(found) == sorted(json.loads(EXPECTED.read_text()))


@pytest.mark.parametrize("name", sorted(json.loads(EXPECTED.read_text())))
def test_behaviour_digest_is_unchanged(found, name):
    assert found[name] == json.loads(EXPECTED.read_text())[name], name
