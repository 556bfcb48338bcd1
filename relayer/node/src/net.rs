//! libp2p networking: TCP + noise + yamux, and one persistent stream per pair of members and
//! direction carrying encoded [`relayer_protocol::Message`]s (see [`crate::peer_streams`]).
//! The libp2p identity IS the member's ed25519 key, and only the members of the signer sets
//! the node works under are allowed to connect (allow list, updated as versions come and go),
//! so every message processed comes from an authenticated member. Peers are named by their
//! position in the protocol engine's roster. Message sizes are bounded, each peer is
//! rate-limited, and disconnected members are redialled with exponential backoff. For
//! benchmarks and tests only, a [`LinkDelay`] holds each outgoing message back by its link's
//! one-way delay (the kernel here has no netem).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::allow_block_list::{self, AllowedPeers};
use libp2p::connection_limits;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol, Swarm, identity, noise, tcp, yamux};
use relayer_protocol::{Message, PeerIndex};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::connections::PeerConnections;
use crate::inbox::{InboxReceiver, QueueLimits, inbox};
use crate::metrics::NodeMetrics;
use crate::outbox::Outbox;
use crate::peer_streams::{
    InboundPeer, ReaderContext, WriterContext, WriterEnded, WriterSignal, lock_outbox, read_stream,
    sleep_until, write_to_peer,
};
use crate::stream_behaviour::{self, InboundStream, OpenReply};
use relayer_protocol::wire::Codec;

