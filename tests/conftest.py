"""Shared test settings."""

from __future__ import annotations

from hypothesis import settings

# CI machines are small and shared: judge properties on their inputs, not on timing.
settings.register_profile("tpru", deadline=None, max_examples=200)
settings.load_profile("tpru")
