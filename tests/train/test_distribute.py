"""Multi-worker training: cluster parsing, the peer deadline, and two real local workers."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli
from edgekit.errors import UsageError
from edgekit.train import workers as wk
from edgekit.train.strategy import hold_port, will_be_chief

WORKER = Path(__file__).with_name("multiworker_worker.py")
ROOT = Path(__file__).resolve().parents[2]
WORKER_TIMEOUT = 240  # seconds; subprocess.run kills the worker (SIGKILL) past it


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT), **extra)
    return env


def _two_ports() -> str:
    a = wk.free_port()
    b = wk.free_port()
    while b == a:
        b = wk.free_port()
    return f"127.0.0.1:{a},127.0.0.1:{b}"


# ---------------------------------------------------------------- parsing, no TensorFlow


def test_workers_flag_builds_a_cluster_with_worker0_as_chief():
    c = wk.from_workers("127.0.0.1:2222, 127.0.0.1:2223", 1)
    assert c.jobs == {"worker": ("127.0.0.1:2222", "127.0.0.1:2223")}
    assert (c.task_type, c.task_index, c.num_workers, c.is_chief) == ("worker", 1, 2, False)
    assert c.address == "127.0.0.1:2223" and c.peers() == ["127.0.0.1:2222"]
    assert wk.from_workers("127.0.0.1:2222,127.0.0.1:2223", 0).is_chief
    assert c.to_tf_config() == {"cluster": {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]},
                                "task": {"type": "worker", "index": 1}}
    assert wk.from_tf_config(json.dumps(c.to_tf_config())) == c
    assert wk.Cluster.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("workers, index, fragment", [
    ("127.0.0.1", 0, "must be host:port"),
    ("127.0.0.1:0", 0, "port must be an integer in 1..65535"),
    ("127.0.0.1:99999", 0, "port must be an integer in 1..65535"),
    ("127.0.0.1:abc", 0, "port must be an integer"),
    ("a:1,a:1", 0, "appears twice"),
    ("a:1,b:2", 2, "--worker-index must be in 0..1"),
    ("a:1,b:2", -1, "--worker-index must be in 0..1"),
    ("a:1,b:2", None, "needs --worker-index"),
    (" , ", 0, "at least one host:port"),
])
def test_bad_workers_flag_is_one_clear_line(workers, index, fragment):
    with pytest.raises(UsageError) as e:
        wk.from_workers(workers, index)
    assert fragment in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("text, fragment", [
    ("", "set TF_CONFIG or pass --workers"),
    ("{bad", "not valid JSON"),
    ('["worker"]', "TF_CONFIG must be"),
    ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG must be"),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "job 'ps' is not supported"),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "non-empty list"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "task.type must be"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "task.index must be in 0..0"),
    ('{"cluster": {"chief": ["a:1", "b:2"], "worker": ["c:3"]}, "task": {"type": "worker", "index": 0}}',
     "one chief"),
    ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}', "appears twice"),
])
def test_bad_tf_config_is_one_clear_line(text, fragment):
    with pytest.raises(UsageError) as e:
        wk.from_tf_config(text)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_chief_task_is_the_chief_and_multiworker_reads_tf_config(monkeypatch):
    cfg = {"cluster": {"chief": ["a:1"], "worker": ["b:2", "c:3"]}, "task": {"type": "worker", "index": 0}}
    c = wk.from_tf_config(json.dumps(cfg))
    assert c.num_workers == 3 and not c.is_chief and c.leader == "/job:chief/replica:0/task:0"
    monkeypatch.setenv("TF_CONFIG", json.dumps(cfg))
    assert will_be_chief("multiworker") is False
    assert will_be_chief("default") is True
    monkeypatch.setenv("TF_CONFIG", json.dumps({**cfg, "task": {"type": "chief", "index": 0}}))
    assert will_be_chief("multiworker") is True
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(UsageError, match="set TF_CONFIG or pass --workers"):
        will_be_chief("multiworker")


def test_resolve_prefers_flags_and_checks_their_pairing(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["x:1"]}, "task": {"type": "worker"}}))
    assert wk.resolve("a:1,b:2", 1).address == "b:2"
    assert wk.resolve().address == "x:1"
    with pytest.raises(UsageError, match="--worker-index needs --workers"):
        wk.resolve(None, 1)


def test_timeouts_from_the_environment(monkeypatch):
    monkeypatch.delenv("EDGEKIT_CLUSTER_TIMEOUT", raising=False)
    assert wk.connect_timeout() == wk.DEFAULT_CONNECT_TIMEOUT
    monkeypatch.setenv("EDGEKIT_CLUSTER_TIMEOUT", "2.5")
    assert wk.connect_timeout() == 2.5
    monkeypatch.setenv("EDGEKIT_CLUSTER_TIMEOUT", "soon")
    with pytest.raises(UsageError, match="EDGEKIT_CLUSTER_TIMEOUT must be a positive number"):
        wk.connect_timeout()


# ---------------------------------------------------------------- the peer deadline


def test_unreachable_peer_times_out_with_a_message():
    c = wk.from_workers(_two_ports(), 0)  # nobody listens on the peer's port
    t0 = time.monotonic()
    with pytest.raises(UsageError) as e:
        wk.wait_for_peers(c, timeout=0.6)
    waited = time.monotonic() - t0
    assert 0.5 <= waited < 10
    msg = str(e.value)
    assert "could not reach" in msg and c.peers()[0] in msg and "within 0.6s" in msg and "\n" not in msg


def test_held_port_counts_as_reachable_and_a_taken_port_is_refused():
    c0 = wk.from_workers(_two_ports(), 0)
    c1 = wk.Cluster(c0.jobs, "worker", 1)
    with hold_port(c1.address):  # the peer is "up"
        wk.wait_for_peers(c0, timeout=5)
        with pytest.raises(UsageError, match="cannot listen on port"):
            with hold_port(c1.address):
                pass


def test_cli_rejects_bad_cluster_flags_with_one_line(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    cases = [
        (["--strategy", "multiworker", "--workers", "127.0.0.1:80:80x", "--worker-index", "0"], "port must be"),
        (["--strategy", "multiworker", "--workers", "a:1,b:2", "--worker-index", "5"], "--worker-index must be"),
        (["--strategy", "multiworker", "--worker-index", "0"], "--worker-index needs --workers"),
        (["--workers", "a:1,b:2", "--worker-index", "0"], "need --strategy multiworker"),
        (["--strategy", "multiworkr"], 'Did you mean "multiworker"?'),
    ]
    for args, fragment in cases:
        r = runner.invoke(cli, ["train", "--out", str(out), *args], env={"TF_CONFIG": ""})
        assert r.exit_code == 2, (args, r.output)
        assert fragment in r.output and r.output.count("\n") == 1 and "Traceback" not in r.output, r.output
    r = runner.invoke(cli, ["train", "--out", str(out), "--strategy", "multiworker"], env={"TF_CONFIG": "{bad"})
    assert r.exit_code == 2 and "TF_CONFIG is not valid JSON" in r.output
    assert not out.exists()


def test_train_help_lists_the_cluster_options():
    r = CliRunner().invoke(cli, ["train", "--help"])
    assert r.exit_code == 0
    for opt in ("--workers", "--worker-index", "--strategy", "--mixed-precision", "--jit"):
        assert opt in r.output


def test_lonely_worker_process_exits_with_a_message_not_a_hang(tmp_path):
    """A real `edgekit train` worker whose peer never starts: exit 2, one line, nothing written."""
    workers = _two_ports()
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "edgekit.cli.main", "train", "--strategy", "multiworker", "--workers", workers,
           "--worker-index", "0", "--epochs", "1", "--limit", "100", "--out", str(out), "-q"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT, cwd=ROOT,
                       env=_env(EDGEKIT_CLUSTER_TIMEOUT="2"))
    assert p.returncode == 2, p.stderr[-2000:]
    errors = [line for line in p.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "could not reach" in errors[0] and workers.split(",")[1] in errors[0]
    assert "Traceback" not in p.stderr
    assert not (out / "model.keras").exists()


# ---------------------------------------------------------------- two real workers


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """Two MultiWorkerMirroredStrategy workers on loopback: 3 epochs, 32 per worker = global 64."""
    tmp = tmp_path_factory.mktemp("multiworker")
    workers = _two_ports()
    procs, results = [], []
    for i in (0, 1):
        out, res = tmp / f"out{i}", tmp / f"weights{i}.npz"
        log = open(tmp / f"worker{i}.log", "w")
        procs.append((subprocess.Popen([sys.executable, str(WORKER), workers, str(i), str(out), str(res), "3", "32", "0.003"],
                                       cwd=ROOT, env=_env(EDGEKIT_CLUSTER_TIMEOUT="120"), stdout=log,
                                       stderr=subprocess.STDOUT), log))
        results.append((out, res))
    deadline = time.monotonic() + WORKER_TIMEOUT
    try:
        for p, log in procs:
            p.wait(timeout=max(1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pytest.fail("multi-worker training did not finish in time")
    finally:
        for p, log in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()
    for i, (p, _) in enumerate(procs):
        assert p.returncode == 0, (tmp / f"worker{i}.log").read_text()[-3000:]
    loaded = []
    for out, res in results:
        z = np.load(res)
        n = len([k for k in z.files if k.startswith("arr_")])
        loaded.append({"out": out, "weights": [z[f"arr_{j}"] for j in range(n)],
                       "metrics": json.loads(str(z["metrics"])), "history": json.loads(str(z["history"]))})
    return loaded


def test_workers_end_with_identical_weights(two_workers):
    w0, w1 = two_workers[0]["weights"], two_workers[1]["weights"]
    assert len(w0) == len(w1) == 10
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)
    m0, m1 = two_workers[0]["metrics"], two_workers[1]["metrics"]
    assert m0["replicas"] == 2 and m0["global_batch_size"] == 64
    assert m0["test_accuracy"] == m1["test_accuracy"]


def test_only_the_chief_writes_artifacts(two_workers):
    chief, other = two_workers[0]["out"], two_workers[1]["out"]
    assert sorted(p.name for p in chief.iterdir()) == ["curves.png", "history.json", "manifest.json", "model.keras"]
    assert not other.exists()  # nothing at all: not even the checkpoint folder
    manifest = json.loads((chief / "manifest.json").read_text())
    assert manifest["stages"]["train"]["config"]["strategy"] == "multiworker"
    assert manifest["stages"]["train"]["metrics"]["global_batch_size"] == 64


def test_multiworker_matches_a_single_worker_run_of_the_same_global_batch(two_workers, small_digits):
    from edgekit.train import TrainConfig, train

    single = train(TrainConfig(model="cnn", epochs=3, batch_size=64, lr=0.003, seed=0, deterministic=True),
                   small_digits)
    mw = two_workers[0]
    # same data order, same global batch, gradients summed across workers: the same
    # optimisation up to float summation order
    assert abs(mw["metrics"]["test_accuracy"] - single.metrics["test_accuracy"]) <= 0.03
    for h_mw, h_one in zip(mw["history"], single.history):
        assert h_mw["loss"] == pytest.approx(h_one["loss"], rel=1e-3)
    # float summation order differs, and 3 epochs amplify it in a few weights: each tensor's
    # mean |difference| stays under 1% of its mean |weight| (another data order gives tens of %)
    for a, b in zip(mw["weights"], single.model.get_weights()):
        assert float(np.abs(a - b).mean()) < 0.01 * float(np.abs(b).mean())


# ---------------------------------------------------------------- restart from the backup


def test_backup_lets_an_interrupted_run_resume(tmp_path, small_digits):
    """The checkpoints multiworker runs keep: a run killed after epoch 2 resumes at epoch 3."""
    import tf_keras as keras

    from edgekit.models import build_model
    from edgekit.train.checkpoints import remove_empty_backup, restart_callbacks

    assert restart_callbacks(None) == []
    x, y = small_digits.x_train[:128], small_digits.y_train[:128]

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("worker lost")

    def model():
        m = build_model("mlp", small_digits.info.input_shape, 10)
        m.compile("adam", "sparse_categorical_crossentropy")
        return m

    with pytest.raises(RuntimeError, match="worker lost"):
        model().fit(x, y, epochs=4, verbose=0, callbacks=[*restart_callbacks(tmp_path), Crash()])
    assert any((tmp_path / "backup").rglob("*"))  # the state of epoch 2 is on disk
    h = model().fit(x, y, epochs=4, verbose=0, callbacks=restart_callbacks(tmp_path))
    assert h.epoch == [2, 3]  # resumed, not restarted
    assert (tmp_path / "backup").is_dir()  # kept until the model is written (resume.finish)
    shutil.rmtree(tmp_path / "backup")
    remove_empty_backup(tmp_path, out_existed=True)
    assert tmp_path.exists()


def test_killed_worker_fails_the_chief_with_a_message_and_a_restart_resumes(tmp_path):
    """Kill worker 1 mid-run: the chief stops with one line; the same commands again resume
    from the last completed epoch (BackupAndRestore under OUT/backup) and agree."""
    workers, out, epochs = _two_ports(), tmp_path / "run", 8
    env = _env(EDGEKIT_CLUSTER_TIMEOUT="20")

    def start(i: int, tag: str):
        log = tmp_path / f"w{i}{tag}.log"
        cmd = [sys.executable, str(WORKER), workers, str(i), str(out), str(tmp_path / f"w{i}{tag}.npz"),
               str(epochs), "32", "0.003", "resume" if tag == "b" else "fresh"]
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT), log

    (chief, chief_log), (other, other_log) = start(0, "a"), start(1, "a")
    try:
        deadline = time.monotonic() + WORKER_TIMEOUT
        while f"epoch 2/{epochs}" not in other_log.read_text():
            assert other.poll() is None and time.monotonic() < deadline, other_log.read_text()[-2000:]
            time.sleep(0.05)
        other.kill()
        rc = chief.wait(timeout=WORKER_TIMEOUT)
    finally:
        for p in (chief, other):
            if p.poll() is None:
                p.kill()
            p.wait()
    text = chief_log.read_text()
    errors = [ln for ln in text.splitlines() if ln.startswith("Error:")]
    assert rc == 1 and len(errors) == 1, text[-2000:]
    assert "a peer failed or timed out" in errors[0] and "--resume to resume from the last completed epoch" in errors[0]
    assert (out / "backup").is_dir() and not (out / "model.keras").exists()

    (chief, chief_log), (other, other_log) = start(0, "b"), start(1, "b")
    try:
        assert chief.wait(timeout=WORKER_TIMEOUT) == 0, chief_log.read_text()[-2000:]
        assert other.wait(timeout=WORKER_TIMEOUT) == 0, other_log.read_text()[-2000:]
    finally:
        for p in (chief, other):
            if p.poll() is None:
                p.kill()
                p.wait()
    z0, z1 = np.load(tmp_path / "w0b.npz"), np.load(tmp_path / "w1b.npz")
    history = [row["epoch"] for row in json.loads(str(z0["history"]))]
    assert history == list(range(1, epochs + 1))  # continuous across the restart
    assert f"epoch 1/{epochs} " not in chief_log.read_text()  # continued, not started over
    for k in (f"arr_{j}" for j in range(10)):
        np.testing.assert_array_equal(z0[k], z1[k])
    assert (out / "model.keras").exists() and not (out / "backup").exists()
