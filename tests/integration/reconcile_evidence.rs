//! `reconcile` concludes only from evidence (issue 26): a report in another time zone,
//! an error in a 200 answer, pagination, the 60,000 cap, a record it cannot read, an
//! earlier campaign's identical message and a report that shows texts and phones
//! otherwise than as sent must never turn a delivered message into `not_sent`, which
//! the printed `--resume` would send again. Each case sends a campaign to the fake
//! (some rows delivered with their answer lost to a timeout, some lost before reaching
//! it), reconciles against the report the case serves, resumes, and counts deliveries.

use crate::common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cdr::{self, Alteration};
use common::*;
use serde_json::{Value, json};

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Answered 201.
    Sent,
    /// Delivered (listed in the report), its answer lost with the connection: `unknown`.
    Delivered,
    /// The connection drops before any delivery: `unknown`, never delivered.
    Lost,
}

struct Campaign {
    _dir: tempfile::TempDir,
    input: PathBuf,
    results: PathBuf,
    config: PathBuf,
    fake: FakeWolkvox,
    /// Each row's telephone and fate, in list order.
    rows: Vec<(String, Fate)>,
    /// The flags of the campaign's first run, which its resume repeats.
    send_args: Vec<String>,
}

/// Sends `rows` (telephone, text, fate of its request) with `config_extra` added to the
/// config, to a fake whose report is `behavior`.
fn campaign(
    rows: &[(String, String, Fate)],
    behavior: Behavior,
    config_extra: &str,
    send_args: &[&str],
    env: &[(&str, &str)],
) -> Campaign {
    let dir = temp_dir();
    let list: Vec<(&str, &str)> = rows
        .iter()
        .map(|(t, m, _)| (t.as_str(), m.as_str()))
        .collect();
    let input = write_csv(dir.path(), "list.csv", &contacts_csv(&list, "1"));
    // The n-th request to a telephone gets the fate of that telephone's n-th row.
    let mut fates: HashMap<String, Vec<Fate>> = HashMap::new();
    for (t, _, f) in rows {
        fates.entry(t.clone()).or_default().push(*f);
    }
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let fake = FakeWolkvox::start(behavior.hook(move |req| {
        let telephone = req.telephone.clone()?;
        let mut seen = seen.lock().unwrap();
        let n = seen.entry(telephone.clone()).or_default();
        let fate = fates.get(&telephone)?.get(*n).copied();
        *n += 1;
        match fate? {
            Fate::Sent => None,
            Fate::Delivered => Some(Reply::DeliverThenDrop),
            Fate::Lost => Some(Reply::DropConnection),
        }
    }));
    // Each campaign is a world of its own: its own send ledger, beside its config.
    let config = write_config(
        dir.path(),
        &format!(
            "[api]\nconnector_id = \"1\"\n[ledger]\npath = \"ledger.sqlite3\"\n{config_extra}"
        ),
    );
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--config").arg(&config).args(send_args);
    for (k, v) in env {
        c.env(k, v);
    }
    run(c).expect_code(1);
    let results = default_results_path(&input);
    Campaign {
        input,
        results,
        config,
        fake,
        rows: rows.iter().map(|(t, _, f)| (t.clone(), *f)).collect(),
        send_args: send_args.iter().map(|a| a.to_string()).collect(),
        _dir: dir,
    }
}

impl Campaign {
    fn reconcile(&self, env: &[(&str, &str)]) -> Run {
        let mut c = reconcile_cmd(&self.results, &self.config, &self.fake, "tok");
        c.args(["--settle-after", "0s"]);
        for (k, v) in env {
            c.env(k, v);
        }
        run(c)
    }

    fn statuses(&self) -> HashMap<u64, String> {
        statuses_by_row(&read_results(&self.results))
    }

