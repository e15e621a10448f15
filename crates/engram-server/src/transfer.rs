//! `engram export`, `import` and `migrate`: the format and its rules are in
//! `engram_core::transfer` and `engram_core::rules::import`; this module
//! moves records between files, pipes and stores, and shows progress on a
//! terminal (nothing is drawn when standard error is not one).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use engram_core::auth::validate_tenant;
use engram_core::rules::import::ImportReport;
use engram_core::transfer::{Digest, Record};
use engram_core::MemoryService;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::CommonFlags;
use crate::commands::{open_admin_service, runtime, settings, Failure};

/// Longest line `import` reads (a session with all its turns is one line).
pub const MAX_LINE_BYTES: u64 = 256 * 1024 * 1024;

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::Runtime(e.to_string())
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
            Some(path) => {
                let file = File::create(path).map_err(|e| fail(format!("cannot create {}: {e}", path.display())))?;
                write_export(&service, tenant, BufWriter::new(file)).await.and_then(|(w, d)| {
                    // A backup is only one once it is on disk.
                    let file = w.into_inner().map_err(|e| fail(e.error()))?;
                    file.sync_all().map_err(fail)?;
                    Ok(d)
                })
            }
            None => write_export(&service, tenant, BufWriter::new(std::io::stdout().lock())).await.map(|(_, d)| d),
        };
        service.close().await;
        let digest = result?;
        eprintln!("exported {} (checksum {})", summary(&digest), digest.checksum());
        Ok(())
    })
}

async fn write_export<W: Write>(
    service: &MemoryService,
    tenant: Option<&str>,
    mut w: BufWriter<W>,
) -> Result<(BufWriter<W>, Digest), Failure> {
    let bar = progress("exported");
    let mut export = service.export(tenant).map_err(|e| Failure::Config(e.public_message()))?;
    while let Some(page) = export.next_page().await.map_err(fail)? {
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

/// `engram import`.
pub fn import(flags: &CommonFlags, input: Option<&Path>) -> Result<(), Failure> {
    let settings = settings(flags)?;
    let reader: Box<dyn Read> = match input {
        Some(path) => Box::new(File::open(path).map_err(|e| fail(format!("cannot open {}: {e}", path.display())))?),
        None => Box::new(std::io::stdin().lock()),
    };
    runtime()?.block_on(async {
        let service = open_admin_service(&settings).await?;
        let result = read_import(&service, BufReader::new(reader)).await;
        service.close().await;
        let (report, digest) = result?;
        print_report(&report)?;
        eprintln!("imported {} (checksum {} verified)", summary(&digest), digest.checksum());
        Ok(())
    })
}

async fn read_import(service: &MemoryService, mut r: impl BufRead) -> Result<(ImportReport, Digest), Failure> {
    let bar = progress("imported");
    let mut import = service.import();
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        line += 1;
        let n = (&mut r).take(MAX_LINE_BYTES + 1).read_until(b'\n', &mut buf).map_err(fail)?;
        if n == 0 {
            break;
        }
        if n as u64 > MAX_LINE_BYTES {
            return Err(fail(format!("line {line} is longer than {MAX_LINE_BYTES} bytes")));
        }
        let text = std::str::from_utf8(&buf).map_err(|_| fail(format!("line {line} is not UTF-8")))?;
        if text.trim().is_empty() {
            continue;
        }
        let record = Record::parse(text, line).map_err(|e| fail(e.public_message()))?;
        import.add(record, line).await.map_err(|e| fail(e.public_message()))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    import.finish().await.map_err(|e| fail(e.public_message()))
}

fn print_report(report: &ImportReport) -> Result<(), Failure> {
    println!("{}", serde_json::to_string(report).map_err(fail)?);
    for c in &report.conflict_examples {
        eprintln!("conflict: {c}");
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

/// Copies, then exports the copy and compares it with what was read.
async fn copy(
    src: &MemoryService,
    dst: &MemoryService,
    tenant: Option<&str>,
) -> Result<(ImportReport, Digest), Failure> {
    let bar = progress("copied");
    let mut export = src.export(tenant).map_err(fail)?;
    let mut import = dst.import();
    let mut n = 0u64;
    while let Some(page) = export.next_page().await.map_err(fail)? {
        let len = page.len() as u64;
        for r in page {
            n += 1;
            import.add(r, n).await.map_err(|e| fail(e.public_message()))?;
        }
        bar.inc(len);
    }
    let (report, digest) = import.finish().await.map_err(|e| fail(e.public_message()))?;
    bar.set_prefix("checked");
    bar.set_position(0);
    let mut check = dst.export(tenant).map_err(fail)?;
    while let Some(page) = check.next_page().await.map_err(fail)? {
        bar.inc(page.len() as u64);
    }
    bar.finish_and_clear();
    if check.digest() != &digest {
        return Err(fail(format!(
            "the copy differs from the original: read {} (checksum {}), the copy holds {} (checksum {}). \
             The target held other records of these tenants, or the source changed during the copy \
             (stop its writers and run migrate again: it is safe to repeat)",
            summary(&digest),
            digest.checksum(),
            summary(check.digest()),
            check.digest().checksum()
        )));
    }
    Ok((report, digest))
}
