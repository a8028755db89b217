"""Shared fixtures. Tests on the in-process `memory://` backend run anywhere; the others run
against DynamoDB Local (DYNALEASE_TEST_ENDPOINT, exported by scripts/test) and are skipped, with
how to start it, when it is not set. Tests parametrized with `endpoint` run on both.

scripts/test-python (what CI runs) sets DYNALEASE_REQUIRE_DYNAMODB=1: then a missing endpoint
fails the run instead, so CI never passes by skipping its subject."""

from __future__ import annotations

import os
import uuid
from typing import Iterator, List

import pytest

import dynalease

ENDPOINT_VARIABLE = "DYNALEASE_TEST_ENDPOINT"
REQUIRE_VARIABLE = "DYNALEASE_REQUIRE_DYNAMODB"
HOW_TO_START = (
    f"needs DynamoDB Local and {ENDPOINT_VARIABLE} is not set; start it from the repository root "
    f"with `export {ENDPOINT_VARIABLE}=$(scripts/dynamodb-local start)` "
    "(`scripts/dynamodb-local stop` stops it)"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"dynamodb: runs against DynamoDB Local ({ENDPOINT_VARIABLE}); set automatically")
    if os.environ.get(REQUIRE_VARIABLE) and not os.environ.get(ENDPOINT_VARIABLE):
        raise pytest.UsageError(f"{REQUIRE_VARIABLE} is set, but the suite {HOW_TO_START}.")


def _uses_dynamodb(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    on_dynamodb = callspec is not None and callspec.params.get("endpoint") == "dynamodb"
    return on_dynamodb or "ddb_endpoint" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    # Marked, so `-m "not dynamodb"` selects the memory-only tests whatever the environment.
    skip = None if os.environ.get(ENDPOINT_VARIABLE) else pytest.mark.skip(reason=HOW_TO_START)
    for item in items:
        if _uses_dynamodb(item):
            item.add_marker(pytest.mark.dynamodb)
            if skip is not None:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def ddb_endpoint() -> str:
    endpoint = os.environ.get(ENDPOINT_VARIABLE)
    if not endpoint:
        pytest.skip(HOW_TO_START)
    return endpoint


@pytest.fixture(params=["dynamodb", "memory"])
def endpoint(request: pytest.FixtureRequest) -> str:
    """Each test using this runs twice: on DynamoDB Local and on the in-process backend."""
    if request.param == "memory":
        return f"memory://{uuid.uuid4().hex}"
    endpoint: str = request.getfixturevalue("ddb_endpoint")
    return endpoint


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def lock_table(endpoint: str) -> str:
    return created(unique("locks"), endpoint)


@pytest.fixture
def kv_table(endpoint: str) -> str:
    return created(unique("kv"), endpoint, partition_key="pk", sort_key="sk")


def created(name: str, endpoint: str, **keys: str) -> str:
    """A new table of that name (lock table keys unless ``keys`` say otherwise)."""
    dynalease.create_table(name, endpoint_url=endpoint, **keys)
    return name


@pytest.fixture
def locks(lock_table: str, endpoint: str) -> dynalease.LockClient:
    return dynalease.LockClient(lock_table, endpoint_url=endpoint)


@pytest.fixture
def kv(kv_table: str, endpoint: str) -> dynalease.KVStore:
    return dynalease.KVStore(kv_table, partition=unique("ns"), endpoint_url=endpoint)


@pytest.fixture
def ddb_lock_table(ddb_endpoint: str) -> Iterator[str]:
    name = unique("locks")
    dynalease.create_table(name, endpoint_url=ddb_endpoint)
    yield name
