//! Outbound batching: messages for one peer wait in its queue while its writer (see
//! [`crate::peer_streams`]) writes, and leave together as one batch, one write on the peer's
//! stream, when a slot frees (up to [`MAX_IN_FLIGHT`] batches wait for the reader's
//! acknowledgement). Under load this turns thousands of writes into a handful. A batch is a
//! sequence of frames, each a u32 big-endian length and an encoded message. A batch not
//! acknowledged is queued again (once), and messages waiting longer than [`MAX_QUEUE_AGE`]
//! are dropped.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use relayer_protocol::wire::MAX_MESSAGE_BYTES;
use thiserror::Error;

/// Batches written to one peer and not yet acknowledged, at most, shared by its writers (a
/// writer being replaced may still hold some until it puts them back).
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
/// Age past which a queued message is dropped unsent: a peer away longer gets the protocol's
/// newer re-sends, not a backlog of stale ones.
pub const MAX_QUEUE_AGE: Duration = Duration::from_secs(30);
/// Failed batches a message may be in before it is dropped (a batch that failed is queued
/// again once, so a dropped connection loses nothing).
pub const MAX_FAILURES: u8 = 2;

/// A frame, or a batch, that cannot be read as messages.
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

/// Whether a frame's claimed length can be a message's: what a reader checks before it reads
/// the frame's body.
pub fn check_frame_len(len: usize) -> Result<(), BatchError> {
    if len > MAX_MESSAGE_BYTES {
        return Err(BatchError::TooLarge(len));
    }
    if len == 0 {
        return Err(BatchError::Empty);
    }
    Ok(())
}

