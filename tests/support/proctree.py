"""A process tree as Linux sees it (/proc): its pids, its listening TCP sockets, its memory.

Used by the newcomer/e2e tests (what a started gateway exposes) and bench/startstop.py (what it
costs). No psutil: it is not a runtime dependency of raygate.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from serve_app.cluster import process_tree as tree  # noqa: F401 - re-exported


def name(pid: int) -> str:
    """The process's command line, shortened (Ray workers rename themselves `ray::<Actor>`)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    parts = [p for p in raw.decode(errors="replace").split("\0") if p]
    if not parts:
        return "?"
    head = os.path.basename(parts[0])
    if head.startswith("python") and len(parts) > 1:  # python -m x / python script.py: name the script
        rest = parts[2] if parts[1] == "-m" and len(parts) > 2 else parts[1]
        head = f"{head} {os.path.basename(rest)}"
    return head[:60]


@dataclass(frozen=True)
class Listener:
    host: str
    port: int
    pid: int
    process: str


def _decode(hex_addr: str) -> tuple[str, int]:
    addr, port = hex_addr.split(":")
    raw = bytes.fromhex(addr)
    if len(raw) == 4:
        host = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:  # /proc/net/tcp6: four little-endian 32-bit words
        host = socket.inet_ntop(socket.AF_INET6, b"".join(struct.pack(">I", w) for w in
                                                           struct.unpack("<4I", raw)))
    return host, int(port, 16)


def _listening_inodes() -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                out[fields[9]] = _decode(fields[1])
    return out


def listening(pids: set[int]) -> list[Listener]:
    """Every listening TCP socket held open by one of `pids`."""
    inodes = _listening_inodes()
    found: set[Listener] = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and (where := inodes.get(target[8:-1])):
                found.add(Listener(where[0], where[1], pid, name(pid)))
    return sorted(found, key=lambda s: (s.port, s.pid))


def is_loopback(host: str) -> bool:
    return host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1") or host.startswith("::ffff:127.")


def memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB; PSS shares each shared page among its users."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    values = {}
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        values[key] = int(rest.split()[0]) if rest.split() else 0
    return values.get("Rss", 0), values.get("Pss", 0)
