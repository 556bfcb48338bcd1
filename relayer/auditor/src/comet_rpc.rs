//! Contract queries over CometBFT's RPC as plain URLs and JSON answers, for front ends without
//! a Cosmos SDK client (the browser auditor fetches the URLs, this module builds and reads
//! them). A smart query is `abci_query` on `/cosmwasm.wasm.v1.Query/SmartContractState` with
//! a protobuf `QuerySmartContractStateRequest` (field 1 the contract address, field 2 the
//! query's JSON), and its answer a `QuerySmartContractStateResponse` (field 1 the JSON).

use cosmwasm_std::Binary;
use nym_rewards::msg::{
    EpochRewardsResponse, LatestEpochResponse, MixnodeRewardsResponse, QueryMsg, SignerSetResponse,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

/// The ABCI path of a smart query, URL-encoded with its quotes.
const SMART_QUERY_PATH: &str = "%22%2Fcosmwasm.wasm.v1.Query%2FSmartContractState%22";

/// Why an RPC answer cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RpcError {
    /// Not the JSON-RPC answer expected.
    #[error("the chain's answer is not a CometBFT {what} answer: {detail}")]
    Malformed {
        /// `status` or `abci_query`.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The JSON-RPC call failed.
    #[error("the chain refused the call: {0}")]
    Rpc(String),
    /// The query failed in the chain (e.g. an unknown contract).
    #[error("the query failed (code {code}): {log}")]
    Query {
        /// ABCI code.
        code: u32,
        /// The chain's log.
        log: String,
    },
    /// The contract's answer is not the type expected.
    #[error("the contract's answer does not decode: {0}")]
    Answer(String),
}

fn varint(mut value: usize, out: &mut Vec<u8>) {
    while value >= 0x80 {
        // Low seven bits with the continuation bit; the cast keeps exactly those bits.
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A bytes or string field; proto3 leaves an empty one out.
fn length_delimited(field: u8, bytes: &[u8], out: &mut Vec<u8>) {
    if bytes.is_empty() {
        return;
    }
    out.push((field << 3) | 2);
    varint(bytes.len(), out);
    out.extend_from_slice(bytes);
}

/// The protobuf `QuerySmartContractStateRequest` of `query` to `contract`.
pub fn smart_query_request(contract: &str, query: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contract.len() + query.len() + 8);
    length_delimited(1, contract.as_bytes(), &mut out);
    length_delimited(2, query, &mut out);
    out
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Field 1 (`data`) of a protobuf `QuerySmartContractStateResponse`; unknown fields skipped.
fn smart_query_data(message: &[u8]) -> Option<&[u8]> {
    let mut at = 0;
    let mut data: &[u8] = &[];
    while at < message.len() {
        let key = read_varint(message, &mut at)?;
        let value_len = match key & 7 {
            0 => {
                read_varint(message, &mut at)?;
                continue;
            }
            1 => 8,
            5 => 4,
            2 => usize::try_from(read_varint(message, &mut at)?).ok()?,
            _ => return None,
        };
        let end = at
            .checked_add(value_len)
            .filter(|end| *end <= message.len())?;
        if key == (1 << 3) | 2 {
            data = &message[at..end];
        }
        at = end;
    }
    Some(data)
}

fn query_url(rpc: &str, contract: &str, query: &QueryMsg) -> String {
    // A QueryMsg always serialises; an empty query would only make the chain refuse it.
    let query = cosmwasm_std::to_json_vec(query).unwrap_or_default();
    format!(
        "{}/abci_query?path={SMART_QUERY_PATH}&data=0x{}",
        rpc.trim_end_matches('/'),
        hex::encode(smart_query_request(contract, &query))
    )
}

/// The URL of the contract's record of `epoch` (answer: [`epoch_record_answer`]).
pub fn epoch_record_url(rpc: &str, contract: &str, epoch: u64) -> String {
    query_url(rpc, contract, &QueryMsg::EpochRewards { epoch })
}

/// The URL of the contract's signer set `version` (answer: [`signer_set_answer`]).
pub fn signer_set_url(rpc: &str, contract: &str, version: u32) -> String {
    query_url(
        rpc,
        contract,
        &QueryMsg::SignerSet {
            version: Some(version),
        },
    )
}

/// The URL of the contract's clock and latest stored epoch (answer: [`latest_epoch_answer`]).
pub fn latest_epoch_url(rpc: &str, contract: &str) -> String {
    query_url(rpc, contract, &QueryMsg::LatestEpoch {})
}

/// The URL of `mix_id`'s records in the `limit` stored epochs after `start_after` (answer:
/// [`mixnode_epochs_answer`]).
pub fn mixnode_epochs_url(
    rpc: &str,
    contract: &str,
    mix_id: u32,
    start_after: Option<u64>,
    limit: u32,
) -> String {
    query_url(
        rpc,
        contract,
        &QueryMsg::MixnodeRewards {
            mix_id,
            start_after,
            limit: Some(limit),
        },
    )
}

/// The URL of the chain's `/status` (answer: [`chain_id_answer`]).
pub fn status_url(rpc: &str) -> String {
    format!("{}/status", rpc.trim_end_matches('/'))
}

#[derive(Deserialize)]
struct JsonRpc<T> {
    result: Option<T>,
    error: Option<serde_json::Value>,
}

fn json_rpc<T: DeserializeOwned>(what: &'static str, answer: &str) -> Result<T, RpcError> {
    let answer: JsonRpc<T> = serde_json::from_str(answer).map_err(|err| RpcError::Malformed {
        what,
        detail: err.to_string(),
    })?;
    match (answer.result, answer.error) {
        (_, Some(error)) => Err(RpcError::Rpc(error.to_string())),
        (Some(result), None) => Ok(result),
        (None, None) => Err(RpcError::Malformed {
            what,
            detail: "neither result nor error".into(),
        }),
    }
}

#[derive(Deserialize)]
struct StatusResult {
    node_info: NodeInfo,
}

#[derive(Deserialize)]
struct NodeInfo {
    network: String,
}

/// The chain id in a `/status` answer.
pub fn chain_id_answer(answer: &str) -> Result<String, RpcError> {
    json_rpc::<StatusResult>("status", answer).map(|status| status.node_info.network)
}

#[derive(Deserialize)]
struct AbciResult {
    response: AbciResponse,
}

#[derive(Deserialize)]
struct AbciResponse {
    #[serde(default)]
    code: u32,
    #[serde(default)]
    log: String,
    value: Option<Binary>,
}

fn smart_query_answer<T: DeserializeOwned>(answer: &str) -> Result<T, RpcError> {
    let response = json_rpc::<AbciResult>("abci_query", answer)?.response;
    if response.code != 0 {
        return Err(RpcError::Query {
            code: response.code,
            log: response.log,
        });
    }
    let message = response.value.unwrap_or_default();
    let data = smart_query_data(&message).ok_or_else(|| RpcError::Malformed {
        what: "abci_query",
        detail: "the value is not a QuerySmartContractStateResponse".into(),
    })?;
    cosmwasm_std::from_json(data).map_err(|err| RpcError::Answer(err.to_string()))
}

/// The contract's record in an [`epoch_record_url`] answer; `None` when it holds none.
pub fn epoch_record_answer(answer: &str) -> Result<Option<EpochRewardsResponse>, RpcError> {
    smart_query_answer(answer)
}

/// The contract's answer to [`latest_epoch_url`].
pub fn latest_epoch_answer(answer: &str) -> Result<LatestEpochResponse, RpcError> {
    smart_query_answer(answer)
}

/// The contract's answer to [`mixnode_epochs_url`].
pub fn mixnode_epochs_answer(answer: &str) -> Result<MixnodeRewardsResponse, RpcError> {
    smart_query_answer(answer)
}

/// The contract's signer set in a [`signer_set_url`] answer.
pub fn signer_set_answer(answer: &str) -> Result<SignerSetResponse, RpcError> {
    smart_query_answer(answer)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code

    use cosmrs::proto::cosmwasm::wasm::v1::{
        QuerySmartContractStateRequest, QuerySmartContractStateResponse,
    };
    use cosmrs::proto::prost::Message;

    use super::*;

    fn abci_answer(code: u32, log: &str, value: &[u8]) -> String {
        serde_json::json!({
            "jsonrpc": "2.0", "id": -1,
            "result": {"response": {"code": code, "log": log, "info": "", "index": "0",
                "key": null, "value": Binary::from(value).to_base64(), "height": "7"}}
        })
        .to_string()
    }

    #[test]
    fn the_request_is_the_sdk_encoding_at_every_length() {
        // Lengths across the one- and two-byte varint boundary.
        for len in [0, 1, 127, 128, 300, 20_000] {
            let query = vec![b'x'; len];
            let contract = "wasm14hj2tavq8fpesdwxxcu44rty3hh90vhujrvcmstl4zr3txmfvw9s0phg4d";
            let sdk = QuerySmartContractStateRequest {
                address: contract.to_string(),
                query_data: query.clone(),
            }
            .encode_to_vec();
            assert_eq!(smart_query_request(contract, &query), sdk, "length {len}");
        }
    }

    #[test]
    fn the_url_carries_the_path_and_the_hex_request() {
        let url = epoch_record_url("http://127.0.0.1:26657/", "wasm1c", 12);
        let request = smart_query_request("wasm1c", br#"{"epoch_rewards":{"epoch":12}}"#);
        assert_eq!(
            url,
            format!(
                "http://127.0.0.1:26657/abci_query?path=%22%2Fcosmwasm.wasm.v1.Query%2FSmartContractState%22&data=0x{}",
                hex::encode(request)
            )
        );
        assert_eq!(status_url("http://h:1/"), "http://h:1/status");
    }

    #[test]
    fn answers_decode_from_the_sdk_encoding() {
        let set = br#"{"version":2,"effective_from_epoch":9,"threshold":3,"members":[]}"#;
        let value = QuerySmartContractStateResponse { data: set.to_vec() }.encode_to_vec();
        let decoded = signer_set_answer(&abci_answer(0, "", &value)).unwrap();
        assert_eq!((decoded.version, decoded.threshold), (2, 3));
        let none = QuerySmartContractStateResponse {
            data: b"null".to_vec(),
        }
        .encode_to_vec();
        assert_eq!(
            epoch_record_answer(&abci_answer(0, "", &none)).unwrap(),
            None
        );
    }

    #[test]
    fn failures_are_typed() {
        assert_eq!(
            signer_set_answer(&abci_answer(18, "no such contract", &[])),
            Err(RpcError::Query {
                code: 18,
                log: "no such contract".into()
            })
        );
        let error = r#"{"jsonrpc":"2.0","id":-1,"error":{"code":-32603,"message":"boom"}}"#;
        assert!(matches!(signer_set_answer(error), Err(RpcError::Rpc(_))));
        assert!(matches!(
            chain_id_answer("<html>"),
            Err(RpcError::Malformed { what: "status", .. })
        ));
        // A truncated protobuf value is refused, not read past its end.
        let truncated = abci_answer(0, "", &[0x0a, 0x05, b'n']);
        assert!(matches!(
            signer_set_answer(&truncated),
            Err(RpcError::Malformed { .. })
        ));
        assert!(matches!(
            signer_set_answer(&abci_answer(0, "", b"")),
            Err(RpcError::Answer(_))
        ));
    }

    #[test]
    fn the_chain_id_comes_from_the_status() {
        let status = r#"{"jsonrpc":"2.0","id":-1,"result":{"node_info":{"network":"nyx","version":"0.38"},"sync_info":{}}}"#;
        assert_eq!(chain_id_answer(status).unwrap(), "nyx");
    }
}
