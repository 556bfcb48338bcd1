//! The fair inbox between the network task and the driver: one bounded queue per peer of the
//! roster (in messages and in bytes), drained in turn, so a flooding peer fills only its own queue and
//! neither delays nor crowds out another member's messages. The network task never waits on
//! it: a message that does not fit its sender's queue is dropped and counted.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use relayer_protocol::{Message, PeerIndex};
use tokio::sync::Notify;

/// Messages held per member before its further messages are dropped.
pub const QUEUE_MESSAGES: usize = 4_096;
/// Bytes held per member (the larger of a message's wire size and its decoded size) before its
/// further messages are dropped: at most f x 16 MiB for the byzantine members together.
pub const QUEUE_BYTES: usize = 16 << 20;

/// A message from an authenticated member.
#[derive(Debug, PartialEq, Eq)]
pub struct Inbound {
    /// Sender's position in the roster.
    pub from: PeerIndex,
    /// The decoded message.
    pub message: Message,
}

/// How much each member's queue holds.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Messages.
    pub messages: usize,
    /// Encoded bytes.
    pub bytes: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            messages: QUEUE_MESSAGES,
            bytes: QUEUE_BYTES,
        }
    }
}

#[derive(Default)]
struct Queue {
    messages: VecDeque<(Message, usize)>,
    bytes: usize,
}

struct Queues {
    per_member: Vec<Queue>,
    /// The member whose turn is next.
    next: usize,
    /// The sender is gone: nothing more will arrive.
    closed: bool,
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Notify,
    limits: QueueLimits,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        // A panic while holding the lock leaves plain queues behind: still usable.
        self.queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The network task's end.
pub struct InboxSender {
    shared: Arc<Shared>,
}

/// The driver's end.
pub struct InboxReceiver {
    shared: Arc<Shared>,
}

/// An inbox for `members` members.
pub fn inbox(members: usize, limits: QueueLimits) -> (InboxSender, InboxReceiver) {
    let shared = Arc::new(Shared {
        queues: Mutex::new(Queues {
            per_member: (0..members).map(|_| Queue::default()).collect(),
            next: 0,
            closed: false,
        }),
        ready: Notify::new(),
        limits,
    });
    (
        InboxSender {
            shared: shared.clone(),
        },
        InboxReceiver { shared },
    )
}

impl InboxSender {
    /// Queues `message` from `from`, `wire_bytes` long on the wire. Returns `false` (the
    /// message is dropped) when that member's queue is full or `from` is not a member.
    pub fn push(&self, from: PeerIndex, message: Message, wire_bytes: usize) -> bool {
        let bytes = wire_bytes.max(decoded_bytes(&message));
        let limits = self.shared.limits;
        let mut queues = self.shared.lock();
        let Some(queue) = queues.per_member.get_mut(usize::from(from)) else {
            return false;
        };
        let full = queue.messages.len() >= limits.messages
            || queue.bytes.saturating_add(bytes) > limits.bytes;
        if full {
            return false;
        }
        queue.bytes += bytes;
        queue.messages.push_back((message, bytes));
        drop(queues);
        self.shared.ready.notify_one();
        true
    }
}

impl InboxSender {
    /// Makes room for `peers` peers (the roster grew); queues are never removed, so a
    /// peer's position keeps its queue.
    pub fn grow(&self, peers: usize) {
        let mut queues = self.shared.lock();
        if queues.per_member.len() < peers {
            queues.per_member.resize_with(peers, Queue::default);
        }
    }
}

impl Drop for InboxSender {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_one();
    }
}

/// About what `message` holds in memory once decoded (an uptime is 1-3 bytes on the wire but
/// a whole [`relayer_protocol::MixnodeReward`] in memory).
fn decoded_bytes(message: &Message) -> usize {
    const FIXED: usize = std::mem::size_of::<Message>();
    FIXED
        + match message {
            Message::Observation(observation) => {
                observation.values.len() * std::mem::size_of::<relayer_protocol::MixnodeReward>()
                    + observation.signature.len()
            }
            Message::Block(block) => {
                block.observations.len() * std::mem::size_of::<relayer_protocol::ObservationRef>()
            }
            Message::BlockDigest(digest) => digest.authors.len(),
            Message::Holding { authors, .. } => authors.len(),
            Message::Echo(echo) => echo.signature.len(),
            Message::ObservationRequest { .. }
            | Message::BlockRequest { .. }
            | Message::Accepted { .. } => 0,
        }
}

impl InboxReceiver {
    /// Messages queued, over every member.
    pub fn queued(&self) -> usize {
        let queues = self.shared.lock();
        queues
            .per_member
            .iter()
            .map(|queue| queue.messages.len())
            .sum()
    }

