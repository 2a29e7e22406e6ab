//! The timing of a request as dashboards count it, defined once: the store keeps these figures
//! on each request as its events happen (so dashboards aggregate columns, not event logs), and
//! `guichet stats verify` replays the events through the same functions to prove that the
//! columns never drifted from the events.
//!
//! Definitions (also in docs/dashboards.md):
//! - *acknowledged at*: the first acknowledgement of receipt of the request itself (ARE, or the
//!   paper AR), not of a later message;
//! - *first response at*: the first thing an agent made visible to the citizen (a message or a
//!   status change);
//! - *waiting*: time spent in a waiting status (the citizen has to act: missing items), which
//!   the processing time leaves out, as the legal clock does;
//! - *closed at*: when the request last entered a closed status (reopening clears it and
//!   counts a reopening);
//! - *processing time*: from submission to that last closing, minus the waiting time.

use time::OffsetDateTime;

use crate::workflow::Phase;

/// A request's timing figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Submission (receipt).
    pub submitted_at: OffsetDateTime,
    /// Current phase.
    pub phase: Phase,
    /// First acknowledgement of receipt of the request.
    pub acknowledged_at: Option<OffsetDateTime>,
    /// First agent action visible to the citizen.
    pub first_response_at: Option<OffsetDateTime>,
    /// Last entry into a closed status, while closed.
    pub closed_at: Option<OffsetDateTime>,
    /// Completed waiting periods, in microseconds.
    pub waiting_us: i64,
    /// Start of the current waiting period.
    pub waiting_since: Option<OffsetDateTime>,
    /// Times the request was reopened after being closed.
    pub reopened: i32,
    /// Processing time at the last closing, in microseconds (waiting left out).
    pub processing_us: Option<i64>,
}

fn us(d: time::Duration) -> i64 {
    i64::try_from(d.whole_microseconds()).unwrap_or(i64::MAX)
}

impl Timing {
    /// A request just submitted in `phase`.
    pub fn new(submitted_at: OffsetDateTime, phase: Phase) -> Self {
        let mut t = Self {
            submitted_at,
            phase: Phase::Open,
            acknowledged_at: None,
            first_response_at: None,
            closed_at: None,
            waiting_us: 0,
            waiting_since: None,
            reopened: 0,
            processing_us: None,
        };
        t.transition(phase, submitted_at);
        t
    }

    /// The request moves to a status of phase `to` at `at`.
    pub fn transition(&mut self, to: Phase, at: OffsetDateTime) {
        let from = self.phase;
        if from == Phase::Waiting
            && to != Phase::Waiting
            && let Some(since) = self.waiting_since.take()
        {
            self.waiting_us += us(at - since).max(0);
        }
        if to == Phase::Waiting && from != Phase::Waiting {
            self.waiting_since = Some(at);
        }
        if from == Phase::Closed && to != Phase::Closed {
            self.reopened += 1;
            self.closed_at = None;
        }
        if to == Phase::Closed && from != Phase::Closed {
            self.closed_at = Some(at);
            self.processing_us = Some((us(at - self.submitted_at) - self.waiting_us).max(0));
        }
        self.phase = to;
    }

    /// The request's own acknowledgement of receipt was issued at `at`.
    pub fn acknowledged(&mut self, at: OffsetDateTime) {
        self.acknowledged_at.get_or_insert(at);
    }

    /// An agent made something visible to the citizen at `at`.
    pub fn responded(&mut self, at: OffsetDateTime) {
        self.first_response_at.get_or_insert(at);
    }
}

/// What an event means for the timing, independently of how it is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimingEvent<'a> {
    /// A status change to `status`.
    Status(&'a str),
    /// The request's acknowledgement of receipt (not an AEE, not a message's).
    Acknowledged,
    /// An agent's message or status change visible to the citizen.
    Response,
    /// Anything else.
    Other,
}

