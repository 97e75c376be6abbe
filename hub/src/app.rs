//! Start-up: config -> journal, core connector, partner adapters, engine, channel API, resolver.
//! The same function serves `hub serve`, `hub demo` and the end-to-end tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use adapters::chendian::ChendianAdapter;
use codecs::clock::SharedClock;
use tokio::sync::watch;

use crate::config::HubConfig;
use crate::core_client::CoreClient;
use crate::engine::{Engine, PartnerLink};
use crate::journal::Journal;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("journal: {0}")]
    Journal(#[from] crate::journal::JournalError),
    #[error("partner configuration: {0}")]
    Adapter(#[from] adapters::spi::AdapterError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("recovery: {0}")]
    Recovery(#[from] crate::engine::EngineError),
}

/// A running hub.
pub struct Hub {
    pub engine: Arc<Engine>,
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Hub {
    /// Stops the listener and the resolver and waits for both; unfinished payments stay in the
    /// journal and are resumed by the next start.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Kills the tasks without letting them finish (tests of crash recovery).
    pub fn abort(self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

pub fn partner_links(config: &HubConfig) -> Result<Vec<PartnerLink>, StartError> {
    let mut links = Vec::new();
    for c in &config.chendian {
        let adapter = ChendianAdapter::new(c.clone())?;
        links.push(PartnerLink {
            adapter: Arc::new(adapter),
            purpose: "CDGJ".to_string(),
            suspense_account: c.suspense_account.clone(),
            settlement_account: c.settlement_account.clone(),
            summary_prefix: "电费".to_string(),
        });
    }
    Ok(links)
}

/// Opens the journal, resumes unfinished payments, and starts the API and the resolver.
pub async fn start(config: &HubConfig, clock: SharedClock) -> Result<Hub, StartError> {
    let journal = Journal::open(&config.hub.database_url).await?;
    let core = CoreClient::new(config.core.clone(), clock.clone());
    let links = partner_links(config)?;
    let engine = Engine::new(journal, core, links, clock, config.engine.clone());
    let resumed = engine.recover().await?;
    if resumed > 0 {
        tracing::warn!(resumed, "Resumed payments interrupted by the last stop.");
    }
    let listener = tokio::net::TcpListener::bind(&config.hub.listen)
        .await
        .map_err(|source| StartError::Listen {
            address: config.hub.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        address: config.hub.listen.clone(),
        source,
    })?;
    let (shutdown, mut stop_api) = watch::channel(false);
    let admin = Arc::new(crate::admin_backend::JournalAdmin { engine: engine.clone() });
    let router = crate::api::router(engine.clone()).merge(admin::router(admin));
    let api = tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = stop_api.wait_for(|stop| *stop).await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "Channel API stopped.");
        }
    });
    let resolver = tokio::spawn(resolver_loop(
        engine.clone(),
        Duration::from_millis(config.hub.resolver_interval_ms.max(10)),
        shutdown.subscribe(),
    ));
    tracing::info!(%addr, "Hub started.");
    Ok(Hub {
        engine,
        addr,
        shutdown,
        tasks: vec![api, resolver],
    })
}

/// The durable queue's worker: every interval (or when a payment is left in doubt) it drives the
/// payments whose next action is due. State lives in the journal, so a restart loses nothing.
async fn resolver_loop(engine: Arc<Engine>, interval: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = engine.woken() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = engine.resolve_due(64).await {
            tracing::error!(error = %e, "Resolver pass failed.");
        }
    }
}
