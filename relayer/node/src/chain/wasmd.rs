//! The wasmd backend: cosmrs over CometBFT RPC (0.38). Smart queries over ABCI, transactions
//! signed with the node's secp256k1 key with gas from simulation plus a margin, account number
//! and sequence fetched per transaction (refetched and retried on a mismatch), and inclusion
//! awaited by polling `tx(hash)`. Callers decide outcomes by re-querying the contract.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use cosmrs::cosmwasm::{
    MsgExecuteContract, MsgInstantiateContract, MsgMigrateContract, MsgStoreCode,
};
use cosmrs::proto::cosmos::auth::v1beta1::{
    BaseAccount, QueryAccountRequest, QueryAccountResponse,
};
use cosmrs::proto::cosmos::bank::v1beta1::{QueryBalanceRequest, QueryBalanceResponse};
use cosmrs::proto::cosmos::tx::v1beta1::{SimulateRequest, SimulateResponse};
use cosmrs::proto::cosmwasm::wasm::v1::{
    QueryCodeRequest, QueryCodeResponse, QueryContractInfoRequest, QueryContractInfoResponse,
    QuerySmartContractStateRequest, QuerySmartContractStateResponse,
};
use cosmrs::proto::prost::Message;
use cosmrs::rpc::{Client, HttpClient, HttpClientUrl};
use cosmrs::tx::{Body, Fee, Msg, SignDoc, SignerInfo};
use cosmrs::{AccountId, Any, Coin};
use nym_rewards::msg::{ExecuteMsg, QueryMsg};
use tokio::sync::Mutex;

use super::fees::FeeSettings;
use super::{AbciFailure, Chain, ChainError, ChainHealth, TxRef};
use crate::keys::ChainAccount;

/// ABCI code of a wrong account sequence.
const CODE_WRONG_SEQUENCE: u32 = 32;
const INCLUSION_TIMEOUT: Duration = Duration::from_secs(30);
/// Gas limit of the transaction that is only simulated (simulation meters without a limit;
/// the fee this limit implies must still be covered by the balance).
pub const PROBE_GAS_LIMIT: u64 = 10_000_000;

/// A transaction's result as included in a block.
#[derive(Debug, Clone)]
pub struct TxOutcome {
    /// Hash (hex).
    pub hash: String,
    /// Block height.
    pub height: u64,
    /// Gas used.
    pub gas_used: u64,
    /// ABCI code (0 = success).
    pub code: u32,
    /// The module the code belongs to (`sdk`, `wasm`, ...).
    pub codespace: String,
    /// Log (informational only).
    pub log: String,
    /// Events as (type, key, value).
    pub events: Vec<(String, String, String)>,
    /// Size of the signed transaction as broadcast, in bytes.
    pub tx_bytes: usize,
}

impl TxOutcome {
    /// The value of the first attribute `key` of an event of type `kind`.
    pub fn event(&self, kind: &str, key: &str) -> Option<&str> {
        self.events
            .iter()
            .find(|(k, attr, _)| k == kind && attr == key)
            .map(|(_, _, value)| value.as_str())
    }

    /// `Ok` for a successful transaction; otherwise an [`AbciFailure`] naming `what` failed.
    pub fn success(self, what: &str) -> Result<Self, ChainError> {
        if self.code == 0 {
            return Ok(self);
        }
        Err(ChainError::Abci(AbciFailure {
            what: what.to_string(),
            codespace: self.codespace,
            code: self.code,
            tx_hash: Some(self.hash),
            log: self.log,
        }))
    }
}

/// How a transaction's gas limit is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GasLimit {
    /// Simulated, plus a margin (a transaction that would fail is refused before broadcast).
    Simulated,
    /// Fixed, without simulation: the transaction is broadcast even if it will fail, so its
    /// gas is charged and reported (benchmarks of rejected transactions).
    Fixed(u64),
}

/// A wasmd node and the rewards contract on it.
pub struct WasmdChain {
    rpc: HttpClient,
    chain_id: String,
    contract: String,
    fees: FeeSettings,
    tx_lock: Mutex<()>,
}

impl std::fmt::Debug for WasmdChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WasmdChain({}, {})", self.chain_id, self.contract)
    }
}

