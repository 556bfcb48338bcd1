//! libp2p networking: TCP + noise + yamux, one request-response protocol carrying encoded
//! [`relayer_protocol::Message`]s. The libp2p identity IS the member's ed25519 key, and only
//! the members of the signer sets the node works under are allowed to connect (allow list,
//! updated as versions come and go), so every message processed comes from an authenticated
//! member. Peers are named by their position in the protocol engine's roster. Message sizes
//! are bounded, each peer is rate-limited, and disconnected members are redialled with
//! exponential backoff. For benchmarks and tests only, a [`LinkDelay`] holds each outgoing
//! message back by its link's one-way delay (the kernel here has no netem).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::allow_block_list::{self, AllowedPeers};
use libp2p::connection_limits;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identity, noise, tcp, yamux};
use relayer_protocol::{Message, PeerIndex};
use thiserror::Error;
use tokio::sync::mpsc;

use crate::connections::PeerConnections;
use crate::inbox::{InboxReceiver, InboxSender, QueueLimits, inbox};
use crate::metrics::NodeMetrics;
use crate::outbox::{Batch, FRAME_HEADER_BYTES, MAX_BATCH_BYTES, Outbox, split_batch};
use relayer_protocol::wire::Codec;

/// Messages a peer may burst before rate limiting starts.
const RATE_BURST: f64 = 4_096.0;
/// Sustained messages per second per peer.
const RATE_PER_SEC: f64 = 2_048.0;
/// Encoded bytes a peer may burst, and sustain per second: far above what an honest member
/// sends (its observation to each member, and the observations its block references to those
/// that ask), far below what would let one peer fill the node's memory or time.
const BYTES_BURST: f64 = 32.0 * 1024.0 * 1024.0;
const BYTES_PER_SEC: f64 = 8.0 * 1024.0 * 1024.0;
/// Connections one peer may hold to this node (a reconnect may briefly overlap the old one).
const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Substreams per connection, both ways: a member keeps at most 4 requests in flight (see
/// [`crate::outbox`]), so more are a peer holding this node's memory open.
const MAX_STREAMS_PER_CONNECTION: usize = 16;
const REDIAL_MIN: Duration = Duration::from_millis(250);
/// How long the member with the larger peer id waits before its first dial to a peer, so
/// that the smaller one (which dials at once) usually connects them: one connection per
/// pair instead of two when both dial at the same moment (n = 128 in one process needs half
/// the file descriptors). Either side still connects them if the other is down.
const YIELD_TO_SMALLER_ID: Duration = Duration::from_secs(1);
/// Messages an emulated link delay may hold back at once (benchmarks and tests); more are
/// dropped and counted, as a full outbox drops them.
const MAX_DELAYED: usize = 1 << 18;
const REDIAL_MAX: Duration = Duration::from_secs(8);

/// The one-way delay of the link to the peer with the given ed25519 key (benchmarks and
/// tests: a wide-area network emulated in user space).
pub type LinkDelay = Arc<dyn Fn(&[u8; 32]) -> Duration + Send + Sync>;

/// Messages held back by a [`LinkDelay`]: `(release at, sequence, peer, bytes)`, released in
/// the order they were sent on each link (its delay is constant).
type Delayed = BinaryHeap<Reverse<(Instant, u64, PeerIndex, DelayedBytes)>>;

/// Encoded bytes in the delay queue (ordered by the sequence number before them, never by
/// content).
#[derive(Clone)]
struct DelayedBytes(Arc<Vec<u8>>);

impl PartialEq for DelayedBytes {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for DelayedBytes {}
impl PartialOrd for DelayedBytes {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for DelayedBytes {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

/// Networking failures at start-up.
#[derive(Debug, Clone, Error)]
pub enum NetError {
    /// A bad key or address.
    #[error("invalid network setting: {0}")]
    Invalid(String),
    /// Cannot listen.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
}

enum Command {
    Send { to: PeerIndex, bytes: Arc<Vec<u8>> },
    SetPeers(Vec<PeerEntry>),
}

/// One peer of the roster, at the position that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEntry {
    /// ed25519 public key (its libp2p identity).
    pub key: [u8; 32],
    /// Where to dial it.
    pub addr: String,
    /// Whether it is a member of a signer set the node works under: only those are dialled
    /// and admitted.
    pub active: bool,
}

/// Sends messages through the swarm task; cheap to clone.
#[derive(Clone, Debug)]
pub struct NetHandle {
    codec: Codec,
    commands: mpsc::UnboundedSender<Command>,
    metrics: Arc<NodeMetrics>,
    connected: ConnectedMembers,
}

impl NetHandle {
    /// Sends `message` to peer `to` (dropped silently if the network task has stopped).
    pub fn send(&self, to: PeerIndex, message: &Message) {
        if let Some(bytes) = self.encode(message) {
            self.send_bytes(to, Arc::new(bytes));
        }
    }

    /// The message's bytes; a message the codec refuses is a bug, said at error level.
    fn encode(&self, message: &Message) -> Option<Vec<u8>> {
        self.codec
            .encode(message)
            .map_err(|err| {
                let kind: &'static str = message.into();
                tracing::error!(
                    kind,
                    epoch = message.epoch(),
                    "cannot send a message: {err}"
                );
            })
            .ok()
    }

    /// Sends the same message to several members, encoding it once.
    pub fn send_many(&self, to: impl IntoIterator<Item = PeerIndex>, message: &Message) {
        if let Some(bytes) = self.encode(message) {
            let bytes = Arc::new(bytes);
            for member in to {
                self.send_bytes(member, bytes.clone());
            }
        }
    }

    fn send_bytes(&self, to: PeerIndex, bytes: Arc<Vec<u8>>) {
        NodeMetrics::inc(&self.metrics.messages_sent);
        NodeMetrics::add(&self.metrics.bytes_sent, bytes.len() as u64);
        let _ = self.commands.send(Command::Send { to, bytes });
    }

    /// Replaces the roster: new peers are added at their positions, and only active ones
    /// are dialled and admitted (those no longer active are disconnected).
    pub fn set_peers(&self, peers: Vec<PeerEntry>) {
        let _ = self.commands.send(Command::SetPeers(peers));
    }

    /// Members currently connected (of any signer set this node works under).
    pub fn connected_peers(&self) -> usize {
        self.connected_members().len()
    }

    /// The ed25519 keys of the members currently connected that speak this node's protocol.
    pub fn connected_members(&self) -> Vec<[u8; 32]> {
        self.connected
            .lock()
            .map(|keys| keys.clone())
            .unwrap_or_default()
    }
}

/// How long `me` waits before its first dial to `peer` (see [`YIELD_TO_SMALLER_ID`]).
fn first_dial_delay(me: &PeerId, peer: &PeerId) -> Duration {
    if me < peer {
        Duration::ZERO
    } else {
        YIELD_TO_SMALLER_ID
    }
}

/// Sleeps until `at` (for ever when `None`).
fn sleep_until(at: Option<Instant>) -> tokio::time::Sleep {
    let far = Instant::now() + Duration::from_secs(86_400);
    tokio::time::sleep_until(tokio::time::Instant::from_std(at.unwrap_or(far)))
}

/// The libp2p PeerId of an ed25519 public key.
pub fn peer_id_of(public_key: &[u8; 32]) -> Result<PeerId, NetError> {
    let key = identity::ed25519::PublicKey::try_from_bytes(public_key)
        .map_err(|err| NetError::Invalid(format!("ed25519 key: {err}")))?;
    Ok(identity::PublicKey::from(key).to_peer_id())
}

/// One length-prefixed batch of frames per request (see [`crate::outbox`]), with a size limit;
/// splitting and decoding happen in the swarm task.
#[derive(Debug, Clone, Default)]
pub struct WireCodec;

async fn read_frame<T: futures::AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_BATCH_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the limit"),
        ));
    }
    // Grown as bytes arrive, not allocated at the claimed length: a peer must send what it
    // claims before it costs this node the memory.
    let mut bytes = Vec::new();
    io.take(len as u64).read_to_end(&mut bytes).await?;
    if bytes.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame of {len} bytes ended after {}", bytes.len()),
        ));
    }
    Ok(bytes)
}

