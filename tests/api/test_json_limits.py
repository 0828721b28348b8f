"""api.json_limits: a JSON body's objects, arrays and keys counted as it streams in, cut
anywhere, and the limits read_limited applies while it does."""

import asyncio
import json

import pytest
from fastapi import HTTPException
from hypothesis import given, settings
from hypothesis import strategies as st

from api.json_limits import JsonShape, read_limited

# Text full of what could fool a counter: quotes, backslashes, braces, colons, non-ASCII.
TRICKY_TEXT = st.text(alphabet='"\\{}[]:,é\n a\t', max_size=12)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TRICKY_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(TRICKY_TEXT, children, max_size=4)
    ),
    max_leaves=25,
)


def counted(value) -> tuple[int, int, int]:
    """(objects, arrays, keys) of a parsed JSON value."""
    if isinstance(value, dict):
        inner = [counted(item) for item in value.values()]
        return (
            1 + sum(i[0] for i in inner),
            sum(i[1] for i in inner),
            len(value) + sum(i[2] for i in inner),
        )
    if isinstance(value, list):
        inner = [counted(item) for item in value]
        return sum(i[0] for i in inner), 1 + sum(i[1] for i in inner), sum(i[2] for i in inner)
    return 0, 0, 0


@settings(max_examples=400, deadline=None)
@given(value=JSON_VALUES, ascii_only=st.booleans(), cuts=st.lists(st.integers(0, 10_000)))
def test_counts_match_the_parsed_value_wherever_the_body_is_cut(value, ascii_only, cuts):
    text = json.dumps(value, ensure_ascii=ascii_only).encode()
    shape = JsonShape()
    start = 0
    for cut in sorted({c % (len(text) + 1) for c in cuts}) + [len(text)]:
        shape.feed(text[start:cut])
        start = cut
    assert (shape.objects, shape.arrays, shape.keys) == counted(value)


async def pieces(body: bytes, size: int = 1000):
    for start in range(0, len(body), size):
        yield body[start : start + size]


def read(body: bytes, declared: str | None = None, mb=1, records=10, keys=5) -> bytes:
    return asyncio.run(read_limited(pieces(body), declared, mb, records, keys))


def test_a_body_within_the_limits_is_read_whole():
    body = json.dumps({"records": [{"a": "{[:", "b": 1}] * 10}).encode()
    assert read(body) == body


@pytest.mark.parametrize(
    ("body", "declared", "named"),
    [
        (b'{"records": [' + b"{}," * 10 + b"{}]}", None, "DPE_MAX_BATCH_ROWS"),
        (b'{"records": [{"x": [[], [], [], [], [], [], [], [], [], []]}]}', None, "BATCH_ROWS"),
        # 11 keys in one record, 12 with the body's: more than 5 in each of the 2 objects.
        (json.dumps({"records": [dict.fromkeys("abcdefghijk", 1)]}).encode(), None, "RECORD_KEYS"),
        (b'{"records": [{"a": "' + b"x" * 2**20 + b'"}]}', None, "DPE_MAX_JSON_MB"),
        (b"{}", str(2**20 + 1), "DPE_MAX_JSON_MB"),  # refused on its declared length
    ],
)
def test_a_body_past_a_limit_is_413_naming_it(body, declared, named):
    with pytest.raises(HTTPException) as refused:
        read(body, declared)
    assert refused.value.status_code == 413 and named in refused.value.detail
    assert refused.value.headers == {"Connection": "close"}


def test_refused_as_soon_as_a_limit_is_passed_not_at_the_end():
    def endless():
        yield b'{"records": ['
        while True:
            yield b"{}," * 100

    async def stream():
        for piece in endless():
            yield piece

    with pytest.raises(HTTPException, match="DPE_MAX_BATCH_ROWS"):  # before 1 MB came in
        asyncio.run(read_limited(stream(), None, 1, 10_000, 5))
