"""Guardrails: named sets of checks on requests and answers (docs/guardrails.md).

Package layout: `config.py` (the `guardrails:` section), `registry.py` (check types as data),
`base.py` (the check interface), one module per check type (`keywords`, `patterns`, `pii`,
`toxicity`, `content_policy`, `response_format`, `length`, `custom`), `text.py` (where the text
is; normalisation), `engine.py` (compiled sets, plans, running checks where they are placed),
`stream.py` (checks on streamed output), `stage.py` (the lifecycle stages), `deployment.py` (the
Serve deployment for model-holding checks).

`register(name, fn)` makes a Python callable available as `type: custom, function: <name>`.
"""

from .custom import register

__all__ = ["register"]
