"""`python -m serve_app.head --port P --temp-dir D [--num-cpus N]`: a one-node Ray head with only what
the gateway uses, blocking until SIGTERM/SIGINT (what `ray start --head --block` does, minus the rest).

Compared with `ray start`, it imports Ray's core only (the CLI imports Serve, the job CLI and the
autoscaler: ~1.5 s of CPU and ~60 MB), keeps the node address 127.0.0.1 (the CLI turns a loopback
`--node-ip-address` into the machine's address), and starts no Ray client server, autoscaler
monitor or log monitor (raygate's driver prints no worker logs). GCS, raylet, the dashboard API
server (state API, no UI) and the agents still run. Started and stopped by serve_app/cluster.py.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

READY_LINE = "Ray runtime started"
NODE_IP = "127.0.0.1"  # loopback as Ray recognises it: 127.0.0.2 would make it bind every interface


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serve_app.head", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="GCS port")
    parser.add_argument("--temp-dir", required=True)
    parser.add_argument("--num-cpus", type=int)
    args = parser.parse_args(argv)

    import ray._private.node
    import ray._private.parameter
    import ray._private.utils
    from ray._common.usage import usage_lib

    usage_lib.set_usage_stats_enabled_via_env_var(False)
    params = ray._private.parameter.RayParams(
        node_ip_address=NODE_IP, node_name=NODE_IP, gcs_server_port=args.port,
        num_cpus=args.num_cpus, temp_dir=args.temp_dir, include_dashboard=False,
        no_monitor=True, include_log_monitor=False, ray_client_server_port=None, huge_pages=False)
    node = ray._private.node.Node(params, head=True, shutdown_at_exit=False, spawn_reaper=False)
    ray._private.utils.write_ray_address(node.gcs_address, args.temp_dir)
    print(f"{READY_LINE} (GCS {node.gcs_address}, temp dir {args.temp_dir})", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1):
        dead = [kind for kind, proc in node.dead_processes() if proc.returncode not in (0, -signal.SIGTERM)]
        if dead:
            print(f"Ray processes exited unexpectedly: {', '.join(dead)}; stopping the node", flush=True)
            node.kill_all_processes(check_alive=False, allow_graceful=False)
            return 1
    stop_processes(node)
    return 0


def stop_processes(node, grace_s: float = 0.5) -> None:  # noqa: ANN001 - ray._private.node.Node
    """SIGTERM every Ray process at once, SIGKILL what is left after `grace_s` (Ray's own
    `kill_all_processes` stops them one after the other, up to a second each; GCS and raylet take
    ~2 s to honour SIGTERM). The cluster is throw-away and Serve has drained before this."""
    import subprocess
    import time

    procs = [info.process for infos in node.all_processes.values() for info in infos]
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
