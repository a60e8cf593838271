//! Helpers shared by the integration tests: the fake Wolkvox endpoint, temp dirs, CSV and
//! config writers, a preconfigured command for the binary and a results-file reader.
#![allow(dead_code)]

mod fake_proxy;
mod fake_wolkvox;
pub mod pg;
pub use fake_proxy::*;
pub use fake_wolkvox::*;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = "wolkvox-dispatch";

/// Columns of the results file, in order.
pub const RESULTS_HEADER: [&str; 10] = [
    "row",
    "telephone",
    "status",
    "http_status",
    "code",
    "error",
    "msg",
    "attempts",
    "elapsed_ms",
    "finished_at",
];

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("wolkvox-test-")
        .tempdir()
        .expect("create temp dir")
}

/// Write `contents` to `dir/name` and return the path.
pub fn write_csv(dir: impl AsRef<Path>, name: &str, contents: &str) -> PathBuf {
    write_bytes(dir, name, contents.as_bytes())
}

pub fn write_bytes(dir: impl AsRef<Path>, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.as_ref().join(name);
    fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// Write a TOML config as `dir/wolkvox.toml` and return its path.
pub fn write_config(dir: impl AsRef<Path>, toml: &str) -> PathBuf {
    write_named_config(dir, "wolkvox.toml", toml)
}

pub fn write_named_config(dir: impl AsRef<Path>, name: &str, toml: &str) -> PathBuf {
    write_bytes(dir, name, toml.as_bytes())
}

/// A config with only `[api] connector_id` (plus any extra TOML appended verbatim).
pub fn write_connector_config(dir: impl AsRef<Path>, connector_id: &str, extra: &str) -> PathBuf {
    write_config(
        dir,
        &format!("[api]\nconnector_id = \"{connector_id}\"\n{extra}"),
    )
}

/// `<dir>/<stem>.results.csv` for an input path.
pub fn default_results_path(input: &Path) -> PathBuf {
    sibling_with_suffix(input, ".results.csv")
}

/// `<dir>/<stem>.dry-run.csv` for an input path.
pub fn default_dry_run_path(input: &Path) -> PathBuf {
    sibling_with_suffix(input, ".dry-run.csv")
}

/// `<results>.journal`.
pub fn journal_path(results: &Path) -> PathBuf {
    let mut s = results.as_os_str().to_owned();
    s.push(".journal");
    PathBuf::from(s)
}

fn sibling_with_suffix(input: &Path, suffix: &str) -> PathBuf {
    let stem = input
        .file_stem()
        .expect("input has a file name")
        .to_string_lossy();
    input.with_file_name(format!("{stem}{suffix}"))
}

/// A state folder of this test's own (`XDG_STATE_HOME`), so the send ledger of every
/// run of one test is shared by them and by no other test, and never the user's: under
/// the target folder, named by the test (the test harness names each test's thread).
pub fn test_state_home() -> PathBuf {
    // A thread a test spawns has no name: it gets a folder of its own (one per thread,
    // never shared with another test's).
    let current = std::thread::current();
    let test = match current.name() {
        Some(name) => name.replace("::", "-"),
        None => format!("thread-{:?}", current.id()).replace(['(', ')'], ""),
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("state-{}", std::process::id()))
        .join(test);
    fs::create_dir_all(&dir).expect("create the test's state folder");
    dir
}

/// The send ledger's file for this test (see `test_state_home`).
pub fn test_ledger() -> PathBuf {
    test_state_home()
        .join("wolkvox-dispatch")
        .join("ledger.sqlite3")
}

/// The binary, with `WOLKVOX_TOKEN` and `RUST_LOG` removed, `NO_COLOR=1`, `TERM=dumb`
/// (no progress bar), an English locale whatever the machine's (`LANG=C`; tests of
/// other languages set their own) and a 60 s safety timeout.
pub fn cmd() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin(BIN).expect("binary wolkvox-dispatch is built");
    c.env_remove("WOLKVOX_TOKEN")
        .env_remove("RUST_LOG")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env("LANG", "C")
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .env("XDG_STATE_HOME", test_state_home())
        .timeout(Duration::from_secs(60));
    c
}

