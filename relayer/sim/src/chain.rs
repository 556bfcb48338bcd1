//! The simulated chain: the real rewards contract in cw-multi-test, its block time driven by
//! the virtual clock.

use cosmwasm_std::{Addr, HexBinary, Timestamp};
use cw_multi_test::{App, AppBuilder, ContractWrapper, Executor, MockApiBech32};
use nym_rewards::contract::{execute, instantiate, query};
use nym_rewards::msg::{EpochClock, EpochRewardsResponse, InstantiateMsg, MemberInput, QueryMsg};
use relayer_protocol::Certificate;

use crate::config::SimError;

/// Chain id of the simulated chain (bound into every digest).
pub(crate) const SIM_CHAIN_ID: &str = "nym-sim";

type SimApp = App<cw_multi_test::BankKeeper, MockApiBech32>;

pub(crate) struct SimChain {
    app: SimApp,
    contract: Addr,
    members: Vec<Addr>,
}

impl SimChain {
    /// Instantiates the contract with `keys` as signer set version 1 at `now_ms`.
    pub(crate) fn new(
        keys: &[[u8; 32]],
        threshold: usize,
        clock: EpochClock,
        max_mixnodes: usize,
        now_ms: u64,
    ) -> Result<Self, SimError> {
        let mut app: SimApp = AppBuilder::new()
            .with_api(MockApiBech32::new("n"))
            .build(|_, _, _| {});
        app.update_block(|block| {
            block.chain_id = SIM_CHAIN_ID.to_string();
            block.time = Timestamp::from_nanos(now_ms.saturating_mul(1_000_000));
        });
        let admin = app.api().addr_make("admin");
        let members: Vec<Addr> = (0..keys.len())
            .map(|i| app.api().addr_make(&format!("member-{i}")))
            .collect();
        let msg = InstantiateMsg {
            admin: None,
            clock,
            members: keys
                .iter()
                .zip(&members)
                .enumerate()
                .map(|(i, (key, address))| MemberInput {
                    ed25519_pubkey: HexBinary::from(key.as_slice()),
                    address: address.to_string(),
                    api_url: format!("http://sim-node-{i}"),
                    p2p_multiaddr: format!("/memory/{i}"),
                })
                .collect(),
            threshold: u32::try_from(threshold).ok(),
            max_mixnodes_per_epoch: u32::try_from(max_mixnodes).unwrap_or(u32::MAX),
            min_rotation_delay_epochs: None,
        };
        let code_id = app.store_code(Box::new(ContractWrapper::new(execute, instantiate, query)));
        let contract = app
            .instantiate_contract(code_id, admin, &msg, &[], "nym-rewards", None)
            .map_err(|err| SimError::Chain(err.to_string()))?;
        Ok(Self {
            app,
            contract,
            members,
        })
    }

    /// The contract address (bound into every digest).
    pub(crate) fn contract(&self) -> &str {
        self.contract.as_str()
    }

    /// The chain account of member `index`.
    pub(crate) fn member_address(&self, index: usize) -> Option<&Addr> {
        self.members.get(index)
    }

    /// Submits `certificate` from `member`'s account in a new block at `now_ms`; returns
    /// the transaction's reference when the contract accepted it.
    pub(crate) fn submit(
        &mut self,
        now_ms: u64,
        member: usize,
        certificate: &Certificate,
    ) -> Option<String> {
        self.app.update_block(|block| {
            block.height += 1;
            let now = Timestamp::from_nanos(now_ms.saturating_mul(1_000_000));
            block.time = block.time.max(now);
        });
        let sender = self.members.get(member).cloned()?;
        let height = self.app.block_info().height;
        self.app
            .execute_contract(
                sender,
                self.contract.clone(),
                &certificate.submit_msg(),
                &[],
            )
            .ok()
            .map(|_| format!("sim-{height}"))
    }

    /// The contract's record of `epoch`, with the member index of its submitter.
    pub(crate) fn record(&self, epoch: u64) -> Option<(EpochRewardsResponse, usize)> {
        let record: Option<EpochRewardsResponse> = self
            .app
            .wrap()
            .query_wasm_smart(self.contract.clone(), &QueryMsg::EpochRewards { epoch })
            .ok()?;
        let record = record?;
        let submitter = self
            .members
            .iter()
            .position(|address| *address == record.submitter)?;
        Some((record, submitter))
    }
}
