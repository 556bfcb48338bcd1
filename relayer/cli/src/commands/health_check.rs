//! `relayer health-check`: a node's readiness for scripts and systemd. Exit 0 when ready,
//! 1 when not (each failing check printed), 3 when the node cannot be reached.

use relayer_node::http;

use super::api_args::ApiArgs;

/// Arguments of `relayer health-check`.
#[derive(clap::Args)]
#[command(
    after_help = "Example (a monitoring probe or a cron job; not ExecStartPost: a node just started is not\nready until its peers connect and it has caught up):\n  relayer health-check --api https://node0.example.org:8000 --ca-cert /etc/relayer/ca.pem"
)]
pub struct Args {
    #[command(flatten)]
    api: ApiArgs,
}

/// Prints every check and fails unless all hold.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let health = http::fetch_health(&args.api.client()?, &args.api.api).await?;
    for check in &health.checks {
        let mark = if check.ok { "ok  " } else { "FAIL" };
        println!("{mark} {:<12} {}", check.name, check.detail);
    }
    let failing: Vec<&str> = health
        .checks
        .iter()
        .filter(|check| !check.ok)
        .map(|check| check.name.as_str())
        .collect();
    if failing.is_empty() && !health.checks.is_empty() && health.status == "ready" {
        println!("{}: ready", health.name);
        Ok(())
    } else {
        anyhow::bail!(
            "{} is not ready ({}): {}",
            health.name,
            health.status,
            failing.join(", ")
        )
    }
}