fn unavailable(err: impl std::fmt::Display) -> ChainError {
    ChainError::Unavailable(err.to_string())
}

impl WasmdChain {
    /// Connects to `rpc_url`; the chain id is read from the node when `chain_id` is `None`.
    pub async fn connect(
        rpc_url: &str,
        chain_id: Option<&str>,
        contract: &str,
        fees: FeeSettings,
    ) -> Result<Self, ChainError> {
        Self::connect_trusting(rpc_url, chain_id, contract, fees, None).await
    }

    /// [`Self::connect`], trusting the CA certificates (PEM) in `extra_ca` beside the
    /// system's roots for an `https://` RPC.
    pub async fn connect_trusting(
        rpc_url: &str,
        chain_id: Option<&str>,
        contract: &str,
        fees: FeeSettings,
        extra_ca: Option<&Path>,
    ) -> Result<Self, ChainError> {
        fees.validate()
            .map_err(|err| ChainError::Refused(err.to_string()))?;
        let url = HttpClientUrl::from_str(rpc_url)
            .map_err(|err| ChainError::Refused(format!("RPC URL {rpc_url}: {err}")))?;
        let mut builder =
            HttpClient::builder(url).compat_mode(cosmrs::rpc::client::CompatMode::V0_38);
        if let Some(path) = extra_ca {
            builder = builder.client(rpc_client_trusting(path)?);
        }
        let rpc = builder.build().map_err(unavailable)?;
        let status = rpc
            .status()
            .await
            .map_err(|err| ChainError::Unavailable(format!("{rpc_url}: {err}")))?;
        let network = status.node_info.network.to_string();
        if let Some(expected) = chain_id.filter(|expected| *expected != network) {
            return Err(ChainError::Refused(format!(
                "{rpc_url} serves chain {network}, not {expected}"
            )));
        }
        Ok(Self {
            rpc,
            chain_id: network,
            contract: contract.to_string(),
            fees,
            tx_lock: Mutex::new(()),
        })
    }

    async fn abci<Req: Message, Resp: Message + Default>(
        &self,
        path: &str,
        request: &Req,
    ) -> Result<Resp, ChainError> {
        let answer = self
            .rpc
            .abci_query(Some(path.to_string()), request.encode_to_vec(), None, false)
            .await
            .map_err(unavailable)?;
        if answer.code.is_err() {
            return Err(ChainError::Abci(AbciFailure {
                what: path.to_string(),
                codespace: answer.codespace,
                code: answer.code.value(),
                tx_hash: None,
                log: answer.log,
            }));
        }
        Resp::decode(answer.value.as_slice()).map_err(|err| ChainError::Decode(err.to_string()))
    }

    async fn account(&self, address: &str) -> Result<(u64, u64), ChainError> {
        let response: QueryAccountResponse = self
            .abci(
                "/cosmos.auth.v1beta1.Query/Account",
                &QueryAccountRequest {
                    address: address.to_string(),
                },
            )
            .await
            .map_err(|err| match err {
                ChainError::Abci(failure) => ChainError::Refused(format!(
                    "account {address} not found (is it funded?): {}",
                    failure.log
                )),
                other => other,
            })?;
        let any = response
            .account
            .ok_or_else(|| ChainError::Refused(format!("account {address} not found")))?;
        let account = BaseAccount::decode(any.value.as_slice())
            .map_err(|err| ChainError::Decode(err.to_string()))?;
        Ok((account.account_number, account.sequence))
    }

    fn sign(
        &self,
        key: &ChainAccount,
        msgs: &[Any],
        gas_limit: u64,
        account_number: u64,
        sequence: u64,
    ) -> Result<Vec<u8>, ChainError> {
        let signing_key = key
            .signing_key()
            .map_err(|err| ChainError::Refused(err.to_string()))?;
        let body = Body::new(msgs.to_vec(), "", 0u32);
        let fee = Fee::from_amount_and_gas(
            Coin {
                denom: self.fees.gas_price.denom.clone(),
                amount: self.fees.fee_amount(gas_limit),
            },
            gas_limit,
        );
        let auth_info =
            SignerInfo::single_direct(Some(signing_key.public_key()), sequence).auth_info(fee);
        let chain_id = cosmrs::tendermint::chain::Id::try_from(self.chain_id.clone())
            .map_err(|err| ChainError::Refused(err.to_string()))?;
        let sign_doc = SignDoc::new(&body, &auth_info, &chain_id, account_number)
            .map_err(|err| ChainError::Refused(err.to_string()))?;
        let raw = sign_doc
            .sign(&signing_key)
            .map_err(|err| ChainError::Refused(err.to_string()))?;
        raw.to_bytes()
            .map_err(|err| ChainError::Refused(err.to_string()))
    }

