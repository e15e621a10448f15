//! `engram export`, `import` and `migrate`: the format and its rules are in
//! `engram_core::transfer` and `engram_core::rules::import`; this module
//! moves records between files, pipes and stores, and shows progress on a
//! terminal (nothing is drawn when standard error is not one).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use engram_core::auth::validate_tenant;
use engram_core::rules::import::ImportReport;
use engram_core::service::ImportOptions;
use engram_core::transfer::{Digest, Record, StreamCheck};
use engram_core::MemoryService;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::CommonFlags;
use crate::commands::{open_admin_service, runtime, settings, Failure};

/// Longest line `import` reads (a session with all its turns is one line).
pub const MAX_LINE_BYTES: u64 = 256 * 1024 * 1024;

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::Runtime(e.to_string())
}

/// A domain error for the operator: the whole of it (an internal error's
/// detail included — the CLI has no log to send it to).
fn fail_domain(e: engram_core::Error) -> Failure {
    match e {
        engram_core::Error::User { message, .. } => Failure::Runtime(message),
        internal => Failure::Runtime(internal.to_string()),
    }
}

fn check_tenant(tenant: Option<&str>) -> Result<(), Failure> {
    match tenant.map(validate_tenant) {
        Some(Err(e)) => Err(Failure::Config(e.public_message())),
        _ => Ok(()),
    }
}

/// A counter of records on standard error, drawn only on a terminal.
fn progress(what: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix} {human_pos} records ({per_sec}, {elapsed})") {
        bar.set_style(style);
    }
    bar.set_prefix(what);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

fn summary(d: &Digest) -> String {
    let counts: Vec<String> = d.counts().iter().map(|(k, n)| format!("{n} {k}")).collect();
    if counts.is_empty() {
        "nothing".into()
    } else {
        counts.join(", ")
    }
}

/// `engram export`.
pub fn export(flags: &CommonFlags, tenant: Option<&str>, out: Option<&Path>) -> Result<(), Failure> {
    let settings = settings(flags)?;
    check_tenant(tenant)?;
    runtime()?.block_on(async {
        let service = open_admin_service(&settings).await?;
        let result = match out {
            Some(path) => export_to_file(&service, tenant, path).await,
            None => write_export(&service, tenant, BufWriter::new(std::io::stdout().lock())).await.map(|(_, d)| d),
        };
        service.close().await;
        let digest = result?;
        eprintln!("exported {} (checksum {})", summary(&digest), digest.checksum());
        Ok(())
    })
}

