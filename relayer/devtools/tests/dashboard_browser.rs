//! The dashboard in a real browser: a devnet on loopback, and once the API shows final epochs,
//! headless Chromium (Debian's package) loads a node's `/`, runs its script, and the rendered
//! DOM must list those epochs. The screenshot is kept at `target/dashboard.png`. Then the
//! standalone proof page (the auditor in wasm, `make auditor-web`) checks a bundle of one of
//! those epochs against a pinned signer-set hash, and a modified copy.

#![allow(clippy::unwrap_used)] // test code

use std::path::PathBuf;
use std::time::Duration;

use relayer_auditor::{ChainContext, ProofBundle, Report, TrustAnchor, signer_set_hash};
use relayer_devtools::browser::{Capture, attribute, bundle_link, headless};
use relayer_devtools::browser_audit::Seen;
use relayer_devtools::devnet::{Devnet, DevnetOptions};
use relayer_node::chain::Chain;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_final_epochs_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = DevnetOptions::new(4, dir.path().to_path_buf());
    options.epoch_secs = 2;
    options.mixnodes = 20;
    let devnet = Devnet::start(options).await.unwrap();
    let first = devnet.current_epoch();
    for epoch in first..first + 2 {
        devnet
            .wait_until_stored(epoch, Duration::from_secs(40))
            .await
            .unwrap();
    }
    let api = devnet.node(0).unwrap().api_url.clone().unwrap();
    let dashboard_url = format!("{api}/");
    let dom = tokio::task::spawn_blocking(move || headless(&dashboard_url, Capture::Dom, 10_000))
        .await
        .unwrap()
        .unwrap();
    for epoch in first..first + 2 {
        assert!(
            dom.contains(&format!("data-epoch=\"{epoch}\"")),
            "epoch {epoch} missing from the rendered page:\n{dom}"
        );
    }
    assert!(dom.contains("class=\"cell signed\""), "participation grid");
    assert!(dom.contains("<polyline"), "uptime chart");
    assert!(
        dom.contains("<div id=\"error\"></div>"),
        "the page reports an error:\n{dom}"
    );

    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("dashboard.png"))
        .unwrap();
    let shot = screenshot.clone();
    let dashboard_url = format!("{api}/");
    tokio::task::spawn_blocking(move || {
        headless(&dashboard_url, Capture::Screenshot(&shot), 10_000)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 1_000);

    standalone_page_verifies_a_bundle_and_refuses_a_modified_one(&devnet, first).await;
    devnet.stop().await;
}

/// The built standalone page (`make auditor-web`, which `make test` runs first).
fn verify_page() -> PathBuf {
    let page =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../artifacts/auditor/verify.html");
    std::fs::canonicalize(&page).unwrap_or_else(|err| {
        panic!(
            "{}: {err}; build it with `make auditor-web`",
            page.display()
        )
    })
}

/// The standalone page (the auditor in wasm) on a bundle of the devnet's `epoch` and on a
/// modified copy, against the pinned signer-set hash: the page must show what the library
/// reports natively (what `relayer verify-proof` prints), case by case.
async fn standalone_page_verifies_a_bundle_and_refuses_a_modified_one(devnet: &Devnet, epoch: u64) {
    let api = devnet.node(0).unwrap().api_url.clone().unwrap();
    let copy = relayer_node::http::fetch_epoch(&reqwest::Client::new(), &api, epoch)
        .await
        .unwrap();
    let set = relayer_node::chain::signer_set(&*devnet.chain, Some(copy.signer_set_version))
        .await
        .unwrap();
    let chain = ChainContext {
        chain_id: devnet.chain.chain_id().to_string(),
        contract: devnet.contract().to_string(),
    };
    let bundle = ProofBundle::new(&copy, set, &chain);
    let pin = signer_set_hash(&chain.chain_id, &chain.contract, &bundle.signer_set);
    let mut modified = bundle.clone();
    let first_uptime = &mut modified.rewards[0].uptime_bp;
    *first_uptime = if *first_uptime == 0 {
        1
    } else {
        *first_uptime - 1
    };
    let anchor = TrustAnchor::SignerSetHash(pin);
    let page = verify_page();
    for (case, bundle, expected) in [
        ("exported", &bundle, "verified"),
        ("modified", &modified, "failed"),
    ] {
        let library = Seen::of_report(&Report::of_bundle(bundle, &anchor));
        assert_eq!(library.outcome, expected, "{case}: the library's outcome");
        let link = bundle_link(
            &page,
            &serde_json::to_vec(bundle).unwrap(),
            &format!("pin={}", hex::encode(pin)),
        );
        let dom = tokio::task::spawn_blocking(move || headless(&link, Capture::Dom, 10_000))
            .await
            .unwrap()
            .unwrap();
        assert!(
            dom.contains("data-ready=\"true\""),
            "{case}: the page did not finish its script:\n{dom}"
        );
        assert_eq!(
            Seen::in_page(&dom),
            library,
            "{case}: the page and the library disagree:\n{dom}"
        );
        if expected == "verified" {
            assert_eq!(
                attribute(&dom, "class=\"audit ", "data-verdict").as_deref(),
                Some("certified_not_proven_accepted"),
                "a pin proves certification only"
            );
            let mixnodes = dom.matches("data-verified=\"true\"").count();
            assert_eq!(
                mixnodes,
                bundle.rewards.len(),
                "every mixnode line verified"
            );
        }
    }
    a_served_copy_waits_for_a_click_on_an_anchor_from_a_link(&page, &bundle, &pin).await;
}

/// The same page served on the web (anyone can link to it): a pin in the link is filled in and
/// marked, but nothing is verified before the visitor clicks.
async fn a_served_copy_waits_for_a_click_on_an_anchor_from_a_link(
    page: &std::path::Path,
    bundle: &ProofBundle,
    pin: &[u8; 32],
) {
    let html = std::fs::read_to_string(page).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/verify.html",
        axum::routing::get(move || async move { axum::response::Html(html) }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let on_disk = bundle_link(
        page,
        &serde_json::to_vec(bundle).unwrap(),
        &format!("pin={}", hex::encode(pin)),
    );
    let fragment = on_disk.split_once('#').unwrap().1.to_string();
    let served = format!("http://{addr}/verify.html#{fragment}");
    let dom = tokio::task::spawn_blocking(move || headless(&served, Capture::Dom, 10_000))
        .await
        .unwrap()
        .unwrap();
    server.abort();
    assert!(
        dom.contains("data-ready=\"true\""),
        "the page did not finish:\n{dom}"
    );
    assert!(
        dom.contains("came from the link you opened"),
        "the link's anchor is not marked"
    );
    assert!(
        !dom.contains("class=\"audit "),
        "a served page verified against the link's anchor:\n{dom}"
    );
}
