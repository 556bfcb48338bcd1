//! An operator's onboarding, from the built binary: keys made on the operator's machine
//! (a mnemonic shown once, restorable; an ed25519 key, importable), shown without secrets,
//! and the member entry sent to the admin.

#![allow(clippy::unwrap_used)] // test code

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

fn relayer(args: &[&str], env: &[(&str, &str)], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_relayer"))
        .args(args)
        .env_remove("RELAYER_MNEMONIC")
        .env_remove("RELAYER_SIGNING_SECRET")
        .env_remove("RELAYER_CONTRACT")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The value after `key ` on its line of `text`.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {key:?} in {text}"))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn an_operator_makes_restores_and_shows_keys_and_prints_a_member_entry() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let keys_arg = keys.to_str().unwrap();
    let (code, created, stderr) = relayer(
        &["keys", "create", "--dir", keys_arg, "--account-prefix", "n"],
        &[],
        "",
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Write down this mnemonic"), "{stderr}");
    let mnemonic = field(&created, "mnemonic");
    assert_eq!(mnemonic.split_whitespace().count(), 24);
    let address = field(&created, "address");
    assert!(address.starts_with("n1"), "{address}");
    let public_key = field(&created, "ed25519 public key");
    for file in ["chain.secp256k1", "signing.ed25519"] {
        assert_eq!(mode(&keys.join(file)), 0o600, "{file}");
    }
    let (code, _, stderr) = relayer(&["keys", "create", "--dir", keys_arg], &[], "");
    assert_eq!(code, 2, "never overwrites: {stderr}");

    // The mnemonic restores the same account, from the environment or from stdin.
    let restored = dir.path().join("restored");
    std::fs::create_dir(&restored).unwrap();
    let chain_key = restored.join("chain.secp256k1");
    let (code, out, stderr) = relayer(
        &[
            "keys",
            "restore",
            "--chain-key",
            chain_key.to_str().unwrap(),
            "--account-prefix",
            "n",
        ],
        &[("RELAYER_MNEMONIC", mnemonic)],
        "",
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(field(&out, "address"), address);
    let from_stdin = restored.join("again.secp256k1");
    let (code, out, stderr) = relayer(
        &[
            "keys",
            "restore",
            "--chain-key",
            from_stdin.to_str().unwrap(),
            "--account-prefix",
            "n",
        ],
        &[],
        &format!("{mnemonic}\n"),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(field(&out, "address"), address);
    let (code, _, stderr) = relayer(
        &[
            "keys",
            "restore",
            "--chain-key",
            restored.join("bad").to_str().unwrap(),
        ],
        &[],
        "abandon abandon art\n",
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a valid BIP39 mnemonic"), "{stderr}");
    assert!(
        !stderr.contains("abandon"),
        "the phrase is never echoed: {stderr}"
    );

    // The signing key imports from its hex secret.
    let secret = std::fs::read_to_string(keys.join("signing.ed25519")).unwrap();
    let imported = restored.join("signing.ed25519");
    let (code, out, stderr) = relayer(
        &[
            "keys",
            "import-signing",
            "--signing-key",
            imported.to_str().unwrap(),
        ],
        &[],
        &secret,
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(field(&out, "ed25519 public key"), public_key);
    assert_eq!(mode(&imported), 0o600);

    // A config over the keys: show, and the member entry.
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[node]
name = "op"
data_dir = "data"
ed25519_key_file = "{keys_arg}/signing.ed25519"
chain_key_file = "{keys_arg}/chain.secp256k1"
p2p_listen = "/ip4/0.0.0.0/tcp/9000"
http_listen = "0.0.0.0:8000"

[chain]
rpc = "https://rpc.example.org:443"
chain_id = "nyx"
account_prefix = "n"
gas_price = "0.025unym"

[sampling]
mixnode_set = "file:monitor/set.json"
source = "file:monitor/uptime.json"
"#
        ),
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    let (code, shown, stderr) = relayer(&["keys", "show", "--config", config_arg], &[], "");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(field(&shown, "address"), address);
    assert_eq!(field(&shown, "ed25519 public key"), public_key);
    assert!(!shown.contains(mnemonic) && !shown.contains(secret.trim()));

    // config check names every problem at once; the environment can fill the contract in.
    let chain_key_path = keys.join("chain.secp256k1");
    std::fs::set_permissions(&chain_key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, report, stderr) = relayer(&["config", "check", "--config", config_arg], &[], "");
    assert_eq!(code, 2, "{stderr}");
    assert!(report.contains("chain.contract is empty"), "{report}");
    assert!(
        report.contains("node.chain_key_file") && report.contains("chmod 600"),
        "{report}"
    );
    assert!(
        report.contains("sampling.mixnode_set") && report.contains("sampling.source"),
        "the monitor's files are missing: {report}"
    );
    let monitor = dir.path().join("monitor");
    std::fs::create_dir(&monitor).unwrap();
    std::fs::write(monitor.join("set.json"), r#"{"mix_ids": [4, 2]}"#).unwrap();
    std::fs::write(
        monitor.join("uptime.json"),
        r#"{"uptimes": [{"mix_id": 2, "uptime_pct": 99}]}"#,
    )
    .unwrap();
    std::fs::set_permissions(&chain_key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, report, stderr) = relayer(
        &["config", "check", "--config", config_arg],
        &[("RELAYER_CONTRACT", "n1contract")],
        "",
    );
    assert_eq!(code, 0, "{report}{stderr}");
    assert!(report.ends_with("OK\n"), "{report}");

    let (code, _, stderr) = relayer(&["member-entry", "--config", config_arg], &[], "");
    assert_eq!(
        code, 2,
        "a wildcard listen address needs the public one: {stderr}"
    );
    let (code, entry, stderr) = relayer(
        &[
            "member-entry",
            "--config",
            config_arg,
            "--api-url",
            "https://op.example.org:8000",
            "--p2p-multiaddr",
            "/dns4/op.example.org/tcp/9000",
        ],
        &[],
        "",
    );
    assert_eq!(code, 0, "{stderr}");
    let entry: serde_json::Value = serde_json::from_str(&entry).unwrap();
    assert_eq!(entry["address"], address);
    assert_eq!(entry["ed25519_pubkey"], public_key);
    assert_eq!(entry["api_url"], "https://op.example.org:8000");
    assert_eq!(entry["p2p_multiaddr"], "/dns4/op.example.org/tcp/9000");
}
