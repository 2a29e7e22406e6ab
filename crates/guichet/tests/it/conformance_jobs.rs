//! Job queue and runner stories, run on every backend.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use guichet_jobs::{JobContext, JobHandler, Outcome, PurgeJobs, Registry, Runner, RunnerConfig};
use guichet_store::NewJob;
use guichet_testkit::TestDb;
use time::{Duration, OffsetDateTime};

fn job(kind: &str, at: OffsetDateTime) -> NewJob {
    NewJob::now(kind, serde_json::json!({}), at)
}

#[tokio::test]
async fn due_jobs_are_claimed_oldest_first_and_future_ones_wait() {
    for db in TestDb::all().await {
        let s = &db.store;
        let now = OffsetDateTime::now_utc();
        s.enqueue_job(&job("later", now + Duration::hours(1))).await.unwrap();
        s.enqueue_job(&job("second", now - Duration::seconds(5))).await.unwrap();
        s.enqueue_job(&job("first", now - Duration::seconds(10))).await.unwrap();
        let lease = Duration::minutes(5);
        let first = s.claim_job(now, lease).await.unwrap().unwrap();
        assert_eq!(first.kind, "first", "{:?}", db.backend);
        let second = s.claim_job(now, lease).await.unwrap().unwrap();
        assert_eq!(second.kind, "second");
        s.complete_job(first.id, now).await.unwrap();
        s.complete_job(second.id, now).await.unwrap();
        assert!(s.claim_job(now, lease).await.unwrap().is_none(), "{:?}", db.backend);
        assert_eq!(
            s.claim_job(now + Duration::hours(2), lease).await.unwrap().unwrap().kind,
            "later"
        );
        db.finish().await;
    }
}

/// A busy runner marks a job done with its next claim; the job just done is never the one
/// claimed, even when its lease has expired meanwhile (a handler slower than its lease).
#[tokio::test]
async fn a_job_is_marked_done_with_the_next_claim_and_never_claimed_again_by_it() {
    for db in TestDb::all().await {
        let s = &db.store;
        let now = OffsetDateTime::now_utc();
        s.enqueue_job(&job("first", now - Duration::seconds(10))).await.unwrap();
        s.enqueue_job(&job("second", now - Duration::seconds(5))).await.unwrap();
        let lease = Duration::seconds(30);
        let first = s.complete_and_claim(None, now, lease).await.unwrap().unwrap();
        assert_eq!(first.kind, "first", "{:?}", db.backend);
        // Claimed after the first's lease expired: the first is done, not claimed again.
        let later = now + Duration::minutes(1);
        let second =
            s.complete_and_claim(Some((first.id, later)), later, lease).await.unwrap().unwrap();
        assert_eq!(second.kind, "second", "{:?}", db.backend);
        let counts = s.job_counts().await.unwrap();
        assert_eq!((counts.running, counts.done), (1, 1), "{:?}", db.backend);
        assert!(
            s.complete_and_claim(Some((second.id, later)), later, lease).await.unwrap().is_none(),
            "{:?}",
            db.backend
        );
        let counts = s.job_counts().await.unwrap();
        assert_eq!((counts.pending, counts.running, counts.done), (0, 0, 2), "{:?}", db.backend);
        db.finish().await;
    }
}

/// The runner marks its last job done when it stops, though that job's mark waits for a
/// next claim while it runs.
#[tokio::test]
async fn a_stopping_runner_marks_its_last_job_done() {
    for db in TestDb::all().await {
        let s = &db.store;
        let now = OffsetDateTime::now_utc();
        for _ in 0..3 {
            s.enqueue_job(&job("test.flaky", now)).await.unwrap();
        }
        let calls = Arc::new(AtomicU32::new(0));
        let registry =
            Registry::new().with(Flaky { runs: calls.clone(), failures: 0, panic: false });
        let runner = Runner::new(s.clone(), registry, RunnerConfig::default());
        // Ready as soon as the third job has run: the runner stops right after it, before
        // another claim could mark it done.
        let stop = {
            let calls = calls.clone();
            std::future::poll_fn(move |cx| {
                if calls.load(Ordering::SeqCst) >= 3 {
                    return std::task::Poll::Ready(());
                }
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            })
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), runner.run_until(stop))
            .await
            .unwrap();
        let counts = s.job_counts().await.unwrap();
        assert_eq!((counts.pending, counts.running, counts.done), (0, 0, 3), "{:?}", db.backend);
        db.finish().await;
    }
}

