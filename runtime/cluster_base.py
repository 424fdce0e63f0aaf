"""What every cluster object that owns an in-process scheduler has in common.

:class:`~runtime.cluster.LocalCluster` and the job-queue clusters
(:class:`~runtime.jobqueue.SLURMCluster`, :class:`~runtime.jobqueue.PBSCluster`) differ in how
they start and stop workers; the scheduler's addresses, the dashboard link, ``status``,
``adapt`` and the context-manager protocol are the same and live here.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["SchedulerOwner", "retire_then_stop"]

logger = logging.getLogger("runtime.cluster")


def retire_then_stop(scheduler: Any, names: Sequence[str], stop: Callable[[list[str]], Any], timeout: float, *,
                     keep_unmoved: bool, should_stop: Callable[[], bool] | None = None) -> list[str]:
    """Take the workers ``names`` out of a cluster without losing data; returns the names stopped.

    The one way clusters shrink (``scale`` down, adaptive scaling): first
    ``scheduler.retire_workers`` has the workers that stay copy every result still needed that
    only these hold (scattered data included), then ``stop(names)`` stops them (a LocalCluster
    closes them, a job-queue cluster cancels their jobs).

    A worker whose data could not be moved within ``timeout`` seconds (nowhere to go, as when
    every worker leaves; copies failing) or before ``should_stop()`` is kept in service when
    ``keep_unmoved`` (adaptive scaling tries again later). Otherwise it is stopped all the same,
    as Dask does: the size asked for wins, a warning names it, and what only it held is
    recomputed from its graph, or lost if it was scattered. Names the scheduler does not know
    (not registered, or gone) are stopped unless ``keep_unmoved``.
    """
    wanted = set(names)
    addresses = scheduler.sync(lambda state: {str(ws.name): address for address, ws in state.workers.items()
                                              if str(ws.name) in wanted})
    retired = set(scheduler.retire_workers(list(addresses.values()), timeout=timeout, should_stop=should_stop)
                  if addresses else ())
    unmoved = [name for name, address in addresses.items() if address not in retired]
    if unmoved and keep_unmoved:
        logger.info("workers %s kept: the data only they hold could not be moved elsewhere", unmoved)
    elif unmoved:
        logger.warning("stopping workers %s although the data only they hold could not be moved elsewhere within "
                       "%g s: results computed from a graph will be recomputed, scattered data is lost", unmoved, timeout)
    stopped = [name for name in names if not keep_unmoved or addresses.get(name) in retired]
    if stopped:
        stop(stopped)
    return stopped


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
