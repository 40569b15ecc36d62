"""Bedrock's AWS credentials are resolved off the event loop (deployments/providers/bedrock/credentials.py):
a slow credential source does not stall the loop, requests arriving during the first resolution share
it, a failed resolution is a clear error (and the next request tries again), and refreshable
credentials are refreshed by a background thread, never by a request. No network, no Ray: the
credential sources are stand-ins for botocore's providers, the transport a stub."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from typing import Any

import pytest
from botocore.credentials import Credentials, RefreshableCredentials

from deployments.providers.bedrock.credentials import CredentialResolver
from deployments.providers.stage import Provider
from deployments.providers.transport import UpstreamResponse
from serve_app import errors as E
from serve_app.errors import UpstreamError
from tests.support.providers import ProviderKit

KIT = ProviderKit("bedrock", name="aws", model="anthropic.claude-3-5-sonnet-20240620-v1:0",
                  config={"region": "us-east-1"})
MESSAGES = {"messages": [{"role": "user", "content": "hi"}]}


class StubTransport:
    """Answers every call with the `text` Converse fixture and records the signing key it saw."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    async def request(self, req: Any, timeouts: Any, provider: str) -> UpstreamResponse:
        self.keys.append(req.headers["Authorization"].split("Credential=")[1].split("/")[0])
        return UpstreamResponse(200, {}, KIT.fixture("chat", "text.json"))


def provider_with(source: Any, poll: float = 30.0, start: bool = True) -> tuple[Provider, StubTransport]:
    """A Bedrock provider stage (credential chain mode) whose chain is `source`; `start`: resolve it
    now, as the adapter does when it is built (False: the first request starts it)."""
    transport = StubTransport()
    provider = Provider(KIT.adapter().config, transport=transport)
    provider.adapter.creds.close()
    provider.adapter.creds = CredentialResolver("aws", source, poll=poll)
    if start:
        provider.adapter.creds.start()
    return provider, transport


def test_a_slow_credential_source_does_not_stall_the_loop() -> None:
    released = threading.Event()
    calls: list[str] = []

    def slow_source() -> Credentials:  # blocks like an instance-metadata call, until the loop proved alive
        calls.append(threading.current_thread().name)
        if not released.wait(timeout=5):
            raise TimeoutError("the event loop never ran while credentials were resolved")
        return Credentials("AKIDSLOW", "secret")

    async def scenario() -> tuple[list[bytes], int]:
        provider, transport = provider_with(slow_source)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while ticks < 5:
                await asyncio.sleep(0.01)
                ticks += 1
            released.set()  # only a loop that kept running gets here

        requests = [provider.chat(dict(MESSAGES), KIT.ctx()) for _ in range(3)]
        results = await asyncio.gather(ticker(), *requests)
        return results[1:], len(transport.keys)

    bodies, sent = asyncio.run(scenario())
    assert len(bodies) == 3 and sent == 3
    assert calls == ["aws-creds-aws"]  # one resolution, shared, in the resolver's thread


def test_a_failed_resolution_is_a_clear_error_and_the_next_request_retries() -> None:
    attempts: list[int] = []

    def flaky_source() -> Credentials | None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("169.254.169.254 unreachable")
        return Credentials("AKIDSECOND", "secret")

    async def scenario() -> list[str]:
        # A failure at start-up is retried by the first request; here that request meets the failure.
        provider, transport = provider_with(flaky_source, start=False)
        with pytest.raises(UpstreamError) as info:
            await provider.chat(dict(MESSAGES), KIT.ctx())
        err = info.value
        assert (err.status, err.code, err.error_class) == (502, "upstream_auth_error", E.AUTH)
        assert "could not resolve AWS credentials (ConnectionError)" in err.message
        await provider.chat(dict(MESSAGES), KIT.ctx())
        return transport.keys

    assert asyncio.run(scenario()) == ["AKIDSECOND"] and len(attempts) == 2


def test_expiring_credentials_are_refreshed_in_the_background() -> None:
    refreshed_on: list[str] = []
    done = threading.Event()

    def metadata(n: int) -> dict[str, str]:  # always near expiry, so every poll finds a refresh due
        expiry = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
        return {"access_key": f"AKIDGEN{n}", "secret_key": "secret", "token": f"token{n}",
                "expiry_time": expiry.isoformat()}

    def refresh() -> dict[str, str]:  # botocore calls this (STS / SSO / IMDS in real life)
        refreshed_on.append(threading.current_thread().name)
        if len(refreshed_on) >= 3:
            done.set()
        return metadata(len(refreshed_on))

    source = RefreshableCredentials.create_from_metadata(metadata(0), refresh, "test-refresh")
    loop_thread = threading.current_thread().name

    async def scenario() -> list[str]:
        provider, transport = provider_with(lambda: source, poll=0.01)
        await provider.chat(dict(MESSAGES), KIT.ctx())
        assert await asyncio.to_thread(done.wait, 10), "the background refresher never refreshed"
        count = len(refreshed_on)
        await provider.chat(dict(MESSAGES), KIT.ctx())
        provider.adapter.creds.close()
        assert transport.keys[-1].startswith("AKIDGEN") and int(transport.keys[-1][7:]) >= count - 1
        return transport.keys

    asyncio.run(scenario())
    assert loop_thread not in refreshed_on  # no refresh ever ran on the event loop's thread
    assert set(refreshed_on) <= {"aws-creds-aws", "aws-refresh-aws"}