async fn write_frame<T: futures::AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
) -> io::Result<()> {
    io.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

#[async_trait]
impl request_response::Codec for WireCodec {
    type Protocol = StreamProtocol;
    type Request = Arc<Vec<u8>>;
    type Response = ();

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Arc<Vec<u8>>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        read_frame(io).await.map(Arc::new)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<()>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let mut ack = [0u8; 1];
        io.read_exact(&mut ack).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Arc<Vec<u8>>,
    ) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_frame(io, &request).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, _: ()) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        io.write_all(&[1]).await?;
        io.close().await
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    allow: allow_block_list::Behaviour<AllowedPeers>,
    limits: connection_limits::Behaviour,
    messages: request_response::Behaviour<WireCodec>,
}

/// The keys of the members connected, as the swarm task last published them.
type ConnectedMembers = Arc<std::sync::Mutex<Vec<[u8; 32]>>>;

/// A swarm listening on its address, not yet told who the members are.
pub struct BoundNet {
    swarm: Swarm<Behaviour>,
    link_delay: Option<LinkDelay>,
    /// The address it listens on (with the real port when 0 was asked for).
    pub listen_addr: Multiaddr,
    /// This node's PeerId.
    pub peer_id: PeerId,
    codec: Codec,
}

impl BoundNet {
    /// Builds the swarm from the node's ed25519 secret, speaking `codec` (whose protocol id
    /// names the mixnode set), and starts listening on `listen`.
    pub async fn bind(secret: [u8; 32], listen: &str, codec: Codec) -> Result<Self, NetError> {
        let protocol = StreamProtocol::try_from_owned(codec.protocol_id())
            .map_err(|err| NetError::Invalid(err.to_string()))?;
        let mut secret = secret;
        let keypair = identity::Keypair::ed25519_from_bytes(&mut secret)
            .map_err(|err| NetError::Invalid(err.to_string()))?;
        let peer_id = keypair.public().to_peer_id();
        let addr: Multiaddr = listen
            .parse()
            .map_err(|err| NetError::Invalid(format!("{listen}: {err}")))?;
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                || {
                    let mut config = yamux::Config::default();
                    config.set_max_num_streams(MAX_STREAMS_PER_CONNECTION);
                    config
                },
            )
            .map_err(|err| NetError::Invalid(err.to_string()))?
            .with_behaviour(|_| Behaviour {
                allow: allow_block_list::Behaviour::default(),
                limits: connection_limits::Behaviour::new(
                    connection_limits::ConnectionLimits::default()
                        .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER)),
                ),
                messages: request_response::Behaviour::new(
                    [(protocol, ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(10))
                        .with_max_concurrent_streams(MAX_STREAMS_PER_CONNECTION),
                ),
            })
            .map_err(|err| NetError::Invalid(err.to_string()))?
            .with_swarm_config(|config| {
                config.with_idle_connection_timeout(Duration::from_secs(3_600))
            })
            .build();
        let listen_error = |reason: String| NetError::Listen {
            addr: listen.to_string(),
            reason,
        };
        swarm
            .listen_on(addr)
            .map_err(|err| listen_error(err.to_string()))?;
        let listen_addr = loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => break address,
                SwarmEvent::ListenerError { error, .. } => {
                    return Err(listen_error(error.to_string()));
                }
                SwarmEvent::ListenerClosed {
                    reason: Err(error), ..
                } => return Err(listen_error(error.to_string())),
                _ => {}
            }
        };
        Ok(Self {
            swarm,
            link_delay: None,
            listen_addr,
            peer_id,
            codec,
        })
    }

    /// Holds every outgoing message back by its link's one-way delay (benchmarks and tests
    /// only: an emulated wide-area network).
    pub fn with_link_delay(mut self, delay: LinkDelay) -> Self {
        self.link_delay = Some(delay);
        self
    }

    /// The encoding it speaks (and so the mixnode set it carries).
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// Starts the swarm task for the roster `peers` (by [`PeerIndex`]). Inbound messages from
    /// active peers arrive on the returned receiver.
    pub fn run(
        self,
        peers: Vec<PeerEntry>,
        metrics: Arc<NodeMetrics>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(NetHandle, InboxReceiver), NetError> {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (inbound_tx, inbound) = inbox(peers.len(), QueueLimits::default());
        let connected = ConnectedMembers::default();
        let codec = self.codec;
        let mut task = SwarmTask {
            swarm: self.swarm,
            me: self.peer_id,
            index_of: HashMap::new(),
            link_delay: self.link_delay,
            delays: HashMap::new(),
            delayed: BinaryHeap::new(),
            delayed_seq: 0,
            peers: Vec::new(),
            keys: Vec::new(),
            addrs: HashMap::new(),
            active: HashSet::new(),
            connected_peers: HashSet::new(),
            connections: PeerConnections::default(),
            other_versions: HashSet::new(),
            connected: connected.clone(),
            budgets: HashMap::new(),
            outbox: Outbox::default(),
            in_flight: HashMap::new(),
            malformed_from: HashSet::new(),
            redial: HashMap::new(),
            metrics: metrics.clone(),
            inbound: inbound_tx,
            codec: codec.clone(),
        };
        if let Err(err) = task.set_peers(peers) {
            // Only that member is affected (see `set_peers`): the node starts anyway.
            tracing::warn!("a signer set names a peer that cannot be used: {err}");
        }
        tokio::spawn(task.run(command_rx, shutdown));
        Ok((
            NetHandle {
                codec,
                commands,
                metrics,
                connected,
            },
            inbound,
        ))
    }
}

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
}

