//! Signer-set rotation in a run: while the network runs, the admin schedules new versions in
//! the real contract (a member added, one removed, one replaced, the threshold following each
//! size), and every node learns them by polling the contract, as a node's driver does, and
//! hands them to its production `Engine`.

use relayer_protocol::{MemberIndex, default_threshold};

use crate::events::Event;
use crate::world::{EPOCH_MS, World, epoch_end_ms};

/// Nodes beyond the first version's members: they join in later versions.
pub(crate) const EXTRA_NODES: usize = 2;
/// The last version governs from this epoch; a rotating run lasts longer.
pub(crate) const LAST_SWITCH: u64 = 7;
/// How often a node asks the contract for new signer-set versions: slower than the two
/// epochs' notice, so that nodes learn some versions only after their first epoch ended (and
/// worked on it under the previous version), each node at its own phase.
const POLL_MS: u64 = 35_000;
/// The spread of the nodes' first polls.
const POLL_PHASE_MS: u64 = 7_000;
/// How far into its epoch the admin's transaction lands.
const ADMIN_OFFSET_MS: u64 = 150;

/// One version the admin schedules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RotationStep {
    /// The epoch during which the admin sends it.
    pub(crate) scheduled_in: u64,
    /// Its first epoch.
    pub(crate) effective_from: u64,
    /// Its members, by node index, in signer-index order.
    pub(crate) members: Vec<usize>,
    /// Its threshold.
    pub(crate) threshold: usize,
}

/// The versions after the first, for `n` first members: version 2 adds node `n` (from epoch
/// 3), version 3 removes node 1 (from 5), version 4 replaces node 2 by node `n + 1` (from 7);
/// each is scheduled two epochs ahead and takes the default threshold of its size, so the
/// threshold changes with each.
pub(crate) fn plan(n: usize) -> Vec<RotationStep> {
    let added: Vec<usize> = (0..=n).collect();
    let removed: Vec<usize> = added.iter().copied().filter(|&node| node != 1).collect();
    let replaced: Vec<usize> = removed
        .iter()
        .map(|&node| if node == 2 { n + 1 } else { node })
        .collect();
    [(3, added), (5, removed), (LAST_SWITCH, replaced)]
        .into_iter()
        .map(|(effective_from, members)| RotationStep {
            scheduled_in: effective_from - 2,
            effective_from,
            threshold: default_threshold(members.len()),
            members,
        })
        .collect()
}

impl World {
    /// Whether `node` is a member of the version governing `epoch`.
    pub(crate) fn is_member(&self, node: usize, epoch: u64) -> bool {
        self.rotation
            .iter()
            .rev()
            .find(|step| step.effective_from <= epoch)
            .map_or(node < self.config.nodes, |step| {
                step.members.contains(&node)
            })
    }

    /// Schedules the admin's rotations.
    pub(crate) fn schedule_rotations(&mut self) {
        for (step, rotation) in self.rotation.iter().enumerate() {
            let epoch_start = epoch_end_ms(rotation.scheduled_in) - EPOCH_MS;
            self.scheduler
                .at(epoch_start + ADMIN_OFFSET_MS, Event::Rotate { step });
        }
    }

    /// The admin's transaction scheduling rotation `step`.
    pub(crate) fn on_rotate(&mut self, step: usize) {
        let Some(rotation) = self.rotation.get(step).cloned() else {
            return;
        };
        let keys: Vec<[u8; 32]> = self.nodes.iter().map(|node| node.key.public()).collect();
        let now = self.now();
        match self.chain.rotate(
            now,
            &keys,
            &rotation.members,
            rotation.threshold,
            rotation.effective_from,
        ) {
            Ok(()) => self.count_fault("rotation"),
            Err(err) => self.checker.panicked(now, 0, err.to_string()),
        }
    }

    /// Arms `node`'s next poll of the contract's signer sets (rotating runs only): the first
    /// after a start at the node's own phase, then every [`POLL_MS`].
    pub(crate) fn arm_signer_set_poll(&mut self, node: usize, first: bool) {
        if self.rotation.is_empty() {
            return;
        }
        let incarnation = self.nodes[node].incarnation;
        let delay = if first {
            (node as u64 * POLL_PHASE_MS) % POLL_MS + 1
        } else {
            POLL_MS
        };
        self.scheduler
            .after(delay, Event::SignerSetPoll { node, incarnation });
    }

    /// `node` reads the newest version from the contract and learns the ones it lacks.
    pub(crate) fn on_signer_set_poll(&mut self, node: usize, incarnation: u32) {
        if !self.nodes[node].current(incarnation) {
            return;
        }
        self.arm_signer_set_poll(node, false);
        let Some(latest) = self.chain.latest_version() else {
            return;
        };
        let known = self.nodes[node]
            .engine
            .as_ref()
            .and_then(|engine| engine.latest_version())
            .unwrap_or(0);
        for version in known + 1..=latest {
            let Some(set) = self.chain.signer_set(version) else {
                continue;
            };
            let now = self.now();
            if crate::world::CLOCK
                .epoch_at_ms(now)
                .is_some_and(|current| current > set.effective_from_epoch)
            {
                // Its first epoch ended before the node read it.
                self.count_fault("version_learned_late");
            }
            let Some(engine) = self.nodes[node].engine.as_mut() else {
                return;
            };
            match engine.learn(now, set) {
                Ok(actions) => self.perform_all(node, actions),
                Err(err) => {
                    self.checker
                        .panicked(now, node, format!("learning version {version}: {err}"))
                }
            }
        }
    }

    /// Points byzantine `node`'s adversary at the signer-set version governing `epoch` (its
    /// engine's instance for it), so that what it forges is valid under that version.
    pub(crate) fn steer_adversary(&mut self, node: usize, epoch: u64) {
        let sim = &self.nodes[node];
        let (Some(adversary), Some(protocol)) = (
            sim.adversary.as_ref(),
            sim.engine
                .as_ref()
                .and_then(|engine| engine.instance(epoch)),
        ) else {
            return;
        };
        let config = protocol.config();
        if adversary.version() == config.signer_set.version {
            return;
        }
        let me = protocol.me();
        let members: Vec<MemberIndex> = config
            .signer_set
            .members
            .iter()
            .filter_map(|signer| self.node_of_key.get(&signer.key))
            .map(|&member| member as MemberIndex)
            .collect();
        let (config, version) = (config.clone(), config.signer_set.version);
        if let Some(adversary) = self.nodes[node].adversary.as_mut() {
            adversary.follow(config, me, members);
        }
        if version > 1 {
            self.count_fault("adversary_under_later_version");
        }
    }

    /// The node index of `node`'s peer `peer` (a position in its engine's roster).
    pub(crate) fn node_of_peer(&self, node: usize, peer: MemberIndex) -> Option<usize> {
        let engine = self.nodes[node].engine.as_ref()?;
        let key = engine.roster().get(usize::from(peer))?;
        self.node_of_key.get(key).copied()
    }
}
