"""Credentials never reach a log or an error message (SECURITY.md says so and points here).

A child process runs with recognisable AWS credentials in its environment (the standard chain
reads them; DynamoDB Local accepts any), every logger at DEBUG (dynalease's records, which carry
the core's own tracing), and a failing call as well as working ones. Nothing it prints, logs or
raises may contain the secret key or the session token."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid

SECRET = "dynaleaseTestSecret" + uuid.uuid4().hex
TOKEN = "dynaleaseTestToken" + uuid.uuid4().hex

SCRIPT = textwrap.dedent(
    """
    import logging, sys, uuid
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    import dynalease

    table = "security-" + uuid.uuid4().hex[:12]
    dynalease.create_table(table)
    locks = dynalease.LockClient(table, lease_duration=2.0, heartbeat_period=0.2)
    with locks.lock("job", timeout=5.0) as lock:
        lock.update_data({"step": 1})
        handle = lock.detach()
    locks.resume(handle).release()
    try:
        dynalease.LockClient("no-such-table-" + uuid.uuid4().hex[:8]).acquire("job", timeout=1.0)
    except dynalease.Error as error:
        print("expected failure:", error)
    print("done")
    """
)


def test_credentials_never_appear_in_logs_errors_or_output(ddb_endpoint: str) -> None:
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID="AKIADYNALEASETEST",
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_SESSION_TOKEN=TOKEN,
        AWS_ENDPOINT_URL_DYNAMODB=ddb_endpoint,
        AWS_REGION="us-east-1",
    )
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "done" in result.stdout and "expected failure" in result.stdout, output
    assert "dynalease" in result.stderr, "the child logged nothing: the check would prove nothing"
    assert SECRET not in output and TOKEN not in output
