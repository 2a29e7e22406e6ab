//! The French legal calendar: public holidays, working days (jours ouvrés) and month arithmetic,
//! the building blocks of legal deadlines. Pure functions: callers pass dates in, nothing here
//! reads the clock.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, Month, Weekday};

use crate::values::InseeCode;

/// Which list of public holidays applies where the competent authority sits.
///
/// Overseas departments have extra holidays of their own (abolition of slavery, on a date that
/// differs by territory); they are not modelled yet, so an overseas commune gets `Metropole`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolidayArea {
    /// The national list of the Code du travail, L3133-1.
    Metropole,
    /// Bas-Rhin (67), Haut-Rhin (68) and Moselle (57): the national list plus Good Friday and
    /// 26 December (local law, Code du travail L3134-13).
    AlsaceMoselle,
}

impl HolidayArea {
    /// The list that applies to a commune, from its INSEE code.
    pub fn for_commune(code: &InseeCode) -> Self {
        if code.is_alsace_moselle() { Self::AlsaceMoselle } else { Self::Metropole }
    }

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Metropole => "metropole",
            Self::AlsaceMoselle => "alsace_moselle",
        }
    }

    /// Reads the stored form back.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "metropole" => Some(Self::Metropole),
            "alsace_moselle" => Some(Self::AlsaceMoselle),
            _ => None,
        }
    }

    /// The French label shown to users.
    pub fn label(self) -> &'static str {
        match self {
            Self::Metropole => "Calendrier national",
            Self::AlsaceMoselle => "Calendrier d'Alsace-Moselle",
        }
    }
}

impl fmt::Display for HolidayArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One public holiday of a given year.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PublicHoliday {
    pub date: Date,
    /// French name, as shown to users ("Lundi de Pentecôte").
    pub name: &'static str,
}

/// Easter Sunday of a Gregorian year (anonymous Gregorian algorithm, as given by Meeus).
///
/// `None` before 1583, where the Gregorian computus does not apply, and outside the years that
/// `time::Date` can hold.
pub fn easter_sunday(year: i32) -> Option<Date> {
    if year < 1583 {
        return None;
    }
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let n = h + l - 7 * m + 114;
    let month = Month::try_from(u8::try_from(n / 31).ok()?).ok()?;
    let day = u8::try_from(n % 31 + 1).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

/// Fixed-date holidays: (month, day, name, only in Alsace-Moselle).
const FIXED_HOLIDAYS: &[(Month, u8, &str, bool)] = &[
    (Month::January, 1, "Jour de l'an", false),
    (Month::May, 1, "Fête du Travail", false),
    (Month::May, 8, "Victoire 1945", false),
    (Month::July, 14, "Fête nationale", false),
    (Month::August, 15, "Assomption", false),
    (Month::November, 1, "Toussaint", false),
    (Month::November, 11, "Armistice 1918", false),
    (Month::December, 25, "Noël", false),
    (Month::December, 26, "Saint-Étienne", true),
];

/// Holidays that follow Easter: (days after Easter Sunday, name, only in Alsace-Moselle).
///
/// Whit Monday stays in the list: L3133-1 still names it, even where an employer makes it the
/// "journée de solidarité". Good Friday is, strictly, a holiday only in Alsace-Moselle communes
/// that have a Protestant temple or a mixed church (L3134-13); it is observed across the three
/// departments in practice, so it is applied to all of them here.
const EASTER_HOLIDAYS: &[(i64, &str, bool)] = &[
    (-2, "Vendredi saint", true),
    (1, "Lundi de Pâques", false),
    (39, "Ascension", false),
    (50, "Lundi de Pentecôte", false),
];

fn applies(alsace_moselle_only: bool, area: HolidayArea) -> bool {
    !alsace_moselle_only || area == HolidayArea::AlsaceMoselle
}

/// The public holidays of `year` in `area`, in date order. Two holidays may fall on the same
/// day (Ascension was on 1 May in 2008): both are listed.
pub fn public_holidays(year: i32, area: HolidayArea) -> Vec<PublicHoliday> {
    let mut out: Vec<PublicHoliday> = FIXED_HOLIDAYS
        .iter()
        .filter(|(_, _, _, only)| applies(*only, area))
        .filter_map(|&(month, day, name, _)| {
            Date::from_calendar_date(year, month, day).ok().map(|date| PublicHoliday { date, name })
        })
        .collect();
    if let Some(easter) = easter_sunday(year) {
        out.extend(EASTER_HOLIDAYS.iter().filter(|(_, _, only)| applies(*only, area)).filter_map(
            |&(offset, name, _)| {
                shift_days(easter, offset).map(|date| PublicHoliday { date, name })
            },
        ));
    }
    out.sort_by_key(|h| h.date);
    out
}

/// The French name of the public holiday on `date`, if it is one.
pub fn public_holiday_name(date: Date, area: HolidayArea) -> Option<&'static str> {
    let fixed = FIXED_HOLIDAYS.iter().find(|&&(month, day, _, only)| {
        date.month() == month && date.day() == day && applies(only, area)
    });
    if let Some(&(_, _, name, _)) = fixed {
        return Some(name);
    }
    let easter = easter_sunday(date.year())?;
    let offset = days_from(easter, date);
    EASTER_HOLIDAYS
        .iter()
        .find(|&&(o, _, only)| o == offset && applies(only, area))
        .map(|&(_, name, _)| name)
}

