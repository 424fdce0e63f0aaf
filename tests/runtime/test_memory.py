"""MemoryPolicy decisions at each threshold, pause hysteresis, and parse_memory_limit."""
from __future__ import annotations

import logging

import psutil
import pytest

import lazyarr
from runtime import memory as memory_module
from runtime.memory import MemoryDecision, MemoryPolicy, parse_memory_limit, system_memory

pytestmark = pytest.mark.timeout(30)

GB = 10**9


def policy(**kwargs) -> MemoryPolicy:
    fractions = {"target": 0.6, "spill": 0.7, "pause": 0.8, "terminate": 0.95, **kwargs}
    return MemoryPolicy(1000, **fractions)


def test_below_every_threshold_nothing_happens():
    p = policy()
    for rss in (0, 100, 600, 700):
        assert p.observe(rss, managed=rss) == MemoryDecision()


def test_spill_threshold_asks_to_get_back_to_target():
    p = policy()
    d = p.observe(rss=750, managed=500)
    assert d.spill_bytes == 150 and not d.paused and not d.terminate
    assert "spill threshold" in d.reason and "unmanaged" in d.reason
    # Never more than the data held in memory: unmanaged memory cannot be spilled.
    assert p.observe(rss=750, managed=40).spill_bytes == 40
    assert p.observe(rss=750, managed=0).spill_bytes == 0


def test_spill_without_target_aims_at_the_spill_threshold():
    p = policy(target=False)
    assert p.observe(rss=760, managed=500).spill_bytes == 60


def test_pause_and_resume_with_hysteresis():
    p = policy()
    d = p.observe(rss=801, managed=100)
    assert d.paused and d.pause_changed and "pausing" in d.reason
    assert d.spill_bytes == 100
    # Between resume (the spill fraction, 0.7) and pause: stays paused, nothing changes.
    for rss in (790, 750, 701, 700, 780):
        d = p.observe(rss, managed=0)
        assert d.paused and not d.pause_changed
    d = p.observe(rss=699)
    assert not d.paused and d.pause_changed and "resuming" in d.reason
    # Back up, but not past pause: still running.
    for rss in (750, 800):
        d = p.observe(rss)
        assert not d.paused and not d.pause_changed
    assert p.observe(rss=850).pause_changed


def test_explicit_resume_and_its_checks():
    p = policy(resume=0.5)
    p.observe(rss=900)
    assert p.observe(rss=600).paused
    assert not p.observe(rss=499).paused
    with pytest.raises(ValueError, match="resume"):
        policy(resume=0.9)
    with pytest.raises(ValueError, match="resume"):
        policy(resume=1.5)


def test_resume_default_without_spill():
    p = policy(spill=False)
    assert p.resume == pytest.approx(0.72)


def test_terminate():
    p = policy()
    assert not p.observe(rss=950).terminate
    d = p.observe(rss=951, managed=500)
    assert d.terminate and d.paused and "terminate threshold" in d.reason


def test_disabled_thresholds_never_fire():
    p = policy(spill=False, pause=False, terminate=False)
    d = p.observe(rss=10_000, managed=5000)
    assert d == MemoryDecision()
    assert p.bytes_at("pause") is None and p.bytes_at("target") == 600


def test_no_limit_means_no_decisions():
    for limit in (None, 0):
        p = MemoryPolicy(limit)
        assert p.limit is None
        assert p.observe(rss=10**15, managed=10**12) == MemoryDecision()
        assert p.bytes_at("terminate") is None


def test_thresholds_come_from_config():
    assert lazyarr.config.get("distributed.worker.memory.target") == 0.6
    assert lazyarr.config.get("distributed.worker.memory.terminate") == 0.95
    with lazyarr.config.set({"distributed.worker.memory.pause": 0.5,
                             "distributed.worker.memory.terminate": False}):
        p = MemoryPolicy(1000)
    assert (p.target, p.spill, p.pause, p.terminate) == (0.6, 0.7, 0.5, None)
    assert p.resume == pytest.approx(0.45)     # spill is above pause, so 90 % of pause
    assert MemoryPolicy(1000, pause=0.9).pause == 0.9   # an argument wins over config


