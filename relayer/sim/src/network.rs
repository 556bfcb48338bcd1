//! The simulated network: what a node sends goes through its adversary's hands when it is
//! byzantine, then onto a wire that may lose, delay, duplicate and reorder it, or cut it by a
//! partition. Honest messages are checked as they leave (no two blocks of one proposer signed).

use rand::Rng;
use relayer_protocol::Message;

use crate::adversary::{Adversary, Target};
use crate::events::Event;
use crate::world::World;

/// How soon after its echo the targeted crash takes a node down, and for how long.
const CRASH_AFTER_ECHO_MS: (u64, u64) = (1, 5);
const DOWN_AFTER_ECHO_MS: (u64, u64) = (10, 60);

impl World {
    /// Sends what the protocol asked for, through the adversary's hands if byzantine.
    pub(crate) fn send(&mut self, node: usize, target: Target, message: Message) {
        self.steer_adversary(node, message.epoch());
        let sim = &mut self.nodes[node];
        let outgoing = match sim.adversary.as_mut() {
            Some(adversary) => {
                let whole = match &message {
                    Message::BlockDigest(digest) if adversary.tampers_with_whole_blocks() => sim
                        .engine
                        .as_ref()
                        .and_then(|engine| engine.instance(digest.epoch))
                        .and_then(|protocol| protocol.own_block(digest.epoch))
                        .cloned(),
                    _ => None,
                };
                let message = whole.map_or(message, Message::Block);
                adversary.rewrite(target, message)
            }
            None => {
                let now = self.now();
                self.checker.honest_message(now, node, &message);
                self.maybe_crash_after_echo(node, &message);
                vec![(target, message)]
            }
        };
        for (target, message) in outgoing {
            self.transmit_to(node, target, message);
        }
    }

    /// The targeted fault: an honest node that just echoed an equivocator's block crashes or
    /// stops before the epoch is final, and restarts shortly after (to be greeted with the
    /// other block).
    fn maybe_crash_after_echo(&mut self, node: usize, message: &Message) {
        let Message::Echo(echo) = message else {
            return;
        };
        let equivocator = self
            .nodes
            .get(usize::from(echo.proposer))
            .and_then(|proposer| proposer.adversary.as_ref())
            .is_some_and(|adversary| adversary.behaviour == crate::Behaviour::Equivocate);
        if !self.plan.crash_after_echo
            || !equivocator
            || self.crashed_after_echo.contains(&echo.epoch)
            || !self.may_crash_one_more()
        {
            return;
        }
        self.crashed_after_echo.insert(echo.epoch);
        self.targeted_down = Some(node);
        self.count_fault("crash_after_echo");
        let crash_in = self
            .rng
            .gen_range(CRASH_AFTER_ECHO_MS.0..=CRASH_AFTER_ECHO_MS.1);
        let down_for = self
            .rng
            .gen_range(DOWN_AFTER_ECHO_MS.0..=DOWN_AFTER_ECHO_MS.1);
        // Even epochs stop gracefully (the restart trusts its stored decisions), odd ones
        // crash (the restart abstains from the epoch).
        let clean = echo.epoch % 2 == 0;
        self.scheduler.after(crash_in, Event::Crash { node, clean });
        self.scheduler
            .after(crash_in + down_for, Event::Restart { node });
    }

    pub(crate) fn transmit_to(&mut self, from: usize, target: Target, message: Message) {
        match target {
            Target::One(to) => self.transmit(from, usize::from(to), message),
            Target::All => {
                for to in self.recipients(from, message.epoch()) {
                    self.transmit(from, to, message.clone());
                }
            }
        }
    }

