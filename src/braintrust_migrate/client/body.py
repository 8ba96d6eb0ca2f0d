"""Reading a response body with a cap on its decoded size.

A few hundred KB of gzip can decode to gigabytes, so the body is decoded here, in
steps of at most STEP bytes, and reading stops as soon as the cap is passed: memory
never holds more than the cap plus one step.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator

import httpx

# The encodings this client asks for (Accept-Encoding) and can decode step by step.
ACCEPT_ENCODING = "gzip, deflate"
STEP = 1 << 20
REPLAY_LIMIT = 64 * 1024


class BodyTooLarge(Exception):
    pass


class BadEncoding(Exception):
    """The body cannot be decoded; the message is the reason, safe to show."""


class _Decoder:
    def __init__(self, header: str) -> None:
        codings = [c.strip().lower() for c in header.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        if len(codings) > 1:
            raise BadEncoding(f"unsupported Content-Encoding {header!r} (more than one coding)")
        self.coding = codings[0] if codings else None
        if self.coding not in (None, "gzip", "x-gzip", "deflate"):
            raise BadEncoding(f"unsupported Content-Encoding {header!r}")
        # gzip: a gzip header; deflate: a zlib header, or (as some servers send) raw deflate.
        wbits = zlib.MAX_WBITS | 16 if self.coding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._zlib = zlib.decompressobj(wbits) if self.coding else None
        # deflate input kept until the first output, to replay it as raw deflate if the header is wrong.
        self._replay: bytes | None = b"" if self.coding == "deflate" else None

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._zlib is None:
            if data:
                yield data
            return
        if self._replay is not None:
            self._replay = self._replay + data if len(self._replay) < REPLAY_LIMIT else None
        while not self._zlib.eof:
            try:
                piece = self._zlib.decompress(data, STEP)
            except zlib.error as exc:
                if self._replay is not None:
                    data, self._replay = self._replay, None
                    self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise BadEncoding(f"the {self.coding} body is corrupt ({exc})") from None
            if piece:
                self._replay = None
                yield piece
            data = self._zlib.unconsumed_tail
            # A full step may leave output pending inside zlib: ask again, with no new input.
            if not data and len(piece) < STEP:
                return

    def finish(self) -> Iterator[bytes]:
        if self._zlib is None:
            return
        yield from self.feed(b"")
        try:
            rest = self._zlib.flush()
        except zlib.error as exc:
            raise BadEncoding(f"the {self.coding} body is corrupt ({exc})") from None
        if rest:
            yield rest


async def iter_decoded(response: httpx.Response) -> AsyncIterator[bytes]:
    """The decoded body of a streamed response, in pieces of at most STEP bytes (BadEncoding if it
    cannot be decoded)."""
    if response.is_stream_consumed:
        # Built in memory (a mock transport, or already read): httpx decoded it already.
        content = response.content
        for start in range(0, len(content), STEP):
            yield content[start : start + STEP]
        return
    decoder = _Decoder(response.headers.get("content-encoding", ""))
    async for raw in response.aiter_raw():
        for piece in decoder.feed(raw):
            yield piece
    for piece in decoder.finish():
        yield piece


async def read_capped(response: httpx.Response, cap: int, *, truncate: bool = False) -> bytes:
    """The decoded body of a streamed response, at most `cap` bytes.

    Past the cap: BodyTooLarge, or with `truncate` the first `cap` bytes (error bodies,
    which only feed a message). A body that cannot be decoded: BadEncoding.
    """
    pieces: list[bytes] = []  # joined once at the end: one copy of the body, not one per piece
    size = 0
    async for piece in iter_decoded(response):
        room = cap - size
        if len(piece) > room:
            if not truncate:
                raise BodyTooLarge
            pieces.append(piece[:room])
            break
        pieces.append(piece)
        size += len(piece)
    return b"".join(pieces)


def buffered(response: httpx.Response, body: bytes) -> httpx.Response:
    """A closed response carrying the decoded body, for callers that read `.content`/`.text`."""
    headers = [
        (name, value)
        for name, value in response.headers.raw
        if name.lower() not in (b"content-encoding", b"content-length", b"transfer-encoding")
    ]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=response.request,
        extensions=response.extensions,
    )
