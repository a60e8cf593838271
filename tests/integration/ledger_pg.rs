//! One memory for a whole team (issue 32): the send ledger in PostgreSQL, shared by
//! several processes (hosts), and the same guarantees from a shared SQLite file.
//! The server is a throwaway cluster on 127.0.0.1 (`common::pg`); without PostgreSQL's
//! server binaries these tests print why and pass (`.ci/run` installs them).

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

const TOKEN: &str = "tok-team-1";
const TEXT: &str = "Hola, su pedido está listo para recoger";

/// Where the runs of a test keep their ledger.
enum Shared {
    Postgres(String),
    Sqlite(PathBuf),
}

impl Shared {
    /// The config every run of the test reads (`[ledger] url`, or a file's path).
    fn config(&self, dir: &Path, extra: &str) -> PathBuf {
        let ledger = match self {
            Shared::Postgres(url) => format!("url = \"{url}\""),
            Shared::Sqlite(path) => format!("path = \"{}\"", path.display()),
        };
        write_config(
            dir,
            &format!("[api]\nconnector_id = \"1\"\n\n[ledger]\n{ledger}\n{extra}\n"),
        )
    }
}

/// Both processes' environment: the password, as a team's hosts give it.
const ENV: &[(&str, &str)] = &[("PGPASSWORD", pg::PASSWORD)];

/// Deliveries per (telephone, text).
fn deliveries(fake: &FakeWolkvox) -> HashMap<(String, String), usize> {
    let mut count = HashMap::new();
    for r in fake.delivered() {
        let key = (
            r.telephone.clone().unwrap_or_default(),
            r.message().unwrap_or_default().to_owned(),
        );
        *count.entry(key).or_insert(0) += 1;
    }
    count
}

/// Two `send` processes at once, on two lists sharing 100 phones (the same text),
/// against one ledger: every message is delivered exactly once.
fn two_processes_deliver_each_message_once(shared: &Shared) {
    let dir = temp_dir();
    let config = shared.config(dir.path(), "");
    let tels = colombian_mobiles(300);
    let rows = |range: std::ops::Range<usize>| -> Vec<(&str, &str)> {
        tels[range].iter().map(|t| (t.as_str(), TEXT)).collect()
    };
    let a = write_csv(dir.path(), "a.csv", &contacts_csv(&rows(0..200), "1"));
    let b = write_csv(dir.path(), "b.csv", &contacts_csv(&rows(100..300), "1"));
    let fake = FakeWolkvox::start(Behavior::ok().latency(2));
    let args = ["--config", config.to_str().unwrap()];
    let first = spawn_send_with_env(&a, &fake, TOKEN, &args, ENV);
    let second = spawn_send_with_env(&b, &fake, TOKEN, &args, ENV);
    let (_, out_a) = first.wait(Duration::from_secs(120));
    let (_, out_b) = second.wait(Duration::from_secs(120));
    // The run that finds the shared rows claimed holds them (`held`: exit 4).
    for out in [&out_a, &out_b] {
        assert!(matches!(out.code, 0 | 4), "{}", out.stderr);
    }
    let delivered = deliveries(&fake);
    let twice: Vec<_> = delivered.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(delivered.len(), 300, "every phone once: {}", out_b.stderr);
    // The shared rows went out in one run and are `held` in the other.
    let held = |list: &Path| {
        read_results(&default_results_path(list))
            .iter()
            .filter(|r| r["status"] == "held")
            .count()
    };
    assert_eq!(held(&a) + held(&b), 100);
}

#[test]
fn two_processes_on_lists_sharing_100_phones_deliver_each_message_once_postgres() {
    let Some(cluster) = pg::shared() else {
        return;
    };
    two_processes_deliver_each_message_once(&Shared::Postgres(cluster.database()));
}

#[test]
fn two_processes_on_lists_sharing_100_phones_deliver_each_message_once_sqlite() {
    let dir = temp_dir();
    two_processes_deliver_each_message_once(&Shared::Sqlite(dir.path().join("team.sqlite3")));
}

