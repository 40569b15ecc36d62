"""Guardrails as lifecycle stages: input checks before the upstream call, output checks after it.

Two stages share one `GuardrailStage`:

    route ─ guardrails ─ cache ─ guardrails_output ─▶ upstream

`guardrails` (above the cache) resolves the request's sets (defaults, its key's, its strategy's,
the body's `guardrails` field or the `x-raygate-guardrails` header), runs the input checks and,
for an answer the cache gave, the output checks. `guardrails_output` (below the cache) checks
what the upstream answered before the cache stores it, so a blocked answer is never cached and a
retried one is cached in its valid form. A request with no sets costs the resolution only (a few
dict look-ups); the stages are not in the chain at all when no set is configured.

Verdicts (set, check, type, stage, verdict, score, latency) are the record's `guardrails` fact,
counted in `raygate_guardrail_checks_total{check,verdict}` and summarised in the response header
`x-raygate-guardrails`. A blocked request is a 400, a blocked answer a 422, both with error type
`guardrail_violation` and the check type as code; messages name the set, the check and the kind
of finding, never the text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from serve_app.errors import GatewayError, bad_request
from serve_app.lifecycle import Answer, Exchange, Reply, Stage

from .base import Finding, Subject
from .engine import STOPS, Bound, Guardrails, Plan, Runner
from .stream import StreamGuard
from .text import answer_texts, request_texts, restore, write_answer_texts, write_request_texts

HEADER = "x-raygate-guardrails"
METRIC = "raygate_guardrail_checks_total"
RUN = "guardrails_run"  # ex.state key of this request's GuardRun (ex.state["guardrails"]: the client's field)
GUIDANCE = ("Your previous reply was rejected: {reason}. Reply again to the same request, and make the whole "
            "reply satisfy the requirement.")


class GuardRun:
    """One request's guardrails: its plan, placeholders, verdicts, and whether the output was checked."""

    __slots__ = ("names", "plan", "entities", "verdicts", "output_done")

    def __init__(self, names: tuple[str, ...], plan: Plan) -> None:
        self.names, self.plan = names, plan
        self.entities: dict[str, str] = {}  # PII placeholder -> original (never recorded)
        self.verdicts: list[dict[str, Any]] = []
        self.output_done = False

    def summary(self) -> str:
        return ", ".join(f"{v['stage']}:{v['set']}/{v['check']}={v['verdict']}" for v in self.verdicts)


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"'{where}' must be an array of guardrail set names", param=where,
                          code="invalid_type")
    return tuple(value)


