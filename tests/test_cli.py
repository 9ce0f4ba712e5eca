"""The ``medlib`` command's own logic: the demo's options (the studies themselves are run
end to end by ``test_notebooks.py``; bad inputs through the CLI by ``tests/reliability``)."""

from __future__ import annotations

import pytest

from medlib.cli import commands as cli


@pytest.mark.parametrize("jobs", ["0", "-1"])
def test_demo_rejects_jobs_below_one_before_doing_anything(jobs, capsys, tmp_path):
    code = cli.main(["demo", "nec", "--data", str(tmp_path / "data"), "--jobs", jobs,
                     "--reports", str(tmp_path / "r")])
    assert code == 1
    assert f"--jobs must be >= 1; got {jobs}" in capsys.readouterr().err
    assert not (tmp_path / "data").exists() and not (tmp_path / "r").exists()  # no cohort written, no run


def test_demo_default_order_and_jobs():
    args = cli.build_parser().parse_args(["demo"])
    assert args.jobs == 2 and args.studies == []
    assert sorted(cli.DEMO_STUDIES) == ["glioma", "ich", "nec", "onfh"]
