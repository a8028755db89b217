"""The sdist's build backend (bindings-python/build-backend/dynalease_build.py): a build from
source without Rust says what to install. scripts/test-release runs it for real through pip
without a toolchain; these cover the cases that needs a network or its failure for."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parents[1] / "build-backend" / "dynalease_build.py"


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch):
    spec = importlib.util.spec_from_file_location("dynalease_build_under_test", BACKEND)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module.shutil, "which", lambda name, *a, **k: None)  # no cargo on PATH
    monkeypatch.delenv("MATURIN_NO_INSTALL_RUST", raising=False)
    return module


def test_the_message_names_the_rust_version_from_the_workspace(backend) -> None:
    manifest = (BACKEND.parents[2] / "Cargo.toml").read_text()
    assert f'rust-version = "{backend._rust_version()}"' in manifest


def test_without_a_way_to_fetch_rust_the_build_stops_before_maturin_runs(backend, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MATURIN_NO_INSTALL_RUST", "1")
    called = []
    hook = backend._needs_rust(lambda *args: called.append(args))
    with pytest.raises(SystemExit) as stopped:
        hook("wheels")
    assert stopped.value.code == 1 and called == []
    err = capsys.readouterr().err
    assert "MATURIN_NO_INSTALL_RUST is set" in err and "https://rustup.rs" in err
    assert sys.version.split()[0].rsplit(".", 1)[0] in err  # the interpreter it was building for


def test_a_failed_toolchain_fetch_says_what_to_install(backend, monkeypatch, capsys) -> None:
    monkeypatch.setattr(backend, "_can_fetch_rust", lambda: True)

    def fetch_fails(*args):
        raise OSError("Temporary failure in name resolution")

    with pytest.raises(SystemExit):
        backend._needs_rust(fetch_fails)("wheels")
    err = capsys.readouterr().err
    assert "fetching a toolchain failed (Temporary failure in name resolution)" in err and "https://rustup.rs" in err


def test_with_cargo_the_hook_is_maturins_own(backend, monkeypatch) -> None:
    monkeypatch.setattr(backend.shutil, "which", lambda name, *a, **k: "/usr/bin/cargo")
    assert backend._needs_rust(lambda directory: f"built in {directory}")("wheels") == "built in wheels"
