//! `relayer-dev bench-wasmd`: gas on a real wasmd (SubmitEpoch for n x M and its rejected
//! duplicate, the largest query answers at the mixnode cap) -> `wasmd_gas.json` and `.svg`.

use std::path::PathBuf;

use nym_rewards::msg::QueryMsg;
use nym_rewards::rules::{MAX_EPOCHS_PAGE, MAX_MEMBERS, MAX_MIXNODE_SCAN};
use nym_rewards::state::CHUNK_RECORDS;
use relayer_devtools::wasmd::gas::{FixtureContract, Model, measure_submissions};
use relayer_devtools::wasmd::query_gas::{CommandRestarter, NamedQuery, measure_queries};
use relayer_devtools::wasmd::report::{FLOOR, MODEL, WasmdGasReport, write};
use relayer_devtools::wasmd::{SignerFixture, dense_rewards, sparse_rewards};
use relayer_node::chain::Chain;
use relayer_node::chain::fees::FeeSettings;
use relayer_node::chain::wasmd::WasmdChain;
use relayer_node::keys::ChainAccount;

use super::{ChainArgs, read};

/// Endpoint length at which a set of `MAX_MEMBERS` still fits `MAX_SIGNER_SET_BYTES`
/// (about 180 + 2 x len bytes per member as stored).
const LONGEST_FITTING_ENDPOINT: usize = 150;

/// Arguments of `relayer-dev bench-wasmd`.
#[derive(clap::Args)]
#[command(
    after_help = "Example (a wasmd from make localnet-start and a cluster funded on it):\n  relayer-dev bench-wasmd --node http://127.0.0.1:26657 --cluster cluster --sizes 4,16,64 \\\n    --mixnodes 100,1000,5000 --query-mixnodes 0 --out bench/results"
)]
pub struct Args {
    #[command(flatten)]
    chain: ChainArgs,
    /// The contract's wasm.
    #[arg(long, default_value = "artifacts/nym_rewards.wasm")]
    wasm: PathBuf,
    /// Signer-set sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4,16,64")]
    sizes: Vec<usize>,
    /// Mixnodes per epoch, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,5000")]
    mixnodes: Vec<u32>,
    /// The VM model's results, shown beside the measurements (`make bench-gas`).
    #[arg(long, default_value = "bench/results/contract_gas.json")]
    model: PathBuf,
    /// Mixnodes per epoch of the query data set (0: no query measurement).
    #[arg(long, default_value_t = 20_000)]
    query_mixnodes: u32,
    /// Shell command restarting the chain with `QUERY_GAS_LIMIT` from its environment
    /// (needed for the query measurement).
    #[arg(long)]
    restart_command: Option<String>,
    /// Bracket width, in percent of the gas, at which the query-gas bisection stops.
    #[arg(long, default_value_t = 2)]
    precision_pct: u64,
    /// The v1 wasm: adds epochs stored by v1 and migrated (read whole by queries) to the
    /// query data set (`scripts/build-wasm-at.sh` builds it).
    #[arg(long)]
    v1_wasm: Option<PathBuf>,
    /// The chain's version, as reported (`wasmd version`).
    #[arg(long, default_value = "unknown")]
    wasmd_version: String,
    /// Output directory.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

/// Runs the benchmark and writes the report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let admin = args.chain.admin()?;
    let model = Model::read(&args.model)?;
    let wasm = read(&args.wasm)?;
    let rpc = args.chain.node.as_str();
    let chain = WasmdChain::connect(rpc, None, "", FeeSettings::default()).await?;
    let (code_id, _) = chain.store_code(&admin, wasm).await?;
    eprintln!(
        "bench-wasmd: wasmd {}, code id {code_id}",
        args.wasmd_version
    );
    let submissions =
        measure_submissions(rpc, &admin, code_id, &args.sizes, &args.mixnodes, &model).await?;

