//! Generated filters, valid and hostile, run against real SQLite: each either
//! parses and executes, or is refused with `invalid_filter` — never an
//! internal error, never a SQL error.

use engram_core::service::inputs::{CreateMemories, SearchInput};
use engram_core::{ErrorCode, TenantCtx};
use serde_json::{json, Map, Value};

/// xorshift64*: deterministic, dependency-free randomness for generation.
struct Rng(u64);

impl Rng {
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

const FIELDS: &[&str] = &[
    "metadata.n", "metadata.kind", "metadata.list", "value.a", "value.a.b", "tags", "tier", "key", "salience",
    "created_at", "updated_at", "metadata.x'y", "metadata.", "bogus", "metadata.a.b", "value.a[0]", "$where",
];
const OPS: &[&str] = &["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$all", "$regex", "$expr", "$", "eq"];

fn scalar(r: &mut Rng) -> Value {
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

fn operand(r: &mut Rng) -> Value {
    match r.next() % 5 {
        0 => json!([scalar(r), scalar(r)]),
        1 => json!({"nested": scalar(r)}),
        _ => scalar(r),
    }
}

fn filter(r: &mut Rng, depth: u32) -> Value {
    let mut m = Map::new();
    let n = 1 + r.next() % 3;
    for _ in 0..n {
        match r.next() % 6 {
            0 if depth < 10 => {
                let k = *r.pick(&["$and", "$or"]);
                m.insert(k.into(), json!([filter(r, depth + 1), filter(r, depth + 1)]));
            }
            1 if depth < 10 => {
                m.insert("$not".into(), filter(r, depth + 1));
            }
            2 => {
                let mut ops = Map::new();
                ops.insert(r.pick(OPS).to_string(), operand(r));
                m.insert(r.pick(FIELDS).to_string(), Value::Object(ops));
            }
            _ => {
                m.insert(r.pick(FIELDS).to_string(), operand(r));
            }
        }
    }
    Value::Object(m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_filters_never_break_the_query() {
    let (svc, _dir) = crate::service();
    let ctx = TenantCtx::dev();
    let memories = serde_json::from_value(json!([
        {"namespace": ["f"], "text": "one", "tags": ["a"], "metadata": {"n": 1, "kind": "a", "list": ["a", 2]}, "data": {"a": {"b": 1}}},
        {"namespace": ["f"], "text": "two", "metadata": {"n": -2, "kind": null}, "key": "a", "tier": "semantic"},
        {"namespace": ["f"], "text": "three", "data": {"a": [1, "a"]}}
    ]))
    .unwrap();
    svc.create_memories(&ctx, CreateMemories { memories, wait: None }).await.unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..3000 {
        let f = filter(&mut rng, 0);
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
    // The table is intact after all of that.
    let all = svc.search(&ctx, SearchInput::default()).await.unwrap();
    assert_eq!(all.results.len(), 3);
}
