//! Legal deadlines of a request: what the administration's silence means (SVA, SVR or nothing),
//! how long it must last, and the date on which a decision is deemed taken, given what happened
//! to the request (receipt, requests for missing items, their completion).
//!
//! Everything here is computed from dates passed in; the caller decides which event starts the
//! clock. For an electronic submission that is the date the *competent* authority received it
//! (CRPA R112-11-1 and the last paragraph of the AEE/ARE decree: a case forwarded from the EPCI
//! to a commune starts on the commune's receipt), and for an urbanism filing the sending of the
//! ARE (code de l'urbanisme R474-1 I).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::calendar::{self, HolidayArea};
use crate::values::ParseError;

/// What the administration's silence means once the delay has run out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Regime {
    /// Silence vaut acceptation: the general rule (CRPA L231-1).
    Sva,
    /// Silence vaut rejet: the exceptions of L231-4 and the decrees listing them.
    Svr,
    /// No implicit decision: information requests, reports, anything that is not a *demande*
    /// calling for an individual decision.
    None,
}

impl Regime {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sva => "sva",
            Self::Svr => "svr",
            Self::None => "none",
        }
    }

    /// Reads the stored form back.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sva" => Some(Self::Sva),
            "svr" => Some(Self::Svr),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    /// The French label shown to users and printed on acknowledgements.
    pub fn label(self) -> &'static str {
        match self {
            Self::Sva => "Silence vaut acceptation",
            Self::Svr => "Silence vaut rejet",
            Self::None => "Pas de décision implicite",
        }
    }
}

impl fmt::Display for Regime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long the administration has before its silence becomes a decision.
///
/// Stored as text, `months:2`, `days:15` or `working_days:10` (that is also its serde form), so
/// that a service definition can carry it as data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DelayLength {
    /// Calendar months, counted de quantième à quantième (see [`calendar::add_months`]).
    Months(u32),
    /// Calendar days; the starting day does not count, and weekends and holidays do.
    Days(u32),
    /// Jours ouvrés: Monday to Friday, public holidays excluded (see [`calendar::is_working_day`]).
    WorkingDays(u32),
}

/// Longest accepted lengths: ten years, whatever the unit. Anything longer is a typing mistake
/// in a service definition, and refusing it keeps every computed date far from `Date::MAX`.
const MAX_MONTHS: u32 = 120;
const MAX_DAYS: u32 = 3_660;
const MAX_WORKING_DAYS: u32 = 2_600;

impl DelayLength {
    /// The date on which a delay of this length, started by an event on `start`, runs out.
    ///
    /// Not moved when it falls on a weekend or a public holiday: these are delays of
    /// non-contentious administrative procedure, which are neither *francs* nor extended
    /// (standards.md §1.2 item 22, rapport du 120e Congrès des notaires 2024). The rule of
    /// Code de procédure civile art. 642 that pushes a deadline to the next working day belongs
    /// to court procedure and does not apply. `area` matters only for working days.
    pub fn end_from(self, start: Date, area: HolidayArea) -> Date {
        match self {
            Self::Months(n) => calendar::add_months(start, n),
            Self::Days(n) => calendar::add_days(start, n),
            Self::WorkingDays(n) => calendar::add_working_days(start, n, area),
        }
    }

    /// Reads the stored form back (`months:2`, `days:15`, `working_days:10`).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ParseError::Empty);
        }
        let invalid = ParseError::Invalid(
            "la durée doit être de la forme months:2, days:15 ou working_days:10",
        );
        let (unit, count) = s.split_once(':').ok_or(invalid.clone())?;
        let count: u32 = count.trim().parse().map_err(|_| invalid.clone())?;
        let (length, max) = match unit.trim() {
            "months" => (Self::Months(count), MAX_MONTHS),
            "days" => (Self::Days(count), MAX_DAYS),
            "working_days" => (Self::WorkingDays(count), MAX_WORKING_DAYS),
            _ => return Err(invalid),
        };
        if count == 0 {
            return Err(ParseError::Invalid("la durée doit être d'au moins 1"));
        }
        if count > max {
            return Err(ParseError::Invalid("la durée ne peut pas dépasser dix ans"));
        }
        Ok(length)
    }

    /// The stored form.
    pub fn to_storage(self) -> String {
        match self {
            Self::Months(n) => format!("months:{n}"),
            Self::Days(n) => format!("days:{n}"),
            Self::WorkingDays(n) => format!("working_days:{n}"),
        }
    }

    /// The French wording ("2 mois", "15 jours", "1 jour ouvré").
    pub fn label(self) -> String {
        match self {
            Self::Months(n) => format!("{n} mois"),
            Self::Days(1) => "1 jour".to_owned(),
            Self::Days(n) => format!("{n} jours"),
            Self::WorkingDays(1) => "1 jour ouvré".to_owned(),
            Self::WorkingDays(n) => format!("{n} jours ouvrés"),
        }
    }
}