@pytest.mark.parametrize("kwargs", [{"target": 0}, {"spill": 1.5}, {"pause": "high"}, {"terminate": True},
                                    {"target": -0.1}])
def test_bad_fractions(kwargs):
    with pytest.raises(ValueError, match="fraction"):
        policy(**kwargs)


@pytest.mark.parametrize("limit", [-1, 1.5, "4GB", True])
def test_bad_limit(limit):
    with pytest.raises(ValueError, match="limit"):
        MemoryPolicy(limit)


@pytest.mark.parametrize("rss, managed", [(-1, 0), (1.5, 0), (None, 0), (10, "x")])
def test_bad_readings(rss, managed):
    with pytest.raises(ValueError, match="rss|managed"):
        policy().observe(rss, managed)


def test_bytes_at():
    p = policy()
    assert [p.bytes_at(n) for n in ("target", "spill", "pause", "terminate", "resume")] == [600, 700, 800, 950, 700]
    with pytest.raises(ValueError, match="unknown threshold"):
        p.bytes_at("panic")


# ---------------------------------------------------------------------------------------------- limits


@pytest.mark.parametrize("value, kwargs, expected", [
    (None, {}, None),
    (0, {}, None),
    ("0", {}, None),
    ("none", {}, None),
    ("", {}, None),
    (123456789, {}, 123456789),
    ("123456789", {}, 123456789),
    ("4GB", {}, 4 * GB),
    ("512 MiB", {}, 512 * 2**20),
    (" 2gb ", {}, 2 * GB),
    (0.5, {}, 8 * GB),
    ("0.25", {}, 4 * GB),
    (1.0, {}, 16 * GB),
    (2.0, {}, 2),              # a float above 1 is bytes
    ("auto", {"nthreads": 2, "total_nthreads": 8}, 4 * GB),
    ("AUTO", {"nthreads": 4, "total_nthreads": 4}, 16 * GB),
    ("auto", {"nthreads": 16, "total_nthreads": 4}, 16 * GB),   # never more than the machine
])
def test_parse_memory_limit(value, kwargs, expected):
    assert parse_memory_limit(value, total_memory=16 * GB, **kwargs) == expected


def test_parse_memory_limit_auto_defaults_to_core_count(monkeypatch):
    monkeypatch.setattr(memory_module.os, "cpu_count", lambda: 4)
    assert parse_memory_limit("auto", nthreads=1, total_memory=16 * GB) == 4 * GB


def test_parse_memory_limit_uses_this_machine():
    machine = system_memory()
    assert 0 < machine <= psutil.virtual_memory().total
    assert parse_memory_limit(0.5) == machine // 2
    assert parse_memory_limit("auto", nthreads=1, total_nthreads=1) == machine


def test_parse_memory_limit_caps_at_machine_memory(caplog):
    with caplog.at_level(logging.WARNING, logger="runtime.memory"):
        assert parse_memory_limit("64GB", total_memory=16 * GB) == 16 * GB
    assert "more than this machine's memory" in caplog.text


@pytest.mark.parametrize("value, error, match", [
    ("lots", ValueError, "cannot parse memory limit 'lots'"),
    ("4 parsecs", ValueError, "cannot parse memory limit"),
    (-1, ValueError, "negative"),
    ("-0.5", ValueError, "negative"),
    (True, TypeError, "memory limit"),
    ([4], TypeError, "memory limit"),
])
def test_parse_memory_limit_errors(value, error, match):
    with pytest.raises(error, match=match):
        parse_memory_limit(value, total_memory=16 * GB)


def test_parse_memory_limit_bad_nthreads():
    with pytest.raises(ValueError, match="nthreads"):
        parse_memory_limit("auto", nthreads=0)
