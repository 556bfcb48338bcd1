//! The real `artifacts/nym_rewards.wasm` (at the repository root) in cosmwasm-vm, with a storage backend that counts
//! reads and writes so that the Cosmos SDK's storage gas can be added to the VM gas.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cosmwasm_std::{
    Addr, Binary, ContractResult, Env, HexBinary, MessageInfo, Order, Record, Response, Timestamp,
};
use cosmwasm_vm::testing::{
    MockApi, MockQuerier, MockStorage, execute, instantiate, mock_env, query,
};
use cosmwasm_vm::{
    Backend, BackendResult, Instance, InstanceOptions, Size, Storage, capabilities_from_csv,
};
use ed25519_dalek::{Signer, SigningKey};
use nym_rewards::digest::{DigestContext, data_hash, epoch_digest};
use nym_rewards::msg::{
    EpochClock, ExecuteMsg, InstantiateMsg, MemberInput, MixnodeReward, QueryMsg, SignerSignature,
};

/// What wasmd v0.61 (wasmvm 3.0) offers contracts; the contract must need nothing beyond it.
pub const WASMD_CAPABILITIES: &str = "iterator,staking,stargate,cosmwasm_1_1,cosmwasm_1_2,cosmwasm_1_3,cosmwasm_1_4,cosmwasm_2_0,cosmwasm_2_1,cosmwasm_2_2";
/// wasmd charges VM gas divided by this as SDK gas.
pub const VM_GAS_PER_SDK_GAS: u64 = 140_000;
/// SDK gas wasmd charges to load a contract instance.
pub const INSTANCE_LOAD_GAS: u64 = 60_000;
const GAS_LIMIT: u64 = 500_000_000_000_000;

/// The capabilities as a set.
pub fn wasmd_capabilities() -> HashSet<String> {
    capabilities_from_csv(WASMD_CAPABILITIES)
}

/// Why the harness cannot run the contract.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The wasm is not built.
    #[error("{path} is missing ({source}): run `make wasm` first")]
    Wasm {
        /// Where it was looked for.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The VM refused the module.
    #[error("the VM refused the module: {0}")]
    Vm(#[from] cosmwasm_vm::VmError),
}

/// Reads the wasm built by `make wasm`.
pub fn wasm_bytes() -> Result<Vec<u8>, HarnessError> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../artifacts/nym_rewards.wasm");
    std::fs::read(&path).map_err(|source| HarnessError::Wasm {
        path: path.display().to_string(),
        source,
    })
}

/// Storage reads and writes seen by the backend.
#[derive(Debug, Default)]
pub struct StorageCounters {
    reads: AtomicU64,
    read_bytes: AtomicU64,
    writes: AtomicU64,
    write_bytes: AtomicU64,
}

/// [`MockStorage`] that counts what the contract reads and writes.
pub struct CountingStorage {
    inner: MockStorage,
    counters: Arc<StorageCounters>,
}

impl Storage for CountingStorage {
    fn get(&self, key: &[u8]) -> BackendResult<Option<Vec<u8>>> {
        let (result, gas) = self.inner.get(key);
        if let Ok(value) = &result {
            self.counters.reads.fetch_add(1, Ordering::Relaxed);
            let len = key.len() + value.as_ref().map_or(0, Vec::len);
            self.counters
                .read_bytes
                .fetch_add(len as u64, Ordering::Relaxed);
        }
        (result, gas)
    }

    fn scan(
        &mut self,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        order: Order,
    ) -> BackendResult<u32> {
        self.inner.scan(start, end, order)
    }

    fn next(&mut self, iterator_id: u32) -> BackendResult<Option<Record>> {
        let (result, gas) = self.inner.next(iterator_id);
        if let Ok(Some((key, value))) = &result {
            self.counters.reads.fetch_add(1, Ordering::Relaxed);
            self.counters
                .read_bytes
                .fetch_add((key.len() + value.len()) as u64, Ordering::Relaxed);
        }
        (result, gas)
    }

    fn set(&mut self, key: &[u8], value: &[u8]) -> BackendResult<()> {
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        self.counters
            .write_bytes
            .fetch_add((key.len() + value.len()) as u64, Ordering::Relaxed);
        self.inner.set(key, value)
    }

    fn remove(&mut self, key: &[u8]) -> BackendResult<()> {
        self.inner.remove(key)
    }
}

/// Cost of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallCost {
    /// CosmWasm VM gas.
    pub vm_gas: u64,
    /// Storage reads.
    pub reads: u64,
    /// Bytes read (keys and values).
    pub read_bytes: u64,
    /// Storage writes.
    pub writes: u64,
    /// Bytes written (keys and values).
    pub write_bytes: u64,
}

impl CallCost {
    /// The SDK gas wasmd would charge for this call in a transaction of `tx_bytes`:
    /// VM gas / 140000 + 60000 instance load + 2000 + 30/byte per write + 1000 + 3/byte per
    /// read + 10 per tx byte.
    pub fn wasmd_gas(&self, tx_bytes: u64) -> u64 {
        self.vm_gas / VM_GAS_PER_SDK_GAS
            + INSTANCE_LOAD_GAS
            + self.writes * 2_000
            + self.write_bytes * 30
            + self.reads * 1_000
            + self.read_bytes * 3
            + tx_bytes * 10
    }
}

