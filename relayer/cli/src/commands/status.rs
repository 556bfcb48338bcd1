//! `relayer status`: a readable summary of a node from its API.

use relayer_node::http;

use super::api_args::ApiArgs;

/// Arguments of `relayer status`.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  relayer status --api https://node0.example.org:8000")]
pub struct Args {
    #[command(flatten)]
    api: ApiArgs,
}

/// Prints the node's status.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let status = http::fetch_status(&args.api.client()?, &args.api.api).await?;
    let or_none = |epoch: Option<u64>| epoch.map_or_else(|| "none".into(), |e| e.to_string());
    let submissions = status.submissions;
    let member = status.member_index.map_or_else(
        || "not a member of the running signer set".into(),
        |index| format!("member {index}"),
    );
    println!("node        {} ({member})", status.name);
    println!("peer id     {}", status.peer_id);
    println!("account     {}", status.address);
    println!(
        "chain       {} contract {}",
        status.chain_id, status.contract
    );
    println!(
        "signer set  v{}: {} members, threshold {}, observation threshold {}, policy {}",
        status.signer_set_version,
        status.members,
        status.threshold,
        status.observation_threshold,
        status.policy
    );
    if let Some(next) = status.scheduled_signer_set {
        let role = if next.member {
            "a member"
        } else {
            "not a member"
        };
        println!(
            "next set    v{} from epoch {} (this node is {role})",
            next.version, next.effective_from_epoch
        );
    }
    println!(
        "peers       {} of {} connected",
        status.connected_peers,
        status.members.saturating_sub(1)
    );
    println!(
        "epochs      running {}, last official {}",
        or_none(status.current_epoch),
        or_none(status.last_official_epoch)
    );
    println!(
        "submissions {} attempted, {} accepted, {} lost to another member, {} failed",
        submissions.attempted, submissions.accepted, submissions.lost, submissions.failed
    );
    Ok(())
}
