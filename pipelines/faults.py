"""Fault injection: stop the process at a named point, as a crash or a kill would.

Tests set ``OBSERVANCE_FAULT`` to one point (``ingest:committed:transmissions``,
``model:marts/patient_periods:written``, ``issue:recorded``…) and prove that the next run leaves
the warehouse as a run that was never stopped does (tests/test_faults.py). Unset, it costs one
environment lookup per point.
"""

from __future__ import annotations

import logging
import os

FAULT_ENV = "OBSERVANCE_FAULT"
EXIT_FAULT = 97

log = logging.getLogger(__name__)


def fault(point: str) -> None:
    """Stop the process here, at once and without cleaning up, when the hook names ``point``."""
    if os.environ.get(FAULT_ENV) == point:
        log.error("fault injected at %s", point)
        os._exit(EXIT_FAULT)
