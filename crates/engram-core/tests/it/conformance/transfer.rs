//! Moving data: an export restored into an empty store answers searches as
//! the original did and exports with the same checksum — on the same backend
//! and on the other one (what `engram migrate` does); importing again
//! changes nothing; a damaged, cut or altered export is refused with the
//! line it failed on.

use engram_core::auth::{NamespaceGrant, Scopes};
use engram_core::service::inputs::{AddTurns, CreateMemories, SearchInput};
use engram_core::service::PutItem;
use engram_core::transfer::{Digest, Record};
use engram_core::{ErrorCode, MemoryService, TenantCtx};
use serde_json::{json, Value};

use std::sync::Arc;

use engram_core::rules::import::ImportReport;
use engram_core::service::{ImportOptions, ServiceOptions};

use super::sessions::Failing;
use crate::harness::{from_json, nudged, tenant, Backend, CallerVectors, Harness, Rng, DIMS};

/// Callers' vectors, and a distiller slow enough to leave its jobs queued.
fn service(h: &Harness) -> MemoryService {
    h.service_with(ServiceOptions {
        embedder: Some(Arc::new(CallerVectors)),
        distiller: Arc::new(Failing),
        ..ServiceOptions::default()
    })
}

/// Every record of `svc`'s store, through the text form (as a file holds it).
async fn export(svc: &MemoryService, tenant: Option<&str>) -> (Vec<String>, Digest) {
    let mut ex = svc.export(tenant).unwrap();
    let mut lines = Vec::new();
    while let Some(page) = ex.next_page().await.unwrap() {
        lines.extend(page.iter().map(|r| serde_json::to_string(r).unwrap()));
    }
    (lines, ex.digest().clone())
}

/// Imports every tenant's records, keys too (what `engram migrate` does).
async fn import(svc: &MemoryService, lines: &[String]) -> engram_core::Result<ImportReport> {
    import_with(svc, lines, ImportOptions { all_tenants: true, keys: true, ..ImportOptions::default() }).await
}

async fn import_with(svc: &MemoryService, lines: &[String], opts: ImportOptions) -> engram_core::Result<ImportReport> {
    let mut im = svc.import(opts)?;
    for (i, l) in lines.iter().enumerate() {
        let line = i as u64 + 1;
        im.add(Record::parse(l, line)?, line).await?;
    }
    im.finish().await.map(|(report, _)| report)
}

/// Fills a store with one of everything an export carries.
async fn fill(svc: &MemoryService) -> Vec<f32> {
    let (ctx, other) = (TenantCtx::dev(), tenant("other"));
    let mut rng = Rng(11);
    let (tea, chess) = (rng.unit(DIMS), rng.unit(DIMS));
    let mem = |ns: &str, text: &str, v: &[f32]| json!({"namespace": ["u", ns], "text": text, "embedding": v});
    let req: CreateMemories = from_json(json!({"memories": [
        mem("a", "Alice drinks green tea every morning", &tea),
        mem("a", "Bob plays chess on Sundays", &chess),
        mem("b", "Alice sips tea at dawn", &nudged(&tea, 0.6)),
        {"namespace": ["u", "a"], "text": "Carol waits for her vector", "tags": ["late"],
         "metadata": {"zeta": 1, "alpha": [1.5, "x"]}, "data": {"z": {"b": 2, "a": 1}, "a": null}, "pinned": true},
        {"namespace": ["u", "a"], "text": "The meeting moved to Friday", "ttl_seconds": 86400},
        {"namespace": ["u", "a"], "text": "Ünïcödé façade — 東京で会いましょう", "tier": "semantic", "embedding": rng.unit(DIMS)},
    ]}));
    svc.create_memories(&ctx, req).await.unwrap();
    // A keyed memory absorbs the first, whose id becomes an alias.
    let req: CreateMemories = from_json(json!({"memories": [{"namespace": ["u", "a"], "key": "habit",
        "text": "Alice drinks green tea every morning", "embedding": nudged(&tea, 0.01)}]}));
    svc.create_memories(&ctx, req).await.unwrap();
    let item: PutItem =
        from_json(json!({"namespace": ["kb"], "key": "plan", "value": {"goal": "ship", "n": 3}, "index": false}));
    svc.put_item(&ctx, item).await.unwrap();
    let req: CreateMemories = from_json(json!({"memories": [mem("a", "someone else's tea", &tea)]}));
    svc.create_memories(&other, req).await.unwrap();
    // Six turns: five distilled (a queued job), one waiting.
    let turns: AddTurns = from_json(json!({"turns": (1..=6).map(|i| json!({
        "role": if i % 2 == 0 { "assistant" } else { "user" },
        "content": format!("turn {i}: we talked about tea and chess"),
        "at": format!("2026-01-0{i}T09:00:00+05:30"),
    })).collect::<Vec<_>>()}));
    svc.add_turns(&ctx, "s1", turns).await.unwrap();
    svc.create_key("default", "ci", Scopes::ALL, None).await.unwrap();
    let limited = Some(NamespaceGrant::parse_list("users/alice,shared").unwrap());
    svc.create_key("default", "alice", Scopes::parse_list("read").unwrap(), limited).await.unwrap();
    let (revoked, _) = svc.create_key("other", "old", Scopes::parse_list("read").unwrap(), None).await.unwrap();
    assert!(svc.revoke_key(&revoked.id).await.unwrap());
    tea
}

