"""optimize and sweep on a real two-node Ray cluster on loopback (a head node and a second node,
one CPU each, started and stopped here): the search asks the same candidates and picks the same
winner with two workers as with one, a worker killed mid-search is retried, a driver killed mid-batch
resumes to the same winner, and the sweep's runs train on both nodes."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'edgekit[ray]')")

from edgekit.optimize import OptimizeConfig, optimize  # noqa: E402

SEARCH = OptimizeConfig(channel_levels=(0.5,), prune_levels=(0.5,), cluster_levels=(16,), quantize_modes=("ptq",),
                        channels_epochs=1, prune_epochs=1, cluster_epochs=1, qat_epochs=1, budget_minutes=30,
                        latency_runs=10, representative_samples=50, max_accuracy_drop=5.0, accuracy_margin=0)


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


def _kill_one_job_when_running(done: threading.Event, killed: list[int]) -> None:
    """SIGKILL the first worker process seen running a job (its title is ``ray::_run``) for 1 s."""
    import psutil

    first: dict[int, float] = {}
    while not done.is_set() and not killed:
        for p in psutil.process_iter(["pid", "cmdline"]):
            if any("ray::_run" in part for part in (p.info["cmdline"] or [])):
                if time.monotonic() - first.setdefault(p.info["pid"], time.monotonic()) > 1.0:
                    os.kill(p.info["pid"], signal.SIGKILL)
                    killed.append(p.info["pid"])
                    return
        time.sleep(0.2)


@pytest.fixture(scope="module")
def one_worker(cluster, trained_small, small_digits, tmp_path_factory):
    """The search with one worker on the cluster: what every other search here must reproduce."""
    return optimize(trained_small[1], small_digits, SEARCH, tmp_path_factory.mktemp("one"), workers=1,
                    ray_address=cluster.address, worker_threads=1)


def test_two_workers_on_two_nodes_ask_the_same_candidates_and_survive_a_killed_worker(
        cluster, one_worker, trained_small, small_digits, tmp_path):
    _, model = trained_small
    one = one_worker
    done, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_one_job_when_running, args=(done, killed), daemon=True)
    killer.start()
    try:
        two = optimize(model, small_digits, SEARCH, tmp_path / "two", workers=2, ray_address=cluster.address,
                       worker_threads=1)
    finally:
        done.set()
        killer.join(5)
    assert killed, "no worker was seen running a job"
    assert [c["key"] for c in two.candidates] == [c["key"] for c in one.candidates]
    assert two.winner["key"] == one.winner["key"] and not two.report["failed"]
    assert two.report["holdout"]["drop_pt"] == one.report["holdout"]["drop_pt"]
    for a, b in zip(one.candidates, two.candidates):  # same threads per candidate: the same numbers
        assert (a["val_accuracy"], a["raw_bytes"], a["gzip_bytes"]) == (b["val_accuracy"], b["raw_bytes"],
                                                                        b["gzip_bytes"])
    assert all(c["node"].split("/")[1] for c in two.candidates)  # each names the node that measured it
    assert "worker_latency_us" in two.winner  # re-measured on this machine
    table = (tmp_path / "two" / "optimize.md").read_text()
    assert "| node |" in table and two.candidates[-1]["node"] in table
    assert (tmp_path / "two" / two.winner["artifact"]).is_file() and (tmp_path / "two" / "recipe.yaml").is_file()


def test_a_sweep_trains_its_runs_on_both_nodes(cluster, small_digits, tmp_path):
    from edgekit.train import TrainConfig, sweep

    said: list[str] = []
    rows = sweep(TrainConfig(model="cnn-small", epochs=1, seed=0), small_digits, models=["cnn-small"],
                 optimizers=["sgd", "adam"], out=tmp_path / "sweep", workers=2, ray_address=cluster.address,
                 worker_threads=1, progress=lambda m: said.append(str(m)))
    assert [r["run"] for r in rows] == ["cnn-small-sgd-constant", "cnn-small-adam-constant"]
    assert all(0 < r["test_accuracy"] <= 1 for r in rows)
    for r in rows:
        assert (tmp_path / "sweep" / r["run"] / "model.keras").is_file()
    nodes = {line.rsplit("/", 1)[1] for line in said if ": trained on " in line}
    assert len(nodes) == 2


CHILD = """
import sys
from edgekit.data import load_dataset
from edgekit.optimize import optimize
from tests.parallel.test_ray_cluster import SEARCH
optimize(sys.argv[1], load_dataset("digits", seed=0, limit=600), SEARCH, sys.argv[2], workers=2,
         ray_address=sys.argv[3], worker_threads=1)
"""


def test_a_driver_killed_mid_batch_resumes_to_the_same_winner(cluster, one_worker, trained_small, small_digits,
                                                              tmp_path):
    """A search with two workers, its driver SIGKILLed in a child once a few candidates are saved (the
    members of its batch still running are lost with it): resumed, it asks those again and ends with the
    candidates, winner and holdout drop of the uninterrupted one-worker search."""
    import subprocess
    import sys

    from edgekit.artifacts import read_json
    from edgekit.optimize.state import STATE_FILE
    from tests.test_atomic_runs import ROOT

    out = tmp_path / "killed"
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("RAY_ADDRESS", None)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(trained_small[1]), str(out), cluster.address],
                             cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state = out / STATE_FILE
    saved: dict = {}
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and child.poll() is None:
        try:
            saved = read_json(state).get("results") or {}
        except (OSError, ValueError):
            saved = {}
        if len(saved) >= 4:  # the baseline and three candidates: the search is inside its batches
            os.kill(child.pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    child.wait(60)
    assert child.returncode == -signal.SIGKILL, (child.returncode, child.stderr.read()[-2000:])
    assert not (out / "optimize.json").exists()

    said: list[str] = []
    again = optimize(trained_small[1], small_digits, SEARCH, out, workers=2, ray_address=cluster.address,
                     worker_threads=1, resume=True, progress=said.append)
    kept = read_json(state)["results"]
    assert sum("measured before (resumed)" in line for line in said) >= len(saved) >= 4
    a, b = one_worker.report, again.report
    assert [c["key"] for c in b["candidates"]] == [c["key"] for c in a["candidates"]]
    assert len(kept) == len(a["candidates"]) > len(saved)  # the lost members were asked again, nothing twice
    assert len(list((out / "candidates").iterdir())) == len(kept) + len(b["failed"])
    assert b["winner"]["key"] == a["winner"]["key"] and b["holdout"]["drop_pt"] == a["holdout"]["drop_pt"]
