//! The simulated chain: the real rewards contract in cw-multi-test, its block time driven by
//! the virtual clock.

use cosmwasm_std::{Addr, HexBinary, Timestamp};
use cw_multi_test::{App, AppBuilder, ContractWrapper, Executor, MockApiBech32};
use nym_rewards::contract::{execute, instantiate, query};
use nym_rewards::msg::{
    ConfigResponse, EpochClock, EpochRewardsResponse, ExecuteMsg, InstantiateMsg, MemberInput,
    QueryMsg, SignerSetResponse,
};
use relayer_protocol::{Certificate, SignerSet};

use crate::config::SimError;

/// Chain id of the simulated chain (bound into every digest).
pub(crate) const SIM_CHAIN_ID: &str = "nym-sim";

type SimApp = App<cw_multi_test::BankKeeper, MockApiBech32>;

pub(crate) struct SimChain {
    app: SimApp,
    contract: Addr,
    admin: Addr,
    /// Every node's chain account, by node index (members of some version or not).
    members: Vec<Addr>,
}

impl SimChain {
    /// Instantiates the contract at `now_ms` with the first `members` of `keys` as signer set
    /// version 1; every key gets a chain account, for the versions it joins later.
    pub(crate) fn new(
        keys: &[[u8; 32]],
        members: usize,
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
        let accounts: Vec<Addr> = (0..keys.len())
            .map(|i| app.api().addr_make(&format!("member-{i}")))
            .collect();
        let inputs = member_inputs(keys, &accounts, &(0..members).collect::<Vec<_>>());
        let msg = InstantiateMsg {
            admin: None,
            clock,
            members: inputs,
            threshold: u32::try_from(threshold).ok(),
            max_mixnodes_per_epoch: u32::try_from(max_mixnodes).unwrap_or(u32::MAX),
            min_rotation_delay_epochs: None,
        };
        let code_id = app.store_code(Box::new(ContractWrapper::new(execute, instantiate, query)));
        let contract = app
            .instantiate_contract(code_id, admin.clone(), &msg, &[], "nym-rewards", None)
            .map_err(|err| SimError::Chain(err.to_string()))?;
        Ok(Self {
            app,
            contract,
            admin,
            members: accounts,
        })
    }

    /// The admin schedules the nodes `members` (of `keys`, by node index) as the next signer
    /// set, governing from `effective_from_epoch`, in a new block at `now_ms`.
    pub(crate) fn rotate(
        &mut self,
        now_ms: u64,
        keys: &[[u8; 32]],
        members: &[usize],
        threshold: usize,
        effective_from_epoch: u64,
    ) -> Result<(), SimError> {
        self.next_block(now_ms);
        let msg = ExecuteMsg::UpdateSignerSet {
            members: member_inputs(keys, &self.members, members),
            threshold: u32::try_from(threshold).ok(),
            effective_from_epoch,
        };
        self.app
            .execute_contract(self.admin.clone(), self.contract.clone(), &msg, &[])
            .map(|_| ())
            .map_err(|err| SimError::Chain(format!("rotation refused: {err}")))
    }

    /// The newest signer-set version the contract holds (scheduled or in force).
    pub(crate) fn latest_version(&self) -> Option<u32> {
        let config: ConfigResponse = self
            .app
            .wrap()
            .query_wasm_smart(self.contract.clone(), &QueryMsg::Config {})
            .ok()?;
        Some(config.latest_signer_set_version)
    }

    /// Signer set `version`, as a node reads it.
    pub(crate) fn signer_set(&self, version: u32) -> Option<SignerSet> {
        let query = QueryMsg::SignerSet {
            version: Some(version),
        };
        self.read_set(&query)
    }

    /// Every signer set a node starting at `window_start` needs: the one governing that
    /// epoch and every later one.
    pub(crate) fn signer_sets_from(&self, window_start: u64) -> Vec<SignerSet> {
        let query = QueryMsg::SignerSetForEpoch {
            epoch: window_start,
        };
        let Some(first) = self.read_set(&query) else {
            return Vec::new();
        };
        let latest = self.latest_version().unwrap_or(first.version);
        let later = (first.version + 1..=latest).filter_map(|version| self.signer_set(version));
        std::iter::once(first).chain(later).collect()
    }

    fn read_set(&self, query: &QueryMsg) -> Option<SignerSet> {
        let set: SignerSetResponse = self
            .app
            .wrap()
            .query_wasm_smart(self.contract.clone(), query)
            .ok()?;
        SignerSet::try_from(&set).ok()
    }

    fn next_block(&mut self, now_ms: u64) {
        self.app.update_block(|block| {
            block.height += 1;
            let now = Timestamp::from_nanos(now_ms.saturating_mul(1_000_000));
            block.time = block.time.max(now);
        });
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
        self.next_block(now_ms);
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

/// The contract's inputs for the nodes `members` (by node index).
fn member_inputs(keys: &[[u8; 32]], accounts: &[Addr], members: &[usize]) -> Vec<MemberInput> {
    members
        .iter()
        .filter_map(|&i| {
            Some(MemberInput {
                ed25519_pubkey: HexBinary::from(keys.get(i)?.as_slice()),
                address: accounts.get(i)?.to_string(),
                api_url: format!("http://sim-node-{i}"),
                p2p_multiaddr: format!("/memory/{i}"),
            })
        })
        .collect()
}
