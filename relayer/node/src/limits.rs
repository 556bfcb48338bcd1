//! Limits of the public HTTP API, so that no client can exhaust a node: a token bucket per
//! client address (past it: 429 with `Retry-After`), and a cap on requests in flight across
//! all clients (past it: 503 at once, never a queue). The table of clients is bounded too.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::api::ApiError;
use crate::config::InvalidValue;

/// Most client addresses tracked; idle ones are forgotten first.
const MAX_CLIENTS: usize = 10_000;

/// `[api]`: limits of the public API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiLimits {
    /// Requests served at once across all clients; more answer 503.
    pub max_concurrent: usize,
    /// Sustained requests per second per client address; more answer 429.
    pub per_client_per_sec: u32,
    /// Requests a client address may send in a burst.
    pub per_client_burst: u32,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            max_concurrent: 64,
            per_client_per_sec: 20,
            per_client_burst: 100,
        }
    }
}

impl ApiLimits {
    /// Checks that the limits let requests through at all.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        if self.max_concurrent == 0 {
            return Err(InvalidValue::ApiLimit("max_concurrent"));
        }
        if self.per_client_per_sec == 0 {
            return Err(InvalidValue::ApiLimit("per_client_per_sec"));
        }
        if self.per_client_burst == 0 {
            return Err(InvalidValue::ApiLimit("per_client_burst"));
        }
        Ok(())
    }
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The shared state of the limits.
struct Limiter {
    in_flight: Semaphore,
    clients: Mutex<HashMap<IpAddr, Bucket>>,
    rate: f64,
    burst: f64,
}

impl Limiter {
    /// Takes a token of `client`'s bucket; `Err(seconds)` to wait when it is empty.
    fn take(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
            let (rate, burst) = (self.rate, self.burst);
            clients.retain(|_, bucket| refilled(bucket, now, rate, burst) < burst);
            if clients.len() >= MAX_CLIENTS {
                return Err(1);
            }
        }
        let bucket = clients.entry(client).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        bucket.tokens = refilled(bucket, now, self.rate, self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

fn refilled(bucket: &Bucket, now: Instant, rate: f64, burst: f64) -> f64 {
    let elapsed = now.duration_since(bucket.updated).as_secs_f64();
    (bucket.tokens + elapsed * rate).min(burst)
}

/// `router` with `limits` applied to every route.
pub fn apply(router: Router, limits: &ApiLimits) -> Router {
    let limiter = Arc::new(Limiter {
        in_flight: Semaphore::new(limits.max_concurrent),
        clients: Mutex::new(HashMap::new()),
        rate: f64::from(limits.per_client_per_sec),
        burst: f64::from(limits.per_client_burst),
    });
    router.layer(middleware::from_fn_with_state(limiter, guard))
}

async fn guard(State(limiter): State<Arc<Limiter>>, request: Request, next: Next) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    if let Some(client) = client
        && let Err(wait_secs) = limiter.take(client, Instant::now())
    {
        let mut response = ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "rate limit of {} requests per second exceeded",
                limiter.rate
            ),
        )
        .into_response();
        if let Ok(value) = wait_secs.to_string().parse() {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let Ok(_permit) = limiter.in_flight.try_acquire() else {
        return ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the node is serving as many requests as it allows; retry shortly".into(),
        )
        .into_response();
    };
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limiter(rate: f64, burst: f64) -> Limiter {
        Limiter {
            in_flight: Semaphore::new(1),
            clients: Mutex::new(HashMap::new()),
            rate,
            burst,
        }
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_while_others_are_unaffected() {
        let limiter = limiter(2.0, 3.0);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take(a, start), Ok(()));
        }
        assert_eq!(limiter.take(a, start), Err(1));
        assert_eq!(
            limiter.take(b, start),
            Ok(()),
            "another client has its own bucket"
        );
        assert_eq!(limiter.take(a, start + Duration::from_millis(500)), Ok(()));
    }

    #[test]
    fn the_client_table_is_bounded_and_forgets_idle_clients() {
        let limiter = limiter(1.0, 1.0);
        let start = Instant::now();
        for i in 0..MAX_CLIENTS as u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            assert_eq!(limiter.take(ip, start), Ok(()));
        }
        let newcomer: IpAddr = "255.255.255.255".parse().unwrap();
        assert_eq!(
            limiter.take(newcomer, start),
            Err(1),
            "full of busy clients"
        );
        let later = start + Duration::from_secs(2);
        assert_eq!(
            limiter.take(newcomer, later),
            Ok(()),
            "idle clients were forgotten"
        );
        assert!(limiter.clients.lock().unwrap().len() < MAX_CLIENTS);
    }

    #[test]
    fn limits_that_refuse_everything_are_invalid() {
        assert_eq!(ApiLimits::default().validate(), Ok(()));
        let zero = ApiLimits {
            max_concurrent: 0,
            ..ApiLimits::default()
        };
        assert_eq!(
            zero.validate(),
            Err(InvalidValue::ApiLimit("max_concurrent"))
        );
    }
}
