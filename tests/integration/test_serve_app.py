"""The real Ray Serve app (build_app graph) through the official openai SDK, a handle-call driver,
cross-replica /metrics, the error matrix, placement as deployments, and the exposure of listening sockets."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from serve_app.cluster import process_tree
from tests.support.mockservers.recording_openai import RecordingUpstream

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
KEY = "it-client-key"
MSG = [{"role": "user", "content": "hello ray"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    up = RecordingUpstream().start()
    yield up
    up.stop()


def base_config(upstream: RecordingUpstream, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "gateway": {"api_keys": [{"id": "it", "key": KEY}], "max_body_bytes": 4096},
        "providers": {
            "sandbox": {"type": "mock", "latency_ms": 1},
            "up": {"type": "openai", "base_url": upstream.base_url, "api_key": "sk-up-secret", "timeout": 1.5},
        },
        "default_provider": "sandbox",
        "serve": {"ingress_replicas": 2},
    }
    cfg.update(extra)
    return cfg


@pytest.fixture(scope="module")
def app(deploy_gateway: Any, upstream: RecordingUpstream) -> Any:
    return deploy_gateway(base_config(upstream), name="itgw")


@pytest.fixture
def client(app: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=app.base_url, api_key=KEY, max_retries=0, _strict_response_validation=True)


def test_sync_chat_and_stream(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="mock", messages=MSG)
    assert completion.choices[0].message.content == "Mock reply to: hello ray"
    chunks = list(client.chat.completions.create(model="mock", messages=MSG, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Mock reply to: hello ray"
    assert chunks[-1].usage is not None and chunks[-1].choices == []


async def test_async_chat_and_stream_against_upstream(app: Any, upstream: RecordingUpstream) -> None:
    aclient = openai.AsyncOpenAI(base_url=app.base_url, api_key=KEY, max_retries=0)
    completion = await aclient.chat.completions.create(model="up/ok", messages=MSG, metadata={"k": "v"})
    assert completion.choices[0].message.content == "recorded reply"
    assert "metadata" not in upstream.requests[-1]["body"]
    text = ""
    async for chunk in await aclient.chat.completions.create(model="up/ok", messages=MSG, stream=True):
        assert chunk.choices, "usage chunk must be stripped when the client did not ask"
        text += chunk.choices[0].delta.content or ""
    assert text == "recorded stream reply"
    assert upstream.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    await aclient.close()


def test_request_id_once_and_echoed(app: Any) -> None:
    resp = httpx.post(app.base_url + "/chat/completions", headers={"authorization": f"Bearer {KEY}",
                                                                   "x-request-id": "req-xyz"},
                      json={"model": "mock", "messages": MSG})
    assert resp.status_code == 200
    assert resp.headers.get_list("x-request-id") == ["req-xyz"]
    assert int(resp.headers["content-length"]) == len(resp.content)
    generated = httpx.post(app.base_url + "/chat/completions", headers={"authorization": f"Bearer {KEY}"},
                           json={"model": "mock", "messages": MSG})
    assert len(generated.headers.get_list("x-request-id")) == 1


def test_embeddings_and_models(client: openai.OpenAI) -> None:
    # explicit floats: the strict SDK types vectors as floats (its base64 default is tests/newcomer's)
    assert len(client.embeddings.create(model="mock", input="x", encoding_format="float").data[0].embedding) == 16
    assert "sandbox/mock" in {m.id for m in client.models.list()}


def test_error_matrix_over_serve(app: Any, client: openai.OpenAI) -> None:
    url = app.base_url + "/chat/completions"
    auth = {"authorization": f"Bearer {KEY}"}
    assert httpx.post(url, json={"model": "mock", "messages": MSG}).status_code == 401
    bad = httpx.post(url, content=b"{nope", headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
    wrong = httpx.post(url, json={"model": "mock", "messages": MSG, "temperature": "x"}, headers=auth)
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "temperature"
    assert httpx.post(url, json={"model": "m", "messages": MSG, "provider": "zz"}, headers=auth).status_code == 404
    big = httpx.post(url, json={"model": "mock", "messages": [{"role": "user", "content": "x" * 9000}]}, headers=auth)
    assert big.status_code == 413
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="up/slow-4", messages=MSG)
    assert err.value.status_code == 504
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="up/status-529", messages=MSG)
    assert err.value.status_code == 503
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="up/status-401", messages=MSG)
    assert err.value.status_code == 502 and "sk-up-secret" not in err.value.response.text
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="up/cut", messages=MSG, stream=True))
    # still healthy
    assert httpx.get(app.url + "/health").json()["status"] == "healthy"
    assert client.chat.completions.create(model="mock", messages=MSG).choices


def _ingress_ports(app_name: str) -> dict[int, int]:
    """pid -> direct-ingress HTTP port of each Ingress replica of the app (THROUGHPUT_OPTIMIZED mode:
    every replica serves HTTP on its own port, which HAProxy balances over)."""
    from ray.serve._private import constants

    ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    pids = {int(line.split(None, 1)[0]) for line in ps.splitlines()
            if f"ServeReplica:{app_name}:Ingress" in line}
    low, high = constants.RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT, constants.RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT
    ports = {}
    for _, port, proc in _listening(pids):
        if low <= port <= high:
            ports[int(proc.split("pid=", 1)[1].split(",", 1)[0])] = port
    return ports


def test_metrics_are_summed_across_replicas(app: Any) -> None:
    """Requests sent to each ingress replica's own port (so each replica provably served n of them)
    show up once each in /metrics read through any one replica."""
    def count() -> int:
        text = httpx.get(app.url + "/metrics").text
        for line in text.splitlines():
            if line.startswith('raygate_requests_total{provider="sandbox",model="metrics-probe",status="200"}'):
                return int(float(line.split()[-1]))
        return 0

    ports = _ingress_ports(app.name)
    assert len(ports) == 2, ports  # serve.ingress_replicas: 2
    n = 5
    for port in ports.values():
        direct = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/{app.name}/v1", api_key=KEY, max_retries=0)
        for _ in range(n):
            direct.chat.completions.create(model="metrics-probe", messages=MSG)
    deadline = time.time() + 10
    while time.time() < deadline and count() < 2 * n:
        time.sleep(0.5)  # the replica that does not answer /metrics flushes within a second
    assert count() == 2 * n  # a model name no other test uses: exactly these requests


def test_handle_client_from_another_driver(ray_cluster: Any, app: Any) -> None:
    script = textwrap.dedent(f"""
        import ray
        from serve_app.client import RaygateClient, GatewayError
        ray.init(address={ray_cluster.address!r}, namespace="raygate", log_to_driver=False)
        gw = RaygateClient(app_name={app.name!r}, api_key={KEY!r})
        reply = gw.chat(model="mock", messages=[{{"role": "user", "content": "from a driver"}}])
        assert reply["choices"][0]["message"]["content"] == "Mock reply to: from a driver", reply
        chunks = list(gw.stream_chat(model="mock", messages=[{{"role": "user", "content": "stream it"}}]))
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        assert text == "Mock reply to: stream it", text
        emb = gw.embeddings(model="mock", input=["a", "b"])
        assert len(emb["data"]) == 2
        try:
            RaygateClient(app_name={app.name!r}, api_key="wrong").chat(model="mock", messages=[{{"role": "user", "content": "x"}}])
        except GatewayError as err:
            assert err.status == 401, err
        else:
            raise AssertionError("a wrong key must fail")
        print("HANDLE-OK")
    """)
    env = dict(os.environ, RAY_AUTH_MODE="token", PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert "HANDLE-OK" in res.stdout, res.stdout[-2000:] + res.stderr[-4000:]


def test_stages_as_deployments(deploy_gateway: Any, upstream: RecordingUpstream) -> None:
    cfg = base_config(upstream, placement={"router": "deployment", "providers": "deployment"},
                      serve={"ingress_replicas": 1})
    app = deploy_gateway(cfg, name="itdep")
    client = openai.OpenAI(base_url=app.base_url, api_key=KEY, max_retries=0)
    assert client.chat.completions.create(model="mock", messages=MSG).choices[0].message.content
    text = "".join(c.choices[0].delta.content or "" for c in
                   client.chat.completions.create(model="up/ok", messages=MSG, stream=True))
    assert text == "recorded stream reply"
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="up/status-429", messages=MSG)
    from ray import serve

    deployments = set(serve.status().applications["itdep"].deployments)
    assert {"Ingress", "Router", "Provider:sandbox", "Provider:up"} <= deployments
    assert httpx.get(app.url + "/ready").status_code == 200


def _listening(pids: set[int]) -> list[tuple[str, int, str]]:
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        local, proc = parts[3], " ".join(parts[5:])
        pid_ok = any(f"pid={pid}," in proc for pid in pids)
        if pid_ok:
            host, _, port = local.rpartition(":")
            found.append((host.strip("[]"), int(port), proc))
    return found


def test_listening_sockets_are_loopback_or_authenticated(ray_cluster: Any, app: Any) -> None:
    """Every socket of the cluster is on loopback, or Ray token auth is on and the port is documented."""
    sockets = _listening(process_tree(ray_cluster.local.process.pid))
    assert sockets, "found no listening sockets for the cluster's processes"
    assert all(port != 6379 for _, port, _ in sockets), "Ray must never listen on Redis' port"
    exposed = [(h, p, proc) for h, p, proc in sockets if h not in ("127.0.0.1", "::1", "::ffff:127.0.0.1")]
    # Serve's HTTP (HAProxy frontend) stays on loopback.
    assert not [s for s in exposed if s[1] == ray_cluster.http_port]
    if exposed:
        assert os.environ.get("RAY_AUTH_MODE") == "token", "ports off loopback need Ray token auth"
        doc = (ROOT / "docs" / "security.md").read_text()
        for _, port, proc in exposed:
            name = proc.split('"')[1] if '"' in proc else proc
            documented = "`ray::<name>`" if name.startswith("ray::") else f"`{name}`" if name in (
                "raygate", "python3") else name
            assert documented in doc or str(port) in doc, (name, port)
    # An unauthenticated gRPC client is refused by the GCS.
    gcs_port = int(ray_cluster.address.rsplit(":", 1)[1])
    probe = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(f"""
            import os
            os.environ["RAY_AUTH_MODE"] = "disabled"
            import ray
            try:
                ray.init(address="127.0.0.1:{gcs_port}", log_to_driver=False, _node_ip_address="127.0.0.1")
            except Exception as exc:
                print("REFUSED", type(exc).__name__)
            else:
                print("ACCEPTED")
        """)], capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")} | {"HOME": "/nonexistent"})
    assert "REFUSED" in probe.stdout, probe.stdout + probe.stderr[-1500:]
