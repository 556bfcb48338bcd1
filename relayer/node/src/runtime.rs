//! Starting and stopping a node: read the contract's config and the signer sets its window
//! needs, restore the protocol's state from the store, and spawn the tasks (protocol driver,
//! network, uptime sampler, HTTP API).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nym_rewards::msg::SignerSetResponse;
use relayer_protocol::wire;
use relayer_protocol::{
    ChainContext, Engine, Keypair, MemberIndex, NewError, ProtocolConfig, SignerSet,
    SignerSetError, observation_threshold_for,
};
use relayer_store::{Store, StoreError};
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{ApiLimits, ApiState, NodeStatus};
use crate::chain::{self, Chain, ChainError};
use crate::config::{ProtocolSection, SamplingSection};
use crate::db::{Db, DbError};
use crate::driver::{Driver, peer_entries};
use crate::health::{SharedChainView, watch_chain};
use crate::keys::ChainAccount;
use crate::metrics::NodeMetrics;
use crate::net::{BoundNet, NetError};
use crate::now_ms;
use crate::sampling::run_sampler;
use crate::signer_sets::{self, SharedSets};

/// Everything needed to start a node.
pub struct NodeSettings {
    /// Name for logs.
    pub name: String,
    /// ed25519 secret (identity and signing key).
    pub ed25519_secret: [u8; 32],
    /// Chain account.
    pub account: ChainAccount,
    /// SQLite file.
    pub db_path: PathBuf,
    /// A bound listener for the HTTP API; `None` runs without an API.
    pub http: Option<std::net::TcpListener>,
    /// A bound listener serving only `/metrics` (then the API does not); `None` keeps
    /// `/metrics` on the API.
    pub metrics_http: Option<std::net::TcpListener>,
    /// Least account balance, in the fee denom, for `/v1/health` to report ready.
    pub min_balance: u128,
    /// Limits of the public API.
    pub api_limits: ApiLimits,
    /// Serve the API over https with this configuration (`None`: plain http).
    pub api_tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// The browser auditor's files to serve at `/auditor/` (`None`: not served).
    pub auditor: Option<Arc<crate::auditor_assets::AuditorAssets>>,
    /// The client that fetches winners' data (trusting the operator's extra CA, if any).
    pub http_client: reqwest::Client,
    /// The libp2p swarm, already listening; its codec holds the mixnode set the node measures
    /// (see [`crate::mixnode_set::load`]).
    pub net: BoundNet,
    /// Uptime sampling settings (the set is the one in `net`'s codec).
    pub sampling: SamplingSection,
    /// Protocol settings.
    pub protocol: ProtocolSection,
    /// The chain.
    pub chain: Arc<dyn Chain>,
}