/// What callers see: searches of every mode, a session, an alias, keys.
async fn answers(svc: &MemoryService, tea: &[f32], scores: bool) -> Value {
    let mut out = Vec::new();
    for (ctx, mode) in [
        (TenantCtx::dev(), "keyword"),
        (TenantCtx::dev(), "vector"),
        (TenantCtx::dev(), "hybrid"),
        (tenant("other"), "hybrid"),
    ] {
        let input: SearchInput =
            from_json(json!({"query": "tea chess Alice", "query_embedding": tea, "mode": mode, "limit": 10}));
        let hits = svc.search(&ctx, input).await.unwrap().results;
        out.push(Value::Array(
            hits.iter()
                .map(|h| {
                    let score = h.score.map(|s| (s * 1e6).round() / 1e6);
                    json!([h.memory.id, h.memory.text, if scores { json!(score) } else { Value::Null }])
                })
                .collect(),
        ));
    }
    let session = svc.get_session(&TenantCtx::dev(), "s1").await.unwrap();
    out.push(serde_json::to_value(session).unwrap());
    let keys = svc.list_keys(None).await.unwrap();
    out.push(serde_json::to_value(keys).unwrap());
    Value::Array(out)
}

fn other_backend(b: Backend) -> Backend {
    match b {
        Backend::Sqlite | Backend::Memory | Backend::Mongo => Backend::Postgres,
        Backend::Postgres => Backend::Sqlite,
    }
}