    /// The next message, taking the members with queued messages in turn; `None` once the
    /// sender is gone and every queue is empty.
    pub async fn recv(&mut self) -> Option<Inbound> {
        loop {
            {
                let mut queues = self.shared.lock();
                if let Some(inbound) = queues.pop_next() {
                    return Some(inbound);
                }
                if queues.closed {
                    return None;
                }
            }
            self.shared.ready.notified().await;
        }
    }
}

impl Queues {
    /// The oldest message of the next member in turn that has one.
    fn pop_next(&mut self) -> Option<Inbound> {
        let members = self.per_member.len();
        for offset in 0..members {
            let index = (self.next + offset) % members;
            let queue = &mut self.per_member[index];
            if let Some((message, bytes)) = queue.messages.pop_front() {
                queue.bytes -= bytes;
                self.next = (index + 1) % members;
                return Some(Inbound {
                    from: PeerIndex::try_from(index).ok()?,
                    message,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(epoch: u64) -> Message {
        Message::Accepted { epoch }
    }

    #[tokio::test]
    async fn a_flooding_member_fills_only_its_own_queue_and_others_are_served_in_turn() {
        let limits = QueueLimits {
            messages: 100,
            bytes: 1 << 20,
        };
        let (sender, mut receiver) = inbox(3, limits);
        let pushed = (0..1_000)
            .filter(|&epoch| sender.push(0, accepted(epoch), 10))
            .count();
        assert_eq!(pushed, 100, "the flood stops at its own queue's limit");
        assert!(
            sender.push(1, accepted(7), 10),
            "another member still gets in"
        );
        assert!(sender.push(2, accepted(8), 10));
        let first: Vec<PeerIndex> = [
            receiver.recv().await.unwrap(),
            receiver.recv().await.unwrap(),
            receiver.recv().await.unwrap(),
        ]
        .iter()
        .map(|inbound| inbound.from)
        .collect();
        assert_eq!(first, [0, 1, 2], "one message per member in turn");
        let rest = receiver.recv().await.unwrap();
        assert_eq!(
            rest,
            Inbound {
                from: 0,
                message: accepted(1)
            }
        );
    }

    #[tokio::test]
    async fn the_byte_limit_drops_large_messages_and_frees_as_they_are_taken() {
        let limits = QueueLimits {
            messages: 100,
            bytes: 1_000,
        };
        let (sender, mut receiver) = inbox(2, limits);
        assert!(sender.push(0, accepted(1), 600));
        assert!(!sender.push(0, accepted(2), 600), "over the byte limit");
        assert!(sender.push(1, accepted(3), 600), "per member");
        assert_eq!(receiver.recv().await.unwrap().message, accepted(1));
        assert!(sender.push(0, accepted(4), 600), "room again once taken");
        assert!(!sender.push(9, accepted(5), 1), "not a member");
    }

    #[tokio::test]
    async fn a_grown_roster_gets_its_own_queues_and_keeps_the_old_ones() {
        let (sender, mut receiver) = inbox(1, QueueLimits::default());
        assert!(sender.push(0, accepted(1), 1));
        assert!(!sender.push(2, accepted(2), 1), "not in the roster yet");
        sender.grow(3);
        sender.grow(2); // never shrinks
        assert!(sender.push(2, accepted(3), 1));
        assert_eq!(receiver.recv().await.unwrap().from, 0);
        assert_eq!(receiver.recv().await.unwrap().from, 2);
    }

    #[test]
    fn an_observation_is_charged_its_decoded_size() {
        let values = (0..1_000)
            .map(|mix_id| relayer_protocol::MixnodeReward {
                mix_id,
                uptime_bp: 1,
            })
            .collect();
        let observation = Message::Observation(relayer_protocol::Observation {
            epoch: 1,
            signer_set_version: 1,
            author: 0,
            values,
            signature: vec![0; 64],
        });
        // About 1 KB on the wire (one-byte uptimes), 8 KB in memory.
        assert!(decoded_bytes(&observation) >= 8_000);
    }

    #[tokio::test]
    async fn the_receiver_waits_for_a_message_and_ends_when_the_sender_is_gone() {
        let (sender, mut receiver) = inbox(2, QueueLimits::default());
        let waiting = tokio::spawn(async move {
            let first = receiver.recv().await;
            let end = receiver.recv().await;
            (first, end)
        });
        tokio::task::yield_now().await;
        assert!(sender.push(1, accepted(5), 10));
        drop(sender);
        let (first, end) = waiting.await.unwrap();
        assert_eq!(first.unwrap().from, 1);
        assert_eq!(end, None);
    }
}
