//! Every HTTP route on a real socket: good requests answer, malformed paths, ids and
//! parameters get a 4xx with a JSON error, never a 5xx.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use cosmwasm_std::HexBinary;
use nym_rewards::msg::{EpochClock, Member, MixnodeReward, SignerSetResponse};
use relayer_node::api::{ApiLimits, ApiState, NodeStatus, router, serve as serve_api};
use relayer_node::chain::ChainHealth;
use relayer_node::db::Db;
use relayer_node::health::ChainView;
use relayer_node::metrics::NodeMetrics;
use relayer_node::signer_sets::SharedSets;
use relayer_protocol::{OfficialEpoch, OfficialSource};
use relayer_store::StoredOfficial;

/// The members of the test's signer set, by key byte.
const MEMBER_KEYS: [u8; 4] = [1, 2, 3, 4];

/// The keys of members `connected` (by key byte) and of an outsider (key 9), which never
/// counts.
fn connected(count: usize) -> Box<dyn Fn() -> Vec<[u8; 32]> + Send + Sync> {
    Box::new(move || {
        MEMBER_KEYS[..count]
            .iter()
            .chain([&9])
            .map(|&byte| [byte; 32])
            .collect()
    })
}

/// An API state over a database holding epoch 4, with `connected_members` as given.
async fn state(
    dir: &tempfile::TempDir,
    connected_members: Box<dyn Fn() -> Vec<[u8; 32]> + Send + Sync>,
) -> Arc<ApiState> {
    let db = Arc::new(Db::open(&dir.path().join("api.sqlite")).unwrap());
    let stored = StoredOfficial {
        official: OfficialEpoch {
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
        },
        source: OfficialSource::Own,
        tx_ref: Some("AB".into()),
    };
    db.protocol(move |store| store.save_official(&stored, 0))
        .await
        .unwrap();
    Arc::new(ApiState {
        db,
        metrics: Arc::new(NodeMetrics::default()),
        status: Mutex::new(NodeStatus {
            name: "n0".into(),
            ..NodeStatus::default()
        }),
        signer_sets: SharedSets::new([SignerSetResponse {
            version: 1,
            effective_from_epoch: 0,
            threshold: 1,
            members: MEMBER_KEYS
                .iter()
                .map(|&byte| Member {
                    ed25519_pubkey: HexBinary::from([byte; 32]),
                    address: cosmwasm_std::Addr::unchecked(format!("wasm1member{byte}")),
                    api_url: format!("http://member{byte}:8000"),
                    p2p_multiaddr: format!("/dns4/member{byte}/tcp/9000"),
                })
                .collect(),
        }]),
        own_key: [0; 32],
        observation_threshold: None,
        epoch_clock: EpochClock {
            genesis_time: 0,
            epoch_length_secs: 60,
        },
        connected_members,
        current_epoch: Box::new(|| Some(5)),
        dashboard: Default::default(),
        chain_view: Arc::new(Mutex::new(synced_chain())),
        latest_final: tokio::sync::watch::channel(Some(4)).1,
        auditor: None,
        min_balance: 50,
        metrics_on_api: true,
    })
}

/// A chain view as the watcher leaves it after a good poll just now.
fn synced_chain() -> ChainView {
    ChainView {
        last_ok: Some((
            ChainHealth {
                height: 77,
                block_time_secs: relayer_node::now_ms() / 1_000,
                catching_up: false,
                balance: Some(100),
            },
            relayer_node::now_ms(),
        )),
        last_error: None,
    }
}

async fn serve() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir, connected(3)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    (dir, url)
}

/// Serves `state` with `limits` (and client addresses) on an ephemeral port.
fn serve_limited(
    state: Arc<ApiState>,
    limits: ApiLimits,
) -> (String, tokio::sync::watch::Sender<bool>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    serve_api(listener, state, limits, None, shutdown_rx).unwrap();
    (url, shutdown)
}

