//! The libp2p behaviour that opens and accepts the message streams of
//! [`crate::peer_streams`]: each connection's handler negotiates the message protocol on
//! streams it is asked to open, and hands every inbound stream to the network task as a
//! swarm event. Nothing is dropped on the way: an inbound stream waits in the handler and then
//! in the behaviour until the network task takes it (libp2p-stream, tried first, passes them
//! through a channel of one slot and drops a stream when it is taken, which at n = 128 cost
//! tens of thousands of refused streams at start-up). What waits is bounded by yamux, which
//! keeps at most 16 streams open per connection. Opening never dials: the network task's
//! redial loop alone decides when to connect.

use std::collections::VecDeque;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::ReadyUpgrade;
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, NotifyHandler, StreamUpgradeError, SubstreamProtocol, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol};
use thiserror::Error;
use tokio::sync::oneshot;

/// Why a stream could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    /// The peer does not speak the message protocol (another version or mixnode set).
    #[error("the peer does not speak {0}")]
    Unsupported(StreamProtocol),
    /// The connection failed or closed, or the negotiation timed out.
    #[error("{0}")]
    Failed(String),
}

/// Where the outcome of an opening goes (dropped unanswered when the peer has no connection).
pub type OpenReply = oneshot::Sender<Result<Stream, OpenError>>;

/// A message stream a peer opened to this node.
#[derive(Debug)]
pub struct InboundStream {
    /// Who opened it.
    pub peer: PeerId,
    /// The stream, its protocol negotiated.
    pub stream: Stream,
}

/// Opens message streams on request and reports inbound ones.
pub struct Behaviour {
    protocol: StreamProtocol,
    events: VecDeque<ToSwarm<InboundStream, OpenReply>>,
}

impl Behaviour {
    /// Message streams under `protocol`.
    pub fn new(protocol: StreamProtocol) -> Self {
        Self {
            protocol,
            events: VecDeque::new(),
        }
    }

    /// Opens a stream to `peer` on `connection`; `reply` gets the stream, or is dropped
    /// unanswered when there is no such connection (any more).
    pub fn open(&mut self, peer: PeerId, connection: Option<ConnectionId>, reply: OpenReply) {
        if let Some(connection) = connection {
            self.events.push_back(ToSwarm::NotifyHandler {
                peer_id: peer,
                handler: NotifyHandler::One(connection),
                event: reply,
            });
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = InboundStream;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::new(self.protocol.clone()))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::new(self.protocol.clone()))
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        _: ConnectionId,
        stream: THandlerOutEvent<Self>,
    ) {
        self.events
            .push_back(ToSwarm::GenerateEvent(InboundStream { peer, stream }));
    }

    /// The swarm polls its behaviour again after every call into it, so queued events need no
    /// waker.
    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<InboundStream, THandlerInEvent<Self>>> {
        self.events.pop_front().map_or(Poll::Pending, Poll::Ready)
    }
}

/// One connection's end of the message streams.
pub struct Handler {
    protocol: StreamProtocol,
    /// Openings asked for, not yet requested from the connection.
    to_open: VecDeque<OpenReply>,
    /// Inbound streams negotiated, not yet handed to the behaviour.
    inbound: VecDeque<Stream>,
}

impl Handler {
    fn new(protocol: StreamProtocol) -> Self {
        Self {
            protocol,
            to_open: VecDeque::new(),
            inbound: VecDeque::new(),
        }
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = OpenReply;
    type ToBehaviour = Stream;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = OpenReply;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, ()> {
        SubstreamProtocol::new(ReadyUpgrade::new(self.protocol.clone()), ())
    }

    /// The connection polls its handler again after every call into it, so queued work needs
    /// no waker.
    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, OpenReply, Stream>> {
        if let Some(stream) = self.inbound.pop_front() {
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(stream));
        }
        if let Some(reply) = self.to_open.pop_front() {
            let protocol = SubstreamProtocol::new(ReadyUpgrade::new(self.protocol.clone()), reply);
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest { protocol });
        }
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, reply: OpenReply) {
        self.to_open.push_back(reply);
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol, (), OpenReply>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: stream,
                ..
            }) => self.inbound.push_back(stream),
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: stream,
                info: reply,
            }) => {
                let _ = reply.send(Ok(stream));
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { info: reply, error }) => {
                let error = match error {
                    StreamUpgradeError::NegotiationFailed => {
                        OpenError::Unsupported(self.protocol.clone())
                    }
                    StreamUpgradeError::Timeout => {
                        OpenError::Failed("the negotiation timed out".to_string())
                    }
                    StreamUpgradeError::Io(err) => OpenError::Failed(err.to_string()),
                    StreamUpgradeError::Apply(never) => match never {},
                };
                let _ = reply.send(Err(error));
            }
            _ => {}
        }
    }
}
