"""The waiting master reads its chunks' ``ended`` records: it looks at the queue as soon as the events file grows
(not only every poll interval), and counts only records written after a chunk's latest submission."""

from __future__ import annotations

import json
import threading
import time

from pyiron_mlip_tradeoff.jobs.queue import ChunkedMaster, QueueChunk


class _Master(ChunkedMaster):
    def __init__(self, folder):
        self.working_directory = str(folder)


def _append(path, **record):
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")


def test_ended_records_count_only_after_the_latest_submission(tmp_path):
    master = _Master(tmp_path)
    events = master._events_path
    _append(events, time=100.0, event="ended", chunk=0, queue_id=1)  # an earlier submission of chunk 0
    _append(events, time=200.0, event="ended", chunk=1, queue_id=2)
    _append(events, time=210.0, event="finished", chunk=2, queue_id=3)
    active = {0: QueueChunk(0, [], submitted_at=150.0), 1: QueueChunk(1, [], submitted_at=150.0),
              2: QueueChunk(2, [], submitted_at=150.0)}
    assert master._ended_chunks(active) == {1}
    _append(events, time=160.0, event="ended", chunk=0, queue_id=4)
    assert master._ended_chunks(active) == {0, 1}
    del active[1]
    assert master._ended_chunks(active) == {0}


def test_waiting_ends_when_a_chunk_writes_its_record(tmp_path):
    master = _Master(tmp_path)
    master._events_seen = master._events_size()
    writer = threading.Timer(0.3, _append, args=(master._events_path,), kwargs={"event": "ended", "chunk": 0})
    writer.start()
    start = time.monotonic()
    master._sleep_until_events(60.0)  # a 60 s poll interval: without the record this would sleep a minute
    assert time.monotonic() - start < 30.0
    writer.join()
    master._events_seen = master._events_size()
    start = time.monotonic()
    master._sleep_until_events(0.3)  # nothing new: the whole interval
    assert time.monotonic() - start >= 0.3
