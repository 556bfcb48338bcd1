//! The tokio driver of one node: feeds the protocol its inputs (peer messages, timers, epoch
//! ends with the node's own averages, persist acks, chain answers) and performs the actions it
//! returns. It owns nothing the protocol decides; it only moves bytes and time.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use relayer_protocol::{
    Action, Certificate, Input, Keypair, MemberIndex, PersistRecord, Protocol, ProtocolConfig,
    RestoredState, Timer, default_observation_threshold,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::api::{ApiState, NodeStatus};
use crate::chain::{self, Chain};
use crate::config::{MetricsSection, ProtocolSection};
use crate::keys::ChainAccount;
use crate::metrics::NodeMetrics;
use crate::metrics_gen::UptimeGenerator;
use crate::net::{BoundNet, NetHandle};
use crate::now_ms;
use crate::official::{Finalized, Finalizer};
use crate::store::{Store, SubmissionOutcome};

/// Pause before a failed submission is retried.
const SUBMIT_RETRY_BACKOFF: Duration = Duration::from_secs(1);

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
    /// The libp2p swarm, already listening.
    pub net: BoundNet,
    /// Generator settings.
    pub metrics: MetricsSection,
    /// Protocol settings.
    pub protocol: ProtocolSection,
    /// The chain.
    pub chain: Arc<dyn Chain>,
}

/// A running node.
pub struct RunningNode {
    /// Name.
    pub name: String,
    /// Its API base URL, when it serves one.
    pub api_url: Option<String>,
    /// Its store.
    pub store: Arc<Store>,
    /// Its counters.
    pub metrics: Arc<NodeMetrics>,
    /// Its index in the signer set.
    pub member_index: MemberIndex,
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

/// Starts a node: reads the signer set from the contract, restores its state from the store,
/// and spawns the protocol driver, the network, the generator and the API.
pub async fn start_node(settings: NodeSettings) -> anyhow::Result<RunningNode> {
    let chain = settings.chain.clone();
    let store = Arc::new(
        Store::open(&settings.db_path)
            .with_context(|| format!("opening {}", settings.db_path.display()))?,
    );
    let config = chain::config(chain.as_ref())
        .await
        .context("reading the contract config")?;
    let current = config.clock.epoch_at(now_ms() / 1_000).unwrap_or(0);
    let set = chain::signer_set_for_epoch(chain.as_ref(), current)
        .await
        .context("reading the signer set")?;
    let members: Vec<[u8; 32]> = set
        .members
        .iter()
        .map(|member| member.ed25519_pubkey.as_slice().try_into())
        .collect::<Result<_, _>>()
        .context("a signer-set key is not 32 bytes")?;
    let n = members.len();
    let protocol_config = ProtocolConfig {
        chain_id: chain.chain_id().to_string(),
        contract_addr: chain.contract().to_string(),
        signer_set_version: set.version,
        members: members.clone(),
        threshold: set.threshold as usize,
        observation_threshold: settings
            .protocol
            .observation_threshold
            .unwrap_or_else(|| default_observation_threshold(n)),
        mixnodes: (1..=settings.metrics.mixnodes).collect(),
        clock: config.clock,
        observation_grace_ms: settings.protocol.observation_grace_ms,
        submit_slot_ms: settings.protocol.submit_slot_ms,
        resend_interval_ms: settings.protocol.resend_interval_ms,
        policy: settings.protocol.policy,
        catch_up_epochs: settings.protocol.catch_up_epochs,
    };
    for warning in protocol_config.validate().context("protocol settings")? {
        tracing::warn!(node = %settings.name, "{warning}");
    }
    let window_start = current.saturating_sub(settings.protocol.catch_up_epochs + 1);
    let restored = RestoredState {
        echo_decisions: store.echo_decisions_since(window_start)?,
        final_epochs: store.official_epochs_since(window_start)?,
    };
    let keypair = Keypair::from_seed(&settings.ed25519_secret);
    let Some(protocol) = Protocol::new(protocol_config.clone(), keypair.clone(), restored) else {
        bail!(
            "this node's ed25519 key {} is not in signer set version {}",
            hex::encode(keypair.public()),
            set.version
        );
    };
    let me = protocol.me();
    if set.members[usize::from(me)].address.as_str() != settings.account.address() {
        tracing::warn!(
            node = %settings.name,
            "chain account {} differs from the member address {}; the contract will refuse its submissions",
            settings.account.address(),
            set.members[usize::from(me)].address
        );
    }

    let metrics = Arc::new(NodeMetrics::default());
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (official_tx, official) = watch::channel(store.latest_official_epoch()?);
    let peer_id = settings.net.peer_id.to_string();
    let member_addrs: Vec<([u8; 32], String)> = members
        .iter()
        .copied()
        .zip(set.members.iter().map(|m| m.p2p_multiaddr.clone()))
        .collect();
    let (net, inbound) = settings
        .net
        .run(&member_addrs, metrics.clone(), shutdown_rx.clone())?;

    let mut tasks = Vec::new();
    let mut api_url = None;
    if let Some(listener) = settings.http {
        let addr = listener.local_addr()?;
        api_url = Some(format!("http://{addr}"));
        let clock = config.clock;
        let net_for_api = net.clone();
        let state = Arc::new(ApiState {
            store: store.clone(),
            metrics: metrics.clone(),
            status: Mutex::new(NodeStatus {
                name: settings.name.clone(),
                member_index: me,
                peer_id,
                address: settings.account.address().to_string(),
                chain_id: chain.chain_id().to_string(),
                contract: chain.contract().to_string(),
                members: n,
                signer_set_version: set.version,
                threshold: protocol_config.threshold,
                observation_threshold: protocol_config.observation_threshold,
                policy: protocol_config.policy.name().to_string(),
                ..NodeStatus::default()
            }),
            signer_set: set.clone(),
            epoch_clock: clock,
            connected_peers: Box::new(move || net_for_api.connected_peers()),
            current_epoch: Box::new(move || clock.epoch_at(now_ms() / 1_000)),
        });
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut api_shutdown = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            let serve = axum::serve(listener, crate::api::router(state)).with_graceful_shutdown(
                async move {
                    let _ = api_shutdown.changed().await;
                },
            );
            if let Err(err) = serve.await {
                tracing::error!("HTTP API stopped: {err}");
            }
        }));
    }

    let generator = UptimeGenerator::new(
        protocol_config.mixnodes.clone(),
        settings.metrics.seed,
        &settings.name,
    );
    tasks.push(tokio::spawn(run_generator(
        generator,
        store.clone(),
        protocol_config.clone(),
        settings.metrics.clone(),
        shutdown_rx.clone(),
    )));

    let driver = Driver {
        name: settings.name.clone(),
        protocol,
        config: protocol_config,
        store: store.clone(),
        chain,
        net,
        metrics: metrics.clone(),
        account: settings.account,
        http: reqwest::Client::new(),
        timers: BinaryHeap::new(),
        timer_seq: 0,
        finalizing: Arc::new(Mutex::new(HashSet::new())),
        official: official_tx,
    };
    tasks.push(tokio::spawn(driver.run(inbound, shutdown_rx)));
    tracing::info!(node = %settings.name, member = me, "node started");
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