/// The contract instantiated in the VM.
pub struct VmContract {
    instance: Instance<MockApi, CountingStorage, MockQuerier>,
    /// The VM's address helper (bech32 prefix `wasm`).
    pub api: MockApi,
    counters: Arc<StorageCounters>,
    last: CallCost,
}

impl VmContract {
    /// Compiles the wasm into a fresh instance.
    pub fn new(wasm: &[u8]) -> Result<Self, HarnessError> {
        let api = MockApi::default().with_prefix("wasm");
        let counters = Arc::new(StorageCounters::default());
        let backend = Backend {
            api,
            storage: CountingStorage {
                inner: MockStorage::default(),
                counters: counters.clone(),
            },
            querier: MockQuerier::new(&[]),
        };
        let instance = Instance::from_code(
            wasm,
            backend,
            InstanceOptions {
                gas_limit: GAS_LIMIT,
            },
            Some(Size::mebi(64)),
        )?;
        Ok(Self {
            instance,
            api,
            counters,
            last: CallCost::default(),
        })
    }

    /// The environment at unix second `secs`, with the contract at a fixed address.
    pub fn env_at(&self, secs: u64) -> Env {
        let mut env = mock_env();
        env.block.time = Timestamp::from_seconds(secs);
        env.contract.address = Addr::unchecked(self.api.addr_make("rewards-contract"));
        env
    }

    fn cost_since_last(&mut self) -> CallCost {
        let report = self.instance.create_gas_report();
        let total = CallCost {
            vm_gas: report.limit - report.remaining,
            reads: self.counters.reads.load(Ordering::Relaxed),
            read_bytes: self.counters.read_bytes.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
            write_bytes: self.counters.write_bytes.load(Ordering::Relaxed),
        };
        let cost = CallCost {
            vm_gas: total.vm_gas - self.last.vm_gas,
            reads: total.reads - self.last.reads,
            read_bytes: total.read_bytes - self.last.read_bytes,
            writes: total.writes - self.last.writes,
            write_bytes: total.write_bytes - self.last.write_bytes,
        };
        self.last = total;
        cost
    }

    /// Instantiates from `sender` at unix second `secs`. Contract errors cross the wasm
    /// boundary as their text (the VM's ABI), hence `String`.
    pub fn instantiate(
        &mut self,
        msg: &InstantiateMsg,
        sender: &str,
        secs: u64,
    ) -> (Result<Response, String>, CallCost) {
        let env = self.env_at(secs);
        let result: ContractResult<Response> =
            instantiate(&mut self.instance, env, info(sender), msg);
        (result.into_result(), self.cost_since_last())
    }

    /// Executes from `sender` at unix second `secs`.
    pub fn execute(
        &mut self,
        msg: &ExecuteMsg,
        sender: &str,
        secs: u64,
    ) -> (Result<Response, String>, CallCost) {
        let env = self.env_at(secs);
        let result: ContractResult<Response> = execute(&mut self.instance, env, info(sender), msg);
        (result.into_result(), self.cost_since_last())
    }

    /// Queries at unix second `secs`.
    pub fn query(&mut self, msg: &QueryMsg, secs: u64) -> (Result<Binary, String>, CallCost) {
        let env = self.env_at(secs);
        let result = query(&mut self.instance, env, msg);
        (result.into_result(), self.cost_since_last())
    }
}

fn info(sender: &str) -> MessageInfo {
    MessageInfo {
        sender: Addr::unchecked(sender),
        funds: vec![],
    }
}

/// An instantiate message for `keys` (member i at `addresses[i]`, local endpoints), the default
/// threshold, and epochs of `epoch_secs` from `genesis_time`.
pub fn instantiate_msg(
    keys: &[SigningKey],
    addresses: &[String],
    genesis_time: u64,
    epoch_secs: u64,
    max_mixnodes_per_epoch: u32,
) -> InstantiateMsg {
    InstantiateMsg {
        admin: None,
        clock: EpochClock {
            genesis_time,
            epoch_length_secs: epoch_secs,
        },
        members: keys
            .iter()
            .zip(addresses)
            .enumerate()
            .map(|(i, (key, address))| MemberInput {
                ed25519_pubkey: HexBinary::from(key.verifying_key().to_bytes()),
                address: address.clone(),
                api_url: format!("http://127.0.0.1:{}", 8000 + i),
                p2p_multiaddr: format!("/ip4/127.0.0.1/tcp/{}", 9000 + i),
            })
            .collect(),
        threshold: None,
        max_mixnodes_per_epoch,
        min_rotation_delay_epochs: None,
    }
}

/// Real signatures of `keys[i]` for each `i` in `signers` over the epoch digest.
pub fn sign_epoch(
    keys: &[SigningKey],
    signers: &[usize],
    context: &DigestContext<'_>,
    rewards: &[MixnodeReward],
) -> Vec<SignerSignature> {
    let digest = epoch_digest(context, &data_hash(rewards)).unwrap_or([0; 32]);
    signers
        .iter()
        .map(|&i| SignerSignature {
            index: i as u16,
            signature: HexBinary::from(keys[i].sign(&digest).to_bytes()),
        })
        .collect()
}
