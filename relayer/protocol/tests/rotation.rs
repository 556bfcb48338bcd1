//! Signer-set rotation in one member: the engine routes each epoch to the instance of the
//! version governing it, translates peers between versions, arms each epoch end once, keeps
//! persist ids apart, and a member restarted after a switch still finishes its pre-switch
//! epochs under their own version. (The whole network rotating is the simulator's test.)

#![allow(clippy::unwrap_used)] // test code

use nym_rewards::msg::EpochClock;
use relayer_protocol::{
    Action, ChainContext, Engine, Input, Keypair, Message, MixnodeReward, Observation,
    PersistRecord, ProtocolConfig, Rejection, RestoredState, Signer, SignerSet, SubmitPolicy,
    Timer, observation_digest,
};

const EPOCH_SECS: u64 = 10;
/// The first epoch of version 2.
const SWITCH: u64 = 5;

fn key(i: u8) -> Keypair {
    Keypair::from_seed(&[i + 1; 32])
}

fn set(version: u32, from: u64, threshold: usize, members: &[u8]) -> SignerSet {
    SignerSet {
        version,
        effective_from_epoch: from,
        threshold,
        members: members
            .iter()
            .map(|&i| Signer {
                key: key(i).public(),
                address: format!("wasm1member{i}"),
            })
            .collect(),
    }
}

/// Version 1: keys 0..4, t = 3. Version 2 from epoch 5: key 3 replaced by key 4, key 5
/// added, t = 4.
fn sets() -> Vec<SignerSet> {
    vec![
        set(1, 0, 3, &[0, 1, 2, 3]),
        set(2, SWITCH, 4, &[0, 1, 2, 4, 5]),
    ]
}

fn template() -> ProtocolConfig {
    ProtocolConfig {
        chain: ChainContext {
            chain_id: "testing".into(),
            contract: "wasm1contract".into(),
        },
        signer_set: sets().remove(0),
        observation_threshold: 3,
        mixnodes: vec![1, 2],
        clock: EpochClock {
            genesis_time: 0,
            epoch_length_secs: EPOCH_SECS,
        },
        observation_grace_ms: 200,
        submit_slot_ms: 1_000,
        resend_interval_ms: 5_000,
        policy: SubmitPolicy::Race,
        catch_up_epochs: 2,
    }
}

fn engine(me: u8, sets: Vec<SignerSet>, restored: RestoredState) -> Engine {
    Engine::new(template(), None, key(me), restored, sets).unwrap()
}

fn at_epoch_end(epoch: u64) -> u64 {
    (epoch + 1) * EPOCH_SECS * 1_000
}

fn values() -> Vec<MixnodeReward> {
    vec![
        MixnodeReward {
            mix_id: 1,
            uptime_bp: 9_000,
        },
        MixnodeReward {
            mix_id: 2,
            uptime_bp: 8_000,
        },
    ]
}

fn epoch_end_timers(actions: &[Action]) -> Vec<u64> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::SetTimer {
                timer: Timer::EpochEnd { epoch },
                ..
            } => Some(*epoch),
            _ => None,
        })
        .collect()
}

fn resend_timers(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|action| {
            matches!(
                action,
                Action::SetTimer {
                    timer: Timer::Resend,
                    ..
                }
            )
        })
        .count()
}

/// Measures `epoch` at its end and acknowledges the observation's write; returns the
/// broadcast observation.
fn observe(engine: &mut Engine, epoch: u64) -> Observation {
    let now = at_epoch_end(epoch);
    let actions = engine.handle(
        now,
        Input::Measured {
            epoch,
            values: Some(values()),
        },
    );
    let id = actions
        .iter()
        .find_map(|action| match action {
            Action::Persist {
                id,
                record: PersistRecord::OwnObservation { .. },
            } => Some(*id),
            _ => None,
        })
        .expect("the observation is stored first");
    let actions = engine.handle(now, Input::Persisted { id });
    actions
        .into_iter()
        .find_map(|action| match action {
            Action::Broadcast {
                message: Message::Observation(observation),
            } => Some(observation),
            _ => None,
        })
        .expect("then broadcast")
}

