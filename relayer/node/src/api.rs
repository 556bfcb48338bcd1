//! The HTTP API (axum): health, status, the signer set, official epoch data with signatures,
//! a mixnode's history, Prometheus metrics and the dashboard. Bad paths and parameters get a
//! 4xx with a JSON error. The OpenAPI document is generated from these handlers ([`ApiDoc`],
//! served at `/v1/openapi.json`, interactive at `/docs` with embedded Swagger UI assets).
//!
//! The API is public, so it is bounded ([`ApiLimits`], module `limits`): per-client rate
//! limits answer 429, more concurrent requests than the node serves answer 503, and every
//! store read runs on a read-only connection off the async workers (`crate::db`), so no
//! amount of API traffic delays the protocol's writes.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use nym_rewards::msg::EpochClock;
use relayer_store::{StoredOfficial, SubmissionStats};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use utoipa::{OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use nym_rewards::msg::SignerSetResponse;

use crate::auditor_assets::{self, AuditorAssets};
use crate::dashboard::{self, DashboardData};
use crate::db::Db;
use crate::health::{Check, ReadinessInputs, SharedChainView, readiness};
use crate::metrics::{NodeMetrics, gauge_line};
use crate::signer_sets::{SharedSets, member_index};
use relayer_protocol::observation_threshold_for;

pub use crate::limits::ApiLimits;

/// What a node reports about itself at `/v1/status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct NodeStatus {
    /// Node name.
    pub name: String,
    /// Index in the signer set governing the running epoch; absent when not a member of it.
    pub member_index: Option<u16>,
    /// libp2p PeerId.
    pub peer_id: String,
    /// Chain address.
    pub address: String,
    /// Chain id.
    pub chain_id: String,
    /// Contract address.
    pub contract: String,
    /// Members in the signer set governing the running epoch.
    pub members: usize,
    /// Version of the signer set governing the running epoch.
    pub signer_set_version: u32,
    /// Signatures needed (t) under that version.
    pub threshold: usize,
    /// Observations needed (k) under that version.
    pub observation_threshold: usize,
    /// The next signer-set version, when one is scheduled after the running epoch.
    pub scheduled_signer_set: Option<ScheduledSet>,
    /// `staggered` or `race`.
    pub policy: String,
    /// Members of the signer set governing the running epoch connected now (this node apart).
    pub connected_peers: usize,
    /// Epoch running now.
    pub current_epoch: Option<u64>,
    /// Newest epoch with official data.
    pub last_official_epoch: Option<u64>,
    /// Submission attempts by outcome.
    pub submissions: SubmissionStatsView,
}

/// A signer-set version scheduled to govern from a later epoch.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct ScheduledSet {
    /// Its version.
    pub version: u32,
    /// Its first epoch.
    pub effective_from_epoch: u64,
    /// Whether this node is a member of it.
    pub member: bool,
}

/// Serializable submission counts.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
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
    /// The database (handlers read through its read-only connections).
    pub db: Arc<Db>,
    /// Counters.
    pub metrics: Arc<NodeMetrics>,
    /// Static part of the status plus what the node updates.
    pub status: Mutex<NodeStatus>,
    /// The signer sets the node read from the contract (`/v1/signer-set` answers with the one
    /// governing the running epoch).
    pub signer_sets: SharedSets,
    /// The node's ed25519 key (its member index in each set).
    pub own_key: [u8; 32],
    /// The observation threshold the operator set; `None` takes `n - f` of each version.
    pub observation_threshold: Option<usize>,
    /// The contract's epoch clock (for the time left in an epoch).
    pub epoch_clock: EpochClock,
    /// The ed25519 keys of the members connected now.
    pub connected_members: Box<dyn Fn() -> Vec<[u8; 32]> + Send + Sync>,
    /// The running epoch now.
    pub current_epoch: Box<dyn Fn() -> Option<u64> + Send + Sync>,
    /// The dashboard last built.
    pub dashboard: dashboard::DashboardCache,
    /// What the chain watcher last saw.
    pub chain_view: SharedChainView,
    /// The browser auditor's files, when the node serves them (`/auditor/{file}`).
    pub auditor: Option<Arc<AuditorAssets>>,
    /// The newest epoch with official data stored here (kept by the driver).
    pub latest_final: watch::Receiver<Option<u64>>,
    /// Least account balance (fee denom) that counts as ready.
    pub min_balance: u128,
    /// Whether `/metrics` is served here (not when it has its own listener).
    pub metrics_on_api: bool,
}