class GuardrailStage(Stage):
    name = "guardrails"

    def __init__(self, guardrails: Guardrails, upstream: Callable[[Exchange], Awaitable[Answer]] | None,
                 metrics: Any = None, remote: Any = None) -> None:
        self.guardrails = guardrails
        self.cfg = guardrails.config
        self.upstream = upstream  # the gateway's upstream call, for `retry`
        self.metrics = metrics  # the replica's LocalMetrics
        self.runner = Runner(remote)

    # -- which sets ------------------------------------------------------------------------------
    def _resolve(self, ex: Exchange) -> tuple[str, ...]:
        cfg, rec = self.cfg, ex.record
        names: list[str] = list(cfg.defaults)
        if rec.key_id is not None and rec.key_id in cfg.keys:
            names += cfg.keys[rec.key_id]
        strategy = getattr(ex.plan, "strategy", None)
        if strategy is not None and strategy in cfg.strategies:
            names += cfg.strategies[strategy]
        asked = ex.state.get("guardrails")
        if asked is None:
            asked = rec.headers.get(HEADER)
            where = HEADER
        else:
            where = "guardrails"
        if asked is not None:
            names += _names(asked, where)
        if not names:
            return ()
        unique = tuple(dict.fromkeys(names))
        unknown = self.guardrails.unknown(unique)
        if unknown is not None:
            raise bad_request(f"unknown guardrail set {unknown!r}", param=where, code="unknown_guardrail_set")
        return unique

    async def before(self, ex: Exchange) -> Answer | None:
        if ex.kind != "chat":
            return None
        names = self._resolve(ex)
        if not names:
            return None
        run = GuardRun(names, self.guardrails.plan(names))
        ex.state[RUN] = run
        ex.record.fact("guardrails", run.verdicts)
        if run.plan.input:
            await self._input(ex, run)
        return None

    async def after(self, ex: Exchange, answer: Answer) -> Answer:
        run = ex.state.get(RUN)
        if run is None or run.output_done:
            return answer
        return await self.output(ex, answer, run)

    # -- verdicts ----------------------------------------------------------------------------------
    def _note(self, run: GuardRun, phase: str, results: list[tuple[Bound, Finding]],
              final: bool = True) -> None:
        """Verdicts: pass, or the action taken (a retry that ran out is a block), or error."""
        metrics = self.metrics
        for b, f in results:
            verdict = "pass" if f.ok else "error" if f.error else b.action
            if verdict == "retry" and final:
                verdict = "block"
            entry = {"set": b.set, "check": b.name, "type": b.type, "stage": phase, "verdict": verdict,
                     "score": f.score, "latency_ms": f.latency_ms}
            if not f.ok:
                entry["reason"] = f.reason
            run.verdicts.append(entry)
            if metrics is not None:
                metrics.inc(METRIC, (b.name, verdict))

    def _violation(self, run: GuardRun, phase: str, b: Bound, f: Finding, retries: int = 0) -> GatewayError:
        what = "request" if phase == "input" else "response"
        after = f" after {retries} retries" if retries else ""
        message = f"{what} blocked by guardrail set '{b.set}', check '{b.name}'{after}: {f.reason}"
        return GatewayError(400 if phase == "input" else 422, message, type="guardrail_violation",
                            code=b.type, headers={HEADER: run.summary()})

    @staticmethod
    def _stop(results: list[tuple[Bound, Finding]]) -> tuple[Bound, Finding] | None:
        return next(((b, f) for b, f in results if not f.ok and b.action in STOPS), None)

    # -- input -----------------------------------------------------------------------------------
    async def _input(self, ex: Exchange, run: GuardRun) -> None:
        refs = request_texts(ex.body)
        texts = [t for _, _, t in refs]
        subject: Subject = {"phase": "input", "texts": texts, "request": ex.body, "response": None,
                            "entities": run.entities}
        results = await self.runner.run(run.plan.input, subject)
        self._note(run, "input", results)
        stop = self._stop(results)
        if stop is not None:
            raise self._violation(run, "input", *stop)
        run.entities = subject.get("entities", run.entities)
        if subject["texts"] is not texts:
            write_request_texts(ex.body, refs, subject["texts"])

    # -- output ----------------------------------------------------------------------------------
    def _output_checks(self, ex: Exchange, run: GuardRun) -> Plan:
        rec, targets = ex.record, self.cfg.targets
        extra = targets.get(rec.route or "") or targets.get(rec.provider or "") if targets else None
        if extra:
            return self.guardrails.plan(tuple(dict.fromkeys(run.names + tuple(extra))))
        return run.plan

    async def output(self, ex: Exchange, answer: Answer, run: GuardRun) -> Answer:
        run.output_done = True
        plan = self._output_checks(ex, run)
        if not plan.output and not (plan.unmask and run.entities):
            answer.headers[HEADER] = run.summary()
            return answer
        if not isinstance(answer, Reply):
            answer.headers[HEADER] = run.summary()  # the input verdicts: output ones come after the headers
            guard = StreamGuard(plan.output, self.runner, ex.body, run.entities, self.cfg.stream_window,
                                plan.masks_output, plan.unmask,
                                lambda results, failed: self._streamed(run, results, failed))
            answer.chunks = guard.wrap(answer.chunks)
            return answer
        if answer.status != 200 or ex.kind != "chat":
            return answer
        return await self._reply(ex, answer, run, plan)

    async def _streamed(self, run: GuardRun, results: list[tuple[Bound, Finding]], failed: bool) -> None:
        self._note(run, "output", results)
        stop = self._stop(results) if failed else None
        if stop is not None:
            raise self._violation(run, "output", *stop)

    async def _reply(self, ex: Exchange, reply: Reply, run: GuardRun, plan: Plan) -> Reply:
        body = orjson.loads(reply.body)
        retries = 0
        while True:
            texts = answer_texts(body)
            subject: Subject = {"phase": "output", "texts": texts, "request": ex.body, "response": body,
                                "entities": run.entities}
            results = await self.runner.run(plan.output, subject)
            stop = self._stop(results)
            if (stop is None or stop[0].action != "retry" or retries >= stop[0].max_retries
                    or self.upstream is None):
                break
            self._note(run, "output", results, final=False)
            retries += 1
            reply = await self._retry(ex, reply, texts, stop[1].reason or "it failed a check")
            body = orjson.loads(reply.body)
        self._note(run, "output", results)
        if stop is not None:
            raise self._violation(run, "output", *stop, retries=retries)
        changed = subject["texts"] is not texts
        out_texts = subject["texts"]
        if plan.unmask and run.entities:
            out_texts = [restore(t, run.entities) for t in out_texts]
            changed = changed or out_texts != subject["texts"]
        if changed:
            write_answer_texts(body, out_texts)
            reply.body = orjson.dumps(body)
        reply.headers[HEADER] = run.summary()
        return reply

    async def _retry(self, ex: Exchange, reply: Reply, texts: list[str], reason: str) -> Reply:
        """The upstream again, with the rejected reply and the reason appended; usage adds up."""
        rec, original = ex.record, ex.body
        spent = rec.usage
        ex.body = {**original, "messages": [*original["messages"], {"role": "assistant", "content": texts[0]},
                                            {"role": "user", "content": GUIDANCE.format(reason=reason)}]}
        try:
            again = await self.upstream(ex)  # type: ignore[misc]
        finally:
            ex.body = original
        if spent:
            rec.usage = {k: spent.get(k, 0) + (rec.usage or {}).get(k, 0) for k in spent}
        again.headers = {**reply.headers, **again.headers}
        return again  # type: ignore[return-value]


