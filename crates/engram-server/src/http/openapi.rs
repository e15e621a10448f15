//! The API's OpenAPI 3.1 document (`GET /openapi.json`) and its reference
//! page (`GET /docs`, Redoc with its script inside the binary), generated
//! from the code by aide: each route's parameters, body and answer come from
//! the types its handler takes and returns (their schemars schemas, the same
//! ones MCP publishes), and its errors from the extractors it uses plus the
//! few each route adds ([`errors`]). The router and the document are built by
//! the same calls (`http::router`): a route added with `api_route` is
//! documented by being routed (a plain `.route` is not; see
//! docs/architecture.md, "Adding a route").
//!
//! Written once here: how our extractors ([`Ctx`], [`JsonBody`],
//! [`QueryArgs`], [`PathArgs`], [`NoBody`]) and outputs ([`ApiError`], [`Created`],
//! [`Versioned`]) describe themselves, and the error envelope's schema.

use std::borrow::Cow;

use aide::generate::GenContext;
use aide::openapi::{
    Header, HeaderStyle, MediaType, OpenApi, Operation, ParameterSchemaOrContent, ReferenceOr, RequestBody,
    Response as DocResponse, SchemaObject, SecurityRequirement, SecurityScheme, StatusCode as DocStatus,
};
use aide::operation::{
    add_parameters, parameters_from_schema, set_body, OperationInput, OperationOutput, ParamLocation,
};
use aide::transform::{TransformOpenApi, TransformOperation};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use engram_core::ErrorCode;
use indexmap::IndexMap;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;

use super::error::ApiError;
use super::extract::{Ctx, JsonBody, NoBody, PathArgs, QueryArgs};

/// The error envelope every error answers with.
#[derive(JsonSchema)]
#[allow(dead_code)] // only its schema is used; errors are rendered by `error::render`
pub struct ErrorEnvelope {
    error: ErrorDetail,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct ErrorDetail {
    /// A stable, snake_case code: what went wrong, for programs.
    #[schemars(schema_with = "error_codes")]
    code: String,
    /// What went wrong and what to change, for people.
    message: String,
    /// The request's `x-request-id`.
    request_id: String,
}

fn error_codes(_: &mut SchemaGenerator) -> Schema {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    json_schema!({ "type": "string", "enum": codes })
}

/// What each error status means, in the document.
fn meaning(status: u16) -> &'static str {
    match status {
        400 => "Invalid input (`invalid_input`) or filter (`invalid_filter`); the message names the field.",
        401 => "No valid API key or token (`unauthenticated`).",
        403 => "The key lacks the scope, or the namespace is outside its grant (`forbidden`).",
        404 => "No such memory, session, key or route (`not_found`).",
        409 => "The write conflicts with the stored state (`conflict`).",
        412 => "`If-Match` names another version (`version_mismatch`).",
        406 => "The client does not accept the answer's type (`not_acceptable`): MCP needs `Accept: application/json, text/event-stream`.",
        413 => "The body is over the limit (`payload_too_large`).",
        422 => "Well-formed but unusable, e.g. an embedding of the wrong dimension (`unprocessable`, `embedding_mismatch`).",
        429 => "Over the key's rate or stream limit (`rate_limited`); try again after `Retry-After` seconds.",
        503 => "Overloaded, or the store or embedder is down (`unavailable`); try again after `Retry-After` seconds.",
        504 => "The request ran past the server's timeout (`timeout`).",
        507 => "The store's disk is full (`storage_full`).",
        _ => "An error, in the envelope.",
    }
}

/// The documented answer for an error status: the envelope, and
/// `Retry-After` where the server sends it.
fn error_response(ctx: &mut GenContext, status: u16) -> DocResponse {
    let schema = ctx.schema.subschema_for::<ErrorEnvelope>();
    let mut headers = IndexMap::new();
    if matches!(status, 429 | 503) {
        let schema = json_schema!({ "type": "string", "pattern": "^[0-9]+$" });
        headers.insert("retry-after".to_owned(), response_header("Seconds to wait before trying again.", schema));
    }
    DocResponse {
        description: meaning(status).to_owned(),
        headers,
        content: media("application/json", schema),
        ..Default::default()
    }
}