/// What one peer may still send: a message count and a byte budget, both refilled over time.
/// A message is admitted only if both allow it.
#[derive(Debug, Clone, Copy)]
struct PeerBudget {
    messages: TokenBucket,
    bytes: TokenBucket,
    updated: Instant,
}

impl PeerBudget {
    fn new(now: Instant) -> Self {
        Self {
            messages: TokenBucket::full(RATE_PER_SEC, RATE_BURST),
            bytes: TokenBucket::full(BYTES_PER_SEC, BYTES_BURST),
            updated: now,
        }
    }

    /// Admits a message of `bytes`, spending from both budgets, or refuses it spending
    /// nothing.
    fn admit(&mut self, now: Instant, bytes: usize) -> bool {
        let elapsed = now.duration_since(self.updated).as_secs_f64();
        self.updated = now;
        self.messages.refill(elapsed);
        self.bytes.refill(elapsed);
        let cost = bytes as f64;
        if self.messages.tokens < 1.0 || self.bytes.tokens < cost {
            return false;
        }
        self.messages.tokens -= 1.0;
        self.bytes.tokens -= cost;
        true
    }
}

struct SwarmTask {
    swarm: Swarm<Behaviour>,
    me: PeerId,
    /// The roster, by peer index (`None` for a key that is no ed25519 public key).
    peers: Vec<Option<PeerId>>,
    /// Each position's ed25519 key (for its link delay).
    keys: Vec<Option<[u8; 32]>>,
    /// Where to dial each peer (none for an address that does not parse).
    addrs: HashMap<PeerId, Multiaddr>,
    index_of: HashMap<PeerId, PeerIndex>,
    /// Peers dialled and admitted.
    active: HashSet<PeerId>,
    /// The emulated one-way delay of each link, if any (benchmarks and tests).
    link_delay: Option<LinkDelay>,
    delays: HashMap<PeerIndex, Duration>,
    delayed: Delayed,
    delayed_seq: u64,
    connected_peers: HashSet<PeerId>,
    /// Each peer's open connections, to close the second of two simultaneous ones.
    connections: PeerConnections<PeerId, ConnectionId>,
    /// Connected peers found speaking another protocol version or mixnode set (one warning
    /// each; forgotten at the peer's next connection).
    other_versions: HashSet<PeerId>,
    connected: ConnectedMembers,
    budgets: HashMap<PeerId, PeerBudget>,
    outbox: Outbox<PeerId>,
    /// Peers already warned about for malformed input.
    malformed_from: HashSet<PeerId>,
    /// The batches of the requests in flight, until they end.
    in_flight: HashMap<request_response::OutboundRequestId, Batch>,
    redial: HashMap<PeerId, (Instant, Duration)>,
    metrics: Arc<NodeMetrics>,
    inbound: InboxSender,
    codec: Codec,
}

