//! A simulated member: the production protocol instance and the production SQLite store
//! (`relayer-store`, in a named in-memory database), exactly as a node runs them. A crash drops
//! both, the protocol's memory and the store connection; a restart reopens the store and
//! restores from it, as the node does. The world keeps one more connection open (the "disk")
//! so that what the store committed survives the crash, and nothing else does.

use std::sync::atomic::{AtomicU64, Ordering};

use relayer_protocol::{Keypair, PlantedBug, Protocol, ProtocolConfig};
use relayer_store::{Location, Store};

use crate::adversary::Adversary;
use crate::config::SimError;

/// Distinguishes the in-memory databases of concurrent runs in one process.
static DATABASES: AtomicU64 = AtomicU64::new(0);

pub(crate) struct SimNode {
    index: usize,
    pub(crate) key: Keypair,
    /// The running protocol instance; `None` while crashed.
    pub(crate) protocol: Option<Protocol>,
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
            protocol: None,
            store: None,
            disk,
            incarnation: 0,
            adversary: None,
            up_since: 0,
        })
    }

    /// Opens the store and creates the protocol instance from what it holds, as a node's
    /// start does. The caller feeds `Input::Start`.
    pub(crate) fn start(
        &mut self,
        now_ms: u64,
        config: &ProtocolConfig,
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
            .restored_state(config.window_start(now_ms))
            .map_err(|err| failed(err.to_string()))?;
        #[allow(unused_mut)]
        let mut protocol = Protocol::new(config.clone(), self.key.clone(), restored)
            .map_err(|err| failed(err.to_string()))?;
        #[cfg(feature = "planted-bugs")]
        if let Some(bug) = planted {
            store.plant(bug);
            protocol.plant(bug);
        }
        #[cfg(not(feature = "planted-bugs"))]
        let _ = planted;
        self.store = Some(store);
        self.protocol = Some(protocol);
        self.up_since = now_ms;
        Ok(())
    }

    /// Drops the protocol's memory and the store connection.
    pub(crate) fn crash(&mut self) {
        self.protocol = None;
        self.store = None;
        self.incarnation += 1;
    }

    /// Whether the node is up in the given incarnation.
    pub(crate) fn current(&self, incarnation: u32) -> bool {
        self.protocol.is_some() && self.incarnation == incarnation
    }

    /// The official data this node's store holds for `epoch` (read through the disk, so it
    /// works while the node is down too).
    pub(crate) fn official(&self, epoch: u64) -> Option<relayer_store::StoredOfficial> {
        self.disk.official(epoch).ok().flatten()
    }
}
