//! Checks a built command-line binary's help: every command and subcommand, found by walking
//! the "Commands:" sections of `--help`, must show an example. Run by the tests of both
//! `relayer` and `relayer-dev`.

use std::path::Path;
use std::process::Command;

/// The subcommands a `--help` text lists (its "Commands:" section, without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Walks `binary`'s command tree: how many commands it has (itself included), and those whose
/// `--help` shows no "Example".
pub fn commands_without_example(binary: &Path) -> std::io::Result<(usize, Vec<String>)> {
    let mut pending = vec![Vec::<String>::new()];
    let mut seen = 0;
    let mut lacking = Vec::new();
    while let Some(path) = pending.pop() {
        let output = Command::new(binary).args(&path).arg("--help").output()?;
        let help = String::from_utf8_lossy(&output.stdout).into_owned();
        if !help.contains("Example") {
            lacking.push(path.join(" "));
        }
        seen += 1;
        for sub in subcommands(&help) {
            let mut next = path.clone();
            next.push(sub);
            pending.push(next);
        }
    }
    Ok((seen, lacking))
}
