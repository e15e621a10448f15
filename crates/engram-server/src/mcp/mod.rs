//! MCP (Model Context Protocol): the tools of DESIGN §3 on the `rmcp` SDK,
//! over stdio (`engram mcp`) and streamable HTTP (`POST /mcp`). Like the HTTP
//! handlers, each tool only translates: arguments into the service's inputs,
//! results into structured tool results. Domain errors come back as tool
//! errors (`isError`, "code: message") so the model can read and correct them.
//!
//! Auth is the HTTP API's: over HTTP the request's `Authorization: Bearer` /
//! `x-api-key` header names the tenant (checked before rmcp sees the request,
//! and again per tool from the request's headers, `x-agent-id` included); over stdio the tenant is
//! fixed at startup from `ENGRAM_API_KEY`, or dev mode when no key exists.

pub mod args;

use std::sync::Arc;

use engram_core::{Error, MemoryService, TenantCtx};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler};
use serde::Serialize;

use args::{AddTurnsArgs, IdArgs, SessionArgs, UpdateArgs};
use engram_core::service::inputs::{CreateMemories, MemoryInput, RecallInput, SearchInput};

/// The MCP server: one per stdio session, one per HTTP request (stateless).
#[derive(Clone)]
pub struct EngramMcp {
    service: MemoryService,
    /// The caller over stdio (HTTP callers are read from each request).
    stdio_caller: Option<TenantCtx>,
    tool_router: ToolRouter<Self>,
}

/// A tool's answer: the service's result as structured content, or its error
/// as a tool error the model can read.
fn answer<T: Serialize>(result: Result<T, Error>) -> Result<CallToolResult, ErrorData> {
    match result {
        Ok(value) => {
            let v = serde_json::to_value(value).map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            Ok(CallToolResult::structured(v))
        }
        Err(e) => {
            if let Error::Internal { detail } = &e {
                tracing::error!(error = %detail, "MCP tool failed");
            }
            Ok(CallToolResult::error(vec![ContentBlock::text(format!("{}: {}", e.code(), e.public_message()))]))
        }
    }
}

impl EngramMcp {
    /// A server for HTTP requests (callers come from each request's headers).
    pub fn for_http(service: MemoryService) -> Self {
        EngramMcp { service, stdio_caller: None, tool_router: Self::tool_router() }
    }

    /// A server for one stdio session, acting as `caller`.
    pub fn for_stdio(service: MemoryService, caller: TenantCtx) -> Self {
        EngramMcp { service, stdio_caller: Some(caller), tool_router: Self::tool_router() }
    }

    /// Who is calling: from the HTTP request's headers, else the stdio caller.
    async fn caller(&self, rc: &RequestContext<RoleServer>) -> Result<TenantCtx, Error> {
        if let Some(parts) = rc.extensions.get::<axum::http::request::Parts>() {
            let ctx = self.service.authenticate(crate::http::presented_key(&parts.headers)).await?;
            return crate::http::with_request(ctx, parts);
        }
        self.stdio_caller.clone().ok_or_else(|| Error::internal("an MCP request without a caller"))
    }
}

#[tool_router]
impl EngramMcp {
    #[tool(
        description = "Store a memory (a fact, preference or event) in a namespace. A near-duplicate of an existing memory is merged into it instead of added."
    )]
    async fn remember(
        &self,
        Parameters(a): Parameters<MemoryInput>,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async {
            let ctx = self.caller(&rc).await?;
            let out = self.service.create_memories(&ctx, CreateMemories { memories: vec![a], wait: None }).await?;
            let (status, memory) = out.into_iter().next().ok_or_else(|| Error::internal("a write returned nothing"))?;
            Ok(serde_json::json!({ "status": status, "memory": memory }))
        };
        answer(result.await)
    }

    #[tool(
        description = "Recall what is known about a question: across the conversation's recent turns and long-term memories, ranked, with a prompt-ready context within a token budget."
    )]
    async fn recall(
        &self,
        Parameters(a): Parameters<RecallInput>,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async { self.service.recall(&self.caller(&rc).await?, a).await };
        answer(result.await)
    }

    #[tool(
        description = "Search long-term memories by meaning and words (hybrid), with an optional namespace, tiers and a MongoDB-style filter."
    )]
    async fn search_memories(
        &self,
        Parameters(a): Parameters<SearchInput>,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async { self.service.search(&self.caller(&rc).await?, a).await };
        answer(result.await)
    }

    #[tool(description = "Get one memory by id.")]
    async fn get_memory(
        &self,
        Parameters(a): Parameters<IdArgs>,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async { self.service.get_memory(&self.caller(&rc).await?, &a.id).await };
        answer(result.await)
    }

    #[tool(description = "Change a memory's text, tier, tags, metadata, salience or pinning.")]
    async fn update_memory(
        &self,
        Parameters(a): Parameters<UpdateArgs>,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async {
            let ctx = self.caller(&rc).await?;
            self.service.update_memory(&ctx, &a.id, a.patch, a.if_version).await
        };
        answer(result.await)
    }

    #[tool(description = "Delete a memory by id.")]
    async fn forget(
        &self,
        Parameters(a): Parameters<IdArgs>,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async {
            self.service.delete_memory(&self.caller(&rc).await?, &a.id).await?;
            Ok(serde_json::json!({ "deleted": a.id }))
        };
        answer(result.await)
    }

    #[tool(
        description = "Append turns to a conversation (working memory). Every few turns they are distilled into episodic memories."
    )]
    async fn add_turns(
        &self,
        Parameters(a): Parameters<AddTurnsArgs>,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async {
            let ctx = self.caller(&rc).await?;
            let (id, input) = a.into_input();
            self.service.add_turns(&ctx, &id, input).await
        };
        answer(result.await)
    }

    #[tool(description = "Get a conversation's recent turns, running summary and turn count.")]
    async fn get_session(
        &self,
        Parameters(a): Parameters<SessionArgs>,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async { self.service.get_session(&self.caller(&rc).await?, &a.session_id).await };
        answer(result.await)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for EngramMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("engram", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Engram is long-term memory. Use `recall` before answering to learn what is known, \
                 `remember` to keep facts and preferences, `add_turns` to log the conversation.",
            )
    }
}

/// The streamable-HTTP endpoint, stateless (each POST is served on its own;
/// no session ids). On a loopback listener only localhost Host headers are
/// accepted (DNS-rebinding protection); elsewhere auth is required anyway and
/// the Host check is off.
pub fn http_service(
    service: MemoryService,
    loopback: bool,
    max_body_bytes: usize,
) -> StreamableHttpService<EngramMcp, NeverSessionManager> {
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_max_request_body_bytes(max_body_bytes);
    if !loopback {
        config = config.disable_allowed_hosts();
    }
    StreamableHttpService::new(
        move || Ok(EngramMcp::for_http(service.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// Serves MCP over stdin/stdout until the client closes stdin.
pub async fn serve_stdio(service: MemoryService, caller: TenantCtx) -> Result<(), Error> {
    use rmcp::ServiceExt;
    let running = EngramMcp::for_stdio(service, caller)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| Error::internal(format!("MCP over stdio failed to start: {e}")))?;
    running.waiting().await.map_err(|e| Error::internal(format!("MCP over stdio stopped: {e}")))?;
    Ok(())
}