/// `send INPUT --base-url <fake> --rate 1000 --no-quota-check` with `WOLKVOX_TOKEN=tokens`.
///
/// Without the pre-flight quota check (one `token_info` call per token), so that the
/// fake's request counts and `.quota(..)` budgets are about sends only; tests of the
/// check itself use [`send_cmd_checking_quota`].
pub fn send_cmd(input: &Path, fake: &FakeWolkvox, tokens: &str) -> assert_cmd::Command {
    let mut c = send_cmd_checking_quota(input, fake, tokens);
    c.arg("--no-quota-check");
    c
}

/// `send INPUT --base-url <fake> --rate 1000` with `WOLKVOX_TOKEN=tokens`: asks each
/// token's `token_info` before sending, as a user's run does by default.
pub fn send_cmd_checking_quota(
    input: &Path,
    fake: &FakeWolkvox,
    tokens: &str,
) -> assert_cmd::Command {
    send_cmd_at_rate(input, fake, tokens, "1000")
}

/// `send INPUT --base-url <fake> --rate RATE` with `WOLKVOX_TOKEN=tokens`, quota check
/// included: for tests where the pace itself matters.
pub fn send_cmd_at_rate(
    input: &Path,
    fake: &FakeWolkvox,
    tokens: &str,
    rate: &str,
) -> assert_cmd::Command {
    let mut c = cmd();
    c.arg("send")
        .arg(input)
        .arg("--base-url")
        .arg(fake.base_url())
        .arg("--rate")
        .arg(rate)
        .env("WOLKVOX_TOKEN", tokens);
    c
}

/// `reconcile RESULTS --config CONFIG --base-url <fake>` with `WOLKVOX_TOKEN=token`.
pub fn reconcile_cmd(
    results: &Path,
    config: &Path,
    fake: &FakeWolkvox,
    token: &str,
) -> assert_cmd::Command {
    let mut c = cmd();
    c.arg("reconcile")
        .arg(results)
        .arg("--config")
        .arg(config)
        .arg("--base-url")
        .arg(fake.base_url())
        .env("WOLKVOX_TOKEN", token);
    c
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal, e.g. the safety timeout).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with stdout and stderr if the exit code is not `expected`.
    pub fn expect_code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code, expected,
            "exit code {} (expected {expected})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// Run to completion and capture exit code, stdout and stderr (never panics on the code).
