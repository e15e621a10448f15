//! HTTPS: the same router behind rustls (ring), from PEM files named by
//! `[server] tls_cert` and `tls_key`. On SIGHUP both files are read again and
//! new connections get the new certificate (connections already open keep
//! theirs); files that do not load leave the old certificate in place, with
//! a warning. axum-server does the TLS accept loop and the swap.

use std::future::Future;
use std::path::PathBuf;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use engram_core::Error;
use tokio::net::TcpListener;

/// Serves `app` over TLS on `listener` until `shutdown` completes, then
/// waits for open requests to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    (cert, key): (PathBuf, PathBuf),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let config = RustlsConfig::from_pem_file(&cert, &key).await.map_err(|e| {
        Error::invalid(format!("cannot load the TLS certificate {} and key {}: {e}", cert.display(), key.display()))
    })?;
    tokio::spawn(reload_on_hangup(config.clone(), cert, key));
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(None);
    });
    let listener = listener.into_std().map_err(|e| Error::internal(format!("listener: {e}")))?;
    axum_server::from_tcp_rustls(listener, config)
        .map_err(|e| Error::internal(format!("listener: {e}")))?
        .handle(handle)
        .serve(app.into_make_service())
        .await
        .map_err(|e| Error::internal(format!("server error: {e}")))
}

/// Reads the certificate and key again at every SIGHUP.
async fn reload_on_hangup(config: RustlsConfig, cert: PathBuf, key: PathBuf) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP: the TLS certificate will not be reloaded");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        match config.reload_from_pem_file(&cert, &key).await {
            Ok(()) => tracing::info!(cert = %cert.display(), "TLS certificate reloaded"),
            Err(e) => {
                tracing::warn!(error = %e, cert = %cert.display(), "TLS certificate not reloaded; the old one stays")
            }
        }
    }
}
