//! Filters, differentially: generated documents and generated filters, and a
//! backend's answer must be exactly what the reference evaluator
//! (`engram_core::filter::eval`, through `Scope::admits`) says — thousands of
//! cases. Then the regression that started it, and hostile filters.

use std::sync::atomic::{AtomicUsize, Ordering};

use engram_core::filter::{self, Dialect};
use engram_core::model::Memory;
use engram_core::service::inputs::{CreateMemories, SearchInput};
use engram_core::store::{Scope, Stored};
use engram_core::{ErrorCode, MemoryService, TenantCtx};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{json, Map, Value};

use crate::harness::{batch_seed, from_json, fuzz_budget, tenant, Harness};

/// Generated cases (each one writes a fresh tenant's documents and runs
/// [`FILTERS_PER_CASE`] filters against them).
const CASES: u32 = 320;
const FILTERS_PER_CASE: usize = 10;

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..=3).prop_map(|i| json!(i)),
        prop_oneof![Just(0.5), Just(1.0), Just(-1.5), Just(2.0)].prop_map(|f: f64| json!(f)),
        prop_oneof![Just("x"), Just("y"), Just("1"), Just(""), Just("core"), Just("Core")].prop_map(|s| json!(s)),
    ]
}

fn leaf_value() -> impl Strategy<Value = Value> {
    prop_oneof![4 => scalar(), 1 => prop::collection::vec(scalar(), 0..4).prop_map(Value::Array)]
}

/// A JSON value of `data`: scalars, arrays, and objects up to three deep.
fn data_value() -> impl Strategy<Value = Value> {
    leaf_value().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::btree_map(prop_oneof![Just("p"), Just("q"), Just("1")], inner.clone(), 0..3)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
            prop::collection::vec(inner, 0..3).prop_map(Value::Array),
        ]
    })
}

/// One document: what a memory carries that filters can see.
#[derive(Debug, Clone)]
struct Doc {
    metadata: Map<String, Value>,
    data: Option<Map<String, Value>>,
    tags: Vec<String>,
    tier: &'static str,
    keyed: bool,
    salience: f64,
    /// Expires before the filter runs.
    expired: bool,
}

fn doc() -> impl Strategy<Value = Doc> {
    let metadata = prop::collection::btree_map(prop_oneof![Just("a"), Just("b"), Just("owner")], leaf_value(), 0..3);
    let data = prop::option::of(prop::collection::btree_map(
        prop_oneof![Just("a"), Just("o"), Just("owner")],
        data_value(),
        0..3,
    ));
    let tags = prop::collection::btree_set(prop_oneof![Just("t1"), Just("t2"), Just("t3")], 0..3);
    (
        metadata,
        data,
        tags,
        prop_oneof![Just("episodic"), Just("semantic")],
        any::<bool>(),
        prop_oneof![Just(0.1), Just(0.5), Just(0.9)],
        prop::bool::weighted(0.2),
    )
        .prop_map(|(metadata, data, tags, tier, keyed, salience, expired)| Doc {
            metadata: metadata.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            data: data.map(|d| d.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
            tags: tags.into_iter().map(str::to_owned).collect(),
            tier,
            keyed,
            salience,
            expired,
        })
}

const FIELDS: &[&str] = &[
    "metadata.a",
    "metadata.b",
    "metadata.owner",
    "value.a",
    "value.o",
    "value.o.p",
    "value.o.q.p",
    "value.o.1",
    "value.owner",
    "value.owner.p",
    "tags",
    "tier",
    "key",
    "salience",
];

fn operand_for(field: &'static str) -> BoxedStrategy<Value> {
    match field {
        "tier" => prop_oneof![Just(json!("episodic")), Just(json!("semantic"))].boxed(),
        "tags" => prop_oneof![Just(json!("t1")), Just(json!("t2")), Just(json!("t4"))].boxed(),
        "key" => prop_oneof![Just(json!("k0")), Just(json!("k3")), Just(json!("zz"))].boxed(),
        "salience" => prop_oneof![Just(json!(0.1)), Just(json!(0.5)), Just(json!(1))].boxed(),
        _ => scalar().boxed(),
    }
}

/// A leaf test `{field: {op: operand}}` (or implicit equality).
fn leaf() -> impl Strategy<Value = Value> {
    prop::sample::select(FIELDS).prop_flat_map(|field| {
        let ops = prop::sample::select(
            &["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$all", "$exists", "="][..],
        );
        (ops, operand_for(field), prop::collection::vec(operand_for(field), 0..3), any::<bool>()).prop_map(
            move |(op, x, xs, b)| match op {
                "=" => json!({ field: x }),
                "$in" | "$nin" | "$all" => json!({ field: { op: xs } }),
                "$exists" => json!({ field: { "$exists": b } }),
                _ => json!({ field: { op: x } }),
            },
        )
    })
}

fn filter_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3).prop_map(|v| json!({ "$and": v })),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|v| json!({ "$or": v })),
            inner.prop_map(|f| json!({ "$not": f })),
        ]
    })
}

