//! `cargo install dynalease-cli` gives this binary; the Python wheel and the npm package run the
//! same code through their native modules.

fn main() {
    std::process::exit(dynalease_cli::run(std::env::args_os()));
}
