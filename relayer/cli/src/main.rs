//! The `relayer` binary: see `relayer --help`.

mod bench_cli;
mod cli;
mod proof_cli;
mod sim_cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
