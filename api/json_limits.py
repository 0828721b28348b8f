"""Limits on a JSON body checked while it streams in, before anything parses it.

Parsing costs memory per value, not per byte: 20 MB of `{"records": [{}, {}, …]}` are seven
million dicts, over 1 GB once parsed and validated. So, as each piece of the body arrives,
`JsonShape` counts its objects, arrays and keys outside strings (a few C-speed `bytes` calls
a piece, no Python loop over values: a fraction of orjson's parsing time), and `read_limited`
refuses the body as soon as it holds more than the limits allow: more bytes than
DPE_MAX_JSON_MB, more objects and arrays than DPE_MAX_BATCH_ROWS records can hold, or more
keys than DPE_MAX_RECORD_KEYS per object. What is refused was never parsed.
"""

from collections.abc import AsyncIterator

from fastapi import HTTPException, status

MB = 2**20
# Every byte but a quote and the three characters JsonShape counts.
_NOT_COUNTED = bytes(set(range(256)) - set(b'"{[:'))


class JsonShape:
    """Objects, arrays and keys of a JSON text fed in pieces, counted outside strings.

    Escaped backslashes and quotes are dropped first; the quotes left then open and close
    strings in turn, so splitting on them leaves the text outside strings every other part.
    Before splitting, all but quotes and the three characters counted are dropped, then every
    pair of adjacent quotes (an empty string, or one string's end and the next one's start):
    what is left to split is one part per string holding `{`, `[` or `:` (a few), not one
    per string (tens of thousands in 1,000 records). Exact for valid JSON (invalid JSON is
    refused by the parser anyway).
    """

    def __init__(self) -> None:
        self.objects = self.arrays = self.keys = 0
        self._in_string = False
        self._carry = b""  # a backslash that ended the last piece, escaping what follows

    def feed(self, piece: bytes) -> None:
        data = self._carry + piece if self._carry else piece
        text = data.rstrip(b"\\")
        # Trailing backslashes pair up as escaped ones; an odd one escapes the next piece's start.
        self._carry = b"\\" if (len(data) - len(text)) % 2 else b""
        if b"\\" in text:
            text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
        # Dropping two adjacent quotes leaves every other character on its side of a string.
        text = text.translate(None, _NOT_COUNTED).replace(b'""', b"")
        parts = text.split(b'"')
        outside = b"".join(parts[1::2] if self._in_string else parts[0::2])
        if len(parts) % 2 == 0:  # an odd number of quotes: the piece ends across a string edge
            self._in_string = not self._in_string
        self.objects += outside.count(b"{")
        self.arrays += outside.count(b"[")
        self.keys += outside.count(b":")


def too_large(detail: str) -> HTTPException:
    # The rest of the body is not read: the connection cannot be reused.
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail, headers={"Connection": "close"})


async def read_limited(
    stream: AsyncIterator[bytes],
    declared_length: str | None,
    max_mb: int,
    max_records: int,
    max_record_keys: int,
) -> bytes:
    """The body from `stream`, or HTTPException 413 as soon as it passes a limit."""
    limit = max_mb * MB
    if declared_length and declared_length.isdigit() and int(declared_length) > limit:
        raise too_large(_size_detail(max_mb))
    shape, pieces, size = JsonShape(), [], 0
    async for piece in stream:
        size += len(piece)
        if size > limit:
            raise too_large(_size_detail(max_mb))
        shape.feed(piece)
        # The body and its array of records are one object and one array; each record one
        # object, holding no other object or array (a field's value is text or a number).
        if shape.objects + shape.arrays > max_records + 2:
            raise too_large(
                f"more than {max_records:,} records: at most {max_records:,} per request "
                "(DPE_MAX_BATCH_ROWS), each a flat object (an object or array inside a record "
                "counts as one more); send a CSV to /predict/csv for more"
            )
        if shape.keys > max_record_keys * shape.objects:
            raise too_large(
                f"a record holds more than {max_record_keys} keys (DPE_MAX_RECORD_KEYS)"
            )
        pieces.append(piece)
    return b"".join(pieces)


def _size_detail(max_mb: int) -> str:
    return (
        f"JSON body above {max_mb} MB (DPE_MAX_JSON_MB): send fewer records per request, "
        "or a CSV to /predict/csv"
    )
