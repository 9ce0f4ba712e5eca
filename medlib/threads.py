"""Thread limits for processes that share the CPU with others (demo lanes, feature-extraction workers).

When several processes compute at once, each library in each of them (OpenMP, OpenBLAS, MKL, SimpleITK,
torch) would otherwise start a thread per core, and their spinning threads oversubscribe the CPU.
"""

from __future__ import annotations

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_threads(threads: int) -> None:
    """Limit this process, and the processes it starts, to ``threads`` compute threads per library.

    Sets the environment variables that libraries (and torch, for its default thread count) read when they
    load, here and in child processes, and limits the libraries already loaded with threadpoolctl.

    Raises:
        ValueError: ``threads`` < 1.
    """
    import os

    from threadpoolctl import threadpool_limits

    if threads < 1:
        raise ValueError(f"threads must be >= 1; got {threads}")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    threadpool_limits(threads)


def compute_threads() -> int:
    """The compute threads this process may use: ``OMP_NUM_THREADS`` when set (``limit_threads`` sets it for
    demo lanes and workers), else one per core."""
    import os

    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return max(1, os.cpu_count() or 1)
