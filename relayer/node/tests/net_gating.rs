//! Over real libp2p on loopback: only signer-set members can connect and get messages
//! processed; a peer whose key is not in the set is refused; peers are admitted and
//! disconnected as signer sets come and go; a burst of thousands of messages arrives whole,
//! and does not delay another member's message.

use std::sync::Arc;
use std::time::Duration;

use relayer_node::inbox::InboxReceiver;
use relayer_node::metrics::NodeMetrics;
use relayer_node::net::{BoundNet, NetHandle, PeerEntry};
use relayer_protocol::wire::Codec;
use relayer_protocol::{Echo, Keypair, Message};

fn codec() -> Codec {
    Codec::new(&[1, 2, 3])
}

/// The roster of `members` (key and address), each active or not.
fn roster(members: &[([u8; 32], String)], active: &[bool]) -> Vec<PeerEntry> {
    members
        .iter()
        .zip(active)
        .map(|((key, addr), &active)| PeerEntry {
            key: *key,
            addr: addr.clone(),
            active,
        })
        .collect()
}

/// Starts `net`'s swarm task for `members`, all active, with metrics of its own.
fn run(
    net: BoundNet,
    members: &[([u8; 32], String)],
    shutdown: &tokio::sync::watch::Receiver<bool>,
) -> (NetHandle, InboxReceiver) {
    net.run(
        roster(members, &vec![true; members.len()]),
        Arc::new(NodeMetrics::default()),
        shutdown.clone(),
    )
    .expect("the swarm task starts")
}

