# Sourced by the project's scripts: one cargo target for cargo, maturin and napi alike, so the
# AWS SDK is compiled once (napi passes --target <host>, which changes the output directory).
CARGO_BUILD_TARGET="${CARGO_BUILD_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}"
export CARGO_BUILD_TARGET
