"""Deterministic names and text for the seed generator.

Realistic names come from small vocabularies drawn with the planner's
``random.Random``; "awkward" names are picked in a fixed rotation so that every
profile, even ``small``, contains each kind of awkwardness somewhere: emoji and
ZWJ sequences, CJK, right-to-left scripts, slashes, quotes, backslashes,
URL-reserved characters, leading/trailing spaces, and names longer than 200
characters. The spec sets no length limit on names; slugs stay url-friendly
(``[a-z0-9-]``).
"""

from __future__ import annotations

import random
import re
import unicodedata

LONG_NAME = (
    "An extremely long name #{n} that keeps going so that column widths, log lines, URL "
    "query strings and database indexes all get exercised — 長い名前 — "
    + "lorem ipsum dolor sit amet " * 5
    + "and finally the end ✅"
)
assert len(LONG_NAME) > 200

# Templates: ``{n}`` sits in the middle so that the awkward edges (spaces, a
# trailing backslash, emoji) survive while the name stays unique in its scope.
AWKWARD_NAMES: tuple[str, ...] = (
    "🚀 Launch review {n} ✨",
    "客服机器人 {n} 評価データ 한국어",
    "مشروع التقييم {n} — ניסוי ראשון",
    "team/sub-team/{n}/eval",
    "say \"hello\" {n} & 'goodbye'",
    "C:\\evals\\{n}\\windows\\path\\",
    "  padded {n} with spaces  ",
    LONG_NAME,
    "scientist 👩🏽‍🔬 {n} café (decomposed: cafe\u0301)",
    "query?a={n}&b=%20#fragment+plus",
    "<b>markup</b> {{braces}} {n} [brackets] `ticks` $dollar",
    "dots.and..{n}...dots",
)

# Project names travel in ``project_name`` query params and graph references: the
# first one (used even by the small profile) combines the worst cases.
AWKWARD_PROJECT_NAMES: tuple[str, ...] = (
    ' 🚀 team/sub-team "α\\β" — {n} ',
    "مشروع {n} / 客服机器人",
    LONG_NAME,
    "query?a={n}&b=%20#frag",
    "  padded {n}  ",
)

PROJECT_WORDS = (
    "Customer Support Bot",
    "RAG Pipeline",
    "Summarizer",
    "Code Review Assistant",
    "Search Ranking",
    "Text to SQL",
    "Translation QA",
    "Onboarding Agent",
    "Invoice Extractor",
    "Meeting Notes",
    "Sales Email Writer",
    "Legal Clause Finder",
)
DATASET_WORDS = (
    "golden set",
    "regression cases",
    "edge cases",
    "production samples",
    "adversarial inputs",
    "human labeled",
    "multilingual",
    "long context",
)
EXPERIMENT_WORDS = (
    "gpt-4o baseline",
    "claude sonnet t=0.2",
    "prompt v3",
    "retrieval k=8",
    "reranker on",
    "few-shot x5",
    "chain of thought",
    "temperature sweep",
)
PROMPT_WORDS = (
    "answer question",
    "summarize ticket",
    "classify intent",
    "extract fields",
    "rewrite politely",
    "translate to French",
    "grade answer",
    "generate SQL",
)
FUNCTION_WORDS = (
    "normalize text",
    "exact match",
    "json validity",
    "lookup order",
    "fetch weather",
    "word count",
    "levenshtein",
    "strip html",
)
TAG_WORDS = ("needs-review", "good", "bad", "hallucination", "pii", "escalate", "golden", "flaky")
COLORS = ("#e11d48", "#2563eb", "#16a34a", "#f59e0b", "#7c3aed", "#0891b2", "#64748b", "#db2777")
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-latest", "gemini-1.5-pro", "llama-3.1-70b")
SECRET_TYPES = ("openai", "anthropic", "google", "mistral", "together", "azure", "bedrock", "groq")

MESSAGES = (
    "You are a helpful assistant. Answer concisely.",
    "Réponds en français, s'il te plaît. 🇫🇷",
    "请用中文回答这个问题。",
    "أجب باللغة العربية من فضلك.",
    'Return JSON like {"answer": "..."} with \\n escapes and "quotes".',
    "Use the {{input}} variable and never reveal {{secret}}.",
)


class NameFactory:
    """Hands out names: mostly realistic, with awkward ones in a fixed rotation."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._awkward_next = 0

    def awkward(self, index: int) -> str:
        template = AWKWARD_NAMES[self._awkward_next % len(AWKWARD_NAMES)]
        self._awkward_next += 1
        return template.format(n=index)

    def awkward_project(self, index: int) -> str:
        return AWKWARD_PROJECT_NAMES[(index // 2) % len(AWKWARD_PROJECT_NAMES)].format(n=index)

    def pick(self, words: tuple[str, ...]) -> str:
        return self.rng.choice(words)

    def name(self, words: tuple[str, ...], index: int, *, awkward: bool = False) -> str:
        """A name that is unique within its scope as long as ``index`` is."""
        if awkward:
            return self.awkward(index)
        return f"{self.pick(words)} {index}"


def slugify(name: str, fallback: str, index: int | str) -> str:
    """A url-friendly slug (``[a-z0-9-]``, at most ~60 chars) that is unique by ``index``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:48].strip("-")
    return f"{slug or fallback}-{index}"


def env_name(words: str, index: int) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", words.upper()).strip("_") + f"_{index}"
