"""A fake batch system for tests: ``sbatch``/``squeue``/``scancel`` and ``qsub``/``qstat``/``qdel``.

:func:`install` writes the six commands into a ``bin`` directory (put it first on ``PATH``);
they share a state directory. Submitting really runs the job script, as a detached process in a
session of its own (like a job on a compute node), with ``SLURM_JOB_ID``/``PBS_JOBID`` set and
its output in the file the directives name. The walltime is enforced (``timeout``: TERM, then
KILL 5 s later), so a job outlives a crashed test by at most its walltime. Status commands
report live jobs as running; cancelling sends SIGTERM to the job's process group.

The commands accept only the options and directives the real ones would and that the clusters
use, print what the real ones print (including their errors for jobs that ended), and log every
call, so tests check the exact command lines as well as the effects. Jobs submitted with a
hold (``sbatch --hold`` / ``#SBATCH --hold``, ``qsub -h``) stay pending and never start.

Only the standard library is used: the commands run under any Python. Linux only (``/proc``).
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

COMMANDS = ("sbatch", "squeue", "scancel", "qsub", "qstat", "qdel")
PBS_SERVER = "fakepbs"


# ----------------------------------------------------------------------------------------------
# Installing and inspecting


@dataclass
class FakeBatch:
    """Handle on an installed fake batch system (given to tests)."""

    bin_dir: str
    state_dir: str

    def jobs(self) -> dict[str, dict]:
        """Every job ever submitted, by id: its record (pid, name, system, cancelled, ...)."""
        return _State(self.state_dir).all_jobs()

    def calls(self) -> list[list[str]]:
        """Every command run so far, as ``[command, *arguments]``."""
        path = os.path.join(self.state_dir, "calls.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def pids(self) -> dict[str, int]:
        """The process id (the job's process-group leader) of every started job."""
        return {job_id: rec["pid"] for job_id, rec in self.jobs().items() if rec.get("pid")}

    def alive(self) -> list[str]:
        """Ids of jobs whose processes still run."""
        return [job_id for job_id, rec in self.jobs().items() if _alive(rec)]

    def kill_all(self) -> list[str]:
        """SIGKILL every job's process group that still runs; the ids of those that did."""
        killed = []
        for job_id, rec in self.jobs().items():
            if _alive(rec):
                killed.append(job_id)
                try:
                    os.killpg(rec["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return killed


def install(root: str) -> FakeBatch:
    """Write the six commands into ``root/bin`` (state in ``root/state``) and return a handle."""
    bin_dir = os.path.join(root, "bin")
    state_dir = os.path.join(root, "state")
    os.makedirs(bin_dir, exist_ok=True)
    os.makedirs(os.path.join(state_dir, "jobs"), exist_ok=True)
    here = os.path.dirname(os.path.abspath(__file__))
    for command in COMMANDS:
        path = os.path.join(bin_dir, command)
        with open(path, "w") as f:
            f.write(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {here!r})\nimport fakebatch\n"
                    f"sys.exit(fakebatch.main({command!r}, sys.argv[1:], {state_dir!r}))\n")
        os.chmod(path, 0o755)
    return FakeBatch(bin_dir, state_dir)


# ----------------------------------------------------------------------------------------------
# State


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start time) of a process from /proc, or None if there is none."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], fields[19]


def _alive(rec: dict) -> bool:
    """Does the job's process run (not a zombie, and not another process that reused its pid)?"""
    pid = rec.get("pid")
    if not pid:
        return False
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in "ZX" and stat[1] == rec["start"]


class _State:
    """The jobs directory and id counter, under an exclusive lock while a command runs."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.jobs_dir = os.path.join(root, "jobs")

    def __enter__(self) -> "_State":
        self._lock = open(os.path.join(self.root, "lock"), "w")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: Any) -> None:
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()

    def log_call(self, command: str, argv: list[str]) -> None:
        with open(os.path.join(self.root, "calls.log"), "a") as f:
            f.write(json.dumps([command, *argv]) + "\n")

    def next_id(self) -> int:
        path = os.path.join(self.root, "next_id")
        value = int(open(path).read()) if os.path.exists(path) else 1001
        with open(path, "w") as f:
            f.write(str(value + 1))
        return value

    def save(self, rec: dict) -> None:
        tmp = os.path.join(self.jobs_dir, f".{rec['id']}.tmp")
        with open(tmp, "w") as f:
            json.dump(rec, f)
        os.replace(tmp, os.path.join(self.jobs_dir, f"{rec['id']}.json"))

    def get(self, job_id: str) -> dict | None:
        try:
            with open(os.path.join(self.jobs_dir, f"{job_id}.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def all_jobs(self) -> dict[str, dict]:
        found = {}
        for name in sorted(os.listdir(self.jobs_dir)):
            if name.endswith(".json"):
                with open(os.path.join(self.jobs_dir, name)) as f:
                    rec = json.load(f)
                found[rec["id"]] = rec
        return found


def _state_of(rec: dict) -> str:
    """``pending`` (held, never started), ``running``, ``ending`` (cancelled, still exiting), ``done``."""
    if not rec.get("pid"):
        return "done" if rec.get("cancelled") else "pending"
    if _alive(rec):
        return "ending" if rec.get("cancelled") else "running"
    return "done"


# ----------------------------------------------------------------------------------------------
# Submitting


class _Usage(Exception):
    """A bad command line or script: message for stderr, exit code."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


_TIME = re.compile(r"^(?:(\d+)-)?(\d+):([0-5]\d):([0-5]\d)$")


def _seconds(text: str) -> int:
    match = _TIME.match(text)
    if not match:
        raise _Usage(f"invalid time limit specification: {text!r}")
    days, hours, minutes, secs = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + secs


def _directives(script: str, prefix: str) -> list[list[str]]:
    """The directives at the top of a script, as real sbatch/qsub read them: up to the first command."""
    found = []
    for line in script.splitlines()[1:]:
        text = line.strip()
        if not text:
            continue
        if not text.startswith("#"):
            break
        if text.startswith(prefix + " "):
            found.append(text[len(prefix):].split())
    return found


def _slurm_options(words: list[str], opts: dict) -> None:
    """Apply sbatch options (from the command line or ``#SBATCH`` lines) to ``opts``."""
    i = 0
    while i < len(words):
        word = words[i]
        name, eq, value = word.partition("=")
        short = {"-J": "job-name", "-n": "ntasks", "-t": "time", "-A": "account", "-p": "partition",
                 "-o": "output", "-e": "error"}
        if name in short:
            if i + 1 >= len(words):
                raise _Usage(f"sbatch: error: option {name} requires an argument")
            opts[short[name]] = words[i + 1]
            i += 2
            continue
        key = name[2:] if name.startswith("--") else None
        if key in ("cpus-per-task", "mem", "job-name", "ntasks", "time", "account", "partition", "output", "error"):
            if not eq:
                raise _Usage(f"sbatch: error: option --{key} requires an argument (--{key}=VALUE)")
            opts[key] = value
        elif key in ("hold", "exclusive", "parsable") and not eq:
            opts[key] = True
        else:
            raise _Usage(f"sbatch: error: unrecognized option '{word}'")
        i += 1


def _start(rec: dict, spool: str, walltime: int, env_extra: dict, out: str, err: str) -> None:
    """Run the spooled script detached, in a session of its own, bounded by its walltime."""
    env = {**os.environ, **env_extra}
    with open(out, "ab") as stdout, open(err, "ab") as stderr:
        proc = subprocess.Popen(["timeout", "-k", "5", str(walltime), "/bin/bash", spool], stdin=subprocess.DEVNULL,
                                stdout=stdout, stderr=stderr, env=env, cwd=rec["cwd"], start_new_session=True)
    stat = None
    for _ in range(200):  # /proc/<pid> appears at once; the loop only guards a slow kernel
        stat = _proc_stat(proc.pid)
        if stat is not None:
            break
        time.sleep(0.005)
    rec["pid"], rec["start"] = proc.pid, (stat[1] if stat else "")
    # The job is detached: it must not be reaped here (this command exits now), like sbatch's.
    proc.returncode = 0


def sbatch(state: _State, argv: list[str]) -> int:
    """``sbatch [--hold] [--parsable] SCRIPT``."""
    opts: dict = {}
    if not argv:
        raise _Usage("sbatch: error: no batch script given")
    _slurm_options(argv[:-1], opts)
    path = argv[-1]
    try:
        script = open(path).read()
    except OSError as e:
        raise _Usage(f"sbatch: error: Unable to open file {path}: {e}")
    if not script.startswith("#!"):
        raise _Usage("sbatch: error: This does not look like a batch script. The first line must start with #!")
    for words in _directives(script, "#SBATCH"):
        _slurm_options(words, opts)
    walltime = _seconds(opts.get("time", "01:00:00"))
    if "mem" in opts and not re.fullmatch(r"\d+[KMGT]?", opts["mem"]):
        raise _Usage(f"sbatch: error: invalid memory constraint {opts['mem']}")
    for key in ("cpus-per-task", "ntasks"):
        if key in opts and not str(opts[key]).isdigit():
            raise _Usage(f"sbatch: error: invalid --{key} argument: {opts[key]}")
    accounts = os.environ.get("FAKE_BATCH_ACCOUNTS")
    if accounts is not None and opts.get("account") not in accounts.split(","):
        raise _Usage("sbatch: error: Batch job submission failed: Invalid account or account/partition "
                     "combination specified")
    job_id = str(state.next_id())
    name = opts.get("job-name", os.path.basename(path))
    spool = os.path.join(state.root, f"job{job_id}.sh")
    shutil.copyfile(path, spool)  # real sbatch keeps its own copy: the caller may delete the file
    rec = {"id": job_id, "system": "slurm", "name": name, "pid": None, "start": None, "cancelled": False,
           "cwd": os.getcwd(), "walltime": walltime, "options": {k: v for k, v in opts.items()}}
    if not opts.get("hold"):
        out = opts.get("output", os.path.join(rec["cwd"], "slurm-%j.out")).replace("%j", job_id)
        err = opts.get("error", out).replace("%j", job_id)
        _start(rec, spool, walltime, {"SLURM_JOB_ID": job_id, "SLURM_JOB_NAME": name,
                                      "SLURM_SUBMIT_DIR": rec["cwd"]}, out, err)
    state.save(rec)
    print(f"{job_id}" if opts.get("parsable") else f"Submitted batch job {job_id}")
    return 0


def _pbs_options(words: list[str], opts: dict) -> None:
    """Apply qsub options (command line or ``#PBS`` lines) to ``opts``."""
    i = 0
    while i < len(words):
        word = words[i]
        if word == "-h":
            opts["hold"] = True
            i += 1
            continue
        if word in ("-N", "-q", "-A", "-o", "-e", "-l", "-j"):
            if i + 1 >= len(words):
                raise _Usage(f"qsub: option requires an argument -- '{word[1:]}'", 2)
            value = words[i + 1]
            if word == "-l":
                for item in value.split(","):
                    key, _, val = item.partition("=")
                    if key == "walltime":
                        opts["walltime"] = _seconds(val)
                    elif key in ("select", "nodes", "ncpus", "mem", "place"):
                        opts.setdefault("resources", []).append(item)
                    else:
                        raise _Usage(f"qsub: Unknown resource Resource_List.{key}", 2)
            else:
                opts[word] = value
            i += 2
            continue
        raise _Usage(f"qsub: invalid option -- '{word.lstrip('-')}'", 2)


def qsub(state: _State, argv: list[str]) -> int:
    """``qsub [-h] SCRIPT``."""
    if not argv:
        raise _Usage("usage: qsub [options] script", 2)
    opts: dict = {}
    _pbs_options(argv[:-1], opts)
    path = argv[-1]
    try:
        script = open(path).read()
    except OSError:
        raise _Usage("qsub: script file:: No such file or directory", 2)
    for words in _directives(script, "#PBS"):
        _pbs_options(words, opts)
    seq = str(state.next_id())
    job_id = f"{seq}.{PBS_SERVER}"
    name = opts.get("-N", os.path.basename(path))
    spool = os.path.join(state.root, f"job{seq}.sh")
    shutil.copyfile(path, spool)
    rec = {"id": job_id, "system": "pbs", "name": name, "pid": None, "start": None, "cancelled": False,
           "cwd": os.getcwd(), "walltime": opts.get("walltime", 3600),
           "options": {k: v for k, v in opts.items()}}
    if not opts.get("hold"):
        def place(flag: str, suffix: str) -> str:
            target = opts.get(flag, rec["cwd"])
            return os.path.join(target, f"{name}.{suffix}{seq}") if os.path.isdir(target) else target

        _start(rec, spool, rec["walltime"], {"PBS_JOBID": job_id, "PBS_JOBNAME": name,
                                             "PBS_O_WORKDIR": rec["cwd"]}, place("-o", "o"), place("-e", "e"))
    state.save(rec)
    print(job_id)
    return 0


# ----------------------------------------------------------------------------------------------
# Status and cancelling


def squeue(state: _State, argv: list[str]) -> int:
    """``squeue --noheader --format='%i %T' --jobs=ID[,ID...]`` (the only form the clusters use)."""
    fmt, ids, header = None, None, True
    for word in argv:
        if word in ("--noheader", "-h"):
            header = False
        elif word.startswith("--format="):
            fmt = word[len("--format="):]
        elif word.startswith("--jobs="):
            ids = [i for i in word[len("--jobs="):].split(",") if i]
        else:
            raise _Usage(f"squeue: unrecognized option '{word}'")
    if fmt != "%i %T" or ids is None:
        raise _Usage("fake squeue supports only --format='%i %T' with --jobs=...")
    known = {i: state.get(i) for i in ids}
    if len(ids) == 1 and known[ids[0]] is None:
        raise _Usage("slurm_load_jobs error: Invalid job id specified")
    if header:
        print("JOBID STATE")
    for job_id, rec in known.items():
        if rec is None:
            continue
        status = _state_of(rec)
        word = {"pending": "PENDING", "running": "RUNNING", "ending": "COMPLETING"}.get(status)
        print(f"{job_id} {word or ('CANCELLED' if rec['cancelled'] else 'COMPLETED')}")
    return 0


def _signal_job(rec: dict) -> None:
    try:
        os.killpg(rec["pid"], signal.SIGTERM)
    except ProcessLookupError:
        pass


def scancel(state: _State, argv: list[str]) -> int:
    """``scancel ID [ID...]``: SIGTERM to each running job's process group; held jobs just end."""
    code = 0
    for job_id in argv:
        if job_id.startswith("-"):
            raise _Usage(f"scancel: unrecognized option '{job_id}'")
        rec = state.get(job_id)
        if rec is None:
            print(f"scancel: error: Invalid job id {job_id}", file=sys.stderr)
            code = 1
            continue
        status = _state_of(rec)
        if status == "done" or (status == "ending" and rec["cancelled"]):
            print(f"scancel: error: Kill job error on job id {job_id}: Job/step already completing or completed",
                  file=sys.stderr)
            code = 1
            continue
        if status in ("running", "ending"):
            _signal_job(rec)
        rec["cancelled"] = True
        state.save(rec)
    return code


def qstat(state: _State, argv: list[str]) -> int:
    """``qstat -f ID [ID...]``, in PBS Pro's words for jobs it no longer holds."""
    if not argv or argv[0] != "-f":
        raise _Usage("fake qstat supports only qstat -f ID ...", 2)
    code = 0
    for job_id in argv[1:]:
        rec = state.get(job_id)
        if rec is None:
            print(f"qstat: Unknown Job Id {job_id}", file=sys.stderr)
            code = 153
            continue
        status = _state_of(rec)
        if status == "done":
            print(f"qstat: {job_id} Job has finished, use -x or -H to obtain historical job information",
                  file=sys.stderr)
            code = 35
            continue
        letter = {"pending": "H" if rec["options"].get("hold") else "Q", "running": "R", "ending": "E"}[status]
        print(f"Job Id: {job_id}\n    Job_Name = {rec['name']}\n    job_state = {letter}\n    queue = workq\n")
    return code


def qdel(state: _State, argv: list[str]) -> int:
    """``qdel ID [ID...]``."""
    code = 0
    for job_id in argv:
        rec = state.get(job_id)
        if rec is None:
            print(f"qdel: Unknown Job Id {job_id}", file=sys.stderr)
            code = 153
            continue
        status = _state_of(rec)
        if status == "done" or rec["cancelled"]:
            print(f"qdel: Job has finished {job_id}", file=sys.stderr)
            code = 35
            continue
        if status in ("running", "ending"):
            _signal_job(rec)
        rec["cancelled"] = True
        state.save(rec)
    return code


def main(command: str, argv: list[str], state_dir: str) -> int:
    """Run one fake command; its exit code."""
    handler = {"sbatch": sbatch, "squeue": squeue, "scancel": scancel, "qsub": qsub, "qstat": qstat,
               "qdel": qdel}[command]
    with _State(state_dir) as state:
        state.log_call(command, argv)
        try:
            return handler(state, argv)
        except _Usage as e:
            print(str(e), file=sys.stderr)
            return e.code
