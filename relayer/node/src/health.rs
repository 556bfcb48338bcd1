//! Readiness: whether this node can do its job now, as `/v1/health` and
//! `relayer health-check` report it. A background watcher polls the chain (height, sync state,
//! the account's balance); [`readiness`] turns that, the connected members and the newest
//! final epoch into one named check per condition, so an operator sees which one failed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::chain::{Chain, ChainHealth};
use crate::now_ms;

/// How often the watcher polls the chain.
pub const CHAIN_POLL: Duration = Duration::from_secs(5);
/// Time allowed for one poll (a chain that accepts connections but stalls fails it).
pub const CHAIN_POLL_TIMEOUT: Duration = Duration::from_secs(4);
/// A chain answer older than this counts as unreachable.
pub const CHAIN_STALE: Duration = Duration::from_secs(20);
/// How many epochs the newest final epoch may lag the running one.
pub const FINAL_EPOCH_LAG: u64 = 2;
/// A newest block older than this means the chain (or the RPC node's view of it) has halted.
pub const CHAIN_HALTED: Duration = Duration::from_secs(60);

/// What the watcher last saw of the chain.
#[derive(Debug, Clone, Default)]
pub struct ChainView {
    /// The last successful answer and when it came (unix ms).
    pub last_ok: Option<(ChainHealth, u64)>,
    /// The last failure, if the most recent poll failed.
    pub last_error: Option<String>,
}

/// The chain view shared by the watcher and the API.
pub type SharedChainView = Arc<Mutex<ChainView>>;

/// One readiness condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Check {
    /// `chain`, `peers`, `balance` or `final_epoch`.
    pub name: String,
    /// Whether it holds.
    pub ok: bool,
    /// What was measured.
    pub detail: String,
}

/// What readiness is computed from.
#[derive(Debug, Clone)]
pub struct ReadinessInputs {
    /// The watcher's view.
    pub chain: ChainView,
    /// Now (unix ms).
    pub now_ms: u64,
    /// Members connected.
    pub connected_peers: usize,
    /// Signatures needed by the governing signer set (`None`: no set known yet).
    pub threshold: Option<usize>,
    /// The running epoch.
    pub current_epoch: Option<u64>,
    /// The newest epoch with official data stored here.
    pub latest_final: Option<u64>,
    /// Least balance, in the fee denom, that counts as funded.
    pub min_balance: u128,
}

/// The readiness checks; the node is ready when every one holds.
pub fn readiness(inputs: &ReadinessInputs) -> Vec<Check> {
    vec![
        chain_check(inputs),
        peers_check(inputs),
        balance_check(inputs),
        final_epoch_check(inputs),
    ]
}

fn check(name: &str, ok: bool, detail: String) -> Check {
    Check {
        name: name.into(),
        ok,
        detail,
    }
}

fn chain_check(inputs: &ReadinessInputs) -> Check {
    // Causes stay in the node's log: the public answer never echoes the RPC's errors (they
    // may name an internal URL).
    let Some((health, at_ms)) = &inputs.chain.last_ok else {
        let why = match inputs.chain.last_error {
            Some(_) => "unreachable (see the node's log)",
            None => "not polled yet",
        };
        return check("chain", false, why.into());
    };
    if inputs.chain.last_error.is_some() {
        return check(
            "chain",
            false,
            "the last poll failed (see the node's log)".into(),
        );
    }
    let age = Duration::from_millis(inputs.now_ms.saturating_sub(*at_ms));
    if age > CHAIN_STALE {
        return check("chain", false, format!("no answer for {}s", age.as_secs()));
    }
    let block_age = (inputs.now_ms / 1_000).saturating_sub(health.block_time_secs);
    if Duration::from_secs(block_age) > CHAIN_HALTED {
        return check(
            "chain",
            false,
            format!(
                "the newest block, {}, is {block_age}s old: halted?",
                health.height
            ),
        );
    }
    if health.catching_up {
        return check(
            "chain",
            false,
            format!("catching up at height {}", health.height),
        );
    }
    check("chain", true, format!("height {}", health.height))
}

fn peers_check(inputs: &ReadinessInputs) -> Check {
    let Some(threshold) = inputs.threshold else {
        return check("peers", false, "no signer set known yet".into());
    };
    let needed = threshold.saturating_sub(1);
    check(
        "peers",
        inputs.connected_peers >= needed,
        format!(
            "{} connected, {needed} needed (threshold {threshold} less this node)",
            inputs.connected_peers
        ),
    )
}

fn balance_check(inputs: &ReadinessInputs) -> Check {
    match inputs
        .chain
        .last_ok
        .as_ref()
        .map(|(health, _)| health.balance)
    {
        Some(Some(balance)) => check(
            "balance",
            balance >= inputs.min_balance,
            format!("{balance}, floor {}", inputs.min_balance),
        ),
        Some(None) => check("balance", true, "not reported by this chain".into()),
        None => check("balance", false, "unknown: chain unreachable".into()),
    }
}

