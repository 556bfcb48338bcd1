//! The persistent message streams between two members: one libp2p stream each way per pair,
//! carrying length-prefixed frames (a u32 big-endian length, then one encoded message), opened
//! once per connection instead of a substream, a protocol negotiation, a response and a timer
//! per batch. Timelines at n = 64 showed that per-batch overhead, not the protocol, as most
//! of an epoch's CPU.
//!
//! - A **writer** task per connected peer takes batches from the peer's queue in the shared
//!   [`Outbox`] (everything queued since its last write, as one write) and writes them, up to
//!   [`crate::outbox::MAX_IN_FLIGHT`] ahead of the reader's acknowledgements. A batch counts as
//!   delivered only once acknowledged: when the stream ends, a write fails or a 64 KiB part of
//!   it takes over [`WRITE_TIMEOUT`], no acknowledgement comes for [`ACK_TIMEOUT`] (plus the
//!   time one frame in transit takes on the [`SLOWEST_LINK`]: a half-open connection), or a
//!   count does not rise or exceeds what was written, every batch not acknowledged goes back to the queue (once, in order,
//!   see [`Outbox::failed`]) and a stream is opened again after a backoff, on the peer's newest
//!   connection. A peer that does not speak the protocol ends the writer, and the network task
//!   is told.
//! - A **reader** task per inbound stream charges the peer's [`PeerBudget`] before it reads a
//!   frame's body, and *waits* while the budget is spent: a flooding peer is slowed to its
//!   budget at the cost of its own stream (yamux's per-stream window stops its writes), never
//!   read ahead of it, and the other members' readers run as before. Each message is decoded
//!   and queued in the fair [`crate::inbox`]; whenever it has read all that its buffer holds,
//!   every [`ACK_EVERY`] frames, at a frame's end a second after the last time, and (at most
//!   once a second) before it waits for the budget, it acknowledges the frames read so far (a u64 count, so about one acknowledgement per
//!   burst, not per frame). A frame that cannot be a message (empty, or over the size limit) ends the
//!   stream.
//! - Opening streams has a budget of its own per peer ([`PeerBudget::admit_stream`]), checked
//!   by the network task before it spawns a reader.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::io::BufReader;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream};
use relayer_protocol::PeerIndex;
use relayer_protocol::wire::{Codec, MAX_MESSAGE_BYTES};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::inbox::InboxSender;
use crate::metrics::NodeMetrics;
use crate::outbox::{Batch, FRAME_HEADER_BYTES, Outbox, check_frame_len};
use crate::stream_behaviour::{OpenError, OpenReply};

/// Messages a peer may burst before its reader waits.
pub const RATE_BURST: f64 = 4_096.0;
/// Sustained messages per second per peer.
pub const RATE_PER_SEC: f64 = 2_048.0;
/// Encoded bytes a peer may burst, and sustain per second: far above what an honest member
/// sends (its observation to each member, and the observations its block references to those
/// that ask), far below what would let one peer fill the node's memory or time.
pub const BYTES_BURST: f64 = 32.0 * 1024.0 * 1024.0;
/// Sustained bytes per second per peer.
pub const BYTES_PER_SEC: f64 = 8.0 * 1024.0 * 1024.0;
/// The first wait before a writer opens its stream again after a failure; it doubles up to
/// [`REOPEN_MAX`] while streams keep failing, and starts again after a stream that delivered
/// a batch and lived [`STREAM_LIVED`].
const REOPEN_MIN: Duration = Duration::from_millis(10);
const REOPEN_MAX: Duration = Duration::from_secs(1);
/// Streams a peer may open at once, and per second after that: an honest member opens one
/// per connection, and another after a failure with a backoff of at least 10 ms; a stream
/// costs the network task a negotiation and a task, so churning streams is refused early.
pub const STREAM_BURST: f64 = 8.0;
/// Streams per second per peer, sustained.
pub const STREAMS_PER_SEC: f64 = 2.0;
/// The byte a reader sends once it has taken a stream. A stream can be refused (over its
/// peer's stream budget, or ended by a newer one), and a writer writes only into one a reader
/// took.
pub const ACCEPTED: u8 = 1;
/// How long a writer waits for [`ACCEPTED`] before it opens another stream.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a part of a write ([`WRITE_CHUNK`]) may take: longer, the stream counts as failed.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a writer waits for an acknowledgement while batches are written and not
/// acknowledged, counted from the later of the last acknowledgement and the oldest such
/// batch's write: longer, the stream counts as failed (a peer gone without closing its
/// connection). Also the longest a reader waits to write an acknowledgement.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// What a reader reads from its stream at once.
const READ_BUFFER: usize = 64 * 1024;
/// Frames a reader reads at most between two acknowledgements.
const ACK_EVERY: u64 = 256;
/// A reader acknowledges at a frame's end once this long has passed since it last did, and
/// before it waits for its peer's budget only then (a writer can tell a slow reader from a
/// dead one, and a throttled reader does not acknowledge every frame).
const ACK_AT_LEAST_EVERY: Duration = Duration::from_secs(1);
/// What a writer writes at once: each part gets [`WRITE_TIMEOUT`].
const WRITE_CHUNK: usize = 64 * 1024;
/// The slowest link a stream is kept on, in bytes per second: the reader can acknowledge only
/// at the end of a frame, so a frame's bytes in transit extend the deadline at this rate.
const SLOWEST_LINK: u64 = 16 * 1024;
/// A stream that lived this long resets the writer's backoff: a reader that takes one batch
/// and resets its stream every time does not make the writer reopen at once.
const STREAM_LIVED: Duration = Duration::from_secs(1);

