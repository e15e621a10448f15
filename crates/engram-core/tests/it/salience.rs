//! Salience: citations batched and written, decay with the clock passed in,
//! pinned memories exempt.

use engram_core::service::inputs::CreateMemories;
use engram_core::time::now_ms;
use engram_core::TenantCtx;
use serde_json::json;

const DAY: i64 = 86_400_000;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test]
async fn citations_raise_salience_once_flushed_and_time_lowers_it() {
    let (svc, _dir) = crate::service();
    let ctx = TenantCtx::dev();
    let req: CreateMemories = serde_json::from_value(json!({"memories": [
        {"namespace": ["s"], "text": "Ana likes figs"},
        {"namespace": ["s"], "text": "Ana's passport number is in the drawer", "pinned": true},
        {"namespace": ["s"], "text": "Ana once visited Oslo"}
    ]}))
    .unwrap();
    let ids: Vec<String> = svc.create_memories(&ctx, req).await.unwrap().into_iter().map(|(_, m)| m.id).collect();

    for n in 1..=3 {
        assert_eq!(svc.cite(&ctx, &ids[0]).await.unwrap().pending, n);
    }
    assert!(close(svc.get_memory(&ctx, &ids[0]).await.unwrap().salience, 0.5), "not written before the flush");
    assert_eq!(svc.flush_citations().await.unwrap(), 1);
    assert_eq!(svc.flush_citations().await.unwrap(), 0, "nothing left to write");
    let m = svc.get_memory(&ctx, &ids[0]).await.unwrap();
    assert!(close(m.salience, 1.0 - 0.5 * 0.8f64.powi(3)), "{}", m.salience);
    assert_eq!(m.version, 1, "a citation is not an edit");

    // An unknown id is a 404 and counts nothing.
    let err = svc.cite(&ctx, "0190a0a0-0000-7000-8000-000000000000").await.unwrap_err();
    assert_eq!(err.code().as_str(), "not_found");
    assert!(svc.cite(&ctx, "not-an-id").await.is_err());
    assert_eq!(svc.flush_citations().await.unwrap(), 0);

    // 90 days on (one half-life): the unpinned halve, the pinned stay.
    let later = now_ms() + 90 * DAY;
    assert_eq!(svc.store().decay_salience(later, 1000).await.unwrap(), 2);
    assert_eq!(svc.store().decay_salience(later, 1000).await.unwrap(), 0, "at most once a day");
    let cited = svc.get_memory(&ctx, &ids[0]).await.unwrap().salience;
    assert!((cited - (1.0 - 0.5 * 0.8f64.powi(3)) / 2.0).abs() < 1e-3, "{cited}");
    assert!(close(svc.get_memory(&ctx, &ids[1]).await.unwrap().salience, 0.5), "pinned memories never decay");
    let plain = svc.get_memory(&ctx, &ids[2]).await.unwrap().salience;
    assert!((plain - 0.25).abs() < 1e-3, "{plain}");

    // A citation applies the decay due since the last update first.
    let much_later = later + 90 * DAY;
    assert_eq!(svc.store().apply_citations(vec![("default".into(), ids[2].clone(), 1)], much_later).await.unwrap(), 1);
    let s = svc.get_memory(&ctx, &ids[2]).await.unwrap().salience;
    assert!((s - (1.0 - (1.0 - 0.125) * 0.8)).abs() < 1e-3, "{s}");
}
