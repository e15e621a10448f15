//! The subcommands: each returns `Ok(())` or an error message; `main` owns the
//! exit codes.

use engram_core::auth::{validate_tenant, NamespaceGrant, Scopes};
use std::io::Write;

use engram_core::service::{AuthMode, JOURNAL_PAGE};
use engram_core::MemoryService;

use crate::cli::{AuditAction, CommonFlags, KeysAction, ModelAction};
use crate::config::{self, EmbedderSettings, Settings};
use crate::logging;
use crate::server;

/// How a command failed, so `main` can choose the exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad configuration or usage (exit 2).
    Config(String),
    /// Anything else (exit 1).
    Runtime(String),
}

pub(crate) fn settings(flags: &CommonFlags) -> Result<Settings, Failure> {
    config::load(&flags.overrides(), std::env::vars()).map_err(|e| Failure::Config(e.to_string()))
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))
}

pub fn serve(flags: &CommonFlags) -> Result<(), Failure> {
    let settings = settings(flags)?;
    logging::init(settings.json_logs);
    runtime()?.block_on(async {
        let service = server::open_service(&settings).await.map_err(|e| Failure::Runtime(e.to_string()))?;
        let listener = match tokio::net::TcpListener::bind(settings.listen).await {
            Ok(l) => l,
            Err(e) => {
                service.close().await;
                return Err(Failure::Runtime(format!("cannot listen on {}: {e}", settings.listen)));
            }
        };
        server::run(listener, service, &settings, server::shutdown_signal())
            .await
            .map_err(|e| Failure::Runtime(e.to_string()))
    })
}

/// `engram mcp`: MCP over stdin/stdout on the configured store. Logs go to
/// stderr (stdout carries the protocol).
pub fn mcp(flags: &CommonFlags) -> Result<(), Failure> {
    let settings = settings(flags)?;
    logging::init(settings.json_logs);
    let api_key = std::env::var("ENGRAM_API_KEY").ok().filter(|k| !k.is_empty());
    let agent_id = std::env::var("ENGRAM_AGENT_ID").ok().filter(|a| !a.is_empty());
    runtime()?.block_on(async {
        let service = server::open_service(&settings).await.map_err(|e| Failure::Runtime(e.to_string()))?;
        server::run_mcp_stdio(service, &settings, api_key, agent_id).await.map_err(|e| Failure::Runtime(e.to_string()))
    })
}

pub fn check_config(flags: &CommonFlags) -> Result<(), Failure> {
    let settings = settings(flags)?;
    print!("{}", settings.to_toml());
    Ok(())
}

/// Opens the store beside a running server (no lock, no vector index, no
/// embedder) as a service.
pub(crate) async fn open_admin_service(settings: &Settings) -> Result<MemoryService, Failure> {
    if settings.store.ephemeral() {
        return Err(Failure::Config(
            "store.url = memory:// lives only inside the server process that opened it: an admin command \
             (keys, audit, export, import, migrate, reembed) would open an empty store of its own. Use a \
             sqlite:// or postgres:// store for data that outlives the server; with memory://, authenticate \
             with bearer tokens ([auth]) or use dev mode on 127.0.0.1"
                .into(),
        ));
    }
    let opts = server::service_options(settings, None).map_err(|e| Failure::Runtime(e.to_string()))?;
    let store = server::open_store(settings.store.for_admin()).await.map_err(|e| Failure::Runtime(e.to_string()))?;
    Ok(MemoryService::with_options(store, AuthMode::Required, opts))
}

/// Runs `f` on the store opened by [`open_admin_service`].
fn with_admin_service<F, Fut>(settings: &Settings, f: F) -> Result<(), Failure>
where
    F: FnOnce(MemoryService) -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    runtime()?.block_on(async move {
        let service = open_admin_service(settings).await?;
        let out = f(service.clone()).await;
        service.close().await;
        out
    })
}

pub fn keys(flags: &CommonFlags, action: &KeysAction) -> Result<(), Failure> {
    let settings = settings(flags)?;
    with_admin_service(&settings, |service| async move { run_keys(&service, action).await })
}

pub fn model(flags: &CommonFlags, action: &ModelAction) -> Result<(), Failure> {
    let settings = settings(flags)?;
    match action {
        ModelAction::Fetch => {
            let EmbedderSettings::Local { model_dir } = &settings.embedder else {
                return Err(Failure::Config(
                    "embedder.provider is not \"local\": there is no local model to fetch".into(),
                ));
            };
            let how = engram_embed::fetch::fetch(model_dir).map_err(Failure::Runtime)?;
            eprintln!("model ready in {} ({how})", model_dir.display());
            Ok(())
        }
    }
}