    /// No delivered row was declared `not_sent`, every lost one is `not_sent` or still
    /// `unknown` (for a telephone with one row: copies cannot be told apart), and after
    /// a plain `--resume` no telephone got more messages than rows.
    fn check_no_duplicate(&self, env: &[(&str, &str)]) {
        let st = self.statuses();
        for (i, (t, fate)) in self.rows.iter().enumerate() {
            if self.rows.iter().filter(|(other, _)| other == t).count() > 1 {
                continue;
            }
            let status = st.get(&(i as u64 + 1)).map(String::as_str);
            match fate {
                Fate::Sent | Fate::Delivered => assert!(
                    matches!(status, Some("sent" | "unknown")),
                    "row {} was delivered: {status:?} ({st:?})",
                    i + 1
                ),
                Fate::Lost => assert!(
                    matches!(status, Some("not_sent" | "unknown")),
                    "row {} was lost: {status:?}",
                    i + 1
                ),
            }
        }
        let mut resume = send_cmd(&self.input, &self.fake, "tok");
        resume
            .arg("--config")
            .arg(&self.config)
            .args(&self.send_args)
            .arg("--resume");
        for (k, v) in env {
            resume.env(k, v);
        }
        let _ = run(resume);
        let mut rows_of: HashMap<&str, usize> = HashMap::new();
        for (t, _) in &self.rows {
            *rows_of.entry(t.as_str()).or_default() += 1;
        }
        let mut delivered: HashMap<String, usize> = HashMap::new();
        for t in self.fake.delivered_telephones() {
            *delivered.entry(t).or_default() += 1;
        }
        for (t, n) in &delivered {
            assert!(
                *n <= rows_of.get(t.as_str()).copied().unwrap_or(0),
                "{t} got {n} messages: {delivered:?}"
            );
        }
    }

    fn expect_settled(&self, out: &Run) {
        let st = self.statuses();
        for (i, (_, fate)) in self.rows.iter().enumerate() {
            let want = match fate {
                Fate::Sent | Fate::Delivered => "sent",
                Fate::Lost => "not_sent",
            };
            assert_eq!(
                st.get(&(i as u64 + 1)).map(String::as_str),
                Some(want),
                "row {}: {}\n{}",
                i + 1,
                out.stdout,
                out.stderr
            );
        }
    }
}

const TEXT: &str = "Hola, su pedido está listo";

/// 14 rows: rows 3 and 13 delivered with their answers lost, row 8 lost, the rest sent.
fn rows_3_8_13() -> Vec<(String, String, Fate)> {
    colombian_mobiles(14)
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let fate = match i + 1 {
                3 | 13 => Fate::Delivered,
                8 => Fate::Lost,
                _ => Fate::Sent,
            };
            (t, TEXT.to_owned(), fate)
        })
        .collect()
}

// Case 1: a report in another time zone than the campaign.

#[test]
fn a_report_in_utc_for_a_campaign_in_bogota_settles_every_row_right() {
    let c = campaign(
        &rows_3_8_13(),
        Behavior::ok(),
        "[campaign]\ntimezone = \"America/Bogota\"\n",
        &[],
        &[],
    );
    let out = c.reconcile(&[]);
    c.expect_settled(&out);
    c.check_no_duplicate(&[]);
}

#[test]
fn a_report_in_bogota_for_a_machine_in_mexico_city_without_a_zone_settles_right() {
    let env = [("TZ", "America/Mexico_City")];
    let c = campaign(
        &rows_3_8_13(),
        Behavior::ok().cdr_zone("America/Bogota"),
        "",
        &[],
        &env,
    );
    let out = c.reconcile(&env);
    c.expect_settled(&out);
    c.check_no_duplicate(&env);
}

#[test]
fn a_report_behind_the_campaign_zone_still_confirms_what_it_lists() {
    // The report's dates are 5 hours behind the campaign's: its records look earlier
    // than the attempts until the campaign's own sent rows show the offset.
    let c = campaign(
        &rows_3_8_13(),
        Behavior::ok().cdr_zone("America/Bogota"),
        "[campaign]\ntimezone = \"UTC\"\n",
        &[],
        &[],
    );
    let out = c.reconcile(&[]);
    c.expect_settled(&out);
    c.check_no_duplicate(&[]);
}

// Case 2: an error or a page read as an empty report.

fn error_cases() -> Vec<(&'static str, cdr::Transform)> {
    vec![
        (
            "code 403 as a string",
            Arc::new(cdr::error_body(json!("403"), "TOKEN LIMIT EXCEEDED")),
        ),
        (
            "code 400",
            Arc::new(cdr::error_body(json!(400), "BAD REQUEST")),
        ),
        (
            "code 500",
            Arc::new(cdr::error_body(json!(500), "INTERNAL ERROR")),
        ),
    ]
}