pub async fn a_restore_gives_the_same_answers_on_either_backend(h: Harness) {
    let svc = service(&h);
    let tea = fill(&svc).await;
    let (lines, digest) = export(&svc, None).await;
    assert!(lines.first().unwrap().contains(r#""kind":"header""#) && lines.last().unwrap().contains(r#""kind":"end""#));
    let counts = digest.counts();
    assert_eq!(
        (counts["memory"], counts["merge"], counts["session"], counts["key"], counts["tenant_model"]),
        (8, 1, 1, 3, 2),
        "{counts:?}"
    );
    assert_eq!(counts["job"], 1, "the queued distillation: {counts:?}");
    let queued = lines.iter().filter(|l| l.contains(r#""kind":"memory""#) && !l.contains("embedding")).count();
    assert!(queued >= 2, "memories still waiting for a vector are exported without one");
    let original = answers(&svc, &tea, true).await;

    for backend in [h.backend, other_backend(h.backend)] {
        let copy = Harness::new(backend);
        let restored = service(&copy);
        let report = import(&restored, &lines).await.unwrap();
        assert_eq!(report.conflicts, 0, "{report:?}");
        assert_eq!(report.imported["memory"], 8);
        assert!(report.skipped.is_empty(), "{report:?}");
        // The same search results (scores too on the same backend), session, keys.
        assert_eq!(
            answers(&restored, &tea, backend == h.backend).await,
            answers(&svc, &tea, backend == h.backend).await,
            "{backend:?}"
        );
        // The alias of the folded memory leads to the survivor.
        let alias = lines.iter().find(|l| l.contains(r#""kind":"merge""#)).unwrap();
        let alias: Value = serde_json::from_str(alias).unwrap();
        let found = restored.get_memory(&TenantCtx::dev(), alias["id"].as_str().unwrap()).await.unwrap();
        assert_eq!(found.id, alias["survivor"].as_str().unwrap());
        // Exporting the copy gives the original's counts and checksum.
        let (_, again) = export(&restored, None).await;
        assert_eq!(&again, &digest, "{backend:?}");
        // Importing again changes nothing.
        let report = import(&restored, &lines).await.unwrap();
        assert!(report.imported.is_empty(), "{report:?}");
        assert_eq!((report.skipped["memory"], report.skipped["job"]), (8, 1), "{report:?}");
        assert_eq!(export(&restored, None).await.1, digest);
    }
    assert_eq!(answers(&svc, &tea, true).await, original, "exporting changes nothing");

    // One tenant's export holds only that tenant.
    let (lines, d) = export(&svc, Some("other")).await;
    assert_eq!(d.counts()["memory"], 1);
    assert!(lines.iter().skip(1).take(lines.len() - 2).all(|l| l.contains(r#""tenant":"other""#)), "{lines:?}");
}

pub async fn a_damaged_cut_or_altered_export_is_refused(h: Harness) {
    let svc = service(&h);
    fill(&svc).await;
    let (lines, _) = export(&svc, Some("default")).await;
    let fresh = || Harness::new(h.backend);
    let message = |e: engram_core::Error| {
        assert_eq!(e.code(), ErrorCode::InvalidInput);
        e.public_message()
    };

    // Not an export at all; an unknown field; a record after the end.
    let h1 = fresh();
    let e = import(&service(&h1), &lines[1..]).await.unwrap_err();
    assert!(message(e).contains("line 1: an export starts with a header"));
    let mut bad = lines.clone();
    bad[2] = bad[2].replacen('{', r#"{"sql":"DROP TABLE memories","#, 1);
    let e = import(&service(&fresh()), &bad).await.unwrap_err();
    assert!(message(e).contains("line 3"));
    let mut extra = lines.clone();
    extra.push(lines[1].clone());
    let e = import(&service(&fresh()), &extra).await.unwrap_err();
    assert!(message(e).contains("after the end record"));

    // Invalid values are refused as the API refuses them, naming the line.
    let memory_line = lines.iter().position(|l| l.contains(r#""kind":"memory""#)).unwrap();
    for (from, to) in [(r#""namespace":["u""#, r#""namespace":["../x""#), (r#""tenant":"default""#, r#""tenant":"""#)] {
        let mut bad = lines.clone();
        bad[memory_line] = bad[memory_line].replacen(from, to, 1);
        assert_ne!(bad, lines, "{from}");
        let e = import(&service(&fresh()), &bad).await.unwrap_err();
        assert!(message(e).contains(&format!("line {}", memory_line + 1)), "{from}");
    }

    // Cut short: what was read is in, and the whole export completes it.
    let cut = fresh();
    let e = import(&service(&cut), &lines[..lines.len() - 1]).await.unwrap_err();
    assert!(message(e).contains("cut short"));
    let report = import(&service(&cut), &lines).await.unwrap();
    assert_eq!(report.skipped["memory"], 7, "{report:?}");
    assert_eq!(report.skipped["job"], 1, "the session was complete: its job stands: {report:?}");

    // A changed text with the original end record: the checksum says so.
    let mut altered = lines.clone();
    let text_line = lines.iter().position(|l| l.contains("Bob plays chess")).unwrap();
    altered[text_line] = altered[text_line].replace("Bob plays chess", "Bob plays poker");
    let e = import(&service(&fresh()), &altered).await.unwrap_err();
    assert!(message(e).contains("altered or damaged"));

    // A key held here by another memory is a conflict, reported and not written.
    let busy = fresh();
    let busy_svc = service(&busy);
    let item: PutItem =
        from_json(json!({"namespace": ["kb"], "key": "plan", "value": {"goal": "stay"}, "index": false}));
    busy_svc.put_item(&TenantCtx::dev(), item).await.unwrap();
    let report = import(&busy_svc, &lines).await.unwrap();
    assert_eq!(report.conflicts, 1, "{report:?}");
    assert!(report.conflict_examples[0].contains("\"plan\""), "{report:?}");
    let kept = busy_svc.get_item(&TenantCtx::dev(), vec!["kb".into()], "plan", Some(false)).await.unwrap().unwrap();
    assert_eq!(kept.value["goal"], "stay");
}

/// Edits the `n`th record of kind `kind` (from 0) as JSON.
fn edit(lines: &[String], kind: &str, n: usize, f: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut out = lines.to_vec();
    let i = out
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains(&format!(r#""kind":"{kind}""#)))
        .nth(n)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("no {kind} record {n}"));
    let mut v: Value = serde_json::from_str(&out[i]).unwrap();
    f(&mut v);
    out[i] = v.to_string();
    out
}

/// An export with its end record made to match (what a forger would do).
fn resealed(lines: &[String]) -> Vec<String> {
    let mut d = Digest::default();
    // A line that does not parse is left for the import to refuse.
    for r in lines[1..lines.len() - 1].iter().filter_map(|l| Record::parse(l, 1).ok()) {
        d.add(&r);
    }
    let mut out = lines.to_vec();
    let last = out.len() - 1;
    out[last] = serde_json::to_string(&Record::End(d.end())).unwrap();
    out
}

pub async fn hostile_records_cannot_cross_tenants_or_break_invariants(h: Harness) {
    let svc = service(&h);
    fill(&svc).await;
    let (all, _) = export(&svc, None).await;
    let (one, _) = export(&svc, Some("other")).await;
    let fresh = || service(&Harness::new(h.backend));
    let refused = |r: engram_core::Result<ImportReport>, needle: &str| {
        let e = r.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidInput, "{e:?}");
        assert!(e.public_message().contains(needle), "{needle:?} not in {:?}", e.public_message());
    };
    let only = |t: &str| ImportOptions { tenant: Some(t.into()), ..ImportOptions::default() };

    // An export of every tenant needs consent, or a tenant to take.
    refused(import_with(&fresh(), &all, ImportOptions::default()).await, "--all-tenants");
    let target = fresh();
    let report = import_with(&target, &all, only("other")).await.unwrap();
    assert_eq!(report.imported["memory"], 1, "{report:?}");
    assert!(report.skipped["other tenants' records"] > 0, "{report:?}");
    let mine = TenantCtx::dev();
    let listed = target.list_memories(&mine, from_json(json!({}))).await.unwrap();
    assert!(listed.memories.is_empty(), "nothing of the default tenant came along");
    // One tenant's export cannot carry another tenant's record, even resealed.
    let smuggled = resealed(&edit(&one, "memory", 0, |m| m["tenant"] = json!("default")));
    refused(import_with(&fresh(), &smuggled, ImportOptions::default()).await, "a record of tenant \"default\"");
    refused(import_with(&fresh(), &one, only("default")).await, "an export of tenant \"other\"");

    // Keys are credentials: left out unless asked for; an id or a secret
    // already here (in any tenant) is a conflict, and nothing is revoked.
    let target = fresh();
    let report =
        import_with(&target, &all, ImportOptions { all_tenants: true, ..ImportOptions::default() }).await.unwrap();
    assert_eq!((report.keys_left_out, report.imported.get("key")), (3, None), "{report:?}");
    assert!(target.list_keys(None).await.unwrap().is_empty());
    let (mine_key, _) = target.create_key("default", "mine", Scopes::ALL, None).await.unwrap();
    let stolen = resealed(&edit(&all, "key", 1, |k| {
        k["id"] = json!(mine_key.id);
        k["revoked_at"] = json!(1);
    }));
    let report = import(&target, &stolen).await.unwrap();
    assert_eq!(report.conflicts, 1, "{report:?}");
    let keys = target.list_keys(Some("default")).await.unwrap();
    assert!(keys.iter().any(|k| k.id == mine_key.id && k.revoked_at.is_none()), "{keys:?}");

    // Values the API would refuse, and invariants of sessions and jobs.
    for (kind, change, needle) in [
        ("memory", json!({"version": i64::MAX}), "version"),
        ("memory", json!({"created_at": -1}), "created_at"),
        ("memory", json!({"id": "0190A5D2-0000-7000-8000-00000000000A"}), "UUID"),
        ("memory", json!({"embedding": vec![0.0; DIMS]}), "embedding"),
        ("memory", json!({"cite_count": -3}), "cite_count"),
        ("session", json!({"turn_count": i64::MAX}), "turn_count"),
        ("session", json!({"turns": []}), "must be present"),
        ("job", json!({"job": "shell"}), "unknown job kind"),
        ("job", json!({"payload": "{\"session_id\":\"..\",\"namespace\":\"\",\"turns\":[]}"}), "session id"),
        ("merge", json!({"survivor": null}), "line"),
        ("key", json!({"hash": "AB".repeat(32)}), "hex"),
    ] {
        let bad = resealed(&edit(&all, kind, 0, |r| {
            for (k, v) in change.as_object().unwrap() {
                r[k] = v.clone();
            }
        }));
        refused(import(&fresh(), &bad).await, needle);
    }

    // A vector of another size is not stored: the memory is queued for embedding.
    let target = fresh();
    let short = resealed(&edit(&all, "memory", 0, |m| m["embedding"] = json!([0.6, 0.8])));
    let report = import(&target, &short).await.unwrap();
    let queued_before = import(&fresh(), &all).await.unwrap().queued_for_embedding;
    assert_eq!(report.queued_for_embedding, queued_before + 1, "{report:?}");

    // A newer version that moves a memory to another namespace is a conflict.
    let target = fresh();
    import(&target, &all).await.unwrap();
    let moved = resealed(&edit(&all, "memory", 0, |m| {
        m["namespace"] = json!(["elsewhere"]);
        m["version"] = json!(99);
    }));
    let report = import(&target, &moved).await.unwrap();
    assert_eq!(report.conflicts, 1, "{report:?}");
}
