//! The embedded chain: the real contract code in a cw-multi-test `App` on its own thread,
//! reached through a channel. By default blocks are instant: before every call the block time
//! is set from the wall clock (never backwards), and every transaction gets a new height. With
//! a block interval it behaves as a real chain does: transactions wait in a mempool for the
//! next block (its time is the wall clock when it is made), and queries see the last block.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cosmwasm_std::{Addr, Timestamp};
use cw_multi_test::{App, AppBuilder, ContractWrapper, Executor, MockApiBech32};
use nym_rewards::contract::{execute, instantiate, migrate, query};
use nym_rewards::msg::{ExecuteMsg, InstantiateMsg, QueryMsg};
use tokio::sync::oneshot;

use relayer_node::chain::{Chain, ChainError, ChainHealth, TxRef};
use relayer_node::keys::{ChainAccount, DEFAULT_ACCOUNT_PREFIX};

/// Chain id of the embedded chain.
pub const EMBEDDED_CHAIN_ID: &str = "nym-embedded";

type EmbeddedApp = App<cw_multi_test::BankKeeper, MockApiBech32>;

enum Request {
    Query {
        msg: QueryMsg,
        reply: oneshot::Sender<Result<Vec<u8>, ChainError>>,
    },
    Execute {
        sender: String,
        msg: ExecuteMsg,
        reply: oneshot::Sender<Result<TxRef, ChainError>>,
    },
    /// The latest block's height and time (unix seconds).
    Block { reply: oneshot::Sender<(u64, u64)> },
}

/// Handle to the embedded chain thread; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct EmbeddedChain {
    requests: mpsc::Sender<Request>,
    contract: String,
}

fn wall_clock() -> Timestamp {
    Timestamp::from_nanos(relayer_node::now_ms().saturating_mul(1_000_000))
}

fn advance_clock(app: &mut EmbeddedApp, new_block: bool) {
    app.update_block(|block| {
        let now = wall_clock();
        if now > block.time {
            block.time = now;
        }
        if new_block {
            block.height += 1;
        }
    });
}

impl EmbeddedChain {
    /// Starts the chain thread, stores the contract and instantiates it with `msg` from `admin`.
    /// `block_interval`: none for instant blocks, else the time between blocks.
    pub fn start(
        msg: InstantiateMsg,
        admin: &str,
        block_interval: Option<Duration>,
    ) -> Result<Self, ChainError> {
        let (requests, receiver) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        let admin = Addr::unchecked(admin);
        thread::Builder::new()
            .name("embedded-chain".into())
            .spawn(move || match boot(&msg, &admin) {
                Ok((app, contract)) => {
                    let _ = ready_tx.send(Ok(contract.to_string()));
                    Server {
                        app,
                        contract,
                        block_interval,
                        mempool: Vec::new(),
                        transactions: 0,
                    }
                    .serve(receiver);
                }
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                }
            })
            .map_err(|err| ChainError::Unavailable(err.to_string()))?;
        let contract = ready
            .recv()
            .map_err(|_| ChainError::Unavailable("the embedded chain thread died".into()))??;
        Ok(Self { requests, contract })
    }

    /// Sends the request `make` builds around a reply channel and awaits the answer.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, ChainError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(make(reply))
            .map_err(|_| ChainError::Unavailable("the embedded chain thread stopped".into()))?;
        answer
            .await
            .map_err(|_| ChainError::Unavailable("no answer from the embedded chain".into()))
    }
}

fn boot(msg: &InstantiateMsg, admin: &Addr) -> Result<(EmbeddedApp, Addr), ChainError> {
    let mut app: EmbeddedApp = AppBuilder::new()
        .with_api(MockApiBech32::new(DEFAULT_ACCOUNT_PREFIX))
        .build(|_, _, _| {});
    app.update_block(|block| {
        block.chain_id = EMBEDDED_CHAIN_ID.to_string();
    });
    advance_clock(&mut app, true);
    let code = ContractWrapper::new(execute, instantiate, query).with_migrate(migrate);
    let code_id = app.store_code(Box::new(code));
    let contract = app
        .instantiate_contract(
            code_id,
            admin.clone(),
            msg,
            &[],
            "nym-rewards",
            Some(admin.to_string()),
        )
        .map_err(|err| ChainError::Refused(err.to_string()))?;
    Ok((app, contract))
}