async fn run_generator(
    mut generator: UptimeGenerator,
    store: Arc<Store>,
    config: ProtocolConfig,
    settings: MetricsSection,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(settings.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pruned_before = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let at_ms = now_ms();
        let Some(epoch) = config.epoch_at_ms(at_ms) else {
            continue;
        };
        let batch = generator.batch(epoch, at_ms);
        if let Err(err) = store.insert_samples(&batch) {
            tracing::error!("storing samples: {err}");
        }
        let keep_from = epoch.saturating_sub(settings.retention_epochs);
        if keep_from > pruned_before {
            if let Err(err) = store.prune_samples_before(keep_from) {
                tracing::error!("pruning samples: {err}");
            }
            pruned_before = keep_from;
        }
    }
}

struct Driver {
    name: String,
    protocol: Protocol,
    config: ProtocolConfig,
    store: Arc<Store>,
    chain: Arc<dyn Chain>,
    net: NetHandle,
    metrics: Arc<NodeMetrics>,
    account: ChainAccount,
    http: reqwest::Client,
    timers: BinaryHeap<Reverse<(u64, u64, Timer)>>,
    timer_seq: u64,
    finalizing: Arc<Mutex<HashSet<u64>>>,
    official: watch::Sender<Option<u64>>,
}

fn sleep_until_ms(at_ms: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(at_ms.saturating_sub(now_ms())))
}

impl Driver {
    async fn run(
        mut self,
        mut inbound: mpsc::Receiver<crate::net::Inbound>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        // Results of background chain work, fed back to the protocol.
        let (feedback_tx, mut feedback) = mpsc::unbounded_channel::<Input>();
        let mut next_epoch = self.catch_up(&feedback_tx);
        loop {
            let next_timer = self
                .timers
                .peek()
                .map_or(u64::MAX, |Reverse((at, _, _))| *at);
            let epoch_end = self.config.epoch_end_ms(next_epoch);
            tokio::select! {
                Some(message) = inbound.recv() => {
                    self.feed(Input::Message { from: message.from, message: message.message }, &feedback_tx);
                }
                Some(input) = feedback.recv() => self.feed(input, &feedback_tx),
                _ = sleep_until_ms(next_timer), if next_timer != u64::MAX => {
                    while let Some(Reverse((at, _, timer))) = self.timers.peek().copied() {
                        if at > now_ms() {
                            break;
                        }
                        self.timers.pop();
                        self.feed(Input::Timer(timer), &feedback_tx);
                    }
                }
                _ = sleep_until_ms(epoch_end) => {
                    self.epoch_ended(next_epoch, &feedback_tx);
                    next_epoch += 1;
                }
                _ = shutdown.changed() => break,
            }
        }
        tracing::info!(node = %self.name, "node stopped");
    }