pub fn run(mut c: assert_cmd::Command) -> Run {
    let out = c.output().expect("run wolkvox-dispatch");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The header line of a results file.
pub fn read_header(path: &Path) -> Vec<String> {
    let mut rdr = csv::ReaderBuilder::new()
        .from_path(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    rdr.headers()
        .expect("results header")
        .iter()
        .map(str::to_owned)
        .collect()
}

/// Every data line of a results (or dry-run) file as `column -> value`.
pub fn read_results(path: &Path) -> Vec<HashMap<String, String>> {
    let mut rdr = csv::ReaderBuilder::new()
        .from_path(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let header: Vec<String> = rdr
        .headers()
        .expect("results header")
        .iter()
        .map(str::to_owned)
        .collect();
    rdr.records()
        .map(|r| {
            let r = r.unwrap_or_else(|e| panic!("bad line in {}: {e}", path.display()));
            header
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

/// `status` of each line, keyed by `row` (panics on a repeated row).
pub fn statuses_by_row(rows: &[HashMap<String, String>]) -> HashMap<u64, String> {
    let mut out = HashMap::new();
    for r in rows {
        let n: u64 = r["row"].parse().expect("row is a number");
        let prev = out.insert(n, r["status"].clone());
        assert!(prev.is_none(), "row {n} appears twice in the results");
    }
    out
}

/// The line for data row `n` (1-based).
pub fn row(rows: &[HashMap<String, String>], n: u64) -> &HashMap<String, String> {
    rows.iter()
        .find(|r| r["row"] == n.to_string())
        .unwrap_or_else(|| panic!("no line for row {n} in {rows:?}"))
}

/// A CSV field, quoted when needed (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// A `telephone,message,connector_id` CSV with one line per `(telephone, message)`.
pub fn contacts_csv(rows: &[(&str, &str)], connector_id: &str) -> String {
    let mut s = String::from("telephone,message,connector_id\n");
    for (tel, msg) in rows {
        s.push_str(&format!(
            "{},{},{}\n",
            csv_field(tel),
            csv_field(msg),
            csv_field(connector_id)
        ));
    }
    s
}

/// `n` distinct, realistic Colombian mobile numbers: 573001230000, 573001230001, ...
pub fn colombian_mobiles(n: usize) -> Vec<String> {
    assert!(n <= 10_000);
    (0..n).map(|i| format!("57300123{i:04}")).collect()
}

// ---------------------------------------------------------------------------------------
// Spawned runs, signals.

/// A running `send`, its stdout and stderr going to files (pipes could fill and block it).
pub struct Spawned {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

pub fn spawn_send(input: &Path, fake: &FakeWolkvox, tokens: &str, args: &[&str]) -> Spawned {
    spawn_send_with_env(input, fake, tokens, args, &[])
}

/// `spawn_send` with more environment variables (`LANG`...).
pub fn spawn_send_with_env(
    input: &Path,
    fake: &FakeWolkvox,
    tokens: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Spawned {
    let dir = input.parent().expect("input has a directory");
    let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let stdout = dir.join(format!("spawned-{n}.stdout"));
    let stderr = dir.join(format!("spawned-{n}.stderr"));
    let child = Command::new(env!("CARGO_BIN_EXE_wolkvox-dispatch"))
        .arg("send")
        .arg(input)
        .arg("--base-url")
        .arg(fake.base_url())
        .arg("--rate")
        .arg("1000")
        // As send_cmd: the fake's request indexes and counts are about sends only.
        .arg("--no-quota-check")
        .args(args)
        .env("WOLKVOX_TOKEN", tokens)
        .env_remove("RUST_LOG")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env("LANG", "C")
        .env("XDG_STATE_HOME", test_state_home())
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("start the binary");
    Spawned {
        child,
        stdout,
        stderr,
    }
}

impl Spawned {
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -{name} failed");
    }

    /// Waits for the exit, killing the process and failing the test after `limit`.
    pub fn wait(mut self, limit: Duration) -> (ExitStatus, Run) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the run did not exit within {limit:?}\n--- stderr ---\n{}",
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let out = Run {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        };
        (status, out)
    }

    /// True while the process has not exited.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, then reap, whether or not the run had already ended by itself.
    pub fn kill_9_or_reap(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL (what `kill -9` sends), then reap.
    pub fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("wait");
        assert_eq!(status.code(), None, "the run ended before it was killed");
    }
}

// ---------------------------------------------------------------------------------------
// Random moments.

/// A small PRNG (xorshift), seeded from the clock or `RESILIENCE_SEED` (printed, so a
/// failing random moment can be replayed).
pub struct Rng(pub u64);

impl Rng {
    /// Seeded from `RESILIENCE_SEED`, else the clock; prints the seed for `test`.
    pub fn new(test: &str) -> Rng {
        let seed = seed_from_env();
        println!("{test}: RESILIENCE_SEED={seed}");
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `low..high`.
    pub fn between(&mut self, low: usize, high: usize) -> usize {
        low + (self.next() % (high - low) as u64) as usize
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// `RESILIENCE_SEED`, else a seed from the clock.
pub fn seed_from_env() -> u64 {
    std::env::var("RESILIENCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}