/// Writes beside `path`, then renames over it once the export is whole and
/// on disk: a failed export never destroys an earlier one. Only the owner
/// may read it (it holds every memory and the keys' hashes).
async fn export_to_file(service: &MemoryService, tenant: Option<&str>, path: &Path) -> Result<Digest, Failure> {
    let name = path.file_name().ok_or_else(|| Failure::Config(format!("--out {}: not a file name", path.display())))?;
    let partial = path.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    let file = open.open(&partial).map_err(|e| fail(format!("cannot create {}: {e}", partial.display())))?;
    let written = write_export(service, tenant, BufWriter::new(file)).await.and_then(|(w, d)| {
        let file = w.into_inner().map_err(|e| fail(e.error()))?;
        file.sync_all().map_err(fail)?;
        Ok(d)
    });
    match written {
        Ok(d) => {
            std::fs::rename(&partial, path).map_err(|e| fail(format!("cannot rename to {}: {e}", path.display())))?;
            Ok(d)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

async fn write_export<W: Write>(
    service: &MemoryService,
    tenant: Option<&str>,
    mut w: BufWriter<W>,
) -> Result<(BufWriter<W>, Digest), Failure> {
    let bar = progress("exported");
    let mut export = service.export(tenant).map_err(|e| Failure::Config(e.public_message()))?;
    while let Some(page) = export.next_page().await.map_err(fail_domain)? {
        for r in &page {
            serde_json::to_writer(&mut w, r).map_err(fail)?;
            w.write_all(b"\n").map_err(|e| fail(format!("cannot write the export: {e}")))?;
        }
        bar.inc(page.len() as u64);
    }
    w.flush().map_err(|e| fail(format!("cannot write the export: {e}")))?;
    bar.finish_and_clear();
    Ok((w, export.digest().clone()))
}

/// Reads the records of an export, handing each to `f` with its line number.
fn each_record(mut r: impl BufRead, mut f: impl FnMut(Record, u64) -> Result<(), Failure>) -> Result<(), Failure> {
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        line += 1;
        let n = (&mut r).take(MAX_LINE_BYTES + 1).read_until(b'\n', &mut buf).map_err(fail)?;
        if n == 0 {
            return Ok(());
        }
        if n as u64 > MAX_LINE_BYTES {
            return Err(fail(format!("line {line} is longer than {MAX_LINE_BYTES} bytes")));
        }
        let text = std::str::from_utf8(&buf).map_err(|_| fail(format!("line {line} is not UTF-8")))?;
        if text.trim().is_empty() {
            continue;
        }
        f(Record::parse(text, line).map_err(fail_domain)?, line)?;
    }
}

/// Checks a whole file (shape, counts, checksum) before anything is written.
fn verify_file(path: &Path) -> Result<(), Failure> {
    let file = File::open(path).map_err(|e| fail(format!("cannot open {}: {e}", path.display())))?;
    let bar = progress("checked");
    let mut check = StreamCheck::default();
    each_record(BufReader::new(file), |r, line| {
        check.add(&r, line).map_err(fail_domain)?;
        bar.inc(1);
        Ok(())
    })?;
    bar.finish_and_clear();
    check.finish().map(|_| ()).map_err(|e| fail(format!("{}; nothing was imported", e.public_message())))
}

/// `engram import`.
pub fn import(flags: &CommonFlags, input: Option<&Path>, opts: ImportOptions) -> Result<(), Failure> {
    let settings = settings(flags)?;
    check_tenant(opts.tenant.as_deref())?;
    if let Some(path) = input {
        verify_file(path)?;
    }
    let reader: Box<dyn Read> = match input {
        Some(path) => Box::new(File::open(path).map_err(|e| fail(format!("cannot open {}: {e}", path.display())))?),
        None => Box::new(std::io::stdin().lock()),
    };
    let rt = runtime()?;
    let service = rt.block_on(open_admin_service(&settings))?;
    let result = read_import(&rt, &service, BufReader::new(reader), opts);
    rt.block_on(service.close());
    let (report, digest) = result?;
    print_report(&report)?;
    eprintln!("imported {} (checksum {} verified)", summary(&digest), digest.checksum());
    Ok(())
}

/// Reads records on this thread and writes them through the runtime.
fn read_import(
    rt: &tokio::runtime::Runtime,
    service: &MemoryService,
    r: impl BufRead,
    opts: ImportOptions,
) -> Result<(ImportReport, Digest), Failure> {
    let bar = progress("imported");
    let mut import = service.import(opts).map_err(fail_domain)?;
    each_record(r, |record, line| {
        rt.block_on(import.add(record, line)).map_err(fail_domain)?;
        bar.inc(1);
        Ok(())
    })?;
    bar.finish_and_clear();
    rt.block_on(import.finish()).map_err(fail_domain)
}

fn print_report(report: &ImportReport) -> Result<(), Failure> {
    println!("{}", serde_json::to_string(report).map_err(fail)?);
    for c in &report.conflict_examples {
        eprintln!("conflict: {c}");
    }
    for k in &report.keys_added {
        eprintln!("key added: {k}");
    }
    if report.keys_left_out > 0 {
        eprintln!("{} API keys in the export were left out (import them with --with-keys)", report.keys_left_out);
    }
    Ok(())
}

/// `engram migrate`.
pub fn migrate(flags: &CommonFlags, from: &str, to: &str, tenant: Option<&str>) -> Result<(), Failure> {
    check_tenant(tenant)?;
    let with_store = |url: &str| settings(&CommonFlags { store: Some(url.to_owned()), ..flags.clone() });
    let (source, target) = (with_store(from)?, with_store(to)?);
    if source.store.describe() == target.store.describe() {
        return Err(Failure::Config("--from and --to name the same store".into()));
    }
    runtime()?.block_on(async {
        let src = open_admin_service(&source).await?;
        let dst = match open_admin_service(&target).await {
            Ok(s) => s,
            Err(e) => {
                src.close().await;
                return Err(e);
            }
        };
        let result = copy(&src, &dst, tenant).await;
        src.close().await;
        dst.close().await;
        let (report, digest) = result?;
        print_report(&report)?;
        eprintln!(
            "copied {} from {} to {}; the copy's counts and checksum ({}) match",
            summary(&digest),
            source.store.describe(),
            target.store.describe(),
            digest.checksum()
        );
        Ok(())
    })
}

/// A store's digest, read through a whole export.
async fn digest_of(service: &MemoryService, tenant: Option<&str>, bar: &ProgressBar) -> Result<Digest, Failure> {
    let mut export = service.export(tenant).map_err(fail_domain)?;
    while let Some(page) = export.next_page().await.map_err(fail_domain)? {
        bar.inc(page.len() as u64);
    }
    Ok(export.digest().clone())
}

/// Copies (keys included), then checks the copy against what was read, and
/// the source again against the copy (a write to the source during the copy
/// would otherwise go unnoticed).
async fn copy(
    src: &MemoryService,
    dst: &MemoryService,
    tenant: Option<&str>,
) -> Result<(ImportReport, Digest), Failure> {
    let bar = progress("copied");
    let mut export = src.export(tenant).map_err(fail_domain)?;
    let opts = ImportOptions { tenant: tenant.map(str::to_owned), all_tenants: tenant.is_none(), keys: true };
    let mut import = dst.import(opts).map_err(fail_domain)?;
    let mut n = 0u64;
    while let Some(page) = export.next_page().await.map_err(fail_domain)? {
        let len = page.len() as u64;
        for r in page {
            n += 1;
            import.add(r, n).await.map_err(fail_domain)?;
        }
        bar.inc(len);
    }
    let (report, digest) = import.finish().await.map_err(fail_domain)?;
    bar.set_prefix("checked");
    bar.set_position(0);
    let copied = digest_of(dst, tenant, &bar).await?;
    let source = digest_of(src, tenant, &bar).await?;
    bar.finish_and_clear();
    for (what, other) in [("the copy", &copied), ("the source, read again,", &source)] {
        if other != &digest {
            return Err(fail(format!(
                "{what} differs from what was copied: copied {} (checksum {}), {what} holds {} (checksum {}). \
                 The target held other records of these tenants, or the source changed during the copy \
                 (stop its writers and run migrate again: it is safe to repeat)",
                summary(&digest),
                digest.checksum(),
                summary(other),
                other.checksum()
            )));
        }
    }
    Ok((report, digest))
}
