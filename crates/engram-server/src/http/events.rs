//! `GET /v1/events`: the caller's tenant's changes, as a WebSocket (one
//! JSON text message per event) or, for a plain GET asking for
//! `text/event-stream`, as server-sent events. The caller is authenticated
//! and the filter checked before the upgrade, so a refused caller gets the
//! API's error envelope, never a socket. `?namespace_prefix=a/b` filters;
//! `?after=<event id>` resumes after an event.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use engram_core::service::EventFeed;
use engram_core::Error;
use serde::Deserialize;

use super::error::ApiResult;
use super::extract::{Ctx, QueryArgs};
use super::AppState;

/// `GET /v1/events` query parameters.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only changes under this namespace prefix (`/`-joined).
    #[serde(default)]
    pub namespace_prefix: Option<String>,
    /// Resume after this event id (or send `Last-Event-ID`).
    #[serde(default)]
    pub after: Option<String>,
}

/// Documents the server-sent events answer (the WebSocket's 101 comes from
/// the upgrade extractor): each event's data is one change.
pub fn docs(mut t: aide::transform::TransformOperation<'_>) -> aide::transform::TransformOperation<'_> {
    let op = t.inner_mut();
    aide::generate::in_context(|ctx| {
        let schema = ctx.schema.subschema_for::<engram_core::service::Event>();
        let response = aide::openapi::Response {
            description: "Server-sent events (with `Accept: text/event-stream`): each event's `id` resumes the \
                          stream, its data one change as JSON. A WebSocket gets the same JSON, one text message \
                          per change."
                .into(),
            content: super::openapi::media("text/event-stream", schema),
            ..Default::default()
        };
        let responses = op.responses.get_or_insert_with(Default::default);
        responses.responses.insert(aide::openapi::StatusCode::Code(200), aide::openapi::ReferenceOr::Item(response));
    });
    let last = "Server-sent events: resume after this event id (`after` wins over it).";
    super::openapi::with_header(t, "last-event-id", last)
        .description("The tenant's changes, as a WebSocket or server-sent events; a plain GET without either is a 400.")
}

pub async fn events(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    QueryArgs(q): QueryArgs<EventsQuery>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    // An EventSource reconnecting by itself says where it was in Last-Event-ID.
    let last_seen = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let after = q.after.as_deref().or(last_seen);
    let prefix = q.namespace_prefix.as_deref().unwrap_or("");
    let feed = st.service.subscribe(&ctx, super::presented_key(&headers), prefix, after).await?;
    if let Ok(ws) = ws {
        return Ok(ws.on_upgrade(move |socket| pump(socket, feed)));
    }
    let wants_sse = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !wants_sse {
        return Err(
            Error::invalid("GET /v1/events is a WebSocket: send an upgrade, or Accept: text/event-stream").into()
        );
    }
    // After an error the stream ends (with an `error` event saying why).
    let stream = futures_util::stream::unfold(Some(feed), |feed| async move {
        let mut feed = feed?;
        match feed.next().await {
            // Unnamed ("message") events: `EventSource.onmessage` gets them all;
            // the change's kind is the JSON's `type`.
            Ok(e) => Some((SseEvent::default().id(e.id.clone()).json_data(&e), Some(feed))),
            Err(e) => Some((Ok(SseEvent::default().event("error").data(e.public_message())), None)),
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

/// Sends events until the client goes away (or the feed ends: a close
/// frame says why). The feed's wait is kept across the client's frames, so
/// sending frames does not make it read the store more often.
async fn pump(mut socket: WebSocket, mut feed: EventFeed) {
    loop {
        let next = feed.next();
        tokio::pin!(next);
        let event = loop {
            tokio::select! {
                event = &mut next => break event,
                incoming = socket.recv() => match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(_)) => {}
                }
            }
        };
        let msg = match event.and_then(|e| serde_json::to_string(&e).map_err(|e| Error::internal(e.to_string()))) {
            Ok(text) => Message::Text(text.into()),
            Err(e) => {
                tracing::info!(error = %e, "change events ended");
                let code = if e.code() == engram_core::ErrorCode::Unauthenticated { 1008 } else { 1011 };
                let frame = axum::extract::ws::CloseFrame { code, reason: e.public_message().into() };
                let _ = socket.send(Message::Close(Some(frame))).await;
                return;
            }
        };
        if socket.send(msg).await.is_err() {
            return;
        }
    }
}
