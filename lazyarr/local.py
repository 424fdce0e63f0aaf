"""Temporary: the shared local engine lands here (see issue 2 item 5)."""
from .core import get as get_sync  # noqa: F401
