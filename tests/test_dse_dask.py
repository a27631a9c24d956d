"""The Dask engine of `accelsim.dse`: a LocalCluster reached through its address (the path a
remote scheduler takes), `dask scheduler` / `dask worker` started from the command line, and no
orphaned worker after the driver dies by SIGKILL or SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import accelsim
from accelsim import dse
from accelsim.cli import main

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

SETTINGS = {"subbatch": ["8", "16"], "caches[0].capacity": ["1MiB", "24MiB"]}


@pytest.fixture(scope="module")
def hw(repo):
    return accelsim.load_hardware(repo / "hwspecs/v100.yaml")


@pytest.fixture(scope="module")
def wl(tiny):
    return accelsim.load_workload(tiny)


@pytest.fixture(scope="module")
def cluster():
    import logging

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR) as c:
        yield c


def test_cluster_reached_through_its_address_matches_in_process(cluster, hw, wl, monkeypatch):
    local = dse.sweep(hw, wl, SETTINGS)
    scattered = []
    real_scatter = distributed.Client.scatter

    def counting_scatter(self, data, **kw):
        scattered.append(kw.get("broadcast"))
        return real_scatter(self, data, **kw)

    monkeypatch.setattr(distributed.Client, "scatter", counting_scatter)
    seen = []
    remote = dse.sweep(hw, wl, SETTINGS, scheduler=cluster.scheduler_address,
                       on_point=seen.append)
    assert [p.settings for p in remote] == [p.settings for p in local]
    assert [p.summary for p in remote] == [p.summary for p in local]
    assert scattered == [True, True]  # one graph per workload variant, broadcast once
    assert len(seen) == 4 and {p.key for p in seen} == {p.key for p in local}
    notes = " ".join(remote.notes)
    assert f"Dask cluster at {cluster.scheduler_address}, 2 workers" in notes
    assert "2 for 4 points" in notes and "scatter" in notes

    with distributed.Client(cluster.scheduler_address) as client:  # the API's client= path
        again = dse.sweep(hw, wl, {"subbatch": ["8"]}, client=client)
        assert again[0].summary == dse.sweep(hw, wl, {"subbatch": ["8"]})[0].summary
        assert client.status == "running"  # a client the caller owns stays open


def test_a_failing_point_stops_the_sweep_with_its_error(cluster, hw, wl, monkeypatch, tmp_path):
    store = tmp_path / "r.jsonl"
    with pytest.raises(accelsim.AccelsimError, match="mode"):
        # A mode the workers reject: the error comes back from the worker, nothing is stored.
        the_plan = dse.plan(hw, wl, {"subbatch": ["8"]})
        bad = dse.Plan(axes=the_plan.axes, points=the_plan.points, mode="warp", notes=())
        dse.run(bad, scheduler=cluster.scheduler_address, store=store)
    assert not store.exists() or store.read_text() == ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """End a process group this test started (scheduler or worker and its nanny's children)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


@pytest.mark.slow
def test_cli_on_a_dask_scheduler_and_worker_started_from_the_command_line(repo, tiny, tmp_path,
                                                                         capsys):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(repo)}  # the workers import this accelsim
    log = open(tmp_path / "dask.log", "w")
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--no-dashboard"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    worker = None
    try:
        worker = subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", address, "--nworkers", "1", "--nthreads",
             "1", "--no-dashboard", "--death-timeout", "60"], env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        with distributed.Client(address, timeout="60s") as client:
            client.wait_for_workers(1, timeout=120)
        store = tmp_path / "r.jsonl"
        argv = ["sweep", str(repo / "hwspecs/v100.yaml"), tiny, "--set", "subbatch=8,16",
                "--scheduler", address, "--out", str(store)]
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "2 points; 0 reused" in out and f"Dask cluster at {address}, 1 workers" in out
        assert len(dse.read_store(store).records) == 2
    finally:
        if worker is not None:
            _stop(worker)
        _stop(scheduler)
        log.close()


def test_unreachable_scheduler_is_a_clear_error(tiny, repo, capsys):
    address = f"tcp://127.0.0.1:{_free_port()}"
    argv = ["sweep", str(repo / "hwspecs/v100.yaml"), tiny, "--set", "subbatch=8",
            "--scheduler", address]
    t0 = time.monotonic()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"--scheduler {address}: cannot connect" in err and "Traceback" not in err
    assert time.monotonic() - t0 < 120
    assert main([*argv[:-1], "tcp://127.0.0.1"]) == 2
    assert "expected tcp://HOST:PORT" in capsys.readouterr().err


POOL_DRIVER = """
import sys
import accelsim
from accelsim import dse
dse.dask_available = lambda: False  # the fallback engine: a spawn pool
hw, wl = accelsim.load_hardware(sys.argv[1]), accelsim.load_workload(sys.argv[2])
dse.sweep(hw, wl, {"subbatch": [8 + i for i in range(40)]}, jobs=2)
"""


def _start_driver(repo, tiny, tmp_path, pool: bool = False) -> tuple[subprocess.Popen, list]:
    """A sweep on 2 local workers in a subprocess, once both workers are up."""
    values = ",".join(str(8 + i) for i in range(40))  # long enough to be killed mid-sweep
    argv = ([sys.executable, "-c", POOL_DRIVER, str(repo / "hwspecs/v100.yaml"), tiny] if pool
            else [sys.executable, "-m", "accelsim", "sweep", str(repo / "hwspecs/v100.yaml"),
                  tiny, "--set", f"subbatch={values}", "--jobs", "2", "--out",
                  str(tmp_path / "r.jsonl")])
    proc = subprocess.Popen(argv, cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver = psutil.Process(proc.pid)
    deadline = time.monotonic() + 180
    children: list = []
    while time.monotonic() < deadline and proc.poll() is None:
        children = driver.children(recursive=True)
        workers = [c for c in children if "spawn_main" in " ".join(_cmdline(c))]
        if len(workers) >= 2:
            time.sleep(1.0)
            return proc, driver.children(recursive=True)
        time.sleep(0.2)
    proc.kill()
    pytest.fail("the sweep's Dask workers did not start")
    return proc, children


def _cmdline(p) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _survivors(children: list, timeout_s: float) -> list:
    _gone, alive = psutil.wait_procs(children, timeout=timeout_s)
    for p in alive:  # clean up before failing
        try:
            p.kill()
        except psutil.Error:
            pass
    return alive


@pytest.mark.slow
def test_sigkill_of_the_driver_leaves_no_worker_process(repo, tiny, tmp_path):
    proc, children = _start_driver(repo, tiny, tmp_path)
    assert children
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    alive = _survivors(children, timeout_s=60)
    assert not alive, [(_cmdline(p)) for p in alive]


@pytest.mark.slow
def test_sigterm_of_the_driver_closes_the_cluster(repo, tiny, tmp_path):
    proc, children = _start_driver(repo, tiny, tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    assert not _survivors(children, timeout_s=30)


@pytest.mark.slow
def test_sigkill_of_the_driver_leaves_no_pool_worker_without_dask(repo, tiny, tmp_path):
    proc, children = _start_driver(repo, tiny, tmp_path, pool=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not _survivors(children, timeout_s=60)  # each worker watches its parent