    let query_epochs = MAX_MIXNODE_SCAN;
    let queries = if args.query_mixnodes == 0 {
        Vec::new()
    } else {
        let Some(command) = args.restart_command.clone() else {
            anyhow::bail!(
                "--restart-command is needed to measure query gas (or --query-mixnodes 0)"
            );
        };
        let count = args.query_mixnodes;
        let mut queries = v2_query_set(rpc, &admin, code_id, count).await?;
        queries.extend(largest_answers_set(rpc, &admin, code_id, count).await?);
        if let Some(path) = &args.v1_wasm {
            queries.extend(v1_query_set(rpc, &admin, code_id, read(path)?, count).await?);
        }
        let mut restarter = CommandRestarter { command };
        measure_queries(&chain, &mut restarter, &queries, args.precision_pct).await?
    };
    let report = WasmdGasReport {
        wasmd_version: args.wasmd_version,
        floor: FLOOR,
        model: MODEL,
        submissions,
        query_mixnodes: args.query_mixnodes,
        query_epochs,
        queries,
    };
    write(&report, &args.out)?;
    print_summary(&report);
    eprintln!(
        "bench-wasmd: written to {}",
        args.out.join("wasmd_gas.json").display()
    );
    Ok(())
}

/// The v2 query data set: `MAX_MIXNODE_SCAN` epochs of `count` mixnodes, and the queries
/// with the largest answers over it.
async fn v2_query_set(
    rpc: &str,
    admin: &ChainAccount,
    code_id: u64,
    count: u32,
) -> anyhow::Result<Vec<NamedQuery>> {
    let fixture = SignerFixture::new(4, admin)?;
    let contract = FixtureContract::instantiate(rpc, admin, code_id, fixture, count).await?;
    let rewards = dense_rewards(count);
    for epoch in 0..u64::from(MAX_MIXNODE_SCAN) {
        let outcome = contract.submit(admin, epoch, &rewards).await?;
        eprintln!(
            "bench-wasmd: query data set: epoch {epoch} of {MAX_MIXNODE_SCAN}, {count} mixnodes ({} gas)",
            outcome.gas_used
        );
    }
    let page = |mix_id| QueryMsg::MixnodeRewards {
        mix_id,
        start_after: None,
        limit: Some(MAX_MIXNODE_SCAN),
    };
    let full_chunk = (CHUNK_RECORDS as u32).min(count);
    Ok(named(
        contract.chain.contract(),
        vec![
            (
                format!("MixnodeRewards: a page of {MAX_MIXNODE_SCAN} epochs, the last mixnode"),
                page(count),
            ),
            (
                format!(
                    "MixnodeRewards: a page of {MAX_MIXNODE_SCAN} epochs, the end of a full chunk"
                ),
                page(full_chunk),
            ),
            (
                "EpochRewardsPacked: one whole epoch".to_string(),
                QueryMsg::EpochRewardsPacked { epoch: 0 },
            ),
            (
                "EpochRewards (JSON): one whole epoch".to_string(),
                QueryMsg::EpochRewards { epoch: 0 },
            ),
            (
                format!("Epochs: a page of up to {MAX_EPOCHS_PAGE} summaries"),
                QueryMsg::Epochs {
                    start_after: None,
                    limit: Some(MAX_EPOCHS_PAGE),
                },
            ),
        ],
    ))
}

