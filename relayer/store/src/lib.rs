//! A node's SQLite storage (rusqlite, bundled, WAL): raw uptime samples and per-epoch running
//! sums, echo decisions, certificates, official data (with a per-mixnode index) and submission
//! attempts. Versioned migrations. No async runtime: the node calls it from blocking threads,
//! the simulator directly.
//!
//! Each [`Store`] is one connection. A node opens one per role (protocol writes, sampling, a
//! few for API reads), so protocol writes never wait behind public reads: in WAL mode readers
//! and the writer do not block each other.
//!
//! The `planted-bugs` feature turns on `relayer-protocol`'s, whose release guard refuses a
//! build without debug assertions.
//!
//! Durability: WAL with `synchronous = NORMAL` survives a crash or kill of the process; the
//! node's protocol connection ([`Store::make_durable`]) commits with `synchronous = FULL`, so
//! what it acknowledges to the protocol (observations, echo decisions, the clean-stop mark)
//! survives a power loss too. Samples, written by their own connection, may lose their last
//! second.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use nym_rewards::msg::MixnodeReward;
use nym_rewards::rules::MAX_UPTIME_BP;
use relayer_protocol::{
    Certificate, Observation, OfficialEpoch, OfficialSource, PersistRecord, RestoredState,
    StoredDecision,
};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
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

/// A node's official copy of an epoch: the data, where it came from and, when this node's
/// submission won, its transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredOfficial {
    /// The data.
    #[serde(flatten)]
    pub official: OfficialEpoch,
    /// Where this node got it.
    pub source: OfficialSource,
    /// Transaction reference, when this node submitted it.
    pub tx_ref: Option<String>,
}

/// How [`Store::persist`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persisted {
    /// Written now.
    Written,
    /// The same record was already there (an earlier incarnation wrote it).
    AlreadyHeld,
    /// A different record is there and was kept: a second echo decision for one proposer and
    /// epoch (must not be acknowledged), or a second, different official copy.
    Conflicting,
}

impl Persisted {
    /// Whether the protocol may count `record` as durable. A conflicting echo decision or own
    /// observation is not (the member must not sign, or send, a second one); a conflicting
    /// official copy is (the first is kept and the epoch is done; the conflict is for the
    /// logs).
    pub fn acknowledges(self, record: &PersistRecord) -> bool {
        match self {
            Persisted::Written | Persisted::AlreadyHeld => true,
            Persisted::Conflicting => matches!(record, PersistRecord::Official { .. }),
        }
    }
}

/// Outcome of one submission attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "lowercase")]
pub enum SubmissionOutcome {
    /// Our transaction stored the epoch.
    Accepted,
    /// Someone else's did.
    Lost,
    /// Not stored (yet); retried later.
    Failed,
}

relayer_protocol::derived_names!(SubmissionOutcome, "submission outcome");

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

