//! A whole network in one process: the real contract on the embedded chain and N nodes over
//! real libp2p on loopback, each with its own SQLite file and HTTP port. Used by `relayer-dev
//! devnet`, `make demo`, the end-to-end tests and the benchmarks.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cosmwasm_std::HexBinary;
use nym_rewards::msg::{EpochClock, ExecuteMsg, InstantiateMsg, MemberInput};
use nym_rewards::rules::MAX_MEMBERS;
use relayer_auditor::{ChainContext, audit_copy};
use relayer_node::api::ApiLimits;
use relayer_node::auditor_assets::AuditorAssets;
use relayer_node::chain::{self, Chain};
use relayer_node::config::{ProtocolSection, SamplingSection};
use relayer_node::keys::{ChainAccount, DEFAULT_ACCOUNT_PREFIX, random_secret};
use relayer_node::mixnode_set;
use relayer_node::monitor::Location;
use relayer_node::net::BoundNet;
use relayer_node::sample_source::SampleSource;
use relayer_node::{NodeSettings, RunningNode, start_node};
use relayer_node::{http, tls};
use relayer_protocol::wire::Codec;
use relayer_protocol::{Keypair, SubmitPolicy};
use serde::Serialize;

use crate::DevError;
use crate::embedded_chain::EmbeddedChain;
use crate::pki::{PkiFiles, write_dev_pki};
use relayer_node::tls::ServerConfig;

/// How to run a devnet.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// Members of the first signer set.
    pub nodes: usize,
    /// Nodes started beside them with keys in no signer set yet: they join when a rotation
    /// ([`Devnet::rotate`]) names them. Indices `nodes..nodes + joining`.
    pub joining: usize,
    /// Mixnodes measured (ids 1..=M).
    pub mixnodes: u32,
    /// Epoch length.
    pub epoch_secs: u64,
    /// Submission policy.
    pub policy: SubmitPolicy,
    /// Sampling interval.
    pub metrics_interval_ms: u64,
    /// Grace period for more observations.
    pub observation_grace_ms: u64,
    /// Staggered slot spacing (longer than `block_interval_ms`, as an operator sets it).
    pub submit_slot_ms: u64,
    /// Time between the embedded chain's blocks; 0: instant blocks (each transaction is a
    /// block at once).
    pub block_interval_ms: u64,
    /// Re-send interval.
    pub resend_interval_ms: u64,
    /// Catch-up window.
    pub catch_up_epochs: u64,
    /// Where the nodes keep their databases.
    pub data_dir: PathBuf,
    /// Members that never start (crashed from the beginning).
    pub silent: BTreeSet<usize>,
    /// Members that run without an HTTP API.
    pub without_api: BTreeSet<usize>,
    /// Limits of every node's API.
    pub api_limits: ApiLimits,
    /// Emulate a wide-area network: node i in region i mod 5, each message held back by the
    /// median one-way delay between the two regions (`relayer_sim::wan`).
    pub wan: bool,
    /// Serve every API over https with a throwaway CA's certificate (written under
    /// `data_dir/tls`), which every node's client trusts.
    pub tls: bool,
    /// Where node i's samples come from, when not the generator.
    pub sample_sources: std::collections::BTreeMap<usize, SampleSource>,
    /// Where node i reads its mixnode set, when not ids `1..=mixnodes`.
    pub mixnode_sets: std::collections::BTreeMap<usize, Location>,
    /// The browser auditor's folder every node serves at `/auditor/` (`make auditor-web`).
    pub auditor_dir: Option<PathBuf>,
}

impl DevnetOptions {
    /// Sensible defaults for `nodes` members in `data_dir`.
    pub fn new(nodes: usize, data_dir: PathBuf) -> Self {
        Self {
            nodes,
            joining: 0,
            mixnodes: 100,
            epoch_secs: 3,
            policy: SubmitPolicy::Staggered,
            metrics_interval_ms: 200,
            observation_grace_ms: 200,
            submit_slot_ms: 300,
            block_interval_ms: 0,
            resend_interval_ms: 1_000,
            catch_up_epochs: 3,
            data_dir,
            silent: BTreeSet::new(),
            without_api: BTreeSet::new(),
            api_limits: loopback_api_limits(nodes),
            wan: false,
            tls: false,
            sample_sources: Default::default(),
            mixnode_sets: Default::default(),
            auditor_dir: None,
        }
    }
}

