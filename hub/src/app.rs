//! Start-up: config -> journal, core connector, partner adapters, engine, channel API, resolver.
//! The same function serves `hub serve`, `hub demo` and the end-to-end tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use adapters::chendian::ChendianAdapter;
use adapters::spi::BillPartner;
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
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("key store: {0}")]
    Keys(#[from] crate::keys::KeyError),
    #[error("[engine] node = {0}: must be 0..=99 (two digits of every hub serial)")]
    BadNode(u8),
    #[error("[hub.admin_tls] 已配置但未配置 [hub] admin_listen: 管理端TLS只用于单独的管理端监听")]
    AdminTlsWithoutListener,
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
}

impl StartError {
    /// Stable code for logs and scripts.
    pub fn code(&self) -> &'static str {
        match self {
            StartError::Journal(_) => "START_JOURNAL",
            StartError::Adapter(_) => "START_ADAPTER",
            StartError::Listen { .. } => "START_LISTEN",
            StartError::Recovery(_) => "START_RECOVERY",
            StartError::Tls(e) => e.code(),
            StartError::Keys(e) => e.code(),
            StartError::BadNode(_) => "START_BAD_NODE",
            StartError::AdminTlsWithoutListener => "START_ADMIN_TLS_WITHOUT_LISTENER",
            StartError::Config(e) => e.code(),
        }
    }
}

