//! The live dashboard at `/`: one embedded HTML page that polls `/v1/dashboard` and draws the
//! running epoch and time left, the last epochs (winner, how this node got the data, latency,
//! signer participation as a members x epochs grid) and a mixnode uptime chart. Its verify
//! action loads the browser auditor from `/auditor/` ([`crate::auditor_assets`]) and checks an
//! epoch, or a mixnode's history, against a chain endpoint the visitor enters.

use axum::response::Html;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use relayer_protocol::OfficialSource;
use relayer_store::StoredOfficial;

use crate::api::ApiState;
use crate::db::DbError;

/// Epochs shown.
pub const DASHBOARD_EPOCHS: u64 = 12;
/// Mixnodes charted.
pub const DASHBOARD_MIXNODES: usize = 4;

const PAGE: &str = include_str!("dashboard.html");

/// The page itself.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// One final epoch as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DashboardEpoch {
    /// The epoch.
    pub epoch: u64,
    /// Chain address of the winner.
    pub submitter: String,
    /// Where this node got the data.
    pub source: OfficialSource,
    /// Signer indices of the stored signatures.
    pub signers: Vec<u16>,
    /// From the epoch end to this node storing the data, ms.
    pub latency_ms: Option<u64>,
}

/// One point of a mixnode's uptime chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UptimePoint {
    /// The epoch.
    pub epoch: u64,
    /// Official uptime, basis points.
    pub uptime_bp: u16,
}

/// A mixnode's official uptime over the shown epochs, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UptimeSeries {
    /// The mixnode.
    pub mix_id: u32,
    /// Points, oldest first.
    pub points: Vec<UptimePoint>,
}

/// Everything the dashboard draws.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DashboardData {
    /// Node name.
    pub name: String,
    /// Its signer index in the set governing the running epoch, if a member.
    pub member_index: Option<u16>,
    /// Members of the signer set.
    pub members: usize,
    /// Signatures needed.
    pub threshold: usize,
    /// The running epoch.
    pub current_epoch: Option<u64>,
    /// Time left in the running epoch, ms.
    pub ms_left_in_epoch: Option<u64>,
    /// Final epochs, newest first.
    pub epochs: Vec<DashboardEpoch>,
    /// Uptime of the first mixnodes over those epochs.
    pub uptime: Vec<UptimeSeries>,
}

/// How long a built dashboard is served before it is built again: however many clients poll,
/// the store is read at most this often for it.
pub const DASHBOARD_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The last dashboard built, and when (monotonic clock).
#[derive(Debug, Default)]
pub struct DashboardCache(tokio::sync::Mutex<Option<(std::time::Instant, DashboardData)>>);

/// The dashboard data at `now_ms`, built at most once per [`DASHBOARD_TTL`]: the lock is
/// held while it is built, so concurrent requests wait for that one build instead of each
/// reading the store.
pub async fn dashboard_data(state: &ApiState, now_ms: u64) -> Result<DashboardData, DbError> {
    let mut cached = state.dashboard.0.lock().await;
    if let Some((built, data)) = cached.as_ref()
        && built.elapsed() < DASHBOARD_TTL
    {
        return Ok(data.clone());
    }
    let data = build(state, now_ms).await?;
    *cached = Some((std::time::Instant::now(), data.clone()));
    Ok(data)
}

/// Builds the dashboard data from the node's store at `now_ms`.
async fn build(state: &ApiState, now_ms: u64) -> Result<DashboardData, DbError> {
    let status = state.live_status();
    let current_epoch = status.current_epoch;
    let clock = state.epoch_clock;
    let ms_left_in_epoch =
        current_epoch.map(|epoch| clock.epoch_end_ms(epoch).saturating_sub(now_ms));
    let stored: Vec<(StoredOfficial, Option<u64>)> = state
        .db
        .public(|store| {
            let latest = store.latest_official_epoch()?;
            let from = latest.map_or(0, |latest| latest.saturating_sub(DASHBOARD_EPOCHS - 1));
            let mut stored = Vec::new();
            for epoch in store.official_epochs_since(from)? {
                if let Some(official) = store.official(epoch)? {
                    stored.push((official, store.official_stored_at(epoch)?));
                }
            }
            Ok(stored)
        })
        .await?;
    let mut epochs = Vec::new();
    let mut uptime: Vec<UptimeSeries> = Vec::new();
    for (stored, stored_ms) in stored {
        let official = &stored.official;
        let epoch = official.epoch;
        if uptime.is_empty() {
            uptime = official
                .rewards
                .iter()
                .take(DASHBOARD_MIXNODES)
                .map(|reward| UptimeSeries {
                    mix_id: reward.mix_id,
                    points: Vec::new(),
                })
                .collect();
        }
        for series in &mut uptime {
            if let Ok(i) = official
                .rewards
                .binary_search_by_key(&series.mix_id, |reward| reward.mix_id)
            {
                series.points.push(UptimePoint {
                    epoch,
                    uptime_bp: official.rewards[i].uptime_bp,
                });
            }
        }
        epochs.push(DashboardEpoch {
            epoch,
            submitter: official.submitter.clone(),
            source: stored.source,
            signers: official.signatures.iter().map(|s| s.index).collect(),
            latency_ms: stored_ms.map(|stored| stored.saturating_sub(clock.epoch_end_ms(epoch))),
        });
    }
    epochs.reverse();
    Ok(DashboardData {
        name: status.name,
        member_index: status.member_index,
        members: status.members,
        threshold: status.threshold,
        current_epoch,
        ms_left_in_epoch,
        epochs,
        uptime,
    })
}
