"""Once-per-grid parts shared among chunk processes through files (``chunk_sharing.share_parts``): each part is
computed by exactly one of several processes started together, every process gets every value, a claim whose
process died is taken over, and a part whose function fails gives its claim up."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from pyiron_mlip_tradeoff.chunk_sharing import share_parts


def _slow_part(log: str, name: str, seconds: float):
    def compute():
        with open(log, "a") as handle:
            handle.write(f"{name} {os.getpid()}\n")
        time.sleep(seconds)
        return {"name": name, "values": np.arange(5.0) * len(name)}
    return compute


def _worker(folder: str, log: str, start: int, out: str, barrier) -> None:
    names = ("leverage_block", "test", "validation")
    parts = {n: _slow_part(log, n, 0.6) for n in names}
    barrier.wait()  # both begin together, as chunks submitted side by side
    values = share_parts(folder, "k1", parts, start=start)
    with open(out, "w") as handle:
        json.dump({"values": {n: v["values"].tolist() for n, v in values.items()}}, handle)


def test_two_processes_compute_each_part_once_and_both_get_all(tmp_path):
    log = tmp_path / "computed.log"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_worker, args=(str(tmp_path / "shared"), str(log), i, str(tmp_path / f"out{i}.json"),
                                               barrier)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    computed = log.read_text().split("\n")[:-1]
    names = [line.split()[0] for line in computed]
    assert sorted(names) == ["leverage_block", "test", "validation"]  # each part exactly once
    assert len({line.split()[1] for line in computed}) == 2  # and the work was split between the two
    outs = [json.loads((tmp_path / f"out{i}.json").read_text()) for i in range(2)]
    expected = {n: (np.arange(5.0) * len(n)).tolist() for n in ("leverage_block", "test", "validation")}
    assert outs[0]["values"] == outs[1]["values"] == expected


def test_second_call_reads_and_other_key_recomputes(tmp_path):
    calls = []

    def part():
        calls.append(1)
        return np.ones(3)

    first = share_parts(tmp_path, "a", {"test": part})
    again = share_parts(tmp_path, "a", {"test": part})
    other = share_parts(tmp_path, "b", {"test": part})
    assert len(calls) == 2
    np.testing.assert_array_equal(first["test"], again["test"])
    np.testing.assert_array_equal(first["test"], other["test"])


def test_claim_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    import socket

    (tmp_path / "k_test.claim").write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "time": 0}))
    value = share_parts(tmp_path, "k", {"test": lambda: 42})
    assert value == {"test": 42}
    assert (tmp_path / "k_test.pkl").exists()


def test_stale_claim_of_another_host_is_taken_over(tmp_path):
    claim = tmp_path / "k_test.claim"
    claim.write_text(json.dumps({"host": "some-other-node", "pid": 1, "time": 0}))
    old = time.time() - 600
    os.utime(claim, (old, old))
    assert share_parts(tmp_path, "k", {"test": lambda: "mine"}, stale_seconds=60) == {"test": "mine"}


def test_failing_part_gives_its_claim_up(tmp_path):
    def broken():
        raise RuntimeError("no rows")

    with pytest.raises(RuntimeError, match="no rows"):
        share_parts(tmp_path, "k", {"test": broken})
    assert not (tmp_path / "k_test.claim").exists()
    assert share_parts(tmp_path, "k", {"test": lambda: 1}) == {"test": 1}
