"""The `dynalease` command line as the wheel installs it: the console script in the venv's bin
and `python -m dynalease`, end to end against DynamoDB Local. What needs a terminal runs under a
pseudo-terminal: the forced release's confirmation, and `locks watch`, whose screen is read
through a terminal emulator (pyte) as a person would see it. The table templates are checked
with cfn-lint and an HCL parser."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pyte
import pytest

import dynalease
from conftest import unique

BIN = Path(sys.executable).parent
SCRIPT = BIN / "dynalease"
#: How the package's command line can be started: the console script, and the module.
ENTRIES = {"script": [str(SCRIPT)], "module": [sys.executable, "-m", "dynalease"]}
TIMEOUT = 120.0


def command(entry: str, *args: str) -> List[str]:
    return [*ENTRIES[entry], *args]


def run(*args: str, entry: str = "script", timeout: float = TIMEOUT, **options: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(entry, *args), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **options)  # type: ignore[call-overload]


def said(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"


@pytest.fixture(params=list(ENTRIES))
def entry(request: pytest.FixtureRequest) -> str:
    """Each test using this runs through the console script and through `python -m dynalease`."""
    return str(request.param)


def test_the_console_script_is_installed_with_the_package() -> None:
    assert SCRIPT.is_file() and os.access(SCRIPT, os.X_OK), f"no console script at {SCRIPT}"
    assert "dynalease._cli" in SCRIPT.read_text()


def test_help_version_and_usage_errors(entry: str) -> None:
    helped = run("--help", entry=entry)
    assert helped.returncode == 0, said(helped)
    for text in ["table", "locks", "kv", "iam-policy", "template", "Exit codes"]:
        assert text in helped.stdout, text
    program = "dynalease" if entry == "script" else "python -m dynalease"
    assert f"Usage: {program} " in helped.stdout, helped.stdout
    version = run("--version", entry=entry)
    assert (version.returncode, version.stdout.split()) == (0, ["dynalease", dynalease.__version__])

    unknown = run("locks", "list", "locks", "--no-such-flag", entry=entry)
    assert unknown.returncode == 2 and "--no-such-flag" in unknown.stderr, said(unknown)
    missing = run("kv", "get", entry=entry)
    assert missing.returncode == 2 and "required" in missing.stderr, said(missing)
    bad_duration = run("gc", "locks", "--released-before", "soon", entry=entry)
    assert bad_duration.returncode == 2 and "not a duration" in bad_duration.stderr, said(bad_duration)


def test_table_create_and_check(entry: str, ddb_endpoint: str) -> None:
    locks, kv = unique("cli-locks"), unique("cli-kv")
    for _ in range(2):  # idempotent
        created = run("table", "create", locks, "--endpoint-url", ddb_endpoint, entry=entry)
        assert created.returncode == 0 and f"table {locks} is ready" in created.stdout, said(created)
    assert run("table", "create", kv, "--kv", "--endpoint-url", ddb_endpoint, entry=entry).returncode == 0

    checked = run("table", "check", locks, "--endpoint-url", ddb_endpoint, entry=entry)
    assert checked.returncode == 0 and "is ready" in checked.stdout, said(checked)
    as_json = run("table", "check", kv, "--kv", "--output", "json", "--endpoint-url", ddb_endpoint, entry=entry)
    assert as_json.returncode == 0, said(as_json)
    report = json.loads(as_json.stdout)
    assert report["billing"] == "PAY_PER_REQUEST" and report["problems"] == []
    assert (report["partitionKey"]["name"], report["sortKey"]["name"]) == ("pk", "sk")

    # A lock table is not a KV table: exit 1, with what to change.
    wrong = run("table", "check", locks, "--kv", "--endpoint-url", ddb_endpoint, entry=entry)
    assert wrong.returncode == 1 and "FIX:" in wrong.stdout, said(wrong)
    absent = run("table", "check", unique("no-such-table"), "--endpoint-url", ddb_endpoint, entry=entry)
    assert absent.returncode == 3, said(absent)
    # The tables the command made are the ones the library expects.
    dynalease.LockClient(locks, endpoint_url=ddb_endpoint).acquire("made-by-cli").release()
    dynalease.KVStore(kv, partition="p", endpoint_url=ddb_endpoint).put("k", 1)


def test_locks_list_and_show(entry: str, ddb_endpoint: str, ddb_lock_table: str) -> None:
    locks = dynalease.LockClient(ddb_lock_table, endpoint_url=ddb_endpoint, owner="worker-7")
    held = locks.acquire("job-held")
    locks.acquire("job-released").release()
    try:
        listed = run("locks", "list", ddb_lock_table, "--output", "json", "--endpoint-url", ddb_endpoint, entry=entry)
        assert listed.returncode == 0, said(listed)
        states = {lock["id"]: lock["state"] for lock in json.loads(listed.stdout)["locks"]}
        assert states == {"job-held": "held", "job-released": "released"}
        assert "Scan" in listed.stderr  # it says what it read

        only_held = run("locks", "list", ddb_lock_table, "--state", "held", "--endpoint-url", ddb_endpoint, entry=entry)
        assert only_held.returncode == 0, said(only_held)
        rows = [line.split() for line in only_held.stdout.splitlines()]
        assert rows[0][:4] == ["ID", "STATE", "OWNER", "TOKEN"]
        assert [row[:4] for row in rows[1:] if row[0].startswith("job-")] == [["job-held", "held", "worker-7", str(held.fencing_token)]]

        shown = run("locks", "show", ddb_lock_table, "job-held", "--endpoint-url", ddb_endpoint, entry=entry)
        assert shown.returncode == 0, said(shown)
        assert "lock job-held: held" in shown.stdout and "worker-7" in shown.stdout and "lease ends" in shown.stdout
        absent = run("locks", "show", ddb_lock_table, "never-acquired", "--endpoint-url", ddb_endpoint, entry=entry)
        assert absent.returncode == 3 and "never-acquired" in absent.stderr, said(absent)
    finally:
        held.release()


def test_kv_get_put_list_delete(entry: str, ddb_endpoint: str, ddb_kv_table_name: str) -> None:
    table, partition = ddb_kv_table_name, unique("agents")

    def kv(*args: str) -> subprocess.CompletedProcess[str]:
        return run("kv", *args, "--endpoint-url", ddb_endpoint, entry=entry)

    put = kv("put", table, partition, "agent/1", '{"state": "idle", "load": 2}')
    assert put.returncode == 0 and '"agent/1"' in put.stdout, said(put)
    assert kv("put", table, partition, "agent/2", "busy").returncode == 0  # a bare word is a string
    store = dynalease.KVStore(table, partition=partition, endpoint_url=ddb_endpoint)
    pair = store.get("agent/1")
    assert pair is not None and pair.value == {"state": "idle", "load": 2}

    got = kv("get", table, partition, "agent/1", "--output", "json")
    assert got.returncode == 0, said(got)
    assert json.loads(got.stdout) == {"key": "agent/1", "value": {"state": "idle", "load": 2}, "version": pair.version}
    assert json.loads(kv("get", table, partition, "agent/2").stdout) == "busy"

    listed = kv("list", table, partition, "agent/", "--output", "json")
    assert listed.returncode == 0, said(listed)
    assert [p["key"] for p in json.loads(listed.stdout)["pairs"]] == ["agent/1", "agent/2"]

    deleted = kv("delete", table, partition, "agent/1")
    assert deleted.returncode == 0 and "deleted" in deleted.stdout, said(deleted)
    assert store.get("agent/1") is None
    again = kv("delete", table, partition, "agent/1")
    assert again.returncode == 3, said(again)
    gone = kv("get", table, partition, "agent/1")
    assert gone.returncode == 3 and "agent/1" in gone.stderr, said(gone)


def test_iam_policy_and_templates_need_no_aws(entry: str) -> None:
    policy = run("iam-policy", "locks", "kv-store", entry=entry)
    assert policy.returncode == 0, said(policy)
    document = json.loads(policy.stdout)
    sids = [statement["Sid"] for statement in document["Statement"]]
    assert sids == ["Read", "LockAndKvWrites"], sids
    assert document["Statement"][0]["Resource"] == ["arn:aws:dynamodb:*:*:table/locks", "arn:aws:dynamodb:*:*:table/kv-store"]
    read_only = json.loads(run("iam-policy", "locks", "--read-only", "--cli", entry=entry).stdout)
    actions = {action for statement in read_only["Statement"] for action in statement["Action"]}
    assert "dynamodb:Scan" in actions and not {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} & actions

    for form in ["cloudformation", "terraform", "cdk"]:
        template = run("template", form, "orders-locks", entry=entry)
        assert template.returncode == 0 and "orders-locks" in template.stdout, said(template)
    bad = run("template", "terraform", "no spaces allowed", entry=entry)
    assert bad.returncode == 2, said(bad)


def test_exit_codes_for_refusals_and_an_unreachable_endpoint(ddb_endpoint: str, ddb_lock_table: str) -> None:
    locks = dynalease.LockClient(ddb_lock_table, endpoint_url=ddb_endpoint)
    lock = locks.acquire("job")
    try:
        unforced = run("locks", "release", ddb_lock_table, "job", "--endpoint-url", ddb_endpoint)
        assert unforced.returncode == 2 and "--force" in unforced.stderr, said(unforced)
        # No terminal to ask on, and no --yes: it says how, and writes nothing.
        unasked = run("locks", "release", ddb_lock_table, "job", "--force", "--endpoint-url", ddb_endpoint)
        assert unasked.returncode == 2 and "pass --yes" in unasked.stderr, said(unasked)
        stale = run("locks", "release", ddb_lock_table, "job", "--force", "--yes", "--expect-token", "999", "--endpoint-url", ddb_endpoint)
        assert stale.returncode == 1 and "changed hands" in stale.stderr, said(stale)
        lock.check()
    finally:
        lock.release()
    released = run("locks", "release", ddb_lock_table, "job", "--force", "--yes", "--endpoint-url", ddb_endpoint)
    assert released.returncode == 1 and "nothing to release" in released.stderr, said(released)

    unreachable = run("locks", "list", "locks", "--endpoint-url", "http://127.0.0.1:9", timeout=300)
    assert unreachable.returncode == 4, said(unreachable)
    # One line saying what failed, as the Rust binary prints it (no log record per retry).
    lines = unreachable.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dynalease: could not reach DynamoDB"), said(unreachable)


def test_a_forced_release_refuses_when_the_holder_renewed_during_the_prompt(ddb_endpoint: str, ddb_lock_table: str) -> None:
    holder = dynalease.LockClient(ddb_lock_table, endpoint_url=ddb_endpoint, owner="live-holder", heartbeat_period=0.1)
    lock = holder.acquire("contested")
    try:
        with Terminal(command("script", "locks", "release", ddb_lock_table, "contested", "--force", "--endpoint-url", ddb_endpoint)) as terminal:
            terminal.wait_for(lambda text: "Release lock contested held by live-holder? [y/N]" in text)
            assert "lock contested: held" in terminal.text() and "live-holder" in terminal.text()
            # The operator reads the prompt; meanwhile the holder heartbeats (a new guid). The
            # first change seen could be a heartbeat that landed before the command's read and
            # was answered late; the one after it was sent after the prompt was up.
            for _ in range(2):
                seen = lock.handle
                deadline = time.monotonic() + 30
                while lock.handle == seen and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert lock.handle != seen, "the holder did not heartbeat"
            terminal.type("y\n")
            code = terminal.wait_exit()
            text = terminal.text()
        assert code == 1, text
        assert "changed since it was shown" in text and "nothing was written" in text, text
        assert not lock.lost
        lock.check()
        assert dynalease.LockClient(ddb_lock_table, endpoint_url=ddb_endpoint).try_acquire("contested") is None
    finally:
        lock.release()


def test_ctrl_c_at_the_prompt_stops_at_once_and_writes_nothing(ddb_endpoint: str, ddb_lock_table: str) -> None:
    lock = dynalease.LockClient(ddb_lock_table, endpoint_url=ddb_endpoint, owner="holder").acquire("job")
    try:
        for entry in ENTRIES:
            with Terminal(command(entry, "locks", "release", ddb_lock_table, "job", "--force", "--endpoint-url", ddb_endpoint)) as terminal:
                terminal.wait_for(lambda text: "[y/N]" in text)
                terminal.process.send_signal(signal.SIGINT)
                # Ended by the signal, as a Rust program is (no traceback, no answer awaited).
                assert terminal.wait_exit(timeout=30.0) == -signal.SIGINT, terminal.text()
                assert "Traceback" not in terminal.text()
        lock.check()
    finally:
        lock.release()


def test_locks_watch_redraws_one_frame_in_place_and_ends_on_sigint(ddb_endpoint: str, ddb_lock_table: str) -> None:
    alice = dynalease.LockClient(ddb_lock_table, endpoint_url=ddb_endpoint, owner="alice", lease_duration=2.0)
    bob = dynalease.LockClient(ddb_lock_table, endpoint_url=ddb_endpoint, owner="bob")
    watch = command("script", "locks", "watch", ddb_lock_table, "--interval", "300ms", "--endpoint-url", ddb_endpoint)
    with Terminal(watch, rows=40, columns=160) as terminal:
        screen = pyte.Screen(160, 40)
        stream = pyte.ByteStream(screen)

        def display() -> List[str]:
            stream.feed(terminal.take())
            return [line.rstrip() for line in screen.display]

        def shows(predicate: Callable[[List[str]], bool], what: str, timeout: float = 60.0) -> List[str]:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                lines = display()
                if predicate(lines):
                    return lines
                if terminal.process.poll() is not None:
                    break
                time.sleep(0.05)
            raise AssertionError(f"the screen never showed {what}:\n" + "\n".join(display()))

        def row(lines: List[str], lock_id: str) -> Optional[List[str]]:
            for line in lines:
                cells = line.split()
                if cells[:1] == [lock_id]:
                    return cells
            return None

        shows(lambda lines: lines[0].startswith(f"dynalease locks watch {ddb_lock_table}: 0 held"), "the header")

        lock = alice.acquire("job-a")
        # The change line comes after the table in a frame: once it is there, so is the row.
        lines = shows(lambda lines: any("job-a: acquired by alice (token 1)" in line for line in lines), "alice's lock")
        assert row(lines, "job-a")[:4] == ["job-a", "held", "alice", str(lock.fencing_token)]  # type: ignore[index]
        assert lines[0].startswith(f"dynalease locks watch {ddb_lock_table}: 1 held")

        # Alice stops renewing (she hands off, and nobody resumes); bob takes the lock over once
        # her lease has run out: one write, from alice's token to bob's.
        lock.detach()
        taken = bob.acquire("job-a", timeout=60.0)
        assert taken.fencing_token == 2
        lines = shows(lambda lines: any("job-a: handed over to bob (token 2)" in line for line in lines), "the hand-over")
        assert row(lines, "job-a")[:4] == ["job-a", "held", "bob", "2"]  # type: ignore[index]
        taken.release()
        lines = shows(lambda lines: any("job-a: released" in line for line in lines), "the release")

        # One frame, drawn over the last: the header once, at the top, and no scrolled-off frames.
        headers = [i for i, line in enumerate(lines) if line.startswith("dynalease locks watch")]
        assert headers == [0], "\n".join(lines)
        assert lines.index("recent changes:") < 20
        assert terminal.raw.count(b"dynalease locks watch") >= 4, "it should have redrawn several times"

        terminal.process.send_signal(signal.SIGINT)
        started = time.monotonic()
        code = terminal.wait_exit(timeout=30.0)
        # At most one read of the table in flight when the signal came, on a loaded machine.
        assert time.monotonic() - started < 10.0, "watch took long to stop on SIGINT"
        assert code == 0, terminal.text()


# --- templates, checked by the tools that read them ---------------------------------------


@pytest.mark.parametrize("kind", [[], ["--kv"], ["--sort-key", "shard"]], ids=["locks", "kv", "locks-sort-key"])
def test_cloudformation_template_passes_cfn_lint(kind: List[str], tmp_path: Path) -> None:
    made = run("template", "cloudformation", "orders-table", *kind)
    assert made.returncode == 0, said(made)
    template = tmp_path / "table.yaml"
    template.write_text(made.stdout)
    linted = subprocess.run([str(BIN / "cfn-lint"), str(template)], capture_output=True, text=True, timeout=300)
    assert linted.returncode == 0, f"cfn-lint:\n{linted.stdout}{linted.stderr}\n{made.stdout}"


@pytest.mark.parametrize("kind", [[], ["--kv"], ["--sort-key", "shard"]], ids=["locks", "kv", "locks-sort-key"])
def test_terraform_template_parses_as_hcl(kind: List[str]) -> None:
    import hcl2
    from hcl2.utils import SerializationOptions

    made = run("template", "terraform", "orders-table", *kind)
    assert made.returncode == 0, said(made)
    parsed = hcl2.loads(made.stdout, serialization_options=SerializationOptions(strip_string_quotes=True, explicit_blocks=False))
    (resources,) = parsed["resource"]
    (tables,) = resources["aws_dynamodb_table"].values()
    assert tables["name"] == "orders-table" and tables["billing_mode"] == "PAY_PER_REQUEST"
    attributes = {attribute["name"]: attribute["type"] for attribute in tables["attribute"]}
    if kind == ["--kv"]:
        assert (tables["hash_key"], tables["range_key"]) == ("pk", "sk")
        assert attributes == {"pk": "S", "sk": "S"}
        assert tables["ttl"] == [{"attribute_name": "expires", "enabled": True}]
    else:
        assert tables["hash_key"] == "id" and "ttl" not in tables  # lock items never expire by TTL
        expected = {"id": "S", **({"shard": "S"} if kind else {})}
        assert attributes == expected and tables.get("range_key") == (kind[1] if kind else None)
    assert parsed["output"], "the table's ARN is an output"


# --- a pseudo-terminal --------------------------------------------------------------------


class Terminal:
    """A command whose stdin, stdout and stderr are one pseudo-terminal of `rows` x `columns`;
    what it writes is collected on a thread, and `type` sends keys."""

    def __init__(self, argv: List[str], rows: int = 24, columns: int = 120) -> None:
        self.argv, self.rows, self.columns = argv, rows, columns
        self.raw = b""
        self._unread = b""
        self._lock = threading.Lock()

    def __enter__(self) -> "Terminal":
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", self.rows, self.columns, 0, 0))
        env = dict(os.environ, TERM="xterm", COLUMNS=str(self.columns), LINES=str(self.rows))
        self.process = subprocess.Popen(self.argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.master = master
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every copy of the terminal's other side is closed
                return
            if not chunk:
                return
            with self._lock:
                self.raw += chunk
                self._unread += chunk

    def take(self) -> bytes:
        """What arrived since the last take."""
        with self._lock:
            chunk, self._unread = self._unread, b""
        return chunk

    def text(self) -> str:
        with self._lock:
            return self.raw.decode("utf-8", "replace").replace("\r\n", "\n")

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.text()):
                return
            if self.process.poll() is not None:
                time.sleep(0.2)  # the last output may still be on its way
                if predicate(self.text()):
                    return
                break
            time.sleep(0.02)
        raise AssertionError(f"the terminal never showed what was expected:\n{self.text()}")

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait_exit(self, timeout: float = TIMEOUT) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._reader.join(timeout=10)
        os.close(self.master)


@pytest.fixture
def ddb_kv_table_name(ddb_endpoint: str) -> Iterator[str]:
    name = unique("cli-kv")
    dynalease.create_table(name, partition_key="pk", sort_key="sk", endpoint_url=ddb_endpoint)
    yield name