impl fmt::Display for DelayLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_storage())
    }
}

impl FromStr for DelayLength {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for DelayLength {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_storage())
    }
}

// Through `parse`, so that a service definition cannot hold a zero or absurd length.
impl<'de> Deserialize<'de> for DelayLength {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The legal delay of a kind of request: its regime and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LegalDelay {
    pub regime: Regime,
    pub length: DelayLength,
}

impl LegalDelay {
    /// The default of CRPA L231-1: silence kept for two months is acceptance.
    pub const CRPA_DEFAULT: Self = Self { regime: Regime::Sva, length: DelayLength::Months(2) };

    pub fn new(regime: Regime, length: DelayLength) -> Self {
        Self { regime, length }
    }

    /// The French wording ("Silence vaut acceptation, 2 mois").
    pub fn label(self) -> String {
        format!("{}, {}", self.regime.label(), self.length.label())
    }
}

/// Why a request's history was refused. The `Display` text is French and meant for agents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error("les pièces manquantes ne peuvent pas être demandées avant la réception de la demande")]
    RequestedBeforeReceipt,
    #[error("la date limite de production des pièces doit suivre la date de leur demande")]
    DeadlineNotAfterRequest,
    #[error("les pièces manquantes ne peuvent pas être reçues avant d'avoir été demandées")]
    CompletedBeforeRequest,
}

/// One request for missing items (CRPA L114-5): asked on a date, with a deadline to provide
/// them, and completed on a date or still pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Incompleteness {
    requested_on: Date,
    deadline: Date,
    completed_on: Option<Date>,
}

impl Incompleteness {
    /// Missing items requested on `requested_on`, to be provided by `deadline`.
    pub fn new(requested_on: Date, deadline: Date) -> Result<Self, HistoryError> {
        if deadline <= requested_on {
            return Err(HistoryError::DeadlineNotAfterRequest);
        }
        Ok(Self { requested_on, deadline, completed_on: None })
    }

    /// The same request, answered on `on` (possibly after the deadline).
    pub fn completed(self, on: Date) -> Result<Self, HistoryError> {
        if on < self.requested_on {
            return Err(HistoryError::CompletedBeforeRequest);
        }
        Ok(Self { completed_on: Some(on), ..self })
    }

    /// The date the missing items were requested (the date of the letter or message).
    pub fn requested_on(&self) -> Date {
        self.requested_on
    }

    /// The date set for providing them.
    pub fn deadline(&self) -> Date {
        self.deadline
    }

    /// The date they were received, if they were.
    pub fn completed_on(&self) -> Option<Date> {
        self.completed_on
    }

    /// Whether the items are still awaited.
    pub fn is_pending(&self) -> bool {
        self.completed_on.is_none()
    }

    /// Last day of the SVR suspension: completion ends it early, the deadline ends it anyway.
    fn suspension_end(&self) -> Date {
        self.completed_on.map_or(self.deadline, |c| c.min(self.deadline))
    }
}

/// What happened to a request, as far as its legal delay is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHistory {
    received: Date,
    area: HolidayArea,
    incompleteness: Vec<Incompleteness>,
}

impl RequestHistory {
    /// A request received on `received` by an authority whose holidays are those of `area`
    /// (used only by delays in working days).
    pub fn new(received: Date, area: HolidayArea) -> Self {
        Self { received, area, incompleteness: Vec::new() }
    }

