//! The documented exit codes of `relayer`, from the built binary: 2 for usage and
//! configuration problems, 3 for what cannot be reached.

#![allow(clippy::unwrap_used)] // test code

use std::process::Command;

fn relayer(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_relayer"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap(), stderr)
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn an_unreachable_node_exits_3() {
    let api = format!("http://127.0.0.1:{}", closed_port());
    let (code, stderr) = relayer(&["status", "--api", &api]);
    assert_eq!(code, 3, "{stderr}");
    let (code, stderr) = relayer(&["health-check", "--api", &api]);
    assert_eq!(code, 3, "{stderr}");
}

#[test]
fn usage_and_configuration_problems_exit_2() {
    let (code, stderr) = relayer(&["no-such-command"]);
    assert_eq!(code, 2, "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let (code, stderr) = relayer(&["run", "--config", missing.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot read config"), "{stderr}");

    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        r#"
[node]
name = "node0"
data_dir = "data"
ed25519_key_file = "node0.ed25519"
chain_key_file = "node0.secp256k1"
p2p_listen = "/ip4/127.0.0.1/tcp/0"
http_listen = "127.0.0.1:0"

[chain]
rpc = "http://127.0.0.1:1"
chain_id = "testing"
contract = "n1abc"
account_prefix = "n"
gas_price = "0.025"
"#,
    )
    .unwrap();
    let (code, stderr) = relayer(&["run", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("decimal followed by a denom"), "{stderr}");

    let no_ca = dir.path().join("no-ca.pem");
    let (code, stderr) = relayer(&[
        "status",
        "--api",
        "https://127.0.0.1:1",
        "--ca-cert",
        no_ca.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no-ca.pem"), "{stderr}");
}

#[test]
fn the_help_documents_the_exit_codes() {
    let output = Command::new(env!("CARGO_BIN_EXE_relayer"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("Exit codes"), "{help}");
    assert!(
        help.contains("3  a chain or node that cannot be reached"),
        "{help}"
    );
}

#[test]
fn every_command_and_subcommand_help_has_an_example() {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_relayer"));
    let (seen, lacking) = relayer_devtools::help_check::commands_without_example(binary).unwrap();
    assert!(seen > 20, "only {seen} commands found");
    assert!(lacking.is_empty(), "no example: relayer {lacking:?}");
}
