//! `relayer-dev`: developer tooling, one file per command under `commands/`: a devnet on the
//! embedded chain, a cluster for a local wasmd, the network benchmark, the simulator.

mod commands;

use std::process::ExitCode;

use clap::Parser;
use relayer_node::process;

#[derive(Parser)]
#[command(
    name = "relayer-dev",
    version,
    about = "Developer tooling for the Nym-API rewarding relayer: devnets, clusters, benchmarks, simulation",
    after_help = "Example (the README's demo: a whole network on the embedded chain):\n  relayer-dev devnet --nodes 4 --mixnodes 100 --epoch-secs 5"
)]
struct Cli {
    #[command(subcommand)]
    command: commands::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    process::init_logging(false);
    process::run_command(cli.command.run(), |_| 1)
}
