//! Events between nodes: a transaction announces a change with `NOTIFY`
//! (delivered when it commits, never if it rolls back), and every node keeps
//! one connection that `LISTEN`s and hands what it hears to the store's
//! broadcast channel. When that connection drops, events may be lost: after
//! reconnecting the listener sends [`StoreEvent::Resync`], and caches start
//! afresh.

use std::time::Duration;

use deadpool_postgres::GenericClient;
use tokio::sync::{broadcast, mpsc};
use tokio_postgres::{AsyncMessage, NoTls};

use super::sql::execute;
use crate::error::Result;
use crate::store::StoreEvent;

/// The channel every node listens on.
const CHANNEL: &str = "engram_events";
/// How long the listener waits before reconnecting.
const RECONNECT: Duration = Duration::from_millis(500);

/// Announces `event` inside the caller's transaction.
pub async fn notify<C: GenericClient>(c: &C, event: &StoreEvent) -> Result<()> {
    execute(c, "SELECT pg_notify($1, $2)", &[&CHANNEL, &event.encode()]).await?;
    Ok(())
}

/// Listens until the task is aborted, reconnecting whenever the connection
/// drops; sends every event heard to `out`.
pub async fn listen(cfg: tokio_postgres::Config, out: broadcast::Sender<StoreEvent>) {
    let mut connected_before = false;
    loop {
        match listen_once(&cfg, &out, connected_before).await {
            Ok(()) => tracing::warn!("the event connection to the database closed; reconnecting"),
            Err(e) => tracing::warn!(error = %e, "the event connection to the database failed; reconnecting"),
        }
        connected_before = true;
        tokio::time::sleep(RECONNECT).await;
    }
}

/// One connection's life: `LISTEN`, then forward notifications until it ends.
async fn listen_once(
    cfg: &tokio_postgres::Config,
    out: &broadcast::Sender<StoreEvent>,
    resync: bool,
) -> std::result::Result<(), tokio_postgres::Error> {
    let (client, mut connection) = cfg.connect(NoTls).await?;
    let (heard, mut payloads) = mpsc::unbounded_channel::<String>();
    let driver = tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message? {
                AsyncMessage::Notification(n) => {
                    if heard.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                _ => continue,
            }
        }
        Ok::<(), tokio_postgres::Error>(())
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    if resync {
        let _ = out.send(StoreEvent::Resync);
    }
    while let Some(payload) = payloads.recv().await {
        // No receiver is not an error: nobody caches.
        let _ = out.send(StoreEvent::decode(&payload));
    }
    drop(client);
    match driver.await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}
