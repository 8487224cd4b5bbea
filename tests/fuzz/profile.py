"""How hard the fuzz tests try: a modest number of examples in the default run (the whole
set stays under a minute), many more with ``MAILVAULT_FUZZ=deep`` (what ``test_deep.py``
runs under the slow mark).

Each property states its own time budget per example as Hypothesis's ``deadline``: an input
that makes a parser take longer fails the property (Hypothesis runs it again to be sure), so
"never hangs" is asserted without a sleep or a wall-clock measurement of the whole test.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

DEEP = os.environ.get("MAILVAULT_FUZZ") == "deep"
# Deep runs try fifty times as many examples as the default run.
SCALE = 50 if DEEP else 1


def fuzz(examples: int, budget_s: float | None = 2.0) -> settings:
    """Settings for one property: ``examples`` in the default run, ``budget_s`` per example
    (None: no per-example budget, for properties whose examples talk to a server)."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None if budget_s is None else timedelta(seconds=budget_s),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.function_scoped_fixture],
        # Examples are drawn afresh each run; a failure is kept as a fixture file instead.
        database=None,
        print_blob=True,
    )
