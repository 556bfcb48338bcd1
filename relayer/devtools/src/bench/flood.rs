//! An API flood for the benchmark: concurrent clients asking one node for the heaviest public
//! read (`/v1/mixnodes/1/rewards?limit=1000`) as fast as it answers, to measure what public
//! traffic costs the protocol. Answers are counted by kind: served, refused by a limit (429 or
//! 503), failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the flood did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloodStats {
    /// Concurrent clients.
    pub clients: usize,
    /// Requests answered 200.
    pub served: u64,
    /// Requests refused by the API's limits (429 or 503).
    pub limited: u64,
    /// Requests that failed otherwise.
    pub failed: u64,
}

#[derive(Default)]
struct Counters {
    served: AtomicU64,
    limited: AtomicU64,
    failed: AtomicU64,
}

/// A running flood.
pub(crate) struct Flood {
    clients: usize,
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Flood {
    /// Starts `clients` clients against the node at `api_url`.
    pub(crate) fn start(api_url: &str, clients: usize) -> Self {
        let url = format!(
            "{}/v1/mixnodes/1/rewards?limit=1000",
            api_url.trim_end_matches('/')
        );
        let counters = Arc::new(Counters::default());
        let (stop, stop_rx) = watch::channel(false);
        let http = reqwest::Client::new();
        let tasks = (0..clients)
            .map(|_| {
                let (http, url, counters, mut stop) =
                    (http.clone(), url.clone(), counters.clone(), stop_rx.clone());
                tokio::spawn(async move {
                    loop {
                        let answer = tokio::select! {
                            answer = http.get(&url).send() => answer,
                            _ = stop.changed() => return,
                        };
                        let counter = match answer.map(|response| response.status().as_u16()) {
                            Ok(200) => &counters.served,
                            Ok(429 | 503) => &counters.limited,
                            _ => &counters.failed,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Self {
            clients,
            counters,
            stop,
            tasks,
        }
    }

    /// Stops the clients and reports.
    pub(crate) async fn stop(self) -> FloodStats {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        FloodStats {
            clients: self.clients,
            served: self.counters.served.load(Ordering::Relaxed),
            limited: self.counters.limited.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
        }
    }
}