#[test]
fn each_epoch_is_signed_under_the_version_governing_it_and_sent_to_its_members() {
    let mut member = engine(0, sets(), RestoredState::default());
    let start = member.handle(at_epoch_end(3) - 1, Input::Start);
    assert_eq!(
        resend_timers(&start),
        1,
        "one re-send round for both instances"
    );
    assert_eq!(
        epoch_end_timers(&start),
        vec![3, SWITCH],
        "version 1 arms the running epoch, version 2 its first"
    );
    let before = observe(&mut member, 4);
    assert_eq!(before.signer_set_version, 1);
    let after = observe(&mut member, SWITCH);
    assert_eq!(after.signer_set_version, 2);
    assert_eq!(after.author, 0);
    let keys_of = |peers: Vec<u16>| -> Vec<[u8; 32]> {
        peers
            .into_iter()
            .map(|peer| member.roster()[usize::from(peer)])
            .collect()
    };
    assert_eq!(
        keys_of(member.recipients(4)),
        [1, 2, 3].map(|i| key(i).public())
    );
    assert_eq!(
        keys_of(member.recipients(SWITCH)),
        [1, 2, 4, 5].map(|i| key(i).public())
    );
    assert_eq!(member.signer_set(SWITCH).unwrap().threshold, 4);
    assert_eq!(member.active_peers().len(), 5, "keys 1 to 5");
}

#[test]
fn a_peer_counts_only_for_the_epochs_of_the_versions_it_belongs_to() {
    let mut member = engine(0, sets(), RestoredState::default());
    let now = at_epoch_end(SWITCH);
    member.handle(now - 1, Input::Start);
    let from_key = |i: u8| member.peer_of_key(&key(i).public()).unwrap();
    let (old, new) = (from_key(3), from_key(4));
    let observation = |author_key: u8, author: u16, version: u32, epoch: u64| {
        let config = ProtocolConfig {
            signer_set: sets()[version as usize - 1].clone(),
            ..template()
        };
        let digest = observation_digest(&config, epoch, &values());
        Message::Observation(Observation {
            epoch,
            signer_set_version: version,
            author,
            signature: key(author_key).sign(&digest),
            values: values(),
        })
    };
    let refused = |actions: &[Action]| {
        actions.iter().find_map(|action| match action {
            Action::Rejected { from, reason } => Some((*from, reason.clone())),
            _ => None,
        })
    };
    // Key 4 joins at the switch: before it, it is nobody.
    let early = member.handle(
        now,
        Input::Message {
            from: new,
            message: observation(4, 3, 1, 4),
        },
    );
    assert_eq!(refused(&early), Some((Some(new), Rejection::NotAMember)));
    // Key 3 left at the switch, but its epoch 4 observation still counts.
    let leaving = member.handle(
        now,
        Input::Message {
            from: old,
            message: observation(3, 3, 1, 4),
        },
    );
    assert_eq!(refused(&leaving), None);
    let late = member.handle(
        now,
        Input::Message {
            from: old,
            message: observation(3, 3, 2, SWITCH),
        },
    );
    assert_eq!(refused(&late), Some((Some(old), Rejection::NotAMember)));
    // Key 4 signs as member 3 of version 2.
    let joined = member.handle(
        now,
        Input::Message {
            from: new,
            message: observation(4, 3, 2, SWITCH),
        },
    );
    assert_eq!(refused(&joined), None);
    assert_eq!(member.metrics().observations_accepted, 2);
    assert_eq!(member.instance(4).unwrap().held_observations(4), 1);
    assert_eq!(
        member.instance(SWITCH).unwrap().held_observations(SWITCH),
        1
    );
}

