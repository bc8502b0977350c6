//! `rotation_schedule`: standard five-field cron expressions (minute, hour, day of month,
//! month, day of week) and the `@hourly`/`@daily`/`@weekly`/`@monthly`/`@yearly` shorthands,
//! evaluated in UTC, as OpenBao's static roles take them.

use coffer_sdk::{LogicalError, Result};
use time::OffsetDateTime;

/// A parsed schedule: the allowed values of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    /// Both day fields restricted: a day matches when either does (cron's rule).
    day_or: bool,
}

fn bad(expr: &str, why: &str) -> LogicalError {
    LogicalError::bad_request(format!("invalid rotation_schedule {expr:?}: {why}"))
}

fn field(expr: &str, text: &str, min: u32, max: u32) -> Result<(Vec<bool>, bool)> {
    let mut set = vec![false; (max + 1) as usize];
    let star = text == "*" || text == "?";
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>().map_err(|e| bad(expr, "a bad step").with_source(e)).and_then(|s| {
                    if s > 0 {
                        Ok(s)
                    } else {
                        Err(bad(expr, "a step of 0"))
                    }
                })?,
            ),
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = a.parse::<u32>().map_err(|e| bad(expr, "a bad range").with_source(e))?;
            let b = b.parse::<u32>().map_err(|e| bad(expr, "a bad range").with_source(e))?;
            (a, b)
        } else {
            let v = range
                .parse::<u32>()
                .map_err(|e| bad(expr, "a field is not a number, range, list or step").with_source(e))?;
            (v, if part.contains('/') { max } else { v })
        };
        // Sunday may be written 7 as well as 0.
        let hi = if max == 6 && hi == 7 { 7 } else { hi };
        if lo < min || hi > max.max(if max == 6 { 7 } else { max }) || lo > hi {
            return Err(bad(expr, "a value is out of range"));
        }
        let mut v = lo;
        while v <= hi {
            set[(v % if max == 6 { 7 } else { max + 1 }) as usize] = true;
            v += step;
        }
    }
    Ok((set, star))
}

impl Schedule {
    /// Parses `expr`; errors name the expression and what is wrong.
    pub fn parse(expr: &str) -> Result<Schedule> {
        let e = expr.trim();
        let text = match e {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let f: Vec<&str> = text.split_whitespace().collect();
        if f.len() != 5 {
            return Err(bad(expr, "expected five fields: minute hour day-of-month month day-of-week"));
        }
        let (minutes, _) = field(expr, f[0], 0, 59)?;
        let (hours, _) = field(expr, f[1], 0, 23)?;
        let (days, dstar) = field(expr, f[2], 1, 31)?;
        let (months, _) = field(expr, f[3], 1, 12)?;
        let (weekdays, wstar) = field(expr, f[4], 0, 6)?;
        Ok(Schedule { minutes, hours, days, months, weekdays, day_or: !dstar && !wstar })
    }

    fn day_matches(&self, t: OffsetDateTime) -> bool {
        let d = self.days[t.day() as usize];
        let w = self.weekdays[t.weekday().number_days_from_sunday() as usize];
        let m = self.months[u8::from(t.month()) as usize];
        m && if self.day_or { d || w } else { d && w }
    }

    /// The first matching minute strictly after `after` (Unix seconds), within five years.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let mut t = OffsetDateTime::from_unix_timestamp(after - after.rem_euclid(60) + 60).ok()?;
        let limit = after + 5 * 366 * 86400;
        while t.unix_timestamp() <= limit {
            if !self.day_matches(t) {
                // Jump to the next midnight.
                let secs = i64::from(t.hour()) * 3600 + i64::from(t.minute()) * 60;
                t = OffsetDateTime::from_unix_timestamp(t.unix_timestamp() - secs + 86400).ok()?;
                continue;
            }
            if !self.hours[t.hour() as usize] {
                t = OffsetDateTime::from_unix_timestamp(t.unix_timestamp() - i64::from(t.minute()) * 60 + 3600).ok()?;
                continue;
            }
            if self.minutes[t.minute() as usize] {
                return Some(t.unix_timestamp());
            }
            t = OffsetDateTime::from_unix_timestamp(t.unix_timestamp() + 60).ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_find_the_next_matching_minute_in_utc() {
        // 2026-01-01T00:00:00Z is a Thursday.
        let base = 1_767_225_600;
        assert_eq!(Schedule::parse("*/15 * * * *").unwrap().next_after(base), Some(base + 900));
        assert_eq!(Schedule::parse("@hourly").unwrap().next_after(base + 1), Some(base + 3600));
        assert_eq!(Schedule::parse("30 2 * * *").unwrap().next_after(base), Some(base + 2 * 3600 + 1800));
        // Next Sunday (day 0 or 7) at midnight: 2026-01-04.
        assert_eq!(Schedule::parse("0 0 * * 0").unwrap().next_after(base), Some(base + 3 * 86400));
        assert_eq!(Schedule::parse("0 0 * * 7").unwrap().next_after(base), Some(base + 3 * 86400));
        assert_eq!(Schedule::parse("0 0 1 2 *").unwrap().next_after(base), Some(base + 31 * 86400));
        for bad in ["* * * *", "61 * * * *", "a * * * *", "*/0 * * * *", "5-1 * * * *"] {
            assert!(Schedule::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