/// API limits for a network on loopback, where every member and client shares one address:
/// enough for every loser fetching from the winner at once.
pub fn loopback_api_limits(nodes: usize) -> ApiLimits {
    let burst = u32::try_from(4 * nodes + 200).unwrap_or(u32::MAX);
    ApiLimits {
        max_concurrent: 4 * nodes + 64,
        per_client_per_sec: burst,
        per_client_burst: burst,
        max_connections: 4 * nodes + 128,
        max_connections_per_client: 4 * nodes + 64,
        max_connections_per_network: 4 * nodes + 64,
        ..ApiLimits::default()
    }
}

struct NodeSpec {
    name: String,
    ed25519_secret: [u8; 32],
    account: ChainAccount,
    p2p_addr: String,
    http_addr: SocketAddr,
    db_path: PathBuf,
    with_api: bool,
    tls: bool,
    codec: Codec,
}

/// One final epoch, as `devnet --summary` reports it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EpochReport {
    /// The epoch.
    pub epoch: u64,
    /// Chain address of the winner.
    pub submitter: String,
    /// Name of the winner.
    pub submitter_name: String,
    /// Data hash (hex).
    pub data_hash: String,
    /// Signer indices of the stored signatures.
    pub signer_indices: Vec<u16>,
    /// Submission transactions sent for this epoch by all nodes.
    pub txs_submitted: u64,
    /// From the epoch end to the contract accepting, by block time.
    pub latency_ms: u64,
    /// Running nodes holding official data for it.
    pub nodes_with_official_data: usize,
    /// The auditor check passed (accepted) against every running node with an API.
    pub auditor_verified: bool,
    /// Audit failures, if any.
    pub audit_failures: Vec<String>,
}

/// A running devnet.
pub struct Devnet {
    /// The embedded chain.
    pub chain: Arc<EmbeddedChain>,
    /// Epoch clock of the contract.
    pub clock: EpochClock,
    options: DevnetOptions,
    specs: Vec<NodeSpec>,
    nodes: Vec<Option<RunningNode>>,
    http: reqwest::Client,
    admin: ChainAccount,
    api_tls: Option<Arc<ServerConfig>>,
    auditor: Option<Arc<AuditorAssets>>,
    pki: Option<PkiFiles>,
}

/// The contract's entry for the node of `spec`.
fn member_input(spec: &NodeSpec) -> MemberInput {
    MemberInput {
        ed25519_pubkey: HexBinary::from(Keypair::from_seed(&spec.ed25519_secret).public()),
        address: spec.account.address().to_string(),
        api_url: http::api_url(spec.http_addr, spec.tls),
        p2p_multiaddr: spec.p2p_addr.clone(),
    }
}

/// Node i's `[sampling]`.
fn sampling_section(options: &DevnetOptions, i: usize) -> SamplingSection {
    SamplingSection {
        mixnodes: options.mixnodes,
        mixnode_set: options.mixnode_sets.get(&i).cloned(),
        interval_ms: options.metrics_interval_ms,
        seed: 1,
        retention_epochs: 24,
        source: options.sample_sources.get(&i).cloned().unwrap_or_default(),
    }
}

fn free_local_port() -> Result<std::net::TcpListener, DevError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|err| DevError::io("binding an ephemeral port", err))
}