/// Tokens refilled at `rate` per second up to `burst`.
#[derive(Debug, Clone, Copy)]
struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
}

impl TokenBucket {
    fn full(rate: f64, burst: f64) -> Self {
        Self {
            tokens: burst,
            rate,
            burst,
        }
    }

    fn refill(&mut self, elapsed_secs: f64) {
        self.tokens = (self.tokens + elapsed_secs * self.rate).min(self.burst);
    }

    /// How long until it holds `cost` tokens (zero if it does; `cost` above the burst is
    /// treated as the burst).
    fn wait_for(&self, cost: f64) -> Duration {
        let missing = cost.min(self.burst) - self.tokens;
        if missing <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(missing / self.rate)
        }
    }
}

/// What one peer may still send: a message count and a byte budget, both refilled over time.
/// A message is admitted only if both allow it.
#[derive(Debug, Clone, Copy)]
pub struct PeerBudget {
    messages: TokenBucket,
    bytes: TokenBucket,
    streams: TokenBucket,
    updated: Instant,
}

impl PeerBudget {
    /// A full budget at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            messages: TokenBucket::full(RATE_PER_SEC, RATE_BURST),
            bytes: TokenBucket::full(BYTES_PER_SEC, BYTES_BURST),
            streams: TokenBucket::full(STREAMS_PER_SEC, STREAM_BURST),
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = now.max(self.updated);
        self.messages.refill(elapsed);
        self.bytes.refill(elapsed);
        self.streams.refill(elapsed);
    }

    /// Admits a new stream, spending from the stream budget, or refuses it (at once: the
    /// stream is dropped, and the peer's writer opens another after its backoff).
    pub fn admit_stream(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.streams.tokens < 1.0 {
            return false;
        }
        self.streams.tokens -= 1.0;
        true
    }

    /// Admits a message of `bytes`, spending from both budgets, or refuses it spending
    /// nothing and says how long until it would be admitted.
    pub fn admit(&mut self, now: Instant, bytes: usize) -> Result<(), Duration> {
        self.refill(now);
        let cost = (bytes as f64).min(self.bytes.burst);
        let wait = self.messages.wait_for(1.0).max(self.bytes.wait_for(cost));
        if !wait.is_zero() {
            return Err(wait);
        }
        self.messages.tokens -= 1.0;
        self.bytes.tokens -= cost;
        Ok(())
    }
}

/// What the readers of one peer's streams share: its budget, and whether it was already warned
/// about for malformed input (kept across its streams and connections).
pub struct InboundPeer {
    /// Its position in the roster.
    pub from: PeerIndex,
    budget: Mutex<PeerBudget>,
    warned: AtomicBool,
}

impl InboundPeer {
    /// A peer at roster position `from` with a full budget.
    pub fn new(from: PeerIndex) -> Self {
        Self {
            from,
            budget: Mutex::new(PeerBudget::new(Instant::now())),
            warned: AtomicBool::new(false),
        }
    }

    fn budget(&self) -> MutexGuard<'_, PeerBudget> {
        // A panic while holding the lock leaves a plain budget behind: still usable.
        self.budget
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the peer may open another stream now (see [`PeerBudget::admit_stream`]).
    pub fn admit_stream(&self) -> bool {
        self.budget().admit_stream(Instant::now())
    }

    /// Spends a message of `bytes` from the budget now, or says how long until it could.
    fn try_spend(&self, bytes: usize) -> Result<(), Duration> {
        // By tokio's clock, so a test with paused time sees the budget refill.
        let now = tokio::time::Instant::now().into_std();
        self.budget().admit(now, bytes)
    }

    /// Waits until the budget admits a message of `bytes`, and spends it.
    async fn spend(&self, bytes: usize) {
        while let Err(wait) = self.try_spend(bytes) {
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// Says that the peer sent something malformed: at warn level the first time, then at
    /// debug level, so a hostile member cannot flood the log (the drop counter counts all).
    fn report_malformed(&self, peer: &PeerId, what: &str, err: &dyn std::fmt::Display) {
        if self.warned.swap(true, Ordering::Relaxed) {
            tracing::debug!(%peer, "{what}: {err}");
        } else {
            tracing::warn!(%peer, "{what}: {err} (further malformed input from this peer is logged at debug level)");
        }
    }
}

/// What a reader needs besides its stream.
#[derive(Clone)]
pub struct ReaderContext {
    /// Decodes the frames.
    pub codec: Codec,
    /// Where messages go.
    pub inbox: Arc<InboxSender>,
    /// Counts bytes, messages and drops.
    pub metrics: Arc<NodeMetrics>,
}

/// Reads one frame's body of `len` bytes, grown as the bytes arrive rather than allocated at
/// the claimed length (a peer must send what it claims before it costs this node the memory).
async fn read_body<T: AsyncRead + Unpin>(io: &mut T, len: usize) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    (&mut *io).take(len as u64).read_to_end(&mut body).await?;
    if body.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("a frame of {len} bytes ended after {}", body.len()),
        ));
    }
    Ok(body)
}