/// Whether `date` is a public holiday in `area`.
pub fn is_public_holiday(date: Date, area: HolidayArea) -> bool {
    public_holiday_name(date, area).is_some()
}

/// Whether `date` is a jour ouvré: Monday to Friday and not a public holiday. This is the day
/// the texts on acknowledgements count in (AEE within 1 working day, ARE within 10).
pub fn is_working_day(date: Date, area: HolidayArea) -> bool {
    !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) && !is_public_holiday(date, area)
}

/// The `n`-th working day after `date`; `date` itself never counts, whatever day it is (a
/// submission received on a Saturday has its first working day on Monday). `n = 0` gives `date`.
pub fn add_working_days(date: Date, n: u32, area: HolidayArea) -> Date {
    let mut day = date;
    let mut left = n;
    while left > 0 {
        day = match day.next_day() {
            Some(next) => next,
            None => return Date::MAX,
        };
        if is_working_day(day, area) {
            left -= 1;
        }
    }
    day
}

/// How many working days fall after `from`, up to and including `to`; 0 when `to` is not after
/// `from`. The inverse of [`add_working_days`]: `working_days_between(d, add_working_days(d, n))`
/// is `n`, so "is the ARE late?" reads `working_days_between(received, today) > 10`.
pub fn working_days_between(from: Date, to: Date, area: HolidayArea) -> u32 {
    let mut count = 0;
    let mut day = from;
    while day < to {
        day = match day.next_day() {
            Some(next) => next,
            None => break,
        };
        if is_working_day(day, area) {
            count += 1;
        }
    }
    count
}

/// `date` plus `n` calendar months, "de quantième à quantième": the same day of the month, `n`
/// months later (15 March + 2 months = 15 May).
///
/// When that day does not exist in the target month, the result is the last day of that month
/// (31 January + 1 month = 28 or 29 February). This is the general rule of French law for
/// delays in months, written in Code de procédure civile art. 641 al. 2 ("à défaut d'un
/// quantième identique, le délai expire le dernier jour du mois") and followed by
/// administrative courts; rolling over into the next month instead would give the
/// administration days the text does not grant. Saturates at `Date::MAX`.
pub fn add_months(date: Date, n: u32) -> Date {
    let index = i64::from(date.year()) * 12 + i64::from(u8::from(date.month()) - 1) + i64::from(n);
    let Ok(year) = i32::try_from(index.div_euclid(12)) else {
        return Date::MAX;
    };
    // rem_euclid(12) is in 0..12, so the conversion cannot fail.
    let month = Month::January.nth_next(u8::try_from(index.rem_euclid(12)).unwrap_or(0));
    let day = date.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).unwrap_or(Date::MAX)
}

/// `date` plus `n` calendar days, saturating at `Date::MAX`.
pub(crate) fn add_days(date: Date, n: u32) -> Date {
    shift_days(date, i64::from(n)).unwrap_or(Date::MAX)
}

/// Calendar days from `from` to `to` (negative when `to` is earlier).
pub(crate) fn days_from(from: Date, to: Date) -> i64 {
    i64::from(to.to_julian_day()) - i64::from(from.to_julian_day())
}