/// A cap of one message a day per number holds across two processes sending
/// different texts to the same numbers at once.
#[test]
fn a_frequency_cap_holds_across_two_processes() {
    let Some(cluster) = pg::shared() else {
        return;
    };
    let shared = Shared::Postgres(cluster.database());
    let dir = temp_dir();
    let config = shared.config(dir.path(), "max_per_phone = \"1/24h\"");
    let tels = colombian_mobiles(60);
    let list = |name: &str, text: &str| {
        let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), text)).collect();
        write_csv(dir.path(), name, &contacts_csv(&rows, "1"))
    };
    let a = list(
        "promo.csv",
        "Promoción de fin de mes: 20% en toda la tienda",
    );
    let b = list("cobro.csv", "Recordatorio: su factura vence el viernes");
    let fake = FakeWolkvox::start(Behavior::ok().latency(2));
    let args = ["--config", config.to_str().unwrap()];
    let first = spawn_send_with_env(&a, &fake, TOKEN, &args, ENV);
    let second = spawn_send_with_env(&b, &fake, TOKEN, &args, ENV);
    let (_, out_a) = first.wait(Duration::from_secs(120));
    let (_, out_b) = second.wait(Duration::from_secs(120));
    for out in [&out_a, &out_b] {
        assert!(matches!(out.code, 0 | 2 | 4), "{}", out.stderr);
    }
    let mut per_phone: HashMap<String, usize> = HashMap::new();
    for t in fake.delivered_telephones() {
        *per_phone.entry(t).or_insert(0) += 1;
    }
    assert_eq!(per_phone.len(), 60, "{}\n{}", out_a.stderr, out_b.stderr);
    assert!(
        per_phone.values().all(|n| *n == 1),
        "one message a day per number: {per_phone:?}"
    );
}

/// The database stops answering mid-run: the run stops starting requests, exits 3 with
/// the resume command, and every message that went out was claimed; with the database
/// back, --resume sends the rest and nobody twice.
#[test]
fn the_database_stopped_mid_run_stops_the_run_resumably() {
    let Some(cluster) = pg::Cluster::start() else {
        return;
    };
    let url = cluster.database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let dir = temp_dir();
    let config = Shared::Postgres(url).config(dir.path(), "");
    let tels = colombian_mobiles(60);
    let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), TEXT)).collect();
    let input = write_csv(dir.path(), "lista.csv", &contacts_csv(&rows, "1"));
    let fake = FakeWolkvox::start(Behavior::ok().latency(300));
    let args = ["--config", config.to_str().unwrap()];
    let running = spawn_send_with_env(&input, &fake, TOKEN, &args, ENV);
    let deadline = Instant::now() + Duration::from_secs(60);
    while fake.delivered().len() < 2 {
        assert!(Instant::now() < deadline, "no request arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.stop();
    let (_, out) = running.wait(Duration::from_secs(90));
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("was lost while sending"),
        "{}",
        out.stderr
    );
    let to_continue = out
        .stdout
        .lines()
        .find(|l| l.contains("To continue, run:"))
        .unwrap_or_else(|| panic!("no resume command: {}", out.stdout));
    assert!(to_continue.contains("--resume"), "{to_continue}");
    assert!(!out.stderr.contains(pg::PASSWORD), "{}", out.stderr);
    let results = read_results(&default_results_path(&input));
    let sent: Vec<&String> = results
        .iter()
        .filter(|r| r["status"] == "sent")
        .map(|r| &r["telephone"])
        .collect();
    assert!(sent.len() < 60, "the run stopped early: {}", out.stderr);
    assert_eq!(fake.delivered().len(), sent.len(), "recorded what it sent");

    // Every message that left was claimed (and stays claimed: the end's settle could
    // not reach the database).
    cluster.restart();
    let claimed = cluster.psql(
        &db,
        "SELECT telephone FROM wolkvox_claims UNION SELECT telephone FROM wolkvox_messages",
    );
    for phone in fake.delivered_telephones() {
        assert!(
            claimed.lines().any(|l| l == phone),
            "{phone} sent unclaimed"
        );
    }

    let again = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &again, TOKEN);
    c.args(args).arg("--resume").env("PGPASSWORD", pg::PASSWORD);
    let out = run(c);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut all = fake.delivered_telephones();
    all.extend(again.delivered_telephones());
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "nobody twice");
    assert_eq!(all.len(), 60);
}

