"""Subprocess side of ``test_cluster.py``: one pyiron action per call, configured only by environment variables.

``python tests/_cluster_driver.py ACTION ARGS_JSON OUTPUT_JSON``. Each call is a fresh Python process, so pyiron
reads the database and resource settings (``PYIRONSQL*``, ``PYIRONRESOURCEPATHS``) that the test put in its
environment, exactly as a user's process or a SLURM job would; the test process keeps its own SQLite set-up.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path


def _structures(kind: str = "pair"):
    """``pair``: two 2-atom hcp Be cells (one rattled); ``fault``: a 2-atom cell and a rattled 8-atom cell (its
    level-1 calculation takes long enough to cancel mid-chunk); ``triple``: three rattled 2-atom cells."""
    import numpy as np
    from ase.build import bulk

    hcp = bulk("Be", "hcp", a=2.29, c=3.58)
    rng = np.random.default_rng(7)
    if kind == "fault":
        big = hcp.repeat((2, 2, 1))
        big.positions += rng.normal(scale=0.05, size=big.positions.shape)
        return [hcp, big]
    if kind == "triple":
        cells = [hcp.copy() for _ in range(3)]
        for cell in cells:
            cell.positions += rng.normal(scale=0.03, size=cell.positions.shape)
        return cells
    rattled = hcp.copy()
    rattled.positions += rng.normal(scale=0.05, size=rattled.positions.shape)
    return [hcp, rattled]


def _project(path):
    from pyiron_base import Project

    import pyiron_mlip_tradeoff  # noqa: F401  (registers the job classes)

    return Project(path)


def ladder(args: dict) -> dict:
    """Run a level-1 ladder of two 2-atom Be cells, locally or through ``args["queue"]``; return its output."""
    start = time.perf_counter()
    pr = _project(args["project"])
    job = pr.create.job.PrecisionLadder(args["name"])
    job.input.structures = _structures()
    job.input.levels = [1]
    job.input.cores = int(args.get("cores", 1))
    if args.get("queue"):
        job.server.queue = args["queue"]
        job.server.cores = int(args.get("cores", 1))
    job.run()
    queue_id = None
    if args.get("queue"):
        queue_id = job.server.queue_id
        pr.wait_for_job(job, interval_in_s=1, max_iterations=int(args.get("max_wait_s", 240)))
    job = pr.load(args["name"])
    return {
        "status": str(job.status), "energy": job.output.energy.tolist(), "forces": job.output.forces.tolist(),
        "wall_seconds": time.perf_counter() - start, "queue_id": queue_id,
        "working_directory": job.working_directory,
    }


def chunked_ladder(args: dict) -> dict:
    """Run a ladder split into ``LadderChunk`` queue jobs (``chunk_size``); report the ladder and its chunks."""
    start = time.perf_counter()
    pr = _project(args["project"])
    job = pr.create.job.PrecisionLadder(args["name"])
    job.input.structures = _structures(args.get("structures", "pair"))
    job.input.levels = list(args.get("levels", [1]))
    _chunk_settings(job, args)
    job.run()
    return {"status_after_run": str(job.status), **_ladder_report(pr, args["name"], start)}


def _chunk_settings(job, args: dict) -> None:
    """The queue and chunk input of a chunked master job from the driver's ``args``."""
    job.input.chunk_size = int(args["chunk_size"])
    job.input.poll_interval = float(args.get("poll_interval", 1.0))
    job.input.wait_for_chunks = bool(args.get("wait", True))
    job.server.queue = args["queue"]
    job.server.cores = int(args.get("cores", 1))


def _rerun(args: dict, report) -> dict:
    """Load a chunked master job, call ``job.run()`` again, wait until it is finished; add ``report``'s fields."""
    start = time.perf_counter()
    pr = _project(args["project"])
    job = pr.load(args["name"])
    status_before = str(job.status)
    job.run()
    status_after_run = str(job.status)
    pr.wait_for_job(job, interval_in_s=1, max_iterations=int(args.get("max_wait_s", 240)))
    return {"status_before": status_before, "status_after_run": status_after_run,
            **report(pr, args["name"], start)}


def rerun_ladder(args: dict) -> dict:
    """Rerun a chunked ladder; report as ``chunked_ladder``."""
    return _rerun(args, _ladder_report)


