"""The executor seam without Ray: in-process jobs run only when asked for, settings are checked,
folders travel whole and never escape their destination, an unreachable cluster is one line."""
from __future__ import annotations

import io
import tarfile

import pytest

from edgekit.errors import InputError, UsageError
from edgekit.parallel import InProcess, make_executor, threads_per_job
from edgekit.parallel.folders import pack, unpack


def test_in_process_jobs_run_only_when_their_result_is_asked_for():
    ran = []
    pool = make_executor(1)
    assert isinstance(pool, InProcess) and not pool.remote
    hint = pool.submit(ran.append, "hint")  # started ahead of its turn, never asked: never run
    job = pool.submit(lambda v: ran.append(v) or v * 2, 21)
    assert ran == [] and not pool.done(job)
    assert pool.wait(job)[0] == 42 and pool.done(job) and not pool.done(hint)
    assert pool.wait(job)[0] == 42 and ran == [21]  # run once


def test_threads_per_job_shares_the_cores_or_takes_what_is_given(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert (threads_per_job(1), threads_per_job(2), threads_per_job(3), threads_per_job(16)) == (8, 4, 2, 1)
    assert threads_per_job(4, 3) == 3
    with pytest.raises(UsageError, match="--worker-threads must be >= 1"):
        threads_per_job(2, 0)


@pytest.mark.parametrize("workers", [0, -1, True, 1.5])
def test_workers_must_be_a_positive_integer(workers):
    with pytest.raises(UsageError, match="--workers must be a positive integer"):
        make_executor(workers)


def test_an_address_nothing_answers_on_is_one_line_at_once():
    pytest.importorskip("ray")
    import socket

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InputError, match=f"Nothing answers at the Ray address 127.0.0.1:{port}"):
        make_executor(2, f"127.0.0.1:{port}")
    with pytest.raises(UsageError, match="must be HOST:PORT"):
        make_executor(2, "127.0.0.1:notaport")


def test_the_ray_extra_missing_is_one_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UsageError, match=r"pip install 'edgekit\[ray\]'"):
        make_executor(2)


def test_a_folder_travels_whole_and_cannot_escape_its_destination(tmp_path):
    src = tmp_path / "src"
    (src / "export").mkdir(parents=True)
    (src / "export" / "model_int8.tflite").write_bytes(b"\0" * 1000)
    (src / "manifest.json").write_text("{}")
    unpack(pack(src), tmp_path / "dest")
    assert (tmp_path / "dest" / "export" / "model_int8.tflite").read_bytes() == b"\0" * 1000
    assert (tmp_path / "dest" / "manifest.json").read_text() == "{}"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(tarfile.OutsideDestinationError):
        unpack(buf.getvalue(), tmp_path / "dest2")
    assert not (tmp_path / "escaped.txt").exists()


def test_optimize_and_sweep_on_an_unreachable_cluster_say_so_in_one_line(trained_small, tmp_path):
    pytest.importorskip("ray")
    from click.testing import CliRunner

    from edgekit.cli.main import cli

    for args in (["optimize", str(trained_small[1]), "--out", str(tmp_path / "opt")],
                 ["sweep", "--models", "cnn-small", "--optimizers", "sgd", "--out", str(tmp_path / "sweep")]):
        r = CliRunner().invoke(cli, [*args, "--workers", "2", "--ray-address", "127.0.0.1:1", "--quiet"])
        assert r.exit_code == 2, r.output
        assert r.stderr.strip().splitlines()[-1].startswith("Error: Nothing answers at the Ray address 127.0.0.1:1")
        assert "Traceback" not in r.output
    assert not (tmp_path / "opt" / "optimize_state.json").exists()
