//! Legal time in France: dates in acknowledgements and deadlines are dates in Paris, not UTC
//! (a request sent at 00:30 on 2 May in Paris was received on 2 May, although it is still
//! 1 May in UTC). Without a time-zone database, the EU rule is computed directly: summer time
//! (UTC+2) from the last Sunday of March at 01:00 UTC to the last Sunday of October at 01:00
//! UTC, UTC+1 otherwise. Overseas communes have their own zones; they are not handled yet.

use time::{Date, Month, OffsetDateTime, UtcOffset, Weekday};

fn last_sunday(year: i32, month: Month) -> Option<Date> {
    let mut d = Date::from_calendar_date(year, month, month.length(year)).ok()?;
    while d.weekday() != Weekday::Sunday {
        d = d.previous_day()?;
    }
    Some(d)
}

/// The instant in Paris time.
pub fn paris(t: OffsetDateTime) -> OffsetDateTime {
    let utc = t.to_offset(UtcOffset::UTC);
    let year = utc.year();
    let summer = match (last_sunday(year, Month::March), last_sunday(year, Month::October)) {
        (Some(start), Some(end)) => {
            let start = start.with_hms(1, 0, 0).map(|d| d.assume_utc());
            let end = end.with_hms(1, 0, 0).map(|d| d.assume_utc());
            matches!((start, end), (Ok(s), Ok(e)) if utc >= s && utc < e)
        }
        _ => false,
    };
    let hours = if summer { 2 } else { 1 };
    utc.to_offset(UtcOffset::from_hms(hours, 0, 0).unwrap_or(UtcOffset::UTC))
}

const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// "15 mai 2026" ("1er mai 2026" on the first of the month, as French usage writes it).
pub fn date_fr(d: Date) -> String {
    let day = if d.day() == 1 { "1er".to_owned() } else { d.day().to_string() };
    format!("{day} {} {}", MONTHS[usize::from(u8::from(d.month())) - 1], d.year())
}

/// "15 mai 2026 à 14 h 05" in Paris time.
pub fn datetime_fr(t: OffsetDateTime) -> String {
    let p = paris(t);
    format!("{} à {} h {:02}", date_fr(p.date()), p.hour(), p.minute())
}

/// "15/05/2026" (tables).
pub fn date_short(d: Date) -> String {
    format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn paris_is_utc_plus_one_in_winter_and_two_in_summer() {
        assert_eq!(paris(datetime!(2026-01-15 12:00 UTC)).hour(), 13);
        assert_eq!(paris(datetime!(2026-07-15 12:00 UTC)).hour(), 14);
        // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(paris(datetime!(2026-03-29 00:59 UTC)).hour(), 1);
        assert_eq!(paris(datetime!(2026-03-29 01:00 UTC)).hour(), 3);
        assert_eq!(paris(datetime!(2026-10-25 00:59 UTC)).hour(), 2);
        assert_eq!(paris(datetime!(2026-10-25 01:00 UTC)).hour(), 2);
        assert_eq!(
            paris(datetime!(2026-05-01 22:30 UTC)).date(),
            time::macros::date!(2026 - 05 - 02)
        );
    }

    #[test]
    fn dates_are_written_the_french_way() {
        assert_eq!(date_fr(time::macros::date!(2026 - 05 - 01)), "1er mai 2026");
        assert_eq!(date_fr(time::macros::date!(2026 - 08 - 15)), "15 août 2026");
        assert_eq!(datetime_fr(datetime!(2026-11-29 21:05 UTC)), "29 novembre 2026 à 22 h 05");
        assert_eq!(date_short(time::macros::date!(2026 - 02 - 03)), "03/02/2026");
    }
}
