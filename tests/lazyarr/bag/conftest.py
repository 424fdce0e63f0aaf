"""Shared fixtures of the bag tests: the in-process schedulers and seeded random data.

Most tests run on ``'sync'`` and ``'threads'``; the ``'processes'`` scheduler is exercised by
the few, larger tests in ``test_bag_processes.py`` because a process pool is slow to start.
"""
from __future__ import annotations

import pytest

LOCAL_SCHEDULERS = ["sync", "threads"]


@pytest.fixture(params=LOCAL_SCHEDULERS)
def scheduler(request: pytest.FixtureRequest) -> str:
    return request.param