    /// Records a request for missing items.
    pub fn push_incompleteness(&mut self, period: Incompleteness) -> Result<(), HistoryError> {
        if period.requested_on < self.received {
            return Err(HistoryError::RequestedBeforeReceipt);
        }
        self.incompleteness.push(period);
        Ok(())
    }

    /// Builder form of [`Self::push_incompleteness`].
    pub fn with_incompleteness(mut self, period: Incompleteness) -> Result<Self, HistoryError> {
        self.push_incompleteness(period)?;
        Ok(self)
    }

    pub fn received(&self) -> Date {
        self.received
    }

    pub fn area(&self) -> HolidayArea {
        self.area
    }

    /// The requests for missing items, in the order they were recorded.
    pub fn incompleteness(&self) -> &[Incompleteness] {
        &self.incompleteness
    }

    /// Whether some missing items are still awaited.
    pub fn is_awaiting_items(&self) -> bool {
        self.incompleteness.iter().any(Incompleteness::is_pending)
    }

    fn periods_in_order(&self) -> Vec<Incompleteness> {
        let mut periods = self.incompleteness.clone();
        periods.sort_by_key(|p| p.requested_on);
        periods
    }
}

/// The date on which, failing an express decision, the request is deemed accepted (SVA) or
/// rejected (SVR); `None` when there is no implicit decision or it cannot be known yet.
///
/// **Which day.** The delay is counted from the starting event, which does not count, to the
/// same day of the month `n` months later (de quantième à quantième, CRPA L231-1 "deux mois";
/// standards.md §1.2 item 22): a request received on 15 March with two months gives 15 May.
/// The returned date is that last day of the delay. The administration may still notify a
/// decision until the end of it; the implicit decision is "née le 15 mai" in the usual wording,
/// and can be relied on from 16 May at 0:00 (rapport du 120e Congrès des notaires 2024: a
/// declaration filed on 2 January may be opposed until 2 February at 23:59, and the tacit
/// non-opposition exists from 3 February at 0:00). Acknowledgements should print this date as
/// the one "à l'issue de laquelle" the decision arises. Month ends: see [`calendar::add_months`].
/// Weekends and holidays never move it (see [`DelayLength::end_from`]).
///
/// **Missing items** (CRPA L114-5, standards.md §1.1 item 12):
/// - SVA: the delay runs only from receipt of the missing items, so it starts again, in full,
///   from the completion date. While items are awaited the date is unknown: `None`. Items
///   received late still restart it (the general CRPA has no lapse; urbanism's tacit refusal
///   after 3 months without the items, R423-39, is for the caller to apply).
/// - SVR: the delay is suspended from the request for items until their completion or the
///   deadline set for them, whichever comes first. The days before the request stay spent;
///   the remaining days resume after the suspension (the request day counts as running, the
///   completion day as suspended). While items are awaited the date is still known: the
///   suspension cannot outlast the deadline, so the result assumes it does, and an early
///   completion can only bring the date forward. Suspensions that overlap count once.
/// - A request for items made after the delay has run out changes nothing: the implicit
///   decision already exists. Urbanism adds that a request made more than one month after
///   receipt changes nothing either (R423-39, §1.2 item 21); callers must not record those.
pub fn deemed_decision_date(delay: &LegalDelay, history: &RequestHistory) -> Option<Date> {
    let area = history.area;
    let length = delay.length;
    match delay.regime {
        Regime::None => None,
        Regime::Sva => {
            let mut start = history.received;
            for period in history.periods_in_order() {
                if period.requested_on > length.end_from(start, area) {
                    break;
                }
                start = start.max(period.completed_on?);
            }
            Some(length.end_from(start, area))
        }
        Regime::Svr => {
            let clock = Clock::for_length(length, history.received, area);
            let mut resume = history.received;
            let mut remaining = clock.total;
            for period in history.periods_in_order() {
                if period.requested_on > clock.advance(resume, remaining) {
                    break;
                }
                if period.requested_on >= resume {
                    let spent = clock.elapsed(resume, period.requested_on);
                    remaining = remaining.saturating_sub(spent);
                    resume = period.suspension_end();
                } else {
                    // Asked while an earlier suspension was running: the clock is already stopped.
                    resume = resume.max(period.suspension_end());
                }
            }
            Some(clock.advance(resume, remaining))
        }
    }
}

