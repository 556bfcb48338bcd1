//! The gas of the contract's largest query answers on a real wasmd. A smart query reports no
//! gas, but wasmd refuses one that exceeds its `query_gas_limit` (app.toml): the chain is
//! restarted with different limits and each query's gas is bracketed between the highest
//! limit it fails under and the lowest it passes under (bisection, all queries sharing each
//! restart).

use nym_rewards::msg::QueryMsg;
use relayer_node::chain::ChainError;
use relayer_node::chain::wasmd::WasmdChain;
use serde::Serialize;

use crate::DevError;

/// wasmd's default `query_gas_limit`.
pub const DEFAULT_QUERY_GAS_LIMIT: u64 = 3_000_000;
/// The highest limit tried for a query that fails under the default.
const CEILING: u64 = 30_000_000;
/// Attempts to reach the chain after a restart (100 ms apart).
const READY_ATTEMPTS: u32 = 100;

/// One query's measured gas.
#[derive(Debug, Clone, Serialize)]
pub struct QueryGas {
    /// What it asks.
    pub name: String,
    /// The query as sent.
    pub query: serde_json::Value,
    /// Size of the JSON answer.
    pub answer_bytes: usize,
    /// The highest limit it failed under: its gas is above this.
    pub gas_above: u64,
    /// The lowest limit it passed under: its gas is at most this (`None`: above the ceiling).
    pub gas_at_most: Option<u64>,
    /// Whether it runs under wasmd's default limit.
    pub within_default_limit: bool,
}

/// A query to measure, by name.
pub struct NamedQuery {
    /// Shown in reports.
    pub name: String,
    /// The contract asked.
    pub contract: String,
    /// The query.
    pub msg: QueryMsg,
}

/// Restarts the chain with a query gas limit (`None`: wasmd's default).
pub trait ChainRestarter {
    /// Restarts and returns once the chain answers again.
    fn restart(&mut self, query_gas_limit: Option<u64>) -> Result<(), DevError>;
}

/// Restarts by running a shell command with `QUERY_GAS_LIMIT` in its environment
/// (`scripts/localnet.sh restart`).
pub struct CommandRestarter {
    /// The command, run by `sh -c`.
    pub command: String,
}