/// `ledger migrate` creates the schema and says its version; a url with a password is
/// refused naming the key, without repeating the password.
#[test]
fn ledger_migrate_and_a_password_in_the_url() {
    let dir = temp_dir();
    let with_password = write_config(
        dir.path(),
        "[ledger]\nurl = \"postgres://ana:hunter2@127.0.0.1/team\"\n",
    );
    let mut c = cmd();
    c.args(["ledger", "migrate", "--config"])
        .arg(&with_password);
    let out = run(c);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("ledger.url"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);

    let Some(cluster) = pg::shared() else {
        return;
    };
    let url = cluster.database();
    let config = write_config(dir.path(), &format!("[ledger]\nurl = \"{url}\"\n"));
    let mut c = cmd();
    c.args(["ledger", "migrate", "--config"])
        .arg(&config)
        .env("PGPASSWORD", pg::PASSWORD);
    let out = run(c);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("schema version 1 (was 0)"),
        "{}",
        out.stdout
    );
    // A user who may only read and write the tables (not create any) uses it.
    let db = url.rsplit('/').next().unwrap();
    let clerk = format!("clerk_{db}");
    cluster.psql(
        db,
        &format!(
            "CREATE ROLE {clerk} LOGIN PASSWORD 'clerk-pw'; \
             REVOKE CREATE ON SCHEMA public FROM PUBLIC; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {clerk}; \
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {clerk}"
        ),
    );
    let clerk_config = write_named_config(
        dir.path(),
        "clerk.toml",
        &format!("[ledger]\nurl = \"{}\"\n", url.replace(pg::USER, &clerk)),
    );
    let mut c = cmd();
    c.args(["history", "--config"])
        .arg(&clerk_config)
        .env("PGPASSWORD", "clerk-pw");
    let out = run(c);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let tels = colombian_mobiles(3);
    let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), TEXT)).collect();
    let input = write_csv(dir.path(), "clerk.csv", &contacts_csv(&rows, "1"));
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config")
        .arg(&clerk_config)
        .env("PGPASSWORD", "clerk-pw");
    let out = run(c);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(fake.delivered().len(), 3);
    // No password anywhere (no PGPASSWORD, no password file): said so.
    let mut c = cmd();
    c.args(["ledger", "migrate", "--config"])
        .arg(&config)
        .env_remove("PGPASSWORD")
        .env("HOME", dir.path())
        .env_remove("PGPASSFILE");
    let out = run(c);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("asks for a password"), "{}", out.stderr);
    // A wrong password: refused, naming where to give it.
    let mut c = cmd();
    c.args(["ledger", "migrate", "--config"])
        .arg(&config)
        .env("PGPASSWORD", "wrong");
    let out = run(c);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("PGPASSWORD"), "{}", out.stderr);
}

/// `history import LEDGER.sqlite3` moves a person's history into the team's database:
/// what their own runs sent is then held for everyone.
#[test]
fn history_import_moves_a_sqlite_ledger_into_the_team_database() {
    let Some(cluster) = pg::shared() else {
        return;
    };
    let dir = temp_dir();
    let tels = colombian_mobiles(5);
    let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), TEXT)).collect();
    let input = write_csv(dir.path(), "mine.csv", &contacts_csv(&rows, "1"));
    let fake = FakeWolkvox::start(Behavior::ok());
    let own = dir.path().join("own.sqlite3");
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--ledger").arg(&own);
    run(c).expect_code(0);

    let config = Shared::Postgres(cluster.database()).config(dir.path(), "");
    let mut c = cmd();
    c.args(["history", "import"])
        .arg(&own)
        .arg("--config")
        .arg(&config)
        .env("PGPASSWORD", pg::PASSWORD);
    let out = run(c);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("5 entries added"), "{}", out.stdout);

    // Another list with the same messages, against the team's database: held (rule 3).
    let other = write_csv(dir.path(), "theirs.csv", &contacts_csv(&rows, "1"));
    let again = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&other, &again, TOKEN);
    c.arg("--config")
        .arg(&config)
        .env("PGPASSWORD", pg::PASSWORD);
    let out = run(c);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(again.delivered().is_empty());
    let mut c = cmd();
    c.arg("history")
        .arg(&tels[0])
        .arg("--config")
        .arg(&config)
        .env("PGPASSWORD", pg::PASSWORD);
    let out = run(c);
    assert!(out.stdout.contains("mine.results.csv"), "{}", out.stdout);
}

