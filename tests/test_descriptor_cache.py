"""Chunked, resumable descriptor cache (``descriptor_cache.py``) and its pyiron job ``DescriptorChunk``.

Rows are compared with :func:`compute_descriptors` in memory (the same LAMMPS code path: identical numbers); a
run is really killed (SIGKILL to a subprocess after its first chunk) and the rerun must compute only the rest.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from pyiron_mlip_tradeoff import descriptors
from pyiron_mlip_tradeoff.descriptor_cache import (
    ChunkedDescriptorCache,
    compute_chunked_descriptors,
    prepare_chunked_cache,
)
from pyiron_mlip_tradeoff.descriptors import compute_descriptors

ROOT = Path(__file__).resolve().parents[1]
TWOJMAX = 4


def _pool(n: int = 5, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    cells = []
    for i in range(n):
        atoms = bulk("Be", "hcp", a=2.29, c=3.58).repeat((2, 2, 1 + i % 2))
        atoms.set_cell(atoms.cell[:] @ (np.eye(3) + rng.uniform(-0.02, 0.02, (3, 3))), scale_atoms=True)
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        cells.append(atoms)
    return cells


def _no_lammps(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("LAMMPS was started")

    monkeypatch.setattr(descriptors, "_lammps_instance", fail)


def _same(a, b) -> None:
    np.testing.assert_array_equal(a.energy_rows, b.energy_rows)
    np.testing.assert_array_equal(a.force_rows, b.force_rows)
    np.testing.assert_array_equal(a.n_atoms, b.n_atoms)
    if a.virial_rows is not None or b.virial_rows is not None:
        np.testing.assert_array_equal(a.virial_rows, b.virial_rows)
        np.testing.assert_array_equal(a.volumes, b.volumes)


def test_chunks_on_two_workers_equal_the_in_memory_rows(tmp_path):
    pool = _pool(5)
    seen = []
    cache = compute_chunked_descriptors(tmp_path, pool, TWOJMAX, chunk_size=2, n_workers=2, virial=True,
                                        on_chunk=lambda k, s: seen.append(k))
    assert sorted(seen) == [0, 1, 2] and cache.n_chunks == 3 and cache.complete
    assert sorted(p.name for p in cache.path.glob("chunk_*.h5")) == [f"chunk_0000{k}.h5" for k in range(3)]
    reference = compute_descriptors(pool, TWOJMAX, virial=True)
    _same(cache.load(), reference)
    order = [4, 0, 3, 3, 1]
    _same(cache.load(order), reference.subset(order))
    np.testing.assert_array_equal(cache.energy_rows([2, 1]), reference.energy_rows[[2, 1]])
    # a second call finds everything done; the folder is the content key of the pool
    again = compute_chunked_descriptors(tmp_path, pool, TWOJMAX, chunk_size=2, n_workers=2, virial=True,
                                        on_chunk=lambda k, s: seen.append(k))
    assert again.path == cache.path and len(seen) == 3
    # other structures, same settings: another folder (content addressed), nothing mixed up
    other = prepare_chunked_cache(tmp_path, _pool(5, seed=1), TWOJMAX, chunk_size=2, virial=True)
    assert other.path != cache.path and other.missing_chunks() == [0, 1, 2]
    with pytest.raises(ValueError, match=r"chunk\(s\) \[0, 1, 2\] are not computed"):
        other.load()
    with pytest.raises(ValueError, match="chunk index 3 is out of range: the pool has 3 chunks"):
        compute_chunked_descriptors(tmp_path, pool, TWOJMAX, chunk_size=2, chunks=[3])


_KILLED_RUN = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_descriptor_cache import _pool
    from pyiron_mlip_tradeoff.descriptor_cache import compute_chunked_descriptors

    def after_chunk(k, seconds):
        print("done", k, flush=True)
        time.sleep(120)  # killed here by the test

    compute_chunked_descriptors({cache!r}, _pool(5), {twojmax}, chunk_size=2, name="pool", on_chunk=after_chunk)
""")


