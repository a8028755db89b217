//! Sets `dynalease_repo_docs` when the repository's documents are next to the crate, so that
//! `cargo test --doc` compiles the Rust examples in them (see `src/lib.rs`). A packaged crate
//! holds only `core/`: without the cfg, its doctests build from its own files.

use std::path::Path;

/// The documents whose examples the doctests include, relative to `core/`.
const REPO_DOCS: [&str; 2] = ["../README.md", "../docs/table-format.md"];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(dynalease_repo_docs)");
    // Not the documents themselves: an edit to them must not rebuild the crate (rustdoc reads
    // them afresh on every `cargo test --doc`), and whether they exist does not change.
    println!("cargo::rerun-if-changed=build.rs");
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    if REPO_DOCS.iter().all(|doc| Path::new(&manifest_dir).join(doc).is_file()) {
        println!("cargo::rustc-cfg=dynalease_repo_docs");
    }
}
