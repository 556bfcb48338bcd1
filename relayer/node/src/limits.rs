//! Limits of the public HTTP API, so that no client can exhaust a node:
//!
//! - connections ([`GuardedListener`]): a cap on open connections, smaller caps per client and
//!   per network, an idle deadline (no byte in either direction) and a lifetime after which
//!   any connection is closed, so slow or silent clients (slowloris, a reader that never
//!   reads) hold nothing for long;
//! - requests ([`apply`]): a token bucket per client (past it: 429 with `Retry-After`) and a
//!   cap on requests in flight across all clients (past it: 503 at once, never a queue).
//!
//! A client is an IPv4 address or an IPv6 /64 (one host usually owns a whole /64); a network
//! is an IPv4 /24 or an IPv6 /48. The table of clients is bounded.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

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
    /// Open connections across all clients; more wait to be accepted.
    pub max_connections: usize,
    /// Open connections per client; more are closed at once. Keep it below
    /// `max_concurrent`, so one client cannot take every request slot.
    pub max_connections_per_client: usize,
    /// Open connections per network (IPv4 /24, IPv6 /48); more are closed at once.
    pub max_connections_per_network: usize,
    /// A connection that moves no byte either way for this long is closed.
    #[serde(deserialize_with = "crate::duration_ms::deserialize")]
    pub connection_idle_ms: u64,
    /// Any connection is closed this long after it was accepted, busy or not.
    #[serde(deserialize_with = "crate::duration_ms::deserialize")]
    pub connection_lifetime_ms: u64,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            max_concurrent: 64,
            per_client_per_sec: 20,
            per_client_burst: 100,
            max_connections: 256,
            max_connections_per_client: 8,
            max_connections_per_network: 32,
            connection_idle_ms: 5_000,
            connection_lifetime_ms: 30_000,
        }
    }
}

impl ApiLimits {
    /// Checks that the limits let requests through at all.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        // Every limit is a count or a duration that refuses everything at zero.
        let limits: [(&'static str, u64); 8] = [
            ("max_concurrent", self.max_concurrent as u64),
            ("per_client_per_sec", u64::from(self.per_client_per_sec)),
            ("per_client_burst", u64::from(self.per_client_burst)),
            ("max_connections", self.max_connections as u64),
            (
                "max_connections_per_client",
                self.max_connections_per_client as u64,
            ),
            (
                "max_connections_per_network",
                self.max_connections_per_network as u64,
            ),
            ("connection_idle_ms", self.connection_idle_ms),
            ("connection_lifetime_ms", self.connection_lifetime_ms),
        ];
        if let Some((name, _)) = limits.iter().find(|(_, value)| *value == 0) {
            return Err(InvalidValue::ApiLimit(name));
        }
        Ok(())
    }
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The client an address belongs to: the IPv4 address, or the IPv6 /64.
pub fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

/// The network an address belongs to: the IPv4 /24, or the IPv6 /48.
pub fn network_of(ip: IpAddr) -> IpAddr {
    match client_of(ip) {
        IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & 0xffff_ff00).into()),
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 80) - 1)).into()),
    }
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
        .get::<ConnectInfo<ClientAddr>>()
        .map(|info| client_of(info.0.0.ip()));
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

/// The peer address of an API connection (the connect info of [`GuardedListener`]).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, GuardedListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, GuardedListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// A TCP listener that enforces the connection limits of [`ApiLimits`].
pub struct GuardedListener {
    inner: TcpListener,
    connections: Arc<Semaphore>,
    /// Open connections per client and per network.
    open: Shares,
    idle: Duration,
    lifetime: Duration,
}

impl GuardedListener {
    /// Wraps `inner` with `limits`.
    pub fn new(inner: TcpListener, limits: &ApiLimits) -> Self {
        Self {
            inner,
            connections: Arc::new(Semaphore::new(limits.max_connections)),
            open: Shares::new(
                limits.max_connections_per_client,
                limits.max_connections_per_network,
            ),
            idle: Duration::from_millis(limits.connection_idle_ms),
            lifetime: Duration::from_millis(limits.connection_lifetime_ms),
        }
    }
}