/// The frames of a batch, in order (a reader reads them one at a time from its stream; tests
/// split what a writer wrote).
#[cfg(test)]
pub(crate) fn split_batch(mut batch: &[u8]) -> Result<Vec<&[u8]>, BatchError> {
    let mut frames = Vec::new();
    while !batch.is_empty() {
        let Some((len, rest)) = batch.split_first_chunk::<4>() else {
            return Err(BatchError::Truncated { len: batch.len() });
        };
        let len = u32::from_be_bytes(*len) as usize;
        check_frame_len(len)?;
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

/// A message waiting to leave.
#[derive(Debug, Clone)]
struct Queued {
    bytes: Arc<Vec<u8>>,
    /// When it was first queued (a requeued message keeps its age).
    since: Instant,
    /// Batches it has left in that failed.
    failures: u8,
}

/// A batch on its way to a peer: the messages of one write, kept until the reader
/// acknowledges them, so a batch not acknowledged can be queued again.
#[derive(Debug)]
pub struct Batch {
    messages: Vec<Queued>,
    /// The generation of the queue it left (see [`PeerQueue::generation`]).
    generation: u64,
}

impl Batch {
    /// Its frames, as written: built by the writer, not under the lock of the outbox that
    /// every writer and the network task share.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.wire_bytes());
        for message in &self.messages {
            bytes.extend_from_slice(&(message.bytes.len() as u32).to_be_bytes());
            bytes.extend_from_slice(&message.bytes);
        }
        bytes
    }

    /// Its encoded length, frame headers included.
    pub fn wire_bytes(&self) -> usize {
        self.messages
            .iter()
            .map(|message| message.bytes.len() + FRAME_HEADER_BYTES)
            .sum()
    }

    /// The messages it holds.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// What waits for one peer; `since` rises from front to back.
struct PeerQueue {
    messages: VecDeque<Queued>,
    bytes: usize,
    in_flight: usize,
    /// Distinct for every queue the outbox makes, so a batch of a queue since forgotten
    /// changes nothing in a new queue of the same peer.
    generation: u64,
}

impl PeerQueue {
    /// Drops the messages at the front older than [`MAX_QUEUE_AGE`] at `now`; how many.
    fn expire(&mut self, now: Instant) -> usize {
        let mut expired = 0;
        while let Some(front) = self.messages.front() {
            if now.saturating_duration_since(front.since) <= MAX_QUEUE_AGE {
                break;
            }
            self.bytes -= front.bytes.len();
            self.messages.pop_front();
            expired += 1;
        }
        expired
    }
}

/// Per-peer queues of encoded messages waiting to leave.
pub struct Outbox<Peer> {
    queues: HashMap<Peer, PeerQueue>,
    dropped: u64,
    generations: u64,
}

impl<Peer: Eq + Hash + Copy> Default for Outbox<Peer> {
    fn default() -> Self {
        Self {
            queues: HashMap::new(),
            dropped: 0,
            generations: 0,
        }
    }
}

impl<Peer: Eq + Hash + Copy> Outbox<Peer> {
    /// Queues an encoded message for `peer` at `now`; `false` (dropped) when its queue is full
    /// or the message is empty or larger than a message may be.
    pub fn queue(&mut self, peer: Peer, message: Arc<Vec<u8>>, now: Instant) -> bool {
        let generations = &mut self.generations;
        let queue = self.queues.entry(peer).or_insert_with(|| {
            *generations += 1;
            PeerQueue {
                messages: VecDeque::new(),
                bytes: 0,
                in_flight: 0,
                generation: *generations,
            }
        });
        // Expired first, so a peer away for long keeps only fresh messages, not a full queue
        // of stale ones that would refuse the new.
        self.dropped += queue.expire(now) as u64;
        if message.is_empty()
            || message.len() > MAX_MESSAGE_BYTES
            || queue.bytes.saturating_add(message.len()) > MAX_QUEUED_BYTES
        {
            return false;
        }
        queue.bytes += message.len();
        queue.messages.push_back(Queued {
            bytes: message,
            since: now,
            failures: 0,
        });
        true
    }

    /// The next batch for `peer` at `now`, if it has messages waiting and fewer than
    /// [`MAX_IN_FLIGHT`] batches not yet acknowledged (counted from here until [`Self::done`]
    /// or [`Self::failed`]). Messages older than [`MAX_QUEUE_AGE`] are dropped first.
    pub fn next_batch(&mut self, peer: Peer, now: Instant) -> Option<Batch> {
        let queue = self.queues.get_mut(&peer)?;
        self.dropped += queue.expire(now) as u64;
        if queue.in_flight >= MAX_IN_FLIGHT || queue.messages.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let mut messages = Vec::new();
        while let Some(message) = queue.messages.front() {
            let framed = message.bytes.len() + FRAME_HEADER_BYTES;
            let full = bytes + framed > MAX_BATCH_BYTES || messages.len() == MAX_FRAMES_PER_BATCH;
            if !messages.is_empty() && full {
                break;
            }
            bytes += framed;
            queue.bytes -= message.bytes.len();
            if let Some(message) = queue.messages.pop_front() {
                messages.push(message);
            }
        }
        queue.in_flight += 1;
        Some(Batch {
            messages,
            generation: queue.generation,
        })
    }

    /// The queue of `peer` that `batch` left, unless it was forgotten since.
    fn queue_of<'a>(
        queues: &'a mut HashMap<Peer, PeerQueue>,
        peer: Peer,
        batch: &Batch,
    ) -> Option<&'a mut PeerQueue> {
        queues
            .get_mut(&peer)
            .filter(|queue| queue.generation == batch.generation)
    }

    /// `peer`'s reader acknowledged `batch`.
    pub fn done(&mut self, peer: Peer, batch: &Batch) {
        if let Some(queue) = Self::queue_of(&mut self.queues, peer, batch) {
            queue.in_flight = queue.in_flight.saturating_sub(1);
        }
    }

    /// `batch` was not acknowledged by `peer`'s reader (its stream ended): its messages go back to the front of the queue, in order,
    /// unless they already failed [`MAX_FAILURES`] times, are too old, or no longer fit (those
    /// are dropped). A peer that was forgotten meanwhile gets nothing back, even when it is
    /// queued for again.
    pub fn failed(&mut self, peer: Peer, batch: Batch, now: Instant) {
        let Some(queue) = Self::queue_of(&mut self.queues, peer, &batch) else {
            self.dropped += batch.messages.len() as u64;
            return;
        };
        queue.in_flight = queue.in_flight.saturating_sub(1);
        for mut message in batch.messages.into_iter().rev() {
            message.failures += 1;
            let keep = message.failures < MAX_FAILURES
                && now.saturating_duration_since(message.since) <= MAX_QUEUE_AGE
                && queue.bytes + message.bytes.len() <= MAX_QUEUED_BYTES;
            if keep {
                queue.bytes += message.bytes.len();
                queue.messages.push_front(message);
            } else {
                self.dropped += 1;
            }
        }
    }

    /// Drops what waits for `peer` (it left the signer sets); writes under way end as
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

    /// Messages dropped since the last call, as too old or after failed batches.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(byte: u8, len: usize) -> Arc<Vec<u8>> {
        Arc::new(vec![byte; len])
    }

    /// One instant for the tests that do not age messages.
    fn now() -> Instant {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *START.get_or_init(Instant::now)
    }

    /// The first byte of each message in `batch`.
    fn firsts(batch: &Batch) -> Vec<u8> {
        split_batch(&batch.to_bytes())
            .unwrap()
            .iter()
            .map(|frame| frame[0])
            .collect()
    }

    #[test]
    fn messages_waiting_behind_requests_in_flight_leave_as_one_batch() {
        let mut outbox = Outbox::default();
        let mut sent = Vec::new();
        for i in 0..MAX_IN_FLIGHT {
            assert!(outbox.queue(7, message(i as u8, 3), now()));
            let batch = outbox.next_batch(7, now());
            assert!(batch.is_some(), "request {i} leaves at once");
            sent.extend(batch);
        }
        for i in 0..100 {
            assert!(outbox.queue(7, message(i, 10), now()));
        }
        assert!(
            outbox.next_batch(7, now()).is_none(),
            "{MAX_IN_FLIGHT} already in flight"
        );
        outbox.done(7, &sent[0]);
        let batch = outbox.next_batch(7, now()).expect("a request completed");
        let bytes = batch.to_bytes();
        let frames = split_batch(&bytes).unwrap();
        assert_eq!(frames.len(), 100);
        assert!(frames.iter().enumerate().all(|(i, f)| f == &[i as u8; 10]));
        assert_eq!(outbox.waiting(7), 0);
        assert!(
            outbox.next_batch(8, now()).is_none(),
            "nothing for another peer"
        );
    }

    #[test]
    fn a_batch_stops_at_its_size_limit_and_the_rest_waits() {
        let mut outbox = Outbox::default();
        for _ in 0..6 {
            assert!(outbox.queue(1, message(1, MAX_MESSAGE_BYTES), now()));
        }
        let first = outbox.next_batch(1, now()).unwrap();
        assert!(first.to_bytes().len() <= MAX_BATCH_BYTES);
        assert_eq!(split_batch(&first.to_bytes()).unwrap().len(), 4);
        assert_eq!(first.len(), 4);
        assert_eq!(outbox.waiting(1), 2);
        assert!(
            !outbox.queue(1, message(1, MAX_MESSAGE_BYTES + 1), now()),
            "too large"
        );
    }

    #[test]
    fn a_failed_batch_is_queued_again_once_in_order_ahead_of_newer_messages() {
        let mut outbox = Outbox::default();
        for i in 0..3 {
            assert!(outbox.queue(1u8, message(i, 5), now()));
        }
        let batch = outbox.next_batch(1, now()).unwrap();
        assert!(outbox.queue(1, message(9, 5), now()));
        outbox.failed(1, batch, now());
        let again = outbox.next_batch(1, now()).unwrap();
        assert_eq!(
            firsts(&again),
            [0, 1, 2, 9],
            "the failed ones first, in order"
        );
        outbox.failed(1, again, now());
        let last = outbox.next_batch(1, now()).unwrap();
        assert_eq!(firsts(&last), [9], "0, 1 and 2 failed twice: dropped");
        assert_eq!(outbox.take_dropped(), 3);
        assert_eq!(outbox.take_dropped(), 0);
        outbox.forget(1);
        outbox.failed(1, last, now());
        assert_eq!(outbox.waiting(1), 0, "a forgotten peer gets nothing back");
    }

    #[test]
    fn batches_of_a_forgotten_queue_change_nothing_in_the_peers_new_queue() {
        let mut outbox = Outbox::default();
        let mut old = Vec::new();
        for i in 0..MAX_IN_FLIGHT {
            assert!(outbox.queue(1u8, message(i as u8, 5), now()));
            old.extend(outbox.next_batch(1, now()));
        }
        outbox.forget(1);
        // The peer is back (a later signer set) with a queue of its own.
        for i in 0..MAX_IN_FLIGHT {
            assert!(outbox.queue(1, message(100 + i as u8, 5), now()));
            assert!(outbox.next_batch(1, now()).is_some());
        }
        assert!(outbox.queue(1, message(200, 5), now()));
        let mut old = old.into_iter();
        let completed = old.next().unwrap();
        outbox.done(1, &completed);
        assert!(
            outbox.next_batch(1, now()).is_none(),
            "an old completion freed no room in the new queue"
        );
        let failed = old.next().unwrap();
        outbox.failed(1, failed, now());
        assert_eq!(outbox.waiting(1), 1, "an old failure queued nothing again");
        assert_eq!(outbox.take_dropped(), 1, "its message counts as dropped");
    }

    #[test]
    fn messages_older_than_the_queue_age_are_dropped_unsent() {
        let mut outbox = Outbox::default();
        let start = now();
        assert!(outbox.queue(1u8, message(1, 5), start));
        assert!(outbox.queue(1, message(2, 5), start + MAX_QUEUE_AGE / 2));
        let later = start + MAX_QUEUE_AGE + Duration::from_millis(1);
        let batch = outbox.next_batch(1, later).unwrap();
        assert_eq!(firsts(&batch), [2], "the first waited too long");
        assert_eq!(outbox.take_dropped(), 1);
        let much_later = start + 2 * MAX_QUEUE_AGE;
        outbox.failed(1, batch, much_later);
        assert_eq!(outbox.waiting(1), 0, "too old to queue again");
        assert!(
            outbox.queue(1, message(3, MAX_MESSAGE_BYTES), much_later),
            "its bytes were given back"
        );
    }

    #[test]
    fn a_full_queue_of_a_peer_away_makes_room_as_its_messages_expire() {
        let mut outbox = Outbox::default();
        let start = now();
        let per = MAX_MESSAGE_BYTES;
        let fit = MAX_QUEUED_BYTES / per;
        assert!((0..fit).all(|_| outbox.queue(5u8, message(0, per), start)));
        assert!(!outbox.queue(5, message(0, per), start), "full");
        let later = start + MAX_QUEUE_AGE + Duration::from_millis(1);
        assert!(
            outbox.queue(5, message(1, per), later),
            "the stale ones expired, unsent, to make room"
        );
        assert_eq!(outbox.waiting(5), 1);
        assert_eq!(outbox.take_dropped(), fit as u64);
    }

    #[test]
    fn a_forgotten_peer_has_nothing_waiting() {
        let mut outbox = Outbox::default();
        assert!(outbox.queue(1u8, message(1, 10), now()));
        outbox.forget(1);
        assert_eq!(outbox.waiting(1), 0);
        assert!(outbox.next_batch(1, now()).is_none());
    }

    #[test]
    fn a_full_queue_drops_new_messages() {
        let mut outbox = Outbox::default();
        let per = MAX_MESSAGE_BYTES;
        let fit = MAX_QUEUED_BYTES / per;
        assert!((0..fit).all(|_| outbox.queue(3, message(0, per), now())));
        assert!(!outbox.queue(3, message(0, per), now()));
        assert!(
            outbox.queue(4, message(0, per), now()),
            "other peers are not affected"
        );
    }

    #[test]
    fn frames_that_cannot_be_messages_are_refused() {
        assert_eq!(check_frame_len(0), Err(BatchError::Empty));
        assert_eq!(
            check_frame_len(MAX_MESSAGE_BYTES + 1),
            Err(BatchError::TooLarge(MAX_MESSAGE_BYTES + 1))
        );
        assert!(check_frame_len(1).is_ok());
        assert!(check_frame_len(MAX_MESSAGE_BYTES).is_ok());
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
