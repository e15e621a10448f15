//! Sessions and distillation: jobs that survive a reopen and run exactly
//! once, cancellation with the session, the fallback when a distiller fails,
//! gap-free order under concurrent appends, a session's fixed namespace.

use std::sync::Arc;

use engram_core::distill::{DistillError, DistillRequest, Distillation, Distiller};
use engram_core::model::Source;
use engram_core::service::inputs::{AddTurns, ListInput};
use engram_core::service::{Lifecycle, ServiceOptions};
use engram_core::{ErrorCode, TenantCtx};
use serde_json::json;

use crate::harness::{from_json, Harness};

const FACTS: [&str; 4] = [
    "I moved to Lisbon in March to work at the aquarium.",
    "My brother Tomas teaches physics at the University of Porto.",
    "We adopted a greyhound called Pixel last week.",
    "Next summer I am running the Berlin marathon with Ana.",
];

fn turns(contents: &[&str]) -> AddTurns {
    from_json(json!({"turns": contents.iter().map(|c| json!({"role": "user", "content": c})).collect::<Vec<_>>()}))
}

/// A distiller that always fails (so the fallback runs), and is slow enough
/// (not inline) that appends leave its jobs to the worker.
pub struct Failing;
impl Distiller for Failing {
    fn name(&self) -> &str {
        "failing"
    }
    fn distill(&self, _: &DistillRequest) -> Result<Distillation, DistillError> {
        Err(DistillError("provider down".into()))
    }
}

fn small_windows() -> ServiceOptions {
    ServiceOptions {
        lifecycle: Lifecycle { wm_max_turns: 4, distill_every: 3, ..Lifecycle::default() },
        ..ServiceOptions::default()
    }
}

pub async fn queued_distillation_survives_a_reopen_and_runs_once(h: Harness) {
    let ctx = TenantCtx::dev();
    let job_id;
    {
        // The job is queued by the append; a failing, non-inline distiller
        // leaves it queued for the worker, which never runs here.
        let svc = h.service_with(ServiceOptions { distiller: Arc::new(Failing), ..small_windows() });
        let a = svc.add_turns(&ctx, "s1", turns(&FACTS)).await.unwrap();
        assert_eq!((a.turn_count, a.pending_turns, a.distilled.len()), (4, 1, 0));
        let s = svc.get_session(&ctx, "s1").await.unwrap();
        assert_eq!(s.turns.iter().map(|t| t.index).collect::<Vec<_>>(), [1, 2, 3, 4], "the window is 4 turns");
        job_id = svc.due_distillations(16).await.unwrap()[0].id;
        svc.close().await;
    }
    let svc = h.service_with(small_windows());
    let due = svc.due_distillations(16).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, job_id);
    assert_eq!(due[0].turns.iter().map(|t| t.index).collect::<Vec<_>>(), [1, 2, 3]);
    let ids = svc.run_distill_job(due[0].clone()).await.unwrap();
    assert_eq!(ids.len(), 3, "three turns of facts make three memories");
    // Run again (a second worker, a retry after a crash): nothing more is written.
    assert!(svc.run_distill_job(due[0].clone()).await.unwrap().is_empty());
    assert!(svc.due_distillations(16).await.unwrap().is_empty());
    let page = svc
        .list_memories(&ctx, ListInput { namespace: Some("sessions/s1".into()), ..ListInput::default() })
        .await
        .unwrap();
    assert_eq!(page.memories.len(), 3);
    let m = &page.memories[0];
    assert_eq!(m.source, Source::Session { session_id: "s1".into(), turns: [1, 1] });
    assert_eq!(m.metadata["session_id"], "s1");
    assert_eq!(m.metadata["entities"], json!(["Lisbon"]));
    assert_eq!(m.tags, ["distilled"]);
    let s = svc.get_session(&ctx, "s1").await.unwrap();
    assert!(s.summary.contains("Lisbon"), "the summary grows with each job: {}", s.summary);
    assert_eq!(s.turns.iter().map(|t| t.index).collect::<Vec<_>>(), [1, 2, 3, 4]);
    // The next append prunes turns that are both distilled and out of the window.
    svc.add_turns(&ctx, "s1", turns(&["The aquarium has a new octopus named Oscar."])).await.unwrap();
    let s = svc.get_session(&ctx, "s1").await.unwrap();
    assert_eq!(s.turns.iter().map(|t| t.index).collect::<Vec<_>>(), [2, 3, 4, 5]);
}