/// An optional request header, with its schema.
fn header_param(name: &str, description: &str, json_schema: Schema) -> aide::openapi::Parameter {
    aide::openapi::Parameter::Header {
        parameter_data: aide::openapi::ParameterData {
            name: name.to_owned(),
            description: Some(description.to_owned()),
            required: false,
            deprecated: None,
            format: ParameterSchemaOrContent::Schema(SchemaObject { json_schema, example: None, external_docs: None }),
            example: None,
            examples: IndexMap::new(),
            explode: None,
            extensions: IndexMap::new(),
        },
        style: HeaderStyle::Simple,
    }
}

/// A header an answer always carries.
fn response_header(description: &str, json_schema: Schema) -> ReferenceOr<Header> {
    ReferenceOr::Item(Header {
        description: Some(description.to_owned()),
        style: HeaderStyle::Simple,
        required: true,
        deprecated: None,
        format: ParameterSchemaOrContent::Schema(SchemaObject { json_schema, example: None, external_docs: None }),
        example: None,
        examples: IndexMap::new(),
        extensions: IndexMap::new(),
    })
}

/// A body of one media type with its schema.
pub fn media(media_type: &str, json_schema: Schema) -> IndexMap<String, MediaType> {
    let schema = SchemaObject { json_schema, example: None, external_docs: None };
    IndexMap::from_iter([(media_type.to_owned(), MediaType { schema: Some(schema), ..Default::default() })])
}

/// Declares an optional request header (a string) the route reads.
pub fn with_header<'t>(mut t: TransformOperation<'t>, name: &str, description: &str) -> TransformOperation<'t> {
    let param = header_param(name, description, json_schema!({ "type": "string" }));
    t.inner_mut().parameters.push(ReferenceOr::Item(param));
    t
}

/// A success answer's documentation at `status`, for `inferred_responses`.
fn answered(status: u16, response: Option<DocResponse>) -> Vec<(Option<DocStatus>, DocResponse)> {
    response.map(|r| (Some(DocStatus::Code(status)), r)).into_iter().collect()
}

fn error_responses(ctx: &mut GenContext, statuses: &[u16]) -> Vec<(Option<DocStatus>, DocResponse)> {
    statuses.iter().map(|&s| (Some(DocStatus::Code(s)), error_response(ctx, s))).collect()
}

/// Adds the errors particular to one route (404, 409, 412, 422, 507), beside
/// those its extractors and [`ApiError`] already document.
pub fn errors(statuses: &'static [u16]) -> impl FnOnce(TransformOperation<'_>) -> TransformOperation<'_> {
    move |mut t| {
        let op = t.inner_mut();
        let responses = op.responses.get_or_insert_with(Default::default);
        aide::generate::in_context(|ctx| {
            for &s in statuses {
                responses.responses.insert(DocStatus::Code(s), ReferenceOr::Item(error_response(ctx, s)));
            }
        });
        t
    }
}

/// Any handler may fail: bad headers (400), overload or a backend down
/// (503), the timeout (504).
impl OperationOutput for ApiError {
    type Inner = ();

    fn inferred_responses(ctx: &mut GenContext, _: &mut Operation) -> Vec<(Option<DocStatus>, DocResponse)> {
        error_responses(ctx, &[400, 503, 504])
    }
}

