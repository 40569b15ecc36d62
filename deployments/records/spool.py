"""A replica's append-only record spool: finished records on local disk until storage has them.

One JSON line per record, written with one `os.write` on an O_APPEND descriptor. The write lands
in the page cache, which outlives the process: a replica that crashes (SIGKILL, OOM) loses
nothing it appended. Without `fsync=True` a machine crash can lose the last seconds the kernel
had not yet written back.

Files in the spool directory (shared by every replica on the node):
- `seg-<time>-<pid>-<n>.log`: records; a segment is sealed at `segment_bytes` and a new one opened.
- `seg-....ack`: how many bytes of that segment storage has committed (rewritten on every ack,
  so a successor replays only the rest; replaying more is harmless, inserts are idempotent).

A Spool holds an exclusive `flock` on every segment it owns, for as long as it owns it. A
segment whose lock can be taken belongs to a replica that died: `claim_orphans` takes it over
and its records are read out like this spool's own. Segments are created under a temporary name
and renamed once locked, so a scan never sees a new, not yet locked segment.

Back-pressure: the segments a Spool owns may hold at most `max_bytes`; past that `append`
refuses the record (returns False) and the caller counts it as dropped. Memory use does not
grow with the backlog: pending records are read back from the files.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from dataclasses import dataclass, field

log = logging.getLogger("raygate.records")

SEGMENT_BYTES = 16 << 20
READ_CHUNK = 1 << 20


@dataclass(slots=True)
class Segment:
    path: str
    fd: int
    size: int  # bytes in the file
    acked: int  # bytes committed to storage (a line boundary)
    pending: int  # complete lines after `acked`
    sealed: bool = False
    ack_fd: int = field(default=-1)


@dataclass(slots=True)
class Batch:
    """Lines read from one segment; `ack(batch)` after storage committed them."""

    segment: Segment
    lines: list[bytes]
    end: int  # offset just past the last line
    torn: int = 0  # a trailing partial line of a dead replica's segment (counted as dropped)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


class Spool:
    def __init__(self, directory: str, max_bytes: int = 1 << 30, segment_bytes: int = SEGMENT_BYTES,
                 fsync: bool = False) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.segments: list[Segment] = []  # oldest first; the last one is live
        self.bytes = 0  # on disk in owned segments
        self.pending = 0  # unacknowledged records
        self._seq = 0
        self._live: Segment = None  # type: ignore[assignment]  # opened after the orphans are claimed
        os.makedirs(directory, exist_ok=True)
        self.claim_orphans()
        self._live = self._open_segment()

    # -- request path ---------------------------------------------------------------------------
    def append(self, line: bytes) -> bool:
        """Spool one newline-terminated record. False: the spool is full (or the disk failed)."""
        n = len(line)
        if self.bytes + n > self.max_bytes:
            return False
        live = self._live  # after close() its fd is -1: the write fails and the record is refused
        try:
            os.write(live.fd, line)
            if self.fsync:
                os.fsync(live.fd)
        except OSError:  # disk full, or the spool is closed: the caller counts and logs the drop
            return False
        live.size += n
        live.pending += 1
        self.bytes += n
        self.pending += 1
        if live.size >= self.segment_bytes:
            live.sealed = True
            self._live = self._open_segment()
        return True

    # -- flush side -----------------------------------------------------------------------------
    def read_batch(self, max_records: int) -> Batch | None:
        """Up to `max_records` unacknowledged lines from the oldest segment that has some."""
        for seg in self.segments:
            if seg.size > seg.acked:
                batch = self._read(seg, max_records)
                if batch is not None:
                    return batch
        return None

    def _read(self, seg: Segment, max_records: int) -> Batch | None:
        want = min(seg.size - seg.acked, READ_CHUNK)
        while True:
            data = os.pread(seg.fd, want, seg.acked)
            cut = data.rfind(b"\n")
            if cut >= 0 or seg.acked + len(data) >= seg.size:
                break
            want *= 2  # one line longer than the chunk
        lines = data[:cut + 1].split(b"\n")[:-1] if cut >= 0 else []
        if len(lines) > max_records:
            lines = lines[:max_records]
        end = seg.acked + sum(len(x) + 1 for x in lines)
        torn = 0
        if end == seg.acked + cut + 1 and seg.sealed and end < seg.size and seg.acked + len(data) >= seg.size:
            torn, end = 1, seg.size  # a dead writer's last line was cut short (machine crash)
        if not lines and not torn:
            return None
        return Batch(seg, lines, end, torn)

    def ack(self, batch: Batch) -> None:
        """Storage committed the batch: advance its segment; delete a sealed segment once all of it is."""
        seg = batch.segment
        if batch.end <= seg.acked:
            return
        seg.acked = batch.end
        seg.pending -= len(batch.lines)
        self.pending -= len(batch.lines)
        if seg.sealed and seg.acked >= seg.size:
            self._remove(seg)
            return
        if seg.ack_fd < 0:
            seg.ack_fd = os.open(_ack_path(seg.path), os.O_WRONLY | os.O_CREAT, 0o600)
        data = b"%020d" % seg.acked
        os.pwrite(seg.ack_fd, data, 0)

    def claim_orphans(self) -> int:
        """Take over segments whose owner died; returns how many records they still hold."""
        owned = {s.path for s in self.segments}
        found = 0
        names = sorted(os.listdir(self.directory))
        for name in names:
            path = os.path.join(self.directory, name)
            if _is_leftover(name, names):
                _unlink_unlocked(path)
                continue
            if not (name.startswith("seg-") and name.endswith(".log")) or path in owned:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:  # its owner just finished with it
                continue
            if not _try_lock(fd) or not os.path.exists(path):
                os.close(fd)
                continue
            size = os.fstat(fd).st_size
            acked = min(_read_ack(path), size)
            pending = os.pread(fd, size - acked, acked).count(b"\n") if size > acked else 0
            seg = Segment(path, fd, size, acked, pending, sealed=True)
            self.segments.insert(len(self.segments) - (self._live is not None), seg)  # before the live one
            self.bytes += size
            self.pending += pending
            found += pending
            if size <= acked:
                self._remove(seg)
        if found:
            log.warning("record spool %s: replaying %d records left by a replica that stopped",
                        self.directory, found)
        return found

    def close(self) -> None:
        """Release every segment: fully acknowledged ones are deleted, the rest left for a successor."""
        for seg in list(self.segments):
            if seg.acked >= seg.size:
                self._remove(seg)
            else:
                self._release(seg)
        self.segments.clear()

    # -- internals ------------------------------------------------------------------------------
    def _open_segment(self) -> Segment:
        self._seq += 1
        name = f"seg-{time.time_ns():020d}-{os.getpid()}-{self._seq}.log"
        tmp = os.path.join(self.directory, "." + name + ".new")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = os.path.join(self.directory, name)
        os.rename(tmp, path)
        seg = Segment(path, fd, 0, 0, 0)
        self.segments.append(seg)
        return seg

    def _remove(self, seg: Segment) -> None:
        # unlink before unlocking: nobody can claim a segment that is already gone
        for path in (seg.path, _ack_path(seg.path)):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self._release(seg)
        self.segments.remove(seg)
        self.bytes -= seg.size
        self.pending -= seg.pending
        seg.pending = 0

    def _release(self, seg: Segment) -> None:
        if seg.ack_fd >= 0:
            os.close(seg.ack_fd)
            seg.ack_fd = -1
        if seg.fd >= 0:
            os.close(seg.fd)
            seg.fd = -1


def _is_leftover(name: str, names: list[str]) -> bool:
    """A segment's temporary name (it is renamed before its first record) or the ack file of a deleted one."""
    if name.startswith(".seg-") and name.endswith(".log.new"):
        return True
    return name.startswith("seg-") and name.endswith(".ack") and name[:-4] + ".log" not in names


def _unlink_unlocked(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        if _try_lock(fd):  # a .new file still locked belongs to a replica opening it right now
            os.unlink(path)
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


def _ack_path(segment_path: str) -> str:
    return segment_path[:-4] + ".ack"


def _read_ack(segment_path: str) -> int:
    try:
        with open(_ack_path(segment_path), "rb") as f:
            return int(f.read(20) or 0)
    except (FileNotFoundError, ValueError):
        return 0
