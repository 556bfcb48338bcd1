//! Outbound batching: messages for one peer wait in its queue while a few requests to it are
//! in flight, and leave together as one batch (one libp2p substream) when a request completes.
//! Under load this turns thousands of substreams into a handful, and no peer ever has more
//! than [`MAX_IN_FLIGHT`] open (yamux refuses streams past 512 per connection, so a burst of
//! single-message substreams lost messages). A batch is a sequence of frames, each a u32
//! big-endian length and an encoded message.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Arc;

use relayer_protocol::wire::MAX_MESSAGE_BYTES;
use thiserror::Error;

/// Requests in flight to one peer at most.
pub const MAX_IN_FLIGHT: usize = 4;
/// The length prefix of each frame in a batch.
pub const FRAME_HEADER_BYTES: usize = 4;
/// Frames one batch may hold (each costs the receiver a budget check; honest batches hold a
/// few dozen).
pub const MAX_FRAMES_PER_BATCH: usize = 4_096;
/// Largest batch: several messages of the largest size.
pub const MAX_BATCH_BYTES: usize = 4 * (MAX_MESSAGE_BYTES + 4);
/// Bytes queued for one peer at most; past it new messages are dropped (the protocol sends
/// again what matters, at its re-send rounds).
pub const MAX_QUEUED_BYTES: usize = 16 << 20;

/// A batch that does not split into frames.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BatchError {
    /// A frame's length runs past the end of the batch.
    #[error("a frame of {len} bytes runs past the end of the batch")]
    Truncated {
        /// The length it claims.
        len: usize,
    },
    /// A frame longer than a message may be.
    #[error("a frame of {0} bytes exceeds the message limit")]
    TooLarge(usize),
    /// An empty frame (no message is empty).
    #[error("an empty frame")]
    Empty,
    /// More frames than a batch may hold.
    #[error("more than {MAX_FRAMES_PER_BATCH} frames in one batch")]
    TooManyFrames,
}