/// `sslmode=require` verifies the database's certificate with the API's rules: a
/// certificate of the company's CA is trusted only when `SSL_CERT_FILE` names the CA.
#[test]
fn tls_to_the_database_trusts_what_the_api_trusts() {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "wolkvox-dispatch test CA");
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let Some(cluster) = pg::Cluster::start_with_tls(Some((&server.pem(), &key.serialize_pem())))
    else {
        return;
    };
    let dir = temp_dir();
    let ca_file = dir.path().join("company-ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let url = format!("{}?sslmode=require", cluster.database());
    let config = write_config(dir.path(), &format!("[ledger]\nurl = \"{url}\"\n"));
    let migrate = |ca: Option<&Path>| {
        let mut c = cmd();
        c.args(["ledger", "migrate", "--config"])
            .arg(&config)
            .env("PGPASSWORD", pg::PASSWORD)
            .env_remove("SSL_CERT_DIR");
        match ca {
            Some(ca) => c.env("SSL_CERT_FILE", ca),
            None => c.env_remove("SSL_CERT_FILE"),
        };
        run(c)
    };
    let untrusted = migrate(None);
    assert_eq!(untrusted.code, 2, "{}", untrusted.stderr);
    assert!(
        untrusted.stderr.contains("certificate is not trusted")
            && untrusted.stderr.contains("SSL_CERT_FILE"),
        "{}",
        untrusted.stderr
    );
    let trusted = migrate(Some(&ca_file));
    assert_eq!(trusted.code, 0, "{}", trusted.stderr);
    assert!(
        trusted.stdout.contains("schema version 1"),
        "{}",
        trusted.stdout
    );
}

// ---------------------------------------------------------------------------------------
// Tests of `ledger.rs` (the SQLite ledger through the binary), run again with the ledger
// in PostgreSQL: the rules, `history`, and a kill -9, the same with either store.

/// A config naming a fresh database of the shared cluster, and its phone country.
fn pg_config(dir: &Path) -> Option<PathBuf> {
    let cluster = pg::shared()?;
    Some(Shared::Postgres(cluster.database()).config(dir, "\n[phone]\ndefault_country = \"CO\"\n"))
}

fn with_config(c: &mut assert_cmd::Command, config: &Path) {
    c.arg("--config")
        .arg(config)
        .env("PGPASSWORD", pg::PASSWORD);
}

fn pg_send(input: &Path, fake: &FakeWolkvox, config: &Path) -> assert_cmd::Command {
    let mut c = send_cmd(input, fake, TOKEN);
    with_config(&mut c, config);
    c
}

fn rows_of<'a>(tels: &'a [String], text: &'a str) -> Vec<(&'a str, &'a str)> {
    tels.iter().map(|t| (t.as_str(), text)).collect()
}