    /// One message onto the simulated wire: maybe lost, delayed, duplicated.
    fn transmit(&mut self, from: usize, to: usize, message: Message) {
        self.messages.sent += 1;
        // What arrives is what the nodes' codec makes of the bytes, as on a real wire.
        let epoch = message.epoch();
        let mut size = 0;
        let decoded = self.codec.encode(&message).and_then(|bytes| {
            size = bytes.len();
            *self.messages.bytes_by_epoch.entry(epoch).or_default() += bytes.len() as u64;
            self.codec.decode(&bytes)
        });
        let message = match decoded {
            Ok(message) => message,
            Err(err) => {
                self.messages.unencodable += 1;
                if self.nodes[from].adversary.is_none() {
                    let now = self.now();
                    self.checker.unencodable(now, from, epoch, err.to_string());
                }
                return;
            }
        };
        if to >= self.nodes.len() || self.partitioned(from, to) {
            self.messages.lost += 1;
            return;
        }
        if self.network.drop > 0.0 && self.rng.gen_bool(self.network.drop) {
            self.count_fault("drop");
            self.messages.lost += 1;
            return;
        }
        if self.network.duplicate > 0.0 && self.rng.gen_bool(self.network.duplicate) {
            self.count_fault("duplicate");
            let delay = self.link_delay(from, to, size);
            let copy = message.clone();
            self.scheduler.after(
                delay,
                Event::Deliver {
                    to,
                    from,
                    message: copy,
                },
            );
        }
        let delay = self.link_delay(from, to, size);
        self.scheduler
            .after(delay, Event::Deliver { to, from, message });
    }

    /// How long a message of `bytes` from `from` takes to reach `to`: the WAN model's queue,
    /// transmission and propagation when the run has one, else the profile's uniform delay.
    fn link_delay(&mut self, from: usize, to: usize, bytes: usize) -> u64 {
        let now = self.now();
        match self.wan.as_mut() {
            Some(wan) => wan
                .arrival_ms(&mut self.rng, now, from, to, bytes)
                .saturating_sub(now),
            None => {
                let (low, high) = self.network.delay_ms;
                self.rng.gen_range(low..=high)
            }
        }
    }

    pub(crate) fn on_deliver(&mut self, to: usize, from: usize, message: Message) {
        if self.nodes[to].engine.is_none() || self.partitioned(from, to) {
            self.messages.lost += 1;
            return;
        }
        self.messages.delivered += 1;
        if let Some(adversary) = self.nodes[to].adversary.as_mut() {
            adversary.observe(&message);
            let out_of_turn = match &message {
                Message::Echo(echo) => adversary.proposed_out_of_turn(echo.epoch, &echo.data_hash),
                _ => false,
            };
            if out_of_turn && self.nodes[from].adversary.is_none() {
                // An honest member echoed a block proposed out of turn: the path a test must
                // see taken.
                self.count_fault("echo_of_out_of_turn_block");
            }
            if let Message::Observation(observation) = &message {
                self.propose_out_of_turn(to, observation.epoch);
            }
        }
        // The sender as the receiver's engine names it; a key it does not work with now is
        // refused by the transport, as a node's allow list refuses it.
        let sender = self.nodes[from].key.public();
        let Some(from) = self.nodes[to].engine.as_ref().and_then(|engine| {
            engine
                .peer_of_key(&sender)
                .filter(|&peer| engine.admits(peer))
        }) else {
            self.messages.lost += 1;
            return;
        };
        self.feed(to, relayer_protocol::Input::Message { from, message });
    }

    /// An adversary proposing out of turn sends its valid block for `epoch` as soon as it
    /// holds k observations of it (under the version governing the epoch).
    fn propose_out_of_turn(&mut self, node: usize, epoch: u64) {
        if !self.nodes[node]
            .adversary
            .as_ref()
            .is_some_and(Adversary::proposes_out_of_turn)
        {
            return; // no other adversary is steered to the epoch for nothing
        }
        self.steer_adversary(node, epoch);
        let messages = match self.nodes[node].adversary.as_mut() {
            Some(adversary) => adversary.first_out_of_turn_block(epoch),
            None => return,
        };
        for (target, message) in messages {
            self.count_fault("out_of_turn_block");
            self.transmit_to(node, target, message);
        }
    }

    /// Whom `from`'s broadcast of a message of `epoch` reaches: the other members of the
    /// version governing the epoch, as its engine says (every other node when it has none).
    fn recipients(&self, from: usize, epoch: u64) -> Vec<usize> {
        match self.nodes[from].engine.as_ref() {
            Some(engine) => engine
                .recipients(epoch)
                .into_iter()
                .filter_map(|peer| self.node_of_peer(from, peer))
                .collect(),
            None => (0..self.nodes.len()).filter(|&to| to != from).collect(),
        }
    }

    pub(crate) fn partitioned(&self, a: usize, b: usize) -> bool {
        self.partition
            .as_ref()
            .is_some_and(|side| side[a] != side[b])
    }

    /// A network delay drawn from the profile.
    pub(crate) fn network_delay(&mut self) -> u64 {
        let (low, high) = self.network.delay_ms;
        self.rng.gen_range(low..=high)
    }
}
