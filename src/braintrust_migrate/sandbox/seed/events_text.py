"""Text pools and attachment payloads for the seed's event rows.

Rows are assembled from these precomputed fragments by index arithmetic, so a
row costs a few lookups instead of string building. The pools mix languages,
scripts, emoji, combining characters, quotes, backslashes and newlines so that
every layer a migrator touches (JSON, SQL, URLs, terminals) sees them.
"""

from __future__ import annotations

import struct
import zlib

QUESTION_STEMS = (
    "How do I reset my password if I no longer have access to my email?",
    "Can you summarize the attached support ticket in two sentences?",
    "What is the refund policy for annual plans purchased through a reseller?",
    "Why does the dashboard show a different total than the CSV export?",
    "Translate the following paragraph into French and keep the tone formal:",
    "Write a SQL query that returns the ten customers with the highest lifetime value.",
    "Is it safe to rotate the API key while background jobs are still running?",
    "Which regions support data residency for the EU, and how do I pick one?",
    "Comment puis-je exporter mes données au format Parquet ?",
    "¿Cuál es el límite de solicitudes por minuto para la API pública?",
    "如何在不停机的情况下迁移到新的数据库集群？",
    "API のレート制限に達したときの推奨される再試行戦略は何ですか？",
    "كيف يمكنني إضافة عضو جديد إلى فريقي دون منحه صلاحيات المسؤول؟",
    "Wie kann ich eine Rechnung für das vergangene Quartal erneut herunterladen?",
    "My order #A-1042 arrived damaged 📦💥 — what are my options?",
    'The config says "timeout": "30s" but requests fail after 10s. Why?',
    "Explain the difference between p50 and p99 latency to a non-engineer.",
    "Generate three subject lines for a re-engagement email campaign ✉️.",
    "Does the C:\\Program Files\\Agent\\ path need to be whitelisted by the antivirus?",
    "What's the weather going to be like in São Paulo this weekend? ☀️🌧️",
)
TOPIC_SUFFIXES = (
    "",
    " Please answer briefly.",
    " I'm on the Pro plan.",
    " This is urgent!!",
    " (asked again after the previous answer was wrong)",
    " — customer is a 👩🏽‍💻 developer.",
    "\nContext: they already tried clearing the cache.",
    " Respond in Markdown with a table.",
)
ANSWERS = (
    "You can reset your password from the sign-in page by choosing “Forgot password” and then "
    "“Use another method”. We will verify your identity with the phone number on file and send a "
    "one-time code. Once you are signed in, update your recovery email under Settings → Security.",
    "The customer reports intermittent 502 errors when uploading files larger than 100 MB through "
    "the web app. They request a workaround and an ETA for a fix; support suggested the CLI uploader.",
    "Annual plans bought through a reseller are refunded by the reseller, not by us. We can issue a "
    "prorated credit on request, but the refund itself must go through the original invoice.",
    "The dashboard total is computed in the account's time zone, while the CSV export uses UTC. "
    "Rows near midnight therefore fall on different days; set the export time zone to match.",
    "Nous vous remercions de votre patience. Votre demande a été transmise à l'équipe concernée, "
    "qui reviendra vers vous dans un délai de deux jours ouvrés.",
    "SELECT customer_id, SUM(amount) AS lifetime_value\nFROM orders\nWHERE status = 'paid'\n"
    "GROUP BY customer_id\nORDER BY lifetime_value DESC\nLIMIT 10;",
    "Yes. Create the new key first, deploy it to the workers, wait for in-flight jobs to drain, "
    "then revoke the old key. Both keys are valid at the same time, so nothing fails in between.",
    "EU data residency is available in Frankfurt (eu-central-1) and Dublin (eu-west-1). Pick the "
    "region when the organization is created; it cannot be changed afterwards without a migration.",
    "Utilisez « Exporter » puis choisissez Parquet ; les colonnes imbriquées sont aplaties.",
    "El límite es de 600 solicitudes por minuto por clave; las respuestas 429 incluyen Retry-After.",
    "可以先搭建只读副本，完成数据同步后切换写入流量，整个过程无需停机。",
    "指数バックオフとジッターを組み合わせ、Retry-After ヘッダーがあればそれに従ってください。",
    "يمكنك دعوة العضو من صفحة الإعدادات واختيار دور «مشاهد» بدلاً من «مسؤول».",
    "Unter Abrechnung → Rechnungen finden Sie alle Rechnungen der letzten 24 Monate als PDF.",
    "I'm sorry your order arrived damaged 😞. I've issued a replacement (order #A-1042-R) and a "
    "prepaid return label; you don't need to send the damaged item back unless you want to.",
    'The "timeout" key is read by the CLI only. The server-side gateway enforces its own 10 s '
    "limit, so long requests must use the async endpoint and poll the job status instead.",
    "p50 is the time half of the requests beat; p99 is the time all but the slowest 1% beat. "
    "p50 tells you what a typical user feels, p99 what your unluckiest users feel.",
    "1. We miss you — here's 20% off 🎁\n2. Your projects are waiting for you\n3. New: faster exports",
    "No: the agent only reads from C:\\ProgramData\\Agent\\cache\\, which is already excluded by "
    "default. Whitelisting the install directory is optional.",
    "Sunny on Saturday with a high of 29 °C, showers likely on Sunday afternoon (70%).",
)
SHORT_ANSWERS = (
    "Sure — here is the answer.",
    "I couldn't find that in the docs.",
    "Done ✅",
    "Let me check the order status first.",
    "¡Claro! Aquí tienes la respuesta.",
    "好的，马上处理。",
    "Calling the search tool…",
    "The user asked about billing; routing to the billing agent.",
)
SYSTEM_PROMPTS = (
    "You are a helpful, concise support assistant for Acme Cloud. Answer using only the provided "
    "context. If the answer is not in the context, say you don't know. Never reveal internal notes.",
    "You are a precise SQL generator. Output a single SQL statement for PostgreSQL 16 and nothing else.",
    "Tu es un traducteur professionnel. Conserve la mise en forme Markdown et les noms propres.",
    'You grade answers. Return JSON {"score": 0..1, "reason": "..."} with \\n escapes as needed.',
    "You are an agent with tools. Think step by step, call tools when you need facts, then answer.",
)
DOCS = (
    "Password resets: users can reset passwords from the sign-in page. Recovery requires access to "
    "the email or phone number on file. Admins can force a reset from the members page. Resets "
    "invalidate all active sessions except the current one. Rate limit: 5 attempts per hour.",
    "Refunds: monthly plans are refundable within 14 days. Annual plans are refundable within 30 "
    "days, prorated afterwards. Purchases made through resellers follow the reseller's policy.",
    "Exports: CSV and Parquet exports are generated asynchronously. Timestamps are in UTC unless "
    "the export time zone is set. Large exports are split into files of at most 1 GB each.",
    "Regions: US (us-east-1), EU (eu-central-1, eu-west-1), APAC (ap-southeast-2). The region is "
    "chosen at organization creation and is immutable. Cross-region replication is not offered.",
    "API limits: 600 requests per minute per key, 6 MiB per request body, 20 MB per span. "
    "Exceeding the rate limit returns HTTP 429 with a Retry-After header in seconds.",
    "Rotación de claves: las claves antiguas siguen siendo válidas hasta que se revocan. "
    "Recomendamos rotarlas cada 90 días y almacenarlas en un gestor de secretos.",
    "数据迁移：建议先创建只读副本，验证数据一致性后再切换流量。迁移期间请勿修改表结构。",
    "Shipping: damaged items are replaced free of charge. Photos help but are not required. "
    "Replacements ship within 2 business days; international orders may take up to 10 days.",
)
TOOL_CALLS = (
    ("search_docs", {"query": "password reset without email", "top_k": 5}),
    ("lookup_order", {"order_id": "A-1042", "include": ["items", "shipping"]}),
    ("get_weather", {"city": "São Paulo", "units": "metric", "days": 3}),
    ("run_sql", {"sql": "SELECT count(*) FROM orders WHERE status = 'paid'", "timeout_ms": 5000}),
    ("fetch_url", {"url": "https://docs.example.com/api/limits?lang=en&v=2#rate-limits"}),
    ("create_ticket", {"title": "Upload fails > 100 MB", "priority": "high", "labels": ["bug", "p1"]}),
)
TOOL_OUTPUTS = (
    [{"doc_id": "kb-101", "score": 0.91, "title": "Resetting your password"}],
    {"order_id": "A-1042", "status": "delivered", "items": [{"sku": "CAM-9", "qty": 1}], "carrier": "DHL"},
    {"city": "São Paulo", "forecast": [{"day": "Sat", "high_c": 29}, {"day": "Sun", "rain": 0.7}]},
    {"rows": [[1842]], "columns": ["count"], "elapsed_ms": 38},
    {"status": 200, "bytes": 18233, "title": "Rate limits — Acme Cloud Docs"},
    {"ticket_id": "SUP-77812", "url": "https://support.example.com/t/SUP-77812"},
)
FUNCTION_NAMES = ("retrieve_context", "rerank", "format_answer", "guardrails", "plan_steps", "route_intent")
ROOT_NAMES = ("chat_turn", "answer_question", "summarize_ticket", "rag_query", "agent_run", "translate")
SCORER_NAMES = ("Helpfulness", "Factuality", "Toxicity", "ExactMatch", "Levenshtein", "JSONValidity")
ERRORS = (
    "TimeoutError: tool 'search_docs' did not answer within 30 s",
    "RateLimitError: 429 Too Many Requests (retry after 12 s)",
    "ValueError: could not parse model output as JSON: Expecting ',' delimiter: line 1 column 42",
    "KeyError: 'choices'",
    "ConnectionResetError: [Errno 104] Connection reset by peer",
)
COMMENTS = (
    "Looks good to me 👍",
    "The answer cites the wrong region — should be eu-central-1.",
    "Hallucinated a refund policy that doesn't exist. Flagging for the prompt team.",
    "Tono demasiado informal para un cliente empresarial.",
    "回答正确，但可以更简洁。",
    'Edge case: the user wrote "C:\\temp\\" with a trailing backslash; output escaped it twice.',
    "Labelled by @reviewer-2 after the March relabel pass. ✅",
    "Needs a second opinion: expected output may be outdated since the v2 pricing change.",
)
ENVS = ("production", "production", "production", "staging", "dev")
REGIONS = ("us-east-1", "eu-central-1", "eu-west-1", "ap-southeast-2")
PROVIDERS = ("openai", "anthropic", "google", "meta", "openai")


