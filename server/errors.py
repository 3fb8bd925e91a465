"""Errors of running the server (the game's own errors live in raid.errors)."""

from __future__ import annotations


class StartupError(Exception):
    """The server refuses to start; the message is the one-line reason."""
