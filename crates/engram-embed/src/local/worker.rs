//! The one thread that runs the model, and the order it serves callers in.
//!
//! - Interactive calls (a query to search with, a write that waits for its
//!   vectors) go first, and every interactive call waiting when the model
//!   frees up is embedded in the same run: concurrent queries batch together.
//! - Backlog calls (the embedding queue) run in slices of [`BACKLOG_SLICE`]
//!   texts, and waiting interactive calls are served between slices, so a
//!   query waits for at most one slice of the backlog.
//! - The model's threads (this one and ONNX Runtime's pool) run under Linux's
//!   `SCHED_IDLE` policy ([`lower_priority`]): on an idle machine they take
//!   every core, and a request thread that wakes up preempts them at once
//!   (the scheduler's rule for idle-policy tasks) — serving keeps its latency,
//!   and the backlog is embedded with the CPU that serving leaves.

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Texts of the backlog per model run while interactive calls may be waiting.
pub const BACKLOG_SLICE: usize = 16;
/// Texts of interactive calls combined into one run at most: the size of
/// one call from the service (`EMBED_BATCH`), so a combined run is never
/// larger than a single call's (attention scores grow with texts × tokens²:
/// 32 texts of 256 tokens take ~100 MB for one run).
pub const INTERACTIVE_BATCH: usize = 32;

type Reply = SyncSender<Result<Vec<Vec<f32>>, String>>;

struct Job {
    texts: Vec<String>,
    reply: Reply,
}

#[derive(Default)]
struct Queues {
    interactive: VecDeque<Job>,
    backlog: VecDeque<Job>,
    closed: bool,
}

struct Shared {
    queues: Mutex<Queues>,
    wake: Condvar,
}

/// Runs `forward` (texts → vectors) on its own thread for every caller.
pub struct Worker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Moves the calling thread to the `SCHED_IDLE` scheduling policy (Linux,
/// `sched(7)`: it runs when no normal thread wants the CPU, with a minimal
/// share otherwise, and is preempted as soon as one wakes). Best effort: where
/// it cannot, the thread keeps its priority. No privilege is needed to lower
/// one's own policy.
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: one syscall on the calling thread (pid 0 = the caller) with a
    // parameter struct that lives across the call.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

impl Worker {
    /// Starts the thread; `forward` runs only there.
    pub fn start<F>(forward: F) -> std::io::Result<Self>
    where
        F: FnMut(&[&str]) -> Result<Vec<Vec<f32>>, String> + Send + 'static,
    {
        let shared = Arc::new(Shared { queues: Mutex::new(Queues::default()), wake: Condvar::new() });
        let s = shared.clone();
        let thread = std::thread::Builder::new().name("engram-model".into()).spawn(move || {
            // However the loop ends (closed, or a panic), callers waiting or
            // arriving later get an error instead of waiting forever.
            let _close = CloseOnExit(&s);
            lower_priority();
            run(&s, forward);
        })?;
        Ok(Worker { shared, thread: Some(thread) })
    }

    /// Embeds `texts` (in order), interactive calls ahead of the backlog.
    pub fn embed(&self, texts: &[&str], backlog: bool) -> Result<Vec<Vec<f32>>, String> {
        let (reply, answer) = sync_channel(1);
        let job = Job { texts: texts.iter().map(|t| (*t).to_owned()).collect(), reply };
        {
            let mut q = self.shared.queues.lock().unwrap_or_else(|p| p.into_inner());
            if q.closed {
                return Err("the model has stopped".into());
            }
            if backlog {
                q.backlog.push_back(job);
            } else {
                q.interactive.push_back(job);
            }
        }
        self.shared.wake.notify_one();
        answer.recv().map_err(|_| "the model stopped before answering".to_owned())?
    }
}

/// Marks the queues closed and drops every waiting job (their callers get
/// "the model stopped") when the model's thread ends.
struct CloseOnExit<'a>(&'a Shared);

impl Drop for CloseOnExit<'_> {
    fn drop(&mut self) {
        let mut q = self.0.queues.lock().unwrap_or_else(|p| p.into_inner());
        q.closed = true;
        q.interactive.clear();
        q.backlog.clear();
    }
}

