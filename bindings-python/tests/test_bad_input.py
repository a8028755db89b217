"""Every row of docs/bad-input.md, run as written: the documented exception and message, and
nothing written.

The page's ```python setup block runs once; its code names no endpoint, as a user's would not,
so the standard AWS variables point it at the test's DynamoDB Local.
"""

from __future__ import annotations

import builtins
import pathlib
import re
from typing import Dict, Iterator, List, NamedTuple, Optional

import pytest

import dynalease

PAGE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "bad-input.md"
TEXT = PAGE.read_text(encoding="utf-8")
SETUP = re.search(r"```python\n(.*?)```", TEXT, flags=re.S)
EXPECTED = re.compile(r"^`(?P<name>[A-Za-z_]+)`(?::\s*(?P<fragment>.+))?$")


class Row(NamedTuple):
    id: str
    code: str
    error: str
    fragment: Optional[str]


def rows() -> List[Row]:
    """The rows of the page's tables whose Python column is not `—`."""
    found = []
    for line in TEXT.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 6 or not re.fullmatch(r"[A-Z]\d+", cells[0]):
            continue
        code, expected = cells[2], cells[3]
        if code == "—":
            continue
        match = EXPECTED.match(expected)
        assert match, f"{cells[0]}: cannot read the expected error {expected!r}"
        # A cell's code is one or more `spans`, one line each.
        lines = re.findall(r"`([^`]+)`", code)
        found.append(Row(cells[0], "\n".join(lines), match["name"], match["fragment"]))
    return found


ROWS = rows()


def test_the_page_has_a_row_for_every_kind_of_bad_input() -> None:
    ids = {row.id for row in ROWS}
    assert SETUP is not None, "docs/bad-input.md lost its python setup block"
    assert len(ROWS) >= 60, len(ROWS)
    for section in "CIDKVTM":
        assert any(i.startswith(section) for i in ids), f"no Python rows in section {section}"


@pytest.fixture(scope="module")
def page(ddb_endpoint: str) -> Iterator[Dict[str, object]]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_ENDPOINT_URL_DYNAMODB": ddb_endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "dynalease",
            "AWS_SECRET_ACCESS_KEY": "dynalease",
        }.items():
            env.setenv(name, value)
        assert SETUP is not None
        namespace: Dict[str, object] = {}
        exec(SETUP.group(1), namespace)
        # A second client, to check that the held lock stays held.
        namespace["_other"] = dynalease.LockClient("locks", lease_duration=10.0)
        yield namespace
        lock = namespace["lock"]
        assert isinstance(lock, dynalease.Lock)
        lock.release()


def snapshot(namespace: Dict[str, object]) -> tuple:
    kv = namespace["kv"]
    lock = namespace["lock"]
    assert isinstance(kv, dynalease.KVStore) and isinstance(lock, dynalease.Lock)
    return [(pair.key, pair.version) for pair in kv.list()], lock.lost, lock.released, lock.data


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_row(row: Row, page: Dict[str, object]) -> None:
    before = snapshot(page)
    expected = getattr(dynalease, row.error, None) or getattr(builtins, row.error)
    with pytest.raises(expected) as raised:
        exec(row.code, dict(page))
    if row.fragment is not None:
        assert row.fragment in str(raised.value), f"{row.id}: {str(raised.value)!r} does not say {row.fragment!r}"
    assert snapshot(page) == before, f"{row.id} changed the store or the held lock"
    other = page["_other"]
    assert isinstance(other, dynalease.LockClient)
    assert other.try_acquire("bad-input-held") is None, f"{row.id}: the held lock was freed"
