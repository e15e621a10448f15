//! Running the server: open the store, start the jobs, serve HTTP on a given
//! listener until `shutdown` resolves, then drain requests, stop the jobs and
//! checkpoint the store.

use std::future::Future;
use std::sync::Arc;

use engram_core::clock::SharedClock;
use engram_core::embed::Embedder;
use engram_core::jobs::{
    run_distiller, run_embedding_queue, run_promotion, run_salience, run_session_cleanup, run_ttl_sweeper, Heartbeat,
};
use engram_core::service::{AuthMode, ServiceOptions};
use engram_core::store::{MongoStore, PostgresStore, SqliteStore, Store};
use engram_core::{Error, MemoryService};
use tokio::net::TcpListener;

use crate::config::{EmbedderSettings, Settings, StoreSettings};
use crate::http::{router, AppState};

/// Loads the embedder the settings name (the local model takes a moment); a
/// provider's circuit breaker reads `clock`.
pub async fn load_embedder(
    settings: &EmbedderSettings,
    clock: SharedClock,
) -> Result<Option<Arc<dyn Embedder>>, Error> {
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || -> Result<Option<Arc<dyn Embedder>>, Error> {
        Ok(match settings {
            EmbedderSettings::None => None,
            EmbedderSettings::Local { model_dir } => {
                let model = engram_embed::LocalEmbedder::load(&model_dir)?;
                release_freed_memory();
                Some(Arc::new(model))
            }
            EmbedderSettings::OpenAi { base_url, model, api_key, dims, timeout, max_retries } => {
                let opts = engram_embed::openai::OpenAiOptions { base_url, model, api_key, dims, timeout, max_retries };
                Some(Arc::new(engram_embed::OpenAiEmbedder::new(opts, clock)))
            }
        })
    })
    .await
    .map_err(|e| Error::internal(format!("loading the embedder panicked: {e}")))?
}

/// Returns memory this thread freed to the OS. Loading the model frees about
/// 100 MB of scratch (file buffers, conversions) that mimalloc (the binary's
/// allocator, see `main.rs`) would otherwise keep resident for good.
fn release_freed_memory() {
    // SAFETY: `mi_collect` has no preconditions; it only walks mimalloc's own
    // heaps (and is a no-op on them when mimalloc is not the global allocator).
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Opens the store the settings name.
pub async fn open_store(settings: StoreSettings) -> Result<Store, Error> {
    match settings {
        StoreSettings::Sqlite(opts) => {
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(opts))
                .await
                .map_err(|e| Error::internal(format!("opening the store panicked: {e}")))??;
            Ok(Store::Sqlite(store))
        }
        StoreSettings::Postgres(opts) => Ok(Store::Postgres(PostgresStore::open(opts).await?)),
        StoreSettings::Mongo(opts) => Ok(Store::Mongo(MongoStore::open(opts).await?)),
    }
}

/// Opens the store the settings name, loads the embedder, and builds the
/// service on them.
pub async fn open_service(settings: &Settings) -> Result<MemoryService, Error> {
    let store = open_store(settings.store.clone()).await?;
    // Checked before the model loads: a refusal should be quick and clear.
    if !settings.is_loopback() && settings.jwt.is_none() && !store.read(|r| r.any_key()).await? {
        store.close().await;
        return Err(Error::invalid(format!(
            "refusing to listen on {} (reachable from other machines) without authentication: \
             create an API key first with `engram keys create --tenant <name> --scopes read,write`, \
             configure bearer tokens ([auth] jwt_hs256_secret or jwks_file), or listen on 127.0.0.1",
            settings.listen
        )));
    }
    let embedder = match load_embedder(&settings.embedder, settings.store.clock()).await {
        Ok(e) => e,
        Err(e) => {
            store.close().await;
            return Err(e);
        }
    };
    // Tokens configured means callers are meant to identify themselves.
    let mode =
        if settings.is_loopback() && settings.jwt.is_none() { AuthMode::DevUntilKeysExist } else { AuthMode::Required };
    let opts = match service_options(settings, embedder) {
        Ok(o) => o,
        Err(e) => {
            store.close().await;
            return Err(e);
        }
    };
    Ok(MemoryService::with_options(store, mode, opts))
}

/// What the service is built with besides its store: the embedder, the
/// lifecycle settings, the distiller the settings name, the bearer tokens
/// accepted (fails when the JWKS file cannot be read), and the store's clock.
pub fn service_options(settings: &Settings, embedder: Option<Arc<dyn Embedder>>) -> Result<ServiceOptions, Error> {
    let clock = settings.store.clock();
    let jwt = match &settings.jwt {
        Some(j) => Some(Arc::new(engram_core::jwt::JwtVerifier::new(j.clone(), clock.clone())?)),
        None => None,
    };
    let mut opts = ServiceOptions {
        embedder,
        lifecycle: settings.lifecycle.clone(),
        clock: clock.clone(),
        jwt,
        ..ServiceOptions::default()
    };
    if let Some(chat) = &settings.distiller {
        opts.distiller = Arc::new(engram_embed::ChatDistiller::new(chat.clone(), clock));
    }
    Ok(opts)
}