#[tokio::test]
async fn a_dedup_key_keeps_one_live_job() {
    for db in TestDb::all().await {
        let s = &db.store;
        let now = OffsetDateTime::now_utc();
        let first = s.enqueue_job(&job("report", now).dedup("report:2026-11")).await.unwrap();
        assert!(first.is_some());
        assert!(
            s.enqueue_job(&job("report", now).dedup("report:2026-11")).await.unwrap().is_none(),
            "{:?}",
            db.backend
        );
        let claimed = s.claim_job(now, Duration::minutes(1)).await.unwrap().unwrap();
        // Still live while running.
        assert!(
            s.enqueue_job(&job("report", now).dedup("report:2026-11")).await.unwrap().is_none()
        );
        s.complete_job(claimed.id, now).await.unwrap();
        // Once done, the key is free again.
        assert!(
            s.enqueue_job(&job("report", now).dedup("report:2026-11")).await.unwrap().is_some(),
            "{:?}",
            db.backend
        );
        db.finish().await;
    }
}

#[tokio::test]
async fn an_expired_lease_makes_a_job_claimable_again() {
    for db in TestDb::all().await {
        let s = &db.store;
        let now = OffsetDateTime::now_utc();
        s.enqueue_job(&job("slow", now)).await.unwrap();
        let first = s.claim_job(now, Duration::seconds(30)).await.unwrap().unwrap();
        assert!(
            s.claim_job(now + Duration::seconds(10), Duration::seconds(30))
                .await
                .unwrap()
                .is_none()
        );
        let again =
            s.claim_job(now + Duration::seconds(31), Duration::seconds(30)).await.unwrap().unwrap();
        assert_eq!(again.id, first.id, "{:?}", db.backend);
        assert_eq!(again.attempts, 2);
        db.finish().await;
    }
}

#[tokio::test]
async fn failures_retry_later_then_fail_for_good_and_done_jobs_are_purged() {
    for db in TestDb::all().await {
        let s = &db.store;
        let now = OffsetDateTime::now_utc();
        s.enqueue_job(&job("flaky", now)).await.unwrap();
        let j = s.claim_job(now, Duration::minutes(1)).await.unwrap().unwrap();
        s.fail_job(j.id, "smtp down", Some(now + Duration::minutes(10)), now).await.unwrap();
        assert_eq!(s.job_counts().await.unwrap().pending, 1);
        assert!(
            s.claim_job(now + Duration::minutes(5), Duration::minutes(1)).await.unwrap().is_none(),
            "{:?}",
            db.backend
        );
        let j =
            s.claim_job(now + Duration::minutes(11), Duration::minutes(1)).await.unwrap().unwrap();
        s.fail_job(j.id, "smtp still down", None, now).await.unwrap();
        let counts = s.job_counts().await.unwrap();
        assert_eq!((counts.pending, counts.running, counts.failed), (0, 0, 1), "{:?}", db.backend);

        s.enqueue_job(&job("quick", now)).await.unwrap();
        let j = s.claim_job(now, Duration::minutes(1)).await.unwrap().unwrap();
        s.complete_job(j.id, now - Duration::days(8)).await.unwrap();
        assert_eq!(
            s.purge_done_jobs(now - Duration::days(7)).await.unwrap(),
            1,
            "{:?}",
            db.backend
        );
        assert_eq!(
            s.job_counts().await.unwrap().failed,
            1,
            "failed jobs are kept for the operator"
        );
        db.finish().await;
    }
}

