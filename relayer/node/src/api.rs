//! The HTTP API (axum): health, status, the signer set, official epoch data with signatures,
//! a mixnode's history and Prometheus metrics. Bad paths and parameters get a 4xx with a JSON error.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use nym_rewards::msg::SignerSetResponse;

use crate::metrics::NodeMetrics;
use crate::store::{Store, SubmissionStats};

/// What a node reports about itself at `/v1/status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeStatus {
    /// Node name.
    pub name: String,
    /// Index in the signer set.
    pub member_index: u16,
    /// libp2p PeerId.
    pub peer_id: String,
    /// Chain address.
    pub address: String,
    /// Chain id.
    pub chain_id: String,
    /// Contract address.
    pub contract: String,
    /// Members in the signer set.
    pub members: usize,
    /// Signer-set version.
    pub signer_set_version: u32,
    /// Signatures needed (t).
    pub threshold: usize,
    /// Observations needed (k).
    pub observation_threshold: usize,
    /// `staggered` or `race`.
    pub policy: String,
    /// Members connected now.
    pub connected_peers: usize,
    /// Epoch running now.
    pub current_epoch: Option<u64>,
    /// Newest epoch with official data.
    pub last_official_epoch: Option<u64>,
    /// Submission attempts by outcome.
    pub submissions: SubmissionStatsView,
}

/// Serializable submission counts.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubmissionStatsView {
    /// Attempts.
    pub attempted: u64,
    /// Accepted.
    pub accepted: u64,
    /// Lost.
    pub lost: u64,
    /// Failed.
    pub failed: u64,
}

impl From<SubmissionStats> for SubmissionStatsView {
    fn from(stats: SubmissionStats) -> Self {
        Self {
            attempted: stats.attempted,
            accepted: stats.accepted,
            lost: stats.lost,
            failed: stats.failed,
        }
    }
}

/// State shared by the API handlers and the node.
pub struct ApiState {
    /// The store.
    pub store: Arc<Store>,
    /// Counters.
    pub metrics: Arc<NodeMetrics>,
    /// Static part of the status plus what the node updates.
    pub status: Mutex<NodeStatus>,
    /// The signer set the node works with (`/v1/signer-set`).
    pub signer_set: SignerSetResponse,
    /// Live count of connected peers.
    pub connected_peers: Box<dyn Fn() -> usize + Send + Sync>,
    /// The running epoch now.
    pub current_epoch: Box<dyn Fn() -> Option<u64> + Send + Sync>,
}

/// A JSON error with a status code.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
}

fn parse<T: std::str::FromStr>(what: &str, text: &str) -> Result<T, ApiError> {
    text.parse().map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("{what} must be a non-negative integer, got {text:?}"),
        )
    })
}

/// The router of a node's API.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/status", get(status))
        .route("/v1/signer-set", get(signer_set))
        .route("/v1/epochs/latest", get(latest_epoch))
        .route("/v1/epochs/{epoch}/rewards", get(epoch_rewards))
        .route("/v1/mixnodes/{id}/rewards", get(mixnode_rewards))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such route".into()) })
        .with_state(state)
}

async fn health(State(state): State<Arc<ApiState>>) -> impl IntoResponse {
    let name = state
        .status
        .lock()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    Json(json!({ "status": "ok", "name": name }))
}

async fn signer_set(State(state): State<Arc<ApiState>>) -> Json<SignerSetResponse> {
    Json(state.signer_set.clone())
}

async fn status(State(state): State<Arc<ApiState>>) -> Result<Json<NodeStatus>, ApiError> {
    let mut status = state.status.lock().map_err(internal)?.clone();
    status.connected_peers = (state.connected_peers)();
    status.current_epoch = (state.current_epoch)();
    status.last_official_epoch = state.store.latest_official_epoch().map_err(internal)?;
    status.submissions = state.store.submission_stats().map_err(internal)?.into();
    Ok(Json(status))
}

async fn latest_epoch(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    let Some(epoch) = state.store.latest_official_epoch().map_err(internal)? else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "no official epoch yet".into(),
        ));
    };
    official(&state, epoch)
}

async fn epoch_rewards(
    State(state): State<Arc<ApiState>>,
    Path(epoch): Path<String>,
) -> Result<Response, ApiError> {
    let epoch: u64 = parse("epoch", &epoch)?;
    official(&state, epoch)
}

fn official(state: &ApiState, epoch: u64) -> Result<Response, ApiError> {
    match state.store.official(epoch).map_err(internal)? {
        Some(official) => Ok(Json(official).into_response()),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("epoch {epoch} has no official data on this node"),
        )),
    }
}

#[derive(Deserialize)]
struct HistoryParams {
    limit: Option<String>,
}

async fn mixnode_rewards(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Query(params): Query<HistoryParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mix_id: u32 = parse("mixnode id", &id)?;
    let limit: usize = match params.limit {
        Some(limit) => parse("limit", &limit)?,
        None => 20,
    };
    if limit == 0 || limit > 1_000 {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "limit must be between 1 and 1000".into(),
        ));
    }
    let history = state
        .store
        .mixnode_history(mix_id, limit)
        .map_err(internal)?;
    let rewards: Vec<_> = history
        .into_iter()
        .map(|(epoch, uptime_bp)| json!({ "epoch": epoch, "uptime_bp": uptime_bp }))
        .collect();
    Ok(Json(json!({ "mix_id": mix_id, "rewards": rewards })))
}

async fn metrics(State(state): State<Arc<ApiState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
