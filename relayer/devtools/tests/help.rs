//! Every `relayer-dev` command's `--help` shows an example, from the built binary.

#![allow(clippy::unwrap_used)] // test code

use relayer_devtools::help_check::commands_without_example;

#[test]
fn every_relayer_dev_command_help_has_an_example() {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_relayer-dev"));
    let (seen, lacking) = commands_without_example(binary).unwrap();
    assert!(seen >= 8, "only {seen} commands found");
    assert!(lacking.is_empty(), "no example: relayer-dev {lacking:?}");
}
