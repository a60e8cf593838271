//! A stateful property test of resuming (issue 10): random sequences of runs on one list,
//! each with random flags (`--resume`, `--retry-failed`, `--retry-unknown`, `--hsm` or
//! not), random faults from the fake (connection resets, 5xx, 503, a spent quota),
//! random interruptions (kill -9, SIGTERM, a double SIGINT, at a random request) and
//! random damage to the journal between runs, and now and then a `reconcile` (against the
//! fake's own record of what it delivered). After every run, checked against the fake's
//! own log:
//!
//! - no message is delivered twice, except to a row that a `--retry-unknown` run
//!   attempted again while it was recorded `unknown`;
//! - no row recorded `sent` is ever sent again;
//! - a run refused with exit 2 sends nothing;
//! - a run that ends by itself (exit 0, 1 or 3, not a second Ctrl-C) leaves exactly one
//!   results line per row;
//! - `reconcile` never calls a delivered message `not_sent`, nor an undelivered one `sent`,
//!   whatever the time zone of the report's dates, of the campaign's config and of the
//!   machine, and however the report shows the texts and phones (trimmed, spaces
//!   collapsed, CRLF as LF, NFD, HTML-escaped, national or `+` phones): issue 26.
//!
//! Runs go now and then to a second list that shares some telephones and their messages
//! with the first (issue 27: the send ledger, one per sequence), with the same random
//! flags, faults and interruptions: a message (telephone, API and text) is still
//! delivered at most once across both campaigns, with the same `--retry-unknown`
//! exception.
//!
//! `RESUME_SEQUENCES` sets how many sequences run (default 24, about half a minute on a
//! 2-core machine); `RESILIENCE_SEED` replays one.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cdr::{self, Alteration};
use common::*;

const TOKEN: &str = "tok-prop-1";

/// What the fake does to each send, changed between runs.
#[derive(Clone, Copy, Default)]
struct Faults {
    /// Percent of sends answered with each fault.
    reset: u64,
    /// Delivered, then the connection drops before the answer: `unknown`, delivered.
    lost_answer: u64,
    server_error: u64,
    unavailable: u64,
    /// Every send is refused with TOKEN LIMIT EXCEEDED.
    quota_spent: bool,
    /// Seed for the per-request draws.
    seed: u64,
}

fn fault_for(f: &Faults, index: usize) -> Option<Reply> {
    if f.quota_spent {
        return Some(Reply::token_limit_exceeded());
    }
    let mut x = f.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let draw = x % 100;
    if draw < f.reset {
        Some(Reply::DropConnection)
    } else if draw < f.reset + f.lost_answer {
        Some(Reply::DeliverThenDrop)
    } else if draw < f.reset + f.lost_answer + f.server_error {
        Some(Reply::api_error(500, "INTERNAL SERVER ERROR", "boom"))
    } else if draw < f.reset + f.lost_answer + f.server_error + f.unavailable {
        Some(Reply::api_error(503, "SERVICE UNAVAILABLE", "busy"))
    } else {
        None
    }
}

/// Statuses of the results file by telephone (empty if it cannot be read).
fn statuses(results: &Path) -> HashMap<String, String> {
    if !results.exists() {
        return HashMap::new();
    }
    let Ok(mut rdr) = csv::Reader::from_path(results) else {
        return HashMap::new();
    };
    let mut out = HashMap::new();
    for r in rdr.records().flatten() {
        if let (Some(t), Some(s)) = (r.get(1), r.get(2)) {
            // The later line of a row wins, as in `results::read`.
            out.insert(t.to_owned(), s.to_owned());
        }
    }
    out
}

/// Telephones whose last journal event is an intent: in flight when a run was killed,
/// which the tool treats as `unknown` though the results file has no line for them.
fn in_flight(journal: &Path) -> HashSet<String> {
    let Ok(bytes) = fs::read(journal) else {
        return HashSet::new();
    };
    let mut last: HashMap<String, Option<String>> = HashMap::new();
    for line in bytes.split(|&b| b == b'\n') {
        let json = match line.iter().position(|&b| b == b' ') {
            Some(i) if line.first() != Some(&b'{') => &line[i + 1..],
            _ => line,
        };
        let Ok(event) = serde_json::from_slice::<serde_json::Value>(json) else {
            continue;
        };
        let key = event["key"].as_str().unwrap_or_default().to_owned();
        match event["event"].as_str() {
            Some("intent") => {
                last.insert(key, event["telephone"].as_str().map(str::to_owned));
            }
            Some("done") => {
                last.insert(key, None);
            }
            _ => {}
        }
    }
    last.into_values().flatten().collect()
}

