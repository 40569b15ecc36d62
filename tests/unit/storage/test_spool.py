"""The per-replica spool: append, read back, acknowledge, rotate, replay a dead replica's segments, limit."""

from __future__ import annotations

import os
from pathlib import Path

from deployments.records.spool import Spool


def crash(spool: Spool) -> None:
    """What a SIGKILL leaves: files as they are, locks released (the descriptors closed)."""
    for seg in spool.segments:
        spool._release(seg)


def lines(n: int, start: int = 0) -> list[bytes]:
    return [b'{"request_id":"r%d"}\n' % i for i in range(start, start + n)]


def drain(spool: Spool, max_records: int = 1000) -> list[bytes]:
    out = []
    while (batch := spool.read_batch(max_records)) is not None:
        out += batch.lines
        spool.ack(batch)
    return out


def segment_files(d: Path) -> list[str]:
    return sorted(n for n in os.listdir(d) if n.endswith(".log"))


def test_append_read_ack(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path))
    for line in lines(5):
        assert spool.append(line)
    assert spool.pending == 5
    first = spool.read_batch(3)
    assert first is not None and first.lines == [x[:-1] for x in lines(3)]
    assert spool.read_batch(3).lines == first.lines  # not acknowledged yet: read again
    spool.ack(first)
    assert spool.pending == 2
    assert drain(spool) == [x[:-1] for x in lines(2, 3)]
    assert spool.pending == 0 and spool.read_batch(10) is None
    spool.close()
    assert os.listdir(tmp_path) == []  # everything acknowledged: nothing left behind


def test_rotation_deletes_a_segment_once_all_of_it_is_acknowledged(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), segment_bytes=100)
    for line in lines(12):  # ~19 bytes each: 6 lines fill a segment
        spool.append(line)
    assert len(segment_files(tmp_path)) == 3
    batch = spool.read_batch(4)
    spool.ack(batch)  # part of the first segment
    assert len(segment_files(tmp_path)) == 3
    assert len(drain(spool)) == 8
    assert len(segment_files(tmp_path)) == 1  # the live one stays open
    spool.close()


def test_a_successor_replays_what_a_dead_replica_left_unacknowledged(tmp_path: Path) -> None:
    dead = Spool(str(tmp_path), segment_bytes=100)
    for line in lines(10):
        dead.append(line)
    dead.ack(dead.read_batch(4))  # r0..r3 committed before the crash
    crash(dead)
    successor = Spool(str(tmp_path))
    assert successor.pending == 6
    assert drain(successor) == [x[:-1] for x in lines(6, 4)]
    successor.close()
    assert os.listdir(tmp_path) == []


def test_a_live_replicas_segments_are_not_claimed(tmp_path: Path) -> None:
    alive = Spool(str(tmp_path))
    alive.append(lines(1)[0])
    other = Spool(str(tmp_path))
    assert other.pending == 0 and other.claim_orphans() == 0
    crash(alive)
    assert other.claim_orphans() == 1  # the periodic rescan finds it once its owner is gone
    assert drain(other) == [lines(1)[0][:-1]]
    other.close()


def test_a_torn_last_line_is_reported_and_skipped(tmp_path: Path) -> None:
    dead = Spool(str(tmp_path))
    dead.append(lines(1)[0])
    os.write(dead.segments[-1].fd, b'{"request_id":"half')  # a machine crash mid-write
    crash(dead)
    successor = Spool(str(tmp_path))
    batch = successor.read_batch(10)
    assert batch.lines == [lines(1)[0][:-1]] and batch.torn == 1
    successor.ack(batch)
    assert successor.read_batch(10) is None
    successor.close()


def test_beyond_max_bytes_records_are_refused_until_some_are_acknowledged(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), max_bytes=100, segment_bytes=40)
    accepted = [spool.append(line) for line in lines(8)]
    assert accepted == [True] * 5 + [False] * 3  # 19 bytes a line, 100 bytes allowed
    drain(spool)
    assert spool.append(lines(1, 8)[0])  # acknowledged segments were deleted: room again
    spool.close()


def test_leftovers_of_a_crash_between_steps_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".seg-00000000000000000001-1-1.log.new").write_bytes(b"")  # died before the rename
    (tmp_path / "seg-00000000000000000002-1-1.ack").write_bytes(b"%020d" % 5)  # its segment was deleted
    spool = Spool(str(tmp_path))
    assert os.listdir(tmp_path) == [os.path.basename(spool.segments[-1].path)]
    spool.close()