impl SwarmTask {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut redial_tick = tokio::time::interval(REDIAL_MIN);
        loop {
            let next_release = self.delayed.peek().map(|Reverse((at, ..))| *at);
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Send { to, bytes }) => self.send_or_delay(to, bytes),
                    Some(Command::SetPeers(peers)) => {
                        if let Err(err) = self.set_peers(peers) {
                            tracing::warn!("a signer set names a peer that cannot be used: {err}");
                        }
                    }
                    None => break,
                },
                event = self.swarm.select_next_some() => self.on_event(event),
                _ = redial_tick.tick() => self.redial(),
                _ = sleep_until(next_release), if next_release.is_some() => self.release_delayed(),
                _ = shutdown.changed() => break,
            }
            // The swarm is not a tokio resource: under a flood it is always ready, and without
            // this the loop would never give its worker thread back to the other tasks.
            tokio::task::consume_budget().await;
        }
        tracing::debug!("network task stopped");
    }

    /// Takes the roster `entries`: each position's key and address, and whether it is active
    /// (allowed and dialled); a peer no longer active is disallowed, which closes its
    /// connections. A member's unusable key or address costs only that member (never dialled,
    /// or, with a bad key, never admitted): the error is returned once the rest is taken.
    fn set_peers(&mut self, entries: Vec<PeerEntry>) -> Result<(), NetError> {
        let mut first_error = None;
        for (position, entry) in entries.into_iter().enumerate() {
            let Ok(index) = PeerIndex::try_from(position) else {
                break;
            };
            let peer = peer_id_of(&entry.key)
                .map_err(|err| first_error.get_or_insert(err).clone())
                .ok();
            match self.peers.get_mut(position) {
                Some(known) => *known = peer,
                None => self.peers.push(peer),
            }
            match self.keys.get_mut(position) {
                Some(known) => *known = peer.map(|_| entry.key),
                None => self.keys.push(peer.map(|_| entry.key)),
            }
            self.delays.remove(&index);
            let Some(peer) = peer else {
                continue;
            };
            self.index_of.insert(peer, index);
            match entry.addr.parse::<Multiaddr>() {
                Ok(addr) => {
                    self.addrs.insert(peer, addr);
                }
                Err(err) => {
                    self.addrs.remove(&peer);
                    first_error.get_or_insert(NetError::Invalid(format!("{}: {err}", entry.addr)));
                }
            }
            if peer == self.me {
                continue;
            }
            if entry.active {
                self.swarm.behaviour_mut().allow.allow_peer(peer);
                if let Some(addr) = self.addrs.get(&peer) {
                    self.swarm.add_peer_address(peer, addr.clone());
                }
                if self.active.insert(peer) {
                    // Newly a member: dialled at the next tick, not after an old backoff.
                    self.redial.remove(&peer);
                }
            } else if self.active.remove(&peer) {
                self.swarm.behaviour_mut().allow.disallow_peer(peer);
                self.outbox.forget(peer);
                tracing::info!(%peer, "no longer a member of a signer set this node works under; disconnected");
            }
        }
        self.inbound.grow(self.peers.len());
        self.publish_connected();
        first_error.map_or(Ok(()), Err)
    }

    /// Sends `bytes` to `to`, after its link's emulated delay when one is set.
    fn send_or_delay(&mut self, to: PeerIndex, bytes: Arc<Vec<u8>>) {
        let Some(delay) = self.link_delay_to(to).filter(|delay| !delay.is_zero()) else {
            return self.send(to, bytes);
        };
        if self.delayed.len() >= MAX_DELAYED {
            NodeMetrics::inc(&self.metrics.messages_dropped);
            return;
        }
        self.delayed_seq += 1;
        self.delayed.push(Reverse((
            Instant::now() + delay,
            self.delayed_seq,
            to,
            DelayedBytes(bytes),
        )));
    }

    /// The emulated delay of the link to `to` (computed once per peer).
    fn link_delay_to(&mut self, to: PeerIndex) -> Option<Duration> {
        let link_delay = self.link_delay.as_ref()?;
        if let Some(delay) = self.delays.get(&to) {
            return Some(*delay);
        }
        let key = self.keys.get(usize::from(to)).copied().flatten()?;
        let delay = link_delay(&key);
        self.delays.insert(to, delay);
        Some(delay)
    }

    /// Sends the held-back messages whose delay is over.
    fn release_delayed(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, ..))) = self.delayed.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, _, to, DelayedBytes(bytes)))) = self.delayed.pop() {
                self.send(to, bytes);
            }
        }
    }

    /// Queues `bytes` for peer `to` and sends what its queue allows (see [`crate::outbox`]).
    fn send(&mut self, to: PeerIndex, bytes: Arc<Vec<u8>>) {
        let Some(peer) = self
            .peers
            .get(usize::from(to))
            .copied()
            .flatten()
            .filter(|peer| self.active.contains(peer))
        else {
            return;
        };
        if !self.outbox.queue(peer, bytes, Instant::now()) {
            NodeMetrics::inc(&self.metrics.messages_dropped);
            tracing::debug!(%peer, "its outbound queue is full; message dropped");
        }
        self.flush(peer);
    }

    /// Sends `peer` batches of its queued messages while it has room for requests in flight.
    /// Nothing goes to a peer that speaks another protocol version, nor to one not connected:
    /// its messages wait (up to their age limit) for the redial loop, which keeps its backoff,
    /// to connect it (sending would dial at once).
    fn flush(&mut self, peer: PeerId) {
        if self.other_versions.contains(&peer) || !self.connected_peers.contains(&peer) {
            return;
        }
        let now = Instant::now();
        while let Some(mut batch) = self.outbox.next_batch(peer, now) {
            let bytes = std::mem::take(&mut batch.bytes);
            let request = self
                .swarm
                .behaviour_mut()
                .messages
                .send_request(&peer, Arc::new(bytes));
            self.in_flight.insert(request, batch);
        }
        self.count_dropped();
    }

    /// A request to `peer` is over: send more (a peer that is down gets its queue when it is
    /// back).
    fn request_over(&mut self, peer: PeerId, request: request_response::OutboundRequestId) {
        if let Some(batch) = self.in_flight.remove(&request) {
            self.outbox.done(peer, &batch);
        }
        self.flush(peer);
    }

    /// A request to `peer` failed: its batch is queued again (see [`Outbox::failed`]), or
    /// dropped when the peer speaks another version.
    fn request_failed(
        &mut self,
        peer: PeerId,
        request: request_response::OutboundRequestId,
        other_version: bool,
    ) {
        match self.in_flight.remove(&request) {
            Some(batch) if !other_version => self.outbox.failed(peer, batch, Instant::now()),
            Some(batch) => {
                NodeMetrics::add(&self.metrics.messages_dropped, batch.len() as u64);
                self.outbox.done(peer, &batch);
            }
            None => {}
        }
        self.count_dropped();
        self.flush(peer);
    }

    /// Adds the messages the outbox dropped (too old, or failed twice) to the metrics.
    fn count_dropped(&mut self) {
        let dropped = self.outbox.take_dropped();
        if dropped > 0 {
            NodeMetrics::add(&self.metrics.messages_dropped, dropped);
        }
    }

    fn redial(&mut self) {
        let now = Instant::now();
        for peer in &self.active {
            let Some(addr) = self.addrs.get(peer) else {
                continue;
            };
            if self.connected_peers.contains(peer) {
                continue;
            }
            let first = now + first_dial_delay(&self.me, peer);
            let (next, backoff) = self.redial.entry(*peer).or_insert((first, REDIAL_MIN));
            if *next <= now {
                // Not while a dial to it is under way: under load a handshake can outlast the
                // backoff, and a second dial would open a second connection.
                let opts = DialOpts::peer_id(*peer)
                    .addresses(vec![addr.clone()])
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build();
                let _ = self.swarm.dial(opts);
                *next = now + *backoff;
                *backoff = (*backoff * 2).min(REDIAL_MAX);
            }
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                let duplicate = self.connections.established(
                    &self.me,
                    peer_id,
                    connection_id,
                    endpoint.is_dialer(),
                    Instant::now(),
                );
                if let Some(duplicate) = duplicate {
                    tracing::debug!(%peer_id, "closing the second of two simultaneous connections");
                    self.swarm.close_connection(duplicate);
                }
                self.connected_peers.insert(peer_id);
                // A new connection may come from an upgraded peer: asked afresh.
                self.other_versions.remove(&peer_id);
                self.redial.remove(&peer_id);
                self.publish_connected();
                self.flush(peer_id);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.connections.closed(&peer_id, connection_id);
                if num_established == 0 {
                    self.connected_peers.remove(&peer_id);
                    self.publish_connected();
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Messages(request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            })) => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .messages
                    .send_response(channel, ());
                self.on_request(peer, &request);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Messages(request_response::Event::Message {
                peer,
                message: request_response::Message::Response { request_id, .. },
                ..
            })) => self.request_over(peer, request_id),
            SwarmEvent::Behaviour(BehaviourEvent::Messages(
                request_response::Event::OutboundFailure {
                    peer,
                    error,
                    request_id,
                    ..
                },
            )) => {
                let other_version = matches!(
                    error,
                    request_response::OutboundFailure::UnsupportedProtocols
                );
                if other_version {
                    self.on_other_version(peer);
                } else {
                    NodeMetrics::inc(&self.metrics.batches_failed);
                    tracing::debug!(%peer, "a batch was not delivered (queued again): {error}");
                }
                self.request_failed(peer, request_id, other_version);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Messages(
                request_response::Event::InboundFailure { peer, error, .. },
            )) => {
                NodeMetrics::inc(&self.metrics.messages_dropped);
                if matches!(
                    error,
                    request_response::InboundFailure::UnsupportedProtocols
                ) {
                    self.on_other_version(peer);
                }
            }
            _ => {}
        }
    }

    /// A peer does not speak this node's message protocol: it runs another version or another
    /// mixnode set, and nothing is exchanged with it. Said once per peer, at warn level.
    fn on_other_version(&mut self, peer: PeerId) {
        NodeMetrics::inc(&self.metrics.messages_dropped);
        if self.other_versions.insert(peer) {
            self.publish_connected();
            let member = self.index_of.get(&peer).copied();
            tracing::warn!(
                %peer,
                ?member,
                protocol = %self.codec.protocol_id(),
                mixnodes = self.codec.mixnodes().len(),
                "peer does not speak this node's protocol: it runs another protocol version or \
                 another mixnode set (every member must measure the same set); its messages are \
                 refused and none are sent to it"
            );
        }
    }

    /// Publishes the keys of the connected peers that count: active members speaking this
    /// node's protocol (a peer that is only connected, or runs another version or mixnode
    /// set, cannot help certify an epoch).
    fn publish_connected(&self) {
        let keys = self
            .connected_peers
            .iter()
            .filter(|peer| self.active.contains(*peer) && !self.other_versions.contains(*peer))
            .filter_map(|peer| self.index_of.get(peer))
            .filter_map(|&index| self.keys.get(usize::from(index)).copied().flatten())
            .collect();
        if let Ok(mut published) = self.connected.lock() {
            *published = keys;
        }
    }

    /// A batch from `peer`: each of its messages is admitted, decoded and queued on its own.
    fn on_request(&mut self, peer: PeerId, batch: &[u8]) {
        NodeMetrics::add(&self.metrics.bytes_received, batch.len() as u64);
        let Some(&from) = self
            .index_of
            .get(&peer)
            .filter(|_| self.active.contains(&peer))
        else {
            NodeMetrics::inc(&self.metrics.messages_dropped);
            return;
        };
        let frames = match split_batch(batch) {
            Ok(frames) => frames,
            Err(err) => {
                NodeMetrics::inc(&self.metrics.messages_dropped);
                self.report_malformed(peer, "dropped a malformed batch", &err);
                return;
            }
        };
        let now = Instant::now();
        let budget = self
            .budgets
            .entry(peer)
            .or_insert_with(|| PeerBudget::new(now));
        let count = frames.len();
        // The budget is charged per frame, its length prefix included; the first frame over
        // it ends the batch (the rest is dropped unread).
        let admitted = frames
            .iter()
            .take_while(|frame| budget.admit(now, frame.len() + FRAME_HEADER_BYTES))
            .count();
        NodeMetrics::add(&self.metrics.messages_received, count as u64);
        if admitted < count {
            let dropped = count - admitted;
            NodeMetrics::add(&self.metrics.messages_dropped, dropped as u64);
            tracing::debug!(%peer, "over its message or byte budget; {dropped} messages dropped");
        }
        for frame in &frames[..admitted] {
            self.on_message(peer, from, frame);
        }
    }

    fn on_message(&mut self, peer: PeerId, from: PeerIndex, bytes: &[u8]) {
        match self.codec.decode(bytes) {
            Ok(message) => {
                if !self.inbound.push(from, message, bytes.len()) {
                    NodeMetrics::inc(&self.metrics.messages_dropped);
                    tracing::debug!(peer = %peer, "its inbox queue is full; message dropped");
                }
            }
            Err(err) => {
                NodeMetrics::inc(&self.metrics.messages_dropped);
                self.report_malformed(peer, "dropped a message", &err);
            }
        }
    }

    /// Says that `peer` sent something malformed: at warn level the first time, then at
    /// debug level, so a hostile member cannot flood the log (the drop counter counts all).
    /// Nothing is formatted unless it is logged: under a flood this runs per frame.
    fn report_malformed(&mut self, peer: PeerId, what: &str, err: &dyn std::fmt::Display) {
        if self.malformed_from.insert(peer) {
            tracing::warn!(%peer, "{what}: {err} (further malformed input from this peer is logged at debug level)");
        } else {
            tracing::debug!(%peer, "{what}: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_held_to_its_byte_budget_as_well_as_its_message_count() {
        let start = Instant::now();
        let mut budget = PeerBudget::new(start);
        let large = (BYTES_BURST / 4.0) as usize + 1;
        let admitted = (0..10).filter(|_| budget.admit(start, large)).count();
        assert_eq!(
            admitted, 3,
            "the byte burst, not the message burst, stops it"
        );
        assert!(budget.admit(start, 100), "a small message fits the rest");
        assert!(!budget.admit(start, large), "refused, spending nothing");
        // A second later 8 MiB more are allowed: one more large message, not two.
        let later = start + Duration::from_secs(1);
        assert!(budget.admit(later, large));
        assert!(!budget.admit(later, large));
    }

    /// Member 1 is hostile: a raw swarm speaking the protocol that keeps 16 requests in flight
    /// to member 0, each a batch of thousands of undecodable frames, a batch that does not
    /// split, or one of the largest frames of junk. Member 2's message still reaches member 0
    /// while the flood goes on, and nothing of the flood is delivered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hostile_member_flooding_junk_does_not_keep_another_members_message_out() {
        let codec = Codec::new(&[1, 2, 3]);
        let secrets = [[31u8; 32], [32u8; 32], [33u8; 32]];
        let mut bound = Vec::new();
        for secret in &secrets {
            let net = BoundNet::bind(*secret, "/ip4/127.0.0.1/tcp/0", codec.clone())
                .await
                .unwrap();
            bound.push(net);
        }
        let roster: Vec<PeerEntry> = secrets
            .iter()
            .zip(&bound)
            .map(|(secret, net)| PeerEntry {
                key: relayer_protocol::Keypair::from_seed(secret).public(),
                addr: net.listen_addr.to_string(),
                active: true,
            })
            .collect();
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        let mut bound = bound.into_iter();
        let a = bound.next().unwrap();
        let (a_peer, a_addr) = (a.peer_id, a.listen_addr.clone());
        let a_metrics = Arc::new(NodeMetrics::default());
        let (_a_net, mut a_inbox) = a
            .run(roster.clone(), a_metrics.clone(), shutdown.clone())
            .unwrap();
        let mut hostile = bound.next().unwrap().swarm;
        let (b_net, _b_inbox) = bound
            .next()
            .unwrap()
            .run(roster, Arc::new(NodeMetrics::default()), shutdown.clone())
            .unwrap();

        let junk = |round: usize| -> Vec<u8> {
            match round % 3 {
                0 => (0..4_000).flat_map(|_| [0, 0, 0, 1, 0xff]).collect(),
                1 => vec![0xff; 1 << 16],
                _ => {
                    let largest = relayer_protocol::wire::MAX_MESSAGE_BYTES;
                    let mut frame = (largest as u32).to_be_bytes().to_vec();
                    frame.resize(FRAME_HEADER_BYTES + largest, 0x5a);
                    frame
                }
            }
        };
        hostile.behaviour_mut().allow.allow_peer(a_peer);
        // Known, so that its requests redial member 0 whenever member 0 drops a connection
        // (too many streams, or the second of two simultaneous ones), as an attacker would.
        hostile.add_peer_address(a_peer, a_addr.clone());
        hostile.dial(a_addr).unwrap();
        let flood = tokio::spawn(async move {
            let mut round = 0;
            loop {
                match hostile.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == a_peer => {
                        for _ in 0..16 {
                            round += 1;
                            hostile
                                .behaviour_mut()
                                .messages
                                .send_request(&a_peer, Arc::new(junk(round)));
                        }
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Messages(
                        request_response::Event::Message {
                            message: request_response::Message::Response { .. },
                            ..
                        }
                        | request_response::Event::OutboundFailure { .. },
                    )) => {
                        tokio::task::consume_budget().await;
                        round += 1;
                        hostile
                            .behaviour_mut()
                            .messages
                            .send_request(&a_peer, Arc::new(junk(round)));
                    }
                    _ => {}
                }
            }
        });
        let dropped = || {
            a_metrics
                .messages_dropped
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while dropped() < 1_000 {
            assert!(
                Instant::now() < deadline,
                "the flood never reached member 0"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Sent once: it waits in member 2's queue until connected, and a failed batch is
        // queued again, so nothing needs re-sending.
        let echo = Message::Echo(relayer_protocol::Echo {
            epoch: 5,
            proposer: 2,
            data_hash: [7; 32],
            signature: vec![1; 64],
        });
        b_net.send(0, &echo);
        let arrived = tokio::time::timeout(Duration::from_secs(20), a_inbox.recv())
            .await
            .expect("member 2's message arrives during the flood")
            .unwrap();
        assert_eq!(arrived.from, 2, "nothing of the flood was delivered");
        assert_eq!(arrived.message, echo);
        assert!(!flood.is_finished(), "the flood was still going");
        flood.abort();
    }

    #[test]
    fn of_two_members_exactly_one_dials_at_once() {
        let ids: Vec<PeerId> = (1..=8u8)
            .map(|seed| peer_id_of(&relayer_protocol::Keypair::from_seed(&[seed; 32]).public()))
            .collect::<Result<_, _>>()
            .unwrap();
        for a in &ids {
            for b in ids.iter().filter(|b| *b != a) {
                let at_once = [first_dial_delay(a, b), first_dial_delay(b, a)]
                    .iter()
                    .filter(|delay| delay.is_zero())
                    .count();
                assert_eq!(at_once, 1, "{a} and {b}");
            }
        }
    }

    #[test]
    fn a_peer_is_held_to_its_message_count_whatever_their_size() {
        let start = Instant::now();
        let mut budget = PeerBudget::new(start);
        let admitted = (0..10_000).filter(|_| budget.admit(start, 1)).count();
        assert_eq!(admitted, RATE_BURST as usize);
    }
}