fn echo(epoch: u64) -> Message {
    Message::Echo(Echo {
        epoch,
        proposer: 0,
        data_hash: [1; 32],
        signature: vec![2; 64],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_get_messages_processed() {
    let secrets = [[1u8; 32], [2u8; 32], [3u8; 32]];
    let keys: Vec<[u8; 32]> = secrets
        .iter()
        .map(|s| Keypair::from_seed(s).public())
        .collect();
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let a = BoundNet::bind(secrets[0], "/ip4/127.0.0.1/tcp/0", codec())
        .await
        .unwrap();
    let b = BoundNet::bind(secrets[1], "/ip4/127.0.0.1/tcp/0", codec())
        .await
        .unwrap();
    let outsider = BoundNet::bind(secrets[2], "/ip4/127.0.0.1/tcp/0", codec())
        .await
        .unwrap();
    let (a_addr, b_addr, c_addr) = (
        a.listen_addr.to_string(),
        b.listen_addr.to_string(),
        outsider.listen_addr.to_string(),
    );

    // The signer set is {A, B}. The outsider believes it is {A, C} and tries to talk to A.
    let members = vec![(keys[0], a_addr.clone()), (keys[1], b_addr)];
    let a_metrics = Arc::new(NodeMetrics::default());
    let (_a_net, mut a_inbound) = a
        .run(
            roster(&members, &[true, true]),
            a_metrics.clone(),
            shutdown.clone(),
        )
        .unwrap();
    let (b_net, _b_inbound) = run(b, &members, &shutdown);
    let (c_net, _c_inbound) = run(outsider, &[(keys[0], a_addr), (keys[2], c_addr)], &shutdown);

    connected(&b_net, 1).await;
    c_net.send(0, &echo(7));
    b_net.send(0, &echo(9));
    let first = tokio::time::timeout(Duration::from_secs(20), a_inbound.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.from, 1,
        "the member's message arrives, attributed to member 1"
    );
    assert_eq!(first.message, echo(9));
    // Keep the outsider trying; nothing it sends is ever delivered.
    for _ in 0..5 {
        c_net.send(0, &echo(7));
    }
    let nothing = tokio::time::timeout(Duration::from_secs(2), a_inbound.recv()).await;
    assert!(
        nothing.is_err(),
        "an outsider's message was processed: {nothing:?}"
    );
    assert_eq!(_a_net.connected_peers(), 1, "only the member is connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_arrives_whole_and_does_not_delay_another_members_message() {
    // Far above yamux's 512 streams per connection: messages leave in batches, so none is
    // lost (one substream per message lost about two thirds of such a burst).
    const FLOOD: usize = 3_000;
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let (bound, members) = bind_members(&[[4u8; 32], [5u8; 32], [6u8; 32]]).await;
    let mut nets = Vec::new();
    let mut inboxes = Vec::new();
    for net in bound {
        let (handle, inbox) = run(net, &members, &shutdown);
        nets.push(handle);
        inboxes.push(inbox);
    }
    // Start once all are connected, so the burst meets open connections (messages sent
    // earlier wait in the sender's queue, but a receiver still admitting its peer may drop
    // them, and this test counts every message).
    for net in &nets {
        connected(net, 2).await;
    }
    let a_inbox = &mut inboxes[0];
    // Member 1 floods member 0, then member 2 sends one message; member 0 reads only once
    // all of them are queued.
    for epoch in 0..FLOOD {
        nets[1].send(0, &echo(epoch as u64));
    }
    queued(a_inbox, FLOOD).await;
    nets[2].send(0, &echo(u64::MAX));
    queued(a_inbox, FLOOD + 1).await;
    let mut senders = Vec::new();
    for _ in 0..2 {
        senders.push(a_inbox.recv().await.unwrap().from);
    }
    assert!(
        senders.contains(&2),
        "member 2's message waits behind the flood: first two from {senders:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_are_admitted_and_disconnected_as_signer_sets_come_and_go() {
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let (bound, members) = bind_members(&[[7u8; 32], [8u8; 32], [9u8; 32]]).await;
    let mut bound = bound.into_iter();
    // A works under a set of A and B only; C is in its roster (a later version names it) but
    // not yet active.
    let (a_net, mut a_inbox) = bound
        .next()
        .unwrap()
        .run(
            roster(&members, &[true, true, false]),
            Arc::new(NodeMetrics::default()),
            shutdown.clone(),
        )
        .unwrap();
    let (b_net, _b_inbox) = run(bound.next().unwrap(), &members, &shutdown);
    let (c_net, _c_inbox) = run(bound.next().unwrap(), &members, &shutdown);
    c_net.send(0, &echo(1));
    let first = send_until_received(&b_net, &echo(2), &mut a_inbox).await;
    assert_eq!(first.from, 1);
    assert!(a_inbox.queued() == 0, "C is not admitted yet");

    // A version naming C is learned: C gets in, under its roster position.
    a_net.set_peers(roster(&members, &[true, true, true]));
    let joined = send_until_received(&c_net, &echo(3), &mut a_inbox).await;
    assert_eq!(joined.from, 2);

    // The version with B retires: B is disconnected and refused, C still gets through.
    a_net.set_peers(roster(&members, &[true, false, true]));
    // A was connected to B and C; once the change is applied only C is left.
    poll_until(Duration::from_secs(20), || a_net.connected_peers() == 1)
        .await
        .expect("A drops its connection to B");
    b_net.send(0, &echo(4));
    let after = send_until_received(&c_net, &echo(5), &mut a_inbox).await;
    assert_eq!(after.from, 2);
    // Only C's re-sent copies may still come; nothing from B.
    let from_b = async {
        while let Some(inbound) = a_inbox.recv().await {
            if inbound.from == 1 {
                return inbound;
            }
        }
        std::future::pending().await
    };
    let nothing = tokio::time::timeout(Duration::from_secs(2), from_b).await;
    assert!(
        nothing.is_err(),
        "a retired member's message was processed: {nothing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emulated_link_delay_holds_every_message_back() {
    const DELAY: Duration = Duration::from_millis(300);
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let (bound, members) = bind_members(&[[10u8; 32], [11u8; 32]]).await;
    let mut bound = bound.into_iter();
    let (a, b) = (bound.next().unwrap(), bound.next().unwrap());
    let to_b = members[1].0;
    let a = a.with_link_delay(Arc::new(
        move |key: &[u8; 32]| {
            if *key == to_b { DELAY } else { Duration::ZERO }
        },
    ));
    let (a_net, _a_inbox) = run(a, &members, &shutdown);
    let (_b_net, mut b_inbox) = run(b, &members, &shutdown);
    // Time messages sent once connected.
    connected(&a_net, 1).await;
    let _ = send_until_received_at(&a_net, 1, &echo(0), &mut b_inbox).await;
    let sent = std::time::Instant::now();
    for epoch in 1..=50 {
        a_net.send(1, &echo(epoch));
    }
    let mut arrived = Vec::new();
    for _ in 1..=50 {
        arrived.push(next(&mut b_inbox).await.message.epoch());
        if arrived.len() == 1 {
            assert!(sent.elapsed() >= DELAY, "held back by the link's delay");
        }
    }
    // Batches travel in parallel substreams, so the transport does not promise order; the
    // protocol does not need it.
    arrived.sort_unstable();
    assert_eq!(arrived, (1..=50).collect::<Vec<u64>>());
}

/// Binds a swarm on an ephemeral loopback port for each secret; returns them with the roster
/// entries (key and address) in the same order.
async fn bind_members(secrets: &[[u8; 32]]) -> (Vec<BoundNet>, Vec<([u8; 32], String)>) {
    let mut bound = Vec::new();
    let mut members = Vec::new();
    for secret in secrets {
        let net = BoundNet::bind(*secret, "/ip4/127.0.0.1/tcp/0", codec())
            .await
            .expect("binding on loopback");
        members.push((
            Keypair::from_seed(secret).public(),
            net.listen_addr.to_string(),
        ));
        bound.push(net);
    }
    (bound, members)
}

/// Sends `message` to member 0 every half second, as the protocol's re-send rounds do (a
/// message sent while a connection is being admitted may be lost), until `inbox` gets it;
/// returns it as received (at most 20 s).
async fn send_until_received(
    net: &NetHandle,
    message: &Message,
    inbox: &mut InboxReceiver,
) -> relayer_node::inbox::Inbound {
    send_until_received_at(net, 0, message, inbox).await
}

/// [`send_until_received`] to member `to`.
async fn send_until_received_at(
    net: &NetHandle,
    to: u16,
    message: &Message,
    inbox: &mut InboxReceiver,
) -> relayer_node::inbox::Inbound {
    let wait = async {
        loop {
            net.send(to, message);
            let deadline = tokio::time::sleep(Duration::from_millis(500));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    inbound = inbox.recv() => {
                        let inbound = inbound.expect("the inbox is open");
                        if inbound.message == *message {
                            return inbound;
                        }
                    }
                    _ = &mut deadline => break,
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("the message within 20 s")
}

/// Waits until `holds` (checked every 20 ms), at most `within`; an error once that passed.
async fn poll_until(
    within: Duration,
    holds: impl Fn() -> bool,
) -> Result<(), tokio::time::error::Elapsed> {
    let wait = async {
        while !holds() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(within, wait).await
}

/// Waits until `net` is connected to `count` peers (at most 20 s).
async fn connected(net: &NetHandle, count: usize) {
    poll_until(Duration::from_secs(20), || net.connected_peers() >= count)
        .await
        .expect("connected within 20 s");
}

/// The next message in `inbox` (at most 20 s away).
async fn next(inbox: &mut InboxReceiver) -> relayer_node::inbox::Inbound {
    tokio::time::timeout(Duration::from_secs(20), inbox.recv())
        .await
        .expect("a message within 20 s")
        .expect("the inbox is open")
}

/// Waits until `inbox` holds `count` messages (at most a minute).
async fn queued(inbox: &InboxReceiver, count: usize) {
    poll_until(Duration::from_secs(60), || inbox.queued() >= count)
        .await
        .unwrap_or_else(|_| panic!("{} of {count} messages queued", inbox.queued()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_running_another_mixnode_set_is_refused_not_misread() {
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let secrets = [[4u8; 32], [5u8; 32]];
    let a = BoundNet::bind(secrets[0], "/ip4/127.0.0.1/tcp/0", codec())
        .await
        .unwrap();
    let other_set = Codec::new(&[1, 2, 4]);
    assert_ne!(other_set.protocol_id(), codec().protocol_id());
    let b = BoundNet::bind(secrets[1], "/ip4/127.0.0.1/tcp/0", other_set)
        .await
        .unwrap();
    let members = vec![
        (
            Keypair::from_seed(&secrets[0]).public(),
            a.listen_addr.to_string(),
        ),
        (
            Keypair::from_seed(&secrets[1]).public(),
            b.listen_addr.to_string(),
        ),
    ];
    let (_a_net, mut a_inbox) = run(a, &members, &shutdown);
    let b_metrics = Arc::new(NodeMetrics::default());
    let (b_net, _b_inbox) = b
        .run(
            roster(&members, &[true, true]),
            b_metrics.clone(),
            shutdown.clone(),
        )
        .unwrap();
    // The two connect (same signer set), but B's message protocol names another set: A
    // never speaks it, so B's first stream to A is refused as unsupported (at connection,
    // before any message), and B's message never reaches A.
    b_net.send(0, &echo(3));
    poll_until(Duration::from_secs(20), || {
        b_metrics
            .messages_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
            && b_net.connected_peers() == 0
    })
    .await
    .expect("the message is refused as another protocol, and A no longer counts as connected");
    let pending = tokio::time::timeout(Duration::ZERO, a_inbox.recv()).await;
    assert!(pending.is_err(), "nothing reached A: {pending:?}");
}