/// A delay seen as a number of units that run, stop and resume: calendar days (months are
/// turned into the calendar days they span from receipt) or working days.
struct Clock {
    working: Option<HolidayArea>,
    total: u32,
}

impl Clock {
    fn for_length(length: DelayLength, start: Date, area: HolidayArea) -> Self {
        match length {
            DelayLength::Months(n) => {
                let days = calendar::days_from(start, calendar::add_months(start, n));
                Self { working: None, total: u32::try_from(days).unwrap_or(u32::MAX) }
            }
            DelayLength::Days(n) => Self { working: None, total: n },
            DelayLength::WorkingDays(n) => Self { working: Some(area), total: n },
        }
    }

    /// Units after `from` up to and including `to`.
    fn elapsed(&self, from: Date, to: Date) -> u32 {
        match self.working {
            Some(area) => calendar::working_days_between(from, to, area),
            None => u32::try_from(calendar::days_from(from, to).max(0)).unwrap_or(u32::MAX),
        }
    }

    fn advance(&self, from: Date, units: u32) -> Date {
        match self.working {
            Some(area) => calendar::add_working_days(from, units, area),
            None => calendar::add_days(from, units),
        }
    }
}

/// The latest dates for the acknowledgements of an electronic submission received on
/// `received`: the accusé d'enregistrement (AEE) within 1 working day, the accusé de réception
/// (ARE) within 10 working days (CRPA L112-11 and its decree as amended by décret 2016-1411;
/// standards.md §1.1 items 2 and 3). Returned as `(aee, are)`. Both should normally be sent
/// at once; these are the limits a scheduler checks.
pub fn acknowledgement_deadlines(received: Date, area: HolidayArea) -> (Date, Date) {
    (calendar::add_working_days(received, 1, area), calendar::add_working_days(received, 10, area))
}

#[cfg(test)]
mod tests {
    use serde::de::value::{Error as DeError, StrDeserializer};
    use time::macros::date;

    use super::*;

    const METRO: HolidayArea = HolidayArea::Metropole;
    const ALSACE: HolidayArea = HolidayArea::AlsaceMoselle;
    const SVA_2M: LegalDelay = LegalDelay { regime: Regime::Sva, length: DelayLength::Months(2) };
    const SVR_2M: LegalDelay = LegalDelay { regime: Regime::Svr, length: DelayLength::Months(2) };

    fn received(on: Date) -> RequestHistory {
        RequestHistory::new(on, METRO)
    }

    fn asked(on: Date, deadline: Date) -> Incompleteness {
        Incompleteness::new(on, deadline).unwrap()
    }

    fn answered(on: Date, deadline: Date, completed: Date) -> Incompleteness {
        asked(on, deadline).completed(completed).unwrap()
    }

    #[test]
    fn regimes_round_trip_through_their_stored_form() {
        for r in [Regime::Sva, Regime::Svr, Regime::None] {
            assert_eq!(Regime::parse(r.as_str()), Some(r));
        }
        assert_eq!(Regime::parse("SVA"), None);
        assert_eq!(Regime::Svr.label(), "Silence vaut rejet");
    }

    #[test]
    fn delay_lengths_round_trip_through_their_stored_form_and_serde() {
        for l in [DelayLength::Months(2), DelayLength::Days(15), DelayLength::WorkingDays(10)] {
            assert_eq!(DelayLength::parse(&l.to_storage()), Ok(l));
            assert_eq!(l.to_string().parse::<DelayLength>(), Ok(l));
            let stored = l.to_storage();
            let de = StrDeserializer::<DeError>::new(&stored);
            assert_eq!(DelayLength::deserialize(de).unwrap(), l);
        }
        assert_eq!(DelayLength::parse(" months : 3 "), Ok(DelayLength::Months(3)));
        for bad in ["", "2 mois", "weeks:2", "months:", "months:-1", "months:0", "months:121"] {
            assert!(DelayLength::parse(bad).is_err(), "{bad:?}");
        }
        assert!(DelayLength::deserialize(StrDeserializer::<DeError>::new("days:0")).is_err());
        assert_eq!(DelayLength::WorkingDays(1).label(), "1 jour ouvré");
        assert_eq!(SVA_2M.label(), "Silence vaut acceptation, 2 mois");
        assert_eq!(LegalDelay::CRPA_DEFAULT, SVA_2M);
    }