/// A running hub.
pub struct Hub {
    pub engine: Arc<Engine>,
    /// The channel API.
    pub addr: SocketAddr,
    /// The admin surface when it has a listener of its own (`[hub] admin_listen`); otherwise it is
    /// served under `/admin` on `addr`.
    pub admin_addr: Option<SocketAddr>,
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
        // Long-lived partner links (cable TV) close with the hub.
        for link in self.engine.partners() {
            link.adapter.stop();
        }
    }

    /// Kills the tasks without letting them finish (tests of crash recovery).
    pub fn abort(self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The key-store link name of a 郴电国际 instance.
pub fn chendian_link(bank_code: &str) -> String {
    format!("CDGJ-{bank_code}")
}

/// Builds every configured partner. A link with keys in `[keys.links]` takes its MAC keys from
/// the key store (current and next, operators' promotions applied) instead of the inline hex.
/// `clock` is the one partners stamp their requests with (medical reqTime); `journal` gives cable
/// TV the standing totals its 5001/5003 carry.
pub async fn partner_links(
    config: &HubConfig,
    keys: Option<&crate::keys::KeyStore>,
    clock: &SharedClock,
    journal: &Journal,
) -> Result<Vec<PartnerLink>, StartError> {
    let mut links = Vec::new();
    for c in &config.chendian {
        let mut c = c.clone();
        let link = chendian_link(&c.bank_code);
        if let Some(store) = keys.filter(|_| config.keys.links.contains_key(&link)) {
            let ring = store.mac_ring(&link).await?;
            c.mac_key_hex = hex::encode_upper(ring.current().expose());
            c.mac_key_next_hex = ring.next().map(|k| hex::encode_upper(k.expose()));
            tracing::info!(link = %link, current = %ring.current().fingerprint(), "MAC keys from the key store.");
        }
        let adapter = ChendianAdapter::new(c.clone())?;
        links.push(PartnerLink {
            purpose: BillPartner::purpose(&adapter).to_string(),
            adapter: Arc::new(adapter),
            suspense_account: c.suspense_account.clone(),
            settlement_account: c.settlement_account.clone(),
        });
    }
    // Fixed-length partners defined by a profile (county water built in; any other of that shape
    // from a profile file): no partner-specific code here.
    for c in &config.fixedlen {
        let adapter = adapters::fixedlen::FixedLenAdapter::from_config(c.clone())?;
        links.push(PartnerLink {
            purpose: BillPartner::purpose(&adapter).to_string(),
            adapter: Arc::new(adapter),
            suspense_account: c.suspense_account.clone(),
            settlement_account: c.settlement_account.clone(),
        });
    }
    // Cable TV: the long link starts here and stops when the engine (its partner) is dropped.
    for c in &config.cabletv {
        links.push(crate::cabletv::link(
            c,
            clock.clone(),
            journal,
            config.engine.node,
        )?);
    }
    // 城乡居民医保: HTTPS to the insurer, one client per bank instance.
    for c in &config.medical {
        links.push(crate::medical::link(c, clock.clone())?);
    }
    Ok(links)
}

/// What `[tobacco]` adds to a hub: the bill partner over the orders, the bureau's inbound
/// endpoint and the notification outbox, all on one store in the journal's database.
struct TobaccoParts {
    link: PartnerLink,
    router: axum::Router,
    /// The channels' look-up by licence number.
    lookup: axum::Router,
    outbox: crate::tobacco::outbox::Outbox,
}

/// The bureau's orders as a bill partner, on the store in the journal's database (also what
/// `hub recon` reconciles the bureau's file against).
pub fn tobacco_link(
    c: &crate::config::TobaccoConfig,
    pool: sqlx::SqlitePool,
    clock: SharedClock,
) -> (PartnerLink, crate::tobacco::store::TobaccoStore) {
    let store = crate::tobacco::store::TobaccoStore::new(pool, clock, c.bank_code.clone());
    let partner =
        crate::tobacco::partner::TobaccoPartner::new(store.clone(), &c.bureau_code, &c.bank_code);
    let link = PartnerLink {
        purpose: crate::tobacco::partner::PURPOSE.to_string(),
        adapter: Arc::new(partner),
        suspense_account: c.suspense_account.clone(),
        settlement_account: c.settlement_account.clone(),
    };
    (link, store)
}

fn tobacco_parts(
    c: &crate::config::TobaccoConfig,
    pool: sqlx::SqlitePool,
    clock: SharedClock,
) -> Result<TobaccoParts, StartError> {
    use codecs::crypto::sm2::{PrivateKey, PublicKey};
    let config_error = |field: &'static str, reason: String| {
        StartError::Adapter(adapters::spi::AdapterError::Config { field, reason })
    };
    let bank_key = PrivateKey::from_hex(&c.bank_private_key_hex)
        .map_err(|e| config_error("tobacco.bank_private_key_hex", e.to_string()))?;
    let bureau_key = PublicKey::from_hex(&c.bureau_public_key_hex)
        .map_err(|e| config_error("tobacco.bureau_public_key_hex", e.to_string()))?;
    let http = match &c.tls {
        Some(tls) => crate::tls::https_client(tls)?,
        // Plain HTTP only where no TLS is configured (tests, the demo); spec: connect 5 s.
        None => reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| config_error("tobacco.tls", e.to_string()))?,
    };
    let (link, store) = tobacco_link(c, pool, clock.clone());
    let inbound = crate::tobacco::router::TobaccoInbound {
        store: store.clone(),
        verifier: adapters::tobacco::RequestVerifier::new([(
            c.bureau_code.clone(),
            bureau_key.clone(),
        )]),
        bank_key: bank_key.clone(),
        bank_code: c.bank_code.clone(),
        bureau_code: c.bureau_code.clone(),
        clock: clock.clone(),
    };
    let client = adapters::tobacco::NotifyClient::new(
        http,
        adapters::tobacco::NotifyConfig {
            base_url: c.bureau_base_url.clone(),
            bank_code: c.bank_code.clone(),
            bureau_code: c.bureau_code.clone(),
            exchange_timeout_ms: c.notify_timeout_ms,
        },
        bank_key,
        bureau_key,
        clock,
    );
    Ok(TobaccoParts {
        link,
        router: crate::tobacco::router::router(Arc::new(inbound)),
        lookup: crate::tobacco::lookup::router(store.clone()),
        outbox: crate::tobacco::outbox::Outbox::new(
            store,
            client,
            c.outbox_poll_interval_ms.max(10),
        ),
    })
}

