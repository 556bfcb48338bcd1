//! The browser auditor against a real chain, beside `relayer verify` (`relayer-dev
//! browser-audit`, run by `make e2e-wasmd`): headless Chromium opens a node's dashboard and the
//! standalone proof page, and each case must end with the same outcome and failed check in the
//! page as in the CLI, both from the one auditor library.
//!
//! The dishonest nodes are [`TamperingNode`]s: a proxy in front of an honest node that serves
//! its dashboard and auditor unchanged and alters one answer (the rewards, a signature, the
//! epoch, or the chain its status names).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use relayer_auditor::{Outcome, ProofBundle, Report, signer_set_hash};
use serde_json::Value;

use crate::DevError;
use crate::browser::{Capture, attribute, bundle_link, headless};

/// How a [`TamperingNode`] lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// One mixnode's uptime changed, the data hash kept.
    Rewards,
    /// One signature's bytes changed.
    Signature,
    /// Another final epoch's data (certified, but not the contract's record of this one).
    OtherEpoch(u64),
    /// Its status names another chain.
    OtherChain,
    /// Its status names another contract.
    OtherContract,
    /// It has no copy of the epoch (404).
    Omit,
}

struct Proxy {
    honest: String,
    epoch: u64,
    tamper: Tamper,
    http: reqwest::Client,
}

/// A dishonest node on loopback, until dropped.
pub struct TamperingNode {
    /// Its API URL.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TamperingNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TamperingNode {
    /// Starts a proxy to `honest` that lies about `epoch` as `tamper` says.
    pub async fn start(
        honest: &str,
        epoch: u64,
        tamper: Tamper,
        http: reqwest::Client,
    ) -> Result<Self, DevError> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|err| DevError::io("binding a tampering node", err))?;
        let addr = listener
            .local_addr()
            .map_err(|err| DevError::io("a tampering node's address", err))?;
        let proxy = Arc::new(Proxy {
            honest: honest.trim_end_matches('/').to_string(),
            epoch,
            tamper,
            http,
        });
        let app = Router::new().fallback(forward).with_state(proxy);
        let task = tokio::spawn(async move {
            // Ends when aborted; an accept error ends the proxy, which the checks then see.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url: format!("http://{addr}"),
            task,
        })
    }
}

async fn forward(State(proxy): State<Arc<Proxy>>, uri: Uri) -> Response {
    let path = uri.path();
    let rewards_path = format!("/v1/epochs/{}/rewards", proxy.epoch);
    if proxy.tamper == Tamper::Omit && path == rewards_path {
        return (StatusCode::NOT_FOUND, "no official data").into_response();
    }
    let upstream = match proxy.tamper {
        Tamper::OtherEpoch(other) if path == rewards_path => {
            format!("{}/v1/epochs/{other}/rewards", proxy.honest)
        }
        _ => format!(
            "{}{}",
            proxy.honest,
            uri.path_and_query().map_or(path, |pq| pq.as_str())
        ),
    };
    let answer = match proxy.http.get(&upstream).send().await {
        Ok(answer) => answer,
        Err(err) => return (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
    };
    let status = answer.status();
    let content_type = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let Ok(body) = answer.bytes().await else {
        return (StatusCode::BAD_GATEWAY, "upstream body").into_response();
    };
    let body = match (proxy.tamper, path) {
        (Tamper::Rewards | Tamper::Signature, p) if p == rewards_path => {
            alter(&body, |copy| tamper_copy(copy, proxy.tamper))
        }
        (Tamper::OtherChain, "/v1/status") => alter(&body, |status| {
            status["chain_id"] = Value::from("another-chain");
        }),
        (Tamper::OtherContract, "/v1/status") => alter(&body, |status| {
            status["contract"] = Value::from("wasm1anothercontract");
        }),
        _ => body.to_vec(),
    };
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn alter(body: &[u8], change: impl FnOnce(&mut Value)) -> Vec<u8> {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            change(&mut value);
            value.to_string().into_bytes()
        }
        Err(_) => body.to_vec(),
    }
}

fn tamper_copy(copy: &mut Value, tamper: Tamper) {
    if tamper == Tamper::Rewards {
        let uptime = &mut copy["rewards"][0]["uptime_bp"];
        *uptime = Value::from(if uptime.as_u64() == Some(10_000) {
            0
        } else {
            10_000
        });
    } else if let Some(signature) = copy["signatures"][0]["signature"].as_str() {
        // Hex: flip the first digit.
        let flipped = if signature.starts_with('0') { "1" } else { "0" };
        copy["signatures"][0]["signature"] = Value::from(format!("{flipped}{}", &signature[1..]));
    }
}

