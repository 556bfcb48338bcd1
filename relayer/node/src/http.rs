//! The HTTP client side: what a node fetches from a winner's API and what the operator's
//! commands fetch from a node. Answers are bounded in size and time, redirects are never
//! followed (a winner's URL cannot point a loser elsewhere), and errors are typed.

use std::path::Path;
use std::time::Duration;

use nym_rewards::msg::SignerSetResponse;
use relayer_auditor::ProofBundle;
use relayer_protocol::{ChainContext, OfficialEpoch};
use thiserror::Error;

use crate::api::{Health, NodeStatus};
use crate::tls::TlsError;

/// Most bytes accepted in one answer (an epoch of 20,000 mixnodes is about 1 MB of JSON).
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;
/// Time allowed for one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP fetch that failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HttpError {
    /// No answer (connection refused, timeout, redirect refused).
    #[error("GET {url}: {reason}")]
    Request {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The server's certificate is not trusted (or not valid for its name).
    #[error(
        "GET {url}: certificate not accepted: {reason} (trust its CA with --ca-cert, RELAYER_CA_CERT or tls.extra_ca_file)"
    )]
    Certificate {
        /// The URL.
        url: String,
        /// What failed, with its causes.
        reason: String,
    },
    /// An answer that is not a success.
    #[error("GET {url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// An answer larger than [`MAX_RESPONSE_BYTES`].
    #[error("GET {url}: response larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge {
        /// The URL.
        url: String,
    },
    /// An answer that does not decode.
    #[error("GET {url}: undecodable answer: {reason}")]
    Decode {
        /// The URL.
        url: String,
        /// The decoder's message.
        reason: String,
    },
}

/// Why a proof bundle could not be exported.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExportError {
    /// A fetch failed.
    #[error("{0}")]
    Http(#[from] HttpError),
    /// The node serves another signer set than the one that certified the epoch.
    #[error(
        "epoch {epoch} was certified by signer set version {certified}, the node serves version {served}"
    )]
    SignerSetVersion {
        /// The epoch.
        epoch: u64,
        /// Of the epoch.
        certified: u32,
        /// Served.
        served: u32,
    },
}

/// How long the client keeps an idle connection for reuse: below the servers' idle deadline
/// (`ApiLimits::connection_idle_ms`), so a request is not sent on a connection the server is
/// closing.
pub const POOL_IDLE: Duration = Duration::from_secs(2);

/// The client every fetch uses: no redirects, bounded time, the system's TLS roots.
pub fn client() -> reqwest::Client {
    client_builder(Vec::new()).build().unwrap_or_else(|_| {
        // Only the system's roots can make this fail; keep the limits without them.
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_default()
    })
}

/// [`client`], also trusting the CA certificates (PEM) in `extra_ca` when given; a CA that
/// reqwest refuses is an error, never a client without the CA or the limits.
pub fn client_with_ca(extra_ca: Option<&Path>) -> Result<reqwest::Client, TlsError> {
    let Some(path) = extra_ca else {
        return Ok(client());
    };
    let roots = crate::tls::extra_roots(path)?;
    client_builder(roots)
        .build()
        .map_err(|err| TlsError::Client {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })
}

/// No redirects, bounded time, rustls with the system's roots and `extra_roots`.
fn client_builder(extra_roots: Vec<reqwest::Certificate>) -> reqwest::ClientBuilder {
    extra_roots.into_iter().fold(
        reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(POOL_IDLE),
        reqwest::ClientBuilder::add_root_certificate,
    )
}

/// Whether `text` is an absolute `http://` or `https://` URL with a host.
pub fn is_http_url(text: &str) -> bool {
    reqwest::Url::parse(text)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
}

/// The base URL of an API served at `addr`, over TLS or not.
pub fn api_url(addr: impl std::fmt::Display, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{addr}")
}

/// GETs `url` and decodes its JSON body, bounded in size and time.
pub async fn fetch_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, HttpError> {
    fetch_json_answering(http, url, reqwest::StatusCode::is_success).await
}

/// [`fetch_json`], decoding the body of every status `accept` takes.
async fn fetch_json_answering<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    accept: impl Fn(&reqwest::StatusCode) -> bool,
) -> Result<T, HttpError> {
    let mut response = http
        .get(url)
        .send()
        .await
        .map_err(|err| request_error(url, &err))?;
    if !accept(&response.status()) {
        return Err(HttpError::Status {
            url: url.to_string(),
            status: response.status().as_u16(),
        });
    }
    let too_large = || HttpError::TooLarge {
        url: url.to_string(),
    };
    if response
        .content_length()
        .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| request_error(url, &err))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
    }
    serde_json::from_slice(&body).map_err(|err| HttpError::Decode {
        url: url.to_string(),
        reason: err.to_string(),
    })
}