pub fn reembed(flags: &CommonFlags, tenant: Option<&str>) -> Result<(), Failure> {
    let settings = settings(flags)?;
    if let Some(t) = tenant {
        validate_tenant(t).map_err(|e| Failure::Config(e.public_message()))?;
    }
    let tenant = tenant.map(str::to_owned);
    with_admin_service(&settings, |service| async move {
        let fail = |e: engram_core::Error| Failure::Runtime(e.to_string());
        let tenants = match tenant {
            Some(t) => vec![t],
            None => service.tenants().await.map_err(fail)?,
        };
        for t in tenants {
            let n = service.reembed(&t).await.map_err(fail)?;
            eprintln!("tenant {t}: {n} memories queued for embedding");
        }
        eprintln!("a running server embeds them now; otherwise the next `engram serve` does");
        Ok(())
    })
}

async fn run_keys(service: &MemoryService, action: &KeysAction) -> Result<(), Failure> {
    let fail = |e: engram_core::Error| Failure::Runtime(e.to_string());
    match action {
        KeysAction::Create { tenant, scopes, name, namespaces } => {
            let config = |e: engram_core::Error| Failure::Config(e.public_message());
            validate_tenant(tenant).map_err(config)?;
            let scopes = Scopes::parse_list(scopes).map_err(config)?;
            let grant = namespaces.as_deref().map(NamespaceGrant::parse_list).transpose().map_err(config)?;
            let limited =
                grant.as_ref().map(|g| format!(", limited to namespaces {}", g.to_list())).unwrap_or_default();
            let (info, secret) = service.create_key(tenant, name, scopes, grant).await.map_err(fail)?;
            eprintln!(
                "created key {} for tenant {} with scopes {}{limited}; store the secret now, it is not shown again:",
                info.id, info.tenant, info.scopes
            );
            println!("{secret}");
        }
        KeysAction::List { tenant } => {
            for k in service.list_keys(tenant.as_deref()).await.map_err(fail)? {
                println!("{}", serde_json::to_string(&k).map_err(|e| Failure::Runtime(e.to_string()))?);
            }
        }
        KeysAction::Revoke { id } => {
            if !service.revoke_key(id).await.map_err(fail)? {
                return Err(Failure::Runtime(format!("no active key with id {id}")));
            }
            eprintln!("revoked key {id}");
        }
    }
    Ok(())
}

pub fn audit(flags: &CommonFlags, action: &AuditAction) -> Result<(), Failure> {
    let settings = settings(flags)?;
    let tenant = match action {
        AuditAction::Verify { tenant } | AuditAction::Export { tenant, .. } => tenant.clone(),
    };
    if let Some(t) = &tenant {
        validate_tenant(t).map_err(|e| Failure::Config(e.public_message()))?;
    }
    with_admin_service(&settings, |service| async move {
        let fail = |e: engram_core::Error| Failure::Runtime(e.to_string());
        match action {
            AuditAction::Verify { .. } => {
                let report = service.verify_journal(tenant.as_deref()).await.map_err(fail)?;
                for head in &report.heads {
                    println!("{}", json_line(head)?);
                }
                for f in &report.faults {
                    eprintln!("tenant {:?}, chain {:?}, entry {}: {}", f.tenant, f.namespace, f.seq, f.problem);
                }
                let summary = format!("{} entries in {} chains", report.rows_checked, report.heads.len());
                if report.faults.is_empty() {
                    eprintln!("{summary}: intact");
                    Ok(())
                } else {
                    Err(Failure::Runtime(format!("{summary}: {} problems found", report.faults.len())))
                }
            }
            AuditAction::Export { out, .. } => {
                let mut sink: Box<dyn Write> = match out {
                    Some(path) => Box::new(std::io::BufWriter::new(
                        std::fs::File::create(path)
                            .map_err(|e| Failure::Runtime(format!("cannot create {}: {e}", path.display())))?,
                    )),
                    None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
                };
                let write_err = |e: std::io::Error| Failure::Runtime(format!("cannot write the export: {e}"));
                let (mut after, mut n) = (None, 0u64);
                loop {
                    let rows =
                        service.journal_page(tenant.as_deref(), after.clone(), JOURNAL_PAGE).await.map_err(fail)?;
                    for row in &rows {
                        writeln!(sink, "{}", json_line(row)?).map_err(write_err)?;
                    }
                    n += rows.len() as u64;
                    match rows.last() {
                        Some(last) if rows.len() == JOURNAL_PAGE => {
                            after = Some((last.tenant.clone(), last.namespace.clone(), last.seq))
                        }
                        _ => break,
                    }
                }
                sink.flush().map_err(write_err)?;
                eprintln!("exported {n} journal entries");
                Ok(())
            }
        }
    })
}

/// One JSON line.
fn json_line<T: serde::Serialize>(v: &T) -> Result<String, Failure> {
    serde_json::to_string(v).map_err(|e| Failure::Runtime(format!("cannot encode: {e}")))
}
