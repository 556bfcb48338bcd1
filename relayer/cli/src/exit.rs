//! The exit codes of `relayer`, so scripts can tell "does not verify" from "unreachable":
//! 0 success, 1 failure (including data that does not verify, or a node that is not ready),
//! 2 usage or configuration (including a server certificate not trusted: a CA to pass), 3 a
//! chain or node that cannot be reached.

use relayer_node::StartError;
use relayer_node::chain::ChainError;
use relayer_node::chain::fees::FeeError;
use relayer_node::config::{ConfigError, InvalidValue};
use relayer_node::http::HttpError;
use relayer_node::keys::KeyError;
use relayer_node::mixnode_set::SetError;
use relayer_node::tls::TlsError;
use thiserror::Error;

/// Failure, including "does not verify".
pub const FAILURE: u8 = 1;
/// A usage or configuration problem.
pub const USAGE: u8 = 2;
/// A chain or node that cannot be reached.
pub const UNREACHABLE: u8 = 3;

/// The table shown under `relayer --help`.
pub const HELP: &str = "Example (a new operator, then its node):\n  relayer keys create --dir ~/.relayer/keys --account-prefix n\n  relayer config check && relayer run\n  relayer health-check --api https://127.0.0.1:8000\n\nExit codes:\n  0  success\n  1  failure: data that does not verify, a node that is not ready, a refused transaction\n  2  usage or configuration error (a server certificate not trusted included)\n  3  a chain or node that cannot be reached";

/// A usage or configuration problem a command found itself (exit 2).
#[derive(Debug, Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code of a command's error: the first cause in its chain that has a class.
pub fn code_of(err: &anyhow::Error) -> u8 {
    err.chain().find_map(class_of).unwrap_or(FAILURE)
}

fn class_of(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    let usage = cause.is::<UsageError>()
        || cause.is::<ConfigError>()
        || cause.is::<InvalidValue>()
        || cause.is::<KeyError>()
        || cause.is::<FeeError>()
        || cause.is::<TlsError>()
        || cause.is::<clap::Error>();
    if usage {
        return Some(USAGE);
    }
    if let Some(err) = cause.downcast_ref::<SetError>() {
        return Some(if err.is_temporary() {
            UNREACHABLE
        } else {
            USAGE
        });
    }
    if let Some(StartError::SetTooLarge { .. }) = cause.downcast_ref::<StartError>() {
        return Some(USAGE);
    }
    if let Some(err) = cause.downcast_ref::<ChainError>() {
        return Some(match err {
            ChainError::Unavailable(_) => UNREACHABLE,
            _ => FAILURE,
        });
    }
    if let Some(err) = cause.downcast_ref::<HttpError>() {
        return Some(match err {
            HttpError::Request { .. } => UNREACHABLE,
            HttpError::Certificate { .. } => USAGE,
            _ => FAILURE,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn each_class_of_error_has_its_code() {
        let unreachable: anyhow::Result<()> =
            Err(ChainError::Unavailable("connection refused".into()).into());
        let unreachable = unreachable.context("reading the record").unwrap_err();
        assert_eq!(code_of(&unreachable), UNREACHABLE);
        let http = anyhow::Error::new(HttpError::Request {
            url: "https://x".into(),
            reason: "timeout".into(),
        });
        assert_eq!(code_of(&http), UNREACHABLE);
        let untrusted = anyhow::Error::new(HttpError::Certificate {
            url: "https://x".into(),
            reason: "invalid peer certificate: UnknownIssuer".into(),
        });
        assert_eq!(code_of(&untrusted), USAGE, "a missing CA is configuration");
        let status = anyhow::Error::new(HttpError::Status {
            url: "https://x".into(),
            status: 404,
        });
        assert_eq!(code_of(&status), FAILURE);
        let usage = anyhow::Error::new(UsageError("give an anchor".into())).context("verify");
        assert_eq!(code_of(&usage), USAGE);
        let key = anyhow::Error::new(KeyError::Prefix("N".into()));
        assert_eq!(code_of(&key), USAGE);
        assert_eq!(code_of(&anyhow::anyhow!("does not verify")), FAILURE);
    }
}
