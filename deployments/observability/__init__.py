"""Observability: request-log bodies, retention and the logs API, the audit log, traces, stage timing and the
separate metrics port (docs/observability.md). `setup.attach_observability` wires it into a Gateway."""
