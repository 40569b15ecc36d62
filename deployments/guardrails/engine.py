"""The compiled guardrails of one gateway: sets of bound checks, per-request plans, and running them.

`Guardrails` is built once per process from the config (the ingress replica's stage, and every
guardrail deployment replica, build the same one, so a check is named by its `key`, "set/index",
across a handle). `plan(names)` gives the ordered input and output checks of a combination of
sets (memoised). `evaluate_sequence` runs checks in order on a subject: a mask rewrites the
subject's texts for the checks after it, a blocking failure stops the sequence. `Runner` runs a
plan's checks where each is placed: consecutive deployment-placed checks go in one handle call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from .base import Check, Finding, Subject
from .config import GuardrailsConfig
from .registry import CHECK_TYPES, check_class

log = logging.getLogger("raygate.guardrails")
STOPS = frozenset({"block", "retry"})  # a failure with these actions ends the sequence


@dataclass(slots=True)
class Bound:
    """One configured check of one set."""

    key: str  # "set/index"
    set: str
    name: str
    type: str
    action: str
    phases: frozenset[str]
    remote: bool  # evaluated in the guardrail deployment
    threaded: bool  # holds a model: evaluated off the event loop when in-process
    max_retries: int
    check: Check


@dataclass(slots=True)
class Plan:
    input: list[Bound]
    output: list[Bound]
    masks_output: bool  # some output check masks, or PII placeholders are restored in the answer
    unmask: bool


class Guardrails:
    def __init__(self, cfg: GuardrailsConfig, placement: str = "auto",
                 remote_available: bool = False) -> None:
        self.config = cfg
        self.sets: dict[str, list[Bound]] = {}
        self.by_key: dict[str, Bound] = {}
        for set_name, checks in cfg.sets.items():
            bound = []
            for i, c in enumerate(checks):
                spec = CHECK_TYPES[c.type]
                stage = c.stage or spec.stage
                remote = remote_available and (placement == "deployment"
                                               or (placement == "auto" and spec.holds_model))
                name = c.name or (c.function if c.type == "custom" else c.type)
                phases = frozenset(("input", "output") if stage == "both" else (stage,))
                b = Bound(f"{set_name}/{i}", set_name, name, c.type, c.action, phases, remote,
                          spec.holds_model, c.max_retries, check_class(c.type)(c))
                bound.append(b)
                self.by_key[b.key] = b
            self.sets[set_name] = bound
        self._plans: dict[tuple[str, ...], Plan] = {}

    @property
    def any_remote(self) -> bool:
        return any(b.remote for b in self.by_key.values())

    def unknown(self, names: tuple[str, ...]) -> str | None:
        return next((n for n in names if n not in self.sets), None)

    def plan(self, names: tuple[str, ...]) -> Plan:
        plan = self._plans.get(names)
        if plan is None:
            bound = [b for n in names for b in self.sets[n]]
            inp = [b for b in bound if "input" in b.phases]
            out = [b for b in bound if "output" in b.phases]
            unmask = any(getattr(b.check, "unmask_output", False) for b in bound)
            plan = Plan(inp, out, unmask or any(b.action == "mask" for b in out), unmask)
            if len(self._plans) < 1024:
                self._plans[names] = plan
        return plan

    def load_models(self) -> None:
        for b in self.by_key.values():
            b.check.load()


def evaluate_sequence(bounds: list[Bound], subject: Subject) -> list[Finding]:
    """Run checks in order; plain Python (the deployment runs it in a worker thread)."""
    out = []
    for b in bounds:
        start = time.perf_counter()
        try:
            finding = b.check.evaluate(subject)
        except Exception as exc:  # noqa: BLE001 - a broken check is a failed check, never a crashed request
            log.exception("guardrail %s (%s) raised", b.key, b.type)
            finding = Finding(False, f"the check failed ({type(exc).__name__})", error=True)
        finding.latency_ms = round((time.perf_counter() - start) * 1000, 3)
        out.append(finding)
        if not finding.ok:
            if b.action == "mask" and finding.texts is not None:
                subject["texts"] = finding.texts
            elif b.action in STOPS:
                break
    return out


class Runner:
    """Runs a plan's checks where each is placed; `remote` is the deployment's stand-in (or None)."""

    def __init__(self, remote: Any = None) -> None:
        self.remote = remote

    async def run(self, bounds: list[Bound], subject: Subject) -> list[tuple[Bound, Finding]]:
        results: list[tuple[Bound, Finding]] = []
        i = 0
        while i < len(bounds):
            j = i + 1
            placed = bounds[i].remote
            while j < len(bounds) and bounds[j].remote == placed:
                j += 1
            group = bounds[i:j]
            if placed:
                findings, returned = await self.remote.evaluate([b.key for b in group], subject)
                subject["texts"], subject["entities"] = returned["texts"], returned.get("entities", {})
            elif any(b.threaded for b in group):
                findings = await asyncio.to_thread(evaluate_sequence, group, subject)
            else:
                findings = evaluate_sequence(group, subject)
            for b, f in zip(group, findings, strict=False):
                results.append((b, f))
                if not f.ok and b.action in STOPS:
                    return results
            i = j
        return results