impl Devnet {
    /// Binds every node's ports, instantiates the contract with their addresses, and starts
    /// the nodes that are not silent.
    pub async fn start(options: DevnetOptions) -> Result<Self, DevError> {
        if options.nodes == 0 || options.nodes + options.joining > MAX_MEMBERS {
            return Err(DevError::Invalid(format!(
                "a devnet needs 1 to {MAX_MEMBERS} nodes, got {} and {} joining",
                options.nodes, options.joining
            )));
        }
        std::fs::create_dir_all(&options.data_dir)
            .map_err(|err| DevError::io(format!("creating {}", options.data_dir.display()), err))?;
        let pki = if options.tls {
            Some(write_dev_pki(
                &options.data_dir.join("tls"),
                &["127.0.0.1", "localhost"],
            )?)
        } else {
            None
        };
        let api_tls = match &pki {
            Some(files) => Some(tls::server_config(&files.cert, &files.key)?),
            None => None,
        };
        let http = http::client_with_ca(pki.as_ref().map(|files| files.ca.as_path()))?;
        let auditor = match &options.auditor_dir {
            Some(dir) => Some(Arc::new(AuditorAssets::load(dir)?)),
            None => None,
        };
        let mut specs = Vec::new();
        let mut bound = Vec::new();
        let mut listeners = Vec::new();
        for i in 0..options.nodes + options.joining {
            let ed25519_secret = random_secret();
            let account = loop {
                if let Some(account) =
                    ChainAccount::from_secret(&random_secret(), DEFAULT_ACCOUNT_PREFIX)
                {
                    break account;
                }
            };
            let mixnodes = mixnode_set::load(&sampling_section(&options, i), &http).await?;
            let codec = Codec::new(&mixnodes);
            let net = BoundNet::bind(ed25519_secret, "/ip4/127.0.0.1/tcp/0", codec.clone()).await?;
            let listener = free_local_port()?;
            specs.push(NodeSpec {
                name: format!("node{i}"),
                ed25519_secret,
                account,
                p2p_addr: net.listen_addr.to_string(),
                http_addr: listener
                    .local_addr()
                    .map_err(|err| DevError::io("reading a listener's address", err))?,
                db_path: options.data_dir.join(format!("node{i}.sqlite")),
                with_api: !options.without_api.contains(&i),
                tls: options.tls,
                codec,
            });
            bound.push(Some(net));
            listeners.push(Some(listener));
        }
        let genesis_time = relayer_node::now_ms() / 1_000 + 1;
        let clock = EpochClock {
            genesis_time,
            epoch_length_secs: options.epoch_secs,
        };
        let members = specs[..options.nodes].iter().map(member_input).collect();
        let admin = ChainAccount::from_secret(&[7; 32], DEFAULT_ACCOUNT_PREFIX)
            .ok_or_else(|| DevError::Invalid("the admin key is not a secp256k1 secret".into()))?;
        let msg = InstantiateMsg {
            admin: None,
            clock,
            members,
            threshold: None,
            max_mixnodes_per_epoch: options.mixnodes.max(1),
            min_rotation_delay_epochs: None,
        };
        let block_interval = (options.block_interval_ms > 0)
            .then(|| Duration::from_millis(options.block_interval_ms));
        let chain = Arc::new(EmbeddedChain::start(msg, admin.address(), block_interval)?);
        let mut devnet = Self {
            chain,
            clock,
            options,
            specs,
            nodes: Vec::new(),
            http,
            admin,
            api_tls,
            auditor,
            pki,
        };
        for i in 0..devnet.specs.len() {
            let net = bound[i].take();
            let listener = listeners[i].take();
            if devnet.options.silent.contains(&i) {
                devnet.nodes.push(None);
                continue;
            }
            let node = devnet.start_one(i, net, listener).await?;
            devnet.nodes.push(Some(node));
        }
        Ok(devnet)
    }

