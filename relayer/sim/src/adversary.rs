//! Byzantine members. A byzantine member runs a real protocol instance (so it takes part and
//! can win submissions) but rewrites what it sends, lies about its measurements, replays old
//! messages or floods garbage, according to its [`Behaviour`]. When it wins an epoch it
//! serves tampered official data to the losers that fetch from it.

use std::collections::BTreeMap;

use nym_rewards::rules::MAX_UPTIME_BP;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use relayer_protocol::{
    Block, BlockDigest, Echo, Keypair, MemberIndex, Message, MixnodeReward, Observation,
    ObservationRef, ProtocolConfig, lower_median, observation_digest,
};
use serde::{Deserialize, Serialize};
use strum::{IntoStaticStr, VariantArray};

/// What a byzantine member does.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    IntoStaticStr,
    VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Behaviour {
    /// Proposes two different valid blocks to two halves of the members, swapping on resend.
    Equivocate,
    /// Proposes blocks whose data hash does not match their aggregate.
    WrongAggregate,
    /// Proposes blocks with fewer than k observations.
    TooFewAuthors,
    /// Signs its observations and echoes with broken signatures.
    BadSignatures,
    /// Reports 0 or 100 % for every mixnode (validly signed).
    ExtremeValues,
    /// Re-sends old messages, from epochs long past too.
    Replay,
    /// Never sends observations or echoes.
    Withhold,
    /// Sends garbage and oversized messages.
    Flood,
    /// Sends every other member two versions of its observation of its own, freshly signed
    /// and different for each recipient, again on every re-send: no two members hold the same
    /// versions, and each may propose with the one it saw first.
    EquivocateObservations,
    /// Before its block, sends every member blocks over other observation subsets, three in
    /// four with a wrong data hash (those first), again on every re-send.
    FloodBlocks,
    /// Proposes and gathers a certificate like an honest member, then never submits it.
    WithholdCertificate,
    /// Sends every other member one version of its observation of its own, a different one
    /// each, and the same one again on every re-send: no member holds two, so none detects the
    /// equivocation, and a block over another member's version needs it fetched.
    SplitObservations,
    /// Proposes whenever it likes, whatever its rank: on every tick one block per epoch with
    /// made-up references and hash for the running epoch (no honest member sends one), and
    /// one valid block for the last ended epoch, over the k lowest authors it holds
    /// observations of, whose echoes it never gathers (honest members echo it, but it is never
    /// certified: it must not keep the lead's backups standing by).
    OutOfTurnBlocks,
}

relayer_protocol::derived_names!(Behaviour, "byzantine behaviour");

impl Behaviour {
    /// Every behaviour.
    pub const ALL: &'static [Behaviour] = Behaviour::VARIANTS;

    /// Whether the behaviour acts on a periodic tick (not only on what the protocol sends).
    pub(crate) fn ticks(self) -> bool {
        matches!(
            self,
            Behaviour::Replay | Behaviour::Flood | Behaviour::OutOfTurnBlocks
        )
    }
}

/// Where a rewritten message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Every other member.
    All,
    /// One member.
    One(MemberIndex),
}

const HISTORY_LIMIT: usize = 512;
/// Observation versions each recipient gets per send of an equivocating observer.
const VERSIONS_PER_RECIPIENT: usize = 2;
/// Extra blocks a block flooder sends each member per send of its block.
const FLOOD_BLOCKS: usize = 24;
/// Epochs whose two block versions an equivocator remembers.
const VERSIONS_KEPT: usize = 4;

/// A byzantine member's state beside its protocol instance.
pub(crate) struct Adversary {
    pub(crate) behaviour: Behaviour,
    /// This member's node index (what a [`Target`] names).
    node: MemberIndex,
    /// Its signer index in the version it acts under (`config`).
    me: MemberIndex,
    key: Keypair,
    /// The settings of the signer-set version it acts under, and that version's members by
    /// node index: it follows the version of each epoch it sends for (see [`Self::follow`]).
    config: ProtocolConfig,
    members: Vec<MemberIndex>,
    /// Sends so far per epoch (versions and flooded blocks differ from round to round).
    rounds: BTreeMap<u64, usize>,
    /// Observations seen, per epoch and author.
    seen: BTreeMap<u64, BTreeMap<MemberIndex, Observation>>,
    history: Vec<Message>,
    swap: bool,
    /// The two versions of this member's block per epoch, when it equivocates.
    versions: BTreeMap<u64, (Block, Block)>,
    /// Which version each member last got, per epoch.
    sent: BTreeMap<(u64, MemberIndex), Block>,
    /// The out-of-turn blocks of each epoch, made-up (`false`) and valid (`true`), once made
    /// (the same ones on every tick: another would refute this member and spare it the echoes).
    out_of_turn: BTreeMap<(u64, bool), Block>,
}

