//! What the binaries share around their commands: logging to stderr (`RUST_LOG` levels,
//! human or JSON lines) and running a command on a multi-threaded runtime, turning its outcome
//! into the process's exit code.

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

/// Logs to stderr at `RUST_LOG` levels (default `info`, libp2p at `warn`), as JSON lines when
/// `json`.
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs `command` to completion; an error is printed (with its causes, `{:#}`) and exits with
/// the code `exit_code` gives it (1 when the runtime cannot start).
pub fn run_command<E: Display>(
    command: impl Future<Output = Result<(), E>>,
    exit_code: impl FnOnce(&E) -> u8,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}