    async fn start_one(
        &self,
        i: usize,
        net: Option<BoundNet>,
        listener: Option<std::net::TcpListener>,
    ) -> Result<RunningNode, DevError> {
        let spec = &self.specs[i];
        let net = match net {
            Some(net) => net,
            None => BoundNet::bind(spec.ed25519_secret, &spec.p2p_addr, spec.codec.clone()).await?,
        };
        let net = if self.options.wan {
            net.with_link_delay(self.wan_delays_from(i))
        } else {
            net
        };
        let http = if spec.with_api {
            Some(match listener {
                Some(listener) => listener,
                None => std::net::TcpListener::bind(spec.http_addr)
                    .map_err(|err| DevError::io(format!("rebinding {}", spec.http_addr), err))?,
            })
        } else {
            None
        };
        let options = &self.options;
        let settings = NodeSettings {
            name: spec.name.clone(),
            ed25519_secret: spec.ed25519_secret,
            account: spec.account.clone(),
            db_path: spec.db_path.clone(),
            http,
            api_limits: options.api_limits.clone(),
            api_tls: self.api_tls.clone(),
            auditor: self.auditor.clone(),
            metrics_http: None,
            min_balance: 0,
            http_client: self.http.clone(),
            net,
            sampling: sampling_section(options, i),
            protocol: ProtocolSection {
                observation_threshold: None,
                observation_grace_ms: options.observation_grace_ms,
                submit_slot_ms: options.submit_slot_ms,
                resend_interval_ms: options.resend_interval_ms,
                policy: options.policy,
                catch_up_epochs: options.catch_up_epochs,
            },
            chain: self.chain.clone(),
        };
        Ok(start_node(settings).await?)
    }