#[test]
fn an_error_in_a_200_answer_changes_nothing() {
    for (case, transform) in error_cases() {
        let mut behavior = Behavior::ok();
        behavior.cdr_transform = Some(transform);
        let c = campaign(&rows_3_8_13(), behavior, "", &[], &[]);
        let before = std::fs::read(&c.results).unwrap();
        let out = c.reconcile(&[]);
        out.expect_code(2);
        assert!(
            out.stderr.contains("Wolkvox refused the report call")
                && out.stderr.contains("nothing was changed"),
            "{case}: {}",
            out.stderr
        );
        assert_eq!(std::fs::read(&c.results).unwrap(), before, "{case}");
        c.check_no_duplicate(&[]);
    }
}

#[test]
fn a_page_of_a_longer_report_proves_no_absence() {
    let c = campaign(
        &rows_3_8_13(),
        Behavior::ok().cdr_transform(cdr::paginated(85_000, 2)),
        "",
        &[],
        &[],
    );
    let out = c.reconcile(&[]);
    out.expect_code(1);
    let st = c.statuses();
    assert_eq!(st[&8], "unknown", "{}", out.stdout);
    // What it lists is still evidence of delivery.
    assert_eq!(st[&3], "sent");
    assert!(
        out.stdout
            .contains("the report has more pages than this answer"),
        "{}",
        out.stdout
    );
    c.check_no_duplicate(&[]);

    // An empty first page of a long report, as the issue saw it.
    let c = campaign(
        &rows_3_8_13(),
        Behavior::ok()
            .cdr_transform(|_| json!({"data": [], "total": 85000, "page": 1, "pages": 2})),
        "",
        &[],
        &[],
    );
    c.reconcile(&[]).expect_code(1);
    assert_eq!(c.statuses()[&8], "unknown");
    c.check_no_duplicate(&[]);
}

// Case 3: the cap, counted on the answer's items.

#[test]
fn an_answer_at_the_cap_with_unreadable_records_proves_no_absence() {
    let c = campaign(
        &rows_3_8_13(),
        Behavior::ok().cdr_transform(cdr::padded(60_000, 10)),
        "",
        &[],
        &[],
    );
    let out = c.reconcile(&[]);
    out.expect_code(1);
    assert_eq!(c.statuses()[&8], "unknown", "{}", out.stdout);
    assert!(
        out.stdout.contains("60,000"),
        "the reason is given: {}",
        out.stdout
    );
    c.check_no_duplicate(&[]);

    // Below the cap, one record it cannot read is enough to prove nothing.
    let c = campaign(
        &rows_3_8_13(),
        Behavior::ok().cdr_transform(cdr::padded(20, 1)),
        "",
        &[],
        &[],
    );
    let out = c.reconcile(&[]);
    out.expect_code(1);
    assert_eq!(c.statuses()[&8], "unknown");
    assert!(
        out.stdout.contains("a record it cannot read"),
        "{}",
        out.stdout
    );
}

// Case 4: an earlier campaign's identical message.

#[test]
fn yesterdays_identical_message_confirms_no_lost_one() {
    let phones = colombian_mobiles(12);
    let text = "Recordatorio: su pago vence pronto";
    let rows: Vec<(String, String, Fate)> = phones
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let fate = if i < 10 { Fate::Lost } else { Fate::Sent };
            (t.clone(), text.to_owned(), fate)
        })
        .collect();
    let yesterday = std::time::SystemTime::now() - Duration::from_secs(24 * 3600);
    let extra: Vec<Value> = phones[..10]
        .iter()
        .map(|t| cdr::record(t, text, yesterday, &jiff::tz::TimeZone::UTC))
        .collect();
    let c = campaign(
        &rows,
        Behavior::ok().cdr_transform(cdr::with_extra(extra)),
        "",
        &[],
        &[],
    );
    let out = c.reconcile(&[]);
    c.expect_settled(&out);
    c.check_no_duplicate(&[]);
}