class OutputStage(Stage):
    """`guardrails_output`: the output checks below the cache (see the module docstring)."""

    name = "guardrails_output"

    def __init__(self, main: GuardrailStage) -> None:
        self.main = main

    async def before(self, ex: Exchange) -> Answer | None:
        return None

    async def after(self, ex: Exchange, answer: Answer) -> Answer:
        run = ex.state.get(RUN)
        if run is None:
            return answer
        return await self.main.output(ex, answer, run)


def guardrail_stage(config: Any, parts: dict[str, Any]) -> GuardrailStage | None:
    """The chain factory (serve_app/chain.py): None when no guardrail set is configured."""
    if "guardrails_stage" not in parts:
        stage = None
        if config.guardrails.sets:
            from .deployment import RemoteGuardrails

            handle = parts.get("guardrails")
            guardrails = Guardrails(config.guardrails, config.placement.guardrails,
                                    remote_available=handle is not None)
            stage = GuardrailStage(guardrails, parts.get("upstream"), parts.get("metrics"),
                                   RemoteGuardrails(handle) if handle is not None else None)
        parts["guardrails_stage"] = stage
    return parts["guardrails_stage"]


def guardrail_output_stage(config: Any, parts: dict[str, Any]) -> OutputStage | None:
    """Below the cache, when there is one (else the main stage checks the output itself)."""
    main = guardrail_stage(config, parts)
    return OutputStage(main) if main is not None and parts.get("cache") is not None else None


__all__ = ["GuardRun", "GuardrailStage", "OutputStage", "guardrail_output_stage", "guardrail_stage"]