/// The caller: a key or token (optional on a loopback listener without
/// keys), its scope and grant, its rate.
impl OperationInput for Ctx {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        let agent = header_param(
            "x-agent-id",
            "The agent the caller acts as, recorded with its writes.",
            json_schema!({ "type": "string", "pattern": "^[A-Za-z0-9_.:@/-]{1,128}$" }),
        );
        add_parameters(ctx, op, [agent]);
        // Alternatives; the empty one is dev mode (no keys configured).
        op.security = ["bearer", "apiKey", ""]
            .into_iter()
            .map(|name| {
                let mut req = SecurityRequirement::new();
                if !name.is_empty() {
                    req.insert(name.to_owned(), Vec::new());
                }
                req
            })
            .collect();
    }

    fn inferred_early_responses(ctx: &mut GenContext, _: &mut Operation) -> Vec<(Option<DocStatus>, DocResponse)> {
        // 400: a malformed `x-agent-id`.
        error_responses(ctx, &[400, 401, 403, 429])
    }
}

impl<T: JsonSchema> OperationInput for JsonBody<T> {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        let schema = ctx.schema.subschema_for::<T>();
        let description = ctx.resolve_schema(&schema).get("description").and_then(|d| d.as_str()).map(String::from);
        let body = RequestBody {
            description,
            content: media("application/json", schema),
            required: true,
            extensions: IndexMap::new(),
        };
        set_body(ctx, op, body);
    }

    fn inferred_early_responses(ctx: &mut GenContext, _: &mut Operation) -> Vec<(Option<DocStatus>, DocResponse)> {
        error_responses(ctx, &[400, 413])
    }
}

impl<T: JsonSchema> OperationInput for QueryArgs<T> {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        let schema = ctx.schema.subschema_for::<T>();
        let params = parameters_from_schema(ctx, schema, ParamLocation::Query);
        add_parameters(ctx, op, params);
    }

    fn inferred_early_responses(ctx: &mut GenContext, _: &mut Operation) -> Vec<(Option<DocStatus>, DocResponse)> {
        error_responses(ctx, &[400])
    }
}

impl<T: JsonSchema> OperationInput for PathArgs<T> {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        axum::extract::Path::<T>::operation_input(ctx, op);
    }

    fn inferred_early_responses(ctx: &mut GenContext, _: &mut Operation) -> Vec<(Option<DocStatus>, DocResponse)> {
        error_responses(ctx, &[400])
    }
}

/// No body is documented (none, or `{}`, is accepted).
impl OperationInput for NoBody {
    fn inferred_early_responses(ctx: &mut GenContext, _: &mut Operation) -> Vec<(Option<DocStatus>, DocResponse)> {
        error_responses(ctx, &[400, 413])
    }
}

/// A JSON answer with the status `CODE` (201, 202).
pub struct WithStatus<const CODE: u16, T>(pub T);

/// 201: the memories or key were created.
pub type Created<T> = WithStatus<201, T>;
/// 202: accepted, written later (a citation).
pub type Accepted<T> = WithStatus<202, T>;

#[allow(non_snake_case)] // the tuple-struct constructors, named as the aliases
pub fn Created<T>(t: T) -> Created<T> {
    WithStatus(t)
}

#[allow(non_snake_case)]
pub fn Accepted<T>(t: T) -> Accepted<T> {
    WithStatus(t)
}

impl<const CODE: u16, T: Serialize> IntoResponse for WithStatus<CODE, T> {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(CODE).unwrap_or(StatusCode::OK);
        (status, Json(self.0)).into_response()
    }
}

impl<const CODE: u16, T: JsonSchema> OperationOutput for WithStatus<CODE, T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, op: &mut Operation) -> Option<DocResponse> {
        Json::<T>::operation_response(ctx, op)
    }

    fn inferred_responses(ctx: &mut GenContext, op: &mut Operation) -> Vec<(Option<DocStatus>, DocResponse)> {
        answered(CODE, Self::operation_response(ctx, op))
    }
}

/// A memory's JSON with its version as the `ETag` (`"3"`), for `If-Match`.
pub struct Versioned<T>(pub i64, pub T);