impl Adversary {
    pub(crate) fn new(
        behaviour: Behaviour,
        node: MemberIndex,
        key: Keypair,
        config: ProtocolConfig,
    ) -> Self {
        let members = (0..config.n() as MemberIndex).collect();
        Self {
            behaviour,
            node,
            me: node,
            key,
            config,
            members,
            rounds: BTreeMap::new(),
            seen: BTreeMap::new(),
            history: Vec::new(),
            swap: false,
            versions: BTreeMap::new(),
            sent: BTreeMap::new(),
            out_of_turn: BTreeMap::new(),
        }
    }

    /// Acts under the signer-set version of `config` from now on, where this member has signer
    /// index `me` and the members are the nodes `members` (in signer-index order): what it
    /// sends for an epoch is signed, addressed and sized by that epoch's version, so it stays
    /// as dangerous after a rotation as before.
    pub(crate) fn follow(
        &mut self,
        config: ProtocolConfig,
        me: MemberIndex,
        members: Vec<MemberIndex>,
    ) {
        self.config = config;
        self.me = me;
        self.members = members;
    }

    /// The signer-set version it acts under.
    pub(crate) fn version(&self) -> u32 {
        self.config.signer_set.version
    }

    /// Remembers what arrives (observations for equivocation, anything for replay).
    pub(crate) fn observe(&mut self, message: &Message) {
        if let Message::Observation(observation) = message {
            self.seen
                .entry(observation.epoch)
                .or_default()
                .entry(observation.author)
                .or_insert_with(|| observation.clone());
        }
        if self.behaviour == Behaviour::Replay && self.history.len() < HISTORY_LIMIT {
            self.history.push(message.clone());
        }
    }

    /// The values this member claims for an epoch.
    pub(crate) fn values(&self, epoch: u64, honest: Vec<MixnodeReward>) -> Vec<MixnodeReward> {
        if self.behaviour != Behaviour::ExtremeValues {
            return honest;
        }
        let extreme = if epoch.is_multiple_of(2) {
            0
        } else {
            MAX_UPTIME_BP
        };
        honest
            .into_iter()
            .map(|value| MixnodeReward {
                uptime_bp: extreme,
                ..value
            })
            .collect()
    }

    /// Rewrites one message the protocol wants sent to `target`.
    pub(crate) fn rewrite(&mut self, target: Target, message: Message) -> Vec<(Target, Message)> {
        self.observe(&message);
        match (self.behaviour, message) {
            (Behaviour::Equivocate, Message::Block(block)) if target == Target::All => {
                self.equivocate(block)
            }
            (Behaviour::WrongAggregate, Message::Block(mut block)) => {
                block.data_hash[0] ^= 0x01;
                vec![(target, Message::Block(block))]
            }
            // The digest itself lies: members rebuild the block and find the hash wrong.
            (Behaviour::WrongAggregate, Message::BlockDigest(mut digest)) => {
                digest.data_hash[0] ^= 0x01;
                vec![(target, Message::BlockDigest(digest))]
            }
            (Behaviour::TooFewAuthors, Message::Block(mut block)) => {
                block
                    .observations
                    .truncate(self.config.observation_threshold.saturating_sub(1));
                vec![(target, Message::Block(block))]
            }
            (Behaviour::BadSignatures, Message::Observation(mut observation)) => {
                flip_first(&mut observation.signature);
                vec![(target, Message::Observation(observation))]
            }
            (Behaviour::BadSignatures, Message::Echo(mut echo)) => {
                flip_first(&mut echo.signature);
                vec![(target, Message::Echo(echo))]
            }
            (Behaviour::Withhold, Message::Observation(_) | Message::Echo(_)) => vec![],
            (Behaviour::EquivocateObservations, Message::Observation(observation))
                if target != Target::One(self.node) && observation.author == self.me =>
            {
                let round = self.next_round(observation.epoch);
                self.observation_versions(&observation, target, VERSIONS_PER_RECIPIENT, round)
            }
            (Behaviour::SplitObservations, Message::Observation(observation))
                if observation.author == self.me =>
            {
                // The same version to a member every time: it never sees a second one.
                self.observation_versions(&observation, target, 1, 0)
            }
            (Behaviour::FloodBlocks, Message::Block(block)) if target == Target::All => {
                // The flood first, so that members meet it before they decide on the block.
                let mut out = self.flood_blocks(&block);
                out.push((Target::All, Message::Block(block)));
                out
            }
            (_, message) => vec![(target, message)],
        }
    }

