//! The tokio driver of one node: feeds the protocol engine its inputs (peer messages, timers,
//! measurements, persist acknowledgements, chain answers, the winner's copy, new signer-set
//! versions polled from the contract) and carries out the actions it returns. It decides
//! nothing: finalization, catch-up, retries, backoff and which version governs an epoch are
//! the protocol's (`relayer-protocol`), run identically by the simulator.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nym_rewards::msg::SignerSetResponse;
use relayer_protocol::{
    Action, Certificate, Engine, FetchFailed, Input, OfficialSource, PeerIndex, PersistRecord,
    Rejection, SignerSet, Timer,
};
use relayer_store::{Persisted, SubmissionOutcome};
use tokio::sync::{mpsc, watch};

use crate::chain::{self, Chain};
use crate::db::Db;
use crate::http;
use crate::inbox::InboxReceiver;
use crate::keys::ChainAccount;
use crate::metrics::NodeMetrics;
use crate::net::{NetHandle, PeerEntry};
use crate::now_ms;
use crate::runtime::BLOCK_TIME_WAIT;
use crate::signer_sets::{KnownSets, SharedSets, newer_than};

/// How often and how long a loser tries the winner before reporting it unreachable.
const FETCH_ATTEMPTS: u32 = 6;
const FETCH_RETRY: Duration = Duration::from_millis(250);
/// Poll interval while waiting for block time.
const BLOCK_TIME_POLL: Duration = Duration::from_millis(200);

/// Bounds of the interval at which the contract is asked for new signer-set versions (the
/// re-send interval, within these).
const POLL_MIN: Duration = Duration::from_secs(1);
const POLL_MAX: Duration = Duration::from_secs(30);

/// The protocol engine and what its actions act on.
pub(crate) struct Driver {
    name: String,
    protocol: Engine,
    timers: BinaryHeap<Reverse<(u64, u64, Timer)>>,
    timer_seq: u64,
    net: NetHandle,
    /// The engine's peers generation the network was last told about.
    peers_told: u64,
    tasks: TaskContext,
}

/// What the background tasks of actions need (cheap to clone).
#[derive(Clone)]
struct TaskContext {
    name: String,
    db: Arc<Db>,
    chain: Arc<dyn Chain>,
    http: reqwest::Client,
    account: ChainAccount,
    metrics: Arc<NodeMetrics>,
    /// The signer sets read from the contract (the API reads them too).
    sets: SharedSets,
    mixnodes: Arc<Vec<u32>>,
    clock: nym_rewards::msg::EpochClock,
    official: watch::Sender<Option<u64>>,
    feedback: mpsc::UnboundedSender<Input>,
    /// Epochs with a chain read in flight: a slow RPC is not asked the same again meanwhile.
    reads_in_flight: Arc<Mutex<HashSet<u64>>>,
    /// New signer-set versions read from the contract, for the driver to learn.
    learned: mpsc::UnboundedSender<Vec<SignerSetResponse>>,
    /// A poll for new versions is in flight.
    polling: Arc<AtomicBool>,
}

/// What the driver receives besides peer messages: its tasks' answers and the signer-set
/// versions they read.
pub(crate) struct DriverInbox {
    feedback: mpsc::UnboundedReceiver<Input>,
    learned: mpsc::UnboundedReceiver<Vec<SignerSetResponse>>,
}