fn connect(location: &Location) -> Result<Connection, StoreError> {
    let conn = match location {
        Location::File(path) => {
            let conn = Connection::open(path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn
        }
        Location::SharedMemory(name) => Connection::open_with_flags(
            format!("file:{name}?mode=memory&cache=shared"),
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?,
    };
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// The JSON body a record is stored as; `what` names it in the error.
fn to_body(what: &str, value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|err| StoreError::Corrupt(format!("{what}: {err}")))
}

/// A record read back from its JSON body; `what` names it in the error.
fn from_body<T: serde::de::DeserializeOwned>(what: &str, body: &str) -> Result<T, StoreError> {
    serde_json::from_str(body).map_err(|err| StoreError::Corrupt(format!("{what}: {err}")))
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
    // 2: a mixnode's official history by index instead of parsing every stored epoch
    "CREATE TABLE official_rewards (mix_id INTEGER NOT NULL, epoch INTEGER NOT NULL, uptime_bp INTEGER NOT NULL,
                                    PRIMARY KEY (mix_id, epoch)) WITHOUT ROWID;
     INSERT INTO official_rewards (mix_id, epoch, uptime_bp)
         SELECT json_extract(reward.value, '$.mix_id'), official.epoch, json_extract(reward.value, '$.uptime_bp')
         FROM official, json_each(official.body, '$.rewards') AS reward;",
    // 3: this member's own observations, stored before they are sent
    "CREATE TABLE own_observations (epoch INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    // 4: decisions and own observations per signer-set version (a member that learned a
    // rotation late worked on the epoch under both); older decisions get version 0, "the
    // version governing the epoch"
    "CREATE TABLE echo_decisions_by_version (epoch INTEGER NOT NULL, version INTEGER NOT NULL, proposer INTEGER NOT NULL,
                                             data_hash BLOB NOT NULL, PRIMARY KEY (epoch, version, proposer)) WITHOUT ROWID;
     INSERT INTO echo_decisions_by_version (epoch, version, proposer, data_hash)
         SELECT epoch, 0, proposer, data_hash FROM echo_decisions;
     DROP TABLE echo_decisions;
     ALTER TABLE echo_decisions_by_version RENAME TO echo_decisions;
     CREATE TABLE own_observations_by_version (epoch INTEGER NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL,
                                               PRIMARY KEY (epoch, version)) WITHOUT ROWID;
     INSERT INTO own_observations_by_version (epoch, version, body)
         SELECT epoch, json_extract(body, '$.signer_set_version'), body FROM own_observations;
     DROP TABLE own_observations;
     ALTER TABLE own_observations_by_version RENAME TO own_observations;",
    // 5: whether the last run stopped cleanly (its store accounts for every signature it made);
    // a store created or upgraded here counts as stopped cleanly; the mixnode set it measured
    "CREATE TABLE run_state (id INTEGER PRIMARY KEY CHECK (id = 1), clean_stop_ms INTEGER,
                             mixnode_set TEXT);
     INSERT INTO run_state (id, clean_stop_ms) VALUES (1, 0);",
];

/// What the previous run left, as [`Store::begin_run`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousRun {
    /// It marked a clean stop ([`Store::mark_clean_stop`]), or the store is new.
    pub stopped_cleanly: bool,
    /// The id of the mixnode set it measured, if one was recorded.
    pub mixnode_set: Option<String>,
}

/// Where a database lives: a file, or (for the simulator) a named in-memory database shared
/// by the connections of one process, which lives as long as one connection to it is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file (WAL).
    File(PathBuf),
    /// `file:<name>?mode=memory&cache=shared`.
    SharedMemory(String),
}