/// As `ledger::yesterdays_file_sends_nothing_and_exits_2`, with PostgreSQL.
#[test]
fn yesterdays_file_sends_nothing_and_exits_2_postgres() {
    let dir = temp_dir();
    let Some(config) = pg_config(dir.path()) else {
        return;
    };
    let tels = colombian_mobiles(30);
    let input = write_csv(
        dir.path(),
        "today.csv",
        &contacts_csv(&rows_of(&tels, "Recuerde su pago de hoy"), "1"),
    );
    let day1 = dir.path().join("2026-12-03.results.csv");
    let day2 = dir.path().join("2026-12-04.results.csv");
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = pg_send(&input, &fake, &config);
    c.arg("--results").arg(&day1);
    run(c).expect_code(0);
    assert_eq!(fake.delivered().len(), 30);

    let next = FakeWolkvox::start(Behavior::ok());
    let mut c = pg_send(&input, &next, &config);
    c.arg("--results").arg(&day2);
    let out = run(c);
    out.expect_code(2);
    assert_eq!(next.count(), 0, "nothing sent");
    assert!(out.stderr.contains("already sent"), "{}", out.stderr);
    assert!(
        out.stderr.contains("2026-12-03.results.csv"),
        "{}",
        out.stderr
    );
    assert!(!day2.exists(), "a refused run leaves no results");

    // Shown in advance by validate and by a dry run (which create nothing).
    let mut v = cmd();
    v.arg("validate").arg(&input);
    with_config(&mut v, &config);
    let out = run(v);
    out.expect_code(2);
    assert!(out.stderr.contains("already sent"), "{}", out.stderr);
    let mut d = cmd();
    d.arg("send").arg(&input).arg("--dry-run");
    with_config(&mut d, &config);
    run(d).expect_code(2);

    let mut c = pg_send(&input, &next, &config);
    c.arg("--results").arg(&day2).arg("--allow-repeat");
    run(c).expect_code(0);
    assert_eq!(next.delivered().len(), 30);
}