/// Opens the journal, resumes unfinished payments, and starts the API and the resolver.
pub async fn start(config: &HubConfig, clock: SharedClock) -> Result<Hub, StartError> {
    if config.engine.node > 99 {
        return Err(StartError::BadNode(config.engine.node));
    }
    // A config built in code (demo, tests) gets the checks `HubConfig::load` makes.
    config.check()?;
    // Certificates first: a bad file stops the start before the journal or any port is touched.
    let channel_tls = config
        .hub
        .tls
        .as_ref()
        .map(|tls| Ok::<_, StartError>((crate::tls::server_config(tls)?, tls.handshake_timeout_ms)))
        .transpose()?;
    if config.hub.admin_tls.is_some() && config.hub.admin_listen.is_none() {
        return Err(StartError::AdminTlsWithoutListener);
    }
    let admin_tls = config
        .hub
        .admin_tls
        .as_ref()
        .map(|tls| Ok::<_, StartError>((crate::tls::server_config(tls)?, tls.handshake_timeout_ms)))
        .transpose()?;
    let journal = Journal::open(&config.hub.database_url).await?;
    let core = CoreClient::new(config.core.clone(), clock.clone());
    let key_store =
        crate::keys::KeyStore::new(config.keys.clone(), journal.pool().clone(), clock.clone());
    let mut links = partner_links(config, Some(&key_store), &clock, &journal).await?;
    let tobacco = config
        .tobacco
        .as_ref()
        .map(|c| tobacco_parts(c, journal.pool().clone(), clock.clone()))
        .transpose()?;
    if let Some(parts) = &tobacco {
        links.push(parts.link.clone());
    }
    let engine = Engine::new(journal, core, links, clock.clone(), config.engine.clone());
    let resumed = engine.recover().await?;
    if resumed > 0 {
        tracing::warn!(resumed, "Resumed payments interrupted by the last stop.");
    }
    let (listener, addr) = bind(&config.hub.listen).await?;
    let admin_listener = match &config.hub.admin_listen {
        Some(address) => Some(bind(address).await?),
        None => None,
    };
    let admin_addr = admin_listener.as_ref().map(|(_, addr)| *addr);
    let (shutdown, _) = watch::channel(false);
    let cable_desk =
        crate::cabletv_desk::CableDesk::new(engine.partners(), engine.journal().clone());
    let admin = admin::router(Arc::new(crate::admin_backend::JournalAdmin {
        engine: engine.clone(),
    }))
    .merge(crate::cabletv_desk::router(Arc::new(cable_desk)));
    let mut tasks = Vec::new();
    let channel_router = match admin_listener {
        Some((admin_listener, _)) => {
            tasks.push(spawn_server(
                "admin",
                admin_listener,
                admin_tls,
                json_405(admin),
                shutdown.subscribe(),
            )?);
            crate::api::router(engine.clone())
        }
        None => crate::api::router(engine.clone()).merge(admin),
    };
    // Withholding agreements (201/202) on the channel listener, for the fixed-length instances
    // whose profile has them: spec 11's partner has none, so its instance is an unknown
    // instance at the desk rather than a 201 its partner would answer 090.
    let mut agreement_adapters = std::collections::HashMap::new();
    for c in &config.fixedlen {
        let adapter = adapters::fixedlen::FixedLenAdapter::from_config(c.clone())?;
        if adapter.profile().supports_agreements() {
            agreement_adapters.insert(c.instance.clone(), Arc::new(adapter));
        }
    }
    let desk = crate::agreement_api::AgreementDesk::new(
        agreement_adapters,
        engine.journal().clone(),
        CoreClient::new(config.core.clone(), clock.clone()),
        config.engine.node,
        clock.clone(),
    );
    let channel_router = channel_router.merge(crate::agreement_api::router(Arc::new(desk)));
    // Medical insurance payment history (3001) for the channels.
    let mut medical_clients = std::collections::HashMap::new();
    for c in &config.medical {
        medical_clients.insert(
            c.instance.clone(),
            Arc::new(crate::medical::client(c, clock.clone())?),
        );
    }
    let medical_desk = crate::medical_desk::MedicalDesk::new(
        medical_clients,
        engine.journal().clone(),
        config.engine.node,
        clock.clone(),
    );
    let channel_router = channel_router.merge(crate::medical_desk::router(Arc::new(medical_desk)));
    // The bureau's pushes arrive on the channel listener (its own paths, its own signatures).
    let channel_router = match tobacco {
        Some(parts) => {
            tasks.push(tokio::spawn(parts.outbox.run(shutdown.subscribe())));
            channel_router.merge(parts.router).merge(parts.lookup)
        }
        None => channel_router,
    };
    // Every route is merged by now: a wrong method anywhere gets the JSON refusal.
    let channel_router = json_405(channel_router);
    tasks.push(spawn_server(
        "channel",
        listener,
        channel_tls,
        channel_router,
        shutdown.subscribe(),
    )?);
    for w in &config.withholding {
        let Some(link) = config.fixedlen.iter().find(|f| f.instance == w.instance) else {
            return Err(StartError::Adapter(adapters::spi::AdapterError::Config {
                field: "withholding.instance",
                reason: format!("未配置 [[fixedlen]] 实例 {}", w.instance),
            }));
        };
        let mut job_config = crate::batch::WaterWithholdConfig::new(
            &link.instance,
            &link.company_code,
            &link.suspense_account,
            &w.dir,
        );
        job_config.node = config.engine.node;
        job_config.serial_code = config.batch_serial_code(&link.instance)?;
        // A server draws no progress bar; the run logs its result.
        job_config.progress = false;
        let job = crate::batch::WaterWithholdJob::new(
            engine.journal().clone(),
            CoreClient::new(config.core.clone(), clock.clone()),
            clock.clone(),
            job_config,
        );
        tasks.push(tokio::spawn(crate::batch::schedule::run_poller(
            job,
            link.company_code.clone(),
            w.clone(),
            clock.clone(),
            shutdown.subscribe(),
        )));
    }
    if let Some(schedule) = &config.recon_schedule {
        tasks.push(tokio::spawn(crate::recon_schedule::run_scheduler(
            engine.clone(),
            schedule.clone(),
            config.hub.file_dir.clone(),
            config.hub.report_dir.clone(),
            clock.clone(),
            shutdown.subscribe(),
        )));
    }
    let resolver = tokio::spawn(resolver_loop(
        engine.clone(),
        Duration::from_millis(config.hub.resolver_interval_ms.max(10)),
        shutdown.subscribe(),
    ));
    tasks.push(resolver);
    tracing::info!(
        %addr,
        admin_addr = ?admin_addr,
        channel_tls = config.hub.tls.is_some(),
        admin_tls = config.hub.admin_tls.is_some(),
        "Hub started."
    );
    Ok(Hub {
        engine,
        addr,
        admin_addr,
        shutdown,
        tasks,
    })
}

