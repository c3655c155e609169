"""Fixtures for the torch_data tests."""

from __future__ import annotations

import gc
import warnings

import pytest


@pytest.fixture(autouse=True)
def _loaders_cleaned_up():
    """Quiet torch's core-count warning; shut down each test's loader workers before the next.

    Collecting garbage after each test stops the worker processes of loaders kept alive by
    reference cycles now, instead of while a later test forks new workers.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="This DataLoader will create")
        yield
    gc.collect()