pub async fn deleting_a_session_cancels_its_distillation(h: Harness) {
    let svc = h.service_with(ServiceOptions { distiller: Arc::new(Failing), ..small_windows() });
    let ctx = TenantCtx::dev();
    svc.add_turns(&ctx, "s4", turns(&FACTS)).await.unwrap();
    assert_eq!(svc.due_distillations(16).await.unwrap().len(), 1);
    svc.delete_session(&ctx, "s4").await.unwrap();
    assert_eq!(svc.delete_session(&ctx, "s4").await.unwrap_err().code(), ErrorCode::NotFound);
    assert!(svc.due_distillations(16).await.unwrap().is_empty());
    assert_eq!(svc.distill_session(&ctx, "s4").await.unwrap_err().code(), ErrorCode::NotFound);
}

pub async fn a_failing_distiller_falls_back_to_the_extractive_one(h: Harness) {
    let svc = h.service_with(ServiceOptions { distiller: Arc::new(Failing), ..ServiceOptions::default() });
    let ctx = TenantCtx::dev();
    let mut all: Vec<&str> = FACTS.to_vec();
    all.push("Haha, thanks so much!");
    let out = svc.add_turns(&ctx, "s5", turns(&all)).await.unwrap();
    assert!(out.distilled.is_empty(), "a slow (non-inline) distiller leaves the job to the worker");
    let due = svc.due_distillations(16).await.unwrap();
    let ids = svc.run_distill_job(due[0].clone()).await.unwrap();
    assert_eq!(ids.len(), 4, "the facts, not the small talk");
    let s = svc.get_session(&ctx, "s5").await.unwrap();
    assert!(s.summary.contains("Lisbon") || s.summary.contains("Tomas"), "{}", s.summary);
    // A retry is recorded and pushed back by the backoff.
    svc.add_turns(&ctx, "s6", turns(&all)).await.unwrap();
    let job = svc.due_distillations(16).await.unwrap()[0].id;
    svc.retry_distillation(job, "provider down".into(), 1_000).await.unwrap();
    assert!(svc.due_distillations(16).await.unwrap().is_empty(), "not due until the delay passes");
    h.advance(1_000);
    assert_eq!(svc.due_distillations(16).await.unwrap()[0].attempts, 1);
}

pub async fn concurrent_appends_keep_every_writers_order(h: Harness) {
    let life = Lifecycle { wm_max_turns: 1000, distill_every: 1000, ..Lifecycle::default() };
    let svc = h.service_with(ServiceOptions { lifecycle: life, ..ServiceOptions::default() });
    let ctx = TenantCtx::dev();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (svc, ctx) = (svc.clone(), ctx.clone());
        tasks.push(tokio::spawn(async move {
            let mut counts = Vec::new();
            for i in 0..25 {
                counts.push(svc.add_turns(&ctx, "busy", turns(&[&format!("w{w} t{i}")])).await.unwrap().turn_count);
            }
            counts
        }));
    }
    let mut all_counts = Vec::new();
    for t in tasks {
        let counts = t.await.unwrap();
        assert!(counts.windows(2).all(|p| p[0] < p[1]), "a writer's own turns are numbered in its order");
        all_counts.extend(counts);
    }
    all_counts.sort();
    assert_eq!(all_counts, (1..=200).collect::<Vec<i64>>(), "every number once, no gaps");
    let s = svc.get_session(&ctx, "busy").await.unwrap();
    assert_eq!(s.turns.iter().map(|t| t.index).collect::<Vec<_>>(), (1..=200).collect::<Vec<i64>>());
    for w in 0..8 {
        let mine: Vec<&str> =
            s.turns.iter().filter(|t| t.content.starts_with(&format!("w{w} "))).map(|t| t.content.as_str()).collect();
        let want: Vec<String> = (0..25).map(|i| format!("w{w} t{i}")).collect();
        assert_eq!(mine, want);
    }
}