impl ApiState {
    /// The status with the live parts filled in: peers, the running epoch and the signer set
    /// governing it (the store's counts are the handler's).
    pub(crate) fn live_status(&self) -> NodeStatus {
        let mut status = self
            .status
            .lock()
            .map(|status| status.clone())
            .unwrap_or_default();
        status.current_epoch = (self.current_epoch)();
        let sets = self.signer_sets.read();
        let governing = status
            .current_epoch
            .and_then(|epoch| sets.governing(epoch))
            .or_else(|| sets.latest());
        let connected = (self.connected_members)();
        status.connected_peers = match governing {
            Some(set) => connected
                .iter()
                .filter(|key| member_index(set, key).is_some())
                .count(),
            None => connected.len(),
        };
        if let Some(set) = governing {
            let n = set.members.len();
            status.member_index = member_index(set, &self.own_key);
            status.members = n;
            status.signer_set_version = set.version;
            status.threshold = set.threshold as usize;
            status.observation_threshold = observation_threshold_for(self.observation_threshold, n);
        }
        status.scheduled_signer_set = status
            .current_epoch
            .and_then(|epoch| sets.next_after(epoch))
            .map(|next| ScheduledSet {
                version: next.version,
                effective_from_epoch: next.effective_from_epoch,
                member: member_index(next, &self.own_key).is_some(),
            });
        status
    }

    /// What readiness is computed from, given the live status.
    fn readiness_inputs(&self, status: &NodeStatus) -> ReadinessInputs {
        ReadinessInputs {
            chain: self
                .chain_view
                .lock()
                .map(|view| view.clone())
                .unwrap_or_default(),
            now_ms: crate::now_ms(),
            connected_peers: status.connected_peers,
            threshold: self.governing_set().map(|set| set.threshold as usize),
            current_epoch: status.current_epoch,
            latest_final: *self.latest_final.borrow(),
            min_balance: self.min_balance,
        }
    }

    /// The metrics text: the counters, then gauges of peers, the newest final epoch (from the
    /// driver's watch, not the store) and the chain's height and the account's balance as last
    /// seen.
    pub fn metrics_text(&self) -> String {
        let mut text = self.metrics.render();
        let latest_final = *self.latest_final.borrow();
        let chain = self
            .chain_view
            .lock()
            .ok()
            .and_then(|view| view.last_ok.clone());
        let gauges = [
            (
                "relayer_connected_peers",
                "Members of the governing signer set connected",
                Some(self.live_status().connected_peers as f64),
            ),
            (
                "relayer_latest_final_epoch",
                "Newest epoch with official data stored",
                latest_final.map(|epoch| epoch as f64),
            ),
            (
                "relayer_chain_height",
                "Latest block height seen",
                chain.as_ref().map(|(health, _)| health.height as f64),
            ),
            (
                "relayer_account_balance",
                "Account balance in the fee denom",
                chain
                    .as_ref()
                    .and_then(|(health, _)| health.balance)
                    .map(|balance| balance as f64),
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                gauge_line(&mut text, name, help, value);
            }
        }
        text
    }

    /// The signer set governing the running epoch (the newest known before any governs).
    fn governing_set(&self) -> Option<SignerSetResponse> {
        let sets = self.signer_sets.read();
        (self.current_epoch)()
            .and_then(|epoch| sets.governing(epoch))
            .or_else(|| sets.latest())
            .cloned()
    }
}

/// A JSON error with a status code.
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

/// The body of every 4xx/5xx answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

/// Answer of `/v1/health`: readiness, with one check per condition.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ready`, or `not_ready` (answered with 503).
    pub status: String,
    /// The node's name.
    pub name: String,
    /// Every condition, with what was measured: `chain` (reachable and caught up), `peers`
    /// (at least threshold - 1 members connected), `balance` (at or above the floor) and
    /// `final_epoch` (no older than the running epoch - 2).
    pub checks: Vec<Check>,
}

