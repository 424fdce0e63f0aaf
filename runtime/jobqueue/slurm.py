"""SLURMCluster: workers in SLURM jobs, submitted with ``sbatch`` and cancelled with ``scancel``.

>>> cluster = SLURMCluster(cores=8, memory='32GB', account='proj', queue='normal')   # doctest: +SKIP
>>> print(cluster.job_script())                                                      # doctest: +SKIP
#!/usr/bin/env bash
<BLANKLINE>
#SBATCH -J lazyarr-worker
#SBATCH -n 1
#SBATCH --cpus-per-task=8
#SBATCH --mem=30518M
#SBATCH -t 00:30:00
#SBATCH -A proj
#SBATCH -p normal
...
"""
from __future__ import annotations

import math
import re

from .core import ENDING, PENDING, RUNNING, JobQueueCluster, JobQueueError

__all__ = ["SLURMCluster", "SLURM_STATES"]

#: ``squeue``'s long state names, normalized. Terminal states (COMPLETED, FAILED, TIMEOUT, ...)
#: are absent: such a job has ended.
SLURM_STATES = {
    "PENDING": PENDING, "CONFIGURING": PENDING, "REQUEUED": PENDING, "REQUEUE_HOLD": PENDING,
    "REQUEUE_FED": PENDING, "RESV_DEL_HOLD": PENDING,
    "RUNNING": RUNNING, "SUSPENDED": RUNNING, "RESIZING": RUNNING, "SIGNALING": RUNNING, "STAGE_OUT": RUNNING,
    "COMPLETING": ENDING, "STOPPED": ENDING,
}

_SUBMITTED = re.compile(r"Submitted batch job (\d+)")
_PARSABLE = re.compile(r"^(\d+)(?:;\S*)?$")


class SLURMCluster(JobQueueCluster):
    """A scheduler in this process and workers in SLURM batch jobs.

    Each job asks for one task with ``cores`` CPUs (``--cpus-per-task``) and ``memory``
    (``--mem``, in MiB, rounded up) for ``walltime``, charged to ``account`` in partition
    ``queue``; see :class:`~runtime.jobqueue.core.JobQueueCluster` for every parameter.

    >>> with SLURMCluster(cores=4, memory='8GB') as cluster:      # doctest: +SKIP
    ...     cluster.scale(10)                                      # 10 jobs of 1 worker, 4 threads, 8 GB
    ...     with Client(cluster) as client:
    ...         x.mean().compute()
    """

    system = "SLURM"
    submit_command = "sbatch"
    cancel_command = "scancel"
    status_command = "squeue"
    directive_prefix = "#SBATCH"
    job_id_variable = "SLURM_JOB_ID"

    def job_header(self) -> list[str]:
        """``-J``, ``-n 1``, ``--cpus-per-task``, ``--mem``, ``-t``, ``-A``, ``-p``, ``-o``/``-e``, then ``job_extra``."""
        lines = [f"-J {self.job_name}", "-n 1", f"--cpus-per-task={self.cores}",
                 f"--mem={math.ceil(self.memory / 2**20)}M", f"-t {self.walltime}"]
        if self.account is not None:
            lines.append(f"-A {self.account}")
        if self.queue is not None:
            lines.append(f"-p {self.queue}")
        if self.log_directory is not None:
            lines.append(f"-o {self.log_directory}/{self.job_name}-%j.out")
            lines.append(f"-e {self.log_directory}/{self.job_name}-%j.err")
        return lines + self.job_extra

    @classmethod
    def parse_job_id(cls, stdout: str) -> str:
        """The id in ``Submitted batch job 123`` (or ``--parsable``'s ``123;cluster``).

        >>> SLURMCluster.parse_job_id('Submitted batch job 4242\\n')
        '4242'
        """
        match = _SUBMITTED.search(stdout) or _PARSABLE.match(stdout.strip())
        if match is None:
            raise JobQueueError(f"cannot find a job id in the output of sbatch: {stdout.strip()!r}")
        return match.group(1)

    @classmethod
    def status_args(cls, job_ids: list[str]) -> list[str]:
        """``squeue --noheader --format='%i %T' --jobs=ID,ID``."""
        return ["squeue", "--noheader", "--format=%i %T", "--jobs=" + ",".join(job_ids)]

    @classmethod
    def parse_status(cls, stdout: str) -> dict[str, str]:
        """``{id: state}`` from ``squeue --format='%i %T'`` lines; ended jobs are left out.

        >>> SLURMCluster.parse_status('12 RUNNING\\n13 PENDING\\n14 COMPLETED\\n')
        {'12': 'running', '13': 'pending'}
        """
        states = {}
        for line in stdout.splitlines():
            words = line.split()
            if not words:
                continue
            if len(words) != 2:
                raise JobQueueError(f"cannot parse this line of squeue's output: {line!r}")
            job_id, state = words
            normalized = SLURM_STATES.get(state.upper().rstrip("+"))
            if normalized is not None:
                states[job_id] = normalized
        return states

    @classmethod
    def status_error_is_benign(cls, stderr: str) -> bool:
        """squeue fails with ``Invalid job id specified`` when asked about one job that has ended."""
        return "Invalid job id" in stderr
