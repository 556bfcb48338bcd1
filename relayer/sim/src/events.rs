//! What happens in a simulated run, on the virtual clock: the world's events, and the part of
//! each that goes into the trace hash.

use relayer_protocol::{Certificate, Input, Message, PersistRecord, Timer};

/// A call a node makes to the chain.
pub(crate) enum ChainCall {
    /// Read the contract's record of an epoch.
    Read(u64),
    /// Submit a certificate.
    Submit(Certificate),
}

/// One event.
pub(crate) enum Event {
    /// A message arrives at `to`.
    Deliver {
        to: usize,
        from: usize,
        message: Message,
    },
    /// A protocol timer fires.
    Timer {
        node: usize,
        incarnation: u32,
        timer: Timer,
    },
    /// A node's measurement of an epoch is read.
    Measured {
        node: usize,
        incarnation: u32,
        epoch: u64,
    },
    /// A node's write completes (or fails).
    Persisted {
        node: usize,
        incarnation: u32,
        id: u64,
        record: PersistRecord,
    },
    /// A node's chain call reaches the chain.
    ChainCall {
        node: usize,
        incarnation: u32,
        call: ChainCall,
    },
    /// The chain's answer reaches the node.
    ChainReply {
        node: usize,
        incarnation: u32,
        input: Input,
    },
    /// A loser's fetch of the winner's copy is answered (or not).
    Fetch {
        node: usize,
        incarnation: u32,
        epoch: u64,
        winner: usize,
    },
    /// The node goes down: a crash, or a graceful stop (`clean`) that marks its store as
    /// holding every signature it made, as `relayer run` does on SIGTERM.
    Crash {
        node: usize,
        clean: bool,
    },
    Restart {
        node: usize,
    },
    Partition {
        side: Vec<bool>,
    },
    Heal,
    AdversaryTick {
        node: usize,
    },
    /// An epoch's liveness deadline.
    Deadline {
        epoch: u64,
    },
    /// The admin's transaction scheduling the run's rotation `step`.
    Rotate {
        step: usize,
    },
    /// A node asks the contract for new signer-set versions.
    SignerSetPoll {
        node: usize,
        incarnation: u32,
    },
    /// A (re)started node must hold an epoch's official data by now.
    OfficialCheck {
        node: usize,
        incarnation: u32,
        epoch: u64,
    },
}

impl Event {
    /// A compact identity of the event for the trace hash.
    pub(crate) fn trace_key(&self) -> [u64; 3] {
        match self {
            Event::Deliver { to, from, message } => {
                [1, (*to as u64) << 16 | *from as u64, message.epoch()]
            }
            Event::Timer { node, .. } => [2, *node as u64, 0],
            Event::Persisted { node, id, .. } => [3, *node as u64, *id],
            Event::ChainCall { node, .. } => [4, *node as u64, 0],
            Event::ChainReply { node, .. } => [5, *node as u64, 0],
            Event::Crash { node, clean } => [6, *node as u64, u64::from(*clean)],
            Event::Restart { node } => [7, *node as u64, 0],
            Event::Partition { .. } => [8, 0, 0],
            Event::Heal => [9, 0, 0],
            Event::AdversaryTick { node } => [10, *node as u64, 0],
            Event::Deadline { epoch } => [11, *epoch, 0],
            Event::Measured { node, epoch, .. } => [12, *node as u64, *epoch],
            Event::Fetch { node, epoch, .. } => [13, *node as u64, *epoch],
            Event::OfficialCheck { node, epoch, .. } => [14, *node as u64, *epoch],
            Event::Rotate { step } => [15, *step as u64, 0],
            Event::SignerSetPoll { node, .. } => [16, *node as u64, 0],
        }
    }
}
