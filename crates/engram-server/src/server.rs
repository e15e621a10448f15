//! Running the server: open the store, start the jobs, serve HTTP on a given
//! listener until `shutdown` resolves, then drain requests, stop the jobs and
//! checkpoint the store.

use std::future::Future;
use std::sync::Arc;

use engram_core::embed::Embedder;
use engram_core::jobs::{
    run_distiller, run_embedding_queue, run_promotion, run_salience, run_session_cleanup, run_ttl_sweeper, Heartbeat,
};
use engram_core::service::{AuthMode, ServiceOptions};
use engram_core::store::{SqliteStore, Store};
use engram_core::{Error, MemoryService};
use tokio::net::TcpListener;

use crate::config::{EmbedderSettings, Settings};
use crate::http::{router, AppState};

/// Loads the embedder the settings name (the local model takes a moment).
pub async fn load_embedder(settings: &EmbedderSettings) -> Result<Option<Arc<dyn Embedder>>, Error> {
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
                Some(Arc::new(engram_embed::OpenAiEmbedder::new(opts)))
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

/// Opens the store the settings name, loads the embedder, and builds the
/// service on them.
pub async fn open_service(settings: &Settings) -> Result<MemoryService, Error> {
    let opts = settings.sqlite.clone();
    let store = Store::Sqlite(
        tokio::task::spawn_blocking(move || SqliteStore::open(opts))
            .await
            .map_err(|e| Error::internal(format!("opening the store panicked: {e}")))??,
    );
    if !settings.is_loopback() && !store.has_keys().await? {
        store.close().await;
        return Err(Error::invalid(format!(
            "refusing to listen on {} (reachable from other machines) without authentication: \
             create an API key first with `engram keys create --tenant <name> --scopes read,write`, \
             or listen on 127.0.0.1",
            settings.listen
        )));
    }
    let embedder = match load_embedder(&settings.embedder).await {
        Ok(e) => e,
        Err(e) => {
            store.close().await;
            return Err(e);
        }
    };
    let mode = if settings.is_loopback() { AuthMode::DevUntilKeysExist } else { AuthMode::Required };
    let opts = ServiceOptions { embedder, lifecycle: settings.lifecycle.clone(), ..ServiceOptions::default() };
    Ok(MemoryService::with_options(store, mode, opts))
}

/// Serves on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    service: MemoryService,
    settings: &Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (stop_jobs, jobs_rx) = tokio::sync::watch::channel(false);
    let mut heartbeats = Vec::new();
    let mut jobs = Vec::new();
    let mut beat = |name| {
        let b = Heartbeat::new(name);
        heartbeats.push(Arc::clone(&b));
        b
    };
    let sweep = settings.sweep_interval;
    jobs.push(tokio::spawn(run_ttl_sweeper(service.clone(), sweep, beat("ttl_sweep"), jobs_rx.clone())));
    jobs.push(tokio::spawn(run_session_cleanup(service.clone(), sweep, beat("session_cleanup"), jobs_rx.clone())));
    jobs.push(tokio::spawn(run_distiller(service.clone(), beat("distillation"), jobs_rx.clone())));
    jobs.push(tokio::spawn(run_salience(service.clone(), beat("salience"), jobs_rx.clone())));
    let every = settings.promotion_interval;
    jobs.push(tokio::spawn(run_promotion(service.clone(), every, beat("promotion"), jobs_rx.clone())));
    if service.embedder().is_some() {
        jobs.push(tokio::spawn(run_embedding_queue(service.clone(), beat("embedding_queue"), jobs_rx)));
    }
    let state = AppState {
        service: service.clone(),
        max_body_bytes: settings.max_body_bytes,
        request_timeout: settings.request_timeout,
        access_log: settings.access_log,
        heartbeats: Arc::new(heartbeats),
        requests: Arc::default(),
    };
    let addr = listener.local_addr().map_err(|e| Error::internal(format!("listener address: {e}")))?;
    tracing::info!(addr = %addr, db = %settings.db_path().display(), "engram listening");
    let served = axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await;
    tracing::info!("draining finished; stopping jobs");
    let _ = stop_jobs.send(true);
    for job in jobs {
        let _ = job.await;
    }
    service.store().close().await;
    tracing::info!("engram stopped");
    served.map_err(|e| Error::internal(format!("server error: {e}")))
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