/// A case's outcome as both front ends report it: `verified` or `failed`, and the failed
/// check's name (empty when verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `verified`, `failed` or `error`.
    pub outcome: String,
    /// The failed check.
    pub check: String,
}

impl Seen {
    /// What a page rendered: its first `.audit` element's outcome and check.
    pub fn in_page(dom: &str) -> Self {
        let read = |name| attribute(dom, "class=\"audit ", name).unwrap_or_default();
        Self {
            outcome: read("data-outcome"),
            check: read("data-check"),
        }
    }

    /// What the library reports (what `relayer verify` prints from).
    pub fn of_report(report: &Report) -> Self {
        match &report.outcome {
            Outcome::Verified { .. } => Self::verified(),
            Outcome::Failed { check, .. } => Self::failed(check),
        }
    }

    fn verified() -> Self {
        Self {
            outcome: "verified".into(),
            check: String::new(),
        }
    }

    fn failed(check: &str) -> Self {
        Self {
            outcome: "failed".into(),
            check: check.into(),
        }
    }
}

/// The rows of a rendered mixnode history (the `history` table only): epoch and whether it
/// verified.
fn history_rows(dom: &str) -> Vec<(u64, bool)> {
    let history = dom
        .split_once("class=\"history\"")
        .map_or("", |(_, rest)| rest);
    history
        .split("<tr data-epoch=\"")
        .skip(1)
        .filter_map(|row| {
            let (epoch, rest) = row.split_once('"')?;
            let verified = rest.trim_start().starts_with("data-verified=\"true\"");
            Some((epoch.parse().ok()?, verified))
        })
        .collect()
}

/// What a `relayer verify` or `verify-proof` run printed: `OK, ...` or `FAILED [check]: ...`.
fn seen_in_cli(stdout: &str) -> Seen {
    match stdout.split_once("FAILED [") {
        Some((_, rest)) => Seen::failed(rest.split(']').next().unwrap_or_default()),
        None if stdout.contains(": OK, ") => Seen::verified(),
        None => Seen {
            outcome: "error".into(),
            check: stdout.trim().to_string(),
        },
    }
}

/// Where and what to audit.
pub struct BrowserAudit {
    /// The `relayer` binary the page is compared with.
    pub relayer: PathBuf,
    /// The chain's CometBFT RPC (plain http: the browser gets no test CA).
    pub rpc: String,
    /// The contract.
    pub contract: String,
    /// An honest node's API (serving the auditor).
    pub api: String,
    /// A final epoch.
    pub epoch: u64,
    /// Another final epoch.
    pub other_epoch: u64,
    /// A proof bundle of `epoch` (`relayer export-proof`).
    pub bundle: PathBuf,
    /// The built standalone page (`artifacts/auditor/verify.html`).
    pub verify_page: PathBuf,
    /// Where screenshots and the modified bundle go.
    pub out: PathBuf,
    /// The client the dishonest nodes fetch the honest node's answers with.
    pub http: reqwest::Client,
}

const BUDGET_MS: u64 = 15_000;

fn relayer(binary: &Path, args: &[&str]) -> Result<Seen, DevError> {
    let output = Command::new(binary)
        .args(args)
        .output()
        .map_err(|err| DevError::io(format!("running {}", binary.display()), err))?;
    Ok(seen_in_cli(&String::from_utf8_lossy(&output.stdout)))
}

/// One case's line of the summary, or the disagreement.
fn compare(case: &str, expected: &Seen, page: &Seen, cli: &Seen) -> Result<String, DevError> {
    if page != expected || cli != expected {
        return Err(DevError::Invalid(format!(
            "{case}: expected {expected:?}, the page showed {page:?} and the CLI {cli:?}"
        )));
    }
    Ok(format!(
        "browser-audit: {case}: page and CLI agree: {} {}",
        expected.outcome, expected.check
    ))
}

impl BrowserAudit {
    async fn page(&self, url: String, screenshot: Option<&str>) -> Result<String, DevError> {
        let shot = screenshot.map(|name| self.out.join(name));
        tokio::task::spawn_blocking(move || {
            if let Some(file) = &shot {
                headless(&url, Capture::Screenshot(file), BUDGET_MS)?;
            }
            headless(&url, Capture::Dom, BUDGET_MS)
        })
        .await
        .map_err(|err| DevError::Invalid(format!("the browser task: {err}")))?
    }

    fn audit_link(&self, node: &str, what: &str) -> String {
        format!("{node}/#rpc={}&contract={}&{what}", self.rpc, self.contract)
    }