/// The ids of `docs` that the reference evaluator says `scope` selects.
fn selected<'a>(scope: &Scope, tenant: &str, docs: &'a [Memory]) -> Vec<&'a str> {
    let stored = |m: &Memory| Stored {
        seq: 0,
        tenant: tenant.to_owned(),
        memory: m.clone(),
        text_hash: None,
        salience_at: 0,
        cite_count: 0,
    };
    docs.iter().filter(|m| scope.admits(&stored(m))).map(|m| m.id.as_str()).collect()
}

/// Writes the case's documents for a fresh tenant; returns them as stored.
async fn write_docs(h: &Harness, svc: &MemoryService, ctx: &TenantCtx, docs: &[Doc]) -> Vec<Memory> {
    let memories: Vec<Value> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut m = json!({"namespace": ["f"], "text": format!("document {i} of {}", ctx.tenant), "tier": d.tier,
                "salience": d.salience, "tags": d.tags, "metadata": d.metadata});
            if let Some(data) = &d.data {
                m["data"] = Value::Object(data.clone());
            }
            if d.keyed {
                m["key"] = json!(format!("k{i}"));
            }
            if d.expired {
                m["ttl_seconds"] = json!(1);
            }
            m
        })
        .collect();
    let req: CreateMemories = from_json(json!({ "memories": memories }));
    let written = svc.create_memories(ctx, req).await.expect("documents are valid");
    let _ = h;
    written.into_iter().map(|(_, m)| m).collect()
}

