//! Search: keyword (BM25) ranking within the caller's scope, common words of
//! a large index, small scopes inside a big shared index, vector and hybrid
//! search with the caller's vectors restricted inside the search, and the
//! context neighbours lend.

use engram_core::service::inputs::{CreateMemories, MemoryInput, SearchInput};
use engram_core::{MemoryService, TenantCtx};
use serde_json::{json, Value};

use crate::harness::{from_json, nudged, tenant, Harness, Rng, DIMS, MINUTE};

fn input(ns: &str, text: &str) -> MemoryInput {
    from_json(json!({"namespace": [ns], "text": text}))
}

async fn texts(svc: &MemoryService, ctx: &TenantCtx, body: Value) -> Vec<String> {
    let input: SearchInput = from_json(body);
    svc.search(ctx, input).await.unwrap().results.into_iter().map(|h| h.memory.text).collect()
}

pub async fn keyword_search_ranks_within_the_scope(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let req: CreateMemories = from_json(json!({"memories": [
        {"namespace": ["a"], "text": "Alice painted a sunset over the lake"},
        {"namespace": ["a"], "text": "Alice likes painting; she painted the lake twice, a lake she loves"},
        {"namespace": ["a", "b"], "text": "Bob fixes bicycles", "tier": "semantic"},
        {"namespace": ["c"], "text": "Carol painted her fence", "metadata": {"kind": "chore"}},
    ]}));
    svc.create_memories(&ctx, req).await.unwrap();
    // Stemming ("paints" finds "painted"), stopwords ignored, best match first.
    let all =
        texts(&svc, &ctx, json!({"query": "What did she paint at the lake?", "mode": "keyword", "context_weight": 0}))
            .await;
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all[0].contains("twice"), "more matching words rank first: {all:?}");
    let scoped = json!({"query": "painted", "mode": "keyword", "namespace_prefix": ["c"]});
    assert_eq!(texts(&svc, &ctx, scoped).await, ["Carol painted her fence"]);
    let filtered = json!({"query": "painted", "mode": "keyword", "filter": {"metadata.kind": "chore"}});
    assert_eq!(texts(&svc, &ctx, filtered).await, ["Carol painted her fence"]);
    let tiered = json!({"query": "bicycles painted", "mode": "keyword", "tiers": ["semantic"]});
    assert_eq!(texts(&svc, &ctx, tiered).await, ["Bob fixes bicycles"]);
    // Any text is searched literally, and words without a match find nothing.
    for q in ["NEAR(alice lake)", "\"alice\" OR", "*", "a:b -c", "zzzz qqqq"] {
        let found = texts(&svc, &ctx, json!({"query": q, "mode": "keyword"})).await;
        assert!(found.len() <= 2, "{q}: {found:?}");
    }
    // Offsets page through the ranking; another tenant sees nothing.
    let page = |offset: i64| json!({"query": "painted lake", "mode": "keyword", "limit": 1, "offset": offset, "context_weight": 0});
    let (first, second) = (texts(&svc, &ctx, page(0)).await, texts(&svc, &ctx, page(1)).await);
    assert_eq!(first.len() + second.len(), 2);
    assert_ne!(first, second);
    assert!(texts(&svc, &tenant("other"), json!({"query": "painted", "mode": "keyword"})).await.is_empty());
}

pub async fn common_words_of_a_large_index_are_not_searched(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    // 10 000 memories (the size from which common words are dropped): all say
    // "weather", one in ten says "umbrella", one says "zeppelin".
    for start in (0..10_000).step_by(1000) {
        let memories = (start..start + 1000)
            .map(|i| {
                let extra = if i == 4321 {
                    " zeppelin"
                } else if i % 10 == 0 {
                    " umbrella"
                } else {
                    ""
                };
                input("w", &format!("note {i} about the weather{extra}"))
            })
            .collect();
        svc.create_memories(&ctx, CreateMemories { memories, wait: None }).await.unwrap();
    }
    let search = |q: &str| json!({"query": q, "mode": "keyword", "limit": 20, "context_weight": 0});
    assert_eq!(texts(&svc, &ctx, search("weather umbrella zeppelin")).await, ["note 4321 about the weather zeppelin"]);
    // The rarest word of a query is always kept.
    let found = texts(&svc, &ctx, search("weather umbrella")).await;
    assert_eq!(found.len(), 20);
    assert!(found.iter().all(|t| t.ends_with("umbrella")), "{found:?}");
    assert_eq!(texts(&svc, &ctx, search("weather")).await.len(), 20);
}

