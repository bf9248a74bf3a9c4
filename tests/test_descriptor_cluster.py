"""``DescriptorPool`` on a real queue: its chunks as ``DescriptorChunk`` SLURM jobs through pysqa.

Needs a running single-node SLURM (``scripts/services.sh start``, as for ``test_cluster.py``); skipped otherwise.
The pyiron side runs in a fresh subprocess configured only by environment variables (SQLite project database in
the test's folder, a pysqa ``queue.yaml`` for the SLURM partition ``local``), as a user's process would.

Covered: a queue pysqa does not know is refused before anything is saved; a pool whose first chunk is already in
the cache sends only the other chunks to SLURM, each job leaves a SLURM log, and the rows read back from the cache
equal the in-memory descriptors exactly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pyiron_mlip_tradeoff.descriptor_cache import ChunkedDescriptorCache
from pyiron_mlip_tradeoff.descriptors import compute_descriptors

ROOT = Path(__file__).resolve().parents[1]
SLURM_CONF = "/var/tmp/pyiron_mlip_tradeoff_services/slurm/slurm.conf"

_DRIVER = textwrap.dedent("""
    import json, sys
    args = json.loads(sys.argv[1])
    sys.path.insert(0, args["tests"])
    from pyiron_base import Project
    import pyiron_mlip_tradeoff  # noqa: F401  (registers the job classes)
    from pyiron_mlip_tradeoff.descriptor_cache import compute_chunked_descriptors
    from pyiron_mlip_tradeoff.dft.base import InputError
    from test_descriptor_cache import TWOJMAX, _pool

    pr = Project(args["project"])
    out = {}

    def pool_job(name, queue):
        job = pr.create.job.DescriptorPool(name)
        job.input.structures = _pool(5)
        job.input.twojmax = TWOJMAX
        job.input.chunk_size = 2
        job.input.cache_dir = args["cache"]
        job.input.queue = queue
        job.input.poll_interval = 1.0
        return job

    bad = pool_job("bad", "nowhere")
    try:
        bad.run()
        out["unknown_queue"] = None
    except InputError as err:
        out["unknown_queue"] = str(err)
    out["bad_saved"] = bad.job_id is not None
    compute_chunked_descriptors(args["cache"], _pool(5), TWOJMAX, chunk_size=2, chunks=[0])  # done before
    job = pool_job("pool", "local")
    job.run()
    job = pr.load("pool")
    out.update(status=str(job.status), cache=job.output.cache, n_computed=int(job.output.n_computed),
               events=json.loads(job.output.chunk_events), queue_id=job.server.queue_id)
    chunks = {}
    for item in pr.db.get_items_dict({"masterid": int(job.job_id)}):
        child = pr.load(int(item["id"]))
        chunks[item["job"]] = {"status": str(child.status), "computed": list(child.output.computed),
                               "slurm_logs": len(list(__import__("pathlib").Path(child.working_directory)
                                                       .glob("slurm-*.out")))}
    out["chunks"] = chunks
    print("RESULT " + json.dumps(out))
""")


def _slurm_env() -> dict | None:
    if shutil.which("sbatch") is None or not Path(SLURM_CONF).is_file():
        return None
    env = {**os.environ, "SLURM_CONF": SLURM_CONF}
    probe = subprocess.run(["sinfo", "--noheader", "--format", "%P %a"], env=env, capture_output=True, text=True)
    return env if probe.returncode == 0 and "local" in probe.stdout else None


def test_descriptor_pool_chunks_as_slurm_jobs(tmp_path):
    from pyiron_mlip_tradeoff.cluster import write_slurm_queue_config

    base = _slurm_env()
    if base is None:
        pytest.skip("no running SLURM with a 'local' partition (bash scripts/services.sh start)")
    tmp_path.chmod(0o755)
    db = {"PYIRONSQLTYPE": "SQLite", "PYIRONSQLFILE": str(tmp_path / "pyiron.db"),
          "PYIRONPROJECTPATHS": str(tmp_path), "PYIRONPROJECTCHECKENABLED": "False", "PYIRONDISABLE": "False",
          "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    write_slurm_queue_config(tmp_path / "resources" / "queues", partition="local", queue="local", environment=db)
    env = {k: v for k, v in base.items() if not k.startswith("PYIRON")}
    env.update(db, PYIRONRESOURCEPATHS=str(tmp_path / "resources"))
    args = {"project": str(tmp_path / "project"), "cache": str(tmp_path / "cache"), "tests": str(ROOT / "tests")}
    (tmp_path / "project").mkdir()
    proc = subprocess.run([sys.executable, "-c", _DRIVER, json.dumps(args)], env=env, cwd=tmp_path / "project",
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    assert out["unknown_queue"] is not None and "queue 'nowhere' is not known to pysqa" in out["unknown_queue"]
    assert "'local'" in out["unknown_queue"] and not out["bad_saved"]
    assert out["status"] == "finished" and out["queue_id"] is None  # the master took no queue slot
    assert out["n_computed"] == 2
    assert sorted(out["chunks"]) == ["pool_chunk00001", "pool_chunk00002"]  # chunk 0 was in the cache already
    for name, chunk in out["chunks"].items():
        assert chunk["status"] == "finished" and chunk["slurm_logs"] == 1, (name, chunk)
    assert sorted(c["computed"][0] for c in out["chunks"].values()) == ["chunk_00001", "chunk_00002"]
    submitted = [e for e in out["events"] if e["event"] == "submitted"]
    assert sorted(e["chunk"] for e in submitted) == [1, 2] and all(e["queue_id"] for e in submitted)
    sys.path.insert(0, str(ROOT / "tests"))
    from test_descriptor_cache import TWOJMAX, _pool, _same

    _same(ChunkedDescriptorCache(out["cache"]).load(), compute_descriptors(_pool(5), TWOJMAX))