    /// Works on the recent epochs that are not final (after a restart or a partition) and
    /// returns the first epoch whose end is still ahead.
    fn catch_up(&mut self, feedback: &mpsc::UnboundedSender<Input>) -> u64 {
        let now = now_ms();
        let current = self.config.epoch_at_ms(now).unwrap_or(0);
        let first = current.saturating_sub(self.config.catch_up_epochs);
        for epoch in first..current {
            if self.store.official(epoch).ok().flatten().is_none() {
                self.epoch_ended(epoch, feedback);
                self.check_chain(epoch, feedback.clone());
            }
        }
        if self.config.epoch_at_ms(now).is_none() {
            0
        } else {
            current
        }
    }

    fn epoch_ended(&mut self, epoch: u64, feedback: &mpsc::UnboundedSender<Input>) {
        match self.store.epoch_averages(epoch, &self.config.mixnodes) {
            Ok(Some(values)) => self.feed(Input::EpochEnded { epoch, values }, feedback),
            Ok(None) => {
                tracing::info!(node = %self.name, epoch, "no samples for epoch {epoch}; not observing it")
            }
            Err(err) => tracing::error!(node = %self.name, epoch, "reading averages: {err}"),
        }
    }

    fn feed(&mut self, input: Input, feedback: &mpsc::UnboundedSender<Input>) {
        let mut queue = vec![input];
        while let Some(input) = queue.pop() {
            let actions = self.protocol.handle(now_ms(), input);
            for action in actions {
                if let Some(next) = self.perform(action, feedback) {
                    queue.push(next);
                }
            }
        }
        self.metrics.set_protocol(self.protocol.metrics());
    }

    /// Performs one action; returns an input to feed back at once (persist acks).
    fn perform(
        &mut self,
        action: Action,
        feedback: &mpsc::UnboundedSender<Input>,
    ) -> Option<Input> {
        match action {
            Action::Send { to, message } => self.net.send(to, &message),
            Action::Broadcast { message } => {
                let me = self.protocol.me();
                let others = (0..self.config.n() as MemberIndex).filter(move |&i| i != me);
                self.net.send_many(others, &message);
            }
            Action::Persist {
                id,
                record:
                    PersistRecord::EchoDecision {
                        epoch,
                        proposer,
                        data_hash,
                    },
            } => match self.store.save_echo_decision(epoch, proposer, &data_hash) {
                Ok(stored) if stored == data_hash => return Some(Input::Persisted { id }),
                Ok(_) => {
                    tracing::error!(node = %self.name, epoch, proposer, "store holds another echo decision; not echoing")
                }
                Err(err) => {
                    tracing::error!(node = %self.name, epoch, "persisting echo decision: {err}")
                }
            },
            Action::SetTimer { at_ms, timer } => {
                self.timer_seq += 1;
                self.timers.push(Reverse((at_ms, self.timer_seq, timer)));
            }
            Action::QueryChain { epoch } => self.check_chain(epoch, feedback.clone()),
            Action::Submit { certificate } => self.submit(certificate, feedback.clone()),
            Action::Certified { certificate } => {
                tracing::debug!(node = %self.name, epoch = certificate.epoch, signers = certificate.signatures.len(), "certified");
                if let Err(err) = self.store.save_certificate(&certificate) {
                    tracing::error!(node = %self.name, "storing certificate: {err}");
                }
            }
            Action::Rejected { from, reason } => {
                tracing::debug!(node = %self.name, ?from, ?reason, "input rejected");
            }
        }
        None
    }

    fn context(&self) -> ChainTaskContext {
        ChainTaskContext {
            name: self.name.clone(),
            store: self.store.clone(),
            chain: self.chain.clone(),
            http: self.http.clone(),
            account: self.account.clone(),
            metrics: self.metrics.clone(),
            finalizing: self.finalizing.clone(),
            config: self.config.clone(),
            official: self.official.clone(),
        }
    }

    fn check_chain(&self, epoch: u64, feedback: mpsc::UnboundedSender<Input>) {
        let context = self.context();
        tokio::spawn(async move {
            let on_chain = context.check_and_finalize(epoch, None).await;
            if let Some(on_chain) = on_chain {
                let _ = feedback.send(Input::ChainStatus { epoch, on_chain });
            }
        });
    }