pub async fn filters_agree_with_the_reference_evaluator(h: Harness) {
    let svc = h.service();
    let handle = tokio::runtime::Handle::current();
    // `make fuzz`: batch after batch until the budget is spent.
    let (budget, started) = (fuzz_budget(), std::time::Instant::now());
    let case = AtomicUsize::new(0);
    let (compared, matched) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let strategy = (prop::collection::vec(doc(), 1..14), prop::collection::vec(filter_json(), FILTERS_PER_CASE));
    loop {
        // A fixed seed for `make test` (repeatable); fresh, printed ones for `make fuzz`.
        let seed = batch_seed("differential filters", 7);
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
        let mut runner =
            TestRunner::new_with_rng(Config { cases: CASES, failure_persistence: None, ..Config::default() }, rng);
        let result = runner.run(&strategy, |(docs, filters)| {
            let n = case.fetch_add(1, Ordering::Relaxed);
            let ctx = tenant(&format!("case{n}"));
            let stored = tokio::task::block_in_place(|| handle.block_on(write_docs(&h, &svc, &ctx, &docs)));
            // The documents with a TTL expire now; the rest stay.
            h.advance(1_500);
            for f in &filters {
                let Ok(parsed) = filter::parse(f, Dialect::Memories) else {
                    continue;
                };
                let scope = Scope { filter: Some(parsed), ..Scope::tenant(&ctx.tenant, h.now()) };
                let mut want = selected(&scope, &ctx.tenant, &stored);
                let input = SearchInput { filter: Some(f.clone()), limit: Some(1000), ..SearchInput::default() };
                let out = tokio::task::block_in_place(|| handle.block_on(svc.search(&ctx, input)))
                    .map_err(|e| TestCaseError::fail(format!("{f}: {e}")))?;
                let mut got: Vec<&str> = out.results.iter().map(|r| r.memory.id.as_str()).collect();
                want.sort();
                got.sort();
                prop_assert_eq!(&got, &want, "filter {} over documents {:?}", f, docs);
                compared.fetch_add(1, Ordering::Relaxed);
                matched.fetch_add(want.len(), Ordering::Relaxed);
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("seed {seed}: {e}\nkeep the minimal documents and filter as a test in this file (as below)");
        }
        if budget.is_none_or(|b| started.elapsed() >= b) {
            break;
        }
    }
    let (compared, matched) = (compared.into_inner(), matched.into_inner());
    assert!(compared >= 2000, "thousands of filters compared: {compared}");
    assert!(
        matched > compared / 4,
        "the generator makes filters that match something: {matched} matches in {compared}"
    );
}

pub async fn object_valued_fields_are_not_their_members(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let req: CreateMemories = from_json(json!({"memories": [
        {"namespace": ["o"], "text": "nested owner", "data": {"owner": {"team": "core"}}, "metadata": {"owner": "core"}},
        {"namespace": ["o"], "text": "flat owner", "data": {"owner": "core"}},
    ]}));
    svc.create_memories(&ctx, req).await.unwrap();
    let texts = |f: Value| {
        let svc = svc.clone();
        async move {
            let input = SearchInput { filter: Some(f), ..SearchInput::default() };
            let mut t: Vec<String> = svc
                .search(&TenantCtx::dev(), input)
                .await
                .unwrap()
                .results
                .into_iter()
                .map(|r| r.memory.text)
                .collect();
            t.sort();
            t
        }
    };
    assert_eq!(texts(json!({"value.owner": "core"})).await, ["flat owner"]);
    assert_eq!(texts(json!({"value.owner": {"$ne": "core"}})).await, ["nested owner"]);
    assert_eq!(texts(json!({"value.owner": {"$in": ["core", "x"]}})).await, ["flat owner"]);
    assert_eq!(texts(json!({"value.owner.team": "core"})).await, ["nested owner"]);
    assert_eq!(texts(json!({"value.owner": {"$exists": true}})).await, ["flat owner", "nested owner"]);
    assert_eq!(texts(json!({"metadata.owner": "core"})).await, ["nested owner"]);
    // The LangGraph dialect reads bare names as value paths: the same answer.
    let items: engram_core::service::SearchItems = from_json(json!({"filter": {"owner": "core"}}));
    assert!(svc.search_items(&ctx, items).await.unwrap().is_empty(), "neither is a keyed item");
}

/// Filters that once broke (or nearly broke) the parser or a backend's
/// query, each with whether it is valid (`tests/fixtures/filter-regressions.jsonl`),
/// replayed over the hostile test's three documents: a valid one must select
/// exactly what the reference evaluator selects from them. (A disagreement
/// that needs its own documents is kept as a test of its own in this file.)
async fn replay_regressions(h: &Harness, svc: &MemoryService, ctx: &TenantCtx, written: &[Memory]) {
    let mut n = 0;
    for line in include_str!("../../fixtures/filter-regressions.jsonl").lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let case: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let f = case["filter"].clone();
        let input = SearchInput { filter: Some(f.clone()), limit: Some(1000), ..SearchInput::default() };
        match (svc.search(ctx, input).await, case["valid"].as_bool()) {
            (Ok(out), Some(true)) => {
                let scope = Scope {
                    filter: Some(filter::parse(&f, Dialect::Memories).unwrap()),
                    ..Scope::tenant(&ctx.tenant, h.now())
                };
                let mut want = selected(&scope, &ctx.tenant, written);
                let mut got: Vec<&str> = out.results.iter().map(|r| r.memory.id.as_str()).collect();
                want.sort();
                got.sort();
                assert_eq!(got, want, "regression {line}");
            }
            (Err(e), Some(false)) => assert_eq!(e.code(), ErrorCode::InvalidFilter, "regression {line}"),
            (answer, _) => panic!("regression {line}: {answer:?}"),
        }
        n += 1;
    }
    assert!(n >= 5, "the regressions file was read ({n} filters)");
}

/// xorshift64*: deterministic generation of hostile input.
struct Xs(u64);

impl Xs {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() % xs.len() as u64) as usize]
    }
}

const HOSTILE_FIELDS: &[&str] = &[
    "metadata.n",
    "metadata.kind",
    "value.a",
    "value.a.b",
    "tags",
    "tier",
    "key",
    "salience",
    "created_at",
    "updated_at",
    "metadata.x'y",
    "metadata.",
    "bogus",
    "metadata.a.b",
    "value.a[0]",
    "$where",
];
const HOSTILE_OPS: &[&str] =
    &["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$all", "$regex", "$expr", "$", "eq"];