#[test]
fn a_version_learned_while_running_takes_its_epochs_and_their_timers_once() {
    let mut member = engine(0, vec![sets().remove(0)], RestoredState::default());
    // Learned late, during the switch epoch: version 1 already armed its end.
    let now = at_epoch_end(SWITCH - 1) + 1;
    let start = member.handle(now, Input::Start);
    assert_eq!(epoch_end_timers(&start), vec![SWITCH]);
    let learned = member.learn(now, sets().remove(1)).unwrap();
    assert!(epoch_end_timers(&learned).is_empty(), "{learned:?}");
    assert_eq!(resend_timers(&learned), 0, "the engine's round covers it");
    assert!(
        member.learn(now, sets().remove(1)).unwrap().is_empty(),
        "a known version changes nothing"
    );
    // The switch epoch ends: version 2 measures it and arms the next; version 1 is done.
    let end = member.handle(
        at_epoch_end(SWITCH),
        Input::Timer(Timer::EpochEnd { epoch: SWITCH }),
    );
    assert!(end.contains(&Action::Measure { epoch: SWITCH }));
    assert_eq!(epoch_end_timers(&end), vec![SWITCH + 1]);
    assert_eq!(observe(&mut member, SWITCH).signer_set_version, 2);
}

#[test]
fn a_joining_member_waits_for_its_first_epoch() {
    let mut member = engine(5, sets(), RestoredState::default());
    let start = member.handle(at_epoch_end(2) - 1, Input::Start);
    assert_eq!(epoch_end_timers(&start), vec![SWITCH]);
    assert!(member.instance(4).is_none() && member.recipients(4).is_empty());
    assert!(!start.iter().any(|a| matches!(a, Action::Measure { .. })));
    assert_eq!(member.active_peers().len(), 4, "version 2's other members");
}

#[test]
fn persist_ids_of_two_instances_never_collide() {
    let mut member = engine(0, sets(), RestoredState::default());
    let now = at_epoch_end(SWITCH);
    member.handle(now - 1, Input::Start);
    let persist_id = |actions: Vec<Action>| {
        actions
            .into_iter()
            .find_map(|action| match action {
                Action::Persist { id, .. } => Some(id),
                _ => None,
            })
            .unwrap()
    };
    let measured = |epoch| Input::Measured {
        epoch,
        values: Some(values()),
    };
    let first = persist_id(member.handle(now, measured(4)));
    let second = persist_id(member.handle(now, measured(SWITCH)));
    assert_ne!(first, second);
    // Acknowledging the second sends version 2's observation, not version 1's.
    let sent = member.handle(now, Input::Persisted { id: second });
    assert!(sent.iter().any(|action| matches!(
        action,
        Action::Broadcast { message: Message::Observation(o) } if o.epoch == SWITCH && o.signer_set_version == 2
    )));
}

#[test]
fn a_member_restarted_after_the_switch_resends_its_pre_switch_observation_unchanged() {
    let mut before = engine(0, sets(), RestoredState::default());
    before.handle(at_epoch_end(4) - 1, Input::Start);
    let stored = observe(&mut before, 4);
    // Restarted in epoch 6 with both versions: epoch 4 is still version 1's.
    let now = at_epoch_end(SWITCH) + 1;
    let mut after = engine(
        0,
        sets(),
        RestoredState {
            own_observations: vec![stored.clone()],
            ..RestoredState::default()
        },
    );
    let start = after.handle(now, Input::Start);
    assert!(start.contains(&Action::Measure { epoch: 4 }));
    assert!(start.contains(&Action::Measure { epoch: SWITCH }));
    let resent = after.handle(
        now,
        Input::Measured {
            epoch: 4,
            values: Some(values()),
        },
    );
    assert!(
        resent.contains(&Action::Broadcast {
            message: Message::Observation(stored)
        }),
        "the stored version 1 bytes, not a version 2 signature: {resent:?}"
    );
}

#[test]
fn an_instance_is_retired_once_its_epochs_left_the_window() {
    let mut member = engine(0, sets(), RestoredState::default());
    member.handle(at_epoch_end(4), Input::Start);
    assert!(member.instance(4).is_some());
    assert!(
        member
            .active_peers()
            .contains(&member.peer_of_key(&key(3).public()).unwrap())
    );
    // Window: catch_up_epochs = 2 plus the running epoch's predecessor, so from epoch 10 on
    // version 1's epochs (< 5) are out.
    let generation = member.peers_generation();
    member.handle(at_epoch_end(9) + 1, Input::Timer(Timer::Resend));
    assert!(member.instance(4).is_none());
    assert_ne!(member.peers_generation(), generation, "the network is told");
    assert!(member.signer_set(4).is_none());
    assert!(
        !member
            .active_peers()
            .contains(&member.peer_of_key(&key(3).public()).unwrap()),
        "key 3 is no longer needed"
    );
}

