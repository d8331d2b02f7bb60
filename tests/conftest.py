"""Shared fixtures: a real Postgres (tests.fixtures_pg) and a real Temporal (tests.fixtures_temporal)."""

pytest_plugins = ["tests.fixtures_pg"]