/// One epoch of a mixnode's history.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct EpochUptimeView {
    /// The epoch.
    pub epoch: u64,
    /// Official uptime, basis points.
    pub uptime_bp: u16,
}

/// Answer of `/v1/mixnodes/{id}/rewards`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MixnodeHistory {
    /// The mixnode.
    pub mix_id: u32,
    /// Newest first.
    pub rewards: Vec<EpochUptimeView>,
}

/// The OpenAPI document of the node API, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Nym rewards relayer node",
        description = "Official epoch reward data with threshold signatures, node status, metrics."
    ),
    paths(
        dashboard_page,
        dashboard_json,
        health,
        status,
        signer_set,
        latest_epoch,
        epoch_rewards,
        mixnode_rewards,
        metrics
    )
)]
pub struct ApiDoc;

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

/// The router of a node's API, without limits (see [`serve`], which applies them).
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/", get(dashboard_page))
        .route("/v1/dashboard", get(dashboard_json))
        .route("/v1/health", get(health))
        .route("/v1/status", get(status))
        .route("/v1/signer-set", get(signer_set))
        .route("/v1/epochs/latest", get(latest_epoch))
        .route("/v1/epochs/{epoch}/rewards", get(epoch_rewards))
        .route("/v1/mixnodes/{id}/rewards", get(mixnode_rewards))
        .route("/metrics", get(metrics))
        .merge(
            Router::new()
                .route("/auditor/{file}", get(auditor_assets::serve))
                .with_state(state.auditor.clone()),
        )
        .with_state(state)
        .merge(SwaggerUi::new("/docs").url("/v1/openapi.json", ApiDoc::openapi()))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such route".into()) })
}

/// The live dashboard (HTML with embedded script and styles).
#[utoipa::path(get, path = "/", responses((status = 200, description = "The dashboard page", content_type = "text/html", body = String)))]
async fn dashboard_page() -> impl IntoResponse {
    dashboard::page().await
}

/// What the dashboard draws.
#[utoipa::path(get, path = "/v1/dashboard", responses((status = 200, body = DashboardData), (status = 500, body = ErrorBody)))]
async fn dashboard_json(
    State(state): State<Arc<ApiState>>,
) -> Result<Json<DashboardData>, ApiError> {
    dashboard::dashboard_data(&state, crate::now_ms())
        .await
        .map(Json)
        .map_err(internal)
}

/// Readiness: 200 when every check holds, 503 (same body) when one does not.
#[utoipa::path(get, path = "/v1/health", responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn health(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    let status = state.live_status();
    let checks = readiness(&state.readiness_inputs(&status));
    let ready = checks.iter().all(|check| check.ok);
    let (code, word) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    };
    let body = Health {
        status: word.into(),
        name: status.name,
        checks,
    };
    Ok((code, Json(body)).into_response())
}

/// The signer set governing the running epoch.
#[utoipa::path(get, path = "/v1/signer-set", responses((status = 200, body = SignerSetResponse), (status = 503, body = ErrorBody)))]
async fn signer_set(
    State(state): State<Arc<ApiState>>,
) -> Result<Json<SignerSetResponse>, ApiError> {
    state.governing_set().map(Json).ok_or_else(|| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "no signer set read yet".into(),
        )
    })
}

/// Member index, peer id, thresholds, peers, epochs and submission counts.
#[utoipa::path(get, path = "/v1/status", responses((status = 200, body = NodeStatus), (status = 500, body = ErrorBody)))]
async fn status(State(state): State<Arc<ApiState>>) -> Result<Json<NodeStatus>, ApiError> {
    let mut status = state.live_status();
    let (latest, submissions) = state
        .db
        .public(|store| Ok((store.latest_official_epoch()?, store.submission_stats()?)))
        .await
        .map_err(internal)?;
    status.last_official_epoch = latest;
    status.submissions = submissions.into();
    Ok(Json(status))
}