/// Why a node did not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The database cannot be opened.
    #[error("opening {path}: {source}")]
    Store {
        /// The file.
        path: String,
        /// The cause.
        source: StoreError,
    },
    /// A database read failed.
    #[error("{0}")]
    Db(#[from] DbError),
    /// The chain cannot be read.
    #[error("reading the contract: {0}")]
    Chain(#[from] ChainError),
    /// The contract's signer set is malformed.
    #[error("the contract's signer set: {0}")]
    SignerSet(#[from] SignerSetError),
    /// The protocol refuses the settings or the key.
    #[error("protocol settings: {0}")]
    Protocol(#[from] NewError),
    /// The network cannot start.
    #[error("{0}")]
    Net(#[from] NetError),
    /// The mixnode set is larger than the contract accepts in an epoch.
    #[error(
        "the mixnode set holds {mixnodes} mixnodes, the contract accepts at most {max} per epoch: no epoch could be submitted (raise max_mixnodes_per_epoch with relayer admin update-config, or measure fewer)"
    )]
    SetTooLarge {
        /// Mixnodes in the set.
        mixnodes: usize,
        /// The contract's maximum.
        max: u32,
    },
    /// The API listener cannot be used.
    #[error("the API listener: {0}")]
    Listener(#[from] std::io::Error),
}

/// A running node.
pub struct RunningNode {
    /// Name.
    pub name: String,
    /// Its API base URL, when it serves one.
    pub api_url: Option<String>,
    /// A read-only connection to its database, for inspection by its owner.
    pub store: Arc<Store>,
    /// Its counters.
    pub metrics: Arc<NodeMetrics>,
    /// Its index in the signer set governing the epoch running at its start, if it is a
    /// member of it.
    pub member_index: Option<MemberIndex>,
    /// Newest epoch this node stored official data for; notified on every epoch stored, in
    /// whatever order epochs finish.
    pub official: watch::Receiver<Option<u64>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningNode {
    /// Stops new work, lets the tasks finish and closes the swarm and the store.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Stops abruptly (as a crash would): tasks are aborted mid-flight.
    pub fn kill(self) {
        for task in &self.tasks {
            task.abort();
        }
        let _ = self.shutdown.send(true);
    }
}

/// The protocol configuration for `signer_set` on `chain` with the node's settings.
fn protocol_config(
    chain: &dyn Chain,
    signer_set: SignerSet,
    clock: nym_rewards::msg::EpochClock,
    mixnodes: Vec<u32>,
    settings: &NodeSettings,
) -> ProtocolConfig {
    let n = signer_set.n();
    ProtocolConfig {
        chain: ChainContext {
            chain_id: chain.chain_id().to_string(),
            contract: chain.contract().to_string(),
        },
        signer_set,
        // The engine applies the operator's k to each version it fits (else n - f).
        observation_threshold: observation_threshold_for(
            settings.protocol.observation_threshold,
            n,
        ),
        mixnodes,
        clock,
        observation_grace_ms: settings.protocol.observation_grace_ms,
        submit_slot_ms: settings.protocol.submit_slot_ms,
        resend_interval_ms: settings.protocol.resend_interval_ms,
        policy: settings.protocol.policy,
        catch_up_epochs: settings.protocol.catch_up_epochs,
    }
}

/// Starts a node: reads from the contract the signer sets governing its window and any
/// scheduled after it, restores its state from the store, and spawns the protocol driver, the
/// network, the sampler and the API. A node whose key is in no set yet runs and waits for a
/// version that names it.
pub async fn start_node(settings: NodeSettings) -> Result<RunningNode, StartError> {
    let chain = settings.chain.clone();
    let db = Arc::new(
        Db::open(&settings.db_path).map_err(|source| StartError::Store {
            path: settings.db_path.display().to_string(),
            source,
        })?,
    );
    let mixnodes = settings.net.codec().mixnodes().to_vec();
    tracing::info!(
        node = %settings.name,
        mixnodes = mixnodes.len(),
        protocol = %settings.net.codec().protocol_id(),
        "measuring the mixnode set"
    );
    let config = chain::config(chain.as_ref()).await?;
    if mixnodes.len() > config.max_mixnodes_per_epoch as usize {
        return Err(StartError::SetTooLarge {
            mixnodes: mixnodes.len(),
            max: config.max_mixnodes_per_epoch,
        });
    }
    let current = config.clock.epoch_at_ms(now_ms()).unwrap_or(0);
    let set = chain::signer_set_for_epoch(chain.as_ref(), current).await?;
    let protocol_config = protocol_config(
        chain.as_ref(),
        SignerSet::try_from(&set)?,
        config.clock,
        mixnodes,
        &settings,
    );
    for warning in protocol_config.validate().map_err(NewError::from)? {
        tracing::warn!(node = %settings.name, "{warning}");
    }
    let window_start = protocol_config.window_start(now_ms());
    let responses = signer_sets::read_for_window(chain.as_ref(), window_start).await?;
    let sets = responses
        .iter()
        .map(SignerSet::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let restored = db
        .protocol(move |store| store.restored_state(window_start, now_ms()))
        .await?;
    if let Some(restart_ms) = restored.unaccounted_before_ms {
        let ended = config.clock.epoch_at_ms(restart_ms).unwrap_or(0);
        tracing::warn!(
            node = %settings.name,
            "the last run did not stop cleanly (a crash, or a store restored from a backup): \
             no new observation, block or echo for the epochs before {ended} that are not final, \
             in case a lost run signed others"
        );
    }
    let keypair = Keypair::from_seed(&settings.ed25519_secret);
    let own_key = keypair.public();
    let engine = Engine::new(
        protocol_config.clone(),
        settings.protocol.observation_threshold,
        keypair,
        restored,
        sets,
    )?;
    let me = signer_sets::member_index(&set, &own_key);
    warn_about_membership(&settings, &responses, &own_key);
    let known_sets = SharedSets::new(responses);

    let metrics = Arc::new(NodeMetrics::default());
    let (shutdown, shutdown_rx) = watch::channel(false);
    let latest = db.public(|store| store.latest_official_epoch()).await?;
    let (official_tx, official) = watch::channel(latest);
    let peer_id = settings.net.peer_id.to_string();
    let peers = peer_entries(&engine, &known_sets.read());
    let (net, inbound) = settings
        .net
        .run(peers, metrics.clone(), shutdown_rx.clone())?;

    let mut tasks = Vec::new();
    let chain_view = SharedChainView::default();
    tasks.push(tokio::spawn(watch_chain(
        chain.clone(),
        settings.account.address().to_string(),
        chain_view.clone(),
        shutdown_rx.clone(),
    )));
    let mut api_url = None;
    if let Some(listener) = settings.http {
        let addr = listener.local_addr()?;
        api_url = Some(crate::http::api_url(addr, settings.api_tls.is_some()));
        let clock = config.clock;
        let net_for_api = net.clone();
        let state = Arc::new(ApiState {
            db: db.clone(),
            metrics: metrics.clone(),
            status: Mutex::new(NodeStatus {
                name: settings.name.clone(),
                peer_id,
                address: settings.account.address().to_string(),
                chain_id: chain.chain_id().to_string(),
                contract: chain.contract().to_string(),
                policy: protocol_config.policy.to_string(),
                ..NodeStatus::default()
            }),
            signer_sets: known_sets.clone(),
            own_key,
            observation_threshold: settings.protocol.observation_threshold,
            epoch_clock: clock,
            connected_members: Box::new(move || net_for_api.connected_members()),
            current_epoch: Box::new(move || clock.epoch_at_ms(now_ms())),
            dashboard: Default::default(),
            chain_view: chain_view.clone(),
            latest_final: official.clone(),
            auditor: settings.auditor.clone(),
            min_balance: settings.min_balance,
            metrics_on_api: settings.metrics_http.is_none(),
        });
        if let Some(metrics_listener) = settings.metrics_http {
            tasks.push(crate::api::serve_metrics(
                metrics_listener,
                state.clone(),
                &settings.api_limits,
                shutdown_rx.clone(),
            )?);
        }
        tasks.push(crate::api::serve(
            listener,
            state,
            settings.api_limits,
            settings.api_tls,
            shutdown_rx.clone(),
        )?);
    }

    tasks.push(tokio::spawn(run_sampler(
        protocol_config.mixnodes.clone(),
        settings.name.clone(),
        db.clone(),
        protocol_config.clock,
        settings.sampling.clone(),
        settings.http_client.clone(),
        shutdown_rx.clone(),
    )));

    let (driver, driver_inbox) = Driver::new(
        settings.name.clone(),
        engine,
        db.clone(),
        chain,
        net,
        metrics.clone(),
        settings.account,
        known_sets,
        official_tx,
        settings.http_client,
    );
    let store = Arc::new(db.inspector().map_err(|source| StartError::Store {
        path: settings.db_path.display().to_string(),
        source,
    })?);
    // Nothing can stop the start now, and the driver may sign: the previous run's clean-stop
    // mark is taken (a start that failed before this leaves it, having signed nothing).
    let set_id = wire::mixnode_set_id(&protocol_config.mixnodes);
    let recorded = set_id.clone();
    let previous = db.protocol(move |store| store.begin_run(&recorded)).await?;
    if let Some(previous) = previous.mixnode_set.filter(|previous| *previous != set_id) {
        tracing::warn!(
            node = %settings.name,
            previous = %previous,
            now = %set_id,
            "the mixnode set changed since the last run: members still measuring the previous \
             set refuse this node, and it them, until every member has changed (check the \
             monitor if this was not planned)"
        );
    }
    tasks.push(tokio::spawn(driver.run(driver_inbox, inbound, shutdown_rx)));
    tracing::info!(node = %settings.name, member = ?me, "node started");
    Ok(RunningNode {
        name: settings.name,
        api_url,
        store,
        metrics,
        member_index: me,
        official,
        shutdown,
        tasks,
    })
}

/// Warns when the node's key is in no signer set read (it waits for one that names it), and
/// when its chain account is not the address a set names for it (the contract would refuse
/// its submissions).
fn warn_about_membership(settings: &NodeSettings, sets: &[SignerSetResponse], key: &[u8; 32]) {
    let entries: Vec<_> = sets
        .iter()
        .filter_map(|set| {
            let index = signer_sets::member_index(set, key)?;
            Some((set.version, &set.members[usize::from(index)]))
        })
        .collect();
    if entries.is_empty() {
        tracing::warn!(node = %settings.name, "this node's key is in no signer set yet; it waits for a version that names it");
    }
    for (version, member) in entries {
        if member.address.as_str() != settings.account.address() {
            tracing::warn!(
                node = %settings.name,
                version,
                "chain account {} differs from the member address {}; the contract will refuse its submissions",
                settings.account.address(),
                member.address,
            );
        }
    }
}

/// How long a node waits for block time to pass an epoch's end before it reports the
/// submission as failed (and the protocol backs off).
pub const BLOCK_TIME_WAIT: Duration = Duration::from_secs(30);