/// Classifies a stored event (kind, actor is an agent, visible to the citizen, data).
pub fn classify<'a>(
    kind: &str,
    by_agent: bool,
    visible: bool,
    data: &'a serde_json::Value,
) -> Vec<TimingEvent<'a>> {
    let s = |k: &str| data.get(k).and_then(serde_json::Value::as_str);
    let mut out = Vec::new();
    match kind {
        "status_changed" => {
            if let Some(to) = s("to") {
                out.push(TimingEvent::Status(to));
            }
        }
        "acknowledged" if matches!(s("kind"), Some("are" | "ar")) && s("of") != Some("message") => {
            out.push(TimingEvent::Acknowledged);
        }
        _ => {}
    }
    if by_agent && visible && matches!(kind, "message" | "status_changed") {
        out.push(TimingEvent::Response);
    }
    if out.is_empty() {
        out.push(TimingEvent::Other);
    }
    out
}

/// Replays a request's events (in order) from its submission.
pub fn replay<'a>(
    submitted_at: OffsetDateTime,
    initial: Phase,
    events: impl IntoIterator<Item = (OffsetDateTime, Vec<TimingEvent<'a>>)>,
    phase_of: impl Fn(&str) -> Phase,
) -> Timing {
    let mut t = Timing::new(submitted_at, initial);
    for (at, what) in events {
        for e in what {
            match e {
                TimingEvent::Status(to) => t.transition(phase_of(to), at),
                TimingEvent::Acknowledged => t.acknowledged(at),
                TimingEvent::Response => t.responded(at),
                TimingEvent::Other => {}
            }
        }
    }
    t
}

/// The nearest-rank percentile (`p` in 1..=100) of sorted values: the smallest value such
/// that at least p % of the values are at or below it. The same rank the SQL of both
/// databases picks: `(p × n + 99) / 100` in integers.
pub fn nearest_rank(sorted: &[i64], p: i64) -> Option<i64> {
    let n = i64::try_from(sorted.len()).ok()?;
    if n == 0 {
        return None;
    }
    let rank = (p * n + 99) / 100;
    sorted.get(usize::try_from(rank.clamp(1, n) - 1).ok()?).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn waiting_is_left_out_and_reopening_restarts_the_count() {
        let mut t = Timing::new(datetime!(2026-03-02 09:00 UTC), Phase::Open);
        t.transition(Phase::Waiting, datetime!(2026-03-03 09:00 UTC));
        t.transition(Phase::Open, datetime!(2026-03-06 09:00 UTC));
        assert_eq!(t.waiting_us, 3 * 86_400_000_000);
        t.transition(Phase::Closed, datetime!(2026-03-10 09:00 UTC));
        assert_eq!(t.processing_us, Some(5 * 86_400_000_000), "8 days minus 3 waiting");
        t.transition(Phase::Open, datetime!(2026-03-12 09:00 UTC));
        assert_eq!((t.reopened, t.closed_at), (1, None));
        t.transition(Phase::Closed, datetime!(2026-03-13 09:00 UTC));
        assert_eq!(t.closed_at, Some(datetime!(2026-03-13 09:00 UTC)));
        assert_eq!(t.processing_us, Some(8 * 86_400_000_000), "11 days minus 3 waiting");
    }

    #[test]
    fn only_the_first_acknowledgement_and_response_count() {
        let data = serde_json::json!({"kind": "are"});
        let message_ack = serde_json::json!({"kind": "are", "of": "message"});
        let aee = serde_json::json!({"kind": "aee"});
        let status = serde_json::json!({"to": "closed"});
        let start = datetime!(2026-03-02 09:00 UTC);
        let h = |n: i64| start + time::Duration::hours(n);
        let t = replay(
            start,
            Phase::Open,
            vec![
                (h(0), classify("acknowledged", false, true, &aee)),
                (h(1), classify("acknowledged", false, true, &message_ack)),
                (h(2), classify("acknowledged", false, true, &data)),
                (h(3), classify("note", true, false, &data)),
                (h(4), classify("message", true, true, &data)),
                (h(5), classify("status_changed", true, true, &status)),
            ],
            |s| if s == "closed" { Phase::Closed } else { Phase::Open },
        );
        assert_eq!(t.acknowledged_at, Some(h(2)));
        assert_eq!(t.first_response_at, Some(h(4)));
        assert_eq!(t.closed_at, Some(h(5)));
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(nearest_rank(&v, 50), Some(5));
        assert_eq!(nearest_rank(&v, 90), Some(9));
        assert_eq!(nearest_rank(&[7], 90), Some(7));
        assert_eq!(nearest_rank(&[1, 2, 3], 50), Some(2));
        assert_eq!(nearest_rank(&[], 50), None);
    }
}
