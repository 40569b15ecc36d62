"""`raygate serve --config FILE [--host H] [--port P]` and `raygate check-config FILE`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any

from deployments.cache.config import strategy_cache_settings

from .config import ConfigError, GatewayConfig, load_config

log = logging.getLogger("raygate")


def report(exc: ConfigError) -> int:
    """Every problem of the file, one `error:` line each; the exit status for a bad config."""
    for line in str(exc).splitlines():
        print(f"error: {line}", file=sys.stderr)
    if len(exc.errors) > 1:
        print(f"{len(exc.errors)} problems in {exc.source}", file=sys.stderr)
    return 2


def check_config(path: str) -> int:
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        return report(exc)
    auth = f"{len(cfg.gateway.api_keys)} client key(s)" if cfg.gateway.api_keys else "client auth OFF"
    print(f"{path}: OK — {len(cfg.providers)} provider(s) ({', '.join(cfg.providers) or 'none'}), "
          f"{len(cfg.models)} model alias(es), {len(cfg.strategies)} strateg(ies), {auth}")
    return 0


class _Interrupted(Exception):
    """SIGINT/SIGTERM before the gateway is up: stop what has started, quietly."""


def _interrupt(*_: Any) -> None:
    raise _Interrupted


def startup_warnings(cfg: GatewayConfig, replicas: int) -> list[str]:
    """What a user should know before the first request (one line each)."""
    out = []
    if not cfg.gateway.api_keys:
        out.append(f"gateway.api_keys is empty: client authentication is OFF (anyone who can reach "
                   f"{cfg.gateway.host}:{cfg.gateway.port} can use the configured providers)")
    cache_used = cfg.cache.enabled or any(True for _ in strategy_cache_settings(cfg.strategies))
    if cache_used and cfg.cache.backend == "memory" and replicas > 1:
        out.append(f"cache.backend is memory with {replicas} ingress replicas: each replica caches on its "
                   f"own, so a repeat finds the entry only on the replica that stored it (use "
                   f"backend: redis to share, or serve.ingress_replicas: 1)")
    return out


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def serve(path: str, host: str | None, port: int | None, app_name: str) -> int:
    # Until the gateway is up, a signal unwinds through the `finally` below (never orphans Ray).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    from . import cluster

    try:
        cfg = load_config(path)
    except ConfigError as exc:
        return report(exc)
    if cfg.storage.enabled:  # an unreachable or too-new database stops us before any cluster starts
        from .storage import StorageError, prepare_storage

        try:
            prepare_storage(cfg.storage)
        except StorageError as exc:
            print(f"error: {cfg.source}: {exc}", file=sys.stderr)
            return 2
    if host:
        cfg.gateway.host = host
    if port:
        cfg.gateway.port = port
    address = os.environ.get("RAY_ADDRESS")
    if not address and port_in_use(cfg.gateway.host, cfg.gateway.port):
        print(f"error: {cfg.gateway.host}:{cfg.gateway.port} is already in use (another raygate?); "
              f"choose another with --port or gateway.port", file=sys.stderr)
        return 2
    from .builder import build_app, ingress_replicas

    for line in startup_warnings(cfg, ingress_replicas(cfg)):
        log.warning(line)

    local = None
    app: list[Any] = []
    stop = threading.Event()
    try:
        if not address:
            print("starting a local Ray cluster (loopback only, token auth on) ...", flush=True)
            # Ray's and the graph's imports (~1 s) overlap the head's start-up.
            local = cluster.start_local_cluster(log_path=os.environ.get("RAYGATE_RAY_LOG"),
                                                while_waiting=lambda: app.append(build_app(cfg)))
            address = local.address
        cluster.connect(address)
        cluster.start_serve(cfg.gateway.host, cfg.gateway.port, cfg.serve.request_timeout_s)
        cluster.deploy(app[0] if app else build_app(cfg), name=app_name)
        url = f"http://{cfg.gateway.host}:{cfg.gateway.port}"
        cluster.wait_http_ready(url)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        print(f"raygate is serving on {url}/v1  (OpenAI base_url; Ctrl-C stops)", flush=True)
        # A driver must resolve 127.0.0.1 as Ray's single-machine mode does to join a loopback cluster.
        driver_env = f"RAY_ADDRESS={address}" + (" RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0" if local else "")
        print(f"{driver_env} RAY_AUTH_MODE=token  (for handle calls from another driver: "
              f"serve_app.client.RaygateClient)", flush=True)
        stop.wait()
        print(f"stopping (in-flight requests get up to {cluster.DRAIN_LIMIT_S} s) ...", flush=True)
    except _Interrupted:
        print("interrupted during start-up; stopping ...", flush=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        if local is not None:
            cluster.shutdown(local)
        elif address:
            try:
                from ray import serve as ray_serve

                ray_serve.delete(app_name)
            except Exception:  # noqa: BLE001 - best effort on the way out
                log.debug("serve.delete failed", exc_info=True)
    print("stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="raygate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="start the gateway (a local Ray cluster unless RAY_ADDRESS is set)")
    p_serve.add_argument("--config", required=True, help="gateway config file (YAML)")
    p_serve.add_argument("--host", help="listen address (default: gateway.host)")
    p_serve.add_argument("--port", type=int, help="listen port (default: gateway.port)")
    p_serve.add_argument("--app-name", default="raygate", help="Serve application name")
    p_check = sub.add_parser("check-config", help="validate a gateway config file and exit")
    p_check.add_argument("file")
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return check_config(args.file)
    return serve(args.config, args.host, args.port, args.app_name)


if __name__ == "__main__":
    sys.exit(main())