fn hostile_scalar(r: &mut Xs) -> Value {
    match r.next() % 9 {
        0 => Value::Null,
        1 => json!(r.next().is_multiple_of(2)),
        2 => json!((r.next() % 7) as i64 - 3),
        3 => json!(0.5),
        4 => json!("a"),
        5 => json!("episodic"),
        6 => json!("2026-01-01T00:00:00Z"),
        7 => json!("'; DROP TABLE memories; --"),
        _ => json!("\u{0}\"\\%_*"),
    }
}

fn hostile_operand(r: &mut Xs) -> Value {
    match r.next() % 5 {
        0 => json!([hostile_scalar(r), hostile_scalar(r)]),
        1 => json!({"nested": hostile_scalar(r)}),
        _ => hostile_scalar(r),
    }
}

fn hostile(r: &mut Xs, depth: u32) -> Value {
    let mut m = Map::new();
    for _ in 0..1 + r.next() % 3 {
        match r.next() % 6 {
            0 if depth < 10 => {
                let k = *r.pick(&["$and", "$or"]);
                m.insert(k.into(), json!([hostile(r, depth + 1), hostile(r, depth + 1)]));
            }
            1 if depth < 10 => {
                m.insert("$not".into(), hostile(r, depth + 1));
            }
            2 => {
                let mut ops = Map::new();
                ops.insert(r.pick(HOSTILE_OPS).to_string(), hostile_operand(r));
                m.insert(r.pick(HOSTILE_FIELDS).to_string(), Value::Object(ops));
            }
            _ => {
                m.insert(r.pick(HOSTILE_FIELDS).to_string(), hostile_operand(r));
            }
        }
    }
    Value::Object(m)
}

pub async fn hostile_filters_never_break_the_query(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let req: CreateMemories = from_json(json!({"memories": [
        {"namespace": ["f"], "text": "one", "tags": ["a"], "metadata": {"n": 1, "kind": "a", "list": ["a", 2]}, "data": {"a": {"b": 1}}},
        {"namespace": ["f"], "text": "two", "metadata": {"n": -2, "kind": null}, "key": "a", "tier": "semantic"},
        {"namespace": ["f"], "text": "three", "data": {"a": [1, "a"]}}
    ]}));
    let written: Vec<Memory> = svc.create_memories(&ctx, req).await.unwrap().into_iter().map(|(_, m)| m).collect();
    replay_regressions(&h, &svc, &ctx, &written).await;
    // A fixed seed; under `make fuzz`, fresh ones (printed, each for 100 000
    // filters) until the budget is spent.
    let (budget, started) = (fuzz_budget(), std::time::Instant::now());
    let mut rng = Xs(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut refused, mut sent) = (0, 0, 0u64);
    while sent < 3000 || budget.is_some_and(|b| started.elapsed() < b) {
        if budget.is_some() && sent % 100_000 == 0 {
            rng = Xs(batch_seed("hostile filters", 0x9E37_79B9_7F4A_7C15) | 1);
        }
        sent += 1;
        let f = hostile(&mut rng, 0);
        // The parser alone, in both dialects: a filter or `invalid_filter`, never a panic.
        for dialect in [Dialect::Memories, Dialect::Items] {
            if let Err(e) = filter::parse(&f, dialect) {
                assert_eq!(e.code(), ErrorCode::InvalidFilter, "filter {f} gave {e:?}");
            }
        }
        match svc.search(&ctx, SearchInput { filter: Some(f.clone()), limit: Some(10), ..Default::default() }).await {
            Ok(out) => {
                assert!(out.results.len() <= 3);
                ok += 1;
            }
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::InvalidFilter, "filter {f} gave {e:?}");
                refused += 1;
            }
        }
    }
    assert!(ok > 100 && refused > 100, "the generator covers both outcomes: ok={ok} refused={refused}");
    if budget.is_some() {
        eprintln!("hostile filters: {sent} in {:.0?} ({ok} ran, {refused} refused)", started.elapsed());
    }
    assert_eq!(svc.search(&ctx, SearchInput::default()).await.unwrap().results.len(), 3, "the table is intact");
}