/// Zones up to 26 hours apart (UTC-12 and UTC+14 included).
const ZONES: [&str; 6] = [
    "UTC",
    "America/Bogota",
    "America/Mexico_City",
    "Asia/Kolkata",
    "Etc/GMT+12",
    "Pacific/Kiritimati",
];

fn pick_zone(rng: &mut Rng) -> &'static str {
    ZONES[rng.below(ZONES.len() as u64) as usize]
}

const ALTERATIONS: [Alteration; 7] = [
    Alteration::Trimmed,
    Alteration::Collapsed,
    Alteration::Lf,
    Alteration::Nfd,
    Alteration::HtmlEscaped,
    Alteration::NationalPhone,
    Alteration::PlusPhone,
];

fn one_sequence(seed: u64) {
    let mut rng = Rng(seed | 1);
    let dir = temp_dir();
    let n = 4 + rng.below(7) as usize;
    let tels = colombian_mobiles(n);
    let mut text = String::from("telephone,message,connector_id,nombre\n");
    // Texts a report may show otherwise: double spaces, a trailing space, a line break,
    // `&` and `<`, an accent.
    let messages: Vec<String> = (0..n)
        .map(|i| {
            if rng.chance(50) {
                format!("\"Hola  {i} & <Ana>,\r\nsu café \"")
            } else {
                format!("Hola {i}")
            }
        })
        .collect();
    for (i, t) in tels.iter().enumerate() {
        text.push_str(&format!("{t},{},1,Ana {i}\n", messages[i]));
    }
    let input_a = write_csv(dir.path(), "lista.csv", &text);
    // The second list: the first `shared` rows of the first (same telephones, same
    // messages), then telephones of its own.
    let shared = 1 + rng.below(n as u64 / 2) as usize;
    let own = colombian_mobiles(n + 4)[n..].to_vec();
    let mut text_b = String::from("telephone,message,connector_id,nombre\n");
    for (i, t) in tels.iter().take(shared).enumerate() {
        text_b.push_str(&format!("{t},{},1,Ana {i}\n", messages[i]));
    }
    for (j, t) in own.iter().enumerate() {
        text_b.push_str(&format!("{t},Hola otra {j},1,Eva {j}\n"));
    }
    let input_b = write_csv(dir.path(), "otra.csv", &text_b);
    let results_a = dir.path().join("lista.out.csv");
    let results_b = dir.path().join("otra.out.csv");
    let rows_of = |b: bool| if b { shared + own.len() } else { n };
    // The report's zone, the campaign's (or none) and the machine's, each at random.
    let report_zone = pick_zone(&mut rng);
    let campaign_zone = if rng.chance(50) {
        format!("[campaign]\ntimezone = \"{}\"\n", pick_zone(&mut rng))
    } else {
        String::new()
    };
    let machine_zone = pick_zone(&mut rng);
    let alterations: Vec<Alteration> = ALTERATIONS
        .iter()
        .copied()
        .filter(|_| rng.chance(30))
        .collect();
    // A ledger of the sequence's own (the sequences of one test would share one).
    let config = write_config(
        dir.path(),
        &format!(
            "[api]\nconnector_id = \"1\"\n[retry]\nmax_attempts = 2\nbase_delay = \"5ms\"\nmax_delay = \"10ms\"\nmax_consecutive_failures = 50\n[ledger]\npath = \"ledger.sqlite3\"\n{campaign_zone}"
        ),
    );
    println!(
        "report in {report_zone}, machine in {machine_zone}, {campaign_zone:?}, report alters {alterations:?}"
    );
    let faults = Arc::new(Mutex::new(Faults::default()));
    let hook_faults = Arc::clone(&faults);
    let behavior = Behavior::ok()
        .cdr_zone(report_zone)
        .cdr_transform(cdr::altered(&alterations));
    let fake = FakeWolkvox::start(behavior.latency(20).hook(move |req| {
        if req.api == API_TOKEN_INFO || req.api == API_CDR_3 {
            return None;
        }
        let f = *hook_faults.lock().unwrap();
        fault_for(&f, req.index)
    }));
    let hsm_campaign = rng.chance(30);
    // Messages (telephone, API, text) delivered so far.
    let mut delivered_before: HashSet<String> = HashSet::new();
    // Whether each campaign has had a run (its first run is not a resume).
    let mut started = [false, false];
    let runs = 3 + rng.below(4);
    // Whether the first list's last run ended with no request in flight (so every
    // attempted row has a results line). A journal cut after a kill could lose the only
    // record of a request that was in flight, which nothing else knows: its journal is
    // only damaged after a clean run of its own (one of the other list says nothing of it).
    let mut clean_last = false;
    // At most one reconcile a sequence: a second within 5 minutes would wait (Wolkvox's rule).
    let mut reconciled = false;
    let runs = runs + rng.below(3);
    for run_no in 0..runs {
        // The second list now and then (never first).
        let second = run_no > 0 && rng.chance(35);
        let (input, results) = if second {
            (&input_b, &results_b)
        } else {
            (&input_a, &results_a)
        };
        let journal = journal_path(results);
        let n = rows_of(second);
        if run_no > 0 && !reconciled && !second && rng.chance(50) {
            reconciled = true;
            let own = tels
                .iter()
                .zip(&messages)
                .map(|(t, m)| {
                    let sent = if hsm_campaign {
                        (API_SEND_TEMPLATE, None)
                    } else {
                        // The CSV field without its quotes, as sent.
                        (API_SEND_MESSAGE, Some(m.trim_matches('"').to_owned()))
                    };
                    (t.clone(), sent)
                })
                .collect();
            reconcile_and_check(&own, results, &config, &fake, machine_zone, seed, run_no);
        }
        // The journal is ahead of the results file: after a second Ctrl-C or a kill, a
        // row's last results line can be older than the intent of a request in flight.
        let mut before = statuses(results);
        for tel in in_flight(&journal) {
            before.insert(tel, "unknown".into());
        }
        let requests_before = fake.send_requests().len();
        let resume = started[usize::from(second)] || rng.chance(10);
        started[usize::from(second)] = true;
        let retry_failed = resume && rng.chance(40);
        let retry_unknown = resume && rng.chance(40);
        let wrong_kind = resume && rng.chance(12);
        let hsm = hsm_campaign != wrong_kind;
        *faults.lock().unwrap() = Faults {
            reset: rng.below(25),
            lost_answer: rng.below(15),
            server_error: rng.below(15),
            unavailable: rng.below(20),
            quota_spent: rng.chance(8),
            seed: rng.next(),
        };
        // Damage the journal between runs, now and then.
        if clean_last && !second && journal.exists() && rng.chance(15) {
            let bytes = fs::read(&journal).unwrap();
            let cut = rng.below(bytes.len() as u64 + 1) as usize;
            let damaged = match rng.below(3) {
                0 => Vec::new(),
                1 => bytes[..cut].to_vec(),
                _ => {
                    let mut b = bytes.clone();
                    b[cut..].fill(0);
                    b
                }
            };
            fs::write(&journal, damaged).unwrap();
        }
        let mut args: Vec<String> = vec![
            "--config".into(),
            config.to_string_lossy().into_owned(),
            "--results".into(),
            results.to_string_lossy().into_owned(),
        ];
        if resume {
            args.push("--resume".into());
        }
        if retry_failed {
            args.push("--retry-failed".into());
        }
        if retry_unknown {
            args.push("--retry-unknown".into());
        }
        if hsm {
            args.extend(["--hsm", "cita", "--hsm-vars", "nombre"].map(String::from));
        }
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut spawned = Some(spawn_send(input, &fake, TOKEN, &arg_refs));
        let interruption = rng.below(5);
        let at = requests_before + 1 + rng.below(n as u64) as usize;
        let (mut killed, mut double_int) = (false, false);
        // Wait for the chosen request, unless the run ends first.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let reached = loop {
            if fake.send_requests().len() >= at {
                break true;
            }
            if !spawned.as_mut().is_some_and(Spawned::running)
                || std::time::Instant::now() > deadline
            {
                break false;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if interruption < 3 && reached {
            match interruption {
                0 => {
                    if let Some(s) = spawned.take() {
                        s.kill_9_or_reap();
                    }
                    killed = true;
                }
                1 => spawned.iter().for_each(|s| s.signal("TERM")),
                _ => {
                    spawned.iter().for_each(|s| {
                        s.signal("INT");
                        s.signal("INT");
                    });
                    double_int = true;
                }
            }
        }
        let code = match spawned {
            None => -1,
            Some(spawned) => {
                let (_, out) = spawned.wait(Duration::from_secs(60));
                assert!(
                    !out.stderr.contains("panicked"),
                    "seed {seed}, run {run_no}: {}",
                    out.stderr
                );
                out.code
            }
        };
        let context = format!(
            "seed {seed}, run {run_no} (list {}, {}, resume {resume}, retry-failed {retry_failed}, retry-unknown {retry_unknown}, hsm {hsm}, campaign hsm {hsm_campaign}, exit {code})",
            if second { "otra" } else { "lista" },
            match (interruption, reached) {
                (0, true) => "kill -9",
                (1, true) => "SIGTERM",
                (2, true) => "double SIGINT",
                _ => "not interrupted",
            }
        );
        if !second {
            clean_last = !killed && !double_int;
        }
        let new_requests: Vec<Received> = fake.send_requests()[requests_before..].to_vec();
        println!(
            "{context}\n  before: {before:?}\n  sent: {:?}",
            new_requests
                .iter()
                .map(|r| (
                    r.telephone.clone().unwrap_or_default(),
                    r.status,
                    r.delivered
                ))
                .collect::<Vec<_>>()
        );
        if code == 2 {
            assert!(new_requests.is_empty(), "{context}: a refused run sent");
        }
        for r in &new_requests {
            let tel = r.telephone.clone().unwrap_or_default();
            assert_ne!(
                before.get(&tel).map(String::as_str),
                Some("sent"),
                "{context}: {tel} was recorded sent and was sent again"
            );
            if r.delivered && delivered_before.contains(&message_of(r)) {
                assert!(
                    retry_unknown && before.get(&tel).map(String::as_str) == Some("unknown"),
                    "{context}: {} delivered twice (it was {:?} in this campaign)",
                    message_of(r),
                    before.get(&tel)
                );
            }
        }
        for r in &new_requests {
            if r.delivered {
                delivered_before.insert(message_of(r));
            }
        }
        // (A second Ctrl-C exits at once: rows never reached have no line; `report`
        // counts them as never attempted.)
        if matches!(code, 0 | 1 | 3) && !double_int {
            let lines = read_results(results);
            let rows = statuses_by_row(&lines);
            assert_eq!(rows.len(), n, "{context}: {lines:?}");
        }
    }
}

/// A delivery's message: telephone, API and text (or template and variables).
fn message_of(r: &Received) -> String {
    format!(
        "{}|{}|{}|{}",
        r.telephone.as_deref().unwrap_or_default(),
        r.api,
        r.message().unwrap_or_default(),
        r.body
            .get("template_vars")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
    )
}

/// Runs `reconcile --settle-after 0s` and checks its verdicts against what the fake
/// delivered. A damaged journal may refuse it (exit 2): then nothing may have changed.
/// `own`: each telephone of the campaign with the API and text its row is sent with
/// (no text for a template).
fn reconcile_and_check(
    own: &HashMap<String, (&str, Option<String>)>,
    results: &Path,
    config: &Path,
    fake: &FakeWolkvox,
    machine_zone: &str,
    seed: u64,
    run_no: u64,
) {
    let before = fs::read(results).ok();
    let mut c = reconcile_cmd(results, config, fake, TOKEN);
    c.args(["--settle-after", "0s"]).env("TZ", machine_zone);
    let out = run(c);
    let context = format!(
        "seed {seed}, reconcile before run {run_no} (exit {})",
        out.code
    );
    println!("{context}\n  {}", out.stdout.replace('\n', "\n  "));
    assert!(
        !out.stderr.contains("panicked"),
        "{context}: {}",
        out.stderr
    );
    if out.code == 2 {
        assert_eq!(
            fs::read(results).ok(),
            before,
            "{context}: refused, yet changed"
        );
        return;
    }
    // What the fake delivered of this campaign's own messages, read now: a request of
    // a killed run may have been delivered after that run's own snapshot. Another
    // message to the same telephone (the second list's template, say) is not this
    // row's message, and the report tells them apart by their text.
    let delivered: HashSet<String> = fake
        .delivered()
        .iter()
        .filter(|r| {
            let tel = r.telephone.as_deref().unwrap_or_default();
            own.get(tel)
                .is_some_and(|(api, text)| r.api == *api && r.message() == text.as_deref())
        })
        .filter_map(|r| r.telephone.clone())
        .collect();
    for line in out.stdout.lines() {
        let Some(tel) = line.split_whitespace().nth(2) else {
            continue;
        };
        if line.contains("  not_sent: absent") {
            assert!(
                !delivered.contains(tel),
                "{context}: {tel} was delivered: {line}"
            );
        }
        if line.contains("  sent: listed") {
            assert!(
                delivered.contains(tel),
                "{context}: {tel} was never delivered: {line}"
            );
        }
    }
}

#[test]
fn random_sequences_of_runs_never_send_a_message_twice() {
    let sequences: u64 = std::env::var("RESUME_SEQUENCES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let base = seed_from_env();
    for i in 0..sequences {
        let seed = base.wrapping_add(i.wrapping_mul(7919));
        println!("sequence {i}: RESILIENCE_SEED={seed} RESUME_SEQUENCES=1");
        one_sequence(seed);
    }
}
