//! Writes the contract's JSON schemas into `./schema` (run through `make schema`).

use cosmwasm_schema::write_api;
use nym_rewards::msg::{ExecuteMsg, InstantiateMsg, MigrateMsg, QueryMsg};

fn main() {
    write_api! {
        name: "nym-rewards",
        instantiate: InstantiateMsg,
        execute: ExecuteMsg,
        query: QueryMsg,
        migrate: MigrateMsg,
    }
}
