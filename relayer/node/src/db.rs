//! The node's database as the async runtime uses it: one connection for the protocol's
//! writes (echo decisions, official data, certificates, submissions), one for the uptime
//! sampler, and a small pool of read-only connections for the public API. All SQLite work runs
//! on tokio's blocking threads, never on the async workers, and protocol writes never queue
//! behind public reads: they have their own connection, and in WAL mode readers do not block
//! the writer.

use std::path::Path;
use std::sync::{Arc, Mutex};

use relayer_store::{Store, StoreError};
use thiserror::Error;
use tokio::sync::Semaphore;

/// Read-only connections for the public API.
pub const API_READERS: usize = 4;

/// A database operation that did not complete.
#[derive(Debug, Error)]
pub enum DbError {
    /// SQLite said no.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The blocking task was cancelled or panicked.
    #[error("database task failed: {0}")]
    Task(String),
}

/// The node's connections.
pub struct Db {
    protocol: Arc<Store>,
    sampler: Arc<Store>,
    readers: Mutex<Vec<Store>>,
    permits: Semaphore,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

impl Db {
    /// Opens (creating and migrating) the database at `path` with every connection.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::from_store(Store::open(path)?)
    }

    /// Builds the connections around an open (migrated) protocol connection.
    pub fn from_store(protocol: Store) -> Result<Self, StoreError> {
        protocol.make_durable()?;
        let sampler = protocol.open_writer()?;
        let readers = (0..API_READERS)
            .map(|_| protocol.open_reader())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            protocol: Arc::new(protocol),
            sampler: Arc::new(sampler),
            readers: Mutex::new(readers),
            permits: Semaphore::new(API_READERS),
        })
    }

    /// Runs `work` on the protocol's connection (its writes and reads), on a blocking thread.
    pub async fn protocol<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        run_blocking(self.protocol.clone(), work).await
    }

    /// Runs `work` on the sampler's connection, on a blocking thread.
    pub async fn sampler<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        run_blocking(self.sampler.clone(), work).await
    }

    /// Runs `work` on one of the read-only connections of the public API, on a blocking
    /// thread; waits (asynchronously) while all of them are busy.
    pub async fn public<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|err| DbError::Task(err.to_string()))?;
        let reader = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop()
            .ok_or_else(|| DbError::Task("no free reader despite a permit".into()))?;
        let (reader, result) = tokio::task::spawn_blocking(move || {
            let result = work(&reader);
            (reader, result)
        })
        .await
        .map_err(|err| DbError::Task(err.to_string()))?;
        self.readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(reader);
        Ok(result?)
    }

    /// A new read-only connection of the caller's own, for synchronous inspection (devnets,
    /// benchmarks, tests).
    pub fn inspector(&self) -> Result<Store, StoreError> {
        self.protocol.open_reader()
    }
}

async fn run_blocking<T, F>(store: Arc<Store>, work: F) -> Result<T, DbError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
{
    let result = tokio::task::spawn_blocking(move || work(&store))
        .await
        .map_err(|err| DbError::Task(err.to_string()))?;
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn protocol_writes_complete_while_every_api_reader_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("node.sqlite")).unwrap());
        // Occupy every reader with a read that waits until released.
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let mut busy = Vec::new();
        let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..API_READERS {
            let (db, release_rx, started_tx) = (db.clone(), release_rx.clone(), started_tx.clone());
            busy.push(tokio::spawn(async move {
                db.public(move |store| {
                    let _ = started_tx.send(());
                    let count = store.latest_official_epoch();
                    let _ = release_rx.lock().map(|rx| rx.recv());
                    count
                })
                .await
            }));
        }
        for _ in 0..API_READERS {
            started_rx.recv().await.unwrap();
        }
        // A further read must wait for a free reader...
        let queued = tokio::spawn({
            let db = db.clone();
            async move { db.public(|store| store.latest_official_epoch()).await }
        });
        // ...while the protocol's write goes through.
        let written = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            db.protocol(|store| {
                store.save_echo_decision(&relayer_protocol::StoredDecision {
                    epoch: 3,
                    signer_set_version: 1,
                    proposer: 1,
                    data_hash: [9; 32],
                })
            }),
        )
        .await
        .expect("the protocol write waited on API reads")
        .unwrap();
        assert_eq!(written, [9; 32]);
        assert!(!queued.is_finished(), "the fifth read waits for a reader");
        for _ in 0..API_READERS + 1 {
            let _ = release_tx.send(());
        }
        for task in busy {
            assert_eq!(task.await.unwrap().unwrap(), None);
        }
        assert_eq!(queued.await.unwrap().unwrap(), None);
    }
}
