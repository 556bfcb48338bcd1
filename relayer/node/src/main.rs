//! The `relayer` binary: see `relayer --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