def test_a_killed_run_resumes_without_recomputing_finished_chunks(tmp_path):
    script = _KILLED_RUN.format(tests=str(ROOT / "tests"), cache=str(tmp_path), twojmax=TWOJMAX)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "done 0", proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    cache = ChunkedDescriptorCache(tmp_path / "pool")
    assert cache.done_chunks() == [0] and cache.missing_chunks() == [1, 2]
    computed = []
    resumed = compute_chunked_descriptors(tmp_path, _pool(5), TWOJMAX, chunk_size=2, name="pool",
                                          on_chunk=lambda k, s: computed.append(k))
    assert computed == [1, 2] and resumed.complete
    _same(resumed.load(), compute_descriptors(_pool(5), TWOJMAX))


def test_a_damaged_chunk_file_is_recomputed(tmp_path):
    cache = compute_chunked_descriptors(tmp_path, _pool(3), TWOJMAX, chunk_size=2)
    cache.chunk_path(1).write_bytes(b"not hdf5")
    assert cache.missing_chunks() == [1]
    computed = []
    compute_chunked_descriptors(tmp_path, _pool(3), TWOJMAX, chunk_size=2, on_chunk=lambda k, s: computed.append(k))
    assert computed == [1]
    _same(cache.load(), compute_descriptors(_pool(3), TWOJMAX))


@pytest.mark.parametrize("chunk_size", [0, -3, 1.5, True, "10", None])
def test_bad_chunk_size_rejected_before_anything(monkeypatch, tmp_path, chunk_size):
    _no_lammps(monkeypatch)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        compute_chunked_descriptors(tmp_path / "cache", _pool(2), TWOJMAX, chunk_size=chunk_size)
    assert not (tmp_path / "cache").exists()


def test_unwritable_cache_folder_rejected_before_anything(monkeypatch, tmp_path):
    _no_lammps(monkeypatch)
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    with pytest.raises(NotADirectoryError, match="a_file exists and is not a folder"):
        compute_chunked_descriptors(a_file, _pool(2), TWOJMAX, chunk_size=1)
    # /proc refuses new folders even to root (a chmod would not stop root)
    with pytest.raises(PermissionError, match=r"descriptor cache folder /proc/descriptor_cache is not writable"):
        compute_chunked_descriptors("/proc/descriptor_cache", _pool(2), TWOJMAX, chunk_size=1)
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(PermissionError, match="not writable"):
            compute_chunked_descriptors(locked, _pool(2), TWOJMAX, chunk_size=1)


def test_changed_structures_under_a_named_cache_are_refused(monkeypatch, tmp_path):
    pool = _pool(5)
    compute_chunked_descriptors(tmp_path, pool, TWOJMAX, chunk_size=2, name="pool")
    changed = [a.copy() for a in pool]
    changed[3].positions[0, 0] += 1e-9  # configuration 3 is in chunk 1
    _no_lammps(monkeypatch)
    with pytest.raises(ValueError, match=r"structures changed under .*pool: chunk\(s\) 1 \(configurations 2\.\.3\)"):
        compute_chunked_descriptors(tmp_path, changed, TWOJMAX, chunk_size=2, name="pool")
    with pytest.raises(ValueError, match="set up for other settings"):
        compute_chunked_descriptors(tmp_path, pool, TWOJMAX, chunk_size=3, name="pool")
    cache = ChunkedDescriptorCache(tmp_path / "pool")
    with pytest.raises(ValueError, match=r"structures of chunk 1 \(configurations 2\.\.3\) differ"):
        cache.compute_chunk(1, changed[2:4])
    with pytest.raises(ValueError, match="chunk index 7 is out of range"):
        cache.compute_chunk(7, changed[2:4])
    assert json.loads((cache.path / "manifest.json").read_text())["chunk_keys"] == cache.chunk_keys