    /// Whether the behaviour tampers with whole blocks: the protocol broadcasts its block as a
    /// digest, and the simulator hands such an adversary the whole block instead (a valid
    /// message too).
    pub(crate) fn tampers_with_whole_blocks(&self) -> bool {
        matches!(
            self.behaviour,
            Behaviour::Equivocate | Behaviour::TooFewAuthors | Behaviour::FloodBlocks
        )
    }

    /// Whether this member proposes out of turn (and so is steered to ended epochs' versions
    /// for it).
    pub(crate) fn proposes_out_of_turn(&self) -> bool {
        self.behaviour == Behaviour::OutOfTurnBlocks
    }

    /// Whether this member keeps its certificates to itself.
    pub(crate) fn withholds_certificates(&self) -> bool {
        self.behaviour == Behaviour::WithholdCertificate
    }

    /// Counts one more send for `epoch` and returns the count (the oldest epochs are
    /// forgotten).
    fn next_round(&mut self, epoch: u64) -> usize {
        let round = self.rounds.entry(epoch).or_default();
        *round += 1;
        let round = *round;
        while self.rounds.len() > VERSIONS_KEPT {
            self.rounds.pop_first();
        }
        round
    }

    /// Every member but this one, by node index.
    fn others(&self) -> Vec<MemberIndex> {
        self.members
            .iter()
            .copied()
            .filter(|&node| node != self.node)
            .collect()
    }

    /// `per_recipient` distinct, validly signed versions of `observation` for each member
    /// `target` names (every other member, or one that asked), different for each member and
    /// `round`.
    fn observation_versions(
        &self,
        observation: &Observation,
        target: Target,
        per_recipient: usize,
        round: usize,
    ) -> Vec<(Target, Message)> {
        let n = self.config.n();
        let recipients = match target {
            Target::All => self.others(),
            Target::One(member) => vec![member],
        };
        let mut out = Vec::new();
        for member in recipients {
            for copy in 0..per_recipient {
                let version = 1 + copy + per_recipient * (usize::from(member) + n * round);
                let mut values = observation.values.clone();
                if let Some(first) = values.first_mut() {
                    let bump = (version % usize::from(MAX_UPTIME_BP)) as u16;
                    first.uptime_bp = (first.uptime_bp + bump) % (MAX_UPTIME_BP + 1);
                }
                let digest = observation_digest(&self.config, observation.epoch, &values);
                let signed = Observation {
                    values,
                    signature: self.key.sign(&digest),
                    ..observation.clone()
                };
                out.push((Target::One(member), Message::Observation(signed)));
            }
        }
        out
    }

    /// Blocks over other subsets of the observations seen, to every other member: three in
    /// four with a wrong data hash (sent first), the others with the right one.
    fn flood_blocks(&mut self, block: &Block) -> Vec<(Target, Message)> {
        let round = self.next_round(block.epoch);
        let Some(held) = self.seen.get(&block.epoch) else {
            return vec![];
        };
        let k = self.config.observation_threshold;
        let authors: Vec<MemberIndex> = held.keys().copied().collect();
        if authors.len() < k {
            return vec![];
        }
        let mut blocks = Vec::new();
        for i in 0..FLOOD_BLOCKS {
            // A k-subset that rotates with the round and the block number.
            let start = (round * FLOOD_BLOCKS + i) % authors.len();
            let mut chosen: Vec<MemberIndex> = (0..k)
                .map(|j| authors[(start + j * (1 + i % 2)) % authors.len()])
                .collect();
            chosen.sort_unstable();
            chosen.dedup();
            if chosen.len() < k {
                continue;
            }
            let observations: Vec<&Observation> = chosen.iter().map(|a| &held[a]).collect();
            let Some(mut flooded) = self.block_over(block, &observations) else {
                continue;
            };
            let wrong = i % 4 != 0;
            if wrong {
                flooded.data_hash[31] ^= 0x80;
            }
            blocks.push((!wrong, flooded));
        }
        blocks.sort_by_key(|(right, _)| *right);
        blocks
            .into_iter()
            .map(|(_, block)| (Target::All, Message::Block(block)))
            .collect()
    }

