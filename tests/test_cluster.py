"""pyiron on real services: a single-node SLURM (through pysqa) and a PostgreSQL project database.

The session fixture starts munge, slurmctld, slurmd and PostgreSQL with ``scripts/services.sh start`` (Debian
packages, daemons run directly, loopback only) and stops what it started. When they cannot start (not root, no
apt, a container that forbids the daemons) every test here is skipped with the script's message.

Every pyiron action runs in a fresh subprocess (``tests/_cluster_driver.py``) configured by environment variables
only, as a user's process or a SLURM job would be; the pytest process keeps the SQLite set-up of ``conftest.py``.
Each session uses its own PostgreSQL job table (``PYIRONSQLTABLENAME``), dropped at the end.

Covered: a ladder as one SLURM job; a ladder in ``LadderChunk`` SLURM jobs (``chunk_size``) equal to the in-process
ladder; a running chunk killed with ``scancel`` and resubmitted by the waiting ladder; a rerun after a dead chunk
(``wait_for_chunks = False``) that resubmits only that chunk; a ``TradeoffGrid`` as one SLURM job equal to the
in-process grid; a grid in ``GridChunk`` SLURM jobs equal to the in-process grid, with a rerun after a dead chunk
that recomputes only that chunk's points; a running grid chunk killed with ``scancel`` and resubmitted by the
waiting grid, computing only its missing points; concurrent grid writers on PostgreSQL and SQLite; an unreachable
database; and (without services) ladder and grid chunk input rejected before anything is saved.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from pyiron_mlip_tradeoff.cluster import postgres_connection, write_slurm_queue_config

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
    table = f"jobs_test_{uuid.uuid4().hex[:10]}"
    db = {k: v for k, v in services.items() if k.startswith("PYIRON")}
    db.update(PYIRONSQLTABLENAME=table, PYIRONCONNECTIONTIMEOUT="0")
    resources = cluster_dir / "resources"
    write_slurm_queue_config(resources / "queues", partition="local", queue=QUEUE, environment=db)
    env = _base_env(cluster_dir)
    env.update(db, PYIRONRESOURCEPATHS=str(resources), SLURM_CONF=services["SLURM_CONF"])
    yield env
    with postgres_connection(services) as conn, conn.cursor() as cur:
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


# ---- the ladder in chunks: LadderChunk queue jobs, the master in the calling process ------------------------------
def _squeue(env: dict) -> list[tuple[int, str, str]]:
    """(SLURM job id, state, working directory) of every job SLURM lists."""
    out = subprocess.run(["squeue", "--noheader", "--format", "%A|%t|%Z"], env=env, capture_output=True, text=True,
                         check=True).stdout
    return [(int(i), state, wd) for i, state, wd in (line.split("|") for line in out.splitlines() if line.strip())]


def _slurm_id_of(env: dict, chunk_job: str) -> tuple[int, str] | None:
    for job_id, state, wd in _squeue(env):
        if f"/{chunk_job}_hdf5/" in wd + "/":
            return job_id, state
    return None


def _wait_until(condition, proc: subprocess.Popen, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the driver ended before {what}:\n{proc.stdout.read()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def _python_pids_of_job(env: dict, job_id: int) -> list[int]:
    """PIDs of the Python processes of a running SLURM job on this node (``scontrol listpids``)."""
    out = subprocess.run(["scontrol", "listpids", str(job_id)], env=env, capture_output=True, text=True).stdout
    pids = []
    for line in out.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0].isdigit():
            try:
                if b"python" in Path(f"/proc/{fields[0]}/cmdline").read_bytes():
                    pids.append(int(fields[0]))
            except OSError:
                continue
    return pids


def _chunk_events(report: dict, event: str, chunk: int | None = None) -> list[dict]:
    return [e for e in report["events"] if e["event"] == event and (chunk is None or e["chunk"] == chunk)]


def test_chunked_ladder_through_slurm_equals_local(local_ladder, pg_env, cluster_dir):
    """``chunk_size = 1``: each calculation is a ``LadderChunk`` job submitted through pysqa; the ladder itself
    runs in the calling process (no queue slot), merges the chunks' results and equals the in-process ladder."""
    project = cluster_dir / "chunked"
    report = _drive("chunked_ladder", {"project": str(project), "name": "ladder", "queue": QUEUE, "chunk_size": 1},
                    pg_env)
    assert report["status"] == "finished" and report["status_after_run"] == "finished"
    assert report["queue_id"] is None and not list(Path(report["working_directory"]).glob("slurm-*.out"))
    assert sorted(report["chunks"]) == ["ladder_chunk00000", "ladder_chunk00001"]
    for name, chunk in report["chunks"].items():
        assert chunk["status"] == "finished" and len(chunk["slurm_logs"]) == 1, (name, chunk)
        assert len(chunk["computed"]) == 1 and chunk["skipped"] == []
    assert len(_chunk_events(report, "submitted")) == 2 and len(_chunk_events(report, "finished")) == 2
    assert report["n_pending"] == 0
    np.testing.assert_allclose(report["energy"], local_ladder["energy"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(report["forces"], local_ladder["forces"], rtol=0, atol=1e-5)
    print(f"\nchunked ladder (2 chunks): {report['wall_seconds']:.1f} s, in-process {local_ladder['wall_seconds']:.1f} s")


def test_scancel_of_running_chunk_is_detected_and_resubmitted(pg_env, cluster_dir):
    """While the master waits, ``scancel`` kills chunk 0 after its first calculation is stored and during its
    second: the master sees the chunk leave the queue with a calculation missing, resubmits the same chunk job, and
    the new SLURM job computes only the missing calculation (the stored one is not touched)."""
    project = cluster_dir / "chunk_scancel"
    project.mkdir(parents=True, exist_ok=True)
    store = project / "ladder_hdf5" / "ladder" / "units"  # calculations are stored under their fingerprints

    args = {"project": str(project), "name": "ladder", "queue": QUEUE, "chunk_size": 2, "structures": "fault",
            "levels": [1, 2]}  # chunk 0: the 2-atom and the 8-atom cell at level 1; chunk 1: both at level 2
    out = project / ".scancel.json"
    proc = _start("chunked_ladder", args, pg_env, out)
    # chunk 1 runs beside chunk 0 on the node's other CPU, so wait for chunk 0's own first calculation
    first, second = _unit_paths(store, "fault", [1], [(0, 1), (1, 1)])
    _wait_until(first.exists, proc, 180, "chunk 0 stored its first calculation")
    found = _slurm_id_of(pg_env, "ladder_chunk00000")
    assert found is not None and not second.exists(), "chunk 0 finished before it could be cancelled"
    first_stat = first.stat()
    subprocess.run(["scancel", str(found[0])], env=pg_env, check=True)
    report = _finish(proc, out)

    assert report["status"] == "finished", report
    died = _chunk_events(report, "died", 0)
    assert len(died) == 1 and died[0]["queue_id"] == found[0] and died[0]["missing"] == ["c00001_L1"], report["events"]
    assert len(_chunk_events(report, "submitted", 0)) == 2 and len(_chunk_events(report, "submitted", 1)) == 1
    chunk0, chunk1 = report["chunks"]["ladder_chunk00000"], report["chunks"]["ladder_chunk00001"]
    assert chunk0["computed"] == ["c00001_L1"] and chunk0["skipped"] == ["c00000_L1"]
    assert [e["computed"] for e in _chunk_events(report, "ended", 0)] == [["c00001_L1"]]  # the killed run never ended
    assert len(chunk0["slurm_logs"]) == 2 and "CANCELLED" in chunk0["slurm_logs"][f"slurm-{found[0]}.out"]
    assert len(chunk1["slurm_logs"]) == 1 and chunk1["status"] == "finished"
    assert first.stat().st_mtime_ns == first_stat.st_mtime_ns and first.stat().st_ino == first_stat.st_ino
    assert np.isfinite(report["energy"]).all() and not np.asarray(report["failed"]).any()
    print(f"\nscancel of chunk 0 (SLURM job {found[0]}) -> resubmitted, {report['wall_seconds']:.1f} s in all")


def _unit_paths(store: Path, kind: str, levels: list[int], wanted: list[tuple[int, int]]) -> list[Path]:
    """Where the ladder's unit store keeps the calculation of (configuration, level) for each of ``wanted``, for
    the driver's structures ``kind`` (files are named by fingerprint, so they are found through the ladder's plan)."""
    from _cluster_driver import _structures

    from pyiron_mlip_tradeoff.ladder import plan_units, validate_ladder_input

    structures, resolved, options = validate_ladder_input(_structures(kind), levels, "gpaw", {}, 1)
    units = {(u.config, u.level.level): u.path
             for u in plan_units(structures, resolved, store.parent, "gpaw", options)}
    return [units[key] for key in wanted]


def _cancel_queued_chunk_and_drain(env: dict, chunk_name: str) -> None:
    """``scancel`` the chunk job ``chunk_name`` while it is still in the queue, then wait until the queue is empty."""
    found = _slurm_id_of(env, chunk_name)
    assert found is not None, f"{chunk_name} left the queue before it could be cancelled"
    subprocess.run(["scancel", str(found[0])], env=env, check=True)
    deadline = time.monotonic() + 180
    while _squeue(env) and time.monotonic() < deadline:
        time.sleep(0.5)


def test_rerun_after_dead_chunk_recomputes_only_that_chunk(pg_env, cluster_dir):
    """``wait_for_chunks = False``: ``job.run()`` returns after submitting three chunks (status ``suspended``).
    Chunk 2 is cancelled; the other two finish, the ladder stays suspended. ``job.run()`` again (a new process)
    resubmits only chunk 2, returns, and chunk 2 — now the last — assembles the ladder and marks it finished."""
    project = cluster_dir / "chunk_rerun"
    args = {"project": str(project), "name": "ladder", "queue": QUEUE, "chunk_size": 1, "structures": "triple",
            "wait": False}
    submitted = _drive("chunked_ladder", args, pg_env)
    assert submitted["status_after_run"] == "suspended" and len(submitted["chunks"]) == 3
    _cancel_queued_chunk_and_drain(pg_env, "ladder_chunk00002")
    store = project / "ladder_hdf5" / "ladder" / "units"
    kept = {path: path.stat().st_mtime_ns for path in store.glob("*.json")}  # chunks 0 and 1: one each
    assert len(kept) == 2
    rows = _drive("count", {"project": str(project)}, pg_env)
    assert rows["by_job"]["ladder"] == "suspended" and rows["by_job"]["ladder_chunk00000"] == "finished"

    report = _drive("rerun_ladder", {"project": str(project), "name": "ladder"}, pg_env)
    assert report["status_before"] == "suspended" and report["status_after_run"] == "suspended"
    assert report["status"] == "finished" and report["n_pending"] == 0 and np.isfinite(report["energy"]).all()
    died = _chunk_events(report, "died")
    assert [e["chunk"] for e in died] == [2] and died[0]["missing"] == ["c00002_L1"], report["events"]
    assert [e["chunk"] for e in _chunk_events(report, "submitted")] == [0, 1, 2, 2]
    assert sorted(e["chunk"] for e in _chunk_events(report, "ended")) == [0, 1, 2]
    for index in (0, 1):
        chunk = report["chunks"][f"ladder_chunk0000{index}"]
        assert len(chunk["slurm_logs"]) == 1 and chunk["computed"] == [f"c0000{index}_L1"]
    assert report["chunks"]["ladder_chunk00002"]["computed"] == ["c00002_L1"]
    assert {path: path.stat().st_mtime_ns for path in kept} == kept
    print(f"\nrerun after a dead chunk: {report['wall_seconds']:.1f} s until finished")


# ---- the grid as one queue job -------------------------------------------------------------------------------------
def test_grid_through_slurm_equals_local(pg_env, cluster_dir, small_bundled_l1):
    """``TradeoffGrid`` with ``job.server.queue`` runs as one SLURM job; its QSnapFit children land in the shared
    PostgreSQL database and the table equals that of the same grid run in-process."""
    project = cluster_dir / "grid_slurm"
    common = {"project": str(project), "dataset": small_bundled_l1, "subset_sizes": [2, 4], "weight_ratios": [5, 50],
              "repetitions": 2, "sampling": ["random", "energy"], "table": True}
    local = _drive("grid", {**common, "name": "grid_local"}, pg_env)
    queued = _drive("grid", {**common, "name": "grid_queue", "queue": QUEUE}, pg_env)
    assert local["status"] == queued["status"] == "finished" and queued["queue_id"] is not None
    assert list(Path(queued["working_directory"]).glob("slurm-*.out"))
    assert local["table"].keys() == queued["table"].keys()
    for column, values in local["table"].items():
        if isinstance(values[0], str):
            assert values == queued["table"][column], column
        else:
            np.testing.assert_allclose(queued["table"][column], values, rtol=1e-10, atol=1e-12, err_msg=column)
    rows = _drive("count", {"project": str(project)}, pg_env)
    n_points = 2 * 2 * 2 * 2
    assert rows["n_rows"] == 2 * (n_points + 1) and rows["status"] == {"finished": 2 * (n_points + 1)}


# ---- two processes writing grid jobs at the same time -----------------------------------------------------------
GRID = {"subset_sizes": [2, 3, 4, 5], "weight_ratios": [5, 10, 50, 150], "repetitions": 2}
N_POINTS = 4 * 4 * 2


@pytest.fixture(scope="module")
def small_bundled_l1(cluster_dir) -> str:
    """The 12 smallest configurations of the bundled GPAW dataset at level 1 (real DFT, no calculation needed)."""
    dataset = _smallest_bundled(12).select_levels([1])
    return str(dataset.save(cluster_dir / "bundled_small_l1.h5"))


def _smallest_bundled(n: int):
    from pyiron_mlip_tradeoff.dataset import load_bundled

    dataset = load_bundled(warn_interim=False)
    return dataset.subset(np.sort(np.argsort(dataset.n_atoms, kind="stable")[:n]))


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


def test_concurrent_grid_writers_postgres(pg_env, cluster_dir, small_bundled_l1):
    """Two processes each store a 32-point grid (33 rows) at the same time: PostgreSQL keeps all 66 rows."""
    results, rows = _concurrent_grids(pg_env, cluster_dir / "concurrent_pg", small_bundled_l1)
    assert all(r["status"] == "finished" and r["n_points"] == N_POINTS for r in results)
    assert _overlap(results) > 0, "the two writers did not overlap in time"
    assert rows["n_rows"] == 2 * (N_POINTS + 1) and rows["status"] == {"finished": 2 * (N_POINTS + 1)}
    assert len(set(rows["jobs"])) == rows["n_rows"]
    print(f"\nPostgreSQL: 2 concurrent grids, {rows['n_rows']} rows, "
          f"{[round(r['run_finished'] - r['run_started'], 1) for r in results]} s per grid run, overlap {_overlap(results):.1f} s")


def test_concurrent_grid_writers_sqlite(services, tmp_path, small_bundled_l1):
    """The same two writers on one SQLite file.

    SQLite allows one writer at a time: a process that writes while the other holds the write lock waits (Python's
    sqlite3 busy timeout, 5 s), and past that gets ``OperationalError: database is locked``, which pyiron retries
    every 5 s without limit. With the short transactions of a grid (children stored 50 per transaction) the two
    writers interleave: measured here, no error, no lost row, all 66 rows finished. The limits are throughput (each write waits for the other
    process), the unbounded retry when a lock is held for long, and that the file must not be on a network file
    system (NFS locking is unreliable), so it cannot serve several cluster nodes: use PostgreSQL there.
    """
    results, rows = _concurrent_grids(_sqlite_env(tmp_path), tmp_path / "concurrent_sqlite", small_bundled_l1)
    assert all(r["status"] == "finished" and r["n_points"] == N_POINTS for r in results)
    assert rows["n_rows"] == 2 * (N_POINTS + 1) and rows["status"] == {"finished": 2 * (N_POINTS + 1)}
    print(f"\nSQLite: 2 concurrent grids, {rows['n_rows']} rows, "
          f"{[round(r['run_finished'] - r['run_started'], 1) for r in results]} s per grid run, overlap {_overlap(results):.1f} s")


# ---- the grid in chunks: GridChunk queue jobs, the master in the calling process --------------------------------
@pytest.fixture(scope="module")
def small_bundled_l123(cluster_dir) -> str:
    """The 16 smallest configurations of the bundled GPAW dataset at levels 1–3 (real DFT and timings)."""
    dataset = _smallest_bundled(16).select_levels([1, 2, 3])
    return str(dataset.save(cluster_dir / "bundled_small_l123.h5"))


def _pg_query(env: dict, sql: str, params: tuple = ()) -> list[tuple]:
    with postgres_connection(env) as conn, conn.cursor() as cur:
        cur.execute(sql.replace("TABLE", f'"{env["PYIRONSQLTABLENAME"]}"'), params)
        return cur.fetchall()


def _stored_points(env: dict, grid: str) -> dict[str, int]:
    """Job name -> id of the grid's QSnapFit children that are in the database."""
    rows = _pg_query(env, "SELECT job, id FROM TABLE WHERE hamilton = 'QSnapFit' AND job LIKE %s",
                     (grid.replace("_", r"\_") + r"\_L%",))
    return dict(rows)


def _command_lines() -> list[str]:
    """Command lines of this machine's processes."""
    lines = []
    for proc in Path("/proc").iterdir():
        try:
            lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return lines


def _assert_same_table(chunked: dict, local: dict, chunked_name: str, local_name: str) -> None:
    assert chunked.keys() == local.keys()
    for column, values in local.items():
        if column == "job_name":
            assert [v.replace(local_name, chunked_name, 1) for v in values] == chunked[column]
        elif isinstance(values[0], str):
            assert values == chunked[column], column
        else:
            np.testing.assert_allclose(chunked[column], values, rtol=1e-10, atol=1e-12, err_msg=column)


def test_chunked_grid_equals_local_and_rerun_recomputes_only_dead_chunk(pg_env, cluster_dir, small_bundled_l123):
    """Six draws (2 sampling methods × 3 repetitions of 3 levels × 2 sizes × 2 weight ratios: 72 points) in three
    ``GridChunk`` SLURM jobs of two draws each, ``wait_for_chunks = False``. Chunk 2 is cancelled while it waits
    for a CPU; chunks 0 and 1 finish and the grid stays ``suspended``. ``job.run()`` again resubmits only chunk 2,
    which computes only its own 24 points (the 48 stored ones keep their ids and files), ends last and finishes the
    grid, whose table and child jobs equal those of the in-process grid."""
    project = cluster_dir / "grid_chunks"
    common = {"project": str(project), "dataset": small_bundled_l123, "levels": [1, 2, 3], "subset_sizes": [2, 4],
              "weight_ratios": [5, 50], "sampling": ["random", "energy"], "repetitions": 3,
              "cache_dir": str(project / "cache")}
    local = _drive("grid", {**common, "name": "grid_local", "table": True, "keep_job_name": True}, pg_env)
    submitted = _drive("chunked_grid", {**common, "name": "grid_chunked", "queue": QUEUE, "chunk_size": 2,
                                         "wait": False, "return_early": True}, pg_env)
    assert submitted["status_after_run"] == "suspended" and submitted["queue_id"] is None
    assert sorted(submitted["chunks"]) == [f"grid_chunked_chunk0000{i}" for i in range(3)]
    _cancel_queued_chunk_and_drain(pg_env, "grid_chunked_chunk00002")
    rows = _drive("count", {"project": str(project)}, pg_env)["by_job"]
    assert rows["grid_chunked"] == "suspended" and rows["grid_chunked_chunk00002"] != "finished"
    stored = _stored_points(pg_env, "grid_chunked")
    assert len(stored) == 48
    kept = {name: (Path(project) / f"{name}.h5").stat().st_mtime_ns for name in stored}

    report = _drive("rerun_grid", {"project": str(project), "name": "grid_chunked"}, pg_env)
    assert report["status_before"] == "suspended" and report["status_after_run"] == "suspended"
    assert report["status"] == "finished" and report["n_computed"] == 24
    died = _chunk_events(report, "died")
    assert [e["chunk"] for e in died] == [2] and len(died[0]["missing"]) == 24, report["events"]
    assert [e["chunk"] for e in _chunk_events(report, "submitted")] == [0, 1, 2, 2]
    assert sorted(e["chunk"] for e in _chunk_events(report, "ended")) == [0, 1, 2]
    for index in (0, 1):
        chunk = report["chunks"][f"grid_chunked_chunk0000{index}"]
        assert chunk["status"] == "finished" and len(chunk["slurm_logs"]) == 1
        assert len(chunk["computed"]) == 24 and chunk["skipped"] == []
    chunk2 = report["chunks"]["grid_chunked_chunk00002"]
    assert sorted(chunk2["computed"]) == sorted(died[0]["missing"]) and chunk2["skipped"] == []
    assert not set(chunk2["computed"]) & set(stored)
    points = {name: p for name, p in report["points"].items() if name.startswith("grid_chunked_")}
    assert {name: points[name]["id"] for name in stored} == stored
    assert {name: points[name]["mtime_ns"] for name in kept} == kept
    assert len(points) == 72 and len({p["master_id"] for p in points.values()}) == 1
    assert all(p["status"] == "finished" for p in points.values())
    assert not list(Path(report["working_directory"]).glob("slurm-*.out"))  # the grid itself took no queue slot
    _assert_same_table(report["table"], local["table"], "grid_chunked", "grid_local")
    assert local["n_points"] == 72
    print(f"\nchunked grid: 3 chunks, 72 points; rerun after a dead chunk {report['wall_seconds']:.1f} s")


def test_scancel_of_running_grid_chunk_is_resubmitted(pg_env, cluster_dir, small_bundled_l123):
    """The waiting grid master: its only chunk (one draw of 3 levels × 4 sizes × 10 weight ratios = 120 points,
    stored 50 per database transaction) is cancelled once its first points are in the database. The master sees it leave the
    queue with points missing and resubmits the same chunk job, which computes exactly the missing points; the
    points stored before the kill keep their database ids and files."""
    project = cluster_dir / "grid_scancel"
    project.mkdir(parents=True, exist_ok=True)
    name = "grid_kill"
    args = {"project": str(project), "name": name, "dataset": small_bundled_l123, "levels": [1, 2, 3],
            "subset_sizes": [2, 3, 4, 5], "weight_ratios": [2, 5, 10, 12.25, 20, 50, 100, 150, 200, 300],
            "sampling": ["random"], "repetitions": 1, "queue": QUEUE, "chunk_size": 1,
            "cache_dir": str(project / "cache")}
    out = project / ".grid_scancel.json"
    proc = _start("chunked_grid", args, pg_env, out)
    chunk0 = f"{name}_chunk00000"
    _wait_until(lambda: _slurm_id_of(pg_env, chunk0) is not None, proc, 120, "chunk 0 was submitted")
    killed = _slurm_id_of(pg_env, chunk0)[0]
    draw0 = f"{name}_L%_random_r0_%"

    def chunk0_stored() -> bool:
        return bool(_pg_query(pg_env, "SELECT 1 FROM TABLE WHERE job LIKE %s LIMIT 1", (draw0,)))

    _wait_until(chunk0_stored, proc, 120, "chunk 0 stored its first points")
    subprocess.run(["scancel", str(killed)], env=pg_env, check=True)
    _wait_until(lambda: killed not in [i for i, _, _ in _squeue(pg_env)], proc, 60, "chunk 0 left the queue")
    before = {job: i for job, i in _pg_query(pg_env, "SELECT job, id FROM TABLE WHERE job LIKE %s", (draw0,))}
    kept = {job: (project / f"{job}.h5").stat().st_mtime_ns for job in before}
    report = _finish(proc, out)

    assert report["status"] == "finished", report["events"]
    assert 0 < len(before) < 120, f"chunk 0 had stored {len(before)} of 120 points when it was cancelled"
    died = _chunk_events(report, "died", 0)
    assert len(died) == 1 and died[0]["queue_id"] == killed, report["events"]
    assert len(died[0]["missing"]) == 120 - len(before) and not set(died[0]["missing"]) & set(before)
    assert [e["chunk"] for e in _chunk_events(report, "submitted")] == [0, 0] and list(report["chunks"]) == [chunk0]
    first = report["chunks"][chunk0]
    assert sorted(first["computed"]) == sorted(died[0]["missing"]) and sorted(first["skipped"]) == sorted(before)
    assert len(first["slurm_logs"]) == 2 and "CANCELLED" in first["slurm_logs"][f"slurm-{killed}.out"]
    assert first["status"] == "finished" and [e["computed"] for e in _chunk_events(report, "ended")] == [
        first["computed"]]  # the killed run never ended
    assert {job: report["points"][job]["id"] for job in before} == before
    assert {job: report["points"][job]["mtime_ns"] for job in kept} == kept
    assert len(report["points"]) == 120 and report["n_computed"] == 120
    # the cancelled run really ended (no process left holding a database transaction open)
    leftovers = [cmd for cmd in _command_lines() if f"{chunk0}_hdf5" in cmd and str(project) in cmd]
    assert leftovers == [], leftovers
    table = report["table"]
    assert len(table["job_name"]) == 120 and np.isfinite(table["test_force_rmse"]).all()
    print(f"\nscancel of grid chunk 0 (SLURM job {killed}) after {len(before)} of 120 points -> resubmitted, "
          f"{report['wall_seconds']:.1f} s in all")


# ---- ten chunk writers at once, and a killed chunk, with the points kept in the grid's table ----------------------
@pytest.mark.parametrize("storage", ["table", "jobs"])
def test_ten_concurrent_chunk_writers_lose_no_point(pg_env, cluster_dir, small_bundled_l123, storage):
    """Ten ``GridChunk`` jobs of one grid (one draw of 3 levels × 2 sizes × 2 weight ratios = 12 points each) run at
    the same moment in ten processes against PostgreSQL, as ten queue slots would (this node's SLURM has two CPUs, so
    the test starts the ten itself). With ``point_storage = "table"`` each writes its draw's file, with ``"jobs"``
    its 12 ``QSnapFit`` rows; every chunk ends finished, their runs overlap, and the grid run afterwards finds all
    120 points stored: it computes nothing and its table has every point once."""
    project = cluster_dir / f"ten_writers_{storage}"
    name = f"ten_{storage}"
    common = {"project": str(project), "name": name, "dataset": small_bundled_l123, "levels": [1, 2, 3],
              "subset_sizes": [2, 4], "weight_ratios": [5, 50], "sampling": ["random"], "repetitions": 10,
              "cache_dir": str(project / "cache"), "queue": QUEUE, "chunk_size": 1, "point_storage": storage}
    setup = _drive("grid_setup", common, pg_env)
    assert len(setup["draws"]) == 10
    start_at = time.time() + 15  # all ten past their imports before any writes
    procs = []
    for index, draw in enumerate(setup["draws"]):
        out = project / f".chunk{index}.json"
        procs.append((_start("run_chunk", {**common, "index": index, "draws": [draw], "start_at": start_at}, pg_env,
                             out), out))
    runs = [_finish(proc, out, timeout=600) for proc, out in procs]
    assert all(r["status"] == "finished" and len(r["computed"]) == 12 and r["skipped"] == [] for r in runs)
    assert min(r["finished"] for r in runs) > max(r["started"] for r in runs), "the ten writers did not overlap"
    computed = [n for r in runs for n in r["computed"]]
    assert len(computed) == len(set(computed)) == 120

    report = _drive("rerun_grid", {"project": str(project), "name": name}, pg_env)
    assert report["status"] == "finished" and report["n_computed"] == 0
    table = report["table"]
    assert sorted(table["job_name"]) == sorted(computed) and np.isfinite(table["test_force_rmse"]).all()
    if storage == "table":
        assert len(report["draw_files"]) == 10 and report["points"] == {}
    else:
        assert len(report["points"]) == 120 and all(p["status"] == "finished" for p in report["points"].values())
    print(f"\n{storage}: ten chunk writers at once, overlap "
          f"{min(r['finished'] for r in runs) - max(r['started'] for r in runs):.1f} s, 120 of 120 points")


def test_killed_table_chunk_is_resubmitted_and_computes_only_its_missing_draws(pg_env, cluster_dir,
                                                                              small_bundled_l123):
    """``point_storage = "table"``, two ``GridChunk`` SLURM jobs of six draws each. Chunk 0 is cancelled with
    ``scancel`` once its first draw file is written; the waiting grid sees it leave the queue with draws missing and
    resubmits it; the second run skips the draws already written (their files untouched) and computes the rest;
    chunk 1 runs once. The grid's table has all 12 × 60 points."""
    project = cluster_dir / "table_scancel"
    project.mkdir(parents=True, exist_ok=True)
    name = "table_kill"
    args = {"project": str(project), "name": name, "dataset": small_bundled_l123, "levels": [1, 2, 3],
            "subset_sizes": [2, 3, 4, 5], "weight_ratios": [5, 10, 12.25, 50, 150], "sampling": ["random"],
            "repetitions": 12, "queue": QUEUE, "chunk_size": 6, "cache_dir": str(project / "cache"),
            "point_storage": "table"}
    out = project / ".table_scancel.json"
    proc = _start("chunked_grid", args, pg_env, out)
    chunk0 = f"{name}_chunk00000"
    _wait_until(lambda: _slurm_id_of(pg_env, chunk0) is not None, proc, 120, "chunk 0 was submitted")
    killed = _slurm_id_of(pg_env, chunk0)[0]
    points = project / f"{name}_hdf5" / name / "points"
    mine = [f"j4_random_r{r}.h5" for r in range(6)]

    def first_written() -> bool:
        return points.is_dir() and any((points / f).exists() for f in mine)

    # a draw of this small grid takes milliseconds, less than scancel needs to arrive: chunk 0's Python process is
    # stopped (SIGSTOP) the moment its first draw file appears (written by an atomic rename, so complete), then
    # cancelled — so it is cancelled mid-run, not after its last draw
    pids: list[int] = []

    def python_started() -> bool:
        pids[:] = _python_pids_of_job(pg_env, killed)
        return bool(pids)

    _wait_until(python_started, proc, 180, "chunk 0's Python process started")
    _wait_until(first_written, proc, 180, "chunk 0 wrote its first draw", interval=0.0005)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            pass
    subprocess.run(["scancel", str(killed)], env=pg_env, check=True)
    _wait_until(lambda: killed not in [i for i, _, _ in _squeue(pg_env)], proc, 60, "chunk 0 left the queue")
    before = {f: (points / f).stat().st_mtime_ns for f in mine if (points / f).exists()}
    report = _finish(proc, out, timeout=600)

    assert report["status"] == "finished", report["events"]
    assert 1 <= len(before) < 6, f"chunk 0 had written {len(before)} of its 6 draws when it was cancelled"
    died = _chunk_events(report, "died", 0)
    assert len(died) == 1 and died[0]["queue_id"] == killed and len(died[0]["missing"]) == 60 * (6 - len(before))
    assert [e["chunk"] for e in _chunk_events(report, "submitted")] == [0, 1, 0]
    first = report["chunks"][chunk0]
    assert len(first["skipped"]) == 60 * len(before) and len(first["computed"]) == 60 * (6 - len(before))
    assert not set(first["skipped"]) & set(first["computed"])
    assert len(first["slurm_logs"]) == 2 and "CANCELLED" in first["slurm_logs"][f"slurm-{killed}.out"]
    second = report["chunks"][f"{name}_chunk00001"]
    assert len(second["computed"]) == 360 and second["skipped"] == [] and len(second["slurm_logs"]) == 1
    assert {f: report["draw_files"][f] for f in before} == before  # written once, never again
    assert len(report["draw_files"]) == 12 and report["points"] == {}
    assert len(report["table"]["job_name"]) == 720 and np.isfinite(report["table"]["test_force_rmse"]).all()
    print(f"\nscancel of table chunk 0 after {len(before)} of its 6 draws -> resubmitted, "
          f"{report['wall_seconds']:.1f} s in all")


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


# ---- chunk input checked before anything is saved (no services needed) -------------------------------------------
def _assert_rejected_before_saving(project, job, setting: dict, message: str) -> None:
    """``setting`` in ``job.input`` makes ``job.run()`` raise ``InputError`` (``message``) with no job in the
    database and no files written."""
    from pyiron_mlip_tradeoff.dft.base import InputError

    for key, value in setting.items():
        job.input[key] = value
    with pytest.raises(InputError, match=message):
        job.run()
    assert len(project.job_table()) == 0
    assert not Path(job.working_directory).exists() or not any(Path(job.working_directory).iterdir())


@pytest.mark.parametrize("setting, message", [
    ({"chunk_size": 0}, "chunk_size must be a positive integer"),
    ({"chunk_size": -3}, "chunk_size must be a positive integer"),
    ({"chunk_size": 2.5}, "chunk_size must be a positive integer"),
    ({"chunk_size": True}, "chunk_size must be a positive integer"),
    ({"chunk_size": "4"}, "chunk_size must be a positive integer"),
    ({"chunk_size": 4}, "set job.server.queue"),
    ({"poll_interval": 0}, "poll_interval must be a positive number"),
    ({"poll_interval": float("nan")}, "poll_interval must be a positive number"),
    ({"max_resubmissions": -1}, "max_resubmissions must be a non-negative integer"),
    ({"wait_for_chunks": "yes"}, "wait_for_chunks must be True or False"),
])
def test_bad_chunk_input_rejected_before_anything_is_saved(project, hcp_be, setting, message):
    job = project.create.job.PrecisionLadder("chunky")
    job.input.structures = [hcp_be]
    job.input.levels = [1]
    _assert_rejected_before_saving(project, job, setting, message)


@pytest.mark.parametrize("setting, message", [
    ({"chunk_size": 0}, "chunk_size must be a positive integer"),
    ({"chunk_size": 1.5}, "chunk_size must be a positive integer"),
    ({"chunk_size": False}, "chunk_size must be a positive integer"),
    ({"chunk_size": "2"}, "chunk_size must be a positive integer"),
    ({"chunk_size": 2}, "set job.server.queue"),
    ({"poll_interval": -1}, "poll_interval must be a positive number"),
    ({"max_resubmissions": 1.5}, "max_resubmissions must be a non-negative integer"),
    ({"wait_for_chunks": None}, "wait_for_chunks must be True or False"),
])
def test_bad_grid_chunk_input_rejected_before_anything_is_saved(project, small_bundled_l1, setting, message):
    """A ``TradeoffGrid`` with bad chunk settings (or ``chunk_size`` without a queue) raises ``InputError`` from
    ``job.run()`` and leaves no job in the database and no files, while the same grid without them is valid."""
    job = project.create.job.TradeoffGrid("grid_chunky")
    job.input.dataset = small_bundled_l1
    job.input.levels = [1]
    job.input.subset_sizes = [2]
    job.input.weight_ratios = [5]
    job.input.twojmax = [4]
    job.input.sampling = ["random"]
    job.validate_ready_to_run()  # valid without the chunk setting
    _assert_rejected_before_saving(project, job, setting, message)
