//! The tokio driver of one node: feeds the protocol its inputs (peer messages, timers,
//! measurements, persist acknowledgements, chain answers, the winner's copy) and carries out
//! the actions it returns. It decides nothing: finalization, catch-up, retries and backoff are
//! the protocol's (`relayer-protocol`), run identically by the simulator.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nym_rewards::msg::SignerSetResponse;
use relayer_protocol::{
    Action, Certificate, FetchFailed, Input, MemberIndex, OfficialSource, PersistRecord, Protocol,
    Rejection, Timer,
};
use relayer_store::{Persisted, SubmissionOutcome};
use tokio::sync::{mpsc, watch};

use crate::chain::{self, Chain};
use crate::db::Db;
use crate::http;
use crate::inbox::InboxReceiver;
use crate::keys::ChainAccount;
use crate::metrics::NodeMetrics;
use crate::net::NetHandle;
use crate::now_ms;
use crate::runtime::BLOCK_TIME_WAIT;

/// How often and how long a loser tries the winner before reporting it unreachable.
const FETCH_ATTEMPTS: u32 = 6;
const FETCH_RETRY: Duration = Duration::from_millis(250);
/// Poll interval while waiting for block time.
const BLOCK_TIME_POLL: Duration = Duration::from_millis(200);

/// The protocol and what its actions act on.
pub(crate) struct Driver {
    name: String,
    protocol: Protocol,
    timers: BinaryHeap<Reverse<(u64, u64, Timer)>>,
    timer_seq: u64,
    net: NetHandle,
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
    signer_set: Arc<SignerSetResponse>,
    mixnodes: Arc<Vec<u32>>,
    clock: nym_rewards::msg::EpochClock,
    official: watch::Sender<Option<u64>>,
    feedback: mpsc::UnboundedSender<Input>,
    /// Epochs with a chain read in flight: a slow RPC is not asked the same again meanwhile.
    reads_in_flight: Arc<Mutex<HashSet<u64>>>,
}

fn sleep_until_ms(at_ms: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(at_ms.saturating_sub(now_ms())))
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        name: String,
        protocol: Protocol,
        db: Arc<Db>,
        chain: Arc<dyn Chain>,
        net: NetHandle,
        metrics: Arc<NodeMetrics>,
        account: ChainAccount,
        signer_set: SignerSetResponse,
        official: watch::Sender<Option<u64>>,
    ) -> (Self, mpsc::UnboundedReceiver<Input>) {
        let (feedback, feedback_rx) = mpsc::unbounded_channel();
        let clock = protocol.config().clock;
        let mixnodes = Arc::new(protocol.config().mixnodes.clone());
        let driver = Self {
            name: name.clone(),
            protocol,
            timers: BinaryHeap::new(),
            timer_seq: 0,
            net,
            tasks: TaskContext {
                name,
                db,
                chain,
                http: http::client(),
                account,
                metrics,
                signer_set: Arc::new(signer_set),
                mixnodes,
                clock,
                official,
                feedback,
                reads_in_flight: Arc::new(Mutex::new(HashSet::new())),
            },
        };
        (driver, feedback_rx)
    }

    /// Runs until shutdown.
    pub(crate) async fn run(
        mut self,
        mut feedback: mpsc::UnboundedReceiver<Input>,
        mut inbound: InboxReceiver,
        mut shutdown: watch::Receiver<bool>,
    ) {
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
        }
        tracing::info!(node = %self.name, "node stopped");
    }

    fn feed(&mut self, input: Input) {
        for action in self.protocol.handle(now_ms(), input) {
            self.perform(action);
        }
        self.tasks.metrics.set_protocol(self.protocol.metrics());
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Send { to, message } => self.net.send(to, &message),
            Action::Broadcast { message } => {
                let me = self.protocol.me();
                let n = self.protocol.config().n() as MemberIndex;
                self.net
                    .send_many((0..n).filter(move |&i| i != me), &message);
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
                spawn(self.tasks.clone().fetch_official(epoch, from))
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

/// Rejections that mean something an operator should see are logged at warn level.
fn log_rejection(name: &str, from: Option<MemberIndex>, reason: &Rejection) {
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
            (Err(err), SubmissionOutcome::Failed) => {
                NodeMetrics::inc(&self.metrics.submissions_rejected);
                tracing::warn!(node = %self.name, epoch, "submission failed: {err}");
            }
            _ => NodeMetrics::inc(&self.metrics.submissions_rejected),
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

    /// Fetches the winner's copy, retrying briefly; the protocol verifies it.
    async fn fetch_official(self, epoch: u64, from: MemberIndex) {
        let copy = match self.signer_set.members.get(usize::from(from)) {
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
                reason: format!("member {from} is not in the signer set"),
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
