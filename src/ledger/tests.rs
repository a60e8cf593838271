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

#[path = "../../tests/common/pg.rs"]
mod pg;

/// One ledger, in one of the stores: the same tests run against each.
enum Ledger {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Ledger {
    /// A store on this ledger (each call a new connection, as another run's).
    fn open(&self) -> Box<dyn Store> {
        match self {
            Ledger::Sqlite(dir) => Box::new(open_in(dir)),
            Ledger::Postgres(url) => {
                let target = postgres::Target::with_password(url, pg::PASSWORD).expect("target");
                Box::new(Postgres::open(&target).expect("open postgres"))
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Ledger::Sqlite(_) => "sqlite",
            Ledger::Postgres(_) => "postgres",
        }
    }
}

/// A fresh ledger in each store there is here (PostgreSQL when its server binaries
/// are installed: see `tests/common/pg.rs`).
fn ledgers() -> Vec<Ledger> {
    let mut all = vec![Ledger::Sqlite(tempfile::tempdir().unwrap())];
    if let Some(cluster) = pg::shared() {
        all.push(Ledger::Postgres(cluster.database()));
    }
    all
}

#[test]
fn a_claim_is_seen_by_another_campaign_but_not_by_its_own() {
    for ledger in ledgers() {
        eprintln!("{}", ledger.name());
        a_claim_is_seen_by_another_campaign_but_not_by_its_own_in(&ledger);
    }
}

fn a_claim_is_seen_by_another_campaign_but_not_by_its_own_in(ledger: &Ledger) {
    let mut a = ledger.open();
    a.begin().unwrap();
    a.claim(&[entry("k1", "573001", "/a.results.csv", 100)])
        .unwrap();
    a.commit().unwrap();
    let mut b = ledger.open();
    let seen = b
        .seen("/b.results.csv", &none(), &["k1", "k2"], &[], 0, None)
        .unwrap();
    assert!(seen.by_key["k1"].campaign.ends_with("/a.results.csv"));
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
    assert!(unknown.by_key["k1"].campaign.ends_with("/a.results.csv"));
    // Outside the window: not seen.
    let old = b
        .seen("/b.results.csv", &none(), &["k1"], &[], 101, None)
        .unwrap();
    assert!(old.by_key.is_empty());
}

#[test]
fn settling_sets_outcomes_marks_in_flight_unknown_and_releases_the_rest() {
    for ledger in ledgers() {
        eprintln!("{}", ledger.name());
        settling_in(&ledger);
    }
}

fn settling_in(ledger: &Ledger) {
    let mut s = ledger.open();
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
    for ledger in ledgers() {
        eprintln!("{}", ledger.name());
        two_writers_in(&ledger);
    }
}

fn two_writers_in(ledger: &Ledger) {
    let mut a = ledger.open();
    let mut b = ledger.open();
    let mut b2 = ledger.open();
    a.begin().unwrap();
    // While a holds the lock, b waits; past the timeout it fails, it never reads stale.
    let handle = std::thread::spawn(move || {
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
    for ledger in ledgers() {
        eprintln!("{}", ledger.name());
        forget_and_prune_in(&ledger);
    }
}

fn forget_and_prune_in(ledger: &Ledger) {
    let mut s = ledger.open();
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
    for ledger in ledgers() {
        eprintln!("{}", ledger.name());
        young_claims_survive_in(&ledger, now);
    }
}

fn young_claims_survive_in(ledger: &Ledger, now: i64) {
    use std::time::Duration;
    let s = |n: u64| Duration::from_secs(n);
    let mut st = ledger.open();
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

/// Many runs at once claiming the same message, and the last message a cap allows to
/// one number: each checks and claims in one transaction; exactly one wins each.
#[test]
fn runs_claiming_at_once_one_wins_the_message_and_the_cap() {
    for ledger in ledgers() {
        eprintln!("{}", ledger.name());
        // Opened here, one after another (SQLite makes a new file once per process).
        let stores: Vec<_> = (0..6).map(|_| ledger.open()).collect();
        let runs: Vec<_> = stores
            .into_iter()
            .enumerate()
            .map(|(i, mut s)| {
                std::thread::spawn(move || {
                    let campaign = format!("/run{i}.results.csv");
                    // The same message ("same") and, under a cap of 1, a different one
                    // to the same number ("k{i}" to 573002).
                    let keys = ["same".to_owned(), format!("k{i}")];
                    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                    s.begin().unwrap();
                    let seen = s
                        .seen(&campaign, &none(), &keys, &["573001", "573002"], 0, Some(0))
                        .unwrap();
                    let mut claims = Vec::new();
                    if !seen.by_key.contains_key("same") {
                        claims.push(entry("same", "573001", &campaign, 100));
                    }
                    if !seen.by_phone.contains_key("573002") {
                        claims.push(entry(&format!("k{i}"), "573002", &campaign, 100));
                    }
                    s.claim(&claims).unwrap();
                    s.commit().unwrap();
                    claims.len()
                })
            })
            .collect();
        let won: usize = runs.into_iter().map(|r| r.join().unwrap()).sum();
        assert_eq!(
            won,
            2,
            "{}: one claim of the message, one under the cap",
            ledger.name()
        );
        let all = ledger.open().history(None, 0).unwrap();
        assert_eq!(all.iter().filter(|e| e.key == "same").count(), 1);
        assert_eq!(all.iter().filter(|e| e.telephone == "573002").count(), 1);
    }
}

#[test]
fn a_pgpass_line_matches_as_libpq_reads_it() {
    let text = "# comment\n\
        other:5432:*:ana:nope\n\
        db.example:*:team:ana:pa\\:ss\n\
        *:*:*:*:fallback\n";
    assert_eq!(
        postgres::pgpass_lookup(text, &["db.example", "5432", "team", "ana"]).as_deref(),
        Some("pa:ss")
    );
    assert_eq!(
        postgres::pgpass_lookup(text, &["db2", "5432", "x", "bo"]).as_deref(),
        Some("fallback")
    );
    assert_eq!(
        postgres::pgpass_lookup("a:b:c\n", &["a", "b", "c", "d"]),
        None
    );
}

#[test]
fn a_url_with_a_password_is_refused_without_repeating_it() {
    crate::i18n::with_lang(crate::i18n::Lang::En, || {
        let err = postgres::check_url("postgres://ana:hunter2@db.example/team").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("PGPASSWORD"), "{err}");
        assert!(postgres::check_url("postgres://ana@db.example/team").is_ok());
        assert!(postgres::check_url("mysql://ana@db.example/team").is_err());
    });
}

#[test]
fn the_schema_is_versioned_and_a_newer_one_refused() {
    let Some(cluster) = pg::shared() else {
        return;
    };
    let url = cluster.database();
    let target = postgres::Target::with_password(&url, pg::PASSWORD).unwrap();
    assert!(
        Postgres::open_existing(&target).unwrap().is_none(),
        "a database without the schema is no ledger yet: nothing is made"
    );
    let mut store = Postgres::open(&target).unwrap();
    assert_eq!(
        store.migrate().unwrap(),
        (postgres::SCHEMA_VERSION, postgres::SCHEMA_VERSION)
    );
    let db = url.rsplit('/').next().unwrap();
    cluster.psql(db, "UPDATE wolkvox_schema SET version = 99");
    let err = Postgres::open(&target).err().expect("refused").to_string();
    assert!(err.contains("99"), "{err}");
}

/// A connection the server closed while a run sent (idle for hours, a firewall, a
/// restart) is made again when the run settles its claims.
#[test]
fn a_connection_closed_meanwhile_is_made_again_to_settle() {
    let Some(cluster) = pg::shared() else {
        return;
    };
    let url = cluster.database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let target = postgres::Target::with_password(&url, pg::PASSWORD).unwrap();
    let mut s = Postgres::open(&target).unwrap();
    s.begin().unwrap();
    s.claim(&[entry("k", "573001", "/c", 1)]).unwrap();
    s.commit().unwrap();
    cluster.psql(
        &db,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{db}' AND pid <> pg_backend_pid()"
        ),
    );
    let mut settled = Settled::default();
    settled.outcomes.insert("k".into(), (Mark::Sent, 5));
    s.settle("/c", &settled).unwrap();
    assert_eq!(s.history(None, 0).unwrap()[0].mark, Mark::Sent);
}
