//! `relayer`: the operator's binary. One file per command under `commands/` (an `Args` struct
//! and a `run`); the node runtime, the auditor and the chain client live in libraries. Built
//! with default features it links no developer tooling (no embedded chain, simulator or
//! plotting): see `relayer-dev` for those.

mod commands;
mod exit;

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use relayer_node::process;

#[derive(Parser)]
#[command(
    name = "relayer",
    version,
    about = "Nym-API rewarding relayer: threshold-signed epoch rewards",
    after_help = exit::HELP
)]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: commands::Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    process::init_logging(matches!(cli.log_format, LogFormat::Json));
    process::run_command(cli.command.run(), exit::code_of)
}