/// Reads `peer`'s inbound stream until it ends or sends a frame that cannot be a message,
/// after acknowledging the stream with [`ACCEPTED`], and acknowledges the frames read (see the
/// module documentation).
pub async fn read_stream<T: AsyncRead + AsyncWrite + Unpin>(
    peer: PeerId,
    inbound: Arc<InboundPeer>,
    stream: T,
    context: ReaderContext,
) {
    let (frames, mut acks) = stream.split();
    let mut frames = BufReader::with_capacity(READ_BUFFER, frames);
    if let Err(err) = write_flushed(&mut acks, &[ACCEPTED]).await {
        tracing::debug!(%peer, "inbound stream ended before it was accepted: {err}");
        return;
    }
    let mut acks = Acknowledgements::new(acks);
    loop {
        let mut len = [0u8; FRAME_HEADER_BYTES];
        if let Err(err) = frames.read_exact(&mut len).await {
            tracing::debug!(%peer, "inbound stream ended: {err}");
            return;
        }
        let len = u32::from_be_bytes(len) as usize;
        if let Err(err) = check_frame_len(len) {
            NodeMetrics::inc(&context.metrics.messages_dropped);
            inbound.report_malformed(&peer, "closed its stream", &err);
            return;
        }
        if inbound.try_spend(len + FRAME_HEADER_BYTES).is_err() {
            // Throttled: what was read is acknowledged before the wait (at most once a second),
            // so the writer does not take a slow reader for a dead one.
            if acks.overdue()
                && let Err(err) = acks.send().await
            {
                tracing::debug!(%peer, "inbound stream ended: {err}");
                return;
            }
            inbound.spend(len + FRAME_HEADER_BYTES).await;
        }
        let body = match read_body(&mut frames, len).await {
            Ok(body) => body,
            Err(err) => {
                tracing::debug!(%peer, "inbound stream ended inside a frame: {err}");
                return;
            }
        };
        acks.read += 1;
        NodeMetrics::inc(&context.metrics.messages_received);
        NodeMetrics::add(
            &context.metrics.bytes_received,
            (len + FRAME_HEADER_BYTES) as u64,
        );
        queue(&peer, &inbound, &context, &body);
        // All that arrived in this node's buffer is read, or many frames were: acknowledge
        // before reading on.
        let due = frames.buffer().is_empty()
            || acks.read - acks.acknowledged >= ACK_EVERY
            || acks.overdue();
        if due && let Err(err) = acks.send().await {
            tracing::debug!(%peer, "inbound stream ended: {err}");
            return;
        }
        // A peer whose frames are always ready would otherwise keep this worker thread.
        tokio::task::consume_budget().await;
    }
}

/// Decodes a frame from `peer` and queues it in the inbox, or drops it, counted.
fn queue(peer: &PeerId, inbound: &InboundPeer, context: &ReaderContext, body: &[u8]) {
    match context.codec.decode(body) {
        Ok(message) => {
            if !context.inbox.push(inbound.from, message, body.len()) {
                NodeMetrics::inc(&context.metrics.messages_dropped);
                tracing::debug!(%peer, "its inbox queue is full; message dropped");
            }
        }
        Err(err) => {
            NodeMetrics::inc(&context.metrics.messages_dropped);
            inbound.report_malformed(peer, "dropped a message", &err);
        }
    }
}

/// A reader's side of the acknowledgements: the frames it read, those it acknowledged, and
/// when it last did.
struct Acknowledgements<W> {
    stream: W,
    read: u64,
    acknowledged: u64,
    last: tokio::time::Instant,
}

impl<W: AsyncWrite + Unpin> Acknowledgements<W> {
    fn new(stream: W) -> Self {
        Self {
            stream,
            read: 0,
            acknowledged: 0,
            last: tokio::time::Instant::now(),
        }
    }

    /// [`ACK_AT_LEAST_EVERY`] has passed since the last acknowledgement.
    fn overdue(&self) -> bool {
        self.last.elapsed() >= ACK_AT_LEAST_EVERY
    }

    /// Acknowledges the frames read unless already done, within [`ACK_TIMEOUT`] (a writer
    /// that never reads its acknowledgements stalls only its own stream, and not for ever).
    async fn send(&mut self) -> io::Result<()> {
        if self.read != self.acknowledged {
            let count = self.read.to_be_bytes();
            tokio::time::timeout(ACK_TIMEOUT, write_flushed(&mut self.stream, &count))
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "acknowledgement not taken")
                })??;
            self.acknowledged = self.read;
        }
        self.last = tokio::time::Instant::now();
        Ok(())
    }
}

/// Writes `bytes` and flushes them.
async fn write_flushed<T: AsyncWrite + Unpin>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    io.write_all(bytes).await?;
    io.flush().await
}

/// Wakes a writer when messages are queued for its peer, or tells it to stop.
#[derive(Default)]
pub struct WriterSignal {
    wake: Notify,
    stopped: AtomicBool,
}