pub async fn a_small_scope_is_found_inside_a_big_index(h: Harness) {
    let svc = h.service();
    let (big, small) = (TenantCtx::dev(), tenant("small"));
    let many = (0..300).map(|i| input("x", &format!("apple pie recipe {i}"))).collect();
    svc.create_memories(&big, CreateMemories { memories: many, wait: None }).await.unwrap();
    let few = vec![input("y", "apple tart"), input("y", "apple crumble")];
    svc.create_memories(&big, CreateMemories { memories: few.clone(), wait: None }).await.unwrap();
    svc.create_memories(&small, CreateMemories { memories: few, wait: None }).await.unwrap();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    // The index's best matches are all the big scope's; the small scopes are
    // found anyway, and again once they are known to be narrow.
    for _ in 0..2 {
        let q = json!({"query": "apple", "mode": "keyword", "context_weight": 0});
        assert_eq!(sorted(texts(&svc, &small, q).await), ["apple crumble", "apple tart"]);
        let y = json!({"query": "apple", "mode": "keyword", "namespace_prefix": ["y"], "context_weight": 0});
        assert_eq!(sorted(texts(&svc, &big, y).await), ["apple crumble", "apple tart"]);
    }
    let x =
        texts(&svc, &big, json!({"query": "apple", "mode": "keyword", "namespace_prefix": ["x"], "limit": 20})).await;
    assert_eq!(x.len(), 20);
    assert!(x.iter().all(|t| t.starts_with("apple pie")), "{x:?}");
}