fn shift_days(date: Date, days: i64) -> Option<Date> {
    let julian = i32::try_from(i64::from(date.to_julian_day()) + days).ok()?;
    Date::from_julian_day(julian).ok()
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    const METRO: HolidayArea = HolidayArea::Metropole;
    const ALSACE: HolidayArea = HolidayArea::AlsaceMoselle;

    #[test]
    fn easter_sunday_matches_known_dates() {
        let known = [
            (1818, date!(1818 - 03 - 22)), // earliest possible date
            (1943, date!(1943 - 04 - 25)), // latest possible date
            (2000, date!(2000 - 04 - 23)),
            (2008, date!(2008 - 03 - 23)),
            (2019, date!(2019 - 04 - 21)),
            (2024, date!(2024 - 03 - 31)),
            (2025, date!(2025 - 04 - 20)),
            (2026, date!(2026 - 04 - 05)),
            (2027, date!(2027 - 03 - 28)),
            (2038, date!(2038 - 04 - 25)),
        ];
        for (year, expected) in known {
            assert_eq!(easter_sunday(year), Some(expected), "Easter {year}");
        }
    }

    #[test]
    fn easter_is_always_a_sunday_between_22_march_and_25_april() {
        for year in 1583..=9999 {
            let easter = easter_sunday(year).unwrap();
            assert_eq!(easter.weekday(), Weekday::Sunday, "{year}");
            assert!(easter >= date!(2000 - 03 - 22).replace_year(year).unwrap(), "{year}");
            assert!(easter <= date!(2000 - 04 - 25).replace_year(year).unwrap(), "{year}");
        }
        assert_eq!(easter_sunday(1582), None);
        assert_eq!(easter_sunday(10_000), None);
    }

    #[test]
    fn the_2026_holidays_in_metropolitan_france_are_the_eleven_of_l3133_1() {
        let expected = [
            (date!(2026 - 01 - 01), "Jour de l'an"),
            (date!(2026 - 04 - 06), "Lundi de Pâques"),
            (date!(2026 - 05 - 01), "Fête du Travail"),
            (date!(2026 - 05 - 08), "Victoire 1945"),
            (date!(2026 - 05 - 14), "Ascension"),
            (date!(2026 - 05 - 25), "Lundi de Pentecôte"),
            (date!(2026 - 07 - 14), "Fête nationale"),
            (date!(2026 - 08 - 15), "Assomption"),
            (date!(2026 - 11 - 01), "Toussaint"),
            (date!(2026 - 11 - 11), "Armistice 1918"),
            (date!(2026 - 12 - 25), "Noël"),
        ];
        let got: Vec<_> = public_holidays(2026, METRO).iter().map(|h| (h.date, h.name)).collect();
        assert_eq!(got, expected);
        for (day, name) in expected {
            assert_eq!(public_holiday_name(day, METRO), Some(name));
        }
        assert!(!is_public_holiday(date!(2026 - 04 - 03), METRO), "Good Friday");
        assert!(!is_public_holiday(date!(2026 - 12 - 26), METRO), "St Stephen");
    }

    #[test]
    fn alsace_moselle_adds_good_friday_and_st_stephen_to_the_2026_list() {
        let got: Vec<_> = public_holidays(2026, ALSACE).iter().map(|h| (h.date, h.name)).collect();
        assert_eq!(got.len(), 13);
        assert!(got.contains(&(date!(2026 - 04 - 03), "Vendredi saint")));
        assert!(got.contains(&(date!(2026 - 12 - 26), "Saint-Étienne")));
        assert!(got.is_sorted_by_key(|(d, _)| *d));
        for h in public_holidays(2026, METRO) {
            assert!(is_public_holiday(h.date, ALSACE), "{}", h.name);
        }
    }

    #[test]
    fn communes_of_the_three_local_law_departments_use_the_alsace_moselle_calendar() {
        let cases = [
            ("57463", ALSACE), // Metz
            ("67482", ALSACE), // Strasbourg
            ("68224", ALSACE), // Mulhouse
            ("45234", METRO),  // Orléans
            ("54395", METRO),  // Nancy: Lorraine, but not Moselle
            ("2A004", METRO),
            ("97411", METRO),
        ];
        for (code, area) in cases {
            assert_eq!(HolidayArea::for_commune(&InseeCode::parse(code).unwrap()), area, "{code}");
        }
        for a in [METRO, ALSACE] {
            assert_eq!(HolidayArea::parse(a.as_str()), Some(a));
        }
    }

    #[test]
    fn two_holidays_on_one_day_are_both_listed() {
        let may_first: Vec<_> = public_holidays(2008, METRO)
            .into_iter()
            .filter(|h| h.date == date!(2008 - 05 - 01))
            .map(|h| h.name)
            .collect();
        assert_eq!(may_first, ["Fête du Travail", "Ascension"]);
    }

    #[test]
    fn working_days_skip_weekends_and_holidays() {
        // (start, n, area, expected, why)
        let cases = [
            (date!(2026 - 03 - 06), 1, METRO, date!(2026 - 03 - 09), "Friday + 1 is Monday"),
            (date!(2026 - 03 - 07), 1, METRO, date!(2026 - 03 - 09), "Saturday + 1 is Monday"),
            (date!(2026 - 03 - 02), 10, METRO, date!(2026 - 03 - 16), "two plain weeks"),
            (date!(2026 - 03 - 05), 0, METRO, date!(2026 - 03 - 05), "zero days is the same day"),
            (date!(2026 - 07 - 13), 1, METRO, date!(2026 - 07 - 15), "over 14 July"),
            (date!(2026 - 07 - 10), 2, METRO, date!(2026 - 07 - 15), "weekend then 14 July"),
            // Ascension Thursday 14 May and Whit Monday 25 May 2026, plus 1 and 8 May.
            (date!(2026 - 05 - 13), 1, METRO, date!(2026 - 05 - 15), "over Ascension"),
            (date!(2026 - 05 - 22), 1, METRO, date!(2026 - 05 - 26), "over Whit Monday"),
            (date!(2026 - 04 - 30), 10, METRO, date!(2026 - 05 - 19), "May bridges"),
            (date!(2026 - 05 - 13), 10, METRO, date!(2026 - 05 - 29), "Ascension to Pentecost"),
            // Christmas 2026 is a Friday; St Stephen is a Saturday, so it changes nothing...
            (date!(2026 - 12 - 24), 1, ALSACE, date!(2026 - 12 - 28), "2026: 26 Dec is Saturday"),
            // ...but in 2025 Christmas is a Thursday and St Stephen a Friday.
            (date!(2025 - 12 - 24), 1, METRO, date!(2025 - 12 - 26), "Metropole works on 26 Dec"),
            (date!(2025 - 12 - 24), 1, ALSACE, date!(2025 - 12 - 29), "Alsace rests on 26 Dec"),
            (date!(2025 - 12 - 19), 10, METRO, date!(2026 - 01 - 06), "over Christmas, Metropole"),
            (date!(2025 - 12 - 19), 10, ALSACE, date!(2026 - 01 - 07), "over Christmas, Alsace"),
            (date!(2026 - 04 - 02), 1, METRO, date!(2026 - 04 - 03), "Good Friday is worked"),
            (date!(2026 - 04 - 02), 1, ALSACE, date!(2026 - 04 - 07), "Good Friday to Easter"),
        ];
        for (start, n, area, expected, why) in cases {
            assert_eq!(add_working_days(start, n, area), expected, "{why}");
            assert_eq!(working_days_between(start, expected, area), n, "{why}");
        }
    }

    #[test]
    fn counting_working_days_inverts_adding_them() {
        let mut start = date!(2025 - 12 - 01);
        while start < date!(2027 - 01 - 31) {
            for area in [METRO, ALSACE] {
                for n in [1, 5, 10, 30] {
                    let end = add_working_days(start, n, area);
                    assert_eq!(working_days_between(start, end, area), n, "{start} + {n}");
                    assert!(is_working_day(end, area));
                }
            }
            start = start.next_day().unwrap();
        }
        assert_eq!(working_days_between(date!(2026 - 03 - 10), date!(2026 - 03 - 02), METRO), 0);
        assert_eq!(working_days_between(date!(2026 - 03 - 10), date!(2026 - 03 - 10), METRO), 0);
    }

    #[test]
    fn months_are_added_de_quantieme_a_quantieme_and_clamped_to_month_end() {
        let cases = [
            (date!(2026 - 03 - 15), 2, date!(2026 - 05 - 15)),
            (date!(2026 - 01 - 31), 1, date!(2026 - 02 - 28)),
            (date!(2028 - 01 - 31), 1, date!(2028 - 02 - 29)),
            (date!(2026 - 03 - 31), 1, date!(2026 - 04 - 30)),
            (date!(2026 - 12 - 31), 2, date!(2027 - 02 - 28)),
            (date!(2026 - 11 - 30), 3, date!(2027 - 02 - 28)),
            (date!(2026 - 02 - 28), 1, date!(2026 - 03 - 28)),
            (date!(2026 - 05 - 10), 0, date!(2026 - 05 - 10)),
            (date!(2026 - 05 - 10), 24, date!(2028 - 05 - 10)),
            (date!(9999 - 12 - 01), 1, Date::MAX),
        ];
        for (start, n, expected) in cases {
            assert_eq!(add_months(start, n), expected, "{start} + {n} months");
        }
    }
}
