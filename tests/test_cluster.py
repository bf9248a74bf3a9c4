"""pyiron on real services: a single-node SLURM (through pysqa) and a PostgreSQL project database.

The session fixture starts munge, slurmctld, slurmd and PostgreSQL with ``scripts/services.sh start`` (Debian
packages, daemons run directly, loopback only) and stops what it started. When they cannot start (not root, no
apt, a container that forbids the daemons) every test here is skipped with the script's message.

Every pyiron action runs in a fresh subprocess (``tests/_cluster_driver.py``) configured by environment variables
only, as a user's process or a SLURM job would be; the pytest process keeps the SQLite set-up of ``conftest.py``.
Each session uses its own PostgreSQL job table (``PYIRONSQLTABLENAME``), dropped at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "services.sh"
DRIVER = Path(__file__).with_name("_cluster_driver.py")
QUEUE = "local"


def _services(command: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), command], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def services():
    """Start SLURM and PostgreSQL (skip when impossible); yields the exports of ``services.sh env``."""
    if os.name != "posix" or shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("cluster services need root on a Debian-like system (apt-get, munge and postgres accounts)")
    was_running = _services("status").returncode == 0
    try:
        started = _services("start")
    except subprocess.TimeoutExpired:
        pytest.skip("scripts/services.sh start did not finish within 10 minutes")
    if started.returncode != 0:
        pytest.skip(f"SLURM/PostgreSQL could not be started: {started.stderr.strip()[-1500:]}")
    exports = {}
    for line in _services("env").stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        exports[key] = value
    yield exports
    if not was_running:
        _services("stop")


def _base_env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYIRON")}
    env.update(PYIRONPROJECTPATHS=str(tmp), PYIRONPROJECTCHECKENABLED="False", PYIRONDISABLE="False",
               PYIRONCONNECTIONTIMEOUT="0", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env["PATH"] = f"{Path(sys.prefix) / 'bin'}:{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="session")
def cluster_dir(tmp_path_factory) -> Path:
    # projects of the subprocesses and SLURM jobs (same machine, same user: a local folder is shared enough)
    path = Path(tmp_path_factory.mktemp("cluster")).resolve()
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def pg_env(services, cluster_dir):
    """Environment pointing pyiron at the PostgreSQL server, with a job table of its own for this session."""
    from pyiron_mlip_tradeoff.cluster import write_slurm_queue_config

    table = f"jobs_test_{uuid.uuid4().hex[:10]}"
    db = {k: v for k, v in services.items() if k.startswith("PYIRON")}
    db.update(PYIRONSQLTABLENAME=table, PYIRONCONNECTIONTIMEOUT="0")
    resources = cluster_dir / "resources"
    write_slurm_queue_config(resources / "queues", partition="local", queue=QUEUE, environment=db)
    env = _base_env(cluster_dir)
    env.update(db, PYIRONRESOURCEPATHS=str(resources), SLURM_CONF=services["SLURM_CONF"])
    yield env
    import psycopg2

    host, _, port = services["PYIRONSQHOST"].partition(":")
    with psycopg2.connect(host=host, port=int(port or 5432), dbname=services["PYIRONSQLDATABASE"],
                          user=services["PYIRONUSER"], password=services["PYIRONSQLUSERKEY"]) as conn:
        with conn.cursor() as cur:
            cur.execute(f'DROP TABLE IF EXISTS "{table}"')


def _sqlite_env(folder: Path) -> dict:
    env = _base_env(folder)
    env.update(PYIRONSQLTYPE="SQLite", PYIRONSQLFILE=str(folder / "pyiron.db"))
    return env


def _start(action: str, args: dict, env: dict, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(DRIVER), action, json.dumps(args), str(out)], env=env,
                            cwd=args.get("project", None), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _finish(proc: subprocess.Popen, out: Path, timeout: float = 300) -> dict:
    log, _ = proc.communicate(timeout=timeout)
    assert out.exists(), f"driver wrote no result:\n{log[-3000:]}"
    result = json.loads(out.read_text())
    assert result.pop("ok"), result.get("traceback", "") + "\n" + log[-3000:]
    return result


def _drive(action: str, args: dict, env: dict, timeout: float = 300) -> dict:
    out = Path(args["project"]) / f".{action}_{uuid.uuid4().hex[:6]}.json"
    Path(args["project"]).mkdir(parents=True, exist_ok=True)
    return _finish(_start(action, args, env, out), out, timeout)


# ---- PostgreSQL and SLURM: a small precision ladder ------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ladder(pg_env, cluster_dir):
    """The reference: a 2-structure level-1 ladder run in-process against PostgreSQL."""
    return _drive("ladder", {"project": str(cluster_dir / "ladder_local"), "name": "ladder"}, pg_env)


def test_ladder_on_postgres(local_ladder, pg_env, cluster_dir):
    assert local_ladder["status"] == "finished"
    energy = np.asarray(local_ladder["energy"])
    assert energy.shape == (1, 2) and np.isfinite(energy).all()
    rows = _drive("count", {"project": str(cluster_dir / "ladder_local")}, pg_env)
    assert rows["n_rows"] == 1 and rows["status"] == {"finished": 1}


def test_ladder_through_slurm_equals_local(local_ladder, pg_env, cluster_dir):
    """``job.server.queue`` sends the ladder to SLURM (pysqa); the job runs there against the same database."""
    project = cluster_dir / "ladder_slurm"
    queued = _drive("ladder", {"project": str(project), "name": "ladder", "queue": QUEUE}, pg_env)
    assert queued["status"] == "finished", queued
    assert queued["queue_id"] is not None
    slurm_log = list(Path(queued["working_directory"]).glob("slurm-*.out"))
    assert slurm_log, "the job did not run through SLURM (no slurm-<id>.out in its working directory)"
    # same code, same input, single-threaded GPAW: the same numbers
    np.testing.assert_allclose(queued["energy"], local_ladder["energy"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(queued["forces"], local_ladder["forces"], rtol=0, atol=1e-5)
    print(f"\nladder wall time: local {local_ladder['wall_seconds']:.1f} s, "
          f"SLURM {queued['wall_seconds']:.1f} s (submission to finished output)")


# ---- two processes writing grid jobs at the same time -----------------------------------------------------------
GRID = {"subset_sizes": [2, 3, 4, 5], "weight_ratios": [5, 10, 50, 150], "repetitions": 2}
N_POINTS = 4 * 4 * 2


@pytest.fixture(scope="module")
def synthetic_dataset(cluster_dir) -> str:
    """A small LadderDataset with made-up energies and forces (no DFT): grid points only need numbers."""
    from pyiron_mlip_tradeoff.dataset import LadderDataset
    from pyiron_mlip_tradeoff.structures import generate_structures

    structures, _ = generate_structures(12, seed=5, oversample=2, max_atoms=4)
    rng = np.random.default_rng(0)
    n_atoms = sum(len(s) for s in structures)
    dataset = LadderDataset(structures, rng.normal(size=(1, len(structures))), rng.normal(size=(1, n_atoms, 3)),
                            levels=[1])
    return str(dataset.save(cluster_dir / "synthetic.h5"))


def _concurrent_grids(env: dict, project: Path, dataset: str) -> tuple[list[dict], dict]:
    project.mkdir(parents=True, exist_ok=True)
    start_at = time.time() + 8  # both past their imports before either writes
    procs = []
    for i in range(2):
        args = {"project": str(project), "name": f"grid{i}", "dataset": dataset, "seed": i, "start_at": start_at,
                "cache_dir": str(project / f"cache{i}"), **GRID}
        out = project / f".grid{i}.json"
        procs.append((_start("grid", args, env, out), out))
    results = [_finish(proc, out) for proc, out in procs]
    return results, _drive("count", {"project": str(project)}, env)


def _overlap(results: list[dict]) -> float:
    return min(r["run_finished"] for r in results) - max(r["run_started"] for r in results)


def test_concurrent_grid_writers_postgres(pg_env, cluster_dir, synthetic_dataset):
    """Two processes each store a 32-point grid (33 rows) at the same time: PostgreSQL keeps all 66 rows."""
    results, rows = _concurrent_grids(pg_env, cluster_dir / "concurrent_pg", synthetic_dataset)
    assert all(r["status"] == "finished" and r["n_points"] == N_POINTS for r in results)
    assert _overlap(results) > 0, "the two writers did not overlap in time"
    assert rows["n_rows"] == 2 * (N_POINTS + 1) and rows["status"] == {"finished": 2 * (N_POINTS + 1)}
    assert len(set(rows["jobs"])) == rows["n_rows"]
    print(f"\nPostgreSQL: 2 concurrent grids, {rows['n_rows']} rows, "
          f"{[round(r['run_finished'] - r['run_started'], 1) for r in results]} s per grid run, overlap {_overlap(results):.1f} s")


def test_concurrent_grid_writers_sqlite(services, tmp_path, synthetic_dataset):
    """The same two writers on one SQLite file.

    SQLite allows one writer at a time: a process that writes while the other holds the write lock waits (Python's
    sqlite3 busy timeout, 5 s), and past that gets ``OperationalError: database is locked``, which pyiron retries
    every 5 s without limit. With the short transactions of a grid (children stored 50 per transaction) the two
    writers interleave: measured here, no error, no lost row, all 66 rows finished. The limits are throughput (each write waits for the other
    process), the unbounded retry when a lock is held for long, and that the file must not be on a network file
    system (NFS locking is unreliable), so it cannot serve several cluster nodes: use PostgreSQL there.
    """
    results, rows = _concurrent_grids(_sqlite_env(tmp_path), tmp_path / "concurrent_sqlite", synthetic_dataset)
    assert all(r["status"] == "finished" and r["n_points"] == N_POINTS for r in results)
    assert rows["n_rows"] == 2 * (N_POINTS + 1) and rows["status"] == {"finished": 2 * (N_POINTS + 1)}
    print(f"\nSQLite: 2 concurrent grids, {rows['n_rows']} rows, "
          f"{[round(r['run_finished'] - r['run_started'], 1) for r in results]} s per grid run, overlap {_overlap(results):.1f} s")


# ---- faults ----------------------------------------------------------------------------------------------------
def test_unreachable_database_clear_error_nothing_written(pg_env, cluster_dir):
    """The database goes away after pyiron connected (cut proxy): creating a ladder fails within seconds with
    ``DatabaseUnreachableError`` naming host, database and user; no job files and no rows are written.

    (pyiron itself retries a failed call every 5 s without limit, and a server that is down when pyiron is first
    imported makes ``import pyiron_base`` retry for about 100 s before it raises SQLAlchemy's
    ``OperationalError ... Connection refused``: neither path writes anything.)
    """
    project = cluster_dir / "unreachable"
    result = _drive("unreachable", {"project": str(project), "name": "ladder"}, pg_env, timeout=120)
    assert result["rows_before"] == 0
    assert result["error"] is not None and result["error"]["type"] == "DatabaseUnreachableError", result
    message = result["error"]["message"]
    assert "cannot be reached" in message and "Nothing was written" in message and "127.0.0.1" in message
    assert result["seconds"] < 30
    assert [f for f in result["files"] if not f.startswith(".") and f != "pyiron.log"] == []  # pyiron's own log
    assert _drive("count", {"project": str(project)}, pg_env)["n_rows"] == 0