    /// Sends one block to half the members and a different valid block to the other half.
    fn equivocate(&mut self, block: Block) -> Vec<(Target, Message)> {
        let Some(alternate) = self.alternate_block(&block) else {
            return vec![(Target::All, Message::Block(block))];
        };
        self.swap = !self.swap;
        let (first, second) = if self.swap {
            (block, alternate)
        } else {
            (alternate, block)
        };
        self.versions
            .insert(first.epoch, (first.clone(), second.clone()));
        while self.versions.len() > VERSIONS_KEPT {
            if let Some((epoch, _)) = self.versions.pop_first() {
                self.sent.retain(|(sent_epoch, _), _| *sent_epoch != epoch);
            }
        }
        self.others()
            .into_iter()
            .map(|member| {
                let chosen = if member % 2 == 0 { &first } else { &second };
                self.sent.insert((chosen.epoch, member), chosen.clone());
                (Target::One(member), Message::Block(chosen.clone()))
            })
            .collect()
    }

    /// A member restarted: an equivocator greets it with the block version it did not get,
    /// hoping it forgot which one it signed.
    pub(crate) fn peer_restarted(&mut self, member: MemberIndex) -> Vec<(Target, Message)> {
        if self.behaviour != Behaviour::Equivocate {
            return vec![];
        }
        let mut out = Vec::new();
        for (&epoch, (first, second)) in &self.versions {
            let other = match self.sent.get(&(epoch, member)) {
                Some(sent) if sent == first => second,
                _ => first,
            };
            out.push((Target::One(member), Message::Block(other.clone())));
        }
        out
    }

