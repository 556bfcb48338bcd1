//! SQLite storage (rusqlite, bundled, WAL): raw samples and per-epoch running sums, echo
//! decisions, certificates, official data and submission attempts. Versioned migrations.
//!
//! Durability: WAL with `synchronous = NORMAL` survives a crash or kill of the process (what
//! "acknowledged" means to the protocol); it does not promise durability across a power loss.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use cosmwasm_std::HexBinary;
use nym_rewards::msg::{MixnodeReward, SignerSignature};
use relayer_protocol::Certificate;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Storage failures.
#[derive(Debug, Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored JSON column is corrupt.
    #[error("corrupt stored record: {0}")]
    Corrupt(String),
    /// The database is newer than this binary.
    #[error("database schema version {found} is newer than this binary's {supported}")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Newest version known here.
        supported: i64,
    },
}

/// One sample: a mixnode's uptime percentage at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Epoch the sample belongs to.
    pub epoch: u64,
    /// The mixnode.
    pub mix_id: u32,
    /// When, unix milliseconds.
    pub at_ms: u64,
    /// Uptime, 0..=100 percent.
    pub uptime_pct: u8,
}

/// Where a node's official copy of an epoch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OfficialSource {
    /// This node's own submission won.
    Own,
    /// Fetched from the winner's API and verified.
    Peer,
    /// Read from the contract (the winner could not be reached).
    Contract,
}

impl OfficialSource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Own => "own",
            Self::Peer => "peer",
            Self::Contract => "contract",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "own" => Self::Own,
            "peer" => Self::Peer,
            _ => Self::Contract,
        }
    }
}

/// The official data of an epoch as a node serves it: data plus signatures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OfficialEpoch {
    /// The epoch.
    pub epoch: u64,
    /// Signer-set version that certified it.
    pub signer_set_version: u32,
    /// sha256 of the reward records (hex).
    #[schema(value_type = String)]
    pub data_hash: HexBinary,
    /// Rewards, ascending by mix id.
    pub rewards: Vec<MixnodeReward>,
    /// Signatures with signer indices, ascending.
    pub signatures: Vec<SignerSignature>,
    /// Chain address of the submitter.
    pub submitter: String,
    /// Block height of the submission.
    pub height: u64,
    /// Where this node got it.
    pub source: OfficialSource,
    /// Transaction reference, when this node submitted it.
    pub tx_ref: Option<String>,
}

/// Outcome of one submission attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionOutcome {
    /// Our transaction stored the epoch.
    Accepted,
    /// Someone else's did.
    Lost,
    /// Not stored (yet); retried later.
    Failed,
}

/// Counts of submission attempts by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SubmissionStats {
    /// Attempts.
    pub attempted: u64,
    /// Accepted.
    pub accepted: u64,
    /// Lost to another member.
    pub lost: u64,
    /// Failed.
    pub failed: u64,
}

const MIGRATIONS: &[&str] = &[
    // 1: initial schema
    "CREATE TABLE samples (epoch INTEGER NOT NULL, mix_id INTEGER NOT NULL, at_ms INTEGER NOT NULL, uptime_pct INTEGER NOT NULL);
     CREATE INDEX samples_epoch ON samples(epoch);
     CREATE TABLE epoch_sums (epoch INTEGER NOT NULL, mix_id INTEGER NOT NULL, sum INTEGER NOT NULL, count INTEGER NOT NULL,
                              PRIMARY KEY (epoch, mix_id)) WITHOUT ROWID;
     CREATE TABLE echo_decisions (epoch INTEGER NOT NULL, proposer INTEGER NOT NULL, data_hash BLOB NOT NULL,
                                  PRIMARY KEY (epoch, proposer)) WITHOUT ROWID;
     CREATE TABLE certificates (epoch INTEGER PRIMARY KEY, body TEXT NOT NULL);
     CREATE TABLE official (epoch INTEGER PRIMARY KEY, body TEXT NOT NULL, source TEXT NOT NULL, stored_at_ms INTEGER NOT NULL);
     CREATE TABLE submissions (id INTEGER PRIMARY KEY AUTOINCREMENT, epoch INTEGER NOT NULL, at_ms INTEGER NOT NULL, outcome TEXT NOT NULL);",
];