fn final_epoch_check(inputs: &ReadinessInputs) -> Check {
    let Some(current) = inputs.current_epoch else {
        return check("final_epoch", true, "before the first epoch".into());
    };
    let oldest_allowed = current.checked_sub(FINAL_EPOCH_LAG);
    let latest = inputs
        .latest_final
        .map_or_else(|| "none".to_string(), |epoch| epoch.to_string());
    let ok = match (oldest_allowed, inputs.latest_final) {
        (None, _) => true, // the first epochs have had no time to finish
        (Some(oldest), Some(latest)) => latest >= oldest,
        (Some(_), None) => false,
    };
    check(
        "final_epoch",
        ok,
        format!("latest final {latest}, running {current}"),
    )
}

/// Polls `chain` for its health and `address`'s balance every [`CHAIN_POLL`] until shutdown.
pub async fn watch_chain(
    chain: Arc<dyn Chain>,
    address: String,
    view: SharedChainView,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let polled = tokio::time::timeout(CHAIN_POLL_TIMEOUT, chain.health(&address)).await;
        let error = match polled {
            Ok(Ok(health)) => {
                if let Ok(mut view) = view.lock() {
                    if view.last_error.take().is_some() {
                        tracing::info!("the chain answers again");
                    }
                    view.last_ok = Some((health, now_ms()));
                }
                None
            }
            Ok(Err(err)) => Some(err.to_string()),
            Err(_) => Some(format!("no answer within {CHAIN_POLL_TIMEOUT:?}")),
        };
        if let Some(error) = error
            && let Ok(mut view) = view.lock()
        {
            if view.last_error.as_deref() != Some(error.as_str()) {
                tracing::warn!("polling the chain: {error}");
            }
            view.last_error = Some(error);
        }
        tokio::select! {
            () = tokio::time::sleep(CHAIN_POLL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready() -> ReadinessInputs {
        ReadinessInputs {
            chain: ChainView {
                last_ok: Some((
                    ChainHealth {
                        height: 100,
                        block_time_secs: 1_001,
                        catching_up: false,
                        balance: Some(5_000),
                    },
                    1_000_000,
                )),
                last_error: None,
            },
            now_ms: 1_002_000,
            connected_peers: 2,
            threshold: Some(3),
            current_epoch: Some(10),
            latest_final: Some(8),
            min_balance: 1_000,
        }
    }

    fn failing(inputs: &ReadinessInputs) -> Vec<String> {
        readiness(inputs)
            .into_iter()
            .filter(|check| !check.ok)
            .map(|check| check.name)
            .collect()
    }

    #[test]
    fn a_healthy_node_passes_every_check() {
        assert!(failing(&ready()).is_empty(), "{:?}", readiness(&ready()));
    }

    #[test]
    fn an_unreachable_stale_or_syncing_chain_fails_the_chain_check() {
        let mut down = ready();
        down.chain = ChainView {
            last_ok: None,
            last_error: Some("connection refused".into()),
        };
        assert_eq!(failing(&down), ["chain", "balance"]);
        let mut stale = ready();
        stale.now_ms += CHAIN_STALE.as_millis() as u64 + 1;
        assert_eq!(failing(&stale), ["chain"]);
        let mut stalled = ready();
        stalled.chain.last_error = Some("no answer within 4s".into());
        assert_eq!(failing(&stalled), ["chain"], "a failed poll counts at once");
        let mut halted = ready();
        if let Some((health, _)) = halted.chain.last_ok.as_mut() {
            health.block_time_secs -= CHAIN_HALTED.as_secs() + 2;
        }
        assert_eq!(failing(&halted), ["chain"], "an answer about an old block");
        let detail = &readiness(&down)[0].detail;
        assert!(
            !detail.contains("refused"),
            "the cause stays in the log: {detail}"
        );
        let mut syncing = ready();
        if let Some((health, _)) = syncing.chain.last_ok.as_mut() {
            health.catching_up = true;
        }
        assert_eq!(failing(&syncing), ["chain"]);
    }

    #[test]
    fn too_few_peers_fail_the_peers_check() {
        let mut alone = ready();
        alone.connected_peers = 1;
        assert_eq!(failing(&alone), ["peers"]);
        let mut no_set = ready();
        no_set.threshold = None;
        assert_eq!(failing(&no_set), ["peers"]);
    }

    #[test]
    fn a_balance_below_the_floor_fails_the_balance_check() {
        let mut poor = ready();
        poor.min_balance = 5_001;
        assert_eq!(failing(&poor), ["balance"]);
        let mut unreported = ready();
        if let Some((health, _)) = unreported.chain.last_ok.as_mut() {
            health.balance = None;
        }
        assert!(failing(&unreported).is_empty());
    }

    #[test]
    fn a_final_epoch_lagging_more_than_two_fails() {
        let mut behind = ready();
        behind.latest_final = Some(7);
        assert_eq!(failing(&behind), ["final_epoch"]);
        behind.latest_final = None;
        assert_eq!(failing(&behind), ["final_epoch"]);
        let mut young = ready();
        young.current_epoch = Some(1);
        young.latest_final = None;
        assert!(failing(&young).is_empty(), "the first epochs are exempt");
    }
}
