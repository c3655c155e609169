"""Fixtures shared by the vision tests."""

from __future__ import annotations
