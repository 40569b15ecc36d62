"""The admin read endpoints: `GET /v1/admin/logs` (request records) and `GET /v1/admin/audit` (audit events).

Both answer from storage through the record writer; neither can change a row. Query parameters
arrive as the handler's `body` (serve_app/http.py passes a GET's query string that way).
"""

from __future__ import annotations

from typing import Any

import orjson

from serve_app.errors import not_found
from serve_app.lifecycle import Reply

from .audit import parse_audit_query, select_audit
from .log_query import parse_log_query, select_logs


class AdminReads:
    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway

    def routes(self) -> dict[tuple[str, str], Any]:
        return {("GET", "/v1/admin/logs"): self.logs, ("GET", "/v1/admin/audit"): self.audit}

    def _writer(self) -> Any:
        records = self.gateway.records
        if records is None:
            raise not_found(
                "request logs and audit events are not stored (storage.enabled is false)",
                code="storage_disabled",
                param=None,
            )
        return records.writer

    async def logs(self, params: dict[str, str] | None, admin_id: str) -> Reply:
        query = parse_log_query(params)  # a bad parameter is a 400 before storage is asked
        return Reply(orjson.dumps(await self._writer().call(select_logs, query)), {})

    async def audit(self, params: dict[str, str] | None, admin_id: str) -> Reply:
        query = parse_audit_query(params)
        return Reply(orjson.dumps(await self._writer().call(select_audit, query)), {})