/// A request that got no answer: [`HttpError::Certificate`] when TLS refused the server's
/// certificate, else [`HttpError::Request`]; the reason names every cause (reqwest's own
/// message alone says only "error sending request").
fn request_error(url: &str, err: &reqwest::Error) -> HttpError {
    let mut reasons = Vec::new();
    let mut certificate = false;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = cause {
        certificate |= matches!(
            tls_error(current),
            Some(tokio_rustls::rustls::Error::InvalidCertificate(_))
        );
        let text = current.to_string();
        if reasons.last() != Some(&text) {
            reasons.push(text);
        }
        cause = current.source();
    }
    let url = url.to_string();
    let reason = reasons.join(": ");
    if certificate {
        HttpError::Certificate { url, reason }
    } else {
        HttpError::Request { url, reason }
    }
}

/// The TLS error `err` is or wraps in (possibly nested) I/O errors, whose `source` skips
/// the error they wrap.
fn tls_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a tokio_rustls::rustls::Error> {
    let mut current = err;
    loop {
        if let Some(tls) = current.downcast_ref::<tokio_rustls::rustls::Error>() {
            return Some(tls);
        }
        current = current.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

fn base(api_url: &str) -> &str {
    api_url.trim_end_matches('/')
}

/// A node's copy of `epoch` (`/v1/epochs/{epoch}/rewards`), unverified.
pub async fn fetch_epoch(
    http: &reqwest::Client,
    api_url: &str,
    epoch: u64,
) -> Result<OfficialEpoch, HttpError> {
    fetch_json(
        http,
        &format!("{}/v1/epochs/{epoch}/rewards", base(api_url)),
    )
    .await
}

/// A node's status (`/v1/status`).
pub async fn fetch_status(http: &reqwest::Client, api_url: &str) -> Result<NodeStatus, HttpError> {
    fetch_json(http, &format!("{}/v1/status", base(api_url))).await
}

/// A node's readiness from `/v1/health`, whether it answered ready (200) or not (503).
pub async fn fetch_health(http: &reqwest::Client, api_url: &str) -> Result<Health, HttpError> {
    let ready_or_not = |status: &reqwest::StatusCode| {
        status.is_success() || *status == reqwest::StatusCode::SERVICE_UNAVAILABLE
    };
    fetch_json_answering(http, &format!("{}/v1/health", base(api_url)), ready_or_not).await
}

/// Builds the proof bundle of `epoch` from a node's API: its status (chain id, contract), its
/// official data and its signer set, which must be the version that certified the epoch.
pub async fn export_bundle(
    http: &reqwest::Client,
    api_url: &str,
    epoch: u64,
) -> Result<ProofBundle, ExportError> {
    let status = fetch_status(http, api_url).await?;
    let official = fetch_epoch(http, api_url, epoch).await?;
    let set: SignerSetResponse =
        fetch_json(http, &format!("{}/v1/signer-set", base(api_url))).await?;
    if set.version != official.signer_set_version {
        return Err(ExportError::SignerSetVersion {
            epoch,
            certified: official.signer_set_version,
            served: set.version,
        });
    }
    let chain = ChainContext {
        chain_id: status.chain_id,
        contract: status.contract,
    };
    Ok(ProofBundle::new(&official, set, &chain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::response::Redirect;
    use axum::routing::get;

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn redirects_are_not_followed_and_errors_are_typed() {
        let target = serve(Router::new().route("/x", get(|| async { "{\"a\":1}" }))).await;
        let redirect_to = format!("{target}/x");
        let url = serve(Router::new().route(
            "/v1/status",
            get(move || {
                let to = redirect_to.clone();
                async move { Redirect::temporary(&to) }
            }),
        ))
        .await;
        let err = fetch_status(&client(), &url).await.unwrap_err();
        assert_eq!(
            err,
            HttpError::Status {
                url: format!("{url}/v1/status"),
                status: 307
            },
            "the redirect is an answer, not followed"
        );
        let err = fetch_json::<u64>(&client(), &format!("{target}/x"))
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::Decode { .. }), "{err}");
    }

    #[tokio::test]
    async fn oversized_answers_are_refused() {
        let big = "9".repeat(MAX_RESPONSE_BYTES + 1);
        let url = serve(Router::new().route("/big", get(move || async move { big }))).await;
        let err = fetch_json::<u64>(&client(), &format!("{url}/big"))
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::TooLarge { .. }), "{err}");
    }
}