    #[test]
    fn two_months_of_silence_end_on_the_same_day_two_months_later() {
        // (received, deemed decided)
        let cases = [
            (date!(2026 - 03 - 15), date!(2026 - 05 - 15)),
            (date!(2026 - 11 - 05), date!(2027 - 01 - 05)),
            (date!(2026 - 12 - 31), date!(2027 - 02 - 28)),
            (date!(2027 - 12 - 31), date!(2028 - 02 - 29)),
            (date!(2026 - 05 - 14), date!(2026 - 07 - 14)), // a holiday does not move it
            (date!(2026 - 03 - 16), date!(2026 - 05 - 16)), // nor does a Saturday
        ];
        for (on, expected) in cases {
            assert_eq!(deemed_decision_date(&SVA_2M, &received(on)), Some(expected), "SVA {on}");
            assert_eq!(deemed_decision_date(&SVR_2M, &received(on)), Some(expected), "SVR {on}");
        }
    }

    #[test]
    fn one_month_from_31_january_ends_on_the_last_day_of_february() {
        let one_month = LegalDelay::new(Regime::Sva, DelayLength::Months(1));
        assert_eq!(
            deemed_decision_date(&one_month, &received(date!(2026 - 01 - 31))),
            Some(date!(2026 - 02 - 28))
        );
        assert_eq!(
            deemed_decision_date(&one_month, &received(date!(2028 - 01 - 31))),
            Some(date!(2028 - 02 - 29))
        );
    }

    #[test]
    fn delays_in_days_and_working_days_count_from_the_day_after_receipt() {
        let days = LegalDelay::new(Regime::Svr, DelayLength::Days(15));
        let working = LegalDelay::new(Regime::Sva, DelayLength::WorkingDays(10));
        let on = date!(2026 - 07 - 10); // a Friday, before 14 July
        assert_eq!(deemed_decision_date(&days, &received(on)), Some(date!(2026 - 07 - 25)));
        assert_eq!(deemed_decision_date(&working, &received(on)), Some(date!(2026 - 07 - 27)));
        let christmas = date!(2025 - 12 - 24);
        let metro = RequestHistory::new(christmas, METRO);
        let alsace = RequestHistory::new(christmas, ALSACE);
        assert_eq!(deemed_decision_date(&working, &metro), Some(date!(2026 - 01 - 09)));
        assert_eq!(deemed_decision_date(&working, &alsace), Some(date!(2026 - 01 - 12)));
    }

    #[test]
    fn no_implicit_decision_regime_never_has_a_deemed_decision_date() {
        let info = LegalDelay::new(Regime::None, DelayLength::Days(15));
        let on = date!(2026 - 03 - 02);
        assert_eq!(deemed_decision_date(&info, &received(on)), None);
        let h = received(on)
            .with_incompleteness(answered(on, date!(2026 - 03 - 20), date!(2026 - 03 - 05)))
            .unwrap();
        assert_eq!(deemed_decision_date(&info, &h), None);
    }

    #[test]
    fn sva_starts_again_from_the_completion_date() {
        let on = date!(2026 - 03 - 02);
        let ask = date!(2026 - 03 - 10);
        let deadline = date!(2026 - 04 - 10);
        // (history, expected, why)
        let cases = [
            (vec![asked(ask, deadline)], None, "unknown while items are awaited"),
            (
                vec![answered(ask, deadline, date!(2026 - 03 - 20))],
                Some(date!(2026 - 05 - 20)),
                "early",
            ),
            (
                vec![answered(ask, deadline, date!(2026 - 05 - 04))],
                Some(date!(2026 - 07 - 04)),
                "late",
            ),
            (vec![answered(ask, deadline, ask)], Some(date!(2026 - 05 - 10)), "same day"),
            (
                vec![
                    answered(date!(2026 - 04 - 01), date!(2026 - 04 - 30), date!(2026 - 04 - 15)),
                    answered(ask, deadline, date!(2026 - 03 - 20)),
                ],
                Some(date!(2026 - 06 - 15)),
                "the last completion counts, whatever the recording order",
            ),
            (
                vec![
                    answered(ask, deadline, date!(2026 - 03 - 20)),
                    asked(date!(2026 - 04 - 01), date!(2026 - 04 - 30)),
                ],
                None,
                "a second request pending",
            ),
        ];
        for (periods, expected, why) in cases {
            let mut h = received(on);
            for p in periods {
                h.push_incompleteness(p).unwrap();
            }
            assert_eq!(deemed_decision_date(&SVA_2M, &h), expected, "{why}");
        }
    }

