//! The embedded chain: the real contract code in a cw-multi-test `App` on its own thread,
//! reached through a channel. Before every call the block time is set from the wall clock
//! (never backwards), and every transaction gets a new height.

use std::sync::mpsc;
use std::thread;

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
    pub fn start(msg: InstantiateMsg, admin: &str) -> Result<Self, ChainError> {
        let (requests, receiver) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        let admin = Addr::unchecked(admin);
        thread::Builder::new()
            .name("embedded-chain".into())
            .spawn(move || match boot(&msg, &admin) {
                Ok((app, contract)) => {
                    let _ = ready_tx.send(Ok(contract.to_string()));
                    serve(app, receiver, contract);
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

fn serve(mut app: EmbeddedApp, requests: mpsc::Receiver<Request>, contract: Addr) {
    while let Ok(request) = requests.recv() {
        match request {
            Request::Query { msg, reply } => {
                advance_clock(&mut app, false);
                let result = app
                    .wrap()
                    .query_wasm_smart::<serde_json::Value>(contract.clone(), &msg)
                    .map_err(|err| ChainError::Refused(err.to_string()))
                    .and_then(|value| {
                        serde_json::to_vec(&value)
                            .map_err(|err| ChainError::Decode(err.to_string()))
                    });
                let _ = reply.send(result);
            }
            Request::Execute { sender, msg, reply } => {
                advance_clock(&mut app, true);
                let height = app.block_info().height;
                let result = app
                    .execute_contract(Addr::unchecked(sender), contract.clone(), &msg, &[])
                    .map(|_| TxRef {
                        tx_hash: format!("embedded-{height}"),
                        height,
                    })
                    .map_err(|err| ChainError::Refused(err.to_string()));
                let _ = reply.send(result);
            }
            Request::Block { reply } => {
                advance_clock(&mut app, false);
                let block = app.block_info();
                let _ = reply.send((block.height, block.time.seconds()));
            }
        }
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