fn sleep_until_ms(at_ms: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(at_ms.saturating_sub(now_ms())))
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        name: String,
        protocol: Engine,
        db: Arc<Db>,
        chain: Arc<dyn Chain>,
        net: NetHandle,
        metrics: Arc<NodeMetrics>,
        account: ChainAccount,
        sets: SharedSets,
        official: watch::Sender<Option<u64>>,
        http: reqwest::Client,
    ) -> (Self, DriverInbox) {
        let (feedback, feedback_rx) = mpsc::unbounded_channel();
        let (learned, learned_rx) = mpsc::unbounded_channel();
        let clock = protocol.settings().clock;
        let mixnodes = Arc::new(protocol.settings().mixnodes.clone());
        let peers_told = protocol.peers_generation();
        let driver = Self {
            name: name.clone(),
            protocol,
            timers: BinaryHeap::new(),
            timer_seq: 0,
            peers_told,
            net,
            tasks: TaskContext {
                name,
                db,
                chain,
                http,
                account,
                metrics,
                sets,
                mixnodes,
                clock,
                official,
                feedback,
                reads_in_flight: Arc::new(Mutex::new(HashSet::new())),
                learned,
                polling: Arc::new(AtomicBool::new(false)),
            },
        };
        let inbox = DriverInbox {
            feedback: feedback_rx,
            learned: learned_rx,
        };
        (driver, inbox)
    }

    /// Runs until shutdown.
    pub(crate) async fn run(
        mut self,
        inbox: DriverInbox,
        mut inbound: InboxReceiver,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let DriverInbox {
            mut feedback,
            mut learned,
        } = inbox;
        let poll_every = Duration::from_millis(self.protocol.settings().resend_interval_ms)
            .clamp(POLL_MIN, POLL_MAX);
        let mut poll = tokio::time::interval(poll_every);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.feed(Input::Start);
        loop {
            let next_timer = self
                .timers
                .peek()
                .map_or(u64::MAX, |Reverse((at, _, _))| *at);
            tokio::select! {
                Some(message) = inbound.recv() => {
                    self.feed(Input::Message { from: message.from, message: message.message });
                }
                Some(input) = feedback.recv() => self.feed(input),
                Some(sets) = learned.recv() => self.learn(sets),
                _ = poll.tick() => self.tasks.start_poll(self.protocol.latest_version()),
                _ = sleep_until_ms(next_timer), if next_timer != u64::MAX => {
                    while let Some(Reverse((at, _, timer))) = self.timers.peek().copied() {
                        if at > now_ms() {
                            break;
                        }
                        self.timers.pop();
                        self.feed(Input::Timer(timer));
                    }
                }
                _ = shutdown.changed() => break,
            }
            // Under a flood of inbound messages the inbox is always ready: give the worker
            // thread back to the other tasks now and then.
            tokio::task::consume_budget().await;
        }
        // Nothing more is signed: the store holds every signature this run made.
        match self
            .tasks
            .db
            .protocol(|store| store.mark_clean_stop(now_ms()))
            .await
        {
            Ok(()) => tracing::info!(node = %self.name, "node stopped"),
            Err(err) => {
                tracing::error!(node = %self.name, "node stopped, but not marked clean: {err}");
            }
        }
    }

    fn feed(&mut self, input: Input) {
        for action in self.protocol.handle(now_ms(), input) {
            self.perform(action);
        }
        self.tasks.metrics.set_protocol(&self.protocol.metrics());
        self.tell_network();
    }

    /// Tells the network whom to admit and dial when the engine's peers changed (a version
    /// learned or retired), and the operator what the engine noted.
    fn tell_network(&mut self) {
        for note in self.protocol.take_notes() {
            tracing::warn!(node = %self.name, "{note}");
        }
        let generation = self.protocol.peers_generation();
        if generation != self.peers_told {
            self.peers_told = generation;
            self.net
                .set_peers(peer_entries(&self.protocol, &self.tasks.sets.read()));
        }
    }

    /// Takes signer-set versions read from the contract: each new one goes to the engine
    /// (which starts it if this node is a member), then the network learns whom to admit.
    fn learn(&mut self, sets: Vec<SignerSetResponse>) {
        for response in sets {
            if !self.tasks.sets.insert(response.clone()) {
                continue;
            }
            let version = response.version;
            let set = match SignerSet::try_from(&response) {
                Ok(set) => set,
                Err(err) => {
                    tracing::error!(node = %self.name, version, "the contract's signer set is malformed: {err}");
                    continue;
                }
            };
            let member = set.index_of_key(&self.protocol.key()).is_some();
            match self.protocol.learn(now_ms(), set) {
                Ok(actions) => {
                    tracing::info!(
                        node = %self.name,
                        version,
                        from_epoch = response.effective_from_epoch,
                        members = response.members.len(),
                        threshold = response.threshold,
                        member,
                        "signer set learned"
                    );
                    for action in actions {
                        self.perform(action);
                    }
                }
                Err(err) => {
                    tracing::error!(node = %self.name, version, "cannot work under this signer set; abstaining from its epochs: {err}")
                }
            }
        }
        self.tell_network();
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Send { to, message } => self.net.send(to, &message),
            Action::Broadcast { message } => {
                let to = self.protocol.recipients(message.epoch());
                self.net.send_many(to, &message);
            }
            Action::SetTimer { at_ms, timer } => {
                self.timer_seq += 1;
                self.timers.push(Reverse((at_ms, self.timer_seq, timer)));
            }
            Action::Persist { id, record } => spawn(self.tasks.clone().persist(id, record)),
            Action::Measure { epoch } => spawn(self.tasks.clone().measure(epoch)),
            Action::ReadChain { epoch } => {
                if self.tasks.start_read(epoch) {
                    spawn(self.tasks.clone().read_chain(epoch));
                }
            }
            Action::Submit { certificate } => spawn(self.tasks.clone().submit(certificate)),
            Action::FetchOfficial { epoch, from } => {
                let key = self.protocol.roster().get(usize::from(from)).copied();
                spawn(self.tasks.clone().fetch_official(epoch, from, key))
            }
            Action::Certified { certificate } => {
                tracing::debug!(node = %self.name, epoch = certificate.epoch, signers = certificate.signatures.len(), "certified");
                spawn(self.tasks.clone().save_certificate(certificate));
            }
            Action::Final { epoch, source } => self.tasks.final_epoch(epoch, source),
            Action::Rejected { from, reason } => log_rejection(&self.name, from, &reason),
        }
    }
}

fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) {
    tokio::spawn(task);
}

/// The network's view of the engine's roster: each peer's key, its newest network address
/// among the sets read, and whether the node works with it now.
pub(crate) fn peer_entries(engine: &Engine, sets: &KnownSets) -> Vec<PeerEntry> {
    let active = engine.active_peers();
    engine
        .roster()
        .iter()
        .enumerate()
        .map(|(position, key)| PeerEntry {
            key: *key,
            addr: sets
                .member(key)
                .map(|member| member.p2p_multiaddr.clone())
                .unwrap_or_default(),
            active: PeerIndex::try_from(position).is_ok_and(|peer| active.contains(&peer)),
        })
        .collect()
}

/// Rejections that mean something an operator should see are logged at warn level.
fn log_rejection(name: &str, from: Option<PeerIndex>, reason: &Rejection) {
    match reason {
        Rejection::WinnerCopyInvalid { .. }
        | Rejection::WinnerUnreachable { .. }
        | Rejection::OfficialNotStored { .. }
        | Rejection::InvalidOwnValues(_) => {
            tracing::warn!(node = %name, ?from, ?reason, "taking the fallback")
        }
        _ => tracing::debug!(node = %name, ?from, ?reason, "input rejected"),
    }
}

impl TaskContext {
    fn feed(&self, input: Input) {
        let _ = self.feedback.send(input);
    }

    /// Asks the contract for versions after `known`, unless a poll is still in flight.
    fn start_poll(&self, known: Option<u32>) {
        if self.polling.swap(true, Ordering::AcqRel) {
            return;
        }
        spawn(self.clone().poll_signer_sets(known.unwrap_or(0)));
    }

    async fn poll_signer_sets(self, known: u32) {
        match newer_than(self.chain.as_ref(), known).await {
            Ok(sets) if !sets.is_empty() => {
                let _ = self.learned.send(sets);
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(node = %self.name, "reading the contract's signer sets: {err}")
            }
        }
        self.polling.store(false, Ordering::Release);
    }

    async fn persist(self, id: u64, record: PersistRecord) {
        let written = record.clone();
        let result = self
            .db
            .protocol(move |store| store.persist(&written, now_ms()))
            .await;
        match result {
            Ok(outcome) => {
                if outcome == Persisted::Conflicting {
                    tracing::error!(node = %self.name, ?record, "the store holds a different record; it is kept");
                }
                if outcome.acknowledges(&record) {
                    self.feed(Input::Persisted { id });
                } else {
                    self.feed(Input::PersistFailed { id });
                }
            }
            Err(err) => {
                tracing::error!(node = %self.name, "persisting: {err}");
                self.feed(Input::PersistFailed { id });
            }
        }
    }

    async fn measure(self, epoch: u64) {
        let mixnodes = self.mixnodes.clone();
        // The protocol's own connection: public API traffic never delays a measurement.
        match self
            .db
            .protocol(move |store| store.epoch_averages(epoch, &mixnodes))
            .await
        {
            Ok(values) => self.feed(Input::Measured { epoch, values }),
            Err(err) => tracing::error!(node = %self.name, epoch, "reading averages: {err}"),
        }
    }

    /// Marks a chain read of `epoch` in flight; false when one already is.
    fn start_read(&self, epoch: u64) -> bool {
        self.reads_in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(epoch)
    }

