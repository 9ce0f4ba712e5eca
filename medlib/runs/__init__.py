"""Run records on disk: the run folder, its atomic writes and its provenance.

Modules, each the one owner of its contract:

* ``folder``: ``runs/<study>/<run-id>/`` (``RunDir``, ``new_run``, ``open_run``, run ids, file names).
* ``atomic``: writes that never leave half a file (``atomic_write_*``), JSON conversion and content hashes.
* ``guard``: safe names from data, writes kept inside the run folder, the folder's lock, resume checks.
* ``provenance``: versions, git commit, device, seeds and hashes for ``provenance.json``.

The names below are the package's public face, e.g. ``from medlib.runs import new_run, collect_provenance``.
"""

from medlib.runs.atomic import (atomic_open, atomic_write_bytes, atomic_write_csv, atomic_write_json,
                                atomic_write_text, file_hash, table_hash, to_jsonable)
from medlib.runs.folder import (CAMS_DIR, CHECKPOINTS_DIR, CONFIG_NAME, METRICS_NAME, PREDICTIONS_NAME,
                                PROVENANCE_NAME, SPLIT_NAME, RunDir, cam_file, make_run_id, new_run, open_run,
                                safe_folder_name, start_run)
from medlib.runs.guard import RunInUse, RunLock, RunMismatch, check_resume, config_hash, inside, safe_name
from medlib.runs.provenance import PACKAGES, collect_provenance, cuda_device_name, git_commit, package_version

__all__ = [
    # run folders
    "RunDir", "new_run", "open_run", "start_run", "make_run_id", "safe_folder_name", "cam_file", "CONFIG_NAME",
    "SPLIT_NAME",
    "PREDICTIONS_NAME", "METRICS_NAME", "PROVENANCE_NAME", "CHECKPOINTS_DIR", "CAMS_DIR",
    # guards: names from data, inside the folder, lock, resume
    "RunInUse", "RunLock", "RunMismatch", "check_resume", "config_hash", "inside", "safe_name",
    # atomic writes and hashes
    "atomic_open", "atomic_write_bytes", "atomic_write_csv", "atomic_write_json", "atomic_write_text",
    "to_jsonable", "file_hash", "table_hash",
    # provenance
    "PACKAGES", "collect_provenance", "cuda_device_name", "git_commit", "package_version",
]
