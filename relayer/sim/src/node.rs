//! A simulated member: the production protocol engine and the production SQLite store
//! (`relayer-store`, in a named in-memory database), exactly as a node runs them. A crash drops
//! both, the protocol's memory and the store connection; a restart reopens the store and
//! restores from it, as the node does. The world keeps one more connection open (the "disk")
//! so that what the store committed survives the crash, and nothing else does.

use std::sync::atomic::{AtomicU64, Ordering};

use relayer_protocol::{Engine, Keypair, PlantedBug, ProtocolConfig, SignerSet};
use relayer_store::{Location, Store};

use crate::adversary::Adversary;
use crate::config::SimError;

/// Distinguishes the in-memory databases of concurrent runs in one process.
static DATABASES: AtomicU64 = AtomicU64::new(0);

pub(crate) struct SimNode {
    index: usize,
    pub(crate) key: Keypair,
    /// The running protocol engine (one instance per signer-set version the node is in);
    /// `None` while crashed.
    pub(crate) engine: Option<Engine>,
    /// The node's store connection; `None` while crashed.
    pub(crate) store: Option<Store>,
    /// Keeps the database alive while the node is down.
    disk: Store,
    /// Bumped on every crash; events of an older incarnation are void.
    pub(crate) incarnation: u32,
    pub(crate) adversary: Option<Adversary>,
    /// Since when the node has been up without a crash (virtual ms).
    pub(crate) up_since: u64,
}

impl SimNode {
    pub(crate) fn new(index: usize, key: Keypair) -> Result<Self, SimError> {
        let name = format!(
            "relayer-sim-{}-{}-{index}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        let disk = Store::open_at(Location::SharedMemory(name)).map_err(|err| SimError::Node {
            node: index,
            reason: err.to_string(),
        })?;
        Ok(Self {
            index,
            key,
            engine: None,
            store: None,
            disk,
            incarnation: 0,
            adversary: None,
            up_since: 0,
        })
    }

    /// Opens the store and creates the protocol engine from what it holds and the signer
    /// `sets` the contract holds for its window, as a node's start does. The caller feeds
    /// `Input::Start`.
    pub(crate) fn start(
        &mut self,
        now_ms: u64,
        config: &ProtocolConfig,
        sets: Vec<SignerSet>,
        planted: Option<PlantedBug>,
    ) -> Result<(), SimError> {
        let failed = |reason: String| SimError::Node {
            node: self.index,
            reason,
        };
        #[allow(unused_mut)]
        let mut store = self
            .disk
            .open_writer()
            .map_err(|err| failed(err.to_string()))?;
        let restored = store
            .restored_state(config.window_start(now_ms), now_ms)
            .map_err(|err| failed(err.to_string()))?;
        store
            .begin_run(&relayer_protocol::wire::mixnode_set_id(&config.mixnodes))
            .map_err(|err| failed(err.to_string()))?;
        #[allow(unused_mut)]
        let mut engine = Engine::new(config.clone(), None, self.key.clone(), restored, sets)
            .map_err(|err| failed(err.to_string()))?;
        #[cfg(feature = "planted-bugs")]
        if let Some(bug) = planted {
            store.plant(bug);
            engine.plant(bug);
        }
        #[cfg(not(feature = "planted-bugs"))]
        let _ = planted;
        self.store = Some(store);
        self.engine = Some(engine);
        self.up_since = now_ms;
        Ok(())
    }

    /// Drops the protocol's memory and the store connection; a graceful stop (at
    /// `clean_stop_ms`) first marks the store clean, as the node's driver does.
    pub(crate) fn crash(&mut self, clean_stop_ms: Option<u64>) {
        if let (Some(at_ms), Some(store)) = (clean_stop_ms, &self.store) {
            // A failed write only makes the restart abstain, as after a crash.
            let _ = store.mark_clean_stop(at_ms);
        }
        self.engine = None;
        self.store = None;
        self.incarnation += 1;
    }

    /// Whether the node is up in the given incarnation.
    pub(crate) fn current(&self, incarnation: u32) -> bool {
        self.engine.is_some() && self.incarnation == incarnation
    }

    /// The official data this node's store holds for `epoch` (read through the disk, so it
    /// works while the node is down too).
    pub(crate) fn official(&self, epoch: u64) -> Option<relayer_store::StoredOfficial> {
        self.disk.official(epoch).ok().flatten()
    }
}