impl WriterSignal {
    /// Messages were queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The peer is gone: the writer ends once its write under way, if any, is over (or makes
    /// no progress for [`WRITE_TIMEOUT`]), and puts back what was not acknowledged.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }
}

/// What a writer tells the network task: why it ended on its own (it is told to stop
/// otherwise), or that messages wait again.
#[derive(Debug)]
pub enum WriterEnded {
    /// The peer does not speak this node's message protocol.
    OtherVersion(PeerId),
    /// A stream ended having released slots of the peer's queue (batches acknowledged or put
    /// back): its next writer may be waiting for them.
    Released(PeerId),
}

/// What a writer needs besides its peer.
#[derive(Clone)]
pub struct WriterContext {
    /// Asks the network task to open a stream to a peer (never dialling it).
    pub open: mpsc::UnboundedSender<(PeerId, OpenReply)>,
    /// The queues the network task fills.
    pub outbox: Arc<Mutex<Outbox<PeerId>>>,
    /// Counts failed writes.
    pub metrics: Arc<NodeMetrics>,
    /// Where a writer says why it ended.
    pub ended: mpsc::UnboundedSender<WriterEnded>,
}

/// Locks an outbox shared with writers.
pub fn lock_outbox(outbox: &Mutex<Outbox<PeerId>>) -> MutexGuard<'_, Outbox<PeerId>> {
    // A panic while holding the lock leaves plain queues behind: still usable.
    outbox
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends `peer` what is queued for it, on one stream at a time, until told to stop or the peer
/// turns out to speak another protocol.
pub async fn write_to_peer(peer: PeerId, signal: Arc<WriterSignal>, context: WriterContext) {
    let mut backoff = REOPEN_MIN;
    while !signal.is_stopped() {
        match open_stream(peer, &context).await {
            Ok(mut stream) => match accepted(&mut stream).await {
                Ok(()) => {
                    let opened = Instant::now();
                    let delivered = write_batches(peer, stream, &signal, &context).await;
                    if delivered && opened.elapsed() >= STREAM_LIVED {
                        backoff = REOPEN_MIN;
                    }
                }
                Err(err) => tracing::debug!(%peer, "message stream not accepted: {err}"),
            },
            Err(OpenError::Unsupported(_)) => {
                let _ = context.ended.send(WriterEnded::OtherVersion(peer));
                return;
            }
            Err(err) => tracing::debug!(%peer, "cannot open a message stream: {err}"),
        }
        if signal.is_stopped() {
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(REOPEN_MAX);
    }
}

/// A stream to `peer`, opened by the network task.
async fn open_stream(peer: PeerId, context: &WriterContext) -> Result<Stream, OpenError> {
    let (reply, opened) = oneshot::channel();
    context
        .open
        .send((peer, reply))
        .map_err(|_| OpenError::Failed("the network task has stopped".to_string()))?;
    opened
        .await
        .map_err(|_| OpenError::Failed("no connection to the peer".to_string()))?
}

/// Waits for the reader's [`ACCEPTED`] on a stream just opened.
async fn accepted<T: AsyncRead + Unpin>(stream: &mut T) -> io::Result<()> {
    let mut byte = [0u8; 1];
    tokio::time::timeout(ACCEPT_TIMEOUT, stream.read_exact(&mut byte))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer"))??;
    if byte[0] != ACCEPTED {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("answered {:#04x}", byte[0]),
        ));
    }
    Ok(())
}

/// Writes `bytes` and flushes them, [`WRITE_CHUNK`] at a time, each within [`WRITE_TIMEOUT`]: a
/// slow link keeps its stream while it makes progress, a dead one is found in 10 s.
async fn write_making_progress<T: AsyncWrite + Unpin>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    let stalled = || io::Error::new(io::ErrorKind::TimedOut, "no progress for 10 s");
    for chunk in bytes.chunks(WRITE_CHUNK) {
        tokio::time::timeout(WRITE_TIMEOUT, io.write_all(chunk))
            .await
            .map_err(|_| stalled())??;
    }
    tokio::time::timeout(WRITE_TIMEOUT, io.flush())
        .await
        .map_err(|_| stalled())?
}

/// Batches written on a stream and not yet acknowledged, oldest first.
#[derive(Default)]
struct Unacknowledged {
    /// Each batch with the count of frames written up to and including it, and when it was
    /// written.
    batches: std::collections::VecDeque<(u64, Batch, Instant)>,
    /// Frames written on the stream.
    written: u64,
    /// Encoded bytes of the batches not acknowledged.
    bytes: u64,
    /// The last count acknowledged, and when.
    acknowledged: u64,
    acknowledged_at: Option<Instant>,
}

impl Unacknowledged {
    fn push(&mut self, batch: Batch, now: Instant) {
        self.written += batch.len() as u64;
        self.bytes += batch.wire_bytes() as u64;
        self.batches.push_back((self.written, batch, now));
    }

    /// The newest batch was written whole at `now`.
    fn written_at(&mut self, now: Instant) {
        if let Some((_, _, at)) = self.batches.back_mut() {
            *at = now;
        }
    }