pub async fn namespace_is_fixed_by_the_first_append(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let first: AddTurns =
        from_json(json!({"namespace": ["users", "ana"], "turns": [{"role": "user", "content": "hello"}]}));
    assert_eq!(svc.add_turns(&ctx, "s7", first).await.unwrap().namespace.segments(), ["users", "ana"]);
    let other: AddTurns =
        from_json(json!({"namespace": ["users", "bob"], "turns": [{"role": "user", "content": "hi"}]}));
    let e = svc.add_turns(&ctx, "s7", other).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Conflict);
    assert!(e.public_message().contains("users/ana"), "{e}");
    let same: AddTurns = from_json(json!({"turns": [{"role": "user", "content": "again"}]}));
    assert_eq!(svc.add_turns(&ctx, "s7", same).await.unwrap().turn_count, 2);
    let bad: AddTurns = from_json(json!({"turns": []}));
    assert_eq!(svc.add_turns(&ctx, "s7", bad).await.unwrap_err().code(), ErrorCode::InvalidInput);
    assert_eq!(svc.add_turns(&ctx, "a/b", turns(&["x"])).await.unwrap_err().code(), ErrorCode::InvalidInput);
}

pub async fn turns_keep_the_speakers_time_zone(h: Harness) {
    let svc = h.service_with(ServiceOptions {
        lifecycle: Lifecycle { distill_every: 1, ..Lifecycle::default() },
        ..ServiceOptions::default()
    });
    let ctx = TenantCtx::dev();
    // 21:30 on 8 May in California is already 9 May in UTC: the speaker's
    // "yesterday" is 7 May, and the memory is dated 8 May.
    let req: AddTurns = from_json(json!({"turns": [
        {"role": "user", "content": "I hiked Mount Tamalpais yesterday with my sister Rosa.", "at": "2023-05-08T21:30:00-07:00"}]}));
    let out = svc.add_turns(&ctx, "tz", req).await.unwrap();
    let m = svc.get_memory(&ctx, &out.distilled[0]).await.unwrap();
    assert!(m.text.contains("yesterday (7 May 2023)"), "{}", m.text);
    assert_eq!(m.metadata["date"], "2023-05-08");
    let s = serde_json::to_value(svc.get_session(&ctx, "tz").await.unwrap()).unwrap();
    assert_eq!(s["turns"][0]["at"], "2023-05-08T21:30:00.000-07:00", "the turn keeps its offset: {s}");
    // Impossible dates are refused, naming the field.
    let bad: AddTurns = from_json(json!({"turns": [{"role": "user", "content": "hi", "at": "2023-02-31"}]}));
    let e = svc.add_turns(&ctx, "tz", bad).await.unwrap_err();
    assert!(e.public_message().contains("turns[0].at"), "{e}");
}

pub async fn a_session_id_used_again_keeps_the_earlier_sessions_work(h: Harness) {
    let svc = h.service_with(ServiceOptions { distiller: Arc::new(Failing), ..small_windows() });
    let ctx = TenantCtx::dev();
    // The first session ends idle with two undistilled turns: their job is queued.
    svc.add_turns(&ctx, "s8", turns(&FACTS[..2])).await.unwrap();
    h.advance(86_400_000);
    // Deleting an expired session that the sweep has not reached ends it as
    // expiry does: its turns are kept for distillation.
    assert_eq!(svc.delete_session(&ctx, "s8").await.unwrap_err().code(), ErrorCode::NotFound);
    let first = svc.due_distillations(16).await.unwrap();
    assert_eq!(first.len(), 1);
    // A new session under the same id; deleting it cancels its own jobs only.
    svc.add_turns(&ctx, "s8", turns(&FACTS)).await.unwrap();
    assert_eq!(svc.due_distillations(16).await.unwrap().len(), 2);
    svc.delete_session(&ctx, "s8").await.unwrap();
    let left = svc.due_distillations(16).await.unwrap();
    assert_eq!(left.iter().map(|j| j.id).collect::<Vec<_>>(), [first[0].id], "the first session's job is kept");
    // A job queued by an earlier session never writes its summary over a
    // later one's.
    svc.add_turns(&ctx, "s8", turns(&["Fresh start: I now work as a nurse in Coimbra."])).await.unwrap();
    svc.close().await;
    drop(svc);
    let plain = h.service_with(small_windows());
    plain.run_distill_job(left[0].clone()).await.unwrap();
    assert_eq!(plain.get_session(&ctx, "s8").await.unwrap().summary, "", "the new session's summary is its own");
    // The job is gone: running a stale copy again writes nothing.
    assert!(plain.run_distill_job(left[0].clone()).await.unwrap().is_empty());
}