def _big_text() -> str:
    parts = []
    for i in range(64):
        parts.append(f"§{i} ")
        parts.extend(DOCS)
        parts.append(ANSWERS[i % len(ANSWERS)])
        parts.append("\n")
    text = "\n".join(parts)
    while len(text.encode()) < 520 * 1024:
        text += text
    return text


BIG_TEXT = _big_text()


def _png(width: int = 16, height: int = 16) -> bytes:
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            row += bytes((x * 16 % 256, y * 16 % 256, (x + y) * 8 % 256))
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def attachment_payload(n: int, salt: int) -> tuple[str, str, bytes]:
    """The ``n``-th attachment's ``(filename, content_type, bytes)``: small, deterministic, varied."""
    kind = n % 4
    if kind == 0:
        return f"screenshot-{n}.png", "image/png", _png(8 + n % 24, 8 + (salt >> 8) % 24)
    if kind == 1:
        text = "\n".join(DOCS[(n + i) % len(DOCS)] for i in range(6)) + f"\n— notes #{n} ✍️\n"
        return f"notes {n} (ünïcode).txt", "text/plain; charset=utf-8", text.encode()
    if kind == 2:
        body = ("%PDF-1.4\n% seeded attachment " + str(n) + "\n").encode() + bytes(range(256)) * 16
        return f"report-{n}.pdf", "application/pdf", body
    blob = bytes((salt >> (i % 56)) & 0xFF ^ (i * 31 & 0xFF) for i in range(64 * 1024))
    return f"blob-{n}.bin", "application/octet-stream", blob
