"""Thread limits for processes that share the CPU."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from medlib.threads import THREAD_VARIABLES, limit_threads


def test_limit_threads_reaches_loaded_libraries_and_child_processes(monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with threadpool_limits(None):  # restore this process's pools afterwards
        limit_threads(1)
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
        assert [os.environ[n] for n in THREAD_VARIABLES] == ["1"] * 3
        child = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                               capture_output=True, text=True, check=True)
        assert child.stdout.strip() == "1"  # a notebook kernel started from a demo lane trains on one thread


def test_limit_threads_rejects_zero():
    with pytest.raises(ValueError, match="threads must be >= 1; got 0"):
        limit_threads(0)


def test_compute_threads_follows_the_limit(monkeypatch):
    """Work that runs in threads (the duplicate check) takes as many as ``limit_threads`` allows, else a core each."""
    from medlib.threads import compute_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert compute_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert compute_threads() == (os.cpu_count() or 1)
