"""`raygate serve --config FILE [--host H] [--port P]` and `raygate check-config FILE`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from .config import ConfigError, load_config

log = logging.getLogger("raygate")


def check_config(path: str) -> int:
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    auth = f"{len(cfg.gateway.api_keys)} client key(s)" if cfg.gateway.api_keys else "client auth OFF"
    print(f"{path}: OK — {len(cfg.providers)} provider(s) ({', '.join(cfg.providers) or 'none'}), "
          f"{len(cfg.models)} model alias(es), {len(cfg.strategies)} strateg(ies), {auth}")
    return 0


def serve(path: str, host: str | None, port: int | None, app_name: str) -> int:
    from . import cluster
    from .builder import build_app

    try:
        cfg = load_config(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
    if not cfg.gateway.api_keys:
        log.warning("gateway.api_keys is empty: client authentication is OFF (anyone who can reach "
                    "%s:%s can use the configured providers)", cfg.gateway.host, cfg.gateway.port)

    local = None
    address = os.environ.get("RAY_ADDRESS")
    if not address:
        print("starting a local Ray cluster (GCS on 127.0.0.1, token auth on) ...", flush=True)
        local = cluster.start_local_cluster(log_path=os.environ.get("RAYGATE_RAY_LOG"))
        address = local.address
    stop = threading.Event()
    try:
        cluster.connect(address)
        cluster.start_serve(cfg.gateway.host, cfg.gateway.port, cfg.serve.request_timeout_s)
        cluster.deploy(build_app(cfg), name=app_name)
        url = f"http://{cfg.gateway.host}:{cfg.gateway.port}"
        cluster.wait_http_ready(url)
        print(f"raygate is serving on {url}/v1  (OpenAI base_url; Ctrl-C stops)", flush=True)
        print(f"RAY_ADDRESS={address}  (for handle calls: serve_app.client.RaygateClient)", flush=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        print("stopping ...", flush=True)
    finally:
        if local is not None:
            cluster.shutdown(local)
        else:
            try:
                from ray import serve as ray_serve

                ray_serve.delete(app_name)
            except Exception:  # noqa: BLE001 - best effort on the way out
                log.debug("serve.delete failed", exc_info=True)
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
