"""Temporary: the threaded scheduler lands here."""
from .core import get  # noqa: F401
