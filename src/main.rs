//! The `sessiondir` command: admin tools and a lock-contention benchmark, as glue over the
//! library's public API. See `sessiondir --help` and the README.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
