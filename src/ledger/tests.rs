use super::*;

fn entry(key: &str, phone: &str, campaign: &str, at: i64) -> Entry {
    Entry {
        key: key.into(),
        telephone: phone.into(),
        kind: "free".into(),
        excerpt: "Hola".into(),
        connector: "1".into(),
        at,
        mark: Mark::Pending,
        campaign: campaign.into(),
        list: "/l.csv".into(),
        row: 1,
    }
}

fn open_in(dir: &tempfile::TempDir) -> Sqlite {
    Sqlite::open(&dir.path().join("state").join("ledger.sqlite3")).expect("open")
}

#[test]
fn a_claim_is_seen_by_another_campaign_but_not_by_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = open_in(&dir);
    a.begin().unwrap();
    a.claim(&[entry("k1", "573001", "/a.results.csv", 100)])
        .unwrap();
    a.commit().unwrap();
    let mut b = open_in(&dir);
    let seen = b
        .seen("/b.results.csv", &none(), &["k1", "k2"], &[], 0, None)
        .unwrap();
    assert_eq!(seen.by_key["k1"].campaign, "/a.results.csv");
    assert_eq!(seen.by_key["k1"].mark, Mark::Pending);
    assert!(!seen.by_key.contains_key("k2"));
    let known: std::collections::HashSet<String> = ["k1".to_owned()].into();
    let own = b
        .seen("/a.results.csv", &known, &["k1"], &[], 0, None)
        .unwrap();
    assert!(
        own.by_key.is_empty(),
        "own campaign, known to its journal, is the journal's business"
    );
    assert!(own.own.contains_key("k1"));
    // Its own entry the journal does not know (results moved away): a repeat.
    let unknown = b
        .seen("/a.results.csv", &none(), &["k1"], &[], 0, None)
        .unwrap();
    assert_eq!(unknown.by_key["k1"].campaign, "/a.results.csv");
    // Outside the window: not seen.
    let old = b
        .seen("/b.results.csv", &none(), &["k1"], &[], 101, None)
        .unwrap();
    assert!(old.by_key.is_empty());
}

#[test]
fn settling_sets_outcomes_marks_in_flight_unknown_and_releases_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_in(&dir);
    s.begin().unwrap();
    s.claim(&[
        entry("sent", "1", "/c", 1),
        entry("flight", "2", "/c", 1),
        entry("never", "3", "/c", 1),
    ])
    .unwrap();
    s.commit().unwrap();
    let mut settled = Settled::default();
    settled.outcomes.insert("sent".into(), (Mark::Sent, 5));
    settled.in_flight.insert("flight".into());
    s.settle("/c", &settled).unwrap();
    let all = s.history(None, 0).unwrap();
    let mark = |k: &str| all.iter().find(|e| e.key == k).map(|e| e.mark);
    assert_eq!(mark("sent"), Some(Mark::Sent));
    assert_eq!(mark("flight"), Some(Mark::Unknown));
    assert_eq!(mark("never"), None, "a claim that never left is released");
}

#[test]
fn two_writers_serialize_on_the_claim() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = open_in(&dir);
    let mut b = open_in(&dir);
    a.begin().unwrap();
    // While a holds the lock, b waits; past the timeout it fails, it never reads stale.
    let path = dir.path().join("state").join("ledger.sqlite3");
    let handle = std::thread::spawn(move || {
        let mut b2 = Sqlite::open(&path).unwrap();
        b2.begin().unwrap();
        let seen = b2.seen("/b", &none(), &["k"], &[], 0, None).unwrap();
        b2.rollback();
        seen.by_key.contains_key("k")
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    a.claim(&[entry("k", "1", "/a", 1)]).unwrap();
    a.commit().unwrap();
    assert!(
        handle.join().unwrap(),
        "the second run sees the first one's claim"
    );
    b.rollback();
}

#[cfg(unix)]
#[test]
fn the_ledger_and_its_folder_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let _s = open_in(&dir);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("state")), 0o700);
    assert_eq!(
        mode(&dir.path().join("state").join("ledger.sqlite3")),
        0o600
    );
}

#[test]
fn a_file_that_is_not_a_ledger_is_refused_naming_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let err = Sqlite::open(&path).err().expect("refused").to_string();
    assert!(err.contains("--no-ledger"), "{err}");
    assert!(err.contains("ledger.sqlite3"), "{err}");
}

#[test]
fn forget_and_prune_erase() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_in(&dir);
    let mut e = entry("k", "573001", "/c", 10);
    e.mark = Mark::Sent;
    let mut f = entry("k2", "573002", "/c", 1_000);
    f.mark = Mark::Sent;
    assert_eq!(s.import(&[e.clone(), f]).unwrap(), 2);
    assert_eq!(s.import(&[e]).unwrap(), 0, "import keeps what is there");
    assert_eq!(s.prune(500, 500).unwrap(), 1);
    assert_eq!(s.forget("573002").unwrap(), 1);
    assert!(s.history(None, 0).unwrap().is_empty());
}

#[test]
fn caps_parse() {
    assert_eq!(
        Cap::parse("2/24h").unwrap(),
        Cap {
            count: 2,
            per: std::time::Duration::from_secs(86_400)
        }
    );
    for bad in ["2", "0/1h", "x/1h", "2/0s", "2/soon"] {
        assert!(Cap::parse(bad).is_err(), "{bad}");
    }
}

fn none() -> std::collections::HashSet<String> {
    std::collections::HashSet::new()
}

#[test]
fn pruning_never_reaches_into_the_repeat_window_nor_young_claims() {
    use std::time::Duration;
    let (now, s) = (10_000_000, |n: u64| Duration::from_secs(n));
    // keep 1 s, window 1 h: entries within the hour stay; claims a week.
    assert_eq!(
        super::prune_limits(now, s(1), s(3600)),
        (now - 3600, now - 7 * 86_400)
    );
    // keep 30 days: both by keep.
    assert_eq!(
        super::prune_limits(now, s(30 * 86_400), s(3600)),
        (now - 30 * 86_400, now - 30 * 86_400)
    );
    // A claim younger than the floor survives a prune; a settled entry as old does not.
    let dir = tempfile::tempdir().unwrap();
    let mut st = open_in(&dir);
    st.begin().unwrap();
    st.claim(&[entry("live", "573001", "/running", 9_990_000)])
        .unwrap();
    st.commit().unwrap();
    let mut old = entry("old", "573002", "/done", 9_990_000);
    old.mark = Mark::Sent;
    st.import(&[old]).unwrap();
    let (before, claims_before) = super::prune_limits(now, s(1), s(1));
    assert_eq!(st.prune(before, claims_before).unwrap(), 1);
    let left = st.history(None, 0).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].key, "live");
}

#[test]
fn periods_and_files_read_as_words() {
    use std::time::Duration;
    crate::i18n::with_lang(crate::i18n::Lang::En, || {
        assert_eq!(super::period_words(Duration::from_secs(86_400)), "1 day");
        assert_eq!(super::period_words(Duration::from_secs(7_200)), "2 hours");
        assert_eq!(
            super::period_words(Duration::from_secs(5_400)),
            "90 minutes"
        );
        let files: Vec<String> = (1..=5).map(|i| format!("r{i}.csv")).collect();
        assert_eq!(super::files_named(&files[..2]), "r1.csv, r2.csv");
        assert_eq!(
            super::files_named(&files),
            "r1.csv, r2.csv, r3.csv and 2 more"
        );
    });
    crate::i18n::with_lang(crate::i18n::Lang::Es, || {
        assert_eq!(super::period_words(Duration::from_secs(172_800)), "2 días");
    });
}