    fn submit(&self, certificate: Certificate, feedback: mpsc::UnboundedSender<Input>) {
        let context = self.context();
        tokio::spawn(async move {
            let epoch = certificate.epoch;
            let on_chain = context.submit(certificate).await;
            let _ = feedback.send(Input::SubmitOutcome { epoch, on_chain });
        });
    }
}

/// What background chain tasks need.
struct ChainTaskContext {
    name: String,
    store: Arc<Store>,
    chain: Arc<dyn Chain>,
    http: reqwest::Client,
    account: ChainAccount,
    metrics: Arc<NodeMetrics>,
    finalizing: Arc<Mutex<HashSet<u64>>>,
    config: ProtocolConfig,
    official: watch::Sender<Option<u64>>,
}

impl ChainTaskContext {
    /// Reads the epoch from the contract and, when stored, finalizes it. `None` when the chain
    /// could not be read.
    async fn check_and_finalize(&self, epoch: u64, tx_ref: Option<String>) -> Option<bool> {
        match chain::epoch_record(self.chain.as_ref(), epoch).await {
            Ok(Some(record)) => {
                self.finalize(&record, tx_ref).await;
                Some(true)
            }
            Ok(None) => Some(false),
            Err(err) => {
                tracing::warn!(node = %self.name, epoch, "querying the contract: {err}");
                None
            }
        }
    }

    async fn finalize(
        &self,
        record: &nym_rewards::msg::EpochRewardsResponse,
        tx_ref: Option<String>,
    ) {
        let epoch = record.epoch;
        {
            let mut finalizing = self.finalizing.lock().unwrap_or_else(|p| p.into_inner());
            if !finalizing.insert(epoch) {
                return;
            }
        }
        let finalizer = Finalizer {
            store: &self.store,
            chain: self.chain.as_ref(),
            http: &self.http,
            address: self.account.address(),
        };
        match finalizer.finalize(record, tx_ref, now_ms).await {
            Ok(Finalized::Stored(source)) => {
                let latency =
                    now_ms().saturating_sub(self.config.epoch_end_ms(epoch)) as f64 / 1_000.0;
                self.metrics.observe_latency(latency);
                NodeMetrics::inc(&self.metrics.epochs_final);
                self.official
                    .send_modify(|latest| *latest = (*latest).max(Some(epoch)));
                tracing::info!(node = %self.name, epoch, ?source, submitter = %record.submitter, "epoch final");
            }
            Ok(Finalized::AlreadyStored) => {}
            Err(err) => tracing::error!(node = %self.name, epoch, "finalizing: {err}"),
        }
        self.finalizing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&epoch);
    }

    /// Submits a certificate once block time has passed the epoch end, then re-queries the
    /// contract to learn the outcome. Returns whether the epoch is on chain.
    async fn submit(&self, certificate: Certificate) -> bool {
        let epoch = certificate.epoch;
        let end_secs = self.config.epoch_end_ms(epoch) / 1_000;
        if let Err(err) =
            chain::wait_for_block_time(self.chain.as_ref(), end_secs, Duration::from_millis(200))
                .await
        {
            tracing::warn!(node = %self.name, epoch, "waiting for block time: {err}");
            return false;
        }
        let msg = certificate.submit_msg();
        NodeMetrics::inc(&self.metrics.submissions_attempted);
        NodeMetrics::inc(&self.metrics.chain_txs);
        let tx = self.chain.execute(&self.account, &msg).await;
        if let Err(err) = &tx {
            tracing::debug!(node = %self.name, epoch, "submission not accepted: {err}");
        }
        // The outcome is what the contract holds now, whatever the transaction said.
        let tx_ref = tx.ok().map(|tx| tx.tx_hash);
        let record = match chain::epoch_record(self.chain.as_ref(), epoch).await {
            Ok(record) => record,
            Err(err) => {
                tracing::warn!(node = %self.name, epoch, "re-querying after submit: {err}");
                None
            }
        };
        let outcome = match &record {
            Some(record) if record.submitter.as_str() == self.account.address() => {
                SubmissionOutcome::Accepted
            }
            Some(_) => SubmissionOutcome::Lost,
            None => SubmissionOutcome::Failed,
        };
        match outcome {
            SubmissionOutcome::Accepted => NodeMetrics::inc(&self.metrics.submissions_accepted),
            _ => NodeMetrics::inc(&self.metrics.submissions_rejected),
        }
        if let Err(err) = self.store.record_submission(epoch, now_ms(), outcome) {
            tracing::error!(node = %self.name, "recording submission: {err}");
        }
        match record {
            Some(record) => {
                self.finalize(&record, tx_ref).await;
                true
            }
            None => {
                // Back off before the protocol retries, so a chain that is down is not hammered.
                tokio::time::sleep(SUBMIT_RETRY_BACKOFF).await;
                false
            }
        }
    }
}
