//! Which of a member's connections to a peer to keep. When two members dial each other at the
//! same moment (every start of a network, and under load a dial can take seconds) each pair
//! ends up with two connections: twice the sockets, and n = 128 nodes in one process no longer
//! fit the open-files limit. Both ends apply the same rule, so they close the same connection:
//! of two fresh connections dialled by different ends, the one the larger peer id dialled goes.
//! An older connection is never closed for a new one (a reconnect may briefly overlap a
//! connection that is going away; which one that is, only time tells).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Connections younger than this count as dialled "at the same moment".
pub const SIMULTANEOUS: Duration = Duration::from_secs(10);

/// One open connection: its id and whether the member with the smaller peer id dialled it.
#[derive(Clone, Copy, Debug)]
struct Open<C> {
    id: C,
    dialled_by_smaller: bool,
    since: Instant,
    /// It was returned as the one of a simultaneous pair to close.
    closing: bool,
}

/// The open connections to each peer (`P` a peer id, `C` a connection id).
#[derive(Debug)]
pub struct PeerConnections<P, C> {
    open: HashMap<P, Vec<Open<C>>>,
}

impl<P, C> Default for PeerConnections<P, C> {
    fn default() -> Self {
        Self {
            open: HashMap::new(),
        }
    }
}

impl<P: Hash + Eq + Ord + Copy, C: Eq + Copy> PeerConnections<P, C> {
    /// Records connection `id` between `me` and `peer` (`i_dialled` if `me` dialled it) and
    /// returns the connection to close, if it and another one are a simultaneous pair.
    pub fn established(
        &mut self,
        me: &P,
        peer: P,
        id: C,
        i_dialled: bool,
        now: Instant,
    ) -> Option<C> {
        let dialled_by_smaller = i_dialled == (*me < peer);
        let open = self.open.entry(peer).or_default();
        open.push(Open {
            id,
            dialled_by_smaller,
            since: now,
            closing: false,
        });
        let fresh = |c: &Open<C>| now.saturating_duration_since(c.since) < SIMULTANEOUS;
        let kept = open.iter().find(|c| fresh(c) && c.dialled_by_smaller)?.id;
        let closed = open
            .iter_mut()
            .find(|c| fresh(c) && !c.dialled_by_smaller && c.id != kept)?;
        closed.closing = true;
        Some(closed.id)
    }

    /// The newest connection to `peer` that is not being closed: where a stream opened now
    /// should go (an older one may be the half of a simultaneous pair going away, or one the
    /// peer reconnected to replace).
    pub fn newest(&self, peer: &P) -> Option<C> {
        self.open
            .get(peer)?
            .iter()
            .rev()
            .find(|c| !c.closing)
            .map(|c| c.id)
    }

    /// Forgets connection `id` to `peer` (closed).
    pub fn closed(&mut self, peer: &P, id: C) {
        if let Some(open) = self.open.get_mut(peer) {
            open.retain(|c| c.id != id);
            if open.is_empty() {
                self.open.remove(peer);
            }
        }
    }

    /// Connections open to `peer` (what the tests check).
    #[cfg(test)]
    fn count(&self, peer: &P) -> usize {
        self.open.get(peer).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: u8 = 1;
    const LARGE: u8 = 2;

    #[test]
    fn both_ends_close_the_connection_the_larger_id_dialled() {
        let now = Instant::now();
        // Connection 7 dialled by SMALL, connection 9 by LARGE, seen in either order.
        let mut small = PeerConnections::default();
        assert_eq!(small.established(&SMALL, LARGE, 9, false, now), None);
        assert_eq!(small.established(&SMALL, LARGE, 7, true, now), Some(9));
        let mut large = PeerConnections::default();
        assert_eq!(large.established(&LARGE, SMALL, 7, false, now), None);
        assert_eq!(large.established(&LARGE, SMALL, 9, true, now), Some(9));
        large.closed(&SMALL, 9);
        assert_eq!(large.count(&SMALL), 1);
    }

    #[test]
    fn an_older_connection_is_never_closed_for_a_new_one() {
        let start = Instant::now();
        let mut small = PeerConnections::default();
        // LARGE dialled long ago; SMALL dials again (a reconnect overlapping the old one).
        assert_eq!(small.established(&SMALL, LARGE, 1, false, start), None);
        let later = start + SIMULTANEOUS;
        assert_eq!(small.established(&SMALL, LARGE, 2, true, later), None);
        assert_eq!(small.count(&LARGE), 2);
    }

    #[test]
    fn two_connections_dialled_by_the_same_end_are_left_alone() {
        let now = Instant::now();
        let mut small = PeerConnections::default();
        assert_eq!(small.established(&SMALL, LARGE, 1, true, now), None);
        assert_eq!(small.established(&SMALL, LARGE, 2, true, now), None);
        let mut large = PeerConnections::default();
        assert_eq!(large.established(&LARGE, SMALL, 1, true, now), None);
        assert_eq!(large.established(&LARGE, SMALL, 2, true, now), None);
    }

    #[test]
    fn closing_the_last_connection_forgets_the_peer() {
        let now = Instant::now();
        let mut small = PeerConnections::default();
        small.established(&SMALL, LARGE, 1, true, now);
        small.closed(&SMALL, 1);
        assert_eq!(
            small.count(&LARGE),
            1,
            "another peer's connection is not touched"
        );
        small.closed(&LARGE, 1);
        assert_eq!(small.count(&LARGE), 0);
        assert!(small.open.is_empty());
    }

    #[test]
    fn streams_go_to_the_newest_connection_not_being_closed() {
        let now = Instant::now();
        let mut connections = PeerConnections::default();
        assert_eq!(connections.newest(&LARGE), None);
        // The smaller id dials (kept), then the larger id's dial arrives: it is closed.
        assert_eq!(connections.established(&SMALL, LARGE, 1, true, now), None);
        assert_eq!(
            connections.established(&SMALL, LARGE, 2, false, now),
            Some(2)
        );
        assert_eq!(
            connections.newest(&LARGE),
            Some(1),
            "not the one being closed"
        );
        // The larger id dials first, then the smaller one: the first is closed.
        assert_eq!(connections.established(&SMALL, 3, 4, false, now), None);
        assert_eq!(connections.newest(&3), Some(4));
        assert_eq!(connections.established(&SMALL, 3, 5, true, now), Some(4));
        assert_eq!(connections.newest(&3), Some(5));
        // A reconnect long after: the newer connection takes new streams.
        let later = now + SIMULTANEOUS * 2;
        assert_eq!(
            connections.established(&SMALL, LARGE, 6, false, later),
            None
        );
        assert_eq!(connections.newest(&LARGE), Some(6));
        connections.closed(&LARGE, 6);
        assert_eq!(connections.newest(&LARGE), Some(1));
    }
}