    /// The dashboard's verify action on the honest node and on each tampering node.
    async fn dashboard_cases(&self) -> Result<Vec<String>, DevError> {
        let mut lines = Vec::new();
        let epoch = self.epoch.to_string();
        let cases = [
            ("honest node", None, Seen::verified()),
            (
                "tampered rewards",
                Some(Tamper::Rewards),
                Seen::failed("certified.data_hash_mismatch"),
            ),
            (
                "forged signature",
                Some(Tamper::Signature),
                Seen::failed("certified.invalid_signature"),
            ),
            (
                "another epoch's data",
                Some(Tamper::OtherEpoch(self.other_epoch)),
                Seen::failed("accepted.epoch"),
            ),
            (
                "status naming another chain",
                Some(Tamper::OtherChain),
                Seen::failed("other_deployment"),
            ),
            (
                "status naming another contract",
                Some(Tamper::OtherContract),
                Seen::failed("other_deployment"),
            ),
        ];
        for (case, tamper, expected) in cases {
            let liar = match tamper {
                Some(tamper) => Some(
                    TamperingNode::start(&self.api, self.epoch, tamper, self.http.clone()).await?,
                ),
                None => None,
            };
            let node = liar
                .as_ref()
                .map_or(self.api.as_str(), |liar| liar.url.as_str());
            let shot = format!("audit-{}.png", case.replace(' ', "-").replace('\'', ""));
            let dom = self
                .page(
                    self.audit_link(node, &format!("verify={epoch}")),
                    Some(&shot),
                )
                .await?;
            let cli = relayer(
                &self.relayer,
                &[
                    "verify",
                    "--epoch",
                    &epoch,
                    "--api",
                    node,
                    "--node",
                    &self.rpc,
                    "--contract",
                    &self.contract,
                ],
            )?;
            lines.push(compare(case, &expected, &Seen::in_page(&dom), &cli)?);
        }
        Ok(lines)
    }

    /// A mixnode of `bundle`'s history, from the chain: every settled epoch verified on the
    /// honest node, and the epoch a tampering node omits not verified.
    async fn history_case(&self, bundle: &ProofBundle) -> Result<String, DevError> {
        let mix_id = bundle
            .rewards
            .first()
            .map(|reward| reward.mix_id)
            .unwrap_or(1);
        // Epochs up to `other_epoch` were final on every node before this step; a later one
        // may be on chain before the node stores it.
        let settled = |rows: &[(u64, bool)]| -> Vec<(u64, bool)> {
            rows.iter()
                .copied()
                .filter(|(epoch, _)| *epoch <= self.other_epoch)
                .collect()
        };
        let dom = self
            .page(
                self.audit_link(&self.api, &format!("mixnode={mix_id}")),
                Some("audit-history.png"),
            )
            .await?;
        let honest = settled(&history_rows(&dom));
        if honest.len() < 2 || honest.iter().any(|(_, verified)| !verified) {
            return Err(DevError::Invalid(format!(
                "mixnode {mix_id}'s history on the honest node: {honest:?} (want at least 2 settled epochs, all verified):\n{dom}"
            )));
        }
        // A node that leaves an epoch out: the list comes from the chain, so it shows.
        let liar =
            TamperingNode::start(&self.api, self.epoch, Tamper::Omit, self.http.clone()).await?;
        let dom = self
            .page(
                self.audit_link(&liar.url, &format!("mixnode={mix_id}")),
                None,
            )
            .await?;
        let omitted = settled(&history_rows(&dom));
        let expected: Vec<(u64, bool)> = honest
            .iter()
            .map(|(epoch, _)| (*epoch, *epoch != self.epoch))
            .collect();
        if omitted != expected {
            return Err(DevError::Invalid(format!(
                "mixnode {mix_id}'s history on a node omitting epoch {}: {omitted:?}, want {expected:?}:\n{dom}",
                self.epoch
            )));
        }
        Ok(format!(
            "browser-audit: mixnode {mix_id}'s history: {} epochs verified; the epoch a node omits shows as not verified",
            honest.len()
        ))
    }