    async fn simulate(&self, tx_bytes: Vec<u8>) -> Result<u64, ChainError> {
        #[allow(deprecated)]
        let request = SimulateRequest { tx: None, tx_bytes };
        let response: SimulateResponse = self
            .abci("/cosmos.tx.v1beta1.Service/Simulate", &request)
            .await?;
        Ok(response.gas_info.map_or(0, |info| info.gas_used))
    }

    /// Signs `msgs` with `key`, with gas from simulation, broadcasts and waits for inclusion.
    /// A wrong sequence is refetched and retried.
    pub async fn sign_and_broadcast(
        &self,
        key: &ChainAccount,
        msgs: Vec<Any>,
    ) -> Result<TxOutcome, ChainError> {
        self.broadcast(key, msgs, GasLimit::Simulated).await
    }

    /// [`Self::sign_and_broadcast`] with the gas limit chosen by `gas`.
    pub async fn broadcast(
        &self,
        key: &ChainAccount,
        msgs: Vec<Any>,
        gas: GasLimit,
    ) -> Result<TxOutcome, ChainError> {
        let _serial = self.tx_lock.lock().await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (account_number, sequence) = self.account(key.address()).await?;
            let gas_limit = match gas {
                GasLimit::Fixed(limit) => limit,
                GasLimit::Simulated => {
                    let probe = self.sign(key, &msgs, PROBE_GAS_LIMIT, account_number, sequence)?;
                    let simulated = self.simulate(probe).await?;
                    let limit = self.fees.gas_limit(simulated);
                    if limit > self.fees.max_gas {
                        return Err(ChainError::Refused(format!(
                            "the transaction needs {limit} gas, above chain.max_gas {}",
                            self.fees.max_gas
                        )));
                    }
                    limit
                }
            };
            let tx = self.sign(key, &msgs, gas_limit, account_number, sequence)?;
            let tx_bytes = tx.len();
            let sent = self.rpc.broadcast_tx_sync(tx).await.map_err(unavailable)?;
            if sent.code.is_err() {
                if sent.code.value() == CODE_WRONG_SEQUENCE && attempt < 4 {
                    tracing::debug!("wrong sequence; refetching the account");
                    continue;
                }
                return Err(ChainError::Abci(AbciFailure {
                    what: "check_tx".into(),
                    codespace: sent.codespace,
                    code: sent.code.value(),
                    tx_hash: Some(sent.hash.to_string()),
                    log: sent.log,
                }));
            }
            let mut outcome = self.wait_for_inclusion(sent.hash).await?;
            outcome.tx_bytes = tx_bytes;
            return Ok(outcome);
        }
    }

    async fn wait_for_inclusion(
        &self,
        hash: cosmrs::tendermint::Hash,
    ) -> Result<TxOutcome, ChainError> {
        let deadline = tokio::time::Instant::now() + INCLUSION_TIMEOUT;
        loop {
            if let Ok(found) = self.rpc.tx(hash, false).await {
                let result = found.tx_result;
                let events = result
                    .events
                    .iter()
                    .flat_map(|event| {
                        event.attributes.iter().map(move |attribute| {
                            (
                                event.kind.clone(),
                                attribute.key_str().unwrap_or_default().to_string(),
                                attribute.value_str().unwrap_or_default().to_string(),
                            )
                        })
                    })
                    .collect();
                return Ok(TxOutcome {
                    hash: hash.to_string(),
                    height: found.height.value(),
                    gas_used: result.gas_used.max(0) as u64,
                    code: result.code.value(),
                    codespace: result.codespace.clone(),
                    log: result.log,
                    events,
                    tx_bytes: 0,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ChainError::Unavailable(format!(
                    "transaction {hash} not included within {INCLUSION_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stores `wasm` (sender `key`); returns the code id and the transaction.
    pub async fn store_code(
        &self,
        key: &ChainAccount,
        wasm: Vec<u8>,
    ) -> Result<(u64, TxOutcome), ChainError> {
        let store = MsgStoreCode {
            sender: Self::account_id(key.address())?,
            wasm_byte_code: wasm,
            instantiate_permission: None,
        };
        let outcome = self.send_checked(key, &store, "storing the code").await?;
        let code_id = outcome
            .event("store_code", "code_id")
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| ChainError::Decode("no code_id in the store_code events".into()))?;
        Ok((code_id, outcome))
    }

    /// Instantiates `code_id` with the JSON `msg`, `key` as sender and wasmd admin (so it may
    /// migrate); returns the contract address and the transaction.
    pub async fn instantiate(
        &self,
        key: &ChainAccount,
        code_id: u64,
        msg: Vec<u8>,
        label: &str,
    ) -> Result<(String, TxOutcome), ChainError> {
        let sender = Self::account_id(key.address())?;
        let instantiate = MsgInstantiateContract {
            sender: sender.clone(),
            admin: Some(sender),
            code_id,
            label: Some(label.to_string()),
            msg,
            funds: vec![],
        };
        let outcome = self
            .send_checked(key, &instantiate, "instantiating the contract")
            .await?;
        let contract = outcome
            .event("instantiate", "_contract_address")
            .ok_or_else(|| {
                ChainError::Decode("no contract address in the instantiate events".into())
            })?
            .to_string();
        Ok((contract, outcome))
    }

    /// Migrates this handle's contract to `code_id` with the JSON `msg` (sender `key`, which
    /// must be the contract's wasmd admin).
    pub async fn migrate(
        &self,
        key: &ChainAccount,
        code_id: u64,
        msg: Vec<u8>,
    ) -> Result<TxOutcome, ChainError> {
        let migrate = MsgMigrateContract {
            sender: Self::account_id(key.address())?,
            contract: Self::account_id(&self.contract)?,
            code_id,
            msg,
        };
        self.send_checked(key, &migrate, "migrating the contract")
            .await
    }

    /// Signs and broadcasts the one message `msg` (gas from simulation); a failed transaction
    /// is an error naming `what` failed.
    async fn send_checked(
        &self,
        key: &ChainAccount,
        msg: &impl Msg,
        what: &str,
    ) -> Result<TxOutcome, ChainError> {
        self.sign_and_broadcast(key, vec![to_any(msg)?])
            .await?
            .success(what)
    }

    /// Executes the JSON `msg` on this handle's contract and returns the included transaction
    /// whatever its result (callers read `code` and `gas_used`).
    pub async fn execute_json(
        &self,
        key: &ChainAccount,
        msg: Vec<u8>,
        gas: GasLimit,
    ) -> Result<TxOutcome, ChainError> {
        let execute = MsgExecuteContract {
            sender: Self::account_id(key.address())?,
            contract: Self::account_id(&self.contract)?,
            msg,
            funds: vec![],
        };
        self.broadcast(key, vec![to_any(&execute)?], gas).await
    }

    /// Executes the JSON `msg` on this handle's contract (gas from simulation); a failed
    /// transaction is an error naming `what` failed.
    pub async fn execute_checked(
        &self,
        key: &ChainAccount,
        msg: Vec<u8>,
        what: &str,
    ) -> Result<TxOutcome, ChainError> {
        self.execute_json(key, msg, GasLimit::Simulated)
            .await?
            .success(what)
    }

    /// A smart query of the contract at `contract` (not necessarily this handle's).
    pub async fn query_contract(
        &self,
        contract: &str,
        msg: &QueryMsg,
    ) -> Result<Vec<u8>, ChainError> {
        let request = QuerySmartContractStateRequest {
            address: contract.to_string(),
            query_data: serde_json::to_vec(msg)
                .map_err(|err| ChainError::Decode(err.to_string()))?,
        };
        let response: QuerySmartContractStateResponse = self
            .abci("/cosmwasm.wasm.v1.Query/SmartContractState", &request)
            .await?;
        Ok(response.data)
    }

    /// The code id of this handle's contract and the sha256 of that code as wasmd stored it.
    pub async fn code_hash(&self) -> Result<(u64, Vec<u8>), ChainError> {
        let info: QueryContractInfoResponse = self
            .abci(
                "/cosmwasm.wasm.v1.Query/ContractInfo",
                &QueryContractInfoRequest {
                    address: self.contract.clone(),
                },
            )
            .await?;
        let code_id = info
            .contract_info
            .ok_or_else(|| ChainError::Decode("no contract info".into()))?
            .code_id;
        let code: QueryCodeResponse = self
            .abci(
                "/cosmwasm.wasm.v1.Query/Code",
                &QueryCodeRequest { code_id },
            )
            .await?;
        let data_hash = code
            .code_info
            .ok_or_else(|| ChainError::Decode(format!("no code info for code {code_id}")))?
            .data_hash;
        Ok((code_id, data_hash))
    }

    /// Parses a bech32 account id.
    pub fn account_id(address: &str) -> Result<AccountId, ChainError> {
        AccountId::from_str(address)
            .map_err(|err| ChainError::Refused(format!("address {address}: {err}")))
    }

    /// The RPC client.
    pub fn rpc(&self) -> &HttpClient {
        &self.rpc
    }

    /// Points the handle at a contract (after instantiation).
    pub fn with_contract(mut self, contract: &str) -> Self {
        self.contract = contract.to_string();
        self
    }
}

/// Time allowed for one RPC request (tendermint-rpc's own default).
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP client for the RPC that also trusts the certificates in `path`.
fn rpc_client_trusting(path: &Path) -> Result<reqwest011::Client, ChainError> {
    let refused = |reason: String| ChainError::Refused(format!("CA {}: {reason}", path.display()));
    let mut builder = reqwest011::Client::builder()
        .use_rustls_tls()
        .timeout(RPC_TIMEOUT);
    for der in crate::tls::read_certificates(path).map_err(|err| refused(err.to_string()))? {
        let certificate =
            reqwest011::Certificate::from_der(&der).map_err(|err| refused(err.to_string()))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build().map_err(|err| refused(err.to_string()))
}

fn to_any(msg: &impl Msg) -> Result<Any, ChainError> {
    msg.to_any()
        .map_err(|err| ChainError::Refused(format!("encoding a message: {err}")))
}

#[async_trait]
impl Chain for WasmdChain {
    fn chain_id(&self) -> &str {
        &self.chain_id
    }

    fn contract(&self) -> &str {
        &self.contract
    }

    async fn query_raw(&self, msg: &QueryMsg) -> Result<Vec<u8>, ChainError> {
        self.query_contract(&self.contract, msg).await
    }

    async fn latest_block_time(&self) -> Result<u64, ChainError> {
        let status = self.rpc.status().await.map_err(unavailable)?;
        let time = status.sync_info.latest_block_time;
        Ok(time.unix_timestamp().max(0) as u64)
    }

    async fn health(&self, address: &str) -> Result<ChainHealth, ChainError> {
        let status = self.rpc.status().await.map_err(unavailable)?;
        let sync = status.sync_info;
        let request = QueryBalanceRequest {
            address: address.to_string(),
            denom: self.fees.gas_price.denom.to_string(),
        };
        let balance: QueryBalanceResponse = self
            .abci("/cosmos.bank.v1beta1.Query/Balance", &request)
            .await?;
        let amount = match balance.balance {
            Some(coin) => coin
                .amount
                .parse()
                .map_err(|_| ChainError::Decode(format!("balance {:?}", coin.amount)))?,
            None => 0,
        };
        Ok(ChainHealth {
            height: sync.latest_block_height.value(),
            block_time_secs: sync.latest_block_time.unix_timestamp().max(0) as u64,
            catching_up: sync.catching_up,
            balance: Some(amount),
        })
    }

    async fn execute(&self, account: &ChainAccount, msg: &ExecuteMsg) -> Result<TxRef, ChainError> {
        let msg = serde_json::to_vec(msg).map_err(|err| ChainError::Decode(err.to_string()))?;
        let outcome = self
            .execute_checked(account, msg, "executing the contract")
            .await?;
        tracing::info!(tx = %outcome.hash, height = outcome.height, gas_used = outcome.gas_used, "transaction included");
        Ok(TxRef {
            tx_hash: outcome.hash,
            height: outcome.height,
        })
    }
}
