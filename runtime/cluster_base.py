"""What every cluster object that owns an in-process scheduler has in common.

:class:`~runtime.cluster.LocalCluster` and the job-queue clusters
(:class:`~runtime.jobqueue.SLURMCluster`, :class:`~runtime.jobqueue.PBSCluster`) differ in how
they start and stop workers; the scheduler's addresses, the dashboard link, ``status``,
``adapt`` and the context-manager protocol are the same and live here.
"""
from __future__ import annotations

from typing import Any

__all__ = ["SchedulerOwner"]


class SchedulerOwner:
    """Mixin for a cluster holding ``self._resources`` (with ``.scheduler`` and ``.closed``) and
    defining ``close()`` and ``scale(n)``."""

    _resources: Any

    @property
    def scheduler(self) -> Any:
        """The in-process :class:`~runtime.scheduler.Scheduler`."""
        return self._resources.scheduler

    @property
    def scheduler_address(self) -> str:
        """The address clients connect to: ``Client(cluster)`` or ``Client(cluster.scheduler_address)``."""
        return self.scheduler.address_to_clients

    @property
    def scheduler_address_to_workers(self) -> str:
        """The address workers connect to (to add workers by hand: ``lazyarr-worker <this>``)."""
        return self.scheduler.address_to_workers

    @property
    def dashboard_link(self) -> str | None:
        """The URL of the scheduler's dashboard, None if it has none."""
        return self.scheduler.dashboard_link

    @property
    def status(self) -> str:
        """``'running'`` or ``'closed'``."""
        return "closed" if self._resources.closed else "running"

    def adapt(self, minimum: int = 0, maximum: int | None = None, interval: Any = "1s", wait_count: int = 3,
              target_duration: Any = "5s") -> Any:
        """Scale between ``minimum`` and ``maximum`` workers as the load changes: more when tasks
        queue (about ``target_duration`` of work per thread), fewer when workers stay idle for
        ``wait_count`` checks ``interval`` apart, moving the data a worker holds before it goes
        (docs/adaptive.md). Replaces an earlier ``adapt``. Returns the
        :class:`~runtime.adaptive.Adaptive`, whose ``stop()`` ends it; ``close()`` ends it too.
        """
        from .adaptive import adapt

        return adapt(self, minimum=minimum, maximum=maximum, interval=interval, wait_count=wait_count,
                     target_duration=target_duration)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
