"""Settings for the whole suite."""

from __future__ import annotations

from hypothesis import settings

# No deadline: `make test` asserts no timings, and a busy machine makes a 200 ms deadline a
# coin toss (hypothesis' own default). Tests that need other settings still set their own.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")