def test_bad_structure_named_by_chunk_and_configuration(monkeypatch, tmp_path):
    _no_lammps(monkeypatch)
    pool = _pool(5)
    pool[3] = bulk("Cu", "fcc", a=3.6)
    with pytest.raises(ValueError, match=r"chunk 1 \(configurations 2\.\.3; .*structure 1 contains \['Cu'\]"):
        compute_chunked_descriptors(tmp_path, pool, TWOJMAX, chunk_size=2)
    assert not list(tmp_path.glob("*/manifest.json"))


# ---- pyiron jobs: DescriptorPool (in this process) and DescriptorChunk ------------------------------------------
def test_descriptor_pool_job_in_process(project, tmp_path):
    job = project.create.job.DescriptorPool("pool")
    job.input.structures = _pool(5)
    job.input.twojmax = TWOJMAX
    job.input.chunk_size = 2
    job.input.n_workers = 2
    job.input.cache_dir = str(tmp_path)
    job.run()
    job = project.load("pool")
    assert job.status.finished and job.output.n_chunks == 3 and job.output.n_computed == 3
    cache = ChunkedDescriptorCache(job.output.cache)
    assert cache.path.parent == tmp_path
    _same(cache.load(), compute_descriptors(_pool(5), TWOJMAX))
    # default cache folder: in the job's working directory
    job = project.create.job.DescriptorPool("pool_default_cache")
    job.input.structures = _pool(2)
    job.input.twojmax = TWOJMAX
    job.run()
    assert Path(job.output.cache).parent == Path(job.working_directory) / "descriptors"
    _same(ChunkedDescriptorCache(job.output.cache).load(), compute_descriptors(_pool(2), TWOJMAX))


def test_descriptor_chunk_job_computes_its_chunk_only(project, tmp_path):
    from pyiron_mlip_tradeoff.dft.base import InputError

    pool = _pool(5)
    cache = prepare_chunked_cache(tmp_path, pool, TWOJMAX, chunk_size=2)
    job = project.create.job.DescriptorChunk("chunk")
    job.input.cache = str(cache.path)
    job.input.chunks = [1]
    job.input.structures = pool[2:4]
    job.run()
    job = project.load("chunk")
    assert job.status.finished and list(job.output.computed) == ["chunk_00001"] and list(job.output.skipped) == []
    assert cache.done_chunks() == [1]
    _same(cache.load([2, 3]), compute_descriptors(pool[2:4], TWOJMAX))
    # the structures of another chunk are refused before the job is saved
    wrong = project.create.job.DescriptorChunk("wrong")
    wrong.input.cache = str(cache.path)
    wrong.input.chunks = [0]
    wrong.input.structures = pool[2:4]
    with pytest.raises(InputError, match=r"structures of chunk 0 \(configurations 0\.\.1\) differ"):
        wrong.run()
    assert wrong.job_id is None and cache.done_chunks() == [1]


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ({"chunk_size": 0}, "chunk_size must be a positive integer"),
        ({"cache_dir": "/proc/descriptor_cache"}, "not writable"),
        ({"queue": "nowhere"}, "queue 'nowhere'"),
        ({"n_workers": 0}, "n_workers must be a positive integer"),
        ({"settings": '{"rcutfac": -1}'}, "rcutfac must be positive"),
    ],
)
def test_bad_pool_job_input_rejected_before_anything(project, tmp_path, monkeypatch, inputs, match):
    from pyiron_mlip_tradeoff.dft.base import InputError

    _no_lammps(monkeypatch)
    job = project.create.job.DescriptorPool("bad")
    job.input.structures = _pool(3)
    job.input.twojmax = TWOJMAX
    job.input.cache_dir = str(tmp_path / "cache")
    for key, value in inputs.items():
        job.input[key] = value
    with pytest.raises(InputError, match=match):
        job.run()
    assert job.job_id is None and not list(tmp_path.glob("cache/*"))