impl ChainRestarter for CommandRestarter {
    fn restart(&mut self, query_gas_limit: Option<u64>) -> Result<(), DevError> {
        let mut command = std::process::Command::new("sh");
        command.arg("-c").arg(&self.command);
        match query_gas_limit {
            Some(limit) => command.env("QUERY_GAS_LIMIT", limit.to_string()),
            None => command.env_remove("QUERY_GAS_LIMIT"),
        };
        let output = command
            .output()
            .map_err(|err| DevError::io(format!("running {:?}", self.command), err))?;
        if !output.status.success() {
            return Err(DevError::Invalid(format!(
                "restarting the chain ({:?}) failed: {}",
                self.command,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(())
    }
}

/// What one query is known to cost so far.
struct Bracket {
    above: u64,
    at_most: Option<u64>,
    answer_bytes: usize,
}

impl Bracket {
    fn width(&self) -> u64 {
        self.at_most
            .map_or(0, |high| high.saturating_sub(self.above))
    }

    /// Whether the bracket is narrower than `precision_pct` percent of its upper end.
    fn is_narrow(&self, precision_pct: u64) -> bool {
        self.at_most
            .is_none_or(|high| self.width() * 100 <= high * precision_pct)
    }
}

/// Runs `msg`: `Some(answer size)` when it passes, `None` when it runs out of gas.
async fn run_query(chain: &WasmdChain, query: &NamedQuery) -> Result<Option<usize>, DevError> {
    for _ in 0..READY_ATTEMPTS {
        match chain.query_contract(&query.contract, &query.msg).await {
            Ok(answer) => return Ok(Some(answer.len())),
            // wasmd words it two ways: out of gas in the VM or storage, or too little left to
            // decode the answer.
            Err(ChainError::Refused(log))
                if log.contains("out of gas") || log.contains("insufficient gas") =>
            {
                return Ok(None);
            }
            Err(ChainError::Unavailable(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(DevError::Invalid(
        "the chain did not answer after a restart".into(),
    ))
}

/// Runs every query under `limit` and narrows the brackets.
async fn probe(
    chain: &WasmdChain,
    restarter: &mut dyn ChainRestarter,
    queries: &[NamedQuery],
    brackets: &mut [Bracket],
    limit: u64,
) -> Result<(), DevError> {
    let restart_limit = (limit != DEFAULT_QUERY_GAS_LIMIT).then_some(limit);
    tokio::task::block_in_place(|| restarter.restart(restart_limit))?;
    for (query, bracket) in queries.iter().zip(brackets.iter_mut()) {
        match run_query(chain, query).await? {
            Some(bytes) => {
                bracket.answer_bytes = bytes;
                bracket.at_most = Some(bracket.at_most.map_or(limit, |high| high.min(limit)));
            }
            None => bracket.above = bracket.above.max(limit),
        }
        if bracket.at_most.is_some_and(|high| high <= bracket.above) {
            return Err(DevError::Invalid(format!(
                "{}: passed under {:?} but failed under {} (gas is not deterministic?)",
                query.name, bracket.at_most, bracket.above
            )));
        }
    }
    Ok(())
}

/// Brackets each query's gas to within `precision_pct` percent (1 to 100), then restarts the
/// chain with the default limit again (also when the measurement fails).
pub async fn measure_queries(
    chain: &WasmdChain,
    restarter: &mut dyn ChainRestarter,
    queries: &[NamedQuery],
    precision_pct: u64,
) -> Result<Vec<QueryGas>, DevError> {
    if !(1..=100).contains(&precision_pct) {
        return Err(DevError::Invalid(format!(
            "the precision must be 1 to 100 %, not {precision_pct}"
        )));
    }
    let measured = bisect(chain, restarter, queries, precision_pct).await;
    let restored = tokio::task::block_in_place(|| restarter.restart(None));
    let measured = measured?;
    restored?;
    Ok(measured)
}

async fn bisect(
    chain: &WasmdChain,
    restarter: &mut dyn ChainRestarter,
    queries: &[NamedQuery],
    precision_pct: u64,
) -> Result<Vec<QueryGas>, DevError> {
    let mut brackets: Vec<Bracket> = queries
        .iter()
        .map(|_| Bracket {
            above: 0,
            at_most: None,
            answer_bytes: 0,
        })
        .collect();
    probe(
        chain,
        restarter,
        queries,
        &mut brackets,
        DEFAULT_QUERY_GAS_LIMIT,
    )
    .await?;
    let within_default: Vec<bool> = brackets.iter().map(|b| b.at_most.is_some()).collect();
    if brackets.iter().any(|b| b.at_most.is_none()) {
        probe(chain, restarter, queries, &mut brackets, CEILING).await?;
    }
    let mut restarts = 0;
    while let Some(widest) = brackets
        .iter()
        .filter(|b| !b.is_narrow(precision_pct))
        .max_by_key(|b| b.width())
    {
        let limit = widest.above + widest.width() / 2;
        restarts += 1;
        eprintln!("bench-wasmd: query gas limit {limit} (restart {restarts})");
        probe(chain, restarter, queries, &mut brackets, limit).await?;
    }
    Ok(queries
        .iter()
        .zip(brackets)
        .zip(within_default)
        .map(|((query, bracket), within_default_limit)| QueryGas {
            name: query.name.clone(),
            query: serde_json::to_value(&query.msg).unwrap_or_default(),
            answer_bytes: bracket.answer_bytes,
            gas_above: bracket.above,
            gas_at_most: bracket.at_most,
            within_default_limit,
        })
        .collect())
}