/// The background jobs of a running service and their heartbeats.
pub struct Jobs {
    pub heartbeats: Arc<Vec<Arc<Heartbeat>>>,
    stop: tokio::sync::watch::Sender<bool>,
    running: Vec<tokio::task::JoinHandle<()>>,
}

impl Jobs {
    /// Starts every lifecycle job (and the embedding queue when there is a model).
    pub fn start(service: &MemoryService, settings: &Settings) -> Jobs {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let mut heartbeats = Vec::new();
        let mut beat = |name| {
            let b = Heartbeat::new(name);
            heartbeats.push(Arc::clone(&b));
            b
        };
        let (s, sweep, every) = (service, settings.sweep_interval, settings.promotion_interval);
        let mut running = vec![
            tokio::spawn(run_ttl_sweeper(s.clone(), sweep, beat("ttl_sweep"), rx.clone())),
            tokio::spawn(run_session_cleanup(s.clone(), sweep, beat("session_cleanup"), rx.clone())),
            tokio::spawn(run_distiller(s.clone(), beat("distillation"), rx.clone())),
            tokio::spawn(run_salience(s.clone(), beat("salience"), rx.clone())),
            tokio::spawn(run_promotion(s.clone(), every, beat("promotion"), rx.clone())),
        ];
        if s.embedder().is_some() {
            running.push(tokio::spawn(run_embedding_queue(s.clone(), beat("embedding_queue"), rx)));
        }
        Jobs { heartbeats: Arc::new(heartbeats), stop, running }
    }

    /// Asks every job to stop and waits for them (the salience job writes its
    /// last citations, the embedding queue saves the index).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for job in self.running {
            let _ = job.await;
        }
    }
}

/// Serves on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    service: MemoryService,
    settings: &Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let jobs = Jobs::start(&service, settings);
    let state = AppState {
        service: service.clone(),
        max_body_bytes: settings.max_body_bytes,
        request_timeout: settings.request_timeout,
        access_log: settings.access_log,
        heartbeats: Arc::clone(&jobs.heartbeats),
        requests: Arc::default(),
        loopback: settings.is_loopback(),
        max_in_flight: settings.limits.max_in_flight,
        key_limiter: settings.limits.per_key.map(|(rate, burst)| {
            Arc::new(crate::http::admission::KeyLimiter::new(rate, burst, service.clock().clone()))
        }),
        last_ping: Arc::default(),
    };
    let addr = listener.local_addr().map_err(|e| Error::internal(format!("listener address: {e}")))?;
    let https = settings.tls.is_some();
    tracing::info!(addr = %addr, https, store = %settings.store.describe(), "engram listening");
    if !https && !settings.is_loopback() {
        tracing::warn!(
            addr = %addr,
            "serving plain HTTP on a network address: keys and tokens cross the network in clear text \
             unless a proxy in front terminates TLS ([server] tls_cert and tls_key serve HTTPS)"
        );
    }
    let served = match settings.tls.clone() {
        Some(files) => crate::tls::serve(listener, router(state), files, shutdown).await,
        None => axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| Error::internal(format!("server error: {e}"))),
    };
    tracing::info!("draining finished; stopping jobs");
    jobs.stop().await;
    service.close().await;
    tracing::info!("engram stopped");
    served
}

/// Serves MCP over stdio until the client closes stdin (`engram mcp`). The
/// caller is the tenant of `ENGRAM_API_KEY`, or dev mode's while no key exists;
/// its writes name `ENGRAM_AGENT_ID` as their agent.
pub async fn run_mcp_stdio(
    service: MemoryService,
    settings: &Settings,
    api_key: Option<String>,
    agent_id: Option<String>,
) -> Result<(), Error> {
    let caller = service.authenticate(api_key.as_deref()).await.and_then(|c| match &agent_id {
        Some(a) => c.with_agent(a).map_err(|e| Error::invalid(format!("ENGRAM_AGENT_ID: {}", e.public_message()))),
        None => Ok(c),
    });
    let caller = match caller {
        Ok(c) => c,
        Err(e) => {
            service.close().await;
            return Err(e);
        }
    };
    let jobs = Jobs::start(&service, settings);
    tracing::info!(tenant = %caller.tenant, store = %settings.store.describe(), "engram MCP on stdio");
    let served = crate::mcp::serve_stdio(service.clone(), caller).await;
    jobs.stop().await;
    service.close().await;
    served
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