/// Connections one peer may hold to this node (a reconnect may briefly overlap the old one).
const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Substreams per connection, both ways: a member keeps one message stream each way (two
/// while one replaces another), so more are a peer holding this node's memory open.
const MAX_STREAMS_PER_CONNECTION: usize = 16;
/// Inbound streams read at once per peer: its stream, and the one replacing it (a reconnect
/// or a second connection); a newer stream ends the oldest reader.
const MAX_READERS_PER_PEER: usize = 2;
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

/// The libp2p PeerId of an ed25519 public key.
pub fn peer_id_of(public_key: &[u8; 32]) -> Result<PeerId, NetError> {
    let key = identity::ed25519::PublicKey::try_from_bytes(public_key)
        .map_err(|err| NetError::Invalid(format!("ed25519 key: {err}")))?;
    Ok(identity::PublicKey::from(key).to_peer_id())
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    allow: allow_block_list::Behaviour<AllowedPeers>,
    limits: connection_limits::Behaviour,
    streams: stream_behaviour::Behaviour,
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
                streams: stream_behaviour::Behaviour::new(protocol),
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
        let (writer_ended, writer_ended_rx) = mpsc::unbounded_channel();
        let (open, open_rx) = mpsc::unbounded_channel();
        let outbox = Arc::new(std::sync::Mutex::new(Outbox::default()));
        let mut task = SwarmTask {
            swarm: self.swarm,
            writer: WriterContext {
                open,
                outbox: outbox.clone(),
                metrics: metrics.clone(),
                ended: writer_ended,
            },
            reader: ReaderContext {
                codec: codec.clone(),
                inbox: Arc::new(inbound_tx),
                metrics: metrics.clone(),
            },
            writers: HashMap::new(),
            readers: HashMap::new(),
            inbound_peers: HashMap::new(),
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
            outbox,
            redial: HashMap::new(),
            metrics: metrics.clone(),
        };
        if let Err(err) = task.set_peers(peers) {
            // Only that member is affected (see `set_peers`): the node starts anyway.
            tracing::warn!("a signer set names a peer that cannot be used: {err}");
        }
        tokio::spawn(task.run(command_rx, open_rx, writer_ended_rx, shutdown));
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

struct SwarmTask {
    swarm: Swarm<Behaviour>,
    /// What each writer task is given.
    writer: WriterContext,
    /// What each reader task is given.
    reader: ReaderContext,
    /// The writer of each connected peer, with its signal.
    writers: HashMap<PeerId, (Arc<WriterSignal>, JoinHandle<()>)>,
    /// The readers of each peer's inbound streams, oldest first.
    readers: HashMap<PeerId, VecDeque<JoinHandle<()>>>,
    /// Each peer's budget and warning state, shared by its readers and kept across streams.
    inbound_peers: HashMap<PeerId, Arc<InboundPeer>>,
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
    /// What waits for each peer, shared with the writers.
    outbox: Arc<std::sync::Mutex<Outbox<PeerId>>>,
    redial: HashMap<PeerId, (Instant, Duration)>,
    metrics: Arc<NodeMetrics>,
}

impl SwarmTask {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut open_requests: mpsc::UnboundedReceiver<(PeerId, OpenReply)>,
        mut writer_ended: mpsc::UnboundedReceiver<WriterEnded>,
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
                Some((peer, reply)) = open_requests.recv() => {
                    let connection = self.connections.newest(&peer);
                    self.swarm.behaviour_mut().streams.open(peer, connection, reply);
                }
                Some(ended) = writer_ended.recv() => match ended {
                    WriterEnded::OtherVersion(peer) => self.on_other_version(peer),
                    WriterEnded::Released(peer) => {
                        if let Some((signal, _)) = self.writers.get(&peer) {
                            signal.wake();
                        }
                    }
                },
                _ = redial_tick.tick() => {
                    self.redial();
                    self.count_dropped();
                }
                _ = sleep_until(next_release), if next_release.is_some() => self.release_delayed(),
                _ = shutdown.changed() => break,
            }
            // The swarm is not a tokio resource: under a flood it is always ready, and without
            // this the loop would never give its worker thread back to the other tasks.
            tokio::task::consume_budget().await;
        }
        for (signal, writer) in self.writers.values() {
            signal.stop();
            writer.abort();
        }
        for reader in self.readers.values().flatten() {
            reader.abort();
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
            if self.index_of.insert(peer, index) != Some(index) {
                // Its readers' budget names the position it had.
                self.inbound_peers.remove(&peer);
            }
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
                lock_outbox(&self.outbox).forget(peer);
                self.stop_writer(&peer);
                for reader in self.readers.remove(&peer).into_iter().flatten() {
                    reader.abort();
                }
                tracing::info!(%peer, "no longer a member of a signer set this node works under; disconnected");
            }
        }
        self.reader.inbox.grow(self.peers.len());
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

    /// Queues `bytes` for peer `to` and wakes its writer (see [`crate::outbox`]). Messages
    /// for a peer not connected wait (up to their age limit) for the redial loop, which keeps
    /// its backoff, to connect it; a writer starts once it is.
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
        if !lock_outbox(&self.outbox).queue(peer, bytes, Instant::now()) {
            NodeMetrics::inc(&self.metrics.messages_dropped);
            tracing::debug!(%peer, "its outbound queue is full; message dropped");
        }
        if let Some((signal, _)) = self.writers.get(&peer) {
            signal.wake();
        }
    }

    /// Starts a writer for `peer` unless one runs: only for an active member that is connected
    /// and speaks this node's protocol.
    fn ensure_writer(&mut self, peer: PeerId) {
        let wanted = self.active.contains(&peer)
            && self.connected_peers.contains(&peer)
            && !self.other_versions.contains(&peer);
        let running = self
            .writers
            .get(&peer)
            .is_some_and(|(_, writer)| !writer.is_finished());
        if !wanted || running {
            return;
        }
        let signal = Arc::new(WriterSignal::default());
        let writer = tokio::spawn(write_to_peer(peer, signal.clone(), self.writer.clone()));
        if let Some((old, _)) = self.writers.insert(peer, (signal, writer)) {
            old.stop();
        }
    }

    /// Tells `peer`'s writer to stop (it ends once its write under way, if any, is over).
    fn stop_writer(&mut self, peer: &PeerId) {
        if let Some((signal, _)) = self.writers.remove(peer) {
            signal.stop();
        }
    }

    /// A message stream `peer` opened: read in a task of its own, unless the peer is no
    /// active member or opens streams faster than its stream budget allows (refused at once,
    /// before a task is spent on it). A peer's third stream ends the reader of its oldest.
    fn on_stream(&mut self, peer: PeerId, stream: Stream) {
        let Some(&from) = self
            .index_of
            .get(&peer)
            .filter(|_| self.active.contains(&peer))
        else {
            NodeMetrics::inc(&self.metrics.messages_dropped);
            return;
        };
        let inbound = self
            .inbound_peers
            .entry(peer)
            .or_insert_with(|| Arc::new(InboundPeer::new(from)))
            .clone();
        if !inbound.admit_stream() {
            tracing::debug!(%peer, "opens streams faster than its budget allows; stream refused");
            return;
        }
        let readers = self.readers.entry(peer).or_default();
        readers.retain(|reader| !reader.is_finished());
        while readers.len() >= MAX_READERS_PER_PEER {
            if let Some(oldest) = readers.pop_front() {
                oldest.abort();
            }
        }
        readers.push_back(tokio::spawn(read_stream(
            peer,
            inbound,
            stream,
            self.reader.clone(),
        )));
    }

    /// Adds the messages the outbox dropped (too old, or failed twice) to the metrics.
    fn count_dropped(&mut self) {
        let dropped = lock_outbox(&self.outbox).take_dropped();
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
                self.ensure_writer(peer_id);
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
                    self.stop_writer(&peer_id);
                    self.publish_connected();
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Streams(InboundStream { peer, stream })) => {
                self.on_stream(peer, stream);
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
                protocol = %self.reader.codec.protocol_id(),
                mixnodes = self.reader.codec.mixnodes().len(),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Member 1 is hostile: a raw swarm speaking the protocol that opens 6 message streams
    /// to member 0 and writes into each, as fast as it is read, thousands of undecodable
    /// frames, a frame longer than any message, or the largest frames of junk, opening a new
    /// stream whenever member 0 ends one. Member 2's message still reaches member 0
    /// while the flood goes on, and nothing of the flood is delivered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hostile_member_flooding_junk_does_not_keep_another_members_message_out() {
        use futures::AsyncWriteExt;

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
                    frame.resize(4 + largest, 0x5a);
                    frame
                }
            }
        };
        hostile.behaviour_mut().allow.allow_peer(a_peer);
        // Known, so that it redials member 0 whenever member 0 drops a connection (the second
        // of two simultaneous ones), as an attacker would.
        hostile.add_peer_address(a_peer, a_addr.clone());
        hostile.dial(a_addr).unwrap();
        // Every stream that ends is replaced at once; each connection it dials gets 6.
        const STREAMS: usize = 6;
        let (ended, mut to_replace) = mpsc::unbounded_channel::<()>();
        let flood = tokio::spawn(async move {
            let mut round = 0;
            // Its open connections to member 0, newest last: member 0 may close one of two
            // simultaneous ones.
            let mut connections = Vec::new();
            let open = |hostile: &mut Swarm<Behaviour>, connection, round: usize| {
                let (reply, opened) = tokio::sync::oneshot::channel();
                hostile
                    .behaviour_mut()
                    .streams
                    .open(a_peer, connection, reply);
                let ended = ended.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(mut stream)) = opened.await {
                        let mut round = round;
                        while stream.write_all(&junk(round)).await.is_ok() {
                            round += 3;
                        }
                    }
                    let _ = ended.send(());
                });
            };
            loop {
                tokio::select! {
                    event = hostile.select_next_some() => {
                        if let SwarmEvent::ConnectionClosed { connection_id, .. } = event {
                            connections.retain(|open| *open != connection_id);
                        }
                        if let SwarmEvent::ConnectionEstablished {
                            peer_id, endpoint, connection_id, ..
                        } = event
                            && peer_id == a_peer
                        {
                            connections.push(connection_id);
                            if !endpoint.is_dialer() {
                                continue;
                            }
                            // Well below yamux's 16 streams per connection (more close it),
                            // streams being replaced included; member 0 reads only its 2
                            // newest anyway.
                            for _ in 0..STREAMS {
                                round += 1;
                                open(&mut hostile, connections.last().copied(), round);
                            }
                        }
                    }
                    Some(()) = to_replace.recv() => {
                        tokio::task::consume_budget().await;
                        round += 1;
                        open(&mut hostile, connections.last().copied(), round);
                    }
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
        // Sent once: it waits in member 2's queue until connected, and a failed write is
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
}