    /// The admin schedules nodes `members` (by index) as the next signer set, governing from
    /// `effective_from_epoch` with `threshold` (the default for its size when `None`). The
    /// running nodes follow it without a restart.
    pub async fn rotate(
        &self,
        members: &[usize],
        threshold: Option<u32>,
        effective_from_epoch: u64,
    ) -> Result<(), DevError> {
        let members = members
            .iter()
            .map(|&i| {
                self.specs
                    .get(i)
                    .map(member_input)
                    .ok_or_else(|| DevError::Invalid(format!("no node {i}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let msg = ExecuteMsg::UpdateSignerSet {
            members,
            threshold,
            effective_from_epoch,
        };
        self.chain.execute(&self.admin, &msg).await?;
        Ok(())
    }

    /// The running nodes that are members of the signer set governing `epoch`: those that
    /// must hold its official data.
    async fn members_running(&self, epoch: u64) -> Result<Vec<&RunningNode>, DevError> {
        let set = chain::signer_set_for_epoch(self.chain.as_ref(), epoch).await?;
        Ok(self
            .specs
            .iter()
            .zip(&self.nodes)
            .filter(|(spec, _)| {
                set.members
                    .iter()
                    .any(|member| member.address.as_str() == spec.account.address())
            })
            .filter_map(|(_, node)| node.as_ref())
            .collect())
    }

    /// The emulated one-way delays from node `i` to each other node, by key.
    fn wan_delays_from(&self, i: usize) -> relayer_node::net::LinkDelay {
        let node_of: std::collections::HashMap<[u8; 32], usize> = self
            .specs
            .iter()
            .enumerate()
            .map(|(j, spec)| (Keypair::from_seed(&spec.ed25519_secret).public(), j))
            .collect();
        Arc::new(move |key: &[u8; 32]| {
            node_of
                .get(key)
                .map_or(Duration::ZERO, |&j| relayer_sim::wan::median_one_way(i, j))
        })
    }

    /// The running node `i`, if it runs.
    pub fn node(&self, i: usize) -> Option<&RunningNode> {
        self.nodes.get(i).and_then(Option::as_ref)
    }

    /// Names of members by chain address.
    fn name_of(&self, address: &str) -> String {
        self.specs
            .iter()
            .find(|spec| spec.account.address() == address)
            .map_or_else(|| address.to_string(), |spec| spec.name.clone())
    }

    /// The CA certificate every API's certificate chains to, when the devnet serves https.
    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.pki.as_ref().map(|files| files.ca.as_path())
    }

    /// The chain address of member `i`.
    pub fn address(&self, i: usize) -> &str {
        self.specs.get(i).map_or("", |spec| spec.account.address())
    }

    /// Kills node `i` abruptly, as a crash would.
    pub fn kill(&mut self, i: usize) {
        if let Some(node) = self.nodes.get_mut(i).and_then(Option::take) {
            node.kill();
        }
    }

    /// Starts node `i` again on its database, addresses and keys.
    pub async fn restart(&mut self, i: usize) -> Result<(), DevError> {
        let node = self.start_one(i, None, None).await?;
        self.nodes[i] = Some(node);
        Ok(())
    }

    /// Waits until every running node holds official data for `epoch`, then reports it.
    pub async fn wait_for_final(
        &self,
        epoch: u64,
        timeout: Duration,
    ) -> Result<EpochReport, DevError> {
        self.wait_until_stored(epoch, timeout).await?;
        self.report(epoch).await
    }

    /// Waits until every running member of the signer set governing `epoch` holds its
    /// official data.
    pub async fn wait_until_stored(&self, epoch: u64, timeout: Duration) -> Result<(), DevError> {
        let running = self.members_running(epoch).await?;
        let wait_all = async {
            for node in &running {
                // Every stored epoch notifies the watch; epochs may finish out of order, so the
                // store itself is asked whether this one is there.
                let mut official = node.official.clone();
                official
                    .wait_for(|_| node.store.official(epoch).ok().flatten().is_some())
                    .await
                    .map_err(|_| DevError::Stopped(node.name.clone()))?;
            }
            Ok::<(), DevError>(())
        };
        tokio::time::timeout(timeout, wait_all)
            .await
            .map_err(|_| DevError::Timeout {
                epoch,
                waited: timeout,
            })?
    }

    /// The running nodes.
    pub fn running(&self) -> impl Iterator<Item = &RunningNode> {
        self.nodes.iter().flatten()
    }

    /// Reports an epoch from the contract, the stores of the running members of the signer
    /// set governing it, and the auditor check against each.
    pub async fn report(&self, epoch: u64) -> Result<EpochReport, DevError> {
        let record = chain::epoch_record(self.chain.as_ref(), epoch)
            .await?
            .ok_or(DevError::NotOnChain(epoch))?;
        let set = chain::signer_set(self.chain.as_ref(), Some(record.signer_set_version)).await?;
        let context = ChainContext {
            chain_id: self.chain.chain_id().to_string(),
            contract: self.chain.contract().to_string(),
        };
        let running = self.members_running(epoch).await?;
        let mut txs_submitted = 0;
        let mut holding = 0;
        for node in &running {
            txs_submitted += node.store.submissions_for(epoch)?;
            if node.store.official(epoch)?.is_some() {
                holding += 1;
            }
        }
        let mut audit_failures = Vec::new();
        for node in &running {
            let Some(api_url) = &node.api_url else {
                continue;
            };
            let outcome = match http::fetch_epoch(&self.http, api_url, epoch).await {
                Ok(copy) => {
                    audit_copy(&context, &set, &record, &copy).map_err(|err| err.to_string())
                }
                Err(err) => Err(err.to_string()),
            };
            if let Err(failure) = outcome {
                audit_failures.push(format!("{}: {failure}", node.name));
            }
        }
        let epoch_end_ms = self.clock.epoch_end_ms(epoch);
        let accepted_ms = record.time.nanos() / 1_000_000;
        Ok(EpochReport {
            epoch,
            submitter: record.submitter.to_string(),
            submitter_name: self.name_of(record.submitter.as_str()),
            data_hash: record.data_hash.to_hex(),
            signer_indices: record.signatures.iter().map(|s| s.index).collect(),
            txs_submitted,
            latency_ms: accepted_ms.saturating_sub(epoch_end_ms),
            nodes_with_official_data: holding,
            auditor_verified: audit_failures.is_empty(),
            audit_failures,
        })
    }

    /// Stops every node gracefully.
    pub async fn stop(self) {
        for node in self.nodes.into_iter().flatten() {
            node.stop().await;
        }
    }

    /// Number of members.
    pub fn size(&self) -> usize {
        self.options.nodes
    }

    /// The running epoch now (epoch 0 until genesis, which is a second after start).
    pub fn current_epoch(&self) -> u64 {
        self.clock.epoch_at_ms(relayer_node::now_ms()).unwrap_or(0)
    }

    /// Contract address.
    pub fn contract(&self) -> &str {
        self.chain.contract()
    }
}
