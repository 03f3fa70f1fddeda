"""Hypothesis profiles for the fuzz suite.

``default`` (what the normal test run uses): derandomised (a fixed seed, so CI is reproducible), no
example database, a small budget per test so the whole suite stays well under a minute.
``long``: ``python -m pytest tests/fuzz --hypothesis-profile long`` — 50x the examples, random
seeds; for a session that hunts crashes (not in CI). A failure either profile finds is added as an
``@example`` to its test, so it stays a regression case forever.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=60, derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("long", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile("default")