#[tokio::test]
async fn concurrent_claims_never_take_the_same_job_twice() {
    for db in TestDb::all().await {
        let now = OffsetDateTime::now_utc();
        for i in 0..40 {
            db.store.enqueue_job(&job(&format!("j{i}"), now)).await.unwrap();
        }
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = db.store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(j) = store.claim_job(now, Duration::minutes(1)).await.unwrap() {
                    mine.push(j.id);
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let distinct: HashSet<_> = all.iter().collect();
        assert_eq!((all.len(), distinct.len()), (40, 40), "{:?}", db.backend);
        db.finish().await;
    }
}

/// Fails its first `failures` runs, then succeeds; panics instead when `panic` is set.
struct Flaky {
    runs: Arc<AtomicU32>,
    failures: u32,
    panic: bool,
}

#[async_trait]
impl JobHandler for Flaky {
    fn kind(&self) -> &'static str {
        "test.flaky"
    }
    async fn run(&self, _: serde_json::Value, _: JobContext) -> anyhow::Result<()> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        if n < self.failures {
            if self.panic {
                panic!("handler bug");
            }
            anyhow::bail!("transient failure {n}");
        }
        Ok(())
    }
}

fn immediate_retries() -> RunnerConfig {
    RunnerConfig { backoff_base: Duration::ZERO, ..RunnerConfig::default() }
}

#[tokio::test]
async fn the_runner_retries_errors_and_panics_until_success() {
    for db in TestDb::all().await {
        for panic in [false, true] {
            let runs = Arc::new(AtomicU32::new(0));
            let registry = Registry::new().with(Flaky { runs: runs.clone(), failures: 2, panic });
            let runner = Runner::new(db.store.clone(), registry, immediate_retries());
            db.store.enqueue_job(&job("test.flaky", OffsetDateTime::now_utc())).await.unwrap();
            assert_eq!(runner.run_once().await.unwrap(), Outcome::Retry, "{:?}", db.backend);
            assert_eq!(runner.run_once().await.unwrap(), Outcome::Retry);
            assert_eq!(runner.run_once().await.unwrap(), Outcome::Done);
            assert_eq!(runner.run_once().await.unwrap(), Outcome::Empty);
            assert_eq!(runs.load(Ordering::SeqCst), 3);
            let stats = runner.stats().snapshot();
            assert!(stats.contains(&("test.flaky".to_owned(), "retry", 2)), "{stats:?}");
        }
        db.finish().await;
    }
}

#[tokio::test]
async fn the_runner_gives_up_after_max_attempts() {
    for db in TestDb::all().await {
        let runs = Arc::new(AtomicU32::new(0));
        let registry =
            Registry::new().with(Flaky { runs: runs.clone(), failures: 99, panic: false });
        let runner = Runner::new(db.store.clone(), registry, immediate_retries());
        let mut j = job("test.flaky", OffsetDateTime::now_utc());
        j.max_attempts = 3;
        db.store.enqueue_job(&j).await.unwrap();
        assert_eq!(runner.run_pending().await.unwrap(), 3);
        assert_eq!(db.store.job_counts().await.unwrap().failed, 1, "{:?}", db.backend);
        db.finish().await;
    }
}

#[tokio::test]
async fn periodic_jobs_keep_exactly_one_next_occurrence() {
    for db in TestDb::all().await {
        let registry =
            Registry::new().every(Duration::hours(1), PurgeJobs { retention: Duration::days(7) });
        let runner = Runner::new(db.store.clone(), registry.clone(), RunnerConfig::default());
        let other_worker = Runner::new(db.store.clone(), registry, RunnerConfig::default());
        runner.schedule_periodic().await.unwrap();
        other_worker.schedule_periodic().await.unwrap();
        assert_eq!(db.store.job_counts().await.unwrap().pending, 1, "{:?}", db.backend);
        assert_eq!(runner.run_once().await.unwrap(), Outcome::Done);
        // The next occurrence is an hour away: pending, not due.
        let counts = db.store.job_counts().await.unwrap();
        assert_eq!((counts.pending, counts.done), (1, 1), "{:?}", db.backend);
        assert_eq!(runner.run_once().await.unwrap(), Outcome::Empty);
        db.finish().await;
    }
}

#[test]
fn backoff_doubles_and_is_capped() {
    let config = RunnerConfig {
        backoff_base: Duration::seconds(10),
        backoff_max: Duration::minutes(5),
        ..RunnerConfig::default()
    };
    // A runner needs a store only to run jobs, not to compute delays; build one on SQLite.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = TestDb::sqlite().await;
        let runner = Runner::new(db.store.clone(), Registry::new(), config);
        assert_eq!(runner.backoff(1), Duration::seconds(10));
        assert_eq!(runner.backoff(2), Duration::seconds(20));
        assert_eq!(runner.backoff(4), Duration::seconds(80));
        assert_eq!(runner.backoff(10), Duration::minutes(5));
        db.finish().await;
    });
}

