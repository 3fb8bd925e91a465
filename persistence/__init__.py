"""Persistence: the SQLite database service, the journal writer and the database lock.

Imports nothing from ``raid``: raid and player state cross this seam as opaque JSON text
inside the records of ``persistence.records``.
"""