#[test]
fn a_version_learned_after_its_first_epoch_ended_takes_it_over_under_its_own_version() {
    let mut member = engine(0, vec![sets().remove(0)], RestoredState::default());
    member.handle(at_epoch_end(SWITCH - 1) + 1, Input::Start);
    // The switch epoch ends before the node has read version 2: version 1 works on it.
    let end = member.handle(
        at_epoch_end(SWITCH),
        Input::Timer(Timer::EpochEnd { epoch: SWITCH }),
    );
    assert!(end.contains(&Action::Measure { epoch: SWITCH }));
    assert_eq!(observe(&mut member, SWITCH).signer_set_version, 1);
    // Version 2 is read late: it takes the epoch over, measures it again and signs under its
    // own version (the store keeps both observations apart, see relayer-store's tests).
    let now = at_epoch_end(SWITCH) + 500;
    let learned = member.learn(now, sets().remove(1)).unwrap();
    assert!(
        learned.contains(&Action::Measure { epoch: SWITCH }),
        "{learned:?}"
    );
    let taken_over = observe(&mut member, SWITCH);
    assert_eq!(taken_over.signer_set_version, 2);
    assert!(!member.instance(4).unwrap().governs(SWITCH));
}

#[test]
fn a_version_the_member_cannot_work_under_still_ends_the_previous_one() {
    let mut member = engine(0, vec![sets().remove(0)], RestoredState::default());
    let now = at_epoch_end(3);
    member.handle(now, Input::Start);
    let generation = member.peers_generation();
    // Threshold 1 of 5 breaks 3t > n.
    let broken = set(2, SWITCH, 1, &[0, 1, 2, 4, 5]);
    assert!(member.learn(now, broken).is_err());
    assert_eq!(member.latest_version(), Some(2), "known, so not read again");
    assert!(
        member.instance(SWITCH).is_none(),
        "abstains from its epochs"
    );
    assert!(
        !member.instance(4).unwrap().governs(SWITCH),
        "never under version 1"
    );
    assert!(member.recipients(SWITCH).is_empty());
    assert_ne!(member.peers_generation(), generation);
    assert!(member.take_notes()[0].contains("version 2"));
}

#[test]
fn an_operator_observation_threshold_that_does_not_fit_a_version_gives_way_to_n_minus_f() {
    // k = 3 fits n = 4 (3..=3) but not n = 7 (5..=5).
    let seven = set(2, SWITCH, 5, &[0, 1, 2, 3, 4, 5, 6]);
    let mut member = Engine::new(
        template(),
        Some(3),
        key(0),
        RestoredState::default(),
        vec![sets().remove(0), seven],
    )
    .unwrap();
    let config = |epoch| {
        member
            .instance(epoch)
            .unwrap()
            .config()
            .observation_threshold
    };
    assert_eq!((config(4), config(SWITCH)), (3, 5));
    let notes = member.take_notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("observation threshold 3"), "{notes:?}");
}

#[test]
fn a_stale_submission_outcome_never_moves_the_instance_that_took_the_epoch_over() {
    let mut member = engine(0, vec![sets().remove(0)], RestoredState::default());
    member.handle(at_epoch_end(SWITCH - 1) + 1, Input::Start);
    member.handle(
        at_epoch_end(SWITCH),
        Input::Timer(Timer::EpochEnd { epoch: SWITCH }),
    );
    observe(&mut member, SWITCH);
    let now = at_epoch_end(SWITCH) + 500;
    member.learn(now, sets().remove(1)).unwrap();
    // An outcome of a submission version 2 never made (version 1's, refused by the contract):
    // no backoff, no retry timer, so version 2 neither waits for it nor submits early.
    let stale = member.handle(
        now,
        Input::Submitted {
            epoch: SWITCH,
            record: None,
            tx_ref: None,
        },
    );
    assert!(stale.is_empty(), "{stale:?}");
}
