"""Reliability scenarios against a real server process: chaos (SIGKILL), storage faults and
abuse. Each scenario is a function with its size as parameters: `make test` runs small sizes
(tests/e2e/test_chaos.py, test_storage_faults.py, test_abuse.py) and `make soak` runs large
ones and rewrites the table in docs/reliability.md (``python -m tests.soak``)."""