/// One model run, checked: a panic or a wrong number of vectors is an error
/// for its callers, never a crash of the model's thread or a vector handed to
/// the wrong text.
fn guarded<F>(forward: &mut F, texts: &[&str]) -> Result<Vec<Vec<f32>>, String>
where
    F: FnMut(&[&str]) -> Result<Vec<Vec<f32>>, String>,
{
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| forward(texts)))
        .unwrap_or_else(|_| Err("the model panicked".to_owned()))?;
    if out.len() != texts.len() {
        return Err(format!("the model returned {} vectors for {} texts", out.len(), texts.len()));
    }
    Ok(out)
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shared.queues.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Takes the interactive jobs waiting now (at least one, up to
/// [`INTERACTIVE_BATCH`] texts in all).
fn take_interactive(q: &mut Queues) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut n = 0;
    while let Some(job) = q.interactive.front() {
        if !jobs.is_empty() && n + job.texts.len() > INTERACTIVE_BATCH {
            break;
        }
        n += job.texts.len();
        jobs.extend(q.interactive.pop_front());
    }
    jobs
}

/// Embeds the texts of several jobs in one run and answers each.
fn serve_together<F>(jobs: Vec<Job>, forward: &mut F)
where
    F: FnMut(&[&str]) -> Result<Vec<Vec<f32>>, String>,
{
    let texts: Vec<&str> = jobs.iter().flat_map(|j| j.texts.iter().map(String::as_str)).collect();
    match guarded(forward, &texts) {
        Ok(mut vectors) => {
            for job in jobs.into_iter().rev() {
                let mine = vectors.split_off(vectors.len() - job.texts.len());
                let _ = job.reply.send(Ok(mine));
            }
        }
        // One caller's bad input must not fail the others it ran with: each
        // is tried again alone.
        Err(_) if jobs.len() > 1 => {
            for job in jobs {
                let texts: Vec<&str> = job.texts.iter().map(String::as_str).collect();
                let _ = job.reply.send(guarded(forward, &texts));
            }
        }
        Err(e) => {
            for job in jobs {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}

fn run<F>(shared: &Shared, mut forward: F)
where
    F: FnMut(&[&str]) -> Result<Vec<Vec<f32>>, String>,
{
    loop {
        let backlog_job = {
            let mut q = shared.queues.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if !q.interactive.is_empty() {
                    break None;
                }
                if let Some(job) = q.backlog.pop_front() {
                    break Some(job);
                }
                if q.closed {
                    return;
                }
                q = shared.wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        let Some(job) = backlog_job else {
            let jobs = take_interactive(&mut shared.queues.lock().unwrap_or_else(|p| p.into_inner()));
            serve_together(jobs, &mut forward);
            continue;
        };
        let mut out = Vec::with_capacity(job.texts.len());
        let mut failed = None;
        for slice in job.texts.chunks(BACKLOG_SLICE) {
            let refs: Vec<&str> = slice.iter().map(String::as_str).collect();
            match guarded(&mut forward, &refs) {
                Ok(v) => out.extend(v),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
            loop {
                let jobs = take_interactive(&mut shared.queues.lock().unwrap_or_else(|p| p.into_inner()));
                if jobs.is_empty() {
                    break;
                }
                serve_together(jobs, &mut forward);
            }
        }
        let _ = job.reply.send(failed.map_or(Ok(out), Err));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;

    use super::*;

    /// A stand-in model: each text's vector is `[len]`; every run's texts are
    /// recorded, and the first run waits for a go-ahead.
    fn worker() -> (Arc<Worker>, std::sync::mpsc::Receiver<Vec<String>>, SyncSender<()>) {
        let (runs_tx, runs) = channel();
        let (go, gate) = sync_channel::<()>(0);
        let mut first = true;
        let w = Worker::start(move |texts: &[&str]| {
            runs_tx.send(texts.iter().map(|t| (*t).to_owned()).collect()).unwrap();
            if std::mem::take(&mut first) {
                gate.recv().unwrap();
            }
            Ok(texts.iter().map(|t| vec![t.len() as f32]).collect())
        })
        .unwrap();
        (Arc::new(w), runs, go)
    }

    fn waiting(w: &Worker) -> usize {
        w.shared.queues.lock().unwrap().interactive.len()
    }

    #[test]
    fn queries_wait_for_one_slice_of_the_backlog_and_run_together() {
        let (w, runs, go) = worker();
        let backlog: Vec<String> = (0..40).map(|i| "b".repeat(i + 1)).collect();
        let bw = w.clone();
        let b = std::thread::spawn(move || {
            let refs: Vec<&str> = backlog.iter().map(String::as_str).collect();
            bw.embed(&refs, true).unwrap()
        });
        assert_eq!(runs.recv().unwrap().len(), BACKLOG_SLICE, "the backlog runs in slices");
        let queries: Vec<_> = ["q", "qq", "qqq"]
            .into_iter()
            .map(|q| {
                let qw = w.clone();
                std::thread::spawn(move || qw.embed(&[q], false).unwrap())
            })
            .collect();
        while waiting(&w) < 3 {
            std::thread::yield_now();
        }
        go.send(()).unwrap();
        let mut together = runs.recv().unwrap();
        together.sort();
        assert_eq!(together, ["q", "qq", "qqq"], "the waiting queries ran next, in one run");
        for (q, want) in queries.into_iter().zip([1.0, 2.0, 3.0]) {
            assert_eq!(q.join().unwrap(), vec![vec![want]], "each query gets its own vector");
        }
        let vectors = b.join().unwrap();
        assert_eq!(vectors.len(), 40);
        assert!(vectors.iter().enumerate().all(|(i, v)| v == &vec![(i + 1) as f32]), "backlog vectors in order");
        assert_eq!(runs.try_iter().map(|r| r.len()).collect::<Vec<_>>(), [16, 8], "the rest of the backlog");
    }

    #[test]
    fn a_panicking_or_miscounting_model_is_an_error_not_a_hang() {
        let w = Worker::start(|texts: &[&str]| match texts[0] {
            "panic" => panic!("inside the model"),
            "short" => Ok(Vec::new()),
            _ => Ok(texts.iter().map(|_| vec![1.0]).collect()),
        })
        .unwrap();
        assert_eq!(w.embed(&["panic"], false).unwrap_err(), "the model panicked");
        assert_eq!(w.embed(&["short", "x"], true).unwrap_err(), "the model returned 0 vectors for 2 texts");
        assert_eq!(w.embed(&["ok"], false).unwrap(), vec![vec![1.0]], "the thread lives on after both");
    }

    #[test]
    fn callers_are_answered_when_the_models_thread_is_gone() {
        let w = Worker::start(|_: &[&str]| Ok(Vec::new())).unwrap();
        // The thread ends (as after a panic outside a run): the guard closes
        // the queues, so a caller gets an error rather than waiting forever.
        w.shared.queues.lock().unwrap().closed = true;
        w.shared.wake.notify_one();
        while !w.thread.as_ref().unwrap().is_finished() {
            std::thread::yield_now();
        }
        assert!(w.embed(&["a"], false).unwrap_err().contains("stopped"));
    }

    #[test]
    fn a_caller_whose_text_fails_does_not_fail_the_others_in_its_run() {
        let (runs_tx, runs) = channel();
        let (go, gate) = sync_channel::<()>(0);
        let mut first = true;
        let w = Arc::new(
            Worker::start(move |texts: &[&str]| {
                runs_tx.send(texts.len()).unwrap();
                if std::mem::take(&mut first) {
                    gate.recv().unwrap();
                }
                if texts.contains(&"bad") {
                    return Err("cannot embed".to_owned());
                }
                Ok(texts.iter().map(|_| vec![1.0]).collect())
            })
            .unwrap(),
        );
        let hold = {
            let w = w.clone();
            std::thread::spawn(move || w.embed(&["first"], false))
        };
        assert_eq!(runs.recv().unwrap(), 1);
        let callers: Vec<_> = ["bad", "good"]
            .into_iter()
            .map(|t| {
                let w = w.clone();
                std::thread::spawn(move || w.embed(&[t], false))
            })
            .collect();
        while waiting(&w) < 2 {
            std::thread::yield_now();
        }
        go.send(()).unwrap();
        assert!(hold.join().unwrap().is_ok());
        let answers: Vec<_> = callers.into_iter().map(|c| c.join().unwrap()).collect();
        assert_eq!(answers[0].as_ref().unwrap_err(), "cannot embed");
        assert_eq!(answers[1].as_ref().unwrap(), &vec![vec![1.0]]);
        assert_eq!(runs.try_iter().collect::<Vec<_>>(), [2, 1, 1], "together, then each alone");
    }

    #[test]
    fn a_failed_run_answers_every_caller_and_a_stopped_worker_refuses() {
        let w = Worker::start(|_: &[&str]| Err("boom".to_owned())).unwrap();
        assert_eq!(w.embed(&["a"], false).unwrap_err(), "boom");
        assert_eq!(w.embed(&["a", "b"], true).unwrap_err(), "boom");
        w.shared.queues.lock().unwrap().closed = true;
        assert!(w.embed(&["a"], false).unwrap_err().contains("stopped"));
    }
}
