"""Fixtures of the fleet, checker and fault tests. They run against DynamoDB Local
(DYNALEASE_TEST_ENDPOINT) with the Python package built into .venv and, for mixed fleets, the
Rust worker (DYNALEASE_FLEET_RUST_WORKER); scripts/test-fleet provides both. A missing one fails
the run: these tests never skip their subject. Node tests need the Node package's addon built
(scripts/test-node or `npm run build:debug`) and node_modules installed."""

from __future__ import annotations

import os
import subprocess
import uuid
from typing import Iterator

import pytest

import dynalease
from faultproxy import FaultProxy


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("DYNALEASE_TEST_ENDPOINT"):
        raise pytest.UsageError(
            "DYNALEASE_TEST_ENDPOINT is not set. Run scripts/test-fleet with it exported "
            "(`export DYNALEASE_TEST_ENDPOINT=$(scripts/dynamodb-local start)`), or run scripts/test."
        )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def ddb_endpoint() -> str:
    return os.environ["DYNALEASE_TEST_ENDPOINT"]


@pytest.fixture(scope="session")
def rust_worker() -> str:
    path = os.environ.get("DYNALEASE_FLEET_RUST_WORKER", "")
    if not path or not os.access(path, os.X_OK):
        pytest.fail(
            "DYNALEASE_FLEET_RUST_WORKER does not name the built Rust worker; run scripts/test-fleet "
            "(it builds it: cargo build -p dynalease --example fleet_worker)"
        )
    return path


@pytest.fixture(scope="session")
def node_package() -> str:
    """The repository root, once `require()` of the Node package (and its addon) works there."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    found = subprocess.run(["node", "-e", f"require({root!r}); require('@aws-sdk/lib-dynamodb')"], capture_output=True, text=True, cwd=root)
    if found.returncode != 0:
        pytest.fail(f"the Node package does not load (run scripts/test-node, or npm run build:debug): {found.stderr[-500:]}")
    return root


@pytest.fixture
def proxy(ddb_endpoint: str) -> Iterator[FaultProxy]:
    with FaultProxy(ddb_endpoint, seed=7) as running:
        yield running


@pytest.fixture
def lock_table(ddb_endpoint: str) -> str:
    name = unique("fault-locks")
    dynalease.create_table(name, endpoint_url=ddb_endpoint)
    return name


@pytest.fixture
def kv_table(ddb_endpoint: str) -> str:
    name = unique("fault-kv")
    dynalease.create_table(name, partition_key="pk", sort_key="sk", endpoint_url=ddb_endpoint)
    return name