async fn bind(address: &str) -> Result<(tokio::net::TcpListener, SocketAddr), StartError> {
    let listen_error = |source| StartError::Listen {
        address: address.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;
    Ok((listener, addr))
}

/// Serves `router` on `listener`, over TLS when `tls` is set, until the shutdown signal; then
/// lets requests in progress finish.
fn spawn_server(
    name: &'static str,
    listener: tokio::net::TcpListener,
    tls: Option<(Arc<rustls::ServerConfig>, u64)>,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, StartError> {
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    let task = match tls {
        Some((config, handshake_timeout_ms)) => {
            let address = listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            let listener = crate::tls::TlsListener::new(
                listener,
                config,
                Duration::from_millis(handshake_timeout_ms),
            )
            .map_err(|source| StartError::Listen { address, source })?;
            tokio::spawn(async move {
                let serve = axum::serve(listener, router).with_graceful_shutdown(stopped);
                if let Err(e) = serve.await {
                    tracing::error!(listener = name, error = %e, "HTTPS listener stopped.");
                }
            })
        }
        None => tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(stopped);
            if let Err(e) = serve.await {
                tracing::error!(listener = name, error = %e, "HTTP listener stopped.");
            }
        }),
    };
    Ok(task)
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

/// A wrong method gets the JSON refusal with its stable code, not axum's empty 405, and axum's
/// plain-text rejections become typed JSON too. Applied once every route is merged (the fallback
/// reaches only the routes present).
fn json_405(router: axum::Router) -> axum::Router {
    router
        .method_not_allowed_fallback(|| async {
            crate::api::refusal(
                crate::errors::ErrorCode::MethodNotAllowed,
                "method not allowed".into(),
            )
        })
        .layer(axum::middleware::map_response(crate::api::typed_rejections))
}