    async fn read_chain(self, epoch: u64) {
        let read = chain::epoch_record(self.chain.as_ref(), epoch).await;
        self.reads_in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&epoch);
        match read {
            Ok(record) => self.feed(Input::ChainRecord {
                epoch,
                record: record.map(Box::new),
            }),
            Err(err) => tracing::warn!(node = %self.name, epoch, "reading the contract: {err}"),
        }
    }

    /// Submits once block time has passed the epoch's end, then re-reads the contract to
    /// learn the outcome, whatever the transaction said.
    async fn submit(self, certificate: Certificate) {
        let epoch = certificate.epoch;
        let end_secs = self.clock.epoch_end_ms(epoch) / 1_000;
        let waited = tokio::time::timeout(
            BLOCK_TIME_WAIT,
            chain::wait_for_block_time(self.chain.as_ref(), end_secs, BLOCK_TIME_POLL),
        )
        .await;
        if !matches!(waited, Ok(Ok(()))) {
            tracing::warn!(node = %self.name, epoch, "block time did not pass the epoch end: {waited:?}");
            return self.feed(Input::Submitted {
                epoch,
                record: None,
                tx_ref: None,
            });
        }
        NodeMetrics::inc(&self.metrics.submissions_attempted);
        NodeMetrics::inc(&self.metrics.chain_txs);
        let tx = self
            .chain
            .execute(&self.account, &certificate.submit_msg())
            .await;
        let record = match chain::epoch_record(self.chain.as_ref(), epoch).await {
            Ok(record) => record,
            Err(err) => {
                tracing::warn!(node = %self.name, epoch, "re-reading after submitting: {err}");
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
        match (&tx, outcome) {
            (_, SubmissionOutcome::Accepted) => {
                NodeMetrics::inc(&self.metrics.submissions_accepted)
            }
            (tx, outcome) => {
                NodeMetrics::inc(&self.metrics.submissions_rejected);
                NodeMetrics::inc(match outcome {
                    SubmissionOutcome::Lost => &self.metrics.submissions_lost,
                    _ => &self.metrics.submissions_failed,
                });
                match tx {
                    Err(err) if outcome == SubmissionOutcome::Lost && err.is_contract_refusal() => {
                        tracing::info!(node = %self.name, epoch, "another member's submission came first")
                    }
                    Err(err) => {
                        tracing::warn!(node = %self.name, epoch, "submission failed: {err}")
                    }
                    Ok(_) => {}
                }
            }
        }
        let at_ms = now_ms();
        if let Err(err) = self
            .db
            .protocol(move |store| store.record_submission(epoch, at_ms, outcome))
            .await
        {
            tracing::error!(node = %self.name, "recording the submission: {err}");
        }
        self.feed(Input::Submitted {
            epoch,
            record: record.map(Box::new),
            tx_ref: tx.ok().map(|tx| tx.tx_hash),
        });
    }

    /// Fetches the winner's copy from the API its newest signer-set entry names, retrying
    /// briefly; the protocol verifies it.
    async fn fetch_official(self, epoch: u64, from: PeerIndex, key: Option<[u8; 32]>) {
        let winner = key.and_then(|key| self.sets.read().member(&key).cloned());
        let copy = match winner {
            Some(winner) => {
                let mut last = None;
                let mut copy = None;
                for attempt in 0..FETCH_ATTEMPTS {
                    if attempt > 0 {
                        tokio::time::sleep(FETCH_RETRY).await;
                    }
                    match http::fetch_epoch(&self.http, &winner.api_url, epoch).await {
                        Ok(fetched) => {
                            copy = Some(fetched);
                            break;
                        }
                        Err(err) => last = Some(err),
                    }
                }
                copy.map(Box::new).ok_or_else(|| FetchFailed {
                    reason: format!(
                        "{} unreachable after {FETCH_ATTEMPTS} attempts: {}",
                        winner.api_url,
                        last.map(|err| err.to_string()).unwrap_or_default()
                    ),
                })
            }
            None => Err(FetchFailed {
                reason: format!("peer {from} is in no signer set read"),
            }),
        };
        self.feed(Input::WinnerCopy { epoch, copy });
    }

    async fn save_certificate(self, certificate: Certificate) {
        if let Err(err) = self
            .db
            .protocol(move |store| store.save_certificate(&certificate))
            .await
        {
            tracing::error!(node = %self.name, "storing the certificate: {err}");
        }
    }

    fn final_epoch(&self, epoch: u64, source: OfficialSource) {
        let latency = now_ms().saturating_sub(self.clock.epoch_end_ms(epoch)) as f64 / 1_000.0;
        self.metrics.observe_latency(latency);
        NodeMetrics::inc(&self.metrics.epochs_final);
        self.official
            .send_modify(|latest| *latest = (*latest).max(Some(epoch)));
        tracing::info!(node = %self.name, epoch, %source, "epoch final");
    }
}