    /// The batches the reader acknowledged with `count` frames read at `now`, or `None` when
    /// the count is no more than the last or more than was written (an honest reader's counts
    /// only rise, so a reader repeating them to keep this node busy has its stream ended).
    fn acknowledge(&mut self, count: u64, now: Instant) -> Option<Vec<Batch>> {
        if count <= self.acknowledged || count > self.written {
            return None;
        }
        self.acknowledged = count;
        self.acknowledged_at = Some(now);
        let mut done = Vec::new();
        while self.batches.front().is_some_and(|(end, ..)| *end <= count) {
            if let Some((_, batch, _)) = self.batches.pop_front() {
                self.bytes = self.bytes.saturating_sub(batch.wire_bytes() as u64);
                done.push(batch);
            }
        }
        Some(done)
    }

    /// When an acknowledgement is overdue: [`ACK_TIMEOUT`] after the later of the last one and
    /// the oldest batch not acknowledged being written, plus the time the bytes not
    /// acknowledged, at most one largest frame, take on the [`SLOWEST_LINK`].
    fn deadline(&self) -> Option<Instant> {
        let (_, _, written) = self.batches.front()?;
        let since = self.acknowledged_at.map_or(*written, |at| at.max(*written));
        // A reader acknowledges at least once a second at a frame's end, so at most one frame
        // is in transit unacknowledged for long: a dead peer is still found within about a
        // minute, however much is outstanding.
        let in_transit = self
            .bytes
            .min((MAX_MESSAGE_BYTES + FRAME_HEADER_BYTES) as u64);
        Some(since + ACK_TIMEOUT + Duration::from_secs(in_transit / SLOWEST_LINK))
    }
}

/// Why a stream's writing ended.
#[derive(Debug, PartialEq, Eq)]
enum StreamEnd {
    /// The writer was told to stop.
    Stopped,
    /// The reader ended the stream, or it broke.
    Closed,
    /// A write failed or took too long.
    WriteFailed,
    /// An acknowledgement is overdue.
    AckOverdue,
    /// The reader's count did not rise, or exceeds what was written.
    BadAck,
}

/// Writes batches on `stream` while the reader acknowledges them, until the stream ends (see
/// [`StreamEnd`]); every batch not acknowledged then goes back to the queue. Whether any batch
/// was delivered.
async fn write_batches<T: AsyncRead + AsyncWrite + Unpin>(
    peer: PeerId,
    stream: T,
    signal: &WriterSignal,
    context: &WriterContext,
) -> bool {
    let (from_reader, mut stream) = stream.split();
    // A stream of the reader's counts: polling it again resumes a partly read count, so it
    // can sit in a `select!` beside the other events.
    let acks = futures::stream::unfold(from_reader, |mut reader| async move {
        let mut count = [0u8; 8];
        reader.read_exact(&mut count).await.ok()?;
        Some((u64::from_be_bytes(count), reader))
    });
    let mut acks = std::pin::pin!(acks);
    let mut unacknowledged = Unacknowledged::default();
    let mut delivered = false;
    let end = loop {
        if signal.is_stopped() {
            break StreamEnd::Stopped;
        }
        let next = lock_outbox(&context.outbox).next_batch(peer, Instant::now());
        if let Some(batch) = next {
            let bytes = batch.to_bytes();
            unacknowledged.push(batch, Instant::now());
            match write_making_progress(&mut stream, &bytes).await {
                Ok(()) => {
                    unacknowledged.written_at(Instant::now());
                    continue;
                }
                Err(err) => tracing::debug!(%peer, "a batch was not written: {err}"),
            }
            break StreamEnd::WriteFailed;
        }
        let overdue = sleep_until(unacknowledged.deadline());
        // Acknowledgements first: one that arrived is taken even when the deadline passed too.
        tokio::select! {
            biased;
            ack = acks.next() => {
                let Some(count) = ack else {
                    break StreamEnd::Closed;
                };
                let Some(done) = unacknowledged.acknowledge(count, Instant::now()) else {
                    break StreamEnd::BadAck;
                };
                if !done.is_empty() {
                    let mut outbox = lock_outbox(&context.outbox);
                    for batch in &done {
                        outbox.done(peer, batch);
                    }
                    delivered = true;
                }
            }
            _ = signal.wake.notified() => {}
            _ = overdue => break StreamEnd::AckOverdue,
        }
        // Acknowledgements that are always ready would otherwise keep this worker thread.
        tokio::task::consume_budget().await;
    };
    let requeued = unacknowledged.batches.len();
    if requeued > 0 {
        NodeMetrics::add(&context.metrics.batches_failed, requeued as u64);
        let now = Instant::now();
        let mut outbox = lock_outbox(&context.outbox);
        // Newest first: each goes to the front of the queue, so they end up in order.
        for (_, batch, _) in unacknowledged.batches.into_iter().rev() {
            outbox.failed(peer, batch, now);
        }
    }
    if delivered || requeued > 0 {
        // The peer's next writer may be waiting for the slots this stream's batches held.
        let _ = context.ended.send(WriterEnded::Released(peer));
    }
    tracing::debug!(%peer, ?end, requeued, "message stream ended");
    if end == StreamEnd::Stopped {
        let _ = stream.close().await;
    }
    delivered
}