#[tokio::test]
async fn a_client_past_its_rate_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let limits = ApiLimits {
        max_concurrent: 8,
        per_client_per_sec: 1,
        per_client_burst: 2,
        ..ApiLimits::default()
    };
    let (url, _shutdown) = serve_limited(state(&dir, connected(3)).await, limits);
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = http.get(format!("{url}/v1/health")).send().await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status().as_u16() == 429 {
            assert!(
                response
                    .headers()
                    .contains_key(reqwest::header::RETRY_AFTER)
            );
            let body: serde_json::Value = response.json().await.unwrap();
            assert!(body["error"].as_str().unwrap().contains("rate limit"));
        }
    }
    assert_eq!(statuses, vec![200, 200, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_concurrency_limit_requests_get_503_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // `/v1/status` asks for the connected peers: this one blocks until released.
    let (entered_tx, mut entered_rx) = tokio::sync::mpsc::unbounded_channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    // The wait is announced to tokio (`block_in_place`): a worker blocked without it keeps the
    // tasks in its queue (its LIFO slot cannot be stolen), and the second request then never
    // reached the server (a CI rehearsal hung here).
    let peers = Box::new(move || {
        let _ = entered_tx.send(());
        tokio::task::block_in_place(|| {
            let _ = release_rx.lock().unwrap().recv();
        });
        vec![[1; 32]]
    });
    let limits = ApiLimits {
        max_concurrent: 1,
        per_client_per_sec: 100,
        per_client_burst: 100,
        ..ApiLimits::default()
    };
    let (url, _shutdown) = serve_limited(state(&dir, peers).await, limits);
    let http = reqwest::Client::new();
    let first = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move {
            http.get(format!("{url}/v1/status"))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    entered_rx.recv().await.unwrap();
    // (A route that does not ask for the peers, so it never waits on the blocked closure.)
    let second = http
        .get(format!("{url}/v1/epochs/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status().as_u16(), 503);
    release_tx.send(()).unwrap();
    assert_eq!(first.await.unwrap().as_u16(), 200);
    let third = http
        .get(format!("{url}/v1/epochs/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(third.status().as_u16(), 200, "the slot is free again");
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
        ("/", 200),
        ("/v1/dashboard", 200),
        ("/v1/openapi.json", 200),
        ("/docs/", 200),
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

/// A concrete request for every documented path, answered 200.
const DOCUMENTED: [(&str, &str); 9] = [
    ("/", "/"),
    ("/v1/dashboard", "/v1/dashboard"),
    ("/v1/health", "/v1/health"),
    ("/v1/status", "/v1/status"),
    ("/v1/signer-set", "/v1/signer-set"),
    ("/v1/epochs/latest", "/v1/epochs/latest"),
    ("/v1/epochs/{epoch}/rewards", "/v1/epochs/4/rewards"),
    (
        "/v1/mixnodes/{id}/rewards",
        "/v1/mixnodes/2/rewards?limit=3",
    ),
    ("/metrics", "/metrics"),
];

async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// A validator for `schema` of the OpenAPI `doc`, with the document's components in reach of
/// its `$ref`s.
fn validator(doc: &serde_json::Value, schema: &serde_json::Value) -> jsonschema::Validator {
    let mut root = schema.clone();
    root["components"] = doc["components"].clone();
    jsonschema::validator_for(&root).unwrap()
}

#[tokio::test]
async fn the_openapi_document_covers_every_route_and_answers_match_its_schemas() {
    let (_dir, url) = serve().await;
    let http = reqwest::Client::new();
    let doc = get_json(&http, &format!("{url}/v1/openapi.json")).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths: std::collections::BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let documented: std::collections::BTreeSet<&str> =
        DOCUMENTED.iter().map(|(path, _)| *path).collect();
    assert_eq!(
        paths, documented,
        "every served route is documented, and only those"
    );
    for (template, request) in DOCUMENTED {
        let response = http.get(format!("{url}{request}")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{request}");
        let content = &doc["paths"][template]["get"]["responses"]["200"]["content"];
        let Some(schema) = content.get("application/json").map(|c| c["schema"].clone()) else {
            // Text answers: the page and the metrics; the document says which type.
            let declared: Vec<&String> = content.as_object().unwrap().keys().collect();
            let served = response.headers()[reqwest::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .to_string();
            assert!(
                declared.iter().any(|d| served.starts_with(d.as_str())),
                "{request}: served {served}, documented {declared:?}"
            );
            continue;
        };
        let body: serde_json::Value = response.json().await.unwrap();
        let errors: Vec<String> = validator(&doc, &schema)
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{request}: {errors:?}\n{body}");
    }
    // The error answers match the documented error body too.
    let error_schema = &doc["paths"]["/v1/epochs/{epoch}/rewards"]["get"]["responses"]["400"]["content"]
        ["application/json"]["schema"];
    let body = get_json(&http, &format!("{url}/v1/epochs/abc/rewards")).await;
    assert!(validator(&doc, error_schema).is_valid(&body));
    // The interactive page is served from embedded assets.
    let page = http.get(format!("{url}/docs/")).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("swagger"));
}

/// Reads from `stream` until the server closes it (or errs); fails if it stays open `within`.
async fn closed_by_server(stream: &mut tokio::net::TcpStream, within: std::time::Duration) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
}

#[tokio::test]
async fn a_client_past_its_share_of_connections_is_closed_at_once() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let limits = ApiLimits {
        max_connections_per_client: 2,
        ..ApiLimits::default()
    };
    let (url, _shutdown) = serve_limited(state(&dir, connected(3)).await, limits);
    let addr = url.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let mut third = tokio::net::TcpStream::connect(&addr).await.unwrap();
    closed_by_server(&mut third, std::time::Duration::from_secs(5)).await;
    // One of the two asks to be closed after its request; once the server has closed it
    // (its slot is released before the socket closes), the client may connect again.
    let mut first = held.remove(0);
    first
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    closed_by_server(&mut first, std::time::Duration::from_secs(5)).await;
    let response = reqwest::Client::new()
        .get(format!("{url}/v1/health"))
        .send()
        .await
        .expect("a freed slot is usable again");
    assert!(response.status().is_success());
}

/// Opens a connection that sends nothing to a node served with `limits`; the server must
/// close it within 5 s.
async fn assert_silent_connection_closed(limits: ApiLimits) {
    let dir = tempfile::tempdir().unwrap();
    let (url, _shutdown) = serve_limited(state(&dir, connected(3)).await, limits);
    let mut silent = tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .unwrap();
    closed_by_server(&mut silent, std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_when_its_lifetime_is_over() {
    // A slowloris: closed by its 200 ms lifetime, with an idle deadline far past the 5 s
    // the test waits, so only the lifetime can close it.
    assert_silent_connection_closed(ApiLimits {
        connection_lifetime_ms: 200,
        connection_idle_ms: 60_000,
        ..ApiLimits::default()
    })
    .await;
}

#[tokio::test]
async fn a_connection_idle_past_its_deadline_is_closed() {
    // No byte either way: closed after 200 ms of idleness, long before its 30 s lifetime.
    assert_silent_connection_closed(ApiLimits {
        connection_idle_ms: 200,
        ..ApiLimits::default()
    })
    .await;
}

#[tokio::test]
async fn health_answers_503_naming_the_failing_check_and_200_once_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir, connected(0)).await;
    let (url, _shutdown) = serve_limited(state.clone(), ApiLimits::default());
    let http = reqwest::Client::new();
    let health = || async {
        let response = http.get(format!("{url}/v1/health")).send().await.unwrap();
        let code = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        let failing: Vec<String> = body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|check| check["ok"] == false)
            .map(|check| check["name"].as_str().unwrap().to_string())
            .collect();
        (code, body["status"].as_str().unwrap().to_string(), failing)
    };
    assert_eq!(health().await, (200, "ready".into(), vec![]));

    *state.chain_view.lock().unwrap() = ChainView {
        last_ok: None,
        last_error: Some("connection refused".into()),
    };
    assert_eq!(
        health().await,
        (
            503,
            "not_ready".into(),
            vec!["chain".into(), "balance".into()]
        )
    );

    let mut poor = synced_chain();
    if let Some((chain, _)) = poor.last_ok.as_mut() {
        chain.balance = Some(49);
    }
    *state.chain_view.lock().unwrap() = poor;
    assert_eq!(
        health().await,
        (503, "not_ready".into(), vec!["balance".into()])
    );

    *state.chain_view.lock().unwrap() = synced_chain();
    assert_eq!(health().await, (200, "ready".into(), vec![]));
}

#[tokio::test]
async fn metrics_carry_gauges_and_can_move_to_their_own_address() {
    let dir = tempfile::tempdir().unwrap();
    let shared = state(&dir, connected(3)).await;
    let text = shared.metrics_text();
    for line in [
        "relayer_connected_peers 3\n",
        "relayer_latest_final_epoch 4\n",
        "relayer_chain_height 77\n",
        "relayer_account_balance 100\n",
        "relayer_submission_outcomes_total{outcome=\"accepted\"} 0\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }

    let dir = tempfile::tempdir().unwrap();
    let mut apart = Arc::into_inner(state(&dir, connected(3)).await).unwrap();
    apart.metrics_on_api = false;
    let apart = Arc::new(apart);
    let (url, _shutdown) = serve_limited(apart.clone(), ApiLimits::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let metrics_url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    relayer_node::api::serve_metrics(listener, apart, &ApiLimits::default(), stop_rx).unwrap();
    let http = reqwest::Client::new();
    let on_api = http.get(format!("{url}/metrics")).send().await.unwrap();
    assert_eq!(on_api.status().as_u16(), 404);
    let own = http.get(&metrics_url).send().await.unwrap();
    assert_eq!(own.status().as_u16(), 200);
    assert!(
        own.text()
            .await
            .unwrap()
            .contains("relayer_latest_final_epoch 4\n")
    );
}
