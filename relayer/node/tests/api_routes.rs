//! Every HTTP route on a real socket: good requests answer, malformed paths, ids and
//! parameters get a 4xx with a JSON error, never a 5xx.

use std::sync::{Arc, Mutex};

use cosmwasm_std::HexBinary;
use nym_rewards::msg::{MixnodeReward, SignerSetResponse};
use relayer::api::{ApiState, NodeStatus, router};
use relayer::metrics::NodeMetrics;
use relayer::store::{OfficialEpoch, OfficialSource, Store};

async fn serve() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("api.sqlite")).unwrap());
    store
        .save_official(
            &OfficialEpoch {
                epoch: 4,
                signer_set_version: 1,
                data_hash: HexBinary::from(vec![3; 32]),
                rewards: vec![MixnodeReward {
                    mix_id: 2,
                    uptime_bp: 8_000,
                }],
                signatures: vec![],
                submitter: "wasm1x".into(),
                height: 10,
                source: OfficialSource::Own,
                tx_ref: Some("AB".into()),
            },
            0,
        )
        .unwrap();
    let state = Arc::new(ApiState {
        store,
        metrics: Arc::new(NodeMetrics::default()),
        status: Mutex::new(NodeStatus {
            name: "n0".into(),
            ..NodeStatus::default()
        }),
        signer_set: SignerSetResponse {
            version: 1,
            effective_from_epoch: 0,
            threshold: 1,
            members: vec![],
        },
        connected_peers: Box::new(|| 3),
        current_epoch: Box::new(|| Some(5)),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    (dir, url)
}

#[tokio::test]
async fn routes_answer_and_bad_input_gets_json_4xx() {
    let (_dir, url) = serve().await;
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let request = http.get(format!("{url}{path}"));
        async move { request.send().await.unwrap() }
    };
    for (path, status) in [
        ("/v1/health", 200),
        ("/v1/status", 200),
        ("/v1/signer-set", 200),
        ("/v1/epochs/latest", 200),
        ("/v1/epochs/4/rewards", 200),
        ("/v1/mixnodes/2/rewards", 200),
        ("/v1/mixnodes/2/rewards?limit=5", 200),
        ("/metrics", 200),
        ("/v1/epochs/5/rewards", 404),
        ("/v1/epochs/abc/rewards", 400),
        ("/v1/epochs/-1/rewards", 400),
        ("/v1/epochs/99999999999999999999999/rewards", 400),
        ("/v1/mixnodes/x/rewards", 400),
        ("/v1/mixnodes/2/rewards?limit=0", 400),
        ("/v1/mixnodes/2/rewards?limit=zz", 400),
        ("/v1/nothing", 404),
    ] {
        let response = get(path).await;
        assert_eq!(response.status().as_u16(), status, "{path}");
        if status >= 400 {
            let body: serde_json::Value = response.json().await.unwrap();
            assert!(body["error"].is_string(), "{path}: {body}");
        }
    }
    let status: serde_json::Value = get("/v1/status").await.json().await.unwrap();
    assert_eq!(status["connected_peers"], 3);
    assert_eq!(status["last_official_epoch"], 4);
    let epoch: serde_json::Value = get("/v1/epochs/4/rewards").await.json().await.unwrap();
    assert_eq!(epoch["rewards"][0]["uptime_bp"], 8_000);
    let history: serde_json::Value = get("/v1/mixnodes/2/rewards").await.json().await.unwrap();
    assert_eq!(history["rewards"][0]["epoch"], 4);
}