/// Sleeps until `at` (for ever when `None`).
pub async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// An echo of `epoch`: a small valid message.
    fn echo(epoch: u64) -> relayer_protocol::Message {
        relayer_protocol::Message::Echo(relayer_protocol::Echo {
            epoch,
            proposer: 0,
            data_hash: [1; 32],
            signature: vec![2; 64],
        })
    }

    /// A stream that reads `input` and keeps what is written to it.
    struct Duplex {
        input: futures::io::Cursor<Vec<u8>>,
        written: Vec<u8>,
    }

    impl Duplex {
        fn new(input: Vec<u8>) -> Self {
            Self {
                input: futures::io::Cursor::new(input),
                written: Vec::new(),
            }
        }
    }

    /// A stream whose reader never answers nor ends it.
    struct Silent;

    impl AsyncRead for Silent {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
    }

    impl AsyncWrite for Silent {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncRead for Duplex {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.input).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Duplex {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.written.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_peer_is_held_to_its_byte_budget_as_well_as_its_message_count() {
        let start = Instant::now();
        let mut budget = PeerBudget::new(start);
        let large = (BYTES_BURST / 4.0) as usize + 1;
        let admitted = (0..10)
            .filter(|_| budget.admit(start, large).is_ok())
            .count();
        assert_eq!(
            admitted, 3,
            "the byte burst, not the message burst, stops it"
        );
        assert!(
            budget.admit(start, 100).is_ok(),
            "a small message fits the rest"
        );
        let wait = budget
            .admit(start, large)
            .expect_err("refused, spending nothing");
        assert!(
            !wait.is_zero() && wait < Duration::from_millis(1),
            "only the refill of the bytes missing is waited for: {wait:?}"
        );
        // A second later 8 MiB more are allowed: one more large message, not two.
        let later = start + Duration::from_secs(1);
        assert!(budget.admit(later, large).is_ok());
        assert!(budget.admit(later, large).is_err());

        let mut budget = PeerBudget::new(start);
        assert!(budget.admit(start, BYTES_BURST as usize).is_ok());
        let wait = budget
            .admit(start, BYTES_PER_SEC as usize)
            .expect_err("the byte burst is spent");
        assert!(
            wait > Duration::from_millis(999) && wait <= Duration::from_secs(1),
            "a second of refill is missing: {wait:?}"
        );
    }

    #[test]
    fn a_peer_is_held_to_its_message_count_whatever_their_size() {
        let start = Instant::now();
        let mut budget = PeerBudget::new(start);
        let admitted = (0..10_000)
            .filter(|_| budget.admit(start, 1).is_ok())
            .count();
        assert_eq!(admitted, RATE_BURST as usize);
        let wait = budget.admit(start, 1).expect_err("the burst is spent");
        assert!(
            wait <= Duration::from_millis(1),
            "one message refills fast: {wait:?}"
        );
    }

    #[test]
    fn a_peer_opening_streams_fast_is_refused_past_its_stream_burst() {
        let start = Instant::now();
        let mut budget = PeerBudget::new(start);
        let admitted = (0..100).filter(|_| budget.admit_stream(start)).count();
        assert_eq!(admitted, STREAM_BURST as usize);
        let later = start + Duration::from_secs_f64(1.0 / STREAMS_PER_SEC);
        assert!(budget.admit_stream(later), "one more once refilled");
        assert!(!budget.admit_stream(later));
        assert!(
            budget.admit(later, 100).is_ok(),
            "messages have a budget of their own"
        );
    }

    /// A reader over an in-memory stream: frames are decoded and queued in order, a frame of
    /// junk is dropped without ending the stream, and an oversized length ends it.
    #[tokio::test]
    async fn a_reader_queues_messages_drops_junk_and_stops_at_an_impossible_frame() {
        use crate::inbox::{QueueLimits, inbox};

        let codec = Codec::new(&[1, 2, 3]);
        let mut bytes = Vec::new();
        let frame = |body: &[u8], bytes: &mut Vec<u8>| {
            bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
            bytes.extend_from_slice(body);
        };
        frame(&codec.encode(&echo(1)).unwrap(), &mut bytes);
        frame(&[0xff; 3], &mut bytes);
        frame(&codec.encode(&echo(2)).unwrap(), &mut bytes);
        bytes.extend_from_slice(&((MAX_MESSAGE_BYTES + 1) as u32).to_be_bytes());
        frame(&codec.encode(&echo(3)).unwrap(), &mut bytes);

        let (sender, mut receiver) = inbox(2, QueueLimits::default());
        let metrics = Arc::new(NodeMetrics::default());
        let context = ReaderContext {
            codec: codec.clone(),
            inbox: Arc::new(sender),
            metrics: metrics.clone(),
        };
        let peer = PeerId::random();
        let mut stream = Duplex::new(bytes);
        read_stream(peer, Arc::new(InboundPeer::new(1)), &mut stream, context).await;
        assert_eq!(
            stream.written,
            [ACCEPTED],
            "accepted once; nothing acknowledged while more was waiting to be read"
        );

        assert_eq!(receiver.queued(), 2, "two messages, the junk dropped");
        for epoch in [1, 2] {
            let inbound = receiver.recv().await.unwrap();
            assert_eq!(inbound.from, 1);
            assert_eq!(inbound.message, echo(epoch));
        }
        assert_eq!(NodeMetrics::get(&metrics.messages_received), 3);
        assert_eq!(
            NodeMetrics::get(&metrics.messages_dropped),
            2,
            "the junk frame and the impossible one; nothing after it was read"
        );
    }

    /// A reader waits for its peer's budget instead of reading ahead: with the message burst
    /// spent, the next frames arrive at the sustained rate.
    #[tokio::test(start_paused = true)]
    async fn a_reader_over_budget_waits_instead_of_reading_on() {
        use crate::inbox::{QueueLimits, inbox};

        let codec = Codec::new(&[1]);
        let body = codec.encode(&echo(1)).unwrap();
        let frames = 1_024;
        let mut bytes = Vec::new();
        for _ in 0..frames {
            bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
            bytes.extend_from_slice(&body);
        }
        let (sender, receiver) = inbox(
            1,
            QueueLimits {
                messages: 100_000,
                bytes: 1 << 30,
            },
        );
        let inbound = Arc::new(InboundPeer::new(0));
        // Spend the burst but for 24 messages.
        for _ in 0..(RATE_BURST as usize - 24) {
            inbound.spend(1).await;
        }
        let context = ReaderContext {
            codec,
            inbox: Arc::new(sender),
            metrics: Arc::new(NodeMetrics::default()),
        };
        let start = tokio::time::Instant::now();
        let mut stream = Duplex::new(bytes);
        read_stream(PeerId::random(), inbound, &mut stream, context).await;
        let took = start.elapsed();
        assert_eq!(
            receiver.queued(),
            frames,
            "nothing dropped: the reader waited"
        );
        assert_eq!(
            stream.written[1..9],
            ACK_EVERY.to_be_bytes(),
            "a throttled reader still acknowledges as it goes, not only at the end"
        );
        let expected = (frames - 24) as f64 / RATE_PER_SEC;
        assert!(
            took.as_secs_f64() >= expected * 0.9,
            "{frames} frames over budget took {took:?}, expected about {expected} s"
        );
    }

    /// The frames of `bodies`, as a writer writes them.
    fn frames(bodies: &[Vec<u8>]) -> Vec<u8> {
        bodies
            .iter()
            .flat_map(|body| {
                let mut frame = (body.len() as u32).to_be_bytes().to_vec();
                frame.extend_from_slice(body);
                frame
            })
            .collect()
    }

    /// A reader acknowledges what it read once it has read all that arrived: one count for
    /// the three frames that came together.
    #[tokio::test]
    async fn a_reader_acknowledges_what_it_read_once_nothing_more_is_waiting() {
        use crate::inbox::{QueueLimits, inbox};

        let codec = Codec::new(&[1]);
        let body = codec.encode(&echo(1)).unwrap();
        let (sender, receiver) = inbox(1, QueueLimits::default());
        let context = ReaderContext {
            codec,
            inbox: Arc::new(sender),
            metrics: Arc::new(NodeMetrics::default()),
        };
        let mut stream = Duplex::new(frames(&[body.clone(), body.clone(), body]));
        read_stream(
            PeerId::random(),
            Arc::new(InboundPeer::new(0)),
            &mut stream,
            context,
        )
        .await;
        assert_eq!(receiver.queued(), 3);
        let mut expected = vec![ACCEPTED];
        expected.extend_from_slice(&3u64.to_be_bytes());
        assert_eq!(stream.written, expected);
    }

    /// A writer with `queued` messages for one peer, over a stream whose reader sends `acks`
    /// and then ends it: what it wrote, whether it delivered anything, and what waits again.
    async fn write_over(acks: &[u64]) -> (Vec<u8>, bool, usize, u64) {
        let peer = PeerId::random();
        let outbox = Arc::new(Mutex::new(Outbox::default()));
        for byte in 1..=3u8 {
            assert!(lock_outbox(&outbox).queue(peer, Arc::new(vec![byte; 2]), Instant::now()));
        }
        let (ended, _ended_rx) = mpsc::unbounded_channel();
        let (open, _open_rx) = mpsc::unbounded_channel();
        let metrics = Arc::new(NodeMetrics::default());
        let context = WriterContext {
            open,
            outbox: outbox.clone(),
            metrics: metrics.clone(),
            ended,
        };
        let signal = WriterSignal::default();
        let input = acks.iter().flat_map(|ack| ack.to_be_bytes()).collect();
        let mut stream = Duplex::new(input);
        let delivered = write_batches(peer, &mut stream, &signal, &context).await;
        let waiting = lock_outbox(&outbox).waiting(peer);
        (
            stream.written,
            delivered,
            waiting,
            NodeMetrics::get(&metrics.batches_failed),
        )
    }

    /// A writer sends everything queued as one write; acknowledged, it is done with it.
    #[tokio::test]
    async fn an_acknowledged_batch_is_delivered() {
        let (written, delivered, waiting, failed) = write_over(&[3]).await;
        assert_eq!(written, frames(&[vec![1, 1], vec![2, 2], vec![3, 3]]));
        assert!(delivered);
        assert_eq!((waiting, failed), (0, 0));
    }

    /// A batch the reader never acknowledged, because the stream ended or because its count
    /// cannot be right (more than was written, or not above the last one), goes back to the
    /// queue for the next stream.
    #[tokio::test]
    async fn a_batch_not_acknowledged_goes_back_to_the_queue() {
        for acks in [&[][..], &[2], &[4], &[2, 2], &[2, 1]] {
            let (written, delivered, waiting, failed) = write_over(acks).await;
            assert_eq!(written.len(), 3 * (FRAME_HEADER_BYTES + 2), "{acks:?}");
            assert!(!delivered, "{acks:?}");
            assert_eq!((waiting, failed), (3, 1), "{acks:?}");
        }
    }

    /// An acknowledgement overdue (a peer gone without closing its connection) ends the
    /// stream and puts the batch back.
    #[tokio::test(start_paused = true)]
    async fn a_batch_whose_acknowledgement_is_overdue_goes_back_to_the_queue() {
        let peer = PeerId::random();
        let outbox = Arc::new(Mutex::new(Outbox::default()));
        assert!(lock_outbox(&outbox).queue(peer, Arc::new(vec![9]), Instant::now()));
        let (ended, _ended_rx) = mpsc::unbounded_channel();
        let (open, _open_rx) = mpsc::unbounded_channel();
        let context = WriterContext {
            open,
            outbox: outbox.clone(),
            metrics: Arc::new(NodeMetrics::default()),
            ended,
        };
        let signal = WriterSignal::default();
        let started = tokio::time::Instant::now();
        assert!(!write_batches(peer, Silent, &signal, &context).await);
        assert!(started.elapsed() >= ACK_TIMEOUT);
        assert_eq!(lock_outbox(&outbox).waiting(peer), 1);
    }

    #[tokio::test]
    async fn a_stream_is_used_only_once_the_reader_accepted_it() {
        assert!(accepted(&mut Duplex::new(vec![ACCEPTED])).await.is_ok());
        assert!(accepted(&mut Duplex::new(vec![7])).await.is_err());
        assert!(accepted(&mut Duplex::new(Vec::new())).await.is_err());
    }

    /// Takes at most one [`WRITE_CHUNK`] per write, each after `delay`.
    struct Trickle {
        delay: Duration,
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
        written: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let delay = self.delay;
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
            let taken = buf.len().min(WRITE_CHUNK);
            self.written += taken;
            Poll::Ready(Ok(taken))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A slow link keeps its stream while every part of a write makes progress within
    /// [`WRITE_TIMEOUT`], however long the whole takes; a link that stalls fails in one.
    #[tokio::test(start_paused = true)]
    async fn a_write_fails_on_a_stall_not_on_a_slow_link() {
        let bytes = vec![7u8; 4 * WRITE_CHUNK];
        let mut slow = Trickle {
            delay: WRITE_TIMEOUT / 2,
            sleep: None,
            written: 0,
        };
        let started = tokio::time::Instant::now();
        assert!(write_making_progress(&mut slow, &bytes).await.is_ok());
        assert_eq!(slow.written, bytes.len());
        assert!(
            started.elapsed() >= WRITE_TIMEOUT * 2,
            "longer than one limit in all"
        );
        let mut stalled = Trickle {
            delay: WRITE_TIMEOUT * 2,
            sleep: None,
            written: 0,
        };
        let started = tokio::time::Instant::now();
        let err = write_making_progress(&mut stalled, &bytes)
            .await
            .expect_err("no progress");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < WRITE_TIMEOUT * 2);
    }

    /// What is outstanding extends the acknowledgement deadline at the slowest link's rate, and
    /// an acknowledgement restarts it.
    #[test]
    fn the_acknowledgement_deadline_allows_for_what_is_in_transit() {
        let start = Instant::now();
        let peer = PeerId::random();
        let mut outbox = Outbox::default();
        let mut unacknowledged = Unacknowledged::default();
        assert_eq!(unacknowledged.deadline(), None);
        for byte in [1u8, 2] {
            assert!(outbox.queue(peer, Arc::new(vec![byte; 160 * 1024]), start));
            let batch = outbox.next_batch(peer, start).unwrap();
            unacknowledged.push(batch, start);
        }
        let in_transit = Duration::from_secs(2 * (160 * 1024 + 4) / SLOWEST_LINK);
        assert_eq!(
            unacknowledged.deadline(),
            Some(start + ACK_TIMEOUT + in_transit)
        );
        let later = start + Duration::from_secs(3);
        assert_eq!(
            unacknowledged.acknowledge(1, later).map(|done| done.len()),
            Some(1)
        );
        let one = Duration::from_secs((160 * 1024 + 4) / SLOWEST_LINK);
        assert_eq!(unacknowledged.deadline(), Some(later + ACK_TIMEOUT + one));
        // However much is outstanding, at most one largest frame is counted in transit.
        let mut large = Unacknowledged::default();
        for byte in [3u8, 4, 5] {
            assert!(outbox.queue(peer, Arc::new(vec![byte; MAX_MESSAGE_BYTES]), start));
        }
        let batch = outbox.next_batch(peer, start).unwrap();
        assert_eq!(batch.len(), 3);
        large.push(batch, start);
        let largest =
            Duration::from_secs((MAX_MESSAGE_BYTES + FRAME_HEADER_BYTES) as u64 / SLOWEST_LINK);
        assert_eq!(large.deadline(), Some(start + ACK_TIMEOUT + largest));
    }
}