    /// A block over a different set of k observations, with its correct data hash.
    fn alternate_block(&self, block: &Block) -> Option<Block> {
        let held = self.seen.get(&block.epoch)?;
        let k = self.config.observation_threshold;
        let current: Vec<MemberIndex> = block.observations.iter().map(|r| r.author).collect();
        let authors: Vec<MemberIndex> = held.keys().copied().collect();
        // Drop a different author than the block does: rotate which k are taken.
        let choice = (0..authors.len()).find_map(|skip| {
            let chosen: Vec<MemberIndex> = authors
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, author)| *author)
                .take(k)
                .collect();
            (chosen.len() >= k && chosen != current).then_some(chosen)
        })?;
        let observations: Vec<&Observation> = choice.iter().map(|a| &held[a]).collect();
        self.block_over(block, &observations)
    }

    /// `template` over `observations` (by author), with its correct data hash.
    fn block_over(&self, template: &Block, observations: &[&Observation]) -> Option<Block> {
        let columns: Vec<&[MixnodeReward]> =
            observations.iter().map(|o| o.values.as_slice()).collect();
        let rewards = lower_median(&columns).ok()?;
        Some(Block {
            observations: observations
                .iter()
                .map(|o| ObservationRef {
                    author: o.author,
                    digest: observation_digest(&self.config, o.epoch, &o.values),
                })
                .collect(),
            data_hash: nym_rewards::digest::data_hash(&rewards),
            ..template.clone()
        })
    }

    /// Periodic mischief: replays or garbage, for the epoch running at the time.
    pub(crate) fn tick(&mut self, rng: &mut ChaCha8Rng, epoch: u64) -> Vec<(Target, Message)> {
        match self.behaviour {
            Behaviour::Replay => self
                .history
                .choose_multiple(rng, 4)
                .cloned()
                .map(|message| (Target::All, message))
                .collect(),
            Behaviour::Flood => (0..8)
                .map(|_| (Target::All, self.garbage(rng, epoch)))
                .collect(),
            Behaviour::OutOfTurnBlocks => self.made_up_block(rng, epoch),
            _ => vec![],
        }
    }

    /// The block with made-up references and hash for the running `epoch` (honest members can
    /// only park it and ask this member, never its named authors).
    fn made_up_block(&mut self, rng: &mut ChaCha8Rng, epoch: u64) -> Vec<(Target, Message)> {
        let k = self.config.observation_threshold;
        let (version, me) = (self.config.signer_set.version, self.me);
        let block = self.remember_out_of_turn((epoch, false), || Block {
            epoch,
            signer_set_version: version,
            proposer: me,
            observations: (0..k as MemberIndex)
                .map(|author| ObservationRef {
                    author,
                    digest: rng.r#gen(),
                })
                .collect(),
            data_hash: rng.r#gen(),
        });
        vec![(Target::All, Message::Block(block))]
    }

    /// A valid block for the ended `epoch`, over the k lowest authors whose observations it
    /// holds, proposed out of turn (under the version it follows for `epoch`; see
    /// `World::steer_adversary`).
    /// Sent again on every tick; first as soon as it holds k observations (see
    /// [`Self::first_out_of_turn_block`]).
    pub(crate) fn out_of_turn_block(&mut self, epoch: u64) -> Vec<(Target, Message)> {
        if !self.proposes_out_of_turn() {
            return vec![];
        }
        if let Some(block) = self.out_of_turn.get(&(epoch, true)) {
            return vec![(Target::All, Message::Block(block.clone()))];
        }
        self.first_out_of_turn_block(epoch)
    }

    /// The valid out-of-turn block for the ended `epoch` if it can be made now and was not
    /// before: sent when the k-th observation arrives, before the lead's block could have been
    /// certified.
    pub(crate) fn first_out_of_turn_block(&mut self, epoch: u64) -> Vec<(Target, Message)> {
        if !self.proposes_out_of_turn() || self.out_of_turn.contains_key(&(epoch, true)) {
            return vec![];
        }
        let k = self.config.observation_threshold;
        let Some(held) = self.seen.get(&epoch).filter(|held| held.len() >= k) else {
            return vec![];
        };
        let observations: Vec<&Observation> = held.values().take(k).collect();
        let template = Block {
            epoch,
            signer_set_version: self.config.signer_set.version,
            proposer: self.me,
            observations: Vec::new(),
            data_hash: [0; 32],
        };
        let Some(block) = self.block_over(&template, &observations) else {
            return vec![];
        };
        let block = self.remember_out_of_turn((epoch, true), || block);
        vec![(Target::All, Message::Block(block))]
    }

    /// Whether it proposed a block with `data_hash` for `epoch` out of turn.
    pub(crate) fn proposed_out_of_turn(&self, epoch: u64, data_hash: &[u8; 32]) -> bool {
        self.out_of_turn
            .get(&(epoch, true))
            .is_some_and(|block| block.data_hash == *data_hash)
    }

    /// The out-of-turn block of `key` (epoch, valid): the one made before, or `make`'s (the
    /// oldest epochs are forgotten).
    fn remember_out_of_turn(&mut self, key: (u64, bool), make: impl FnOnce() -> Block) -> Block {
        let block = self.out_of_turn.entry(key).or_insert_with(make).clone();
        while self.out_of_turn.len() > 2 * VERSIONS_KEPT {
            self.out_of_turn.pop_first();
        }
        block
    }

    /// A well-formed message with nonsense content: random epochs, authors, hashes,
    /// signatures, and observations up to four times the allowed size.
    fn garbage(&self, rng: &mut ChaCha8Rng, epoch: u64) -> Message {
        let epoch = epoch.saturating_add_signed(rng.gen_range(-6..=2));
        let n = self.config.n() as MemberIndex;
        let author = rng.gen_range(0..n + 3);
        let digest: [u8; 32] = rng.r#gen();
        let signature: Vec<u8> = (0..rng.gen_range(0..80)).map(|_| rng.r#gen()).collect();
        match rng.gen_range(0..8) {
            0 => {
                let len = rng.gen_range(0..=self.config.mixnodes.len() * 4 + 1);
                Message::Observation(Observation {
                    epoch,
                    signer_set_version: self.config.signer_set.version,
                    author,
                    values: (0..len)
                        .map(|_| MixnodeReward {
                            mix_id: rng.gen_range(0..20),
                            uptime_bp: rng.gen_range(0..=12_000),
                        })
                        .collect(),
                    signature,
                })
            }
            1 => Message::Block(Block {
                epoch,
                signer_set_version: self.config.signer_set.version,
                proposer: self.me,
                observations: (0..rng.gen_range(0..n + 2))
                    .map(|author| ObservationRef {
                        author,
                        digest: rng.r#gen(),
                    })
                    .collect(),
                data_hash: digest,
            }),
            2 => Message::Echo(Echo {
                epoch,
                proposer: author,
                data_hash: digest,
                signature,
            }),
            3 => Message::ObservationRequest {
                epoch,
                reference: ObservationRef { author, digest },
            },
            4 => Message::Holding {
                epoch,
                authors: (0..rng.gen_range(0..n / 4 + 3))
                    .map(|_| rng.r#gen())
                    .collect(),
            },
            5 => Message::Accepted { epoch },
            6 => Message::BlockDigest(BlockDigest {
                epoch,
                signer_set_version: self.config.signer_set.version,
                proposer: self.me,
                authors: (0..rng.gen_range(0..n / 4 + 3))
                    .map(|_| rng.r#gen())
                    .collect(),
                refs_hash: rng.r#gen(),
                data_hash: digest,
            }),
            _ => Message::BlockRequest { epoch },
        }
    }
}

fn flip_first(bytes: &mut [u8]) {
    if let Some(first) = bytes.first_mut() {
        *first ^= 0x01;
    }
}
