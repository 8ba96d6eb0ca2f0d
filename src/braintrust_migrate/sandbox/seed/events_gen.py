"""The seed's event rows, generated lazily and deterministically (no I/O here).

:class:`EventsSpec` splits a total number of rows between the containers of a
seed plan (project logs, experiments, datasets); the generator classes then
produce each container's rows on demand, one trace (or one dataset row) at a
time, so nothing holds more than a trace in memory.

Determinism: every container draws from its own ``random.Random`` seeded from
``(seed, container key)`` and dataset rows are pure functions of their index, so
the same ``(profile, seed, rows)`` gives the same ids, contents and timestamps
whatever order containers are interleaved or sent in. Ids are uuid-shaped:
a per-container, per-role prefix plus 48 bits of ``n * odd + offset`` (a
bijection, so ids never collide inside a container). Root span ids depend only
on the trace index, so comments can target them without remembering anything.

Timestamps (``created``, ``metrics.start/end``) fall in 2025 (UTC): logs are
spread over the whole year in write order, each experiment runs on one day, the
first 60% of a dataset's rows fall in January–July and its later rows after, so
``--created-after/--created-before`` windows select meaningful subsets.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from math import gcd
from typing import TYPE_CHECKING, Any

from . import events_text as T
from .names import MODELS, TAG_WORDS

if TYPE_CHECKING:
    from .plan import Plan

KINDS = ("project_logs", "experiment", "dataset")
DEFAULT_ROWS = {"small": 600, "medium": 3000, "large": 20000}
DATASET_PERCENT = 15
EXPERIMENT_PERCENT = 25

START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
END_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
RANGE_MS = END_MS - START_MS
DATASET_SPLIT_MS = START_MS + RANGE_MS * 6 // 10  # initial dataset rows before, later rows after

LARGE_EVERY, LARGE_AT = 1000, 7  # log traces whose root carries a document of 150-400 KiB
DATASET_LARGE_EVERY, DATASET_LARGE_AT = 2500, 17
ATTACH_EVERY, ATTACH_AT = 5000, 2  # log traces whose root carries an uploaded attachment
EXTERNAL_EVERY, EXTERNAL_AT = 997, 5  # rows with an external_attachment reference
LOG_COMMENT_EVERY, LOG_COMMENT_AT = 29, 3
EXP_COMMENT_EVERY, EXP_COMMENT_AT = 17, 5
DS_COMMENT_EVERY, DS_COMMENT_AT = 13, 4
SECOND_COMMENT_EVERY = 10  # every tenth commented row gets a second comment

_M48 = 0x9E3779B97F4B  # odd: n -> n * _M48 + offset is a bijection modulo 2**48
_MASK48 = (1 << 48) - 1
_MASK64 = (1 << 64) - 1


def stable_salt(*parts: object) -> int:
    """A 64-bit integer derived from ``parts`` (stable across processes, unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "big")