pub async fn vector_and_hybrid_search_stay_in_scope(h: Harness) {
    let svc = h.vector_service();
    let (ctx, other) = (TenantCtx::dev(), tenant("other"));
    let mut rng = Rng(7);
    let (tea, chess, run) = (rng.unit(DIMS), rng.unit(DIMS), rng.unit(DIMS));
    let mem = |ns: &str, text: &str, tier: &str, v: &[f32]| json!({"namespace": [ns], "text": text, "tier": tier, "embedding": v});
    let req: CreateMemories = from_json(json!({"memories": [
        mem("u", "Alice drinks green tea", "semantic", &tea),
        mem("u", "Bob plays chess", "episodic", &chess),
        mem("v", "Alice sips tea at dawn", "episodic", &nudged(&tea, 0.6)),
        mem("u", "Carol runs", "episodic", &run),
    ]}));
    svc.create_memories(&ctx, req).await.unwrap();
    let req: CreateMemories = from_json(json!({"memories": [mem("u", "someone else's tea", "episodic", &tea)]}));
    svc.create_memories(&other, req).await.unwrap();
    let by = |mode: &str, extra: Value| {
        let mut body = json!({"mode": mode, "query_embedding": tea, "limit": 2, "context_weight": 0});
        if mode == "hybrid" {
            body["query"] = json!("tea");
        }
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    assert_eq!(texts(&svc, &ctx, by("vector", json!({}))).await, ["Alice drinks green tea", "Alice sips tea at dawn"]);
    assert_eq!(texts(&svc, &ctx, by("vector", json!({"namespace_prefix": ["v"]}))).await, ["Alice sips tea at dawn"]);
    let episodic = texts(&svc, &ctx, by("vector", json!({"tiers": ["episodic"], "namespace_prefix": ["u"]}))).await;
    assert_eq!(episodic.len(), 2);
    assert!(!episodic.contains(&"Alice drinks green tea".to_string()), "{episodic:?}");
    let hybrid = texts(&svc, &ctx, by("hybrid", json!({"limit": 3}))).await;
    assert_eq!(&hybrid[..2], ["Alice drinks green tea", "Alice sips tea at dawn"]);
    assert_eq!(texts(&svc, &other, by("vector", json!({}))).await, ["someone else's tea"]);
    // The explanation gives the parts of the score.
    let input: SearchInput = from_json(by("hybrid", json!({"explain": true, "limit": 1})));
    let out = svc.search(&ctx, input).await.unwrap();
    let ex = out.results[0].explain.as_ref().unwrap();
    assert!(ex.vector.unwrap() > 0.99 && ex.keyword.is_some(), "{ex:?}");
    // A vector of the wrong dimension is a clear error.
    let bad: SearchInput = from_json(json!({"query_embedding": [1.0, 0.0], "mode": "vector"}));
    assert_eq!(svc.search(&ctx, bad).await.unwrap_err().code().as_str(), "embedding_mismatch");
}

pub async fn neighbours_lend_context_within_their_namespace(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    // A question and its answer share no word; the answer's neighbour lends it relevance.
    for (ns, text) in [
        ("talk", "What instrument did you pick up last spring?"),
        ("other", "An unrelated note in another namespace"),
        ("talk", "The cello, and I practise every evening."),
        ("talk", "Dinner was pasta."),
    ] {
        svc.create_memories(&ctx, CreateMemories { memories: vec![input(ns, text)], wait: None }).await.unwrap();
        h.advance(MINUTE);
    }
    let q = |w: f64| json!({"query": "instrument spring", "mode": "keyword", "context_weight": w, "explain": true, "limit": 5});
    let input: SearchInput = from_json(q(0.5));
    let out = svc.search(&ctx, input).await.unwrap();
    let found: Vec<(&str, f64)> =
        out.results.iter().map(|r| (r.memory.text.as_str(), r.explain.as_ref().unwrap().context)).collect();
    assert_eq!(found[0].0, "What instrument did you pick up last spring?");
    assert_eq!(found[1].0, "The cello, and I practise every evening.", "{found:?}");
    assert!((found[1].1 - 0.5).abs() < 1e-9, "half the best neighbour's relevance: {found:?}");
    assert!(found.iter().all(|(t, _)| !t.starts_with("An unrelated")), "another namespace lends nothing");
    let off: SearchInput = from_json(q(0.0));
    assert_eq!(svc.search(&ctx, off).await.unwrap().results.len(), 1, "without context only the match");
}

pub async fn words_are_found_inside_scripts_written_without_spaces(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let texts_in = [
        ("zh", "我喜欢喝绿茶"),
        ("zh", "他每天早上跑步"),
        ("ja", "私は毎朝コーヒーを飲みます"),
        ("ja", "東京タワーに行きました"),
        ("th", "ฉันชอบดื่มชาเขียว"),
        ("ko", "저는 녹차를 좋아해요"),
        ("en", "Alice likes green tea"),
    ];
    let memories = texts_in.iter().map(|(ns, t)| input(ns, t)).collect();
    svc.create_memories(&ctx, CreateMemories { memories, wait: None }).await.unwrap();
    let search = |q: &str| json!({"query": q, "mode": "keyword", "context_weight": 0});
    for (q, want) in [
        ("绿茶", "我喜欢喝绿茶"),
        ("跑步", "他每天早上跑步"),
        ("コーヒー", "私は毎朝コーヒーを飲みます"),
        ("東京", "東京タワーに行きました"),
        ("ชาเขียว", "ฉันชอบดื่มชาเขียว"),
        ("녹차", "저는 녹차를 좋아해요"),
        ("green tea 绿茶", "Alice likes green tea"),
    ] {
        let found = texts(&svc, &ctx, search(q)).await;
        assert!(found.first().is_some_and(|t| t == want) || found.contains(&want.to_string()), "{q}: {found:?}");
    }
    assert_eq!(texts(&svc, &ctx, search("绿茶")).await, ["我喜欢喝绿茶"], "nothing else shares the bigram");
    assert!(texts(&svc, &ctx, search("紅茶")).await.is_empty(), "a different word finds nothing");
    // A single character is searched as itself.
    assert_eq!(texts(&svc, &ctx, search("茶")).await, ["我喜欢喝绿茶"]);
}
