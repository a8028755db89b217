"""The build backend of dynalease's sdist: maturin's, which compiles the Rust core, plus a clear
message when it cannot.

pip builds from the sdist only on a machine no published wheel fits. Without cargo on PATH,
maturin's backend fetches a Rust toolchain (through puccinialin, which pip installs into the
isolated build environment); without build isolation, without a network, or with
MATURIN_NO_INSTALL_RUST set, it cannot, and the install would end in a traceback. This backend
says instead what to install and why it is needed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any, Callable, TypeVar

import maturin

# The hooks maturin's backend answers unchanged.
build_sdist = maturin.build_sdist
get_requires_for_build_sdist = maturin.get_requires_for_build_sdist
get_requires_for_build_wheel = maturin.get_requires_for_build_wheel

Hook = TypeVar("Hook", bound=Callable[..., Any])


def _rust_version() -> str:
    """The oldest Rust the crates build with: the workspace's `rust-version`, the one place it is set."""
    manifest = Path(__file__).resolve().parents[2] / "Cargo.toml"
    try:
        found = re.search(r'^rust-version\s*=\s*"([^"]+)"', manifest.read_text(encoding="utf-8"), re.MULTILINE)
    except OSError:
        found = None
    return found.group(1) if found else "stable"


def _cargo_found() -> bool:
    return shutil.which("cargo") is not None


def _can_fetch_rust() -> bool:
    """Whether maturin's backend will fetch a toolchain itself (as it does in pip's isolated build)."""
    return not os.environ.get("MATURIN_NO_INSTALL_RUST") and importlib.util.find_spec("puccinialin") is not None


def _no_rust(reason: str) -> SystemExit:
    python = f"{sys.implementation.name} {sys.version_info.major}.{sys.version_info.minor}"
    sys.stderr.write(
        f"\ndynalease: no prebuilt wheel fits this machine ({sysconfig.get_platform()}, {python}), so pip is "
        f"building it from source, which needs a Rust toolchain (cargo and rustc {_rust_version()} or newer), and "
        f"{reason}.\n"
        "  Install Rust from https://rustup.rs (or your system's package manager), open a new shell so that "
        "`cargo --version` works,\n"
        "  then run the same pip command again. A C linker is needed too (build-essential, the Xcode command "
        "line tools, or Visual Studio's C++ build tools).\n\n"
    )
    return SystemExit(1)


def _needs_rust(hook: Hook) -> Hook:
    """Runs a hook that compiles, or says plainly why it cannot."""

    def run(*args: Any, **kwargs: Any) -> Any:
        if _cargo_found():
            return hook(*args, **kwargs)
        if not _can_fetch_rust():
            why = (
                "MATURIN_NO_INSTALL_RUST is set"
                if os.environ.get("MATURIN_NO_INSTALL_RUST")
                else "cargo is not on PATH (and without pip's build isolation none can be fetched)"
            )
            raise _no_rust(why)
        try:
            return hook(*args, **kwargs)
        except Exception as error:  # fetching a toolchain failed: offline, a proxy, an unknown platform
            raise _no_rust(f"cargo is not on PATH, and fetching a toolchain failed ({error})") from error

    run.__name__ = hook.__name__
    run.__doc__ = hook.__doc__
    return run  # type: ignore[return-value]


prepare_metadata_for_build_wheel = _needs_rust(maturin.prepare_metadata_for_build_wheel)
build_wheel = _needs_rust(maturin.build_wheel)
build_editable = _needs_rust(maturin.build_editable)