    /// The standalone page on the exported bundle and on a modified copy, against the chain
    /// and against a pinned signer-set hash.
    async fn standalone_cases(
        &self,
        text: &[u8],
        bundle: &ProofBundle,
    ) -> Result<Vec<String>, DevError> {
        let pin = hex::encode(signer_set_hash(
            &bundle.chain_id,
            &bundle.contract,
            &bundle.signer_set,
        ));
        let mut modified = bundle.clone();
        if let Some(reward) = modified.rewards.first_mut() {
            reward.uptime_bp = if reward.uptime_bp == 0 {
                1
            } else {
                reward.uptime_bp - 1
            };
        }
        let modified_file = self.out.join("proof-modified.json");
        let modified_text = serde_json::to_vec_pretty(&modified)?;
        std::fs::write(&modified_file, &modified_text)
            .map_err(|err| DevError::io(format!("writing {}", modified_file.display()), err))?;
        let files = [
            ("exported bundle", &self.bundle, text, Seen::verified()),
            (
                "modified bundle",
                &modified_file,
                modified_text.as_slice(),
                Seen::failed("certified.data_hash_mismatch"),
            ),
        ];
        let mut lines = Vec::new();
        for (case, file, content, expected) in files {
            let file = file.display().to_string();
            let anchors = [
                (
                    "chain",
                    format!("rpc={}&contract={}", self.rpc, self.contract),
                    vec!["--node", &self.rpc, "--contract", &self.contract],
                ),
                (
                    "pinned",
                    format!("pin={pin}"),
                    vec!["--signer-set-hash", &pin],
                ),
            ];
            for (anchor, fragment, cli_args) in anchors {
                let name = format!("{case}, {anchor}");
                let shot = format!("verify-page-{}-{anchor}.png", case.replace(' ', "-"));
                let dom = self
                    .page(
                        bundle_link(&self.verify_page, content, &fragment),
                        Some(&shot),
                    )
                    .await?;
                let mut args = vec!["verify-proof", file.as_str()];
                args.extend(cli_args);
                let cli = relayer(&self.relayer, &args)?;
                lines.push(compare(&name, &expected, &Seen::in_page(&dom), &cli)?);
                let verdict = attribute(&dom, "class=\"audit ", "data-verdict").unwrap_or_default();
                let want = match (expected.outcome.as_str(), anchor) {
                    ("verified", "chain") => "accepted",
                    ("verified", _) => "certified_not_proven_accepted",
                    _ => "",
                };
                if verdict != want {
                    return Err(DevError::Invalid(format!(
                        "{name}: the page's verdict is {verdict:?}, not {want:?}"
                    )));
                }
            }
        }
        Ok(lines)
    }

    /// Runs every case; the summary lines, or the first disagreement.
    pub async fn run(&self) -> Result<Vec<String>, DevError> {
        std::fs::create_dir_all(&self.out)
            .map_err(|err| DevError::io(format!("creating {}", self.out.display()), err))?;
        let mut lines = self.dashboard_cases().await?;
        let text = std::fs::read(&self.bundle)
            .map_err(|err| DevError::io(format!("reading {}", self.bundle.display()), err))?;
        let bundle: ProofBundle = serde_json::from_slice(&text)?;
        lines.push(self.history_case(&bundle).await?);
        lines.extend(self.standalone_cases(&text, &bundle).await?);
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_outcome_is_read_from_its_line() {
        assert_eq!(
            seen_in_cli(
                "epoch 4 at http://x: OK, accepted by the contract (3 valid signatures, threshold 3)\n"
            ),
            Seen::verified()
        );
        assert_eq!(
            seen_in_cli(
                "epoch 4: FAILED [certified.invalid_signature]: signature of signer 0 does not verify\n"
            ),
            Seen::failed("certified.invalid_signature")
        );
        assert_eq!(seen_in_cli("").outcome, "error");
    }

    #[test]
    fn history_rows_are_read_from_the_history_table_only() {
        let dom = r#"<tr data-epoch="9"><td>9</td></tr><table class="history" data-mix-id="1"><tbody><tr data-epoch="4" data-verified="true" class="ok"><td>4</td></tr><tr data-epoch="5" data-verified="false" class="bad"></tr></tbody></table>"#;
        assert_eq!(history_rows(dom), [(4, true), (5, false)]);
        assert!(history_rows("<tr data-epoch=\"4\" data-verified=\"true\">").is_empty());
    }

    #[test]
    fn tampering_changes_exactly_what_it_names() {
        let copy = serde_json::json!({"rewards": [{"mix_id": 1, "uptime_bp": 9000}], "signatures": [{"index": 0, "signature": "ab"}]});
        let mut rewards = copy.clone();
        tamper_copy(&mut rewards, Tamper::Rewards);
        assert_eq!(rewards["rewards"][0]["uptime_bp"], 10_000);
        assert_eq!(rewards["signatures"], copy["signatures"]);
        let mut signature = copy.clone();
        tamper_copy(&mut signature, Tamper::Signature);
        assert_eq!(signature["signatures"][0]["signature"], "0b");
        assert_eq!(signature["rewards"], copy["rewards"]);
    }
}