impl Listener for GuardedListener {
    type Io = GuardedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GuardedStream, SocketAddr) {
        loop {
            // Past the global cap, connections wait in the kernel's backlog.
            let Ok(permit) = self.connections.clone().acquire_owned().await else {
                // The semaphore is never closed; wait for the next connection anyway.
                continue;
            };
            let (stream, addr) = Listener::accept(&mut self.inner).await;
            let Some(share) = self.open.admit(addr.ip()) else {
                drop(stream); // closed at once: this client or network has its share open
                continue;
            };
            let guarded = GuardedStream {
                _slot: ClientSlot {
                    _share: share,
                    _permit: permit,
                },
                stream,
                idle: self.idle,
                idle_deadline: Box::pin(tokio::time::sleep(self.idle)),
                deadline: Box::pin(tokio::time::sleep(self.lifetime)),
            };
            return (guarded, addr);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A client's open connection: its share and its place under the global cap, until it closes.
struct ClientSlot {
    _share: Share,
    _permit: OwnedSemaphorePermit,
}

/// Counts of something each client and each network holds (open connections, handshakes in
/// progress), each with its cap; cheap to clone.
#[derive(Clone)]
pub struct Shares {
    /// Per client and per network (both kinds of key in one table).
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
    per_client: usize,
    per_network: usize,
}

impl Shares {
    /// At most `per_client` per client and `per_network` per network.
    pub fn new(per_client: usize, per_network: usize) -> Self {
        Self {
            held: Arc::new(Mutex::new(HashMap::new())),
            per_client,
            per_network,
        }
    }

    /// One more for the client at `ip`, unless it or its network holds its cap already.
    pub fn admit(&self, ip: IpAddr) -> Option<Share> {
        let keys = [client_of(ip), network_of(ip)];
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let has_room = held.get(&keys[0]).copied().unwrap_or(0) < self.per_client
            && held.get(&keys[1]).copied().unwrap_or(0) < self.per_network;
        if !has_room {
            return None;
        }
        for key in keys {
            *held.entry(key).or_insert(0) += 1;
        }
        Some(Share {
            held: self.held.clone(),
            keys,
        })
    }
}

/// One unit of a client's share, given back when dropped.
pub struct Share {
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
    keys: [IpAddr; 2],
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for key in self.keys {
            if let Some(count) = held.get_mut(&key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    held.remove(&key);
                }
            }
        }
    }
}

/// An accepted connection that fails every read and write once it has been idle (no byte
/// either way) too long or its lifetime is over. The slot is declared first so it is released
/// before the socket closes: a client that sees the close can connect again at once.
pub struct GuardedStream {
    _slot: ClientSlot,
    stream: TcpStream,
    idle: Duration,
    idle_deadline: Pin<Box<Sleep>>,
    deadline: Pin<Box<Sleep>>,
}

impl GuardedStream {
    /// Whether a deadline passed (polling both registers the waker for the sooner one).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let idle = self.idle_deadline.as_mut().poll(cx).is_ready();
        let over = self.deadline.as_mut().poll(cx).is_ready();
        idle || over
    }

    /// Bytes moved: the idle deadline starts again.
    fn progressed(&mut self) {
        let next = tokio::time::Instant::now() + self.idle;
        self.idle_deadline.as_mut().reset(next);
    }
}

fn lifetime_over() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle or lifetime over")
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.expired(cx) {
            return Poll::Ready(Err(lifetime_over()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.progressed();
        }
        polled
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.expired(cx) {
            return Poll::Ready(Err(lifetime_over()));
        }
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.progressed();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.expired(cx) {
            return Poll::Ready(Err(lifetime_over()));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
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
    fn shares_are_capped_per_client_and_per_network_and_given_back() {
        let shares = Shares::new(2, 3);
        let ip = |last: u8| IpAddr::from([10, 0, 0, last]);
        let first = shares.admit(ip(1)).unwrap();
        let _second = shares.admit(ip(1)).unwrap();
        assert!(shares.admit(ip(1)).is_none(), "the client holds its 2");
        let _third = shares.admit(ip(2)).unwrap();
        assert!(shares.admit(ip(3)).is_none(), "the /24 holds its 3");
        assert!(
            shares.admit(IpAddr::from([10, 0, 1, 1])).is_some(),
            "another network"
        );
        drop(first);
        assert!(
            shares.admit(ip(3)).is_some(),
            "a share given back is free again"
        );
    }

    #[test]
    fn networks_are_ipv4_24s_and_ipv6_48s() {
        let a: IpAddr = "192.0.2.10".parse().unwrap();
        let b: IpAddr = "192.0.2.200".parse().unwrap();
        assert_eq!(network_of(a), network_of(b));
        assert_ne!(network_of(a), network_of("192.0.3.1".parse().unwrap()));
        let c: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let d: IpAddr = "2001:db8:1:ffff::1".parse().unwrap();
        assert_eq!(network_of(c), network_of(d));
        assert_ne!(network_of(c), network_of("2001:db8:2::1".parse().unwrap()));
    }

    #[test]
    fn an_ipv6_host_is_one_client_per_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_of(a), client_of(b));
        assert_ne!(client_of(a), client_of(other));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(client_of(mapped), "10.0.0.7".parse::<IpAddr>().unwrap());
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