/// The largest answers the rules allow: a signer set of the most members with endpoints as
/// long as such a set can store (`MAX_SIGNER_SET_BYTES`), and one epoch of `count` mixnodes
/// with ten-digit ids certified by its threshold.
async fn largest_answers_set(
    rpc: &str,
    admin: &ChainAccount,
    code_id: u64,
    count: u32,
) -> anyhow::Result<Vec<NamedQuery>> {
    let fixture =
        SignerFixture::new(MAX_MEMBERS, admin)?.with_endpoints_of(LONGEST_FITTING_ENDPOINT);
    let contract = FixtureContract::instantiate(rpc, admin, code_id, fixture, count).await?;
    let rewards = sparse_rewards(count);
    let outcome = contract.submit(admin, 0, &rewards).await?;
    eprintln!(
        "bench-wasmd: query data set: {MAX_MEMBERS} members, {} signatures, {count} sparse mixnodes ({} gas)",
        contract.fixture.threshold(),
        outcome.gas_used
    );
    let last = rewards.last().map_or(0, |reward| reward.mix_id);
    Ok(named(
        contract.chain.contract(),
        vec![
            (
                format!(
                    "SignerSet: {MAX_MEMBERS} members, {LONGEST_FITTING_ENDPOINT}-byte endpoints"
                ),
                QueryMsg::SignerSet { version: None },
            ),
            (
                format!(
                    "EpochRewards (JSON): one epoch, ten-digit ids, {} signatures",
                    contract.fixture.threshold()
                ),
                QueryMsg::EpochRewards { epoch: 0 },
            ),
            (
                "MixnodeRewards: the last of the sparse mixnodes".to_string(),
                QueryMsg::MixnodeRewards {
                    mix_id: last,
                    start_after: None,
                    limit: Some(MAX_MIXNODE_SCAN),
                },
            ),
        ],
    ))
}

/// Epochs v1 stored (one blob each, read whole): two of `count` mixnodes submitted to the v1
/// code and migrated to `code_id`, which a `MixnodeRewards` page reads to its budget.
async fn v1_query_set(
    rpc: &str,
    admin: &ChainAccount,
    code_id: u64,
    v1_wasm: Vec<u8>,
    count: u32,
) -> anyhow::Result<Vec<NamedQuery>> {
    let chain = WasmdChain::connect(rpc, None, "", FeeSettings::default()).await?;
    let (v1_code_id, _) = chain.store_code(admin, v1_wasm).await?;
    let fixture = SignerFixture::new(4, admin)?;
    let contract = FixtureContract::instantiate_v1(rpc, admin, v1_code_id, fixture, count).await?;
    let rewards = dense_rewards(count);
    for epoch in 0..2 {
        let outcome = contract.submit_v1(admin, epoch, &rewards).await?;
        eprintln!(
            "bench-wasmd: query data set: v1 epoch {epoch}, {count} mixnodes ({} gas)",
            outcome.gas_used
        );
    }
    contract.migrate_from_v1(admin, code_id).await?;
    Ok(named(
        contract.chain.contract(),
        vec![
            (
                "MixnodeRewards over v1 epochs (migrated): a page, the last mixnode".to_string(),
                QueryMsg::MixnodeRewards {
                    mix_id: count,
                    start_after: None,
                    limit: Some(MAX_MIXNODE_SCAN),
                },
            ),
            (
                "EpochRewards (JSON) of a v1 epoch (migrated)".to_string(),
                QueryMsg::EpochRewards { epoch: 0 },
            ),
        ],
    ))
}

fn named(contract: &str, queries: Vec<(String, QueryMsg)>) -> Vec<NamedQuery> {
    queries
        .into_iter()
        .map(|(name, msg)| NamedQuery {
            name,
            contract: contract.to_string(),
            msg,
        })
        .collect()
}

fn print_summary(report: &WasmdGasReport) {
    println!(
        "{:>4} {:>6} {:>10} {:>10} {:>6} {:>10} {:>7} {:>10} {:>10} {:>6}",
        "n", "M", "submit", "floor", "x", "model", "err %", "duplicate", "floor", "x"
    );
    for row in &report.submissions {
        println!(
            "{:>4} {:>6} {:>10} {:>10} {:>6.2} {:>10} {:>7.1} {:>10} {:>10} {:>6.2}",
            row.signers_n,
            row.mixnodes,
            row.submit.gas_used,
            row.submit.floor,
            row.submit.over_floor,
            row.submit.model,
            row.submit.model_error_pct,
            row.duplicate.gas_used,
            row.duplicate.floor,
            row.duplicate.over_floor
        );
    }
    for query in &report.queries {
        let at_most = query
            .gas_at_most
            .map_or_else(|| "above the ceiling".to_string(), |gas| gas.to_string());
        println!(
            "{}: gas in ({}, {}], answer {} bytes, within the default limit: {}",
            query.name, query.gas_above, at_most, query.answer_bytes, query.within_default_limit
        );
    }
}