/// A transaction waiting for the next block.
struct Pending {
    sender: String,
    msg: ExecuteMsg,
    reply: oneshot::Sender<Result<TxRef, ChainError>>,
}

/// The chain thread's state.
struct Server {
    app: EmbeddedApp,
    contract: Addr,
    /// None: instant blocks.
    block_interval: Option<Duration>,
    mempool: Vec<Pending>,
    /// Transactions executed, to name each one.
    transactions: u64,
}

impl Server {
    fn serve(mut self, requests: mpsc::Receiver<Request>) {
        let mut next_block = self
            .block_interval
            .map(|interval| Instant::now() + interval);
        loop {
            let request = match (next_block, self.block_interval) {
                (Some(at), Some(interval)) => {
                    match requests.recv_timeout(at.saturating_duration_since(Instant::now())) {
                        Ok(request) => request,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            self.make_block();
                            next_block = Some(at + interval);
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
                _ => match requests.recv() {
                    Ok(request) => request,
                    Err(_) => return,
                },
            };
            self.handle(request);
        }
    }

    fn instant_blocks(&self) -> bool {
        self.block_interval.is_none()
    }

    fn handle(&mut self, request: Request) {
        match request {
            Request::Query { msg, reply } => {
                if self.instant_blocks() {
                    advance_clock(&mut self.app, false);
                }
                let result = self
                    .app
                    .wrap()
                    .query_wasm_smart::<serde_json::Value>(self.contract.clone(), &msg)
                    .map_err(|err| ChainError::Refused(err.to_string()))
                    .and_then(|value| {
                        serde_json::to_vec(&value)
                            .map_err(|err| ChainError::Decode(err.to_string()))
                    });
                let _ = reply.send(result);
            }
            Request::Execute { sender, msg, reply } => {
                let pending = Pending { sender, msg, reply };
                if self.instant_blocks() {
                    advance_clock(&mut self.app, true);
                    self.execute(pending);
                } else {
                    self.mempool.push(pending);
                }
            }
            Request::Block { reply } => {
                if self.instant_blocks() {
                    advance_clock(&mut self.app, false);
                }
                let block = self.app.block_info();
                let _ = reply.send((block.height, block.time.seconds()));
            }
        }
    }

    /// A new block at the wall clock's time with every transaction of the mempool, in order.
    fn make_block(&mut self) {
        advance_clock(&mut self.app, true);
        for pending in std::mem::take(&mut self.mempool) {
            self.execute(pending);
        }
    }

    fn execute(&mut self, pending: Pending) {
        let height = self.app.block_info().height;
        self.transactions += 1;
        let tx_hash = format!("embedded-{height}-{}", self.transactions);
        let result = self
            .app
            .execute_contract(
                Addr::unchecked(pending.sender),
                self.contract.clone(),
                &pending.msg,
                &[],
            )
            .map(|_| TxRef { tx_hash, height })
            .map_err(|err| ChainError::Refused(err.to_string()));
        let _ = pending.reply.send(result);
    }
}

#[async_trait]
impl Chain for EmbeddedChain {
    fn chain_id(&self) -> &str {
        EMBEDDED_CHAIN_ID
    }

    fn contract(&self) -> &str {
        &self.contract
    }

    async fn query_raw(&self, msg: &QueryMsg) -> Result<Vec<u8>, ChainError> {
        let msg = msg.clone();
        self.ask(|reply| Request::Query { msg, reply }).await?
    }

    async fn latest_block_time(&self) -> Result<u64, ChainError> {
        let (_, time) = self.ask(|reply| Request::Block { reply }).await?;
        Ok(time)
    }

    async fn execute(&self, account: &ChainAccount, msg: &ExecuteMsg) -> Result<TxRef, ChainError> {
        let (sender, msg) = (account.address().to_string(), msg.clone());
        self.ask(|reply| Request::Execute { sender, msg, reply })
            .await?
    }

    /// Always in sync, and without fees: no balance is reported.
    async fn health(&self, _address: &str) -> Result<ChainHealth, ChainError> {
        let (height, block_time_secs) = self.ask(|reply| Request::Block { reply }).await?;
        Ok(ChainHealth {
            height,
            block_time_secs,
            catching_up: false,
            balance: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use cosmwasm_std::HexBinary;
    use nym_rewards::msg::{EpochClock, MemberInput};
    use relayer_protocol::Keypair;

    use super::*;

    fn instantiate_msg() -> InstantiateMsg {
        let members = (1..=4u8)
            .map(|i| MemberInput {
                ed25519_pubkey: HexBinary::from(Keypair::from_seed(&[i; 32]).public()),
                address: ChainAccount::from_secret(&[i; 32], DEFAULT_ACCOUNT_PREFIX)
                    .unwrap()
                    .address()
                    .to_string(),
                api_url: format!("http://127.0.0.1:{}", 8000 + u16::from(i)),
                p2p_multiaddr: format!("/ip4/127.0.0.1/tcp/{}", 9000 + u16::from(i)),
            })
            .collect();
        InstantiateMsg {
            admin: None,
            clock: EpochClock {
                genesis_time: relayer_node::now_ms() / 1_000,
                epoch_length_secs: 60,
            },
            members,
            threshold: None,
            max_mixnodes_per_epoch: 100,
            min_rotation_delay_epochs: None,
        }
    }

    fn update_config(max: u32) -> ExecuteMsg {
        ExecuteMsg::UpdateConfig {
            max_mixnodes_per_epoch: Some(max),
            min_rotation_delay_epochs: None,
        }
    }

    /// With a block interval, transactions wait for the next block and share it, and the
    /// chain's height and time move only when a block is made.
    #[tokio::test]
    async fn with_a_block_interval_transactions_wait_for_the_next_block() {
        let admin = ChainAccount::from_secret(&[9; 32], DEFAULT_ACCOUNT_PREFIX).unwrap();
        let interval = Duration::from_millis(400);
        let chain =
            EmbeddedChain::start(instantiate_msg(), admin.address(), Some(interval)).unwrap();
        let before = chain.health("").await.unwrap();
        let sent = Instant::now();
        let (msg_a, msg_b) = (update_config(200), update_config(300));
        let (first, second) =
            tokio::join!(chain.execute(&admin, &msg_a), chain.execute(&admin, &msg_b));
        let (first, second) = (first.unwrap(), second.unwrap());
        assert!(sent.elapsed() <= interval + Duration::from_millis(300));
        assert_eq!(first.height, before.height + 1, "the next block");
        assert_eq!(first.height, second.height, "one block holds both");
        assert_ne!(first.tx_hash, second.tx_hash);
        let after = chain.health("").await.unwrap();
        assert_eq!(after.height, first.height, "queries make no block");
    }

    /// Without one, every transaction is a block of its own at once.
    #[tokio::test]
    async fn instant_blocks_give_each_transaction_its_own_height() {
        let admin = ChainAccount::from_secret(&[9; 32], DEFAULT_ACCOUNT_PREFIX).unwrap();
        let chain = EmbeddedChain::start(instantiate_msg(), admin.address(), None).unwrap();
        let first = chain.execute(&admin, &update_config(200)).await.unwrap();
        let second = chain.execute(&admin, &update_config(300)).await.unwrap();
        assert_eq!(second.height, first.height + 1);
    }
}