def mix64(x: int) -> int:
    """splitmix64's finalizer: a well-mixed 64-bit value for ``x``."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


class IdSpace:
    """Deterministic uuid-shaped ids for one container and one role (row ids, span ids...)."""

    __slots__ = ("offset", "prefix")

    def __init__(self, salt: int, role: str) -> None:
        h = stable_salt(salt, role)
        h2 = mix64(h)
        self.prefix = f"{h >> 32:08x}-{(h >> 16) & 0xFFFF:04x}-4{h & 0xFFF:03x}-{8 | (h2 >> 62):x}{(h2 >> 48) & 0xFFF:03x}-"
        self.offset = h2 & _MASK48

    def __call__(self, n: int) -> str:
        return f"{self.prefix}{(n * _M48 + self.offset) & _MASK48:012x}"


_DAYS: dict[int, str] = {}
_HH = tuple(f"{h:02d}:" for h in range(24))
_MM = tuple(f"{m:02d}:" for m in range(60))
_SS = tuple(f"{s:02d}" for s in range(60))
_MS = tuple(f".{ms:03d}Z" for ms in range(1000))


def iso_ms(ms: int) -> str:
    """``ms`` since the epoch as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (from cached parts: this runs per row)."""
    day, rem = divmod(ms, 86_400_000)
    prefix = _DAYS.get(day)
    if prefix is None:
        prefix = _DAYS[day] = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%dT")
    sec, milli = divmod(rem, 1000)
    return "".join((prefix, _HH[sec // 3600], _MM[sec // 60 % 60], _SS[sec % 60], _MS[milli]))


def _coprime_step(n: int, salt: int) -> int:
    step = (salt % n) | 1 if n > 1 else 1
    while gcd(step, n) != 1:
        step += 2
    return step


# --------------------------------------------------------------------------- the split


@dataclass(frozen=True)
class Container:
    kind: str  # "project_logs" | "experiment" | "dataset"
    key: str  # plan key of the project / experiment / dataset
    ordinal: int  # position among the containers of its kind
    dataset: str | None = None  # experiments: plan key of the dataset they evaluate


@dataclass(frozen=True)
class DatasetShape:
    """How a dataset's rows are written: new rows (``initial`` before the experiments pin the
    dataset version, ``later`` after), then round 1 (``replace1`` full replacements of initial
    rows, ``merge`` ``_is_merge`` rows), then round 2 (``replace2`` of the replace1 rows again,
    ``delete`` ``_object_delete`` of later rows)."""

    initial: int = 0
    later: int = 0
    replace1: int = 0
    merge: int = 0
    replace2: int = 0
    delete: int = 0

    @property
    def new(self) -> int:
        return self.initial + self.later

    @property
    def rows(self) -> int:
        return self.new + self.replace1 + self.merge + self.replace2 + self.delete

    @property
    def live(self) -> int:
        return self.new - self.delete


def dataset_shape(budget: int) -> DatasetShape:
    if budget <= 0:
        return DatasetShape()

    def part(percent: int) -> int:
        return max(1, budget * percent // 100) if budget >= 20 else 0

    delete, replace1, merge = part(4), max(part(6), 2 * (budget >= 20)), part(5)
    replace2 = max(0, min(part(3), replace1 - 1))  # some rows are replaced once, some twice
    new = budget - delete - replace1 - merge - replace2
    initial = max(1, new * 6 // 10)
    return DatasetShape(initial, new - initial, replace1, merge, replace2, delete)


def _split(total: int, n: int) -> list[int]:
    base, extra = divmod(total, n)
    return [base + (i < extra) for i in range(n)]


@dataclass
class EventsSpec:
    """How ``rows`` event rows are shared between the containers of a plan."""

    seed: int
    rows: int
    logs: list[Container]
    experiments: list[Container]
    datasets: list[Container]
    budget: dict[str, int]
    shapes: dict[str, DatasetShape]

    @classmethod
    def from_plan(cls, plan: Plan, rows: int) -> EventsSpec:
        logs: list[Container] = []
        exps: list[Container] = []
        dss: list[Container] = []
        for key, op in plan.ops.items():
            if op.kind == "project":
                logs.append(Container("project_logs", key, len(logs)))
            elif op.kind == "dataset":
                dss.append(Container("dataset", key, len(dss)))
            elif op.kind == "experiment":
                ref = op.body.get("dataset_id") if isinstance(op.body, dict) else None
                exps.append(Container("experiment", key, len(exps), getattr(ref, "key", None)))
        return cls.build(plan.seed, rows, logs, exps, dss)

    @classmethod
    def build(
        cls, seed: int, rows: int, logs: list[Container], exps: list[Container], dss: list[Container]
    ) -> EventsSpec:
        rows = max(0, rows)
        n_ds = rows * DATASET_PERCENT // 100 if dss else 0
        if dss and rows >= len(dss):
            n_ds = max(n_ds, len(dss))  # every dataset gets a row to pin a version to
        n_exp = rows * EXPERIMENT_PERCENT // 100 if exps else 0
        n_logs = rows - n_ds - n_exp
        if not logs:
            n_ds += n_logs if dss else 0
            n_exp += n_logs if not dss else 0
            n_logs = 0
        budget: dict[str, int] = {}
        for group, total in ((logs, n_logs), (exps, n_exp), (dss, n_ds)):
            if group:
                budget.update(zip((c.key for c in group), _split(total, len(group)), strict=True))
        shapes = {c.key: dataset_shape(budget[c.key]) for c in dss}
        return cls(seed, rows, logs, exps, dss, budget, shapes)

    def container(self, key: str) -> Container:
        for c in (*self.logs, *self.experiments, *self.datasets):
            if c.key == key:
                return c
        raise KeyError(key)

    def live_rows(self, kind: str) -> int:
        if kind == "dataset":
            return sum(s.live for s in self.shapes.values())
        group = self.logs if kind == "project_logs" else self.experiments
        return sum(self.budget[c.key] for c in group)


# --------------------------------------------------------------------------- attachments


@dataclass(frozen=True)
class PendingAttachment:
    key: str
    filename: str
    content_type: str
    n: int
    salt: int

    def payload(self) -> bytes:
        return T.attachment_payload(self.n, self.salt)[2]


class Attachments:
    """Hands out attachment references; in ``upload`` mode they are ``braintrust_attachment``s whose
    bytes the caller must upload (``pending``), otherwise ``external_attachment`` URLs."""

    def __init__(self, seed: int, upload: bool) -> None:
        self.seed = seed
        self.upload = upload
        self.pending: list[PendingAttachment] = []
        self.count = 0
        self._keys = IdSpace(stable_salt(seed, "attachments"), "key")

    def reference(self, salt: int, n: int) -> dict[str, Any]:
        if not self.upload:
            return external_reference(salt, n)
        filename, content_type, _ = T.attachment_payload(n, salt)
        key = self._keys(self.count)
        self.count += 1
        self.pending.append(PendingAttachment(key, filename, content_type, n, salt))
        return {
            "type": "braintrust_attachment",
            "key": key,
            "filename": filename,
            "content_type": content_type,
        }


def external_reference(salt: int, n: int) -> dict[str, Any]:
    return {
        "type": "external_attachment",
        "url": f"https://assets.example.com/seed/{salt % 100_000:05d}/{n}/scan%20{n}.pdf?sig=abc&v=2",
        "filename": f"scan {n}.pdf",
        "content_type": "application/pdf",
    }


# --------------------------------------------------------------------------- content helpers

_Q = tuple(q + s for q in T.QUESTION_STEMS for s in T.TOPIC_SUFFIXES)
_NQ, _NA, _ND = len(_Q), len(T.ANSWERS), len(T.DOCS)
_LLM_META = tuple(
    {"model": m, "temperature": temp, "max_tokens": mt, "provider": p}
    for m, p in zip(MODELS, T.PROVIDERS, strict=False)
    for temp in (0.0, 0.2, 0.7)
    for mt in (512, 1024, 4096)
)
_TAG_SETS = tuple([t] for t in TAG_WORDS) + tuple([a, b] for a, b in pairwise(TAG_WORDS))
_SCORER_SPAN_ATTRS = tuple({"name": s, "type": "score", "purpose": "scorer"} for s in T.SCORER_NAMES)
_ROOT_ATTRS = tuple({"name": n, "type": "task"} for n in T.ROOT_NAMES)
_FN_ATTRS = tuple({"name": n, "type": "function"} for n in T.FUNCTION_NAMES)
_TOOL_ATTRS = tuple({"name": name, "type": "tool"} for name, _ in T.TOOL_CALLS)
_LLM_ATTRS = (
    {"name": "Chat Completion", "type": "llm"},
    {"name": "anthropic.messages.create", "type": "llm"},
)
_EVAL_ATTRS = {"name": "eval", "type": "eval"}
_TASK_ATTRS = {"name": "task", "type": "task"}
_DOC_LISTS = tuple(
    [{"id": f"kb-{100 + (i + j) % _ND}", "text": T.DOCS[(i + j) % _ND]} for j in range(1 + i % 3)]
    for i in range(_ND)
)
_SOURCES = ("app", "api", "external")
_CONTEXTS = tuple(f"Context:\n{d}\n\n{T.DOCS[(i + 3) % _ND]}" for i, d in enumerate(T.DOCS))


def _large_document(salt: int, t: int) -> str:
    size = 150 * 1024 + mix64(salt ^ t) % (250 * 1024)
    return T.BIG_TEXT[:size]


# --------------------------------------------------------------------------- project logs


class LogTraces:
    """One project's logs: traces of 1-20 spans (a task root; nested function, llm, tool and score spans)."""

    def __init__(self, seed: int, c: Container, budget: int, attachments: Attachments) -> None:
        self.container = c
        self.budget = budget
        self.salt = stable_salt(seed, "project_logs", c.key)
        self.rng = random.Random(self.salt)
        self.attachments = attachments
        self.root_ids = IdSpace(self.salt, "root-row")
        self.root_spans = IdSpace(self.salt, "root-span")
        self.row_ids = IdSpace(self.salt, "row")
        self.span_ids = IdSpace(self.salt, "span")
        self.traces = 0
        self.rows = 0

    def _span_count(self) -> int:
        r = self.rng.random()
        if r < 0.15:
            return 1
        if r < 0.65:
            return 2 + int(self.rng.random() * 4)
        if r < 0.90:
            return 6 + int(self.rng.random() * 5)
        return 11 + int(self.rng.random() * 10)

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        budget = self.budget
        t = n = written = 0
        while written < budget:
            k = min(self._span_count(), budget - written)
            start = START_MS + written * RANGE_MS // budget + int(self.rng.random() * 60_000)
            rows = self._trace(t, k, n, start)
            n += k - 1
            written += k
            t += 1
            self.traces, self.rows = t, written
            yield rows

    # Small methods on purpose: per-row work stays cheap, also under tracemalloc (which, on
    # Python 3.11, pays per allocation for the line number of the allocating code).

    def _root(self, t: int, start: int) -> tuple[dict[str, Any], int, int]:
        rnd = self.rng.random
        qi = int(rnd() * _NQ)
        ai = int(rnd() * _NA)
        q = _Q[qi]
        root_sid = self.root_spans(t)
        form = int(rnd() * 4)
        if t % LARGE_EVERY == LARGE_AT:
            inp: Any = {"question": q, "document": _large_document(self.salt, t)}
        elif t % ATTACH_EVERY == ATTACH_AT:
            inp = {"question": q, "attachment": self.attachments.reference(self.salt, t // ATTACH_EVERY)}
        elif t % EXTERNAL_EVERY == EXTERNAL_AT:
            inp = {"question": q, "scan": external_reference(self.salt, t)}
        elif form == 0:
            inp = {"question": q}
        elif form == 1:
            inp = {"messages": [{"role": "user", "content": q}], "conversation_id": f"conv-{qi:03d}-{t}"}
        elif form == 2:
            inp = q
        else:
            inp = {"ticket_id": f"SUP-{70000 + t}", "subject": q[:60], "body": q}
        root: dict[str, Any] = {
            "id": self.root_ids(t),
            "span_id": root_sid,
            "root_span_id": root_sid,
            "created": iso_ms(start),
            "span_attributes": _ROOT_ATTRS[int(rnd() * len(_ROOT_ATTRS))],
            "input": inp,
            "output": T.ANSWERS[ai],
            "metadata": {
                "model": MODELS[int(rnd() * len(MODELS))],
                "user_id": f"user-{int(rnd() * 5000):05d}",
                "session_id": f"sess-{self.salt % 100_000:05d}-{t // 7}",
                "environment": T.ENVS[t % len(T.ENVS)],
                "region": T.REGIONS[int(rnd() * len(T.REGIONS))],
                "app_version": f"2.{t % 13}.{t % 5}",
            },
        }
        if rnd() < 0.12:
            root["tags"] = _TAG_SETS[int(rnd() * len(_TAG_SETS))]
        return root, qi, ai

    def _child(self, n: int, root_sid: str, parent_sid: str, s: int) -> dict[str, Any]:
        return {
            "id": self.row_ids(n),
            "span_id": self.span_ids(n),
            "root_span_id": root_sid,
            "span_parents": [parent_sid],
            "created": iso_ms(s),
        }

    def _llm(self, row: dict[str, Any], s: int, t: int, i: int, qi: int, ai: int) -> tuple[int, int, int]:
        rnd = self.rng.random
        pt = 200 + int(rnd() * 1800)
        ct = 20 + int(rnd() * 600)
        e = s + 250 + int(rnd() * 3500)
        row["span_attributes"] = _LLM_ATTRS[i & 1]
        msgs = [{"role": "system", "content": T.SYSTEM_PROMPTS[qi % len(T.SYSTEM_PROMPTS)]}]
        if rnd() < 0.6:
            msgs.append({"role": "user", "content": _CONTEXTS[(qi + i) % _ND]})
        msgs.append({"role": "user", "content": _Q[qi]})
        row["input"] = msgs
        if rnd() < 0.5:
            row["output"] = [{"role": "assistant", "content": T.ANSWERS[(ai + i) % _NA]}]
        else:
            name, args = T.TOOL_CALLS[(qi + i) % len(T.TOOL_CALLS)]
            call = {"id": f"call_{t}_{i}", "type": "function", "function": {"name": name, "arguments": args}}
            content = T.SHORT_ANSWERS[i % len(T.SHORT_ANSWERS)]
            row["output"] = [{"role": "assistant", "content": content, "tool_calls": [call]}]
        row["metadata"] = _LLM_META[(qi + i) % len(_LLM_META)]
        row["metrics"] = {
            "start": s / 1000,
            "end": e / 1000,
            "prompt_tokens": pt,
            "completion_tokens": ct,
            "tokens": pt + ct,
            "time_to_first_token": round(0.1 + rnd(), 3),
        }
        return e, pt, ct

    def _tool(self, row: dict[str, Any], s: int, t: int, i: int, qi: int, failed: bool) -> int:
        rnd = self.rng.random
        ti = (qi + i) % len(T.TOOL_CALLS)
        e = s + 15 + int(rnd() * 900)
        row["span_attributes"] = _TOOL_ATTRS[ti]
        row["input"] = T.TOOL_CALLS[ti][1]
        if failed and rnd() < 0.5:
            row["error"] = T.ERRORS[t % len(T.ERRORS)]
            row["output"] = None
        else:
            row["output"] = T.TOOL_OUTPUTS[ti]
        row["metrics"] = {"start": s / 1000, "end": e / 1000}
        return e

    def _function(self, row: dict[str, Any], s: int, i: int, qi: int) -> int:
        e = s + 3 + int(self.rng.random() * 150)
        row["span_attributes"] = _FN_ATTRS[(qi + i) % len(_FN_ATTRS)]
        row["input"] = {"query": _Q[qi], "k": 4}
        row["output"] = {"documents": _DOC_LISTS[(qi + i) % _ND]}
        row["metrics"] = {"start": s / 1000, "end": e / 1000}
        return e

    def _score(self, row: dict[str, Any], s: int, i: int, ai: int) -> tuple[int, str, float]:
        rnd = self.rng.random
        si = (ai + i) % len(_SCORER_SPAN_ATTRS)
        v = round(rnd(), 3)
        e = s + 80 + int(rnd() * 900)
        name = T.SCORER_NAMES[si]
        row["span_attributes"] = _SCORER_SPAN_ATTRS[si]
        row["input"] = {"output": T.SHORT_ANSWERS[ai % len(T.SHORT_ANSWERS)]}
        row["output"] = {"score": v, "rationale": T.COMMENTS[si % len(T.COMMENTS)]}
        row["scores"] = {name: v}
        row["metrics"] = {"start": s / 1000, "end": e / 1000}
        return e, name, v

    def _trace(self, t: int, k: int, n: int, start: int) -> list[dict[str, Any]]:
        rnd = self.rng.random
        root, qi, ai = self._root(t, start)
        root_sid = root["span_id"]
        failed = rnd() < 0.04
        rows = [root]
        # Container spans (the root, function spans) can parent later spans: [row, end_ms, parent index].
        containers: list[list[Any]] = [[root, start, -1]]
        cursor = start + 3
        prompt_total = completion_total = 0
        scores: dict[str, float] = {}
        for i in range(1, k):
            kind = rnd()
            # Score spans hang off the root; other spans off the latest container span, or any.
            p = 0 if kind >= 0.9 else len(containers) - 1 if rnd() < 0.65 else int(rnd() * len(containers))
            s = cursor + 2 + int(rnd() * 40)
            row = self._child(n + i, root_sid, containers[p][0]["span_id"], s)
            if kind < 0.45:
                e, pt, ct = self._llm(row, s, t, i, qi, ai)
                prompt_total += pt
                completion_total += ct
            elif kind < 0.70:
                e = self._tool(row, s, t, i, qi, failed)
            elif kind < 0.90:
                e = self._function(row, s, i, qi)
                containers.append([row, e, p])
            else:
                e, name, v = self._score(row, s, i, ai)
                scores[name] = v
            cursor = e
            while p >= 0:  # the span's end extends its ancestors' ends
                anc = containers[p]
                if anc[1] >= e:
                    break
                anc[1] = e
                p = anc[2]
            rows.append(row)
        end = max(cursor, containers[0][1]) + 2 + int(rnd() * 20)
        for anc in containers[1:]:
            anc[0]["metrics"]["end"] = anc[1] / 1000
        metrics: dict[str, Any] = {"start": start / 1000, "end": end / 1000}
        if prompt_total:
            metrics["prompt_tokens"] = prompt_total
            metrics["completion_tokens"] = completion_total
            metrics["tokens"] = prompt_total + completion_total
        root["metrics"] = metrics
        if rnd() < 0.3:
            scores["Helpfulness"] = round(rnd(), 2)
        if scores:
            root["scores"] = scores
        if failed:
            root["error"] = T.ERRORS[t % len(T.ERRORS)]
        return rows

    def feedback(self) -> Iterator[dict[str, Any]]:
        """Comments on the root spans of some traces (call after iterating)."""
        yield from _comments(self.root_ids, self.traces, LOG_COMMENT_EVERY, LOG_COMMENT_AT, self.salt)


def _comments(ids: IdSpace, count: int, every: int, at: int, salt: int) -> Iterator[dict[str, Any]]:
    for t in range(at, count, every):
        m = t // every
        item: dict[str, Any] = {
            "id": ids(t),
            "comment": T.COMMENTS[(salt + m) % len(T.COMMENTS)],
            "source": _SOURCES[m % 3],
        }
        if m % 4 == 1:
            item["metadata"] = {"user_id": f"reviewer-{m % 7}", "queue": "weekly review"}
        yield item
        if m % SECOND_COMMENT_EVERY == 0:
            yield {
                "id": ids(t),
                "comment": f"Follow-up #{m}: fixed in prompt v{m % 9 + 2}. ✔",
                "source": "app",
            }


def comment_count(count: int, every: int, at: int) -> int:
    firsts = len(range(at, count, every))
    return firsts + len(range(0, firsts, SECOND_COMMENT_EVERY))


# --------------------------------------------------------------------------- datasets


class DatasetRows:
    """One dataset's rows: pure functions of the row index (experiments re-derive inputs from them)."""

    def __init__(self, seed: int, c: Container, shape: DatasetShape) -> None:
        self.container = c
        self.shape = shape
        self.salt = stable_salt(seed, "dataset", c.key)
        self.ids = IdSpace(self.salt, "row")
        self.spans = IdSpace(self.salt, "span")
        self._step1 = _coprime_step(max(shape.new, 1), mix64(self.salt))
        self._step2 = _coprime_step(max(shape.later, 1), mix64(self.salt ^ 0xD))

    def row_id(self, idx: int) -> str:
        return self.ids(idx)

    def created_ms(self, idx: int) -> int:
        s = self.shape
        if idx < s.initial:
            base = START_MS + idx * (DATASET_SPLIT_MS - START_MS) // s.initial
        else:
            base = DATASET_SPLIT_MS + (idx - s.initial) * (END_MS - DATASET_SPLIT_MS) // max(s.later, 1)
        return base + mix64(self.salt ^ idx) % 3_600_000

    def input(self, idx: int) -> Any:
        h = mix64(self.salt + idx)
        q = _Q[h % _NQ]
        form = (h >> 20) % 4
        if idx % DATASET_LARGE_EVERY == DATASET_LARGE_AT:
            return {"question": q, "context": _large_document(self.salt, idx)}
        if idx % EXTERNAL_EVERY == EXTERNAL_AT:
            return {"question": q, "scan": external_reference(self.salt, idx)}
        if form == 0:
            return {"question": q}
        if form == 1:
            return {"question": q, "context": T.DOCS[(h >> 24) % _ND]}
        if form == 2:
            return {
                "messages": [
                    {"role": "user", "content": _CONTEXTS[(h >> 24) % _ND]},
                    {"role": "user", "content": q},
                ]
            }
        return q

    def expected(self, idx: int, revision: int = 1) -> Any:
        h = mix64(self.salt + idx)
        a = T.ANSWERS[((h >> 32) + revision - 1) % _NA]
        if revision > 1:
            return {"answer": a, "revision": revision, "citations": [f"kb-{100 + (h >> 40) % _ND}"]}
        return a if (h >> 28) & 1 else {"answer": a, "citations": [f"kb-{100 + (h >> 40) % _ND}"]}

    def row(self, idx: int, revision: int = 1) -> dict[str, Any]:
        h = mix64(self.salt + idx)
        sid = self.spans(idx)
        row: dict[str, Any] = {
            "id": self.ids(idx),
            "span_id": sid,
            "root_span_id": sid,
            "created": iso_ms(self.created_ms(idx)),
            "input": self.input(idx),
            "expected": self.expected(idx, revision),
            "metadata": {
                "split": f"test-{idx % 4}" if idx % 5 else "train",
                "source": ("prod", "synthetic", "vendor")[(h >> 44) % 3],
                "difficulty": ("easy", "medium", "hard")[(h >> 48) % 3],
                "revision": revision,
                "labeler": f"labeler-{(h >> 52) % 9}",
            },
        }
        if (h >> 56) % 4 == 0:
            row["tags"] = _TAG_SETS[(h >> 58) % len(_TAG_SETS)]
        return row

    def merge_row(self, idx: int) -> dict[str, Any]:
        h = mix64(self.salt ^ (idx << 1))
        return {
            "id": self.ids(idx),
            "_is_merge": True,
            "metadata": {
                "reviewed": True,
                "reviewer": f"reviewer-{h % 7}",
                "review_score": (h >> 8) % 100 / 100,
            },
        }

    def delete_row(self, idx: int) -> dict[str, Any]:
        return {"id": self.ids(idx), "_object_delete": True}

    # Which rows each round touches (disjoint within a round; see DatasetShape).
    def _round1(self) -> Iterator[tuple[str, int]]:
        s = self.shape
        if not s.replace1 and not s.merge:
            return
        replaced = merged = 0
        for k in range(s.new):
            idx = (k * self._step1 + self.salt) % s.new
            if replaced < s.replace1 and idx < s.initial:
                replaced += 1
                yield "replace", idx
            elif merged < s.merge:
                merged += 1
                yield "merge", idx
            if replaced == s.replace1 and merged == s.merge:
                return

    def replaced_indexes(self, round_: int) -> Iterator[int]:
        limit = self.shape.replace1 if round_ == 1 else self.shape.replace2
        n = 0
        for what, idx in self._round1():
            if n >= limit:
                return
            if what == "replace":
                n += 1
                yield idx

    def merged_indexes(self) -> Iterator[int]:
        return (idx for what, idx in self._round1() if what == "merge")

    def deleted_indexes(self) -> Iterator[int]:
        s = self.shape
        for k in range(s.delete):
            yield s.initial + (k * self._step2 + self.salt) % s.later

    def initial_rows(self) -> Iterator[dict[str, Any]]:
        return (self.row(i) for i in range(self.shape.initial))

    def later_rows(self) -> Iterator[dict[str, Any]]:
        return (self.row(i) for i in range(self.shape.initial, self.shape.new))

    def round1_rows(self) -> Iterator[dict[str, Any]]:
        for what, idx in self._round1():
            yield self.row(idx, 2) if what == "replace" else self.merge_row(idx)

    def round2_rows(self) -> Iterator[dict[str, Any]]:
        for idx in self.replaced_indexes(2):
            yield self.row(idx, 3)
        for idx in self.deleted_indexes():
            yield self.delete_row(idx)

    def feedback(self) -> Iterator[dict[str, Any]]:
        """Comments on initial rows (never deleted)."""
        yield from _comments(self.ids, self.shape.initial, DS_COMMENT_EVERY, DS_COMMENT_AT, self.salt)

    def comment_count(self) -> int:
        return comment_count(self.shape.initial, DS_COMMENT_EVERY, DS_COMMENT_AT)


# --------------------------------------------------------------------------- experiments


class ExperimentTraces:
    """One experiment's rows: an ``eval`` root per dataset row (its ``origin``), a task span with an
    llm (and sometimes a tool) span, and one to three scorer spans."""

    def __init__(
        self,
        seed: int,
        c: Container,
        budget: int,
        dataset: DatasetRows | None = None,
        dataset_id: str | None = None,
        known_xacts: dict[str, str] | None = None,
    ) -> None:
        self.container = c
        self.budget = budget
        self.salt = stable_salt(seed, "experiment", c.key)
        self.rng = random.Random(self.salt)
        self.dataset = dataset if dataset is not None and dataset.shape.initial and dataset_id else None
        self.dataset_id = dataset_id
        self.known_xacts = known_xacts or {}
        self.root_ids = IdSpace(self.salt, "root-row")
        self.root_spans = IdSpace(self.salt, "root-span")
        self.row_ids = IdSpace(self.salt, "row")
        self.span_ids = IdSpace(self.salt, "span")
        # Each experiment runs on one day of the year, one eval case every ~2.5 s.
        self.run_start = START_MS + mix64(self.salt) % (RANGE_MS - 2 * 86_400_000)
        self.traces = 0
        self.rows = 0

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        t = n = written = 0
        budget = self.budget
        while written < budget:
            rows = self._trace(t, n, budget - written)
            n += len(rows) - 1
            written += len(rows)
            t += 1
            self.traces, self.rows = t, written
            yield rows

    def _child(self, n: int, root_sid: str, parent_sid: str, s: int, attrs: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.row_ids(n),
            "span_id": self.span_ids(n),
            "root_span_id": root_sid,
            "span_parents": [parent_sid],
            "created": iso_ms(s),
            "span_attributes": attrs,
        }

    def _root(self, t: int, start: int, ai: int) -> dict[str, Any]:
        rnd = self.rng.random
        root_sid = self.root_spans(t)
        root: dict[str, Any] = {
            "id": self.root_ids(t),
            "span_id": root_sid,
            "root_span_id": root_sid,
            "created": iso_ms(start),
            "span_attributes": _EVAL_ATTRS,
        }
        ds = self.dataset
        if ds is not None:
            r = t % ds.shape.initial
            root["input"] = ds.input(r)
            root["expected"] = ds.expected(r)
            root["origin"] = self._origin(ds, r)
            trial = t // ds.shape.initial
        else:
            q = _Q[int(rnd() * _NQ)]
            root["input"] = {"question": q} if t % 3 else q
            root["expected"] = T.ANSWERS[(ai + 1) % _NA]
            trial = 0
        root["output"] = T.ANSWERS[ai]
        root["metadata"] = {
            "model": MODELS[(self.salt + t) % len(MODELS)],
            "trial": trial,
            "temperature": 0.2,
        }
        if t % EXTERNAL_EVERY == EXTERNAL_AT:
            root["metadata"]["screenshot"] = external_reference(self.salt, t)
        if rnd() < 0.1:
            root["tags"] = _TAG_SETS[int(rnd() * len(_TAG_SETS))]
        return root

    def _origin(self, ds: DatasetRows, r: int) -> dict[str, Any]:
        row_id = ds.row_id(r)
        origin = {
            "object_type": "dataset",
            "object_id": self.dataset_id,
            "id": row_id,
            "created": iso_ms(ds.created_ms(r)),
        }
        xact = self.known_xacts.get(row_id)
        if xact:
            origin["_xact_id"] = xact
        return origin

    def _llm(self, row: dict[str, Any], t: int, ai: int, s: int, e: int, pt: int, ct: int) -> dict[str, Any]:
        inp = row.pop("_input")
        row["input"] = [
            {"role": "system", "content": T.SYSTEM_PROMPTS[t % len(T.SYSTEM_PROMPTS)]},
            {"role": "user", "content": inp if isinstance(inp, str) else _Q[ai % _NQ]},
        ]
        row["output"] = [{"role": "assistant", "content": T.ANSWERS[ai]}]
        row["metadata"] = _LLM_META[(self.salt + t) % len(_LLM_META)]
        row["metrics"] = {
            "start": s / 1000,
            "end": e / 1000,
            "prompt_tokens": pt,
            "completion_tokens": ct,
            "tokens": pt + ct,
        }
        return row

    def _score(self, row: dict[str, Any], root: dict[str, Any], name: str, v: float | None, s: int) -> None:
        row["input"] = {"output": root["output"], "expected": root["expected"]}
        row["output"] = {"score": v}
        row["scores"] = {name: v}
        row["metrics"] = {"start": s / 1000, "end": (s + 90) / 1000}

    def _trace(self, t: int, n: int, room: int) -> list[dict[str, Any]]:
        rnd = self.rng.random
        start = self.run_start + t * 2500 + int(rnd() * 800)
        ai = int(rnd() * _NA)
        root = self._root(t, start, ai)
        root_sid = root["span_id"]
        rows = [root]
        task_sid = ""
        task_end = start + 400 + int(rnd() * 3000)
        if room > 1:
            task = self._child(n + 1, root_sid, root_sid, start + 1, _TASK_ATTRS)
            task_sid = task["span_id"]
            task["input"] = root["input"]
            task["output"] = root["output"]
            task["metrics"] = {"start": (start + 1) / 1000, "end": task_end / 1000}
            if rnd() < 0.02:
                task["error"] = root["error"] = T.ERRORS[t % len(T.ERRORS)]
            rows.append(task)
        pt = 300 + int(rnd() * 1500)
        ct = 30 + int(rnd() * 400)
        if room > 2:
            llm = self._child(n + 2, root_sid, task_sid, start + 5, _LLM_ATTRS[0])
            llm["_input"] = root["input"]
            rows.append(self._llm(llm, t, ai, start + 5, task_end - 5, pt, ct))
        used = 3
        if room > used and rnd() < 0.35:
            ti = t % len(T.TOOL_CALLS)
            tool = self._child(n + used, root_sid, task_sid, start + 7, _TOOL_ATTRS[ti])
            tool["input"] = T.TOOL_CALLS[ti][1]
            tool["output"] = T.TOOL_OUTPUTS[ti]
            tool["metrics"] = {"start": (start + 7) / 1000, "end": (start + 90) / 1000}
            rows.append(tool)
            used += 1
        scores: dict[str, float | None] = {}
        end = task_end if room > 1 else start + 500
        for j in range(1 + int(rnd() * 3)):
            si = (t + j) % len(T.SCORER_NAMES)
            name = T.SCORER_NAMES[si]
            v = None if "error" in root and j == 0 else round(rnd(), 3)
            scores[name] = v
            if room <= used:
                continue
            s = end + 1 + j * 100
            row = self._child(n + used, root_sid, root_sid, s, _SCORER_SPAN_ATTRS[si])
            self._score(row, root, name, v, s)
            rows.append(row)
            used += 1
            end = s + 90
        root["scores"] = scores
        root["metrics"] = {
            "start": start / 1000,
            "end": (end + 3) / 1000,
            "prompt_tokens": pt,
            "completion_tokens": ct,
            "tokens": pt + ct,
        }
        return rows

    def feedback(self) -> Iterator[dict[str, Any]]:
        yield from _comments(self.root_ids, self.traces, EXP_COMMENT_EVERY, EXP_COMMENT_AT, self.salt)


def round_robin(iterators: list[Iterator[Any]], chunk: int = 4) -> Iterator[Any]:
    """Interleave ``iterators``, ``chunk`` items from each in turn, until all are exhausted."""
    active = list(iterators)
    while active:
        still = []
        for it in active:
            for _ in range(chunk):
                item = next(it, None)
                if item is None:
                    break
                yield item
            else:
                still.append(it)
        active = still
