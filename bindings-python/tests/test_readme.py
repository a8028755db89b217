"""Every ```python block of README.md runs as written, against DynamoDB Local.

The examples name no endpoint, as a user's code would not; the standard AWS variable
AWS_ENDPOINT_URL_DYNAMODB points them at the test's DynamoDB Local instead.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, ddb_endpoint: str) -> None:
    env = dict(
        os.environ,
        AWS_ENDPOINT_URL_DYNAMODB=ddb_endpoint,
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="dynalease",
        AWS_SECRET_ACCESS_KEY="dynalease",
    )
    done = subprocess.run([sys.executable, "-c", BLOCKS[index]], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"README block {index} failed:\n{BLOCKS[index]}\n{done.stderr}"