/// One connection to a node's database.
pub struct Store {
    conn: Mutex<Connection>,
    location: Location,
    #[cfg(feature = "planted-bugs")]
    planted: Option<relayer_protocol::PlantedBug>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

/// A transaction that takes the write lock when it begins, so it waits (`busy_timeout`) for
/// another writer. A deferred one that reads first and writes later fails at once with
/// `SQLITE_BUSY` when another connection wrote in between (as a killed node's last write may,
/// while its successor starts on the same file).
fn write_transaction(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

impl Store {
    /// Opens (creating and migrating) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_at(Location::File(path.to_path_buf()))
    }

    /// Opens (creating and migrating) the database at `location`.
    pub fn open_at(location: Location) -> Result<Self, StoreError> {
        let conn = connect(&location)?;
        let store = Self::with_connection(conn, location);
        store.migrate()?;
        Ok(store)
    }

    /// Makes this connection's commits survive a power loss (`synchronous = FULL`: the WAL is
    /// synced at each commit): for the protocol's records, a few per epoch, which must never be
    /// lost once a signature they record was sent.
    pub fn make_durable(&self) -> Result<(), StoreError> {
        self.conn().pragma_update(None, "synchronous", "FULL")?;
        Ok(())
    }

    /// Another connection to the same database, read-only: for answering public reads
    /// without holding this connection.
    pub fn open_reader(&self) -> Result<Self, StoreError> {
        let conn = connect(&self.location)?;
        conn.pragma_update(None, "query_only", "ON")?;
        Ok(Self::with_connection(conn, self.location.clone()))
    }

    /// Another read-write connection to the same database (e.g. for the uptime sampler).
    pub fn open_writer(&self) -> Result<Self, StoreError> {
        Ok(Self::with_connection(
            connect(&self.location)?,
            self.location.clone(),
        ))
    }

    fn with_connection(conn: Connection, location: Location) -> Self {
        Self {
            conn: Mutex::new(conn),
            location,
            #[cfg(feature = "planted-bugs")]
            planted: None,
        }
    }

    /// Switches on a planted bug (tests only). [`relayer_protocol::PlantedBug::ForgetEchoDecisions`]
    /// makes this connection acknowledge echo decisions that vanish when it closes.
    #[cfg(feature = "planted-bugs")]
    pub fn plant(&mut self, bug: relayer_protocol::PlantedBug) {
        self.planted = Some(bug);
    }

    fn forgets_echo_decisions(&self) -> bool {
        #[cfg(feature = "planted-bugs")]
        {
            self.planted == Some(relayer_protocol::PlantedBug::ForgetEchoDecisions)
        }
        #[cfg(not(feature = "planted-bugs"))]
        false
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
            let tx = write_transaction(&mut conn)?;
            tx.execute_batch(migration)?;
            tx.pragma_update(None, "user_version", index as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Stores a batch of samples and updates the running sums, in one transaction.
    pub fn insert_samples(&self, samples: &[Sample]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = write_transaction(&mut conn)?;
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
                    let uptime_bp = (sum * 100)
                        .checked_div(count)
                        .unwrap_or(0)
                        .min(u64::from(MAX_UPTIME_BP)) as u16;
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

    /// Records this member's observation of an epoch; an existing one is kept (the first is
    /// what was sent). Returns the observation in force.
    pub fn save_own_observation(
        &self,
        observation: &Observation,
    ) -> Result<Observation, StoreError> {
        let conn = self.conn();
        let body = to_body("own observation", observation)?;
        let key = params![observation.epoch as i64, observation.signer_set_version];
        conn.execute(
            "INSERT OR IGNORE INTO own_observations (epoch, version, body) VALUES (?1, ?2, ?3)",
            params![
                observation.epoch as i64,
                observation.signer_set_version,
                body
            ],
        )?;
        let held: String = conn.query_row(
            "SELECT body FROM own_observations WHERE epoch = ?1 AND version = ?2",
            key,
            |row| row.get(0),
        )?;
        from_body("own observation", &held)
    }

    /// This member's observations of epochs `>= from_epoch`.
    pub fn own_observations_since(&self, from_epoch: u64) -> Result<Vec<Observation>, StoreError> {
        let conn = self.conn();
        let mut query = conn.prepare(
            "SELECT body FROM own_observations WHERE epoch >= ?1 ORDER BY epoch, version",
        )?;
        let rows = query.query_map(params![from_epoch as i64], |row| row.get::<_, String>(0))?;
        rows.map(|body| from_body("own observation", &body?))
            .collect()
    }

    /// Records an echo decision; an existing decision for the same epoch, signer-set version
    /// and proposer is kept (the first decision is final), and so is one stored before
    /// versions were recorded (version 0, whatever version it was made under). Returns the
    /// decision in force.
    pub fn save_echo_decision(&self, decision: &StoredDecision) -> Result<[u8; 32], StoreError> {
        let StoredDecision {
            epoch,
            signer_set_version: version,
            proposer,
            data_hash,
        } = *decision;
        let conn = self.conn();
        // The planted bug writes to a TEMP table: acknowledged, visible to this connection,
        // gone when it closes, as a write-back cache that is never flushed would be.
        let table = if self.forgets_echo_decisions() {
            conn.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS echo_decisions (epoch INTEGER NOT NULL, version INTEGER NOT NULL,
                     proposer INTEGER NOT NULL, data_hash BLOB NOT NULL, PRIMARY KEY (epoch, version, proposer)) WITHOUT ROWID;",
            )?;
            "temp.echo_decisions"
        } else {
            "main.echo_decisions"
        };
        let legacy: Option<Vec<u8>> = conn
            .query_row(
                &format!(
                    "SELECT data_hash FROM {table} WHERE epoch = ?1 AND version = 0 AND proposer = ?2"
                ),
                params![epoch as i64, proposer],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(legacy) = legacy {
            return legacy
                .try_into()
                .map_err(|_| StoreError::Corrupt("echo decision hash".into()));
        }
        conn.execute(
            &format!(
                "INSERT OR IGNORE INTO {table} (epoch, version, proposer, data_hash) VALUES (?1, ?2, ?3, ?4)"
            ),
            params![epoch as i64, version, proposer, &data_hash[..]],
        )?;
        let stored: Vec<u8> = conn.query_row(
            &format!(
                "SELECT data_hash FROM {table} WHERE epoch = ?1 AND version = ?2 AND proposer = ?3"
            ),
            params![epoch as i64, version, proposer],
            |row| row.get(0),
        )?;
        stored
            .try_into()
            .map_err(|_| StoreError::Corrupt("echo decision hash".into()))
    }

    /// Makes one of the protocol's records durable, as the protocol asked
    /// (`Action::Persist`), and says how it went: the first decision and the first official
    /// copy of an epoch are final, so a different later one is never written over them. The
    /// node and the simulator both persist through this.
    pub fn persist(&self, record: &PersistRecord, now_ms: u64) -> Result<Persisted, StoreError> {
        match record {
            PersistRecord::OwnObservation { observation } => {
                let held = self.save_own_observation(observation)?;
                Ok(if held == *observation {
                    Persisted::Written
                } else {
                    Persisted::Conflicting
                })
            }
            PersistRecord::EchoDecision {
                epoch,
                signer_set_version,
                proposer,
                data_hash,
            } => {
                let held = self.save_echo_decision(&StoredDecision {
                    epoch: *epoch,
                    signer_set_version: *signer_set_version,
                    proposer: *proposer,
                    data_hash: *data_hash,
                })?;
                Ok(if held == *data_hash {
                    Persisted::Written
                } else {
                    Persisted::Conflicting
                })
            }
            PersistRecord::Official {
                official,
                source,
                tx_ref,
            } => {
                let stored = StoredOfficial {
                    official: official.clone(),
                    source: *source,
                    tx_ref: tx_ref.clone(),
                };
                if self.save_official(&stored, now_ms)? {
                    return Ok(Persisted::Written);
                }
                let held = self.official(official.epoch)?;
                Ok(match held {
                    Some(held) if held.official == *official => Persisted::AlreadyHeld,
                    _ => Persisted::Conflicting,
                })
            }
        }
    }

    /// What a (re)started protocol instance recovers at `now_ms`: the echo decisions, the
    /// final epochs and its own observations from `window_start` (see
    /// `ProtocolConfig::window_start`) on. The node and the simulator both restore through
    /// this. When the last run left no clean-stop mark ([`Self::mark_clean_stop`]: a crash, or
    /// a copy restored from a backup taken while running), the store may not hold every
    /// signature this member made, and the state says so (`unaccounted_before_ms`). The mark
    /// stays until [`Self::begin_run`], called once nothing can stop the start.
    pub fn restored_state(
        &self,
        window_start: u64,
        now_ms: u64,
    ) -> Result<RestoredState, StoreError> {
        let clean: bool = self.conn().query_row(
            "SELECT clean_stop_ms IS NOT NULL FROM run_state WHERE id = 1",
            [],
            |row| row.get(0),
        )?;
        Ok(RestoredState {
            echo_decisions: self.echo_decisions_since(window_start)?,
            final_epochs: self.official_epochs_since(window_start)?,
            own_observations: self.own_observations_since(window_start)?,
            unaccounted_before_ms: (!clean).then_some(now_ms),
        })
    }

    /// Records that this run stopped cleanly at `at_ms`: nothing more will be signed, and the
    /// store holds every signature the run made. Written last, at a graceful stop.
    pub fn mark_clean_stop(&self, at_ms: u64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE run_state SET clean_stop_ms = ?1 WHERE id = 1",
            params![at_ms as i64],
        )?;
        Ok(())
    }

    /// Begins a run that will sign, measuring the mixnode set `mixnode_set` (its id): takes
    /// the previous run's clean-stop mark and records the set, in one transaction, and says
    /// what the previous run left. A run that then crashes is not taken for a clean one.
    pub fn begin_run(&self, mixnode_set: &str) -> Result<PreviousRun, StoreError> {
        let mut conn = self.conn();
        let tx = write_transaction(&mut conn)?;
        let previous = tx.query_row(
            "SELECT clean_stop_ms IS NOT NULL, mixnode_set FROM run_state WHERE id = 1",
            [],
            |row| {
                Ok(PreviousRun {
                    stopped_cleanly: row.get(0)?,
                    mixnode_set: row.get(1)?,
                })
            },
        )?;
        tx.execute(
            "UPDATE run_state SET clean_stop_ms = NULL, mixnode_set = ?1 WHERE id = 1",
            params![mixnode_set],
        )?;
        tx.commit()?;
        Ok(previous)
    }

    /// Echo decisions of epochs `>= from_epoch`.
    pub fn echo_decisions_since(&self, from_epoch: u64) -> Result<Vec<StoredDecision>, StoreError> {
        let conn = self.conn();
        let mut query = conn.prepare("SELECT epoch, version, proposer, data_hash FROM main.echo_decisions WHERE epoch >= ?1 ORDER BY epoch, version, proposer")?;
        let rows = query.query_map(params![from_epoch as i64], |row| {
            Ok((
                row.get::<_, i64>(0)? as u64,
                row.get::<_, u32>(1)?,
                row.get::<_, u16>(2)?,
                row.get::<_, Vec<u8>>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (epoch, signer_set_version, proposer, hash) = row?;
            let data_hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| StoreError::Corrupt("echo decision hash".into()))?;
            Ok(StoredDecision {
                epoch,
                signer_set_version,
                proposer,
                data_hash,
            })
        })
        .collect()
    }

    /// Stores this node's certificate for an epoch.
    pub fn save_certificate(&self, certificate: &Certificate) -> Result<(), StoreError> {
        let body = to_body("certificate", certificate)?;
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
        body.map(|body| from_body("certificate", &body)).transpose()
    }

    /// Stores the official data of an epoch, and its per-mixnode index, in one transaction;
    /// the first stored copy is kept. Returns whether this call stored it.
    pub fn save_official(&self, stored: &StoredOfficial, now_ms: u64) -> Result<bool, StoreError> {
        let body = to_body("official data", stored)?;
        let epoch = stored.official.epoch as i64;
        let mut conn = self.conn();
        let tx = write_transaction(&mut conn)?;
        let source: &'static str = stored.source.into();
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO official (epoch, body, source, stored_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![epoch, body, source, now_ms as i64],
        )?;
        if inserted == 1 {
            let mut index = tx.prepare_cached(
                "INSERT OR REPLACE INTO official_rewards (mix_id, epoch, uptime_bp) VALUES (?1, ?2, ?3)",
            )?;
            for reward in &stored.official.rewards {
                index.execute(params![reward.mix_id, epoch, reward.uptime_bp])?;
            }
        }
        tx.commit()?;
        Ok(inserted == 1)
    }

    /// The official data of an epoch.
    pub fn official(&self, epoch: u64) -> Result<Option<StoredOfficial>, StoreError> {
        let row: Option<(String, String)> = self
            .conn()
            .query_row(
                "SELECT body, source FROM official WHERE epoch = ?1",
                params![epoch as i64],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        row.map(|(body, source)| {
            let mut stored: StoredOfficial = from_body("official data", &body)?;
            stored.source = source
                .parse()
                .map_err(|err: relayer_protocol::UnknownName| {
                    StoreError::Corrupt(err.to_string())
                })?;
            Ok(stored)
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

    /// A mixnode's official uptime in the newest `limit` epochs, newest first (an index
    /// lookup: no stored epoch is parsed).
    pub fn mixnode_history(
        &self,
        mix_id: u32,
        limit: usize,
    ) -> Result<Vec<(u64, u16)>, StoreError> {
        let conn = self.conn();
        let mut query = conn.prepare_cached(
            "SELECT epoch, uptime_bp FROM official_rewards WHERE mix_id = ?1 ORDER BY epoch DESC LIMIT ?2",
        )?;
        let rows = query.query_map(params![mix_id, limit as i64], |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get::<_, u16>(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a submission attempt.
    pub fn record_submission(
        &self,
        epoch: u64,
        at_ms: u64,
        outcome: SubmissionOutcome,
    ) -> Result<(), StoreError> {
        let outcome: &'static str = outcome.into();
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
            let outcome: SubmissionOutcome =
                outcome
                    .parse()
                    .map_err(|err: relayer_protocol::UnknownName| {
                        StoreError::Corrupt(err.to_string())
                    })?;
            stats.attempted += count;
            match outcome {
                SubmissionOutcome::Accepted => stats.accepted = count,
                SubmissionOutcome::Lost => stats.lost = count,
                SubmissionOutcome::Failed => stats.failed = count,
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

    /// A version-1 decision of `epoch` for `proposer` signing `[byte; 32]`.
    fn decision(epoch: u64, proposer: u16, byte: u8) -> StoredDecision {
        StoredDecision {
            epoch,
            signer_set_version: 1,
            proposer,
            data_hash: [byte; 32],
        }
    }

    #[test]
    fn decisions_and_observations_of_two_versions_for_one_epoch_are_kept_apart() {
        let (_dir, store) = store();
        let v2 = StoredDecision {
            signer_set_version: 2,
            ..decision(4, 1, 2)
        };
        assert_eq!(
            store.save_echo_decision(&decision(4, 1, 1)).unwrap(),
            [1; 32]
        );
        assert_eq!(
            store.save_echo_decision(&v2).unwrap(),
            [2; 32],
            "not a conflict"
        );
        assert_eq!(
            store.echo_decisions_since(0).unwrap(),
            vec![decision(4, 1, 1), v2]
        );
        let observation = |version: u32| Observation {
            epoch: 4,
            signer_set_version: version,
            author: 0,
            values: vec![],
            signature: vec![version as u8; 64],
        };
        for version in [1, 2] {
            let record = PersistRecord::OwnObservation {
                observation: observation(version),
            };
            assert_eq!(store.persist(&record, 0).unwrap(), Persisted::Written);
        }
        assert_eq!(
            store.own_observations_since(0).unwrap(),
            vec![observation(1), observation(2)]
        );
    }

    #[test]
    fn a_version_3_database_keeps_its_decisions_and_observations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.sqlite");
        let observation = Observation {
            epoch: 7,
            signer_set_version: 3,
            author: 1,
            values: vec![],
            signature: vec![1; 64],
        };
        {
            let conn = Connection::open(&path).unwrap();
            for migration in &MIGRATIONS[..3] {
                conn.execute_batch(migration).unwrap();
            }
            conn.pragma_update(None, "user_version", 3).unwrap();
            conn.execute(
                "INSERT INTO echo_decisions (epoch, proposer, data_hash) VALUES (7, 2, ?1)",
                params![&[5u8; 32][..]],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO own_observations (epoch, body) VALUES (7, ?1)",
                params![serde_json::to_string(&observation).unwrap()],
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let legacy = StoredDecision {
            signer_set_version: 0,
            ..decision(7, 2, 5)
        };
        assert_eq!(store.echo_decisions_since(0).unwrap(), vec![legacy]);
        assert_eq!(store.own_observations_since(0).unwrap(), vec![observation]);
        // A legacy decision binds whatever version it was made under.
        let other = StoredDecision {
            signer_set_version: 4,
            ..decision(7, 2, 6)
        };
        assert_eq!(store.save_echo_decision(&other).unwrap(), [5; 32]);
        let record = PersistRecord::EchoDecision {
            epoch: 7,
            signer_set_version: 4,
            proposer: 2,
            data_hash: [6; 32],
        };
        assert_eq!(store.persist(&record, 0).unwrap(), Persisted::Conflicting);
    }

    #[test]
    fn first_echo_decision_is_final_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(
                store.save_echo_decision(&decision(4, 1, 1)).unwrap(),
                [1; 32]
            );
            assert_eq!(
                store.save_echo_decision(&decision(4, 1, 2)).unwrap(),
                [1; 32]
            );
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.echo_decisions_since(0).unwrap(),
            vec![decision(4, 1, 1)]
        );
        assert!(store.echo_decisions_since(5).unwrap().is_empty());
    }

    #[test]
    fn only_a_run_that_stopped_cleanly_restores_as_accounting_for_its_signatures() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        let unaccounted =
            |store: &Store, now: u64| store.restored_state(0, now).unwrap().unaccounted_before_ms;
        let store = Store::open(&path).unwrap();
        assert_eq!(
            unaccounted(&store, 100),
            None,
            "a new store has signed nothing"
        );
        assert_eq!(
            unaccounted(&store, 110),
            None,
            "reading does not take the mark (a start that fails signed nothing)"
        );
        assert!(store.begin_run("s").unwrap().stopped_cleanly);
        drop(store);
        // The run above ended without marking a clean stop (a crash, or this file copied
        // while it ran).
        let store = Store::open(&path).unwrap();
        assert_eq!(unaccounted(&store, 200), Some(200));
        assert!(!store.begin_run("s").unwrap().stopped_cleanly);
        store.mark_clean_stop(250).unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(unaccounted(&store, 300), None);
        assert!(store.begin_run("s").unwrap().stopped_cleanly);
        assert_eq!(
            unaccounted(&store, 400),
            Some(400),
            "the mark is taken: a second start without a stop is unclean"
        );
    }

    #[test]
    fn a_start_waits_for_a_writer_still_on_the_file_instead_of_failing() {
        // A killed node's last write can still be in progress when its successor starts on
        // the same file (the devnet restart test hit SQLITE_BUSY in CI).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        let store = Store::open(&path).unwrap();
        let mut other = Connection::open(&path).unwrap();
        let writing = other
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        writing
            .execute("UPDATE run_state SET mixnode_set = 'old' WHERE id = 1", [])
            .unwrap();
        let (done, result) = std::sync::mpsc::channel();
        let starting = std::thread::spawn(move || done.send(store.begin_run("s").map(|_| ())));
        assert!(
            result
                .recv_timeout(std::time::Duration::from_millis(300))
                .is_err(),
            "the start waits while the other writer holds the lock"
        );
        writing.commit().unwrap();
        let started = result.recv().unwrap();
        assert!(started.is_ok(), "{started:?}");
        starting.join().unwrap().unwrap();
    }

    #[test]
    fn the_mixnode_set_of_the_previous_run_is_returned_when_a_new_one_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("node.sqlite")).unwrap();
        let set_of = |id: &str| store.begin_run(id).unwrap().mixnode_set;
        assert_eq!(set_of("aa"), None);
        assert_eq!(set_of("bb"), Some("aa".into()));
        assert_eq!(set_of("bb"), Some("bb".into()));
    }

    #[test]
    fn the_first_own_observation_is_kept_and_restored_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        let observation = |epoch: u64, uptime_bp: u16| Observation {
            epoch,
            signer_set_version: 1,
            author: 2,
            values: vec![MixnodeReward {
                mix_id: 1,
                uptime_bp,
            }],
            signature: vec![9; 64],
        };
        {
            let store = Store::open(&path).unwrap();
            let first = PersistRecord::OwnObservation {
                observation: observation(4, 100),
            };
            assert_eq!(store.persist(&first, 0).unwrap(), Persisted::Written);
            assert_eq!(store.persist(&first, 0).unwrap(), Persisted::Written);
            let second = PersistRecord::OwnObservation {
                observation: observation(4, 200),
            };
            let outcome = store.persist(&second, 0).unwrap();
            assert_eq!(outcome, Persisted::Conflicting);
            assert!(
                !outcome.acknowledges(&second),
                "a second version is never sent"
            );
            store
                .persist(
                    &PersistRecord::OwnObservation {
                        observation: observation(2, 50),
                    },
                    0,
                )
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.restored_state(3, 0).unwrap().own_observations,
            vec![observation(4, 100)]
        );
    }

    pub(crate) fn official(epoch: u64, rewards: &[(u32, u16)]) -> StoredOfficial {
        StoredOfficial {
            official: OfficialEpoch {
                epoch,
                signer_set_version: 1,
                data_hash: cosmwasm_std::HexBinary::from(vec![1; 32]),
                rewards: rewards
                    .iter()
                    .map(|&(mix_id, uptime_bp)| MixnodeReward { mix_id, uptime_bp })
                    .collect(),
                signatures: vec![],
                submitter: "wasm1x".into(),
                height: 7,
            },
            source: OfficialSource::Peer,
            tx_ref: None,
        }
    }

    #[test]
    fn official_data_is_stored_once() {
        let (_dir, store) = store();
        let first = official(3, &[(5, 9_000)]);
        assert!(store.save_official(&first, 1).unwrap());
        let mut other = official(3, &[(5, 1)]);
        other.official.submitter = "wasm1y".into();
        assert!(!store.save_official(&other, 2).unwrap());
        assert_eq!(store.official(3).unwrap().unwrap(), first);
        assert_eq!(
            store.official_stored_at(3).unwrap(),
            Some(1),
            "the first copy's time"
        );
        assert_eq!(store.official_stored_at(4).unwrap(), None);
        assert_eq!(store.latest_official_epoch().unwrap(), Some(3));
        assert_eq!(
            store.mixnode_history(5, 10).unwrap(),
            vec![(3, 9_000)],
            "the index keeps the first copy too"
        );
    }

    #[test]
    fn mixnode_history_is_newest_first_and_limited() {
        let (_dir, store) = store();
        for epoch in 0..5 {
            store
                .save_official(&official(epoch, &[(1, epoch as u16), (2, 7)]), 0)
                .unwrap();
        }
        assert_eq!(
            store.mixnode_history(1, 3).unwrap(),
            vec![(4, 4), (3, 3), (2, 2)]
        );
        assert!(store.mixnode_history(9, 3).unwrap().is_empty());
    }

    #[test]
    fn a_version_1_database_gets_its_history_index_from_the_stored_bodies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            let body = serde_json::to_string(&official(8, &[(3, 4_200), (4, 10)])).unwrap();
            conn.execute(
                "INSERT INTO official (epoch, body, source, stored_at_ms) VALUES (8, ?1, 'peer', 5)",
                params![body],
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.mixnode_history(3, 5).unwrap(), vec![(8, 4_200)]);
        assert_eq!(
            store.official(8).unwrap().unwrap(),
            official(8, &[(3, 4_200), (4, 10)])
        );
    }

    #[test]
    fn an_unknown_source_is_a_corrupt_record_not_a_default() {
        let (_dir, store) = store();
        store.save_official(&official(2, &[(1, 1)]), 0).unwrap();
        store
            .conn()
            .execute(
                "UPDATE official SET source = 'somewhere' WHERE epoch = 2",
                [],
            )
            .unwrap();
        assert!(matches!(store.official(2), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn protocol_writes_do_not_wait_for_a_reader_holding_a_read_transaction() {
        let (_dir, store) = store();
        store.save_official(&official(1, &[(1, 1)]), 0).unwrap();
        let reader = store.open_reader().unwrap();
        // A long public read: an open read transaction on the reader's connection.
        let reading = reader.conn();
        reading.execute_batch("BEGIN").unwrap();
        let count: i64 = reading
            .query_row("SELECT COUNT(*) FROM official", [], |row| row.get(0))
            .unwrap();
        assert_eq!(count, 1);
        // The writer neither blocks on the reader's lock nor on SQLite's (WAL).
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let stored = store.save_echo_decision(&decision(9, 1, 3));
                let _ = done_tx.send(stored.map_err(|err| err.to_string()));
            });
            let stored = done_rx
                .recv_timeout(std::time::Duration::from_secs(2))
                .expect("the write waited on the reader");
            assert_eq!(stored, Ok([3; 32]));
        });
        reading.execute_batch("COMMIT").unwrap();
        drop(reading);
        assert!(
            reader.save_echo_decision(&decision(9, 2, 4)).is_err(),
            "readers cannot write"
        );
    }

    #[test]
    fn a_shared_memory_database_outlives_a_closed_connection_while_another_is_open() {
        let name = format!("store-test-{}", std::process::id());
        let keeper = Store::open_at(Location::SharedMemory(name.clone())).unwrap();
        {
            let node = keeper.open_writer().unwrap();
            node.save_echo_decision(&decision(1, 0, 7)).unwrap();
        }
        let reopened = Store::open_at(Location::SharedMemory(name)).unwrap();
        assert_eq!(
            reopened.echo_decisions_since(0).unwrap(),
            vec![decision(1, 0, 7)]
        );
    }

    #[cfg(feature = "planted-bugs")]
    #[test]
    fn the_planted_bug_acknowledges_decisions_that_a_reopened_store_does_not_have() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        {
            let mut store = Store::open(&path).unwrap();
            store.plant(relayer_protocol::PlantedBug::ForgetEchoDecisions);
            assert_eq!(
                store.save_echo_decision(&decision(4, 1, 1)).unwrap(),
                [1; 32]
            );
            assert_eq!(
                store.save_echo_decision(&decision(4, 1, 2)).unwrap(),
                [1; 32]
            );
        }
        assert!(
            Store::open(&path)
                .unwrap()
                .echo_decisions_since(0)
                .unwrap()
                .is_empty()
        );
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