#[test]
fn one_record_confirms_one_copy_of_a_duplicated_message() {
    let phones = colombian_mobiles(3);
    let rows = vec![
        (phones[0].clone(), TEXT.to_owned(), Fate::Delivered),
        (phones[0].clone(), TEXT.to_owned(), Fate::Lost),
        (phones[1].clone(), TEXT.to_owned(), Fate::Sent),
        (phones[2].clone(), TEXT.to_owned(), Fate::Sent),
    ];
    let c = campaign(&rows, Behavior::ok(), "", &["--allow-duplicates"], &[]);
    let out = c.reconcile(&[]);
    let st = c.statuses();
    let mut copies = vec![st[&1].clone(), st[&2].clone()];
    copies.sort();
    assert_eq!(copies, ["not_sent", "sent"], "{}", out.stdout);
    c.check_no_duplicate(&[]);
    assert_eq!(
        c.fake
            .delivered_telephones()
            .iter()
            .filter(|t| **t == phones[0])
            .count(),
        2,
        "both copies delivered once each, in all"
    );
}

// Case 5: a report that shows texts and phones otherwise than as sent.

#[test]
fn a_report_that_alters_texts_and_phones_still_lists_them() {
    let texts = [
        "Hola  Ana, su cita es el martes ",
        " Pago & saldo: <pendiente>",
        "Línea 1\r\nLínea 2 con acentos: canción",
        "\"Comillas\" y  espacios",
    ];
    let phones = colombian_mobiles(8);
    let rows: Vec<(String, String, Fate)> = phones
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let fate = match i {
                0..=3 => Fate::Delivered,
                4 => Fate::Lost,
                _ => Fate::Sent,
            };
            (t.clone(), texts[i % texts.len()].to_owned(), fate)
        })
        .collect();
    for alterations in [
        &[Alteration::Trimmed, Alteration::Collapsed][..],
        &[Alteration::Lf, Alteration::Nfd],
        &[Alteration::HtmlEscaped, Alteration::NationalPhone],
        &[Alteration::PlusPhone, Alteration::Trimmed],
    ] {
        // National numbers are read with the campaign's country.
        let c = campaign(
            &rows,
            Behavior::ok().cdr_transform(cdr::altered(alterations)),
            "[phone]\ndefault_country = \"CO\"\n",
            &[],
            &[],
        );
        let out = c.reconcile(&[]);
        c.expect_settled(&out);
        c.check_no_duplicate(&[]);
    }
}

#[test]
fn national_phones_match_without_a_default_country_too() {
    let c = campaign(
        &rows_3_8_13(),
        Behavior::ok().cdr_transform(cdr::altered(&[Alteration::NationalPhone])),
        "",
        &[],
        &[],
    );
    let out = c.reconcile(&[]);
    c.expect_settled(&out);
}

#[test]
fn a_report_without_this_campaigns_sent_rows_proves_nothing() {
    // Every row in doubt, none answered: nothing shows the report covers this campaign.
    let rows: Vec<(String, String, Fate)> = colombian_mobiles(3)
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let fate = if i == 0 { Fate::Delivered } else { Fate::Lost };
            (t, TEXT.to_owned(), fate)
        })
        .collect();
    let c = campaign(&rows, Behavior::ok(), "", &[], &[]);
    let out = c.reconcile(&[]);
    out.expect_code(1);
    let st = c.statuses();
    assert_eq!(st[&1], "sent");
    assert_eq!(st[&2], "unknown", "{}", out.stdout);
    assert!(
        out.stdout
            .contains("the report lists none of this campaign's sent rows"),
        "{}",
        out.stdout
    );

    // A report that leaves out one of them (row 1's): it is not complete either.
    let rows = rows_3_8_13();
    let first = rows[0].0.clone();
    let c = campaign(
        &rows,
        Behavior::ok().cdr_transform(move |mut body| {
            if let Some(records) = cdr::records_mut(&mut body) {
                records.retain(|r| r["telephone"] != first.as_str());
            }
            body
        }),
        "",
        &[],
        &[],
    );
    let out = c.reconcile(&[]);
    out.expect_code(1);
    assert_eq!(c.statuses()[&8], "unknown", "{}", out.stdout);
    assert!(out.stdout.contains("does not list"), "{}", out.stdout);
}
