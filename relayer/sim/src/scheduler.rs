//! The virtual clock: events ordered by time, ties broken by insertion order, so a run is a
//! pure function of its seed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

struct Scheduled<E> {
    at_ms: u64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ms, self.seq) == (other.at_ms, other.seq)
    }
}

impl<E> Eq for Scheduled<E> {}

impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Scheduled<E> {
    /// Reversed, so the max-heap pops the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_ms, other.seq).cmp(&(self.at_ms, self.seq))
    }
}

/// A priority queue of events on a virtual millisecond clock.
pub(crate) struct Scheduler<E> {
    heap: BinaryHeap<Scheduled<E>>,
    seq: u64,
    now_ms: u64,
}

impl<E> Scheduler<E> {
    pub(crate) fn new(start_ms: u64) -> Self {
        Self {
            heap: BinaryHeap::new(),
            seq: 0,
            now_ms: start_ms,
        }
    }

    /// The virtual time of the event being processed.
    pub(crate) fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Schedules `event` at `at_ms`, or now if that is in the past.
    pub(crate) fn at(&mut self, at_ms: u64, event: E) {
        let at_ms = at_ms.max(self.now_ms);
        self.seq += 1;
        self.heap.push(Scheduled {
            at_ms,
            seq: self.seq,
            event,
        });
    }

    /// Schedules `event` `delay_ms` from now.
    pub(crate) fn after(&mut self, delay_ms: u64, event: E) {
        self.at(self.now_ms + delay_ms, event);
    }

    /// The next event no later than `until_ms`, advancing the clock to it.
    pub(crate) fn next_until(&mut self, until_ms: u64) -> Option<E> {
        if self.heap.peek()?.at_ms > until_ms {
            return None;
        }
        let next = self.heap.pop()?;
        self.now_ms = next.at_ms;
        Some(next.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut scheduler = Scheduler::new(100);
        scheduler.at(300, "c");
        scheduler.at(200, "a");
        scheduler.at(200, "b");
        scheduler.at(50, "past");
        assert_eq!(scheduler.next_until(1_000), Some("past"));
        assert_eq!(scheduler.now_ms(), 100, "a past event runs now");
        assert_eq!(scheduler.next_until(1_000), Some("a"));
        assert_eq!(scheduler.next_until(1_000), Some("b"));
        assert_eq!(scheduler.next_until(250), None, "later than the horizon");
        assert_eq!(scheduler.next_until(300), Some("c"));
        assert_eq!(scheduler.now_ms(), 300);
    }
}