/// The frames of a batch, in order.
pub fn split_batch(mut batch: &[u8]) -> Result<Vec<&[u8]>, BatchError> {
    let mut frames = Vec::new();
    while !batch.is_empty() {
        let Some((len, rest)) = batch.split_first_chunk::<4>() else {
            return Err(BatchError::Truncated { len: batch.len() });
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > MAX_MESSAGE_BYTES {
            return Err(BatchError::TooLarge(len));
        }
        if len == 0 {
            return Err(BatchError::Empty);
        }
        if frames.len() == MAX_FRAMES_PER_BATCH {
            return Err(BatchError::TooManyFrames);
        }
        if len > rest.len() {
            return Err(BatchError::Truncated { len });
        }
        let (frame, rest) = rest.split_at(len);
        frames.push(frame);
        batch = rest;
    }
    Ok(frames)
}

#[derive(Default)]
struct PeerQueue {
    messages: VecDeque<Arc<Vec<u8>>>,
    bytes: usize,
    in_flight: usize,
}

/// Per-peer queues of encoded messages waiting to leave.
pub struct Outbox<Peer> {
    queues: HashMap<Peer, PeerQueue>,
}

impl<Peer: Eq + Hash + Copy> Default for Outbox<Peer> {
    fn default() -> Self {
        Self {
            queues: HashMap::new(),
        }
    }
}

impl<Peer: Eq + Hash + Copy> Outbox<Peer> {
    /// Queues an encoded message for `peer`; `false` (dropped) when its queue is full or the
    /// message is empty or larger than a message may be.
    pub fn queue(&mut self, peer: Peer, message: Arc<Vec<u8>>) -> bool {
        let queue = self.queues.entry(peer).or_default();
        if message.is_empty()
            || message.len() > MAX_MESSAGE_BYTES
            || queue.bytes.saturating_add(message.len()) > MAX_QUEUED_BYTES
        {
            return false;
        }
        queue.bytes += message.len();
        queue.messages.push_back(message);
        true
    }

    /// The next batch for `peer`, if it has messages waiting and fewer than
    /// [`MAX_IN_FLIGHT`] requests in flight (counted from here until [`Self::done`]).
    pub fn next_batch(&mut self, peer: Peer) -> Option<Vec<u8>> {
        let queue = self.queues.get_mut(&peer)?;
        if queue.in_flight >= MAX_IN_FLIGHT || queue.messages.is_empty() {
            return None;
        }
        let mut batch = Vec::new();
        let mut frames = 0;
        while let Some(message) = queue.messages.front() {
            let framed = message.len() + FRAME_HEADER_BYTES;
            let full = batch.len() + framed > MAX_BATCH_BYTES || frames == MAX_FRAMES_PER_BATCH;
            if !batch.is_empty() && full {
                break;
            }
            frames += 1;
            batch.extend_from_slice(&(message.len() as u32).to_be_bytes());
            batch.extend_from_slice(message);
            queue.bytes -= message.len();
            queue.messages.pop_front();
        }
        queue.in_flight += 1;
        Some(batch)
    }

    /// A request to `peer` completed or failed.
    pub fn done(&mut self, peer: Peer) {
        if let Some(queue) = self.queues.get_mut(&peer) {
            queue.in_flight = queue.in_flight.saturating_sub(1);
        }
    }

    /// Drops what waits for `peer` (it left the signer sets); requests in flight end as
    /// they will.
    pub fn forget(&mut self, peer: Peer) {
        self.queues.remove(&peer);
    }

    /// Messages waiting for `peer`.
    pub fn waiting(&self, peer: Peer) -> usize {
        self.queues
            .get(&peer)
            .map_or(0, |queue| queue.messages.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(byte: u8, len: usize) -> Arc<Vec<u8>> {
        Arc::new(vec![byte; len])
    }

    #[test]
    fn messages_waiting_behind_requests_in_flight_leave_as_one_batch() {
        let mut outbox = Outbox::default();
        for i in 0..MAX_IN_FLIGHT {
            assert!(outbox.queue(7, message(i as u8, 3)));
            assert!(outbox.next_batch(7).is_some(), "request {i} leaves at once");
        }
        for i in 0..100 {
            assert!(outbox.queue(7, message(i, 10)));
        }
        assert_eq!(
            outbox.next_batch(7),
            None,
            "{MAX_IN_FLIGHT} already in flight"
        );
        outbox.done(7);
        let batch = outbox.next_batch(7).expect("a request completed");
        let frames = split_batch(&batch).unwrap();
        assert_eq!(frames.len(), 100);
        assert!(frames.iter().enumerate().all(|(i, f)| f == &[i as u8; 10]));
        assert_eq!(outbox.waiting(7), 0);
        assert_eq!(outbox.next_batch(8), None, "nothing for another peer");
    }

    #[test]
    fn a_batch_stops_at_its_size_limit_and_the_rest_waits() {
        let mut outbox = Outbox::default();
        for _ in 0..6 {
            assert!(outbox.queue(1, message(1, MAX_MESSAGE_BYTES)));
        }
        let first = outbox.next_batch(1).unwrap();
        assert!(first.len() <= MAX_BATCH_BYTES);
        assert_eq!(split_batch(&first).unwrap().len(), 4);
        assert_eq!(outbox.waiting(1), 2);
        assert!(
            !outbox.queue(1, message(1, MAX_MESSAGE_BYTES + 1)),
            "too large"
        );
    }

    #[test]
    fn a_forgotten_peer_has_nothing_waiting() {
        let mut outbox = Outbox::default();
        assert!(outbox.queue(1u8, message(1, 10)));
        outbox.forget(1);
        assert_eq!(outbox.waiting(1), 0);
        assert!(outbox.next_batch(1).is_none());
    }

    #[test]
    fn a_full_queue_drops_new_messages() {
        let mut outbox = Outbox::default();
        let per = MAX_MESSAGE_BYTES;
        let fit = MAX_QUEUED_BYTES / per;
        assert!((0..fit).all(|_| outbox.queue(3, message(0, per))));
        assert!(!outbox.queue(3, message(0, per)));
        assert!(
            outbox.queue(4, message(0, per)),
            "other peers are not affected"
        );
    }

    #[test]
    fn malformed_batches_are_errors() {
        assert_eq!(split_batch(&[]).unwrap(), Vec::<&[u8]>::new());
        assert_eq!(split_batch(&[0, 0, 0, 0]), Err(BatchError::Empty));
        let tiny: Vec<u8> = (0..=MAX_FRAMES_PER_BATCH)
            .flat_map(|_| [0, 0, 0, 1, 7])
            .collect();
        assert_eq!(split_batch(&tiny), Err(BatchError::TooManyFrames));
        assert_eq!(split_batch(&tiny[5..]).unwrap().len(), MAX_FRAMES_PER_BATCH);
        assert_eq!(split_batch(&[0, 0]), Err(BatchError::Truncated { len: 2 }));
        assert_eq!(
            split_batch(&[0, 0, 0, 5, 1, 2]),
            Err(BatchError::Truncated { len: 5 })
        );
        let huge = ((MAX_MESSAGE_BYTES + 1) as u32).to_be_bytes();
        assert!(matches!(split_batch(&huge), Err(BatchError::TooLarge(_))));
    }
}
