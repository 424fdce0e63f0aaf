"""PBSCluster: workers in PBS (PBS Pro, OpenPBS, Torque) jobs, submitted with ``qsub``.

>>> cluster = PBSCluster(cores=8, memory='32GB', queue='workq')    # doctest: +SKIP
>>> print(cluster.job_script())                                    # doctest: +SKIP
#!/usr/bin/env bash
<BLANKLINE>
#PBS -N lazyarr-worker
#PBS -q workq
#PBS -l select=1:ncpus=8:mem=30518mb
#PBS -l walltime=00:30:00
...
"""
from __future__ import annotations

import math
import re
from typing import Any

from .core import ENDING, PENDING, RUNNING, JobQueueCluster, JobQueueError

__all__ = ["PBSCluster", "PBS_STATES"]

#: ``qstat``'s one-letter ``job_state``, normalized. C (Torque's completed), F (finished) and
#: X (finished sub-job) are absent: such a job has ended.
PBS_STATES = {
    "Q": PENDING, "W": PENDING, "H": PENDING, "T": PENDING, "M": PENDING,
    "R": RUNNING, "B": RUNNING, "S": RUNNING, "U": RUNNING,
    "E": ENDING,
}

_JOB_ID = re.compile(r"^\d+(?:\[\d*\])?(?:\.[\w.\-]+)?$")
_BENIGN = re.compile(r"Unknown Job Id|Job has finished|job has finished", re.IGNORECASE)


class PBSCluster(JobQueueCluster):
    """A scheduler in this process and workers in PBS batch jobs.

    Takes the parameters of :class:`~runtime.jobqueue.core.JobQueueCluster`, and
    ``resource_spec``: the ``-l`` resource request. By default the PBS Pro / OpenPBS form
    ``select=1:ncpus=<cores>:mem=<memory in MiB>mb``; for Torque pass e.g.
    ``resource_spec='nodes=1:ppn=8,mem=32gb'``.
    """

    system = "PBS"
    submit_command = "qsub"
    cancel_command = "qdel"
    status_command = "qstat"
    directive_prefix = "#PBS"
    job_id_variable = "PBS_JOBID"

    def __init__(self, cores: int, memory: str | int, *args: Any, resource_spec: str | None = None,
                 **kwargs: Any) -> None:
        if resource_spec is not None and (not isinstance(resource_spec, str) or not resource_spec.strip()
                                          or any(c.isspace() for c in resource_spec.strip())):
            raise ValueError(f"resource_spec must be one word such as 'select=1:ncpus=8:mem=32gb', "
                             f"not {resource_spec!r}")
        self.resource_spec = resource_spec
        super().__init__(cores, memory, *args, **kwargs)

    def job_header(self) -> list[str]:
        """``-N``, ``-q``, ``-A``, ``-l <resources>``, ``-l walltime=``, ``-o``/``-e``, then ``job_extra``."""
        lines = [f"-N {self.job_name}"]
        if self.queue is not None:
            lines.append(f"-q {self.queue}")
        if self.account is not None:
            lines.append(f"-A {self.account}")
        resources = self.resource_spec or f"select=1:ncpus={self.cores}:mem={math.ceil(self.memory / 2**20)}mb"
        lines += [f"-l {resources}", f"-l walltime={self.walltime}"]
        if self.log_directory is not None:
            lines.append(f"-o {self.log_directory}/")
            lines.append(f"-e {self.log_directory}/")
        return lines + self.job_extra

    @classmethod
    def parse_job_id(cls, stdout: str) -> str:
        """The id ``qsub`` prints, e.g. ``1234.pbsserver``.

        >>> PBSCluster.parse_job_id('1234.pbs01\\n')
        '1234.pbs01'
        """
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
        if not lines or not _JOB_ID.match(lines[-1]):
            raise JobQueueError(f"cannot find a job id in the output of qsub: {stdout.strip()!r}")
        return lines[-1]

    @classmethod
    def status_args(cls, job_ids: list[str]) -> list[str]:
        """``qstat -f ID ID``: the full format, which never truncates job ids."""
        return ["qstat", "-f", *job_ids]

    @classmethod
    def parse_status(cls, stdout: str) -> dict[str, str]:
        """``{id: state}`` from ``qstat -f`` (``Job Id:`` blocks with ``job_state = R``).

        >>> PBSCluster.parse_status('Job Id: 7.srv\\n    Job_Name = w\\n    job_state = R\\n'
        ...                         'Job Id: 8.srv\\n    job_state = Q\\nJob Id: 9.srv\\n    job_state = F\\n')
        {'7.srv': 'running', '8.srv': 'pending'}
        """
        states: dict[str, str] = {}
        current: str | None = None
        for line in stdout.splitlines():
            text = line.strip()
            if text.startswith("Job Id:"):
                current = text[len("Job Id:"):].strip()
            elif current is not None and text.startswith("job_state"):
                _, _, state = text.partition("=")
                normalized = PBS_STATES.get(state.strip().upper())
                if normalized is not None:
                    states[current] = normalized
        return states

    @classmethod
    def status_error_is_benign(cls, stderr: str) -> bool:
        """qstat complains about every id it no longer knows (``Unknown Job Id``, ``Job has finished``)."""
        lines = [line for line in stderr.splitlines() if line.strip()]
        return all(_BENIGN.search(line) for line in lines)