def _master_report(pr, name: str, start: float, chunk_class: str):
    """The chunked master job ``name``, the project's job table, and the report fields every master shares:
    status, timing, events and, per ``chunk_class`` child, its status, queue id, work and SLURM logs."""
    job = pr.load(name)
    report = {"status": str(job.status), "wall_seconds": time.perf_counter() - start,
              "working_directory": job.working_directory, "queue_id": job.server.queue_id,
              "events": job.chunk_events(), "chunks": {}}
    table = pr.job_table()
    for row in table[table.hamilton == chunk_class].itertuples():
        chunk = pr.load(row.job)
        logs = sorted(Path(chunk.working_directory).glob("slurm-*.out"))
        report["chunks"][row.job] = {
            "status": row.status, "master_id": int(row.masterid), "queue_id": chunk.server.queue_id,
            "computed": list(chunk.output.get("computed", [])), "skipped": list(chunk.output.get("skipped", [])),
            "slurm_logs": {p.name: p.read_text()[-2000:] for p in logs},
        }
    return job, table, report


def _ladder_report(pr, name: str, start: float) -> dict:
    job, _, report = _master_report(pr, name, start, "LadderChunk")
    if job.status.finished:
        report.update(energy=job.output.energy.tolist(), forces=job.output.forces.tolist(),
                      n_pending=int(job.output.n_pending), failed=job.output.failed.tolist())
    return report


def grid(args: dict) -> dict:
    """Run a small ``TradeoffGrid`` (one database row per point) and report its row count and timing."""
    start = time.perf_counter()
    pr = _project(args["project"])
    job = pr.create.job.TradeoffGrid(args["name"])
    _grid_input(job, args)
    if args.get("queue"):  # the whole grid as one queue job; its QSnapFit children go to the shared database
        job.server.queue = args["queue"]
        job.server.cores = 1
    if "start_at" in args:  # line both processes up so that their database writes overlap
        time.sleep(max(0.0, args["start_at"] - time.time()))
    written = time.time()
    job.run()
    if args.get("queue"):
        pr.wait_for_job(job, interval_in_s=1, max_iterations=int(args.get("max_wait_s", 240)))
        job = pr.load(args["name"])
    result = {"status": str(job.status), "n_points": int(job.output.n_points), "seconds": time.perf_counter() - start,
              "run_started": written, "run_finished": time.time(), "queue_id": job.server.queue_id,
              "working_directory": job.working_directory}
    if args.get("table"):
        table = job.get_table()
        result["table"] = (table if args.get("keep_job_name") else table.drop(columns="job_name")).to_dict(
            orient="list")
    return result


def _grid_input(job, args: dict) -> None:
    job.input.dataset = args["dataset"]
    job.input.levels = list(args.get("levels", [1]))
    job.input.subset_sizes = args["subset_sizes"]
    job.input.weight_ratios = args["weight_ratios"]
    job.input.twojmax = [4]
    job.input.sampling = list(args.get("sampling") or ["random"])
    job.input.repetitions = int(args["repetitions"])
    job.input.seed = int(args.get("seed", 0))
    job.input.cache_dir = args.get("cache_dir")
    job.input.point_storage = args.get("point_storage", "jobs")


def chunked_grid(args: dict) -> dict:
    """Run a ``TradeoffGrid`` split into ``GridChunk`` queue jobs (``chunk_size`` draws each); report the grid, its
    chunks and its point children. With ``wait`` False, wait (``pr.wait_for_job``) unless ``return_early``."""
    start = time.perf_counter()
    pr = _project(args["project"])
    job = pr.create.job.TradeoffGrid(args["name"])
    _grid_input(job, args)
    _chunk_settings(job, {**args, "cores": 1})
    job.run()
    status_after_run = str(job.status)
    if not args.get("return_early"):
        pr.wait_for_job(job, interval_in_s=1, max_iterations=int(args.get("max_wait_s", 240)))
    return {"status_after_run": status_after_run, **_grid_report(pr, args["name"], start)}


def rerun_grid(args: dict) -> dict:
    """Rerun a chunked grid; report as ``chunked_grid``."""
    return _rerun(args, _grid_report)


