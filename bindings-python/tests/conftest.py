"""Shared fixtures. The suite runs against DynamoDB Local (DYNALEASE_TEST_ENDPOINT, exported by
scripts/test) and, where marked, also against the in-process `memory://` backend. A missing
endpoint fails the run: these tests never skip their subject."""

from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest

import dynalease


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("DYNALEASE_TEST_ENDPOINT"):
        raise pytest.UsageError(
            "DYNALEASE_TEST_ENDPOINT is not set. Run the suite through scripts/test (which starts "
            "DynamoDB Local), or start it yourself: `scripts/dynamodb-local start` prints the "
            "endpoint to export."
        )


@pytest.fixture(scope="session")
def ddb_endpoint() -> str:
    return os.environ["DYNALEASE_TEST_ENDPOINT"]


@pytest.fixture(params=["dynamodb", "memory"])
def endpoint(request: pytest.FixtureRequest, ddb_endpoint: str) -> str:
    """Each test using this runs twice: on DynamoDB Local and on the in-process backend."""
    if request.param == "memory":
        return f"memory://{uuid.uuid4().hex}"
    return ddb_endpoint


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def lock_table(endpoint: str) -> str:
    name = unique("locks")
    dynalease.create_table(name, endpoint_url=endpoint)
    return name


@pytest.fixture
def kv_table(endpoint: str) -> str:
    name = unique("kv")
    dynalease.create_table(name, partition_key="pk", sort_key="sk", endpoint_url=endpoint)
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