impl<T: Serialize> IntoResponse for Versioned<T> {
    fn into_response(self) -> Response {
        let mut resp = Json(self.1).into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", self.0)) {
            resp.headers_mut().insert(axum::http::header::ETAG, v);
        }
        resp
    }
}

impl<T: JsonSchema> OperationOutput for Versioned<T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, op: &mut Operation) -> Option<DocResponse> {
        let mut r = Json::<T>::operation_response(ctx, op)?;
        let etag = "The memory's version, quoted: send it back as `If-Match`.";
        r.headers.insert("etag".to_owned(), response_header(etag, json_schema!({ "type": "string" })));
        Some(r)
    }

    fn inferred_responses(ctx: &mut GenContext, op: &mut Operation) -> Vec<(Option<DocStatus>, DocResponse)> {
        answered(200, Self::operation_response(ctx, op))
    }
}

/// Any JSON value (schemars has no name for `serde_json::Value` as a whole
/// document; this gives it one).
pub struct AnyJson;

impl JsonSchema for AnyJson {
    fn schema_name() -> Cow<'static, str> {
        "AnyJson".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!(true)
    }
}

/// The document's title, description and security schemes.
pub fn describe(api: TransformOpenApi<'_>) -> TransformOpenApi<'_> {
    api.title("Engram")
        .version(env!("CARGO_PKG_VERSION"))
        .description(
            "A memory server for AI agents: long-term memories searchable by meaning and by words, \
             sessions (working memory) distilled into memories, recall packed for a prompt, and a \
             LangGraph-compatible store. Every error is `{\"error\":{\"code\",\"message\",\"request_id\"}}`; \
             every response carries `x-request-id`.",
        )
        .security_scheme(
            "bearer",
            SecurityScheme::Http {
                scheme: "bearer".into(),
                bearer_format: Some("an API key (engram keys create) or a JWT".into()),
                description: None,
                extensions: IndexMap::new(),
            },
        )
        .security_scheme(
            "apiKey",
            SecurityScheme::ApiKey {
                location: aide::openapi::ApiKeyLocation::Header,
                name: "x-api-key".into(),
                description: Some("An API key".into()),
                extensions: IndexMap::new(),
            },
        )
}

/// The document and the reference page as served, made once per router
/// (a clone shares the bytes).
#[derive(Clone)]
pub struct Document {
    json: axum::body::Bytes,
    page: axum::body::Bytes,
}

impl Document {
    pub fn new(api: &OpenApi) -> Self {
        // The document is plain data: serialising it cannot fail.
        let json = serde_json::to_vec(api).expect("the OpenAPI document serialises");
        let page = aide::redoc::Redoc::new("/openapi.json").with_title("Engram API").html();
        Document { json: json.into(), page: page.into() }
    }
}

/// `GET /openapi.json`: this API's OpenAPI 3.1 document.
pub async fn document(Extension(doc): Extension<Document>) -> JsonDocument {
    JsonDocument(doc.json)
}

/// `GET /docs`: the API reference (Redoc, its script inside the binary).
pub async fn docs(Extension(doc): Extension<Document>) -> axum::response::Html<axum::body::Bytes> {
    axum::response::Html(doc.page)
}

/// Ready-made JSON (the document), documented as any JSON.
pub struct JsonDocument(axum::body::Bytes);

impl IntoResponse for JsonDocument {
    fn into_response(self) -> Response {
        ([(axum::http::header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

impl OperationOutput for JsonDocument {
    type Inner = AnyJson;

    fn operation_response(ctx: &mut GenContext, op: &mut Operation) -> Option<DocResponse> {
        Json::<AnyJson>::operation_response(ctx, op)
    }

    fn inferred_responses(ctx: &mut GenContext, op: &mut Operation) -> Vec<(Option<DocStatus>, DocResponse)> {
        answered(200, Self::operation_response(ctx, op))
    }
}
