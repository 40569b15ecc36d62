"""Starting a local Ray cluster and Serve with the settings the gateway's speed depends on.

The Serve flags must be in the environment of the process that starts Ray (the controller and
replicas read them), and the proxy's logging can only be set at the first `serve.start`, so
`raygate serve` and the test fixtures go through here rather than relying on anyone's shell:

- RAY_SERVE_THROUGHPUT_OPTIMIZED=1: direct ingress, gRPC between replicas, user code on the
  replica's main loop; RAY_SERVE_ENABLE_HA_PROXY=1: HAProxy (0.3–0.8 ms/req) instead of Serve's
  Python proxy (~5.6 ms/req). Per-request access logs off (1.8–3.6 ms/req).
- GCS never on 6379, where Redis usually lives. Ray binds some ports to all interfaces even with
  --node-ip-address=127.0.0.1, so token authentication (RAY_AUTH_MODE=token) is on.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVE_FLAGS = {
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_AUTH_MODE": "token",
    "RAY_USAGE_STATS_ENABLED": "0",
    # A redeploy or shutdown waits this long for in-flight requests (Ray's default is 30 s).
    "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "5",
    # HAProxy would log a line per request for Serve's own HTTP metrics, parsed by an actor:
    # raygate counts requests itself, and this saved 13 % of CPU per request (bench/results).
    "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
}
# Ray's per-process background work the gateway does not use (raygate keeps its own metrics, served
# at /metrics): each setting is what Ray does by default in every Ray process on the gateway's cores.
# Measured idle CPU and what stays Ray's: bench/results/latest.md, "Tail latency: findings".
RAY_BACKGROUND = {
    # Ray's metrics pipeline (core workers and raylet record and export to the dashboard agent every
    # few seconds; Serve's replicas observe a latency histogram per request): nothing reads it here.
    "RAY_enable_metrics_collection": "0",
    # Per-handler timing of every event on Ray's C++ event loops (for Ray's debug dumps).
    "RAY_event_stats": "0",
}
SERVE_FLAGS.update(RAY_BACKGROUND)
QUIET_LOGGING = {"enable_access_log": False, "log_level": "WARNING"}
REDIS_PORT = 6379


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


@dataclass
class LocalCluster:
    """A head node started by us (`ray start --block` as a child), stopped with its process tree."""

    address: str
    process: subprocess.Popen[bytes]
    temp_dir: str

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the head's process group; whatever is left after `timeout` is killed."""
        if self.process.poll() is None:
            _signal_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.process, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(10)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def apply_flags() -> None:
    """Put the flags into this process's environment too (a driver must match the cluster's auth)."""
    for key, value in SERVE_FLAGS.items():
        os.environ.setdefault(key, value)
    if os.environ.get("RAY_AUTH_MODE") == "token" and "ray" in sys.modules:
        from ray._private.authentication.authentication_token_setup import _enable_token_auth

        _enable_token_auth()  # refreshes Ray's cached config if ray was imported before the flag was set


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
                        num_cpus: int | None = None, log_path: str | None = None) -> LocalCluster:
    # A random starting point: two clusters started at once must not race for the same port.
    gcs_port = gcs_port or free_port(random.randrange(6380, 6980))
    apply_flags()
    if os.environ.get("RAY_AUTH_MODE") == "token":
        ensure_auth_token()
    if gcs_port == REDIS_PORT:
        raise ValueError("Ray's GCS must not use port 6379 (Redis)")
    # Ray's socket paths must stay short (AF_UNIX limit), so use a short temp root.
    temp_dir = temp_dir or tempfile.mkdtemp(prefix="rg", dir="/tmp")
    log_path = log_path or os.path.join(temp_dir, "ray-start.log")
    ray_bin = str(Path(sys.executable).with_name("ray"))
    cmd = [ray_bin, "start", "--head", f"--port={gcs_port}", "--node-ip-address=127.0.0.1",
           "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}", "--block"]
    if num_cpus is not None:
        cmd.append(f"--num-cpus={num_cpus}")
    env = serve_env()
    # HAProxy's stats and metrics ports are fixed (8404, 9101) unless set: a second cluster on the
    # machine (tests beside a running gateway) would fail to start its HAProxy.
    for key, default in (("RAY_SERVE_HAPROXY_STATS_PORT", 8404), ("RAY_SERVE_HAPROXY_METRICS_PORT", 9101)):
        if key not in env:
            env[key] = str(free_port(default, host="0.0.0.0"))
    start_at = os.path.getsize(log_path) if os.path.exists(log_path) else 0
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {proc.returncode} (log: {log_path})")
        with open(log_path, "rb") as f:
            f.seek(start_at)
            if b"Ray runtime started" in f.read():  # our own head, not someone else's on that port
                break
        time.sleep(0.2)
    else:
        _signal_group(proc, signal.SIGKILL)
        raise RuntimeError(f"ray start did not come up within 90 s (log: {log_path})")
    return LocalCluster(f"127.0.0.1:{gcs_port}", proc, temp_dir)


def shutdown(local: LocalCluster) -> None:
    """Drain Serve, disconnect this driver, then stop the cluster we started (in that order: Ray's
    exception hook would otherwise wait on a dead GCS)."""
    import ray
    from ray import serve

    try:
        serve.shutdown()  # drains in-flight requests (RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S)
    finally:
        try:
            ray.shutdown()
        finally:
            local.stop()


def connect(address: str) -> None:
    apply_flags()
    import ray

    ray.init(address=address, namespace="raygate", log_to_driver=False, logging_level="WARNING")


def start_serve(host: str, port: int, request_timeout_s: float) -> None:
    from ray import serve

    serve.start(http_options={"host": host, "port": port, "request_timeout_s": request_timeout_s},
                logging_config=QUIET_LOGGING)


def deploy(app: Any, name: str = "raygate", route_prefix: str = "/", blocking: bool = False) -> Any:
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
        time.sleep(0.25)
    raise RuntimeError(f"gateway at {url} not ready after {timeout:.0f}s ({last})")
