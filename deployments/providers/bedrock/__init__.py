"""`bedrock`: Amazon Bedrock's Converse / ConverseStream API, SigV4-signed with botocore.

Chat goes to `{base_url}/model/{modelId}/converse` (streams: `/converse-stream`, answered with the
binary AWS event stream), embeddings to `/model/{modelId}/invoke` (Titan and Cohere embed models).
`base_url` defaults to `https://bedrock-runtime.<region>.amazonaws.com`.

Model ids in the path: the id is percent-encoded as one path segment exactly as botocore's
serializer does (`quote(id, safe="-._~")`): `anthropic.claude-3-5-sonnet-20240620-v1:0` ->
`...-v1%3A0`, an inference-profile ARN `arn:aws:bedrock:...:inference-profile/us.x` ->
`arn%3Aaws%3Abedrock%3A...%3Ainference-profile%2Fus.x`. The signature is computed by botocore's
SigV4Auth over that URL, so the canonical path is the double-encoded form AWS expects for
non-S3 services (`%253A`, `%252F`), the same bytes boto3 would sign; the transport sends the URL
as encoded (`yarl.URL(url, encoded=True)`), so the wire path is the signed one
(tests/conformance/test_bedrock.py checks it against the mock's raw request line).

Credentials: `access_key_id` / `secret_access_key` (/ `session_token`) from the config, else the
standard AWS chain via `botocore.session` (env vars, shared files, `profile`, SSO, container and
instance roles). The chain is resolved in a worker thread when the adapter is built and kept fresh
by a background thread before it expires (credentials.py); the stage awaits `ready()` before
`chat_request`, so no request waits on a credential call made on the event loop, and requests that
arrive during the first resolution share it. A Bedrock API key set as `api_key` is sent as a bearer
token instead of signing. Signing is the only thing `chat_request` does beyond translation; it is
pure given the resolved credentials and the clock (`adapter.clock`, replaceable in tests).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from pydantic import Field, SecretStr, model_validator

from serve_app import errors as E
from serve_app.errors import UpstreamError

from ..base import Adapter, CallContext, ProviderConfig, UpstreamRequest, json_body
from ..embeddings import remember_encoding
from ..spec import ProviderSpec
from .credentials import CredentialResolver
from .request import converse_body, embedding_family, embeddings_body
from .response import BedrockStream, bedrock_error, chat_completion, embeddings_list

SIGNING_NAME = "bedrock"  # the service's signingName (endpoint prefix is bedrock-runtime)


class BedrockConfig(ProviderConfig):
    type: str = "bedrock"
    region: str | None = Field(None, description="AWS region; default: AWS_REGION / AWS_DEFAULT_REGION.")
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    profile: str | None = Field(None, description="Shared-config profile for the standard credential chain.")
    max_tokens: int | None = Field(None, ge=1, description="inferenceConfig.maxTokens when the request has none.")
    embedding_input_type: str = Field("search_document", description="Cohere embed `input_type`.")

    @model_validator(mode="after")
    def _check(self) -> BedrockConfig:
        if self.region is None:
            self.region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not self.region:
            raise ValueError("region is required (or set AWS_REGION)")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key go together")
        return self


def model_segment(model: str) -> str:
    """The model id as one URL path segment, encoded the way botocore encodes `{modelId}`."""
    return quote(model, safe="-._~")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class BedrockAdapter(Adapter):
    supports_embeddings = True

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self.region: str = getattr(config, "region", None) or "us-east-1"
        base = config.base_url or f"https://bedrock-runtime.{self.region}.amazonaws.com"
        self.base = base.rstrip("/")
        self.clock: Callable[[], dt.datetime] = _utcnow
        self.creds = self._credential_resolver(config)
        self.default_max_tokens = getattr(config, "max_tokens", None)
        self.input_type = getattr(config, "embedding_input_type", "search_document")

    # -- signing -------------------------------------------------------------------------------
    def _credential_resolver(self, config: ProviderConfig) -> CredentialResolver | None:
        if config.secret():
            return None  # a Bedrock API key: bearer, nothing to sign with
        key = getattr(config, "access_key_id", None)
        secret = getattr(config, "secret_access_key", None)
        if key is not None and secret is not None:
            from botocore.credentials import Credentials

            token = getattr(config, "session_token", None)
            static = Credentials(key.get_secret_value(), secret.get_secret_value(),
                                 token.get_secret_value() if token else None)
            return CredentialResolver.static(config.name, static.get_frozen_credentials())
        profile = getattr(config, "profile", None)

        def chain() -> Any:  # runs in the resolver's thread
            import botocore.session

            return botocore.session.Session(profile=profile).get_credentials()

        resolver = CredentialResolver(config.name, chain)
        resolver.start()
        return resolver

    async def ready(self) -> None:
        """Awaited by the stage before `chat_request` / `embeddings_request` (resolution is off the loop)."""
        if self.creds is not None:
            await self.creds.ready()

    def signed(self, url: str, body: bytes, accept: str) -> UpstreamRequest:
        headers = {"content-type": "application/json", "accept": accept}
        if self.config.secret():
            headers["authorization"] = f"Bearer {self.config.secret()}"
            return UpstreamRequest("POST", url, headers, body)
        from botocore.awsrequest import AWSRequest

        creds = self.creds.frozen if self.creds is not None else None
        if creds is None:  # the stage awaits ready() first; a caller that did not gets a clear error
            raise UpstreamError(502, f"provider {self.config.name!r}: AWS credentials are not resolved yet",
                                provider=self.config.name, code="upstream_auth_error", type="upstream_error",
                                error_class=E.AUTH)
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        _signer_class()(creds, SIGNING_NAME, self.region, self.clock).add_auth(request)
        return UpstreamRequest("POST", url, dict(request.headers.items()), body)

    # -- chat ----------------------------------------------------------------------------------
    def chat_request(self, body: dict[str, Any], ctx: CallContext, stream: bool) -> UpstreamRequest:
        payload = json_body(converse_body(body, self.default_max_tokens))
        op = "converse-stream" if stream else "converse"
        accept = "application/vnd.amazon.eventstream" if stream else "application/json"
        return self.signed(f"{self.base}/model/{model_segment(ctx.model)}/{op}", payload, accept)

    def chat_response(self, status: int, payload: bytes, ctx: CallContext) -> bytes:
        return chat_completion(payload, ctx)

    def chat_stream(self, ctx: CallContext) -> BedrockStream:
        return BedrockStream(ctx)

    # -- embeddings ----------------------------------------------------------------------------
    def embeddings_request(self, body: dict[str, Any], ctx: CallContext) -> UpstreamRequest:
        payload = json_body(embeddings_body(body, ctx.model, self.input_type))
        remember_encoding(ctx, body)
        return self.signed(f"{self.base}/model/{model_segment(ctx.model)}/invoke", payload, "application/json")

    def embeddings_response(self, status: int, payload: bytes, ctx: CallContext) -> bytes:
        return embeddings_list(payload, ctx, embedding_family(ctx.model) or "titan")

    def error(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> UpstreamError:
        return bedrock_error(status, headers, payload, ctx.provider)


@functools.cache
def _signer_class() -> type:
    """SigV4Auth taking its time from an injectable clock (botocore reads the wall clock itself).

    Built on first use so that configs without a bedrock provider never import botocore.
    """
    from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth

    class ClockedSigV4(SigV4Auth):
        def __init__(self, credentials: Any, service: str, region: str, clock: Callable[[], dt.datetime]) -> None:
            super().__init__(credentials, service, region)
            self._clock = clock

        def add_auth(self, request: Any) -> None:  # SigV4Auth.add_auth with the clock swapped in
            request.context["timestamp"] = self._clock().strftime(SIGV4_TIMESTAMP)
            self._modify_request_before_signing(request)
            canonical = self.canonical_request(request)
            signature = self.signature(self.string_to_sign(request, canonical), request)
            self._inject_signature_to_request(request, signature)

    return ClockedSigV4


SPEC = ProviderSpec(config_model=BedrockConfig, adapter=BedrockAdapter)

__all__ = ["SPEC", "BedrockAdapter", "BedrockConfig", "model_segment"]
