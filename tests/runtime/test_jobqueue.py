"""SLURMCluster and PBSCluster: job scripts, batch-command parsing, and the whole path through a
fake batch system whose ``sbatch``/``qsub`` really start the job scripts as detached processes.

The end-to-end tests check with psutil that the workers run in the jobs' processes and that
those processes are gone after ``scale(0)``/``close()``. The ``fake_batch`` fixture kills any job
process still running at the end (and fails the test), so nothing outlives a failing test; a job
also dies at its walltime (2 minutes here) if the whole test run is killed.
"""
from __future__ import annotations

import gc
import operator
import os
import subprocess
import sys
import time

import psutil
import pytest

from runtime import Client
from runtime.jobqueue import JobQueueError, PBSCluster, SLURMCluster, format_walltime, interface_address, \
    parse_walltime

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fake batch system reads /proc")


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    """Batch systems write job logs (slurm-<id>.out) where jobs are submitted: not in the checkout."""
    monkeypatch.chdir(tmp_path)

MEMORY = "1GB"
WALLTIME = "00:02:00"


def _gone(pid: int) -> bool:
    """Has the process exited? (An orphan's zombie waits for an init that may never reap it.)"""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(pids: list[int], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(_gone(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise AssertionError(f"job processes still alive after {timeout} s: "
                                 f"{[pid for pid in pids if not _gone(pid)]}")
        time.sleep(0.05)


def _job_tree(pid: int) -> set[int]:
    """A job's process and its descendants (the worker runs under ``timeout`` in the fake)."""
    try:
        proc = psutil.Process(pid)
        return {pid} | {p.pid for p in proc.children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


# ----------------------------------------------------------------------------------------------
# Scripts and arguments (no batch system needed)


def test_walltime_parsing():
    assert parse_walltime("00:30:00") == 1800
    assert parse_walltime("2-00:00:01") == 172801
    assert parse_walltime(45) == 45
    assert format_walltime(parse_walltime("1-01:02:03")) == "25:02:03"
    for bad in ("30 minutes", "00:61:00", "", "1:2"):
        with pytest.raises(ValueError, match="HH:MM:SS"):
            parse_walltime(bad)
    with pytest.raises(ValueError, match="positive"):
        parse_walltime("00:00:00")
    with pytest.raises(TypeError):
        parse_walltime(1.5)


def _check_syntax(script: str, tmp_path) -> None:
    path = tmp_path / "job.sh"
    path.write_text(script)
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_slurm_job_script(tmp_path):
    with SLURMCluster(cores=4, memory="8GB", walltime="1-00:00:00", account="proj1", queue="short",
                      processes=2, job_extra=["--exclusive"], local_directory=tmp_path / "scratch dir",
                      log_directory=tmp_path / "logs", prologue=["module load python"],
                      worker_extra_args=["--log-level", "debug"]) as cluster:
        script = cluster.job_script()
        lines = script.splitlines()
        assert lines[0] == "#!/usr/bin/env bash"
        directives = [line for line in lines if line.startswith("#SBATCH")]
        assert directives == [
            "#SBATCH -J lazyarr-worker", "#SBATCH -n 1", "#SBATCH --cpus-per-task=4",
            f"#SBATCH --mem={-(-8 * 10**9 // 2**20)}M", "#SBATCH -t 24:00:00", "#SBATCH -A proj1",
            "#SBATCH -p short", f"#SBATCH -o {tmp_path}/logs/lazyarr-worker-%j.out",
            f"#SBATCH -e {tmp_path}/logs/lazyarr-worker-%j.err", "#SBATCH --exclusive"]
        assert lines.index("module load python") > lines.index(directives[-1])
        command = lines[-1]
        assert command.startswith(f"exec {sys.executable} -m runtime.cli worker {cluster.scheduler_address_to_workers} ")
        # two processes per job: each gets half the threads and half the memory
        assert "--nthreads 2 --memory-limit 4000000000" in command
        assert "--nworkers 2" in command
        assert '--name lazyarr-worker-"${SLURM_JOB_ID}"' in command
        assert command.endswith("--log-level debug")
        assert f'mkdir -p "{tmp_path}/scratch dir" && cd "{tmp_path}/scratch dir"' in script
        assert (cluster.worker_threads, cluster.worker_memory) == (2, 4 * 10**9)
        _check_syntax(script, tmp_path)


def test_pbs_job_script(tmp_path):
    with PBSCluster(cores=3, memory="6GiB", queue="workq", account="acct", worker_host="10.1.2.3") as cluster:
        script = cluster.job_script()
        directives = [line for line in script.splitlines() if line.startswith("#PBS")]
        assert directives == ["#PBS -N lazyarr-worker", "#PBS -q workq", "#PBS -A acct",
                              "#PBS -l select=1:ncpus=3:mem=6144mb", "#PBS -l walltime=00:30:00"]
        command = script.splitlines()[-1]
        assert "--nthreads 3 --memory-limit 6442450944" in command
        assert '--name lazyarr-worker-"${PBS_JOBID}" --host 10.1.2.3' in command
        assert "--nworkers" not in command and "LAZYARR_WORKER_HOST" not in script
        _check_syntax(script, tmp_path)
    with PBSCluster(cores=8, memory="16GB", resource_spec="nodes=1:ppn=8,mem=16gb") as cluster:
        assert "#PBS -l nodes=1:ppn=8,mem=16gb\n" in cluster.job_script()


def test_job_script_finds_worker_host_at_run_time(tmp_path):
    """The 'auto' host line prints the address of the interface that reaches the scheduler."""
    with SLURMCluster(cores=1, memory=MEMORY) as cluster:
        line = next(line for line in cluster.job_script().splitlines() if line.startswith("LAZYARR_WORKER_HOST="))
        result = subprocess.run(["bash", "-c", f"{line}\necho \"$LAZYARR_WORKER_HOST\""], capture_output=True,
                                text=True, timeout=30)
        assert result.stdout.strip() == "127.0.0.1", result.stderr


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(cores=0), ValueError, "cores must be a positive integer"),
    (dict(cores=2, processes=3), ValueError, "processes=3 is more than cores=2"),
    (dict(memory="lots"), ValueError, "cannot parse 'lots'"),
    (dict(memory=0), ValueError, "memory must be positive"),
    (dict(walltime="half an hour"), ValueError, "HH:MM:SS"),
    (dict(job_extra="--exclusive"), TypeError, r"write \['--exclusive'\]"),
    (dict(account="my project"), ValueError, "account must be a single word"),
    (dict(job_name="1 bad name"), ValueError, "job_name must start with a letter"),
    (dict(scheduler_options={"hostname": "0.0.0.0"}), ValueError, "not an address workers can connect to"),
    (dict(scheduler_options={"interface": "no-such-nic0"}), ValueError, "no network interface 'no-such-nic0'"),
    (dict(log_directory="/tmp/with space"), ValueError, "white space"),
])
def test_bad_arguments(kwargs, error, match):
    kwargs = {"cores": 1, "memory": MEMORY, **kwargs}
    with pytest.raises(error, match=match):
        SLURMCluster(**kwargs)


def test_bad_scale_arguments():
    with SLURMCluster(cores=1, memory=MEMORY) as cluster:
        with pytest.raises(ValueError, match="non-negative number of workers"):
            cluster.scale(-1)
        with pytest.raises(TypeError, match="not both"):
            cluster.scale(1, jobs=1)
    with pytest.raises(RuntimeError, match="closed"):
        cluster.scale(1)
    with pytest.raises(TypeError, match="base class"):
        from runtime.jobqueue import JobQueueCluster
        JobQueueCluster(cores=1, memory=MEMORY)


def test_scheduler_on_an_interface():
    assert interface_address("lo") == "127.0.0.1"
    with SLURMCluster(cores=1, memory=MEMORY, scheduler_options={"interface": "lo", "port_to_clients": 0}) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        with Client(cluster) as client:  # the client takes the cluster itself
            assert client.scheduler_info()["workers"] == {}


def test_parse_slurm_output():
    assert SLURMCluster.parse_job_id("Submitted batch job 123456\n") == "123456"
    assert SLURMCluster.parse_job_id("77;cluster2\n") == "77"
    with pytest.raises(JobQueueError, match="cannot find a job id in the output of sbatch"):
        SLURMCluster.parse_job_id("sbatch: queue is full\n")
    out = "101 RUNNING\n102 PENDING\n103 COMPLETING\n104 CANCELLED+\n105 TIMEOUT\n"
    assert SLURMCluster.parse_status(out) == {"101": "running", "102": "pending", "103": "ending"}
    with pytest.raises(JobQueueError, match="cannot parse"):
        SLURMCluster.parse_status("JOBID PARTITION NAME\n")
    assert SLURMCluster.status_error_is_benign("slurm_load_jobs error: Invalid job id specified\n")
    assert not SLURMCluster.status_error_is_benign("squeue: error: Unable to contact slurm controller\n")


def test_parse_pbs_output():
    assert PBSCluster.parse_job_id("4242.pbs-server.example.org\n") == "4242.pbs-server.example.org"
    assert PBSCluster.parse_job_id("99[].srv\n") == "99[].srv"
    with pytest.raises(JobQueueError, match="cannot find a job id in the output of qsub"):
        PBSCluster.parse_job_id("qsub: Job rejected by all possible destinations\n")
    full = ("Job Id: 11.srv\n    Job_Name = lazyarr-worker\n    job_state = R\n    queue = workq\n\n"
            "Job Id: 12.srv\n    job_state = Q\n\nJob Id: 13.srv\n    job_state = E\n\n"
            "Job Id: 14.srv\n    job_state = C\n")
    assert PBSCluster.parse_status(full) == {"11.srv": "running", "12.srv": "pending", "13.srv": "ending"}
    assert PBSCluster.status_error_is_benign("qstat: Unknown Job Id 15.srv\n"
                                             "qstat: 16.srv Job has finished, use -x or -H to obtain ...\n")
    assert not PBSCluster.status_error_is_benign("qstat: cannot connect to server srv (errno=111)\n")


# ----------------------------------------------------------------------------------------------
# Batch commands that are missing or fail


def test_missing_batch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a directory with no sbatch in it
    with SLURMCluster(cores=1, memory=MEMORY) as cluster:
        print(cluster.job_script())  # writing the script needs no batch system
        with pytest.raises(JobQueueError, match=r"'sbatch' was not found on PATH.*" + str(tmp_path)):
            cluster.scale(1)
        assert cluster._resources.jobs == {}


def test_failing_submission_reports_stderr(fake_batch, monkeypatch):
    monkeypatch.setenv("FAKE_BATCH_ACCOUNTS", "proj-ok")
    with SLURMCluster(cores=1, memory=MEMORY, account="proj-nope", walltime=WALLTIME) as cluster:
        with pytest.raises(JobQueueError, match=r"sbatch \S+ failed with exit code 1: sbatch: error: Batch job "
                                                r"submission failed: Invalid account"):
            cluster.scale(1)
        assert cluster.jobs == {}
    assert fake_batch.jobs() == {}


def test_rejected_directive_reports_stderr(fake_batch):
    with PBSCluster(cores=1, memory=MEMORY, job_extra=["-l gpus=2"], walltime=WALLTIME) as cluster:
        with pytest.raises(JobQueueError, match="exit code 2: qsub: Unknown resource Resource_List.gpus"):
            cluster.scale(1)


# ----------------------------------------------------------------------------------------------
# The whole path: submit, workers join, compute, cancel


@pytest.mark.timeout(180)
def test_slurm_cluster_end_to_end(fake_batch, tmp_path):
    logs = tmp_path / "logs"
    with SLURMCluster(cores=1, memory=MEMORY, walltime=WALLTIME, account="proj", queue="debug",
                      log_directory=logs, local_directory=tmp_path / "node-$SLURM_JOB_ID") as cluster:
        cluster.scale(2)
        submitted = [call for call in fake_batch.calls() if call[0] == "sbatch"]
        assert len(submitted) == 2
        jobs = cluster.jobs
        assert sorted(jobs) == sorted(fake_batch.jobs()) and set(jobs.values()) <= {"pending", "running"}

        workers = cluster.wait_for_workers(2, timeout=90)
        assert {w["job_id"] for w in workers.values()} == set(jobs)
        assert sorted(workers) == sorted(f"lazyarr-worker-{job_id}" for job_id in jobs)
        assert {(w["nthreads"], w["memory_limit"]) for w in workers.values()} == {(1, 10**9)}
        pids = fake_batch.pids()

        with Client(cluster, timeout=20) as client:
            assert client.get({"x": (sum, [1, 2, 3]), "y": (operator.mul, "x", 7)}, "y") == 42
            from lazyarr import delayed
            total = delayed(sum)([delayed(operator.pow)(i, 2) for i in range(10)])
            assert total.compute(scheduler=client) == 285
            # each worker really is the process its job started
            for name, info in workers.items():
                pid = client.submit(os.getpid, pure=False, workers=[name]).result(timeout=30)
                assert pid in _job_tree(pids[info["job_id"]]), (name, pid)
                # ... and it runs in its local directory, named by the node's shell
                cwd = client.submit(os.getcwd, pure=False, workers=[name]).result(timeout=30)
                assert cwd == str(tmp_path / f"node-{info['job_id']}")

        cluster.scale(0)
        assert ["scancel", *sorted(jobs)] in [[c[0], *sorted(c[1:])] for c in fake_batch.calls()]
        _wait_gone(list(pids.values()))
        assert cluster.jobs == {}
        deadline = time.monotonic() + 20
        while cluster.workers:
            assert time.monotonic() < deadline, f"the scheduler still lists {cluster.workers}"
            time.sleep(0.05)
        assert all((logs / f"lazyarr-worker-{job_id}.err").exists() for job_id in jobs)
    assert cluster.status == "closed"


@pytest.mark.timeout(180)
def test_pbs_cluster_two_processes_per_job(fake_batch):
    with PBSCluster(cores=2, memory=MEMORY, processes=2, walltime=WALLTIME, queue="workq") as cluster:
        cluster.scale(2)  # two workers: one job of two processes
        assert [c[0] for c in fake_batch.calls()].count("qsub") == 1
        (job_id,) = cluster.jobs
        assert job_id.endswith(".fakepbs")
        workers = cluster.wait_for_workers(2, timeout=90)
        assert sorted(workers) == [f"lazyarr-worker-{job_id}-0", f"lazyarr-worker-{job_id}-1"]
        assert {(w["nthreads"], w["memory_limit"], w["job_id"]) for w in workers.values()} == {(1, 5 * 10**8, job_id)}
        job_pids = _job_tree(fake_batch.pids()[job_id])
        with Client(cluster.scheduler_address, timeout=20) as client:
            futures = client.map(operator.add, range(20), range(20))
            assert client.gather(futures) == [2 * i for i in range(20)]
            ran_in = {client.submit(os.getpid, pure=False, workers=[name]).result(timeout=30) for name in workers}
            assert len(ran_in) == 2 and ran_in <= job_pids
    # close() alone cancels the job and its worker processes go
    assert any(c[0] == "qdel" and c[1:] == [job_id] for c in fake_batch.calls())
    _wait_gone(list(job_pids))


@pytest.mark.timeout(120)
def test_scale_down_retires_workers_before_cancelling_their_jobs(fake_batch, caplog):
    with SLURMCluster(cores=1, memory=MEMORY, walltime=WALLTIME) as cluster:
        cluster.scale(2)
        workers = cluster.wait_for_workers(2, timeout=90)
        first, second = list(cluster.jobs)                  # scale(1) cancels the newest: second
        leaving = next(name for name, info in workers.items() if info["job_id"] == second)
        staying = next(name for name, info in workers.items() if info["job_id"] == first)
        pids = fake_batch.pids()
        with Client(cluster, timeout=20) as client:
            # scattered data has no graph: were it not moved first, its future would fail
            [data] = client.scatter([list(range(1000))], workers=[leaving])
            assert client.who_has([data]) == {data.key: [workers[leaving]["address"]]}
            with caplog.at_level("INFO", logger="runtime.jobqueue"):
                cluster.scale(1)
            assert ["scancel", second] in fake_batch.calls()
            assert list(cluster.jobs) == [first] and sorted(cluster.workers) == [staying]
            assert client.who_has([data]) == {data.key: [workers[staying]["address"]]}
            assert data.result(timeout=20) == list(range(1000))
        assert "could not be moved" not in caplog.text
        _wait_gone([pids[second]])


def test_scale_down_cancels_pending_jobs_first(fake_batch):
    # Held jobs never start: they stay pending, as on a full cluster.
    with SLURMCluster(cores=1, memory=MEMORY, walltime=WALLTIME, job_extra=["--hold"]) as cluster:
        cluster.scale(jobs=3)
        first, second, third = list(cluster.jobs)
        assert cluster.jobs == {first: "pending", second: "pending", third: "pending"}
        cluster.scale(1)
        assert list(cluster.jobs) == [first]
        assert ["scancel", third, second] in fake_batch.calls()
        with pytest.raises(TimeoutError, match=r"only 0 of 1 workers joined.*pending"):
            cluster.wait_for_workers(1, timeout=0.5)
        cluster.scale(1)  # already there: nothing submitted
        assert [c[0] for c in fake_batch.calls()].count("sbatch") == 3
    assert ["scancel", first] in fake_batch.calls()
    assert fake_batch.pids() == {}


def test_job_that_fails_to_start_is_reported(fake_batch, tmp_path):
    logs = tmp_path / "logs"
    with PBSCluster(cores=1, memory=MEMORY, walltime=WALLTIME, log_directory=logs,
                    python=str(tmp_path / "no-such-python")) as cluster:
        cluster.scale(1)
        with pytest.raises(JobQueueError, match=r"(?s)only 0 of 1 workers joined and no job.*no-such-python"):
            cluster.wait_for_workers(1, timeout=60)
        assert cluster.jobs == {}
    assert not any(c[0] == "qdel" for c in fake_batch.calls())  # nothing left to cancel


@pytest.mark.timeout(120)
def test_forgotten_cluster_cancels_its_jobs(fake_batch):
    cluster = SLURMCluster(cores=1, memory=MEMORY, walltime=WALLTIME)
    cluster.scale(1)
    (job_id,) = cluster.jobs
    pid = fake_batch.pids()[job_id]
    cluster.wait_for_workers(1, timeout=90)
    del cluster
    gc.collect()
    assert ["scancel", job_id] in fake_batch.calls()
    _wait_gone([pid])


def test_cancel_of_ended_job_is_not_an_error(fake_batch, caplog):
    cluster = SLURMCluster(cores=1, memory=MEMORY, walltime=WALLTIME, job_extra=["--hold"])
    cluster.scale(1)
    (job_id,) = cluster.jobs
    # cancelled behind the cluster's back: the cluster's own scancel then fails, but the job is gone
    subprocess.run(["scancel", job_id], check=True, capture_output=True)
    with caplog.at_level("INFO", logger="runtime.jobqueue"):
        cluster.close()
    assert [c for c in fake_batch.calls() if c[0] == "scancel"] == [["scancel", job_id]] * 2
    assert "could not cancel" not in caplog.text and f"cancelled SLURM jobs ['{job_id}']" in caplog.text


def test_worker_names_map_to_jobs():
    from runtime.jobqueue.core import job_of_worker

    assert job_of_worker("lazyarr-worker-1", "lazyarr-worker", ["1", "12"]) == "1"
    assert job_of_worker("lazyarr-worker-12-0", "lazyarr-worker", ["1", "12"]) == "12"
    assert job_of_worker("lazyarr-worker-1002.fakepbs-1", "lazyarr-worker", ["1002.fakepbs"]) == "1002.fakepbs"
    assert job_of_worker("lazyarr-worker-13", "lazyarr-worker", ["1", "12"]) is None
    assert job_of_worker("lazyarr-worker-1-x", "lazyarr-worker", ["1"]) is None
    assert job_of_worker("other-1", "lazyarr-worker", ["1"]) is None
    assert job_of_worker(None, "lazyarr-worker", ["1"]) is None


def test_close_waits_only_for_its_own_workers(fake_batch):
    from runtime.worker import Worker

    cluster = SLURMCluster(cores=1, memory=MEMORY, walltime=WALLTIME, job_extra=["--hold"])
    outsider = Worker(cluster.scheduler_address_to_workers, name="started-by-hand", nthreads=1)
    try:
        cluster.scale(1)
        deadline = time.monotonic() + 20
        while not cluster.scheduler.sync(lambda state: len(state.workers)):
            assert time.monotonic() < deadline, "the hand-started worker did not join"
            time.sleep(0.02)
        assert cluster.workers == {}  # not one of the cluster's
        start = time.monotonic()
        cluster.close(timeout=30)
        assert time.monotonic() - start < 15, "close() waited for a worker that is not the cluster's"
    finally:
        cluster.close()
        outsider.close()