/// A node's database.
pub struct Store {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let store = Self {
            conn: Mutex::new(conn),
        };
        store.migrate()?;
        Ok(store)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back), so a poisoned lock is safe to reuse.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::TooNew {
                found: version,
                supported,
            });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(migration)?;
            tx.pragma_update(None, "user_version", index as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Stores a batch of samples and updates the running sums, in one transaction.
    pub fn insert_samples(&self, samples: &[Sample]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO samples (epoch, mix_id, at_ms, uptime_pct) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut sum = tx.prepare_cached(
                "INSERT INTO epoch_sums (epoch, mix_id, sum, count) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT (epoch, mix_id) DO UPDATE SET sum = sum + excluded.sum, count = count + 1",
            )?;
            for sample in samples {
                insert.execute(params![
                    sample.epoch as i64,
                    sample.mix_id,
                    sample.at_ms as i64,
                    sample.uptime_pct
                ])?;
                sum.execute(params![
                    sample.epoch as i64,
                    sample.mix_id,
                    sample.uptime_pct
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Per-mixnode averages of `epoch` in basis points for `mixnodes` (0 where no sample),
    /// from the running sums: O(M), not O(samples). `None` when the epoch has no samples.
    pub fn epoch_averages(
        &self,
        epoch: u64,
        mixnodes: &[u32],
    ) -> Result<Option<Vec<MixnodeReward>>, StoreError> {
        let conn = self.conn();
        let mut query =
            conn.prepare_cached("SELECT mix_id, sum, count FROM epoch_sums WHERE epoch = ?1")?;
        let sums: std::collections::HashMap<u32, (u64, u64)> = query
            .query_map(params![epoch as i64], |row| {
                Ok((
                    row.get::<_, u32>(0)?,
                    (row.get::<_, i64>(1)? as u64, row.get::<_, i64>(2)? as u64),
                ))
            })?
            .collect::<Result<_, _>>()?;
        if sums.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            mixnodes
                .iter()
                .map(|&mix_id| {
                    let (sum, count) = sums.get(&mix_id).copied().unwrap_or((0, 0));
                    // sum / count percent = sum * 100 / count basis points, at most 10000.
                    let uptime_bp = (sum * 100).checked_div(count).unwrap_or(0).min(10_000) as u16;
                    MixnodeReward { mix_id, uptime_bp }
                })
                .collect(),
        ))
    }

    /// Deletes raw samples of epochs before `epoch` (running sums stay).
    pub fn prune_samples_before(&self, epoch: u64) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "DELETE FROM samples WHERE epoch < ?1",
            params![epoch as i64],
        )?)
    }

    /// Raw sample count of an epoch.
    pub fn sample_count(&self, epoch: u64) -> Result<u64, StoreError> {
        let count: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM samples WHERE epoch = ?1",
            params![epoch as i64],
            |row| row.get(0),
        )?;
        Ok(count as u64)
    }

    /// Records an echo decision; an existing decision for the same proposer and epoch is kept
    /// (the first decision is final). Returns the decision in force.
    pub fn save_echo_decision(
        &self,
        epoch: u64,
        proposer: u16,
        data_hash: &[u8; 32],
    ) -> Result<[u8; 32], StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR IGNORE INTO echo_decisions (epoch, proposer, data_hash) VALUES (?1, ?2, ?3)",
            params![epoch as i64, proposer, &data_hash[..]],
        )?;
        let stored: Vec<u8> = conn.query_row(
            "SELECT data_hash FROM echo_decisions WHERE epoch = ?1 AND proposer = ?2",
            params![epoch as i64, proposer],
            |row| row.get(0),
        )?;
        stored
            .try_into()
            .map_err(|_| StoreError::Corrupt("echo decision hash".into()))
    }

    /// Echo decisions of epochs `>= from_epoch`.
    pub fn echo_decisions_since(
        &self,
        from_epoch: u64,
    ) -> Result<Vec<(u64, u16, [u8; 32])>, StoreError> {
        let conn = self.conn();
        let mut query = conn.prepare("SELECT epoch, proposer, data_hash FROM echo_decisions WHERE epoch >= ?1 ORDER BY epoch, proposer")?;
        let rows = query.query_map(params![from_epoch as i64], |row| {
            Ok((
                row.get::<_, i64>(0)? as u64,
                row.get::<_, u16>(1)?,
                row.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (epoch, proposer, hash) = row?;
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| StoreError::Corrupt("echo decision hash".into()))?;
            Ok((epoch, proposer, hash))
        })
        .collect()
    }

    /// Stores this node's certificate for an epoch.
    pub fn save_certificate(&self, certificate: &Certificate) -> Result<(), StoreError> {
        let body = serde_json::to_string(certificate)
            .map_err(|err| StoreError::Corrupt(err.to_string()))?;
        self.conn().execute(
            "INSERT OR REPLACE INTO certificates (epoch, body) VALUES (?1, ?2)",
            params![certificate.epoch as i64, body],
        )?;
        Ok(())
    }

    /// This node's certificate for an epoch.
    pub fn certificate(&self, epoch: u64) -> Result<Option<Certificate>, StoreError> {
        let body: Option<String> = self
            .conn()
            .query_row(
                "SELECT body FROM certificates WHERE epoch = ?1",
                params![epoch as i64],
                |row| row.get(0),
            )
            .optional()?;
        body.map(|body| {
            serde_json::from_str(&body).map_err(|err| StoreError::Corrupt(err.to_string()))
        })
        .transpose()
    }

    /// Stores the official data of an epoch; the first stored copy is kept.
    pub fn save_official(&self, official: &OfficialEpoch, now_ms: u64) -> Result<bool, StoreError> {
        let body =
            serde_json::to_string(official).map_err(|err| StoreError::Corrupt(err.to_string()))?;
        let inserted = self.conn().execute(
            "INSERT OR IGNORE INTO official (epoch, body, source, stored_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![official.epoch as i64, body, official.source.as_str(), now_ms as i64],
        )?;
        Ok(inserted == 1)
    }

    /// The official data of an epoch.
    pub fn official(&self, epoch: u64) -> Result<Option<OfficialEpoch>, StoreError> {
        let row: Option<(String, String)> = self
            .conn()
            .query_row(
                "SELECT body, source FROM official WHERE epoch = ?1",
                params![epoch as i64],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        row.map(|(body, source)| {
            let mut official: OfficialEpoch =
                serde_json::from_str(&body).map_err(|err| StoreError::Corrupt(err.to_string()))?;
            official.source = OfficialSource::parse(&source);
            Ok(official)
        })
        .transpose()
    }

    /// When (wall clock, ms) this node stored the official data of an epoch.
    pub fn official_stored_at(&self, epoch: u64) -> Result<Option<u64>, StoreError> {
        let stored_at: Option<i64> = self
            .conn()
            .query_row(
                "SELECT stored_at_ms FROM official WHERE epoch = ?1",
                params![epoch as i64],
                |row| row.get(0),
            )
            .optional()?;
        Ok(stored_at.map(|ms| ms.max(0) as u64))
    }

    /// The newest epoch with official data.
    pub fn latest_official_epoch(&self) -> Result<Option<u64>, StoreError> {
        let epoch: Option<i64> =
            self.conn()
                .query_row("SELECT MAX(epoch) FROM official", [], |row| row.get(0))?;
        Ok(epoch.map(|epoch| epoch as u64))
    }

    /// Epochs with official data, `>= from_epoch`.
    pub fn official_epochs_since(&self, from_epoch: u64) -> Result<Vec<u64>, StoreError> {
        let conn = self.conn();
        let mut query =
            conn.prepare("SELECT epoch FROM official WHERE epoch >= ?1 ORDER BY epoch")?;
        let epochs = query.query_map(params![from_epoch as i64], |row| row.get::<_, i64>(0))?;
        epochs.map(|epoch| Ok(epoch? as u64)).collect()
    }

    /// A mixnode's official uptime in the newest `limit` epochs, newest first.
    pub fn mixnode_history(
        &self,
        mix_id: u32,
        limit: usize,
    ) -> Result<Vec<(u64, u16)>, StoreError> {
        let conn = self.conn();
        let mut query = conn.prepare("SELECT body FROM official ORDER BY epoch DESC LIMIT ?1")?;
        let bodies = query.query_map(params![limit as i64], |row| row.get::<_, String>(0))?;
        let mut history = Vec::new();
        for body in bodies {
            let official: OfficialEpoch =
                serde_json::from_str(&body?).map_err(|err| StoreError::Corrupt(err.to_string()))?;
            if let Ok(position) = official
                .rewards
                .binary_search_by_key(&mix_id, |reward| reward.mix_id)
            {
                history.push((official.epoch, official.rewards[position].uptime_bp));
            }
        }
        Ok(history)
    }

    /// Records a submission attempt.
    pub fn record_submission(
        &self,
        epoch: u64,
        at_ms: u64,
        outcome: SubmissionOutcome,
    ) -> Result<(), StoreError> {
        let outcome = match outcome {
            SubmissionOutcome::Accepted => "accepted",
            SubmissionOutcome::Lost => "lost",
            SubmissionOutcome::Failed => "failed",
        };
        self.conn().execute(
            "INSERT INTO submissions (epoch, at_ms, outcome) VALUES (?1, ?2, ?3)",
            params![epoch as i64, at_ms as i64, outcome],
        )?;
        Ok(())
    }

    /// Submission attempts by outcome.
    pub fn submission_stats(&self) -> Result<SubmissionStats, StoreError> {
        let conn = self.conn();
        let mut query =
            conn.prepare("SELECT outcome, COUNT(*) FROM submissions GROUP BY outcome")?;
        let mut stats = SubmissionStats::default();
        for row in query.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
        })? {
            let (outcome, count) = row?;
            stats.attempted += count;
            match outcome.as_str() {
                "accepted" => stats.accepted = count,
                "lost" => stats.lost = count,
                _ => stats.failed += count,
            }
        }
        Ok(stats)
    }

    /// Submission attempts for one epoch.
    pub fn submissions_for(&self, epoch: u64) -> Result<u64, StoreError> {
        let count: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM submissions WHERE epoch = ?1",
            params![epoch as i64],
            |row| row.get(0),
        )?;
        Ok(count as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("node.sqlite")).unwrap();
        (dir, store)
    }

    #[test]
    fn averages_come_from_running_sums() {
        let (_dir, store) = store();
        let samples = [
            Sample {
                epoch: 1,
                mix_id: 1,
                at_ms: 0,
                uptime_pct: 100,
            },
            Sample {
                epoch: 1,
                mix_id: 1,
                at_ms: 1,
                uptime_pct: 50,
            },
            Sample {
                epoch: 1,
                mix_id: 2,
                at_ms: 1,
                uptime_pct: 33,
            },
            Sample {
                epoch: 2,
                mix_id: 1,
                at_ms: 2,
                uptime_pct: 0,
            },
        ];
        store.insert_samples(&samples).unwrap();
        let averages = store.epoch_averages(1, &[1, 2, 3]).unwrap().unwrap();
        assert_eq!(
            averages.iter().map(|r| r.uptime_bp).collect::<Vec<_>>(),
            vec![7_500, 3_300, 0]
        );
        assert!(store.epoch_averages(9, &[1]).unwrap().is_none());
        assert_eq!(store.prune_samples_before(2).unwrap(), 3);
        assert_eq!(store.sample_count(1).unwrap(), 0);
        // Sums survive the pruning of raw samples.
        assert_eq!(
            store.epoch_averages(1, &[1]).unwrap().unwrap()[0].uptime_bp,
            7_500
        );
    }

    #[test]
    fn first_echo_decision_is_final_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.save_echo_decision(4, 1, &[1; 32]).unwrap(), [1; 32]);
            assert_eq!(store.save_echo_decision(4, 1, &[2; 32]).unwrap(), [1; 32]);
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.echo_decisions_since(0).unwrap(),
            vec![(4, 1, [1; 32])]
        );
        assert!(store.echo_decisions_since(5).unwrap().is_empty());
    }

    #[test]
    fn official_data_is_stored_once() {
        let (_dir, store) = store();
        let official = OfficialEpoch {
            epoch: 3,
            signer_set_version: 1,
            data_hash: HexBinary::from(vec![1; 32]),
            rewards: vec![MixnodeReward {
                mix_id: 5,
                uptime_bp: 9_000,
            }],
            signatures: vec![],
            submitter: "wasm1x".into(),
            height: 7,
            source: OfficialSource::Peer,
            tx_ref: None,
        };
        assert!(store.save_official(&official, 1).unwrap());
        let other = OfficialEpoch {
            submitter: "wasm1y".into(),
            ..official.clone()
        };
        assert!(!store.save_official(&other, 2).unwrap());
        assert_eq!(store.official(3).unwrap().unwrap(), official);
        assert_eq!(
            store.official_stored_at(3).unwrap(),
            Some(1),
            "the first copy's time"
        );
        assert_eq!(store.official_stored_at(4).unwrap(), None);
        assert_eq!(store.latest_official_epoch().unwrap(), Some(3));
        assert_eq!(store.mixnode_history(5, 10).unwrap(), vec![(3, 9_000)]);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        drop(Store::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }

    #[test]
    fn submission_stats_count_outcomes() {
        let (_dir, store) = store();
        store
            .record_submission(1, 0, SubmissionOutcome::Accepted)
            .unwrap();
        store
            .record_submission(2, 0, SubmissionOutcome::Lost)
            .unwrap();
        store
            .record_submission(2, 0, SubmissionOutcome::Failed)
            .unwrap();
        let stats = store.submission_stats().unwrap();
        assert_eq!(
            (stats.attempted, stats.accepted, stats.lost, stats.failed),
            (3, 1, 1, 1)
        );
        assert_eq!(store.submissions_for(2).unwrap(), 2);
    }
}