mod email {
    use std::sync::Arc;

    use guichet_channels::{FileMailer, SmtpMailer};
    use guichet_domain::EmailId;
    use guichet_jobs::{Outcome, Registry, Runner, RunnerConfig, SendEmail};
    use guichet_store::{NewEmail, TokenPurpose};
    use guichet_testkit::TestDb;
    use guichet_testkit::fixtures::{citizen_account, token};
    use time::{Duration, OffsetDateTime};

    fn mail() -> NewEmail {
        let id = EmailId::new();
        NewEmail {
            id,
            to: "camille@exemple.test".into(),
            subject: "Confirmez votre adresse".into(),
            text: "Bonjour".into(),
            html: "<p>Bonjour</p>".into(),
            message_id: format!("{id}@guichet.test"),
            request_id: None,
            reply_to: None,
            references: Vec::new(),
            automatic: true,
        }
    }

    #[tokio::test]
    async fn outbox_emails_are_written_once_by_the_file_transport() {
        for db in TestDb::all().await {
            let dir = std::env::temp_dir().join(format!("guichet-mails-{}", EmailId::new()));
            let mailer = Arc::new(FileMailer::new(&dir).unwrap());
            let registry = Registry::new().with(SendEmail {
                mailer: mailer.clone(),
                from: "Guichet <ne-pas-repondre@guichet.test>".into(),
            });
            let runner = Runner::new(db.store.clone(), registry, RunnerConfig::default());
            let m = mail();
            let job = m.send_job(OffsetDateTime::now_utc());
            db.store
                .create_citizen(
                    &citizen_account("camille@exemple.test", None),
                    &token("t", TokenPurpose::VerifyEmail),
                    std::slice::from_ref(&m),
                    std::slice::from_ref(&job),
                )
                .await
                .unwrap();
            assert_eq!(runner.run_pending().await.unwrap(), 1);
            let path = mailer.path_of(&m.message_id);
            assert!(
                std::fs::read_to_string(&path)
                    .unwrap()
                    .contains("Subject: Confirmez votre adresse")
            );
            assert_eq!(db.store.get_email(m.id).await.unwrap().status, "sent", "{:?}", db.backend);
            // The job runs again (a lease expired, a replay): the e-mail is not sent twice.
            std::fs::remove_file(&path).unwrap();
            db.store.enqueue_job(&job).await.unwrap();
            assert_eq!(runner.run_once().await.unwrap(), Outcome::Done);
            assert!(!path.exists(), "{:?}: sent twice", db.backend);
            let _ = std::fs::remove_dir_all(dir);
            db.finish().await;
        }
    }

    #[tokio::test]
    async fn an_unreachable_smtp_relay_is_recorded_and_retried() {
        for db in TestDb::all().await {
            // Nothing listens on port 1 of the loopback.
            let mailer = Arc::new(SmtpMailer::from_url("smtp://127.0.0.1:1").unwrap());
            let registry = Registry::new()
                .with(SendEmail { mailer, from: "Guichet <ne-pas-repondre@guichet.test>".into() });
            let runner = Runner::new(
                db.store.clone(),
                registry,
                RunnerConfig { backoff_base: Duration::ZERO, ..RunnerConfig::default() },
            );
            let m = mail();
            let job = m.send_job(OffsetDateTime::now_utc());
            db.store
                .create_citizen(
                    &citizen_account("camille@exemple.test", None),
                    &token("t", TokenPurpose::VerifyEmail),
                    std::slice::from_ref(&m),
                    &[job],
                )
                .await
                .unwrap();
            assert_eq!(runner.run_once().await.unwrap(), Outcome::Retry, "{:?}", db.backend);
            let stored = db.store.get_email(m.id).await.unwrap();
            assert_eq!(stored.status, "pending");
            assert!(
                stored.last_error.is_some_and(|e| e.contains("delivery failed")),
                "{:?}",
                db.backend
            );
            db.finish().await;
        }
    }
}