/// Queued work is taken by one worker at a time, on any node: a taken
/// distillation or embedding is leased to its taker, and comes back to the
/// next taker only when the lease ends (its taker died); a job finished
/// twice writes once.
pub async fn queued_work_is_leased_to_one_worker_at_a_time(h: Harness) {
    use engram_core::rules::embedding::EMBED_LEASE_MS;
    use engram_core::rules::sessions::DISTILL_LEASE_MS;
    let svc = h.service_with(ServiceOptions { distiller: Arc::new(Failing), ..small_windows() });
    let ctx = TenantCtx::dev();
    // The embedding queue: memories written without vectors wait for one.
    let req = from_json(json!({"memories": [
        {"namespace": ["q"], "text": "Mira keeps bees"}, {"namespace": ["q"], "text": "Omar restores clocks"}
    ]}));
    svc.create_memories(&ctx, req).await.unwrap();
    let first = svc.claim_embeddings(10, vec![]).await.unwrap();
    assert_eq!(first.len(), 2);
    assert!(svc.claim_embeddings(10, vec![]).await.unwrap().is_empty(), "taken");
    assert!(svc.pending_embeddings(10, vec![]).await.unwrap().is_empty(), "nothing waits for a taker");
    h.advance(EMBED_LEASE_MS);
    let second = svc.claim_embeddings(10, vec![]).await.unwrap();
    assert_eq!(second.iter().map(|p| p.seq).collect::<Vec<_>>(), first.iter().map(|p| p.seq).collect::<Vec<_>>());
    // Distillation jobs.
    svc.add_turns(&ctx, "s7", turns(&FACTS)).await.unwrap();
    let taken = svc.claim_distillations(16).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert!(svc.claim_distillations(16).await.unwrap().is_empty(), "another worker finds it taken");
    assert!(svc.due_distillations(16).await.unwrap().is_empty());
    h.advance(DISTILL_LEASE_MS - 1);
    assert!(svc.claim_distillations(16).await.unwrap().is_empty(), "still leased");
    h.advance(1);
    let again = svc.claim_distillations(16).await.unwrap();
    assert_eq!(again.iter().map(|j| j.id).collect::<Vec<_>>(), [taken[0].id], "its taker died: the next takes it");
    assert_eq!(again[0].attempts, 0, "a lease is not a failed attempt");
    assert_eq!(svc.run_distill_job(again[0].clone()).await.unwrap().len(), 3);
    assert!(svc.run_distill_job(taken[0].clone()).await.unwrap().is_empty(), "the late first taker writes nothing");
}

/// A distillation its queuer runs at once (an inline distiller, or `POST
/// …/distill`) is born leased to it: a worker polling meanwhile does not take
/// it first, which would leave the caller unable to say what it distilled.
pub async fn an_inline_distillation_is_its_queuers_until_it_runs(h: Harness) {
    use engram_core::audit::Actor;
    use engram_core::model::session::NewTurn;
    use engram_core::rules::sessions::{append, claim_job, claim_jobs, AppendTurns, DISTILL_LEASE_MS};
    let store = h.store();
    let now = h.now();
    let turn = |c: &str| NewTurn::validate("user".into(), c.into(), None, Default::default(), "turns[0]").unwrap();
    let appended = store
        .write(&Actor::job("test"), move |tx| {
            append(
                tx,
                &AppendTurns {
                    tenant: "default".into(),
                    session_id: "s-inline".into(),
                    namespace: None,
                    turns: vec![turn("Mira keeps bees in Lisbon."), turn("Omar restores clocks.")],
                    now,
                    ttl_ms: 86_400_000,
                    window: 10,
                    distill_every: 2,
                    grant: None,
                    inline: true,
                },
            )
        })
        .await
        .unwrap();
    let queued = appended.queued_job.expect("a stretch of two turns is queued");
    assert_eq!(queued.leased_until, Some(now + DISTILL_LEASE_MS));
    h.advance(1);
    let now = h.now();
    let worker = store.write(&Actor::job("test"), move |tx| claim_jobs(tx, now, 16)).await.unwrap();
    assert!(worker.is_empty(), "a worker polling now finds it leased");
    let mine = store.write(&Actor::job("test"), move |tx| claim_job(tx, queued.id, queued.leased_until, now)).await;
    assert_eq!(mine.unwrap().map(|j| j.id), Some(queued.id), "its queuer takes it");
    let again = store.write(&Actor::job("test"), move |tx| claim_job(tx, queued.id, queued.leased_until, now)).await;
    assert!(again.unwrap().is_none(), "taken once: the claim renewed the lease past the one it was born with");
}
