"""lazyarr.config: defaults, YAML files, LAZYARR_* environment variables, set()."""
from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest

from lazyarr import config


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """A configuration rebuilt from a clean environment and an empty home; restored afterwards."""
    saved = copy.deepcopy(config.config)
    saved_defaults = copy.deepcopy(config.DEFAULTS)
    for name in list(os.environ):
        if name.startswith("LAZYARR_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    config.refresh()
    yield home
    config.DEFAULTS.clear()
    config.DEFAULTS.update(saved_defaults)
    config.config.clear()
    config.config.update(saved)


def test_defaults(isolated):
    assert config.get("scheduler") is None
    assert config.get("array.split-every") == 8
    assert config.get("array.chunk-size") == "128MiB"
    assert config.get("optimization.fuse.active") is True
    assert config.get("optimization.fuse.max-width") == 1
    assert config.get("optimization.fuse.max-length") is None


def test_get_missing_key_names_it_or_returns_default(isolated):
    with pytest.raises(KeyError, match="no.such.key"):
        config.get("no.such.key")
    assert config.get("no.such.key", 5) == 5
    assert config.get("array.nope", None) is None


def test_dashes_and_underscores_are_the_same(isolated):
    assert config.get("array.split_every") == config.get("array.split-every") == 8


def test_environment_variables_are_parsed(isolated):
    config.refresh(
        environ={
            "LAZYARR_SCHEDULER": "sync",
            "LAZYARR_NUM_WORKERS": "3",
            "LAZYARR_ARRAY__CHUNK_SIZE": "64MiB",
            "LAZYARR_OPTIMIZATION__FUSE__ACTIVE": "false",
            "LAZYARR_OPTIMIZATION__FUSE__MAX_LENGTH": "100",
            "LAZYARR_TEMPORARY_DIRECTORY": "none",
            "LAZYARR_NEW__SECTION__RATIO": "0.5",
            "OTHER_SCHEDULER": "processes",
        }
    )
    assert config.get("scheduler") == "sync"
    assert config.get("num-workers") == 3
    assert config.get("array.chunk-size") == "64MiB"
    assert config.get("array.split-every") == 8  # neighbours kept
    assert config.get("optimization.fuse.active") is False
    assert config.get("optimization.fuse.max-length") == 100
    assert config.get("temporary-directory") is None
    assert config.get("new.section.ratio") == 0.5


def test_environment_of_a_new_process_is_read_on_import():
    env = dict(os.environ, LAZYARR_SCHEDULER="processes", LAZYARR_BAG__SPLIT_EVERY="4")
    code = "import lazyarr; print(lazyarr.config.get('scheduler'), lazyarr.config.get('bag.split-every'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["processes", "4"]


def test_yaml_file_named_by_lazyarr_config(isolated, monkeypatch, tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("scheduler: threads\narray:\n  chunk_size: 32MiB\noptimization:\n  fuse:\n    max-width: 4\n")
    monkeypatch.setenv("LAZYARR_CONFIG", str(path))
    config.refresh()
    assert config.get("scheduler") == "threads"
    assert config.get("array.chunk-size") == "32MiB"
    assert config.get("array.split-every") == 8
    assert config.get("optimization.fuse.max-width") == 4
    assert config.get("optimization.fuse.active") is True


def test_yaml_directory_and_home_location_and_precedence(isolated, monkeypatch, tmp_path):
    home_dir = isolated / ".config" / "lazyarr"
    home_dir.mkdir(parents=True)
    (home_dir / "a.yaml").write_text("scheduler: processes\nnum-workers: 2\nbag:\n  split-every: 3\n")
    config.refresh()
    assert config.get("scheduler") == "processes" and config.get("num-workers") == 2

    named = tmp_path / "conf.d"
    named.mkdir()
    (named / "1.yml").write_text("num-workers: 5\n")
    (named / "2.yaml").write_text("num-workers: 6\n")  # later files win
    (named / "ignored.txt").write_text("num-workers: 99\n")
    monkeypatch.setenv("LAZYARR_CONFIG", str(named))
    monkeypatch.setenv("LAZYARR_SCHEDULER", "sync")
    config.refresh()
    assert config.get("num-workers") == 6  # LAZYARR_CONFIG beats ~/.config/lazyarr
    assert config.get("bag.split-every") == 3  # still read from the home file
    assert config.get("scheduler") == "sync"  # environment beats files
    with config.set(scheduler="threads"):  # set() beats everything
        assert config.get("scheduler") == "threads"
    assert config.get("scheduler") == "sync"


def test_bad_yaml_errors_name_the_file(isolated, monkeypatch, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("scheduler: [unclosed\n")
    monkeypatch.setenv("LAZYARR_CONFIG", str(bad))
    with pytest.raises(ValueError, match="bad.yaml"):
        config.refresh()
    bad.write_text("- a list\n- not a mapping\n")
    with pytest.raises(ValueError, match="bad.yaml.*mapping"):
        config.refresh()


def test_set_as_context_manager_restores(isolated):
    with config.set({"array.chunk-size": "1MiB", "brand.new.key": 1}, scheduler="sync"):
        assert config.get("array.chunk_size") == "1MiB"
        assert config.get("brand.new.key") == 1
        assert config.get("scheduler") == "sync"
        with config.set(scheduler="threads", array__split_every=2):
            assert config.get("scheduler") == "threads"
            assert config.get("array.split-every") == 2
        assert config.get("scheduler") == "sync"
        assert config.get("array.split-every") == 8
    assert config.get("array.chunk-size") == "128MiB"
    assert config.get("scheduler") is None
    assert config.get("brand", None) is None


def test_set_restores_after_an_exception(isolated):
    with pytest.raises(RuntimeError):
        with config.set(scheduler="sync"):
            raise RuntimeError("inside")
    assert config.get("scheduler") is None


def test_set_globally_persists(isolated):
    config.set(scheduler="processes")
    assert config.get("scheduler") == "processes"
    config.set({"optimization.fuse.active": False})
    assert config.get("optimization.fuse.active") is False


def test_update_defaults_keeps_user_settings(isolated):
    config.set({"mylib.level": 5})
    config.update_defaults({"mylib": {"level": 1, "mode": "fast"}})
    assert config.get("mylib.level") == 5
    assert config.get("mylib.mode") == "fast"
    config.refresh()
    assert config.get("mylib.level") == 1  # refresh drops set() values, keeps the new defaults