    #[test]
    fn svr_is_suspended_until_completion_or_the_deadline_whichever_comes_first() {
        let on = date!(2026 - 03 - 02); // two months: 2 May without incompleteness
        let ask = date!(2026 - 03 - 10);
        let deadline = date!(2026 - 04 - 10); // 31 days after the request
        // (history, expected, why)
        let cases = [
            (
                vec![answered(ask, deadline, date!(2026 - 03 - 20))],
                date!(2026 - 05 - 12),
                "early completion ends the suspension: 10 days",
            ),
            (
                vec![answered(ask, deadline, date!(2026 - 04 - 20))],
                date!(2026 - 06 - 02),
                "late completion: the suspension stops at the deadline, 31 days",
            ),
            (
                vec![asked(ask, deadline)],
                date!(2026 - 06 - 02),
                "still awaited: suspended until the deadline at most",
            ),
            (vec![answered(ask, deadline, ask)], date!(2026 - 05 - 02), "same day: no suspension"),
            (
                vec![
                    answered(ask, deadline, date!(2026 - 03 - 20)),
                    answered(date!(2026 - 03 - 15), date!(2026 - 04 - 15), date!(2026 - 03 - 25)),
                ],
                date!(2026 - 05 - 17),
                "overlapping requests count once: 10 to 25 March",
            ),
            (
                vec![
                    answered(ask, deadline, date!(2026 - 03 - 20)),
                    answered(date!(2026 - 04 - 01), date!(2026 - 04 - 30), date!(2026 - 04 - 06)),
                ],
                date!(2026 - 05 - 17),
                "successive requests add up: 10 + 5 days",
            ),
        ];
        for (periods, expected, why) in cases {
            let mut h = received(on);
            for p in periods {
                h.push_incompleteness(p).unwrap();
            }
            assert_eq!(deemed_decision_date(&SVR_2M, &h), Some(expected), "{why}");
        }
    }

    #[test]
    fn svr_in_working_days_suspends_working_days() {
        let svr = LegalDelay::new(Regime::Svr, DelayLength::WorkingDays(10));
        let on = date!(2026 - 03 - 02); // Monday; 10 working days: Monday 16 March
        assert_eq!(deemed_decision_date(&svr, &received(on)), Some(date!(2026 - 03 - 16)));
        // 3 working days spent (3, 4, 5 March), suspended until Tuesday 10, then 7 more.
        let h = received(on)
            .with_incompleteness(answered(
                date!(2026 - 03 - 05),
                date!(2026 - 03 - 20),
                date!(2026 - 03 - 10),
            ))
            .unwrap();
        assert_eq!(deemed_decision_date(&svr, &h), Some(date!(2026 - 03 - 19)));
    }

    #[test]
    fn a_request_for_items_after_the_delay_has_run_out_changes_nothing() {
        let dp = LegalDelay::new(Regime::Sva, DelayLength::Months(1));
        let on = date!(2026 - 01 - 02);
        let late = asked(date!(2026 - 02 - 10), date!(2026 - 03 - 10));
        let h = received(on).with_incompleteness(late).unwrap();
        for regime in [Regime::Sva, Regime::Svr] {
            let delay = LegalDelay { regime, ..dp };
            assert_eq!(deemed_decision_date(&delay, &h), Some(date!(2026 - 02 - 02)), "{regime}");
        }
        // On the last day of the delay the administration can still ask.
        let last_day = asked(date!(2026 - 02 - 02), date!(2026 - 03 - 02));
        let h = received(on).with_incompleteness(last_day).unwrap();
        assert_eq!(deemed_decision_date(&dp, &h), None);
    }