/// As `ledger::history_lists_imports_and_forgets`, with PostgreSQL.
#[test]
fn history_lists_imports_and_forgets_postgres() {
    let dir = temp_dir();
    let Some(config) = pg_config(dir.path()) else {
        return;
    };
    let tels = colombian_mobiles(3);
    let input = write_csv(
        dir.path(),
        "l.csv",
        &contacts_csv(&rows_of(&tels, "Hola, su pedido llegó"), "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = pg_send(&input, &fake, &config);
    c.arg("--no-ledger");
    run(c).expect_code(0);
    let history = |args: &[&str]| {
        let mut h = cmd();
        h.arg("history").args(args);
        with_config(&mut h, &config);
        run(h)
    };
    let out = history(&["+57 300 123 0000"]);
    out.expect_code(0);
    assert!(out.stdout.contains("nothing"), "{}", out.stdout);
    let out = history(&["import", default_results_path(&input).to_str().unwrap()]);
    out.expect_code(0);
    assert!(out.stdout.contains("3 messages added"), "{}", out.stdout);
    let out = history(&["+57 300 123 0000"]);
    assert!(
        out.stdout.contains("573001230000") && out.stdout.contains("sent"),
        "{}",
        out.stdout
    );
    let again = write_csv(
        dir.path(),
        "again.csv",
        &contacts_csv(&rows_of(&tels, "Hola, su pedido llegó"), "1"),
    );
    run(pg_send(&again, &fake, &config)).expect_code(2);
    assert_eq!(fake.delivered().len(), 3);
    let out = history(&["--since", "7d", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(json.as_array().map(Vec::len), Some(3), "{}", out.stdout);
    let out = history(&["forget", "3001230000", "--lang", "en"]);
    out.expect_code(0);
    assert!(out.stdout.contains("1 messages"), "{}", out.stdout);
    assert!(!out.stdout.contains(pg::PASSWORD), "{}", out.stdout);
    assert_eq!(history(&["--format", "csv"]).stdout.lines().count(), 3);
}

/// As `ledger::a_run_killed_after_its_claims_holds_them_until_its_resume_settles_them`,
/// with PostgreSQL.
#[test]
fn a_run_killed_after_its_claims_holds_them_until_its_resume_settles_them_postgres() {
    let dir = temp_dir();
    let Some(config) = pg_config(dir.path()) else {
        return;
    };
    let tels = colombian_mobiles(20);
    let input = write_csv(
        dir.path(),
        "l.csv",
        &contacts_csv(&rows_of(&tels, "Aviso"), "1"),
    );
    let slow = FakeWolkvox::start(Behavior::ok().latency(400));
    let spawned = spawn_send_with_env(
        &input,
        &slow,
        TOKEN,
        &["--max-failures", "0", "--config", config.to_str().unwrap()],
        ENV,
    );
    assert!(slow.wait_for_requests(1, Duration::from_secs(30)));
    spawned.kill_9();
    let first = slow.delivered_telephones();

    let other = FakeWolkvox::start(Behavior::ok());
    let mut c = pg_send(&input, &other, &config);
    c.arg("--results").arg(dir.path().join("other.results.csv"));
    run(c).expect_code(2);
    assert_eq!(other.count(), 0);

    let mut c = pg_send(&input, &other, &config);
    c.arg("--resume");
    run(c);
    let mut h = cmd();
    h.args(["history", "--format", "json"]);
    with_config(&mut h, &config);
    let json: serde_json::Value = serde_json::from_str(&run(h).stdout).expect("json");
    let entries = json.as_array().expect("array");
    assert_eq!(entries.len(), 20, "{json}");
    assert!(
        entries.iter().all(|e| e["outcome"] != "pending"),
        "settled: {json}"
    );
    let again = other.delivered_telephones();
    for t in &again {
        assert!(!first.contains(t), "{t} sent twice");
    }
    let unknown: Vec<&str> = entries
        .iter()
        .filter(|e| e["outcome"] == "unknown")
        .filter_map(|e| e["telephone"].as_str())
        .collect();
    for t in &first {
        assert!(unknown.contains(&t.as_str()), "{t} was in flight: {json}");
    }
    assert_eq!(again.len() + unknown.len(), 20, "{json}");
}

/// As `ledger::reconcile_settles_the_ledger_too`, with PostgreSQL: `reconcile` tells the
/// team's ledger what it settled.
#[test]
fn reconcile_settles_the_ledger_too_postgres() {
    let Some(cluster) = pg::shared() else {
        return;
    };
    let dir = temp_dir();
    let tels = colombian_mobiles(3);
    let input = write_csv(
        dir.path(),
        "l.csv",
        &contacts_csv(&rows_of(&tels, "Hola, su pedido está listo"), "1"),
    );
    let (delivered, lost) = (tels[0].clone(), tels[1].clone());
    let fake = FakeWolkvox::start(Behavior::ok().hook(move |req| {
        let t = req.telephone.as_deref()?;
        if t == delivered {
            Some(Reply::DeliverThenHang(Duration::from_secs(3)))
        } else if t == lost {
            Some(Reply::DropConnection)
        } else {
            None
        }
    }));
    let config = write_config(
        dir.path(),
        &format!(
            "[api]\nconnector_id = \"1\"\ntimeout = \"1s\"\n[campaign]\ntimezone = \"UTC\"\n\
             [retry]\nmax_attempts = 1\n[ledger]\nurl = \"{}\"\n",
            cluster.database()
        ),
    );
    run(pg_send(&input, &fake, &config)).expect_code(1);
    let outcomes = || {
        let mut h = cmd();
        h.args(["history", "--format", "json"]);
        with_config(&mut h, &config);
        let json: serde_json::Value = serde_json::from_str(&run(h).stdout).expect("json");
        let mut out: Vec<(String, String)> = json
            .as_array()
            .expect("array")
            .iter()
            .map(|e| {
                (
                    e["telephone"].as_str().unwrap_or_default().to_owned(),
                    e["outcome"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(
        outcomes(),
        [
            (tels[0].clone(), "unknown".to_owned()),
            (tels[1].clone(), "unknown".to_owned()),
            (tels[2].clone(), "sent".to_owned()),
        ]
    );
    let mut r = reconcile_cmd(&default_results_path(&input), &config, &fake, TOKEN);
    r.args(["--settle-after", "0s"])
        .env("PGPASSWORD", pg::PASSWORD);
    run(r).expect_code(0);
    assert_eq!(
        outcomes(),
        [
            (tels[0].clone(), "sent".to_owned()),
            (tels[2].clone(), "sent".to_owned()),
        ]
    );
}
