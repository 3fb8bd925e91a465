"""The balancing simulator: a raid played offline by synthetic players with the real rules.

Pure and deterministic like the rest of ``raid/``: no I/O, no threads, no clock. The CLI
(``server/simulate_cli.py``) reads files, draws progress and writes reports and plots.
"""