    #[test]
    fn urbanism_instruction_periods_follow_r423_23() {
        let sva = |months| LegalDelay::new(Regime::Sva, DelayLength::Months(months));
        // (authorisation, delay, filed, deemed decided)
        let cases = [
            ("DP", sva(1), date!(2026 - 01 - 02), date!(2026 - 02 - 02)), // the notaires' example
            ("DP", sva(1), date!(2026 - 04 - 30), date!(2026 - 05 - 30)), // a Saturday stays
            ("DP", sva(1), date!(2026 - 06 - 14), date!(2026 - 07 - 14)), // 14 July stays
            ("DP", sva(1), date!(2026 - 01 - 31), date!(2026 - 02 - 28)),
            ("PD", sva(2), date!(2026 - 01 - 02), date!(2026 - 03 - 02)),
            ("PC maison individuelle", sva(2), date!(2026 - 01 - 02), date!(2026 - 03 - 02)),
            ("PC maison individuelle", sva(2), date!(2025 - 12 - 31), date!(2026 - 02 - 28)),
            ("PC", sva(3), date!(2026 - 01 - 02), date!(2026 - 04 - 02)),
            ("PC", sva(3), date!(2026 - 11 - 30), date!(2027 - 02 - 28)),
            ("PA", sva(3), date!(2026 - 03 - 31), date!(2026 - 06 - 30)),
        ];
        for (kind, delay, filed, expected) in cases {
            assert_eq!(deemed_decision_date(&delay, &received(filed)), Some(expected), "{kind}");
        }
        // Missing items asked within the first month: the period starts when they arrive.
        let h = received(date!(2026 - 01 - 02))
            .with_incompleteness(answered(
                date!(2026 - 01 - 20),
                date!(2026 - 04 - 20),
                date!(2026 - 02 - 16),
            ))
            .unwrap();
        assert_eq!(deemed_decision_date(&sva(3), &h), Some(date!(2026 - 05 - 16)));
    }

    #[test]
    fn acknowledgements_are_due_within_one_and_ten_working_days() {
        // (received, area, latest AEE, latest ARE)
        let cases = [
            (date!(2026 - 03 - 02), METRO, date!(2026 - 03 - 03), date!(2026 - 03 - 16)),
            (date!(2026 - 07 - 10), METRO, date!(2026 - 07 - 13), date!(2026 - 07 - 27)),
            (date!(2026 - 03 - 07), METRO, date!(2026 - 03 - 09), date!(2026 - 03 - 20)),
            (date!(2025 - 12 - 24), METRO, date!(2025 - 12 - 26), date!(2026 - 01 - 09)),
            (date!(2025 - 12 - 24), ALSACE, date!(2025 - 12 - 29), date!(2026 - 01 - 12)),
            (date!(2026 - 05 - 13), METRO, date!(2026 - 05 - 15), date!(2026 - 05 - 29)),
        ];
        for (on, area, aee, are) in cases {
            assert_eq!(acknowledgement_deadlines(on, area), (aee, are), "{on} {area}");
        }
    }

    #[test]
    fn inconsistent_histories_are_refused_with_a_french_message() {
        let on = date!(2026 - 03 - 10);
        assert_eq!(Incompleteness::new(on, on), Err(HistoryError::DeadlineNotAfterRequest));
        assert_eq!(
            asked(on, date!(2026 - 04 - 10)).completed(date!(2026 - 03 - 09)),
            Err(HistoryError::CompletedBeforeRequest)
        );
        let err =
            received(on).with_incompleteness(asked(date!(2026 - 03 - 01), date!(2026 - 04 - 01)));
        assert_eq!(err, Err(HistoryError::RequestedBeforeReceipt));
        assert!(HistoryError::CompletedBeforeRequest.to_string().starts_with("les pièces"));
        let h = received(on).with_incompleteness(asked(on, date!(2026 - 04 - 10))).unwrap();
        assert!(h.is_awaiting_items());
        assert_eq!(h.incompleteness().len(), 1);
    }
}
