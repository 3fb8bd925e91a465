"""One timeout unit for every wait in the tests, scaled by RAID_TEST_TIMEOUT_SCALE."""

from __future__ import annotations

import os

SCALE = float(os.environ.get("RAID_TEST_TIMEOUT_SCALE", "1"))
TIMEOUT = 10.0 * SCALE
"""How long any single wait may take before the test fails."""
