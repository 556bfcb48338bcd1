//! The dashboard in a real browser: a devnet on loopback, and once the API shows final epochs,
//! headless Chromium (Debian's package) loads a node's `/`, runs its script, and the rendered
//! DOM must list those epochs. The screenshot is kept at `target/dashboard.png`.

#![allow(clippy::unwrap_used)] // test code

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use relayer_devtools::devnet::{Devnet, DevnetOptions};

/// The Chromium binary: `$CHROMIUM`, else the first of the usual names on PATH.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        });
        if let Some(path) = found {
            return path;
        }
    }
    panic!("no Chromium found: install Debian's `chromium` (make deps) or set CHROMIUM");
}

/// Runs headless Chromium on `url` with `extra` arguments and returns its stdout.
fn headless(url: &str, extra: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-extensions",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1200,1100",
            // Lets the page's fetch and rendering finish before the DOM is taken.
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("running chromium");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

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
    let dom = tokio::task::spawn_blocking(move || headless(&dashboard_url, &["--dump-dom".into()]))
        .await
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
        headless(
            &dashboard_url,
            &[format!("--screenshot={}", shot.display())],
        )
    })
    .await
    .unwrap();
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 1_000);
    devnet.stop().await;
}
