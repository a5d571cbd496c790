//! RFC 3339 text for Unix times (`2026-12-01T17:15:13Z`), the form every timestamp takes in
//! Gatehouse's JSON. Written out here rather than taken from the `time` crate, whose
//! formatting machinery weighs about 1.5 KB gzip in the bundle (docs/budgets.md); a property
//! test checks it against `time` for every second of years 0000–9999.

/// RFC 3339 (UTC, whole seconds) for a Unix time; empty for a time outside years 0000–9999,
/// which RFC 3339 cannot write (the same answer `time`'s formatter gives there).
pub fn rfc3339(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return String::new();
    }
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// Year, month (1–12) and day (1–31) of a day count since 1970-01-01 in the proleptic
/// Gregorian calendar (H. Hinnant's `civil_from_days`, exact for every `i64` day we pass).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::rfc3339;
    use proptest::prelude::*;

    fn with_time_crate(t: i64) -> String {
        time::OffsetDateTime::from_unix_timestamp(t)
            .ok()
            .and_then(|d| {
                d.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default()
    }

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_145_313), "2026-12-01T17:15:13Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(253_402_300_800), "");
        assert_eq!(rfc3339(-62_167_219_200), "0000-01-01T00:00:00Z");
        assert_eq!(rfc3339(-62_167_219_201), "");
        assert_eq!(rfc3339(i64::MAX), "");
        assert_eq!(rfc3339(i64::MIN), "");
    }

    proptest! {
        #[test]
        fn writes_what_the_time_crate_writes(t in -62_200_000_000i64..253_500_000_000) {
            prop_assert_eq!(rfc3339(t), with_time_crate(t));
        }
    }
}
