//! `POST /mcp` (MCP's streamable HTTP, served by rmcp) as one more route of
//! this API: the caller is admitted as on every route before rmcp reads the
//! body, rmcp's plain-text refusals become the error envelope, and the route
//! is in the OpenAPI document.

use std::borrow::Cow;

use aide::transform::TransformOperation;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use engram_core::{Error, ErrorCode};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

use super::error::ApiError;
use super::extract::TenantSlot;
use super::AppState;

/// Longest refusal text of rmcp's carried into the envelope's message.
const MAX_REFUSAL: usize = 4096;

/// Admits the caller (401 / 429 in the envelope; a malformed `x-agent-id`
/// 400), names its tenant for the access log, and wraps rmcp's plain-text refusals in the envelope. rmcp
/// holds the body to `max_body_bytes` itself (413). A JSON answer — a
/// JSON-RPC response, or a JSON-RPC error for a message it cannot take — is
/// MCP's own envelope and passes as it is.
pub async fn gate(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let ctx = match st.admit(req.headers()).await {
        Ok(ctx) => ctx,
        Err(refused) => return refused,
    };
    // A malformed `x-agent-id` is refused for every message, as on every route
    // (each tool call reads it again for its writes).
    let (parts, body) = req.into_parts();
    let ctx = match super::extract::with_request(ctx, &parts) {
        Ok(ctx) => ctx,
        Err(e) => return ApiError(e).into_response(),
    };
    if let Some(slot) = parts.extensions.get::<TenantSlot>() {
        let _ = slot.0.set(ctx.tenant);
    }
    let resp = next.run(Request::from_parts(parts, body)).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let allow = resp.headers().get(axum::http::header::ALLOW).cloned();
    let text = match axum::body::to_bytes(resp.into_body(), MAX_REFUSAL).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_owned(),
        Err(_) => String::new(),
    };
    let mut out = ApiError(refusal(status, text)).into_response();
    if let Some(allow) = allow {
        out.headers_mut().insert(axum::http::header::ALLOW, allow);
    }
    out
}

/// The error for one of rmcp's refusals, by its status (its text kept).
fn refusal(status: StatusCode, text: String) -> Error {
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::NOT_ACCEPTABLE => ErrorCode::NotAcceptable,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        s if s.is_server_error() => return Error::internal(format!("MCP answered {s}: {text}")),
        // 400, 415 (a body that is not a JSON-RPC message), 422 ...
        _ => ErrorCode::InvalidInput,
    };
    let message = if text.is_empty() { format!("MCP refused the request ({status})") } else { text };
    Error::User { code, message }
}

/// A JSON-RPC 2.0 message (MCP's request, notification or response).
pub struct JsonRpcMessage;

impl JsonSchema for JsonRpcMessage {
    fn schema_name() -> Cow<'static, str> {
        "JsonRpcMessage".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A JSON-RPC 2.0 message: MCP's initialize, tools/list, tools/call and the rest (see the MCP specification, streamable HTTP transport).",
            "type": "object",
            "properties": {
                "jsonrpc": { "const": "2.0" },
                "id": { "type": ["string", "integer"] },
                "method": { "type": "string" },
                "params": { "type": "object" },
                "result": {},
                "error": { "type": "object" }
            },
            "required": ["jsonrpc"]
        })
    }
}

/// Documents `POST /mcp` (a service rmcp serves, not a handler aide can read).
pub fn docs() -> aide::axum::routing::ApiMethodDocs {
    let mut op = aide::openapi::Operation::default();
    let _ = describe(TransformOperation::new(&mut op));
    aide::axum::routing::ApiMethodDocs::new("post", op)
}

fn describe(t: TransformOperation<'_>) -> TransformOperation<'_> {
    t.tag("mcp")
        .summary("MCP (streamable HTTP, stateless, JSON answers)")
        .description(
            "The Model Context Protocol's tools (remember, recall, search_memories, get_memory, update_memory, \
             forget, add_turns, get_session) over HTTP. Send `Accept: application/json, text/event-stream`; \
             the same keys and tenant rules as every route.",
        )
        .input::<super::extract::Ctx>()
        .input::<super::extract::JsonBody<JsonRpcMessage>>()
        .response_with::<200, Json<JsonRpcMessage>, _>(|r| r.description("The JSON-RPC response."))
        .response_with::<202, (), _>(|r| r.description("A notification or response, accepted."))
        .with(super::openapi::errors(&[400, 401, 403, 406, 413, 429, 503, 504]))
        .with(jsonrpc_400)
}

/// A 400 on `/mcp` is the envelope, or MCP's own: a JSON-RPC error for a
/// message rmcp cannot take (a response it did not ask for, say).
fn jsonrpc_400(mut t: TransformOperation<'_>) -> TransformOperation<'_> {
    let op = t.inner_mut();
    aide::generate::in_context(|ctx| {
        let envelope = ctx.schema.subschema_for::<super::openapi::ErrorEnvelope>();
        let rpc = ctx.schema.subschema_for::<JsonRpcMessage>();
        let response = op
            .responses
            .as_mut()
            .and_then(|r| r.responses.get_mut(&aide::openapi::StatusCode::Code(400)))
            .and_then(|r| r.as_item_mut());
        if let Some(media) = response.and_then(|r| r.content.get_mut("application/json")) {
            if let Some(schema) = media.schema.as_mut() {
                schema.json_schema = json_schema!({ "anyOf": [envelope, rpc] });
            }
        }
    });
    t
}