def _grid_report(pr, name: str, start: float) -> dict:
    job, table, report = _master_report(pr, name, start, "GridChunk")
    report["points"] = {}
    report["draw_files"] = {p.name: p.stat().st_mtime_ns for p in sorted(job._points_dir().glob("*.h5"))}
    if job.status.finished:
        report["table"] = job.get_table().to_dict(orient="list")
        report["n_computed"] = int(job.output.n_computed)
    for row in table[table.hamilton == "QSnapFit"].itertuples():
        h5 = Path(pr.path) / f"{row.job}.h5"
        report["points"][row.job] = {"id": int(row.id), "status": row.status, "master_id": int(row.masterid),
                                     "mtime_ns": h5.stat().st_mtime_ns}
    return report


def grid_setup(args: dict) -> dict:
    """Save a chunked ``TradeoffGrid`` (queue and ``chunk_size`` set) without running it; report its draws."""
    from pyiron_mlip_tradeoff.jobs.grid import grid_draws

    pr = _project(args["project"])
    job = pr.create.job.TradeoffGrid(args["name"])
    _grid_input(job, args)
    _chunk_settings(job, {**args, "cores": 1})
    job.validate_ready_to_run()
    job.save()
    from pyiron_mlip_tradeoff.fitting import dataset_descriptors

    dataset, spec = job._plan()
    for tj in spec.twojmax:  # as the grid does before it submits chunks: they only read the cache
        dataset_descriptors(dataset, tj, spec.descriptor_settings, element=spec.element, cache_dir=job._cache_dir())
    Path(job.working_directory).mkdir(parents=True, exist_ok=True)  # the chunks append to its event log there
    return {"id": int(job.job_id), "draws": [list(d) for d in grid_draws(spec)]}


def run_chunk(args: dict) -> dict:
    """Make chunk ``args["index"]`` (draws ``args["draws"]``) of a saved grid as its ``GridChunk`` child and run it
    here, as the queue's wrapper would, after waiting for ``args["start_at"]`` (to line several processes up)."""
    from pyiron_mlip_tradeoff.jobs.queue import QueueChunk, chunk_job_name

    pr = _project(args["project"])
    grid = pr.load(args["name"])
    chunk = QueueChunk(int(args["index"]), [tuple(d) for d in args["draws"]])
    job = grid._new_chunk_job(chunk, chunk_job_name(grid.job_name, chunk.index))
    job.master_id = grid.job_id
    time.sleep(max(0.0, args["start_at"] - time.time()))
    started = time.time()
    job.run()
    job = pr.load(job.job_name)
    return {"started": started, "finished": time.time(), "status": str(job.status),
            "computed": list(job.output.computed), "skipped": list(job.output.skipped)}


def count(args: dict) -> dict:
    """Rows of the job table under ``args["project"]``, by status."""
    pr = _project(args["project"])
    table = pr.job_table(recursive=True)
    return {"n_rows": len(table), "status": table.status.value_counts().to_dict(), "jobs": sorted(table.job),
            "by_job": dict(zip(table.job, table.status, strict=True))}


class _Proxy:
    """A TCP forwarder to the database server that can be cut, as a server restart or network loss would."""

    def __init__(self, target: str):
        import socket
        import threading

        host, _, port = target.partition(":")
        self.target = (host, int(port or 5432))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass

    def cut(self):
        import socket

        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept(); close() alone does not
        self.listener.close()
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass


def unreachable(args: dict) -> dict:
    """Connect pyiron to the database through a proxy, cut it, then try to create and run a ladder."""
    import os

    proxy = _Proxy(os.environ["PYIRONSQHOST"])
    os.environ["PYIRONSQHOST"] = f"127.0.0.1:{proxy.port}"
    pr = _project(args["project"])
    rows_before = len(pr.job_table())
    proxy.cut()
    start = time.perf_counter()
    error = None
    try:
        job = pr.create.job.PrecisionLadder(args["name"])
        job.input.structures = _structures()
        job.input.levels = [1]
        job.run()
    except Exception as err:
        error = {"type": type(err).__name__, "message": str(err)}
    files = sorted(str(p.relative_to(args["project"])) for p in Path(args["project"]).rglob("*"))
    return {"error": error, "seconds": time.perf_counter() - start, "files": files, "rows_before": rows_before}


if __name__ == "__main__":
    action, args_json, output = sys.argv[1:4]
    try:
        result = {"ok": True, **globals()[action](json.loads(args_json))}
    except Exception:
        result = {"ok": False, "traceback": traceback.format_exc()}
    Path(output).write_text(json.dumps(result))
    sys.stdout.flush()
    # pyiron's database watchdog thread keeps the interpreter alive for its idle timeout; the work is done
    import os

    os._exit(0)
