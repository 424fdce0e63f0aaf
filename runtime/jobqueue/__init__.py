"""Clusters whose workers run as batch jobs: :class:`SLURMCluster` and :class:`PBSCluster`.

>>> from runtime.jobqueue import SLURMCluster
>>> from runtime import Client
>>> cluster = SLURMCluster(cores=8, memory='32GB', walltime='02:00:00', account='proj',   # doctest: +SKIP
...                        scheduler_options={'interface': 'ib0'})
>>> print(cluster.job_script())      # the script each job runs                          # doctest: +SKIP
>>> cluster.scale(4)                 # sbatch four jobs                                  # doctest: +SKIP
>>> client = Client(cluster)                                                             # doctest: +SKIP
>>> cluster.close()                  # scancel them, close the scheduler                 # doctest: +SKIP

See docs/jobqueue.md.
"""
from .core import JobQueueCluster, JobQueueError, format_walltime, interface_address, parse_walltime
from .pbs import PBSCluster
from .slurm import SLURMCluster

__all__ = ["JobQueueCluster", "JobQueueError", "PBSCluster", "SLURMCluster", "format_walltime",
           "interface_address", "parse_walltime"]