/// The newest official epoch.
#[utoipa::path(get, path = "/v1/epochs/latest", responses((status = 200, body = StoredOfficial), (status = 404, body = ErrorBody)))]
async fn latest_epoch(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    let latest = state
        .db
        .public(|store| {
            let Some(epoch) = store.latest_official_epoch()? else {
                return Ok(None);
            };
            store.official(epoch)
        })
        .await
        .map_err(internal)?;
    match latest {
        Some(official) => Ok(Json(official).into_response()),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            "no official epoch yet".into(),
        )),
    }
}

/// An epoch's official data: rewards, data hash, signatures with signer indices.
#[utoipa::path(
    get,
    path = "/v1/epochs/{epoch}/rewards",
    params(("epoch" = u64, Path, description = "The epoch")),
    responses((status = 200, body = StoredOfficial), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn epoch_rewards(
    State(state): State<Arc<ApiState>>,
    Path(epoch): Path<String>,
) -> Result<Response, ApiError> {
    let epoch: u64 = parse("epoch", &epoch)?;
    match state
        .db
        .public(move |store| store.official(epoch))
        .await
        .map_err(internal)?
    {
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

/// A mixnode's official uptime in recent epochs, newest first.
#[utoipa::path(
    get,
    path = "/v1/mixnodes/{id}/rewards",
    params(
        ("id" = u32, Path, description = "The mixnode"),
        ("limit" = Option<u32>, Query, description = "Epochs, 1..=1000, default 20")
    ),
    responses((status = 200, body = MixnodeHistory), (status = 400, body = ErrorBody))
)]
async fn mixnode_rewards(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Query(params): Query<HistoryParams>,
) -> Result<Json<MixnodeHistory>, ApiError> {
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
        .db
        .public(move |store| store.mixnode_history(mix_id, limit))
        .await
        .map_err(internal)?;
    let rewards = history
        .into_iter()
        .map(|(epoch, uptime_bp)| EpochUptimeView { epoch, uptime_bp })
        .collect();
    Ok(Json(MixnodeHistory { mix_id, rewards }))
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String)))]
async fn metrics(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    if !state.metrics_on_api {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "metrics are served on the node's metrics address".into(),
        ));
    }
    Ok(metrics_answer(&state))
}

/// The metrics text as Prometheus serves it.
fn metrics_answer(state: &ApiState) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics_text(),
    )
        .into_response()
}

/// Serves only `/metrics` on `listener` (the node's separate metrics address) until shutdown,
/// under the same connection and request limits as the API.
pub fn serve_metrics(
    listener: std::net::TcpListener,
    state: Arc<ApiState>,
    limits: &ApiLimits,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<JoinHandle<()>> {
    let router = Router::new()
        .route(
            "/metrics",
            get(|State(state): State<Arc<ApiState>>| async move { metrics_answer(&state) }),
        )
        .with_state(state);
    serve_router(listener, router, limits, None, shutdown)
}

/// Serves the API on `listener` until shutdown, over TLS when `tls` is given.
pub fn serve(
    listener: std::net::TcpListener,
    state: Arc<ApiState>,
    limits: ApiLimits,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<JoinHandle<()>> {
    serve_router(listener, router(state), &limits, tls, shutdown)
}

/// Serves `router` on `listener` under `limits` (connections and requests), over TLS when
/// `tls` is given, until shutdown: the API's and the metrics listener's serving path.
pub fn serve_router(
    listener: std::net::TcpListener,
    router: Router,
    limits: &ApiLimits,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let listener =
        crate::limits::GuardedListener::new(tokio::net::TcpListener::from_std(listener)?, limits);
    let app = crate::limits::apply(router, limits)
        .into_make_service_with_connect_info::<crate::limits::ClientAddr>();
    let shutdown = async move {
        let _ = shutdown.changed().await;
    };
    Ok(match tls {
        None => tokio::spawn(report_stop(
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .into_future(),
        )),
        Some(config) => {
            let listener = crate::tls::TlsListener::new(listener, config)?;
            tokio::spawn(report_stop(
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .into_future(),
            ))
        }
    })
}

async fn report_stop(server: impl Future<Output = std::io::Result<()>>) {
    if let Err(err) = server.await {
        tracing::error!("HTTP API stopped: {err}");
    }
}
