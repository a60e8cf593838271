//! Throughput benchmark: `cargo bench --bench throughput`.
//!
//! Runs the release binary as a child process against the fake Wolkvox endpoint on
//! 127.0.0.1 and compares it with the ideal (the API allows 2 requests in flight per
//! token, so no client can beat 2 x tokens / latency messages per second): 10,000 rows
//! at 100 and 300 ms with 1 and 8 tokens, at 50 ms with 32 and 128 tokens, then at 10 ms
//! with 1 token beside what a user would otherwise reach for (a bare keep-alive loop,
//! `xargs -P2 curl` and a Python thread pool of 2, each only if installed), then the
//! older 0/10/50 ms cases with 1 and 4 tokens. Then it times `validate` on 10,000 rows and
//! measures the peak memory of `validate` and `send --dry-run` on 1,000,000 rows.
//! The full run takes about 45 minutes (300 ms with 1 token is 25 of them).
//!
//! Every run is checked, not only timed: the fake must have received every row exactly
//! once and never more than 2 requests in flight on one token.
//!
//! Knobs (environment variables):
//! - `BENCH_QUICK=1`: every kind of case, a few seconds each (under a minute in all).
//! - `BENCH_RUNS` (default 3): runs of the tool per case; the median is shown.
//! - `BENCH_PEER_RUNS` (default 1): runs of each peer per case.
//! - `BENCH_SECONDS` (default 6): rows per latency case are chosen so the ideal time is
//!   about this long (at most 10,000), so the whole bench takes a few minutes.
//! - `BENCH_ROWS` (e.g. 10000): the same number of rows for every case instead.
//! - `BENCH_LATENCIES` (default `0,10,50`, in ms) and `BENCH_TOKENS` (default `1,4`).
//! - `BENCH_PEERS=0`, `BENCH_VALIDATE=0`, `BENCH_SEND=0`: skip a part.
//! - `BENCH_BIG_ROWS` (default 1000000): rows of the big `validate` file.
//! - `BENCH_RATE` (default 100000): the `--rate` given to the tool, high enough not to limit.
//! - `BENCH_BASELINE=/path/to/wolkvox-dispatch`: also run another build (say, main's)
//!   the same way, case by case, so the two are compared in one run (not in the cases
//!   whose ideal time is over a minute, which also run once whatever `BENCH_RUNS` says).
//! - `BENCH_LEDGER=0`: run the tool with `--no-ledger` (by default each run has a fresh
//!   send ledger of its own in the bench's folder, never the user's).
//! - `BENCH_LEDGER_URL=postgres://USER@HOST:PORT/DB` (password in `PGPASSWORD`): the
//!   ledger in that PostgreSQL database instead (`[ledger] url`), emptied before each
//!   run (its tables are truncated: give a database of its own, never a team's).
//! - `BENCH_DEBUG=1`: show the tool's log, and the fake's time between an answer and the
//!   next request on each connection (the client's turnaround, plus the fake's own).
//!
//! The "bare keep-alive loop" reference runs in this process (see `bare_client`); the
//! curl peer passes the token in a header file (`-H @file`), not on its command line.

#[path = "../tests/common/fake_wolkvox.rs"]
mod fake_wolkvox;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fake_wolkvox::{Behavior, FakeWolkvox};

const BIN: &str = env!("CARGO_BIN_EXE_wolkvox-dispatch");
const MAX_ROWS: usize = 10_000;
const LATENCIES_MS: [u64; 3] = [0, 10, 50];
const TOKEN_COUNTS: [usize; 2] = [1, 4];
/// Requests per second through one token at 0 ms latency that the issue asks for.
const TARGET_ZERO_LATENCY: f64 = 5_000.0;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A comma-separated list of numbers, or `default`.
fn env_list(name: &str, default: &[u64]) -> Vec<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn env_on(name: &str) -> bool {
    std::env::var(name).map(|v| v != "0").unwrap_or(true)
}

/// What one child process (tree) used.
#[derive(Debug, Clone, Copy)]
struct Usage {
    elapsed: Duration,
    /// Largest resident set of any one process, in KiB.
    max_rss_kib: u64,
    /// User + system CPU time of the process and the children it waited for.
    cpu: Duration,
}

/// First argument that makes this binary a measuring wrapper (see `measure_main`).
const MEASURE: &str = "__measure";

/// Waits for `pid` with `wait4`, which reports the child's own resource use
/// (including its descendants that it waited for).
fn wait_usage(pid: u32) -> Result<(i32, Usage), String> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = libc::pid_t::try_from(pid).map_err(|e| e.to_string())?;
    // SAFETY: pid is our own child; status and usage point to live locals.
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if got != pid {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok((
        code,
        Usage {
            elapsed: Duration::ZERO,
            max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
            cpu: time(usage.ru_utime) + time(usage.ru_stime),
        },
    ))
}

/// `__measure USAGE_FILE PROGRAM ARGS...`: runs PROGRAM (same stdio and environment),
/// writes `exit_code max_rss_kib cpu_micros` to USAGE_FILE, and exits with its code.
///
/// Why a wrapper: Linux carries the parent's peak RSS into a child across `exec`
/// (`ru_maxrss` keeps the high-water mark of the image it replaced), so a child of this
/// bench, which holds the fake's request log, would report the bench's own memory. A
/// child of this small wrapper reports its own.
fn measure_main(args: &[String]) -> ! {
    let (Some(usage_file), Some(program)) = (args.first(), args.get(1)) else {
        eprintln!("usage: {MEASURE} USAGE_FILE PROGRAM ARGS...");
        std::process::exit(2);
    };
    let code = match Command::new(program).args(&args[2..]).spawn() {
        Ok(child) => match wait_usage(child.id()) {
            Ok((code, u)) => {
                let line = format!("{code} {} {}\n", u.max_rss_kib, u.cpu.as_micros());
                if let Err(e) = fs::write(usage_file, line) {
                    eprintln!("{MEASURE}: {e}");
                }
                code
            }
            Err(e) => {
                eprintln!("{MEASURE}: {e}");
                2
            }
        },
        Err(e) => {
            eprintln!("{MEASURE}: cannot run {program}: {e}");
            127
        }
    };
    std::process::exit(code);
}

/// A command that runs `program` under the measuring wrapper.
struct Spawn {
    command: Command,
    usage_file: PathBuf,
    stdout: Option<PathBuf>,
}

fn measured(program: &str, usage_file: PathBuf) -> Result<Spawn, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(me);
    command.arg(MEASURE).arg(&usage_file).arg(program);
    // The tool's send ledger, if a case does not give its own, is the bench's, never
    // the user's.
    if let Some(dir) = usage_file.parent() {
        command.env("XDG_STATE_HOME", dir);
    }
    Ok(Spawn {
        command,
        usage_file,
        stdout: None,
    })
}

/// Runs the commands at once, waits for all of them, and sums their CPU time; the RSS
/// is the largest of any one process.
fn run_all(commands: Vec<Spawn>) -> Result<(Vec<i32>, Usage), String> {
    let start = Instant::now();
    let mut children = Vec::new();
    for mut m in commands {
        match &m.stdout {
            Some(path) => {
                let file = fs::File::create(path).map_err(|e| e.to_string())?;
                m.command.stdout(file);
            }
            None => {
                m.command.stdout(Stdio::null());
            }
        }
        m.command.stderr(Stdio::piped());
        let _ = fs::remove_file(&m.usage_file);
        let child = m.command.spawn().map_err(|e| format!("spawn: {e}"))?;
        children.push((child, m.usage_file));
    }
    let mut total = Usage {
        elapsed: Duration::ZERO,
        max_rss_kib: 0,
        cpu: Duration::ZERO,
    };
    let mut codes = Vec::new();
    for (mut child, usage_file) in children {
        // Drain stderr first so a chatty child cannot block on a full pipe.
        let mut err = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            use std::io::Read;
            let _ = pipe.read_to_string(&mut err);
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        let line = fs::read_to_string(&usage_file).unwrap_or_default();
        let fields: Vec<u64> = line
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        let code = status.code().unwrap_or(-1);
        if std::env::var_os("BENCH_DEBUG").is_some() {
            eprintln!("{err}");
        }
        if code != 0 && !err.is_empty() {
            eprintln!(
                "  (exit {code}) {}",
                err.lines().take(5).collect::<Vec<_>>().join("\n  ")
            );
        }
        codes.push(code);
        if let [_, rss, cpu] = fields[..] {
            total.max_rss_kib = total.max_rss_kib.max(rss);
            total.cpu += Duration::from_micros(cpu);
        }
    }
    total.elapsed = start.elapsed();
    Ok((codes, total))
}

// ---------------------------------------------------------------------------------------
// Data.

const NAMES: [&str; 12] = [
    "Ana María",
    "José",
    "Lucía",
    "Andrés",
    "Camila",
    "Sebastián",
    "Valentina",
    "Martín",
    "Sofía",
    "Nicolás",
    "Isabel",
    "Julián",
];
const PLACES: [&str; 4] = ["Chapinero", "Suba", "Usaquén", "Teusaquillo"];

/// A realistic Colombian mobile number (valid for libphonenumber): 57 300 xxx xxxx.
fn telephone(i: usize) -> String {
    format!("57300{:07}", i % 10_000_000)
}

fn message(i: usize) -> String {
    format!(
        "Hola {}, le recordamos su cita del {} de marzo a las {}:{:02} en la sede {}. Responda SÍ para confirmar 👍",
        NAMES[i % NAMES.len()],
        1 + i % 28,
        8 + i % 10,
        (i * 15) % 60,
        PLACES[i % PLACES.len()]
    )
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `telephone,message,connector_id`, numbers written as digits (as the API wants them),
/// or in the ways people type them (`+57 300 123 4567`, `(57) 300-123-4567`) if `mixed`.
fn write_list(path: &Path, rows: usize, mixed: bool) -> std::io::Result<()> {
    let mut out = BufWriter::new(fs::File::create(path)?);
    writeln!(out, "telephone,message,connector_id")?;
    for i in 0..rows {
        let t = telephone(i);
        let shown = match (mixed, i % 3) {
            (true, 1) => format!("+{} {} {} {}", &t[..2], &t[2..5], &t[5..8], &t[8..]),
            (true, 2) => format!("({}) {}-{}-{}", &t[..2], &t[2..5], &t[5..8], &t[8..]),
            _ => t,
        };
        writeln!(out, "{},{},1", shown, csv_field(&message(i)))?;
    }
    out.flush()
}

const PYTHON_PEER: &str = r#"
import csv, json, os, sys, urllib.request, urllib.error
from concurrent.futures import ThreadPoolExecutor

list_path, url = sys.argv[1], sys.argv[2]
tokens = os.environ["WOLKVOX_TOKEN"].split(",")

def send(row, token):
    body = json.dumps({"connector_id": row["connector_id"], "telephone": row["telephone"],
                       "message": row["message"]}).encode("utf-8")
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"wolkvox-token": token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code

with open(list_path, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
# One pool of 2 threads per token: never more than 2 requests in flight on a token.
pools = [ThreadPoolExecutor(max_workers=2) for _ in tokens]
futures = [pools[i % len(tokens)].submit(send, row, tokens[i % len(tokens)])
           for i, row in enumerate(rows)]
codes = [f.result() for f in futures]
bad = sum(1 for c in codes if not 200 <= c < 300)
print(f"{len(codes)} requests, {bad} not 2xx")
sys.exit(1 if bad else 0)
"#;

// ---------------------------------------------------------------------------------------
// Runs.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Dispatch,
    /// Another build of the tool (`BENCH_BASELINE`), run the same way, for a side-by-side.
    Baseline,
    Curl,
    Python,
    Raw,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Dispatch => "wolkvox-dispatch",
            Tool::Baseline => "baseline (BENCH_BASELINE)",
            Tool::Curl => "xargs -P2 curl",
            Tool::Python => "python pool of 2",
            Tool::Raw => "reference: bare keep-alive loop",
        }
    }
}

struct Case {
    latency_ms: u64,
    tokens: usize,
    rows: usize,
}

impl Case {
    /// Messages per second no client can beat, if the latency is not 0.
    fn ideal(&self) -> Option<f64> {
        (self.latency_ms > 0).then(|| 2.0 * self.tokens as f64 * 1000.0 / self.latency_ms as f64)
    }
}

struct Measured {
    usage: Usage,
    /// Mean time the fake took to answer a send request (its real latency).
    server_ms: f64,
    /// From starting the process to the first request reaching the fake.
    lead: Duration,
    /// From the last answer to the process's exit.
    tail: Duration,
}

fn tokens(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("bench-token-{i}")).collect()
}

/// One run of `tool` on a fresh fake; checks what the fake saw.
fn run_case(tool: Tool, case: &Case, dir: &Path, list: &Path) -> Result<Measured, String> {
    let tokens = tokens(case.tokens);
    let mut behavior = Behavior::ok().latency(case.latency_ms);
    for t in &tokens {
        behavior = behavior.quota(t.clone(), 100_000_000);
    }
    let fake = FakeWolkvox::start(behavior);
    let url = fake.send_message_url();
    let commands: Vec<Spawn> = match tool {
        Tool::Raw => Vec::new(),
        Tool::Dispatch | Tool::Baseline => {
            let results = dir.join("bench.results.csv");
            let _ = fs::remove_file(&results);
            let _ = fs::remove_file(dir.join("bench.results.csv.journal"));
            let _ = fs::remove_file(dir.join("bench.results.xlsx"));
            let bin = match (tool, std::env::var("BENCH_BASELINE")) {
                (Tool::Baseline, Ok(path)) => path,
                _ => BIN.to_owned(),
            };
            let mut m = measured(&bin, dir.join("usage-0"))?;
            m.command
                .arg("send")
                .arg(list)
                .arg("--results")
                .arg(&results)
                .arg("--base-url")
                .arg(fake.base_url())
                .arg("--rate")
                .arg(std::env::var("BENCH_RATE").unwrap_or_else(|_| "100000".into()))
                .args(if std::env::var_os("BENCH_DEBUG").is_some() {
                    vec!["--log-format", "json"]
                } else {
                    vec!["--quiet"]
                })
                .env("WOLKVOX_TOKEN", tokens.join(","))
                .env_remove("RUST_LOG");
            if tool == Tool::Dispatch {
                // A fresh send ledger for every run (the list is sent again and again),
                // never the user's own; `BENCH_LEDGER=0` measures without it.
                let ledger = dir.join("bench-ledger.sqlite3");
                for suffix in ["", "-wal", "-shm"] {
                    let _ = fs::remove_file(format!("{}{suffix}", ledger.display()));
                }
                let url = std::env::var("BENCH_LEDGER_URL").ok();
                if let (Some(url), true) = (&url, env_on("BENCH_LEDGER")) {
                    empty_pg_ledger(url)?;
                    let config = dir.join("bench-ledger.toml");
                    fs::write(&config, format!("[ledger]\nurl = \"{url}\"\n"))
                        .map_err(|e| e.to_string())?;
                    m.command.arg("--config").arg(&config);
                } else if env_on("BENCH_LEDGER") {
                    m.command.arg("--ledger").arg(&ledger);
                } else {
                    m.command.arg("--no-ledger");
                }
            }
            vec![m]
        }
        Tool::Curl => {
            // One `xargs -P2 curl` per token (a user would split the list per token).
            // The token goes in a header file, not in curl's argv.
            let mut commands = Vec::new();
            for (t, token) in tokens.iter().enumerate() {
                let header = dir.join(format!("curl-header-{t}"));
                fs::write(&header, format!("wolkvox-token: {token}\n"))
                    .map_err(|e| e.to_string())?;
                let bodies = dir.join(format!("curl-bodies-{t}.jsonl"));
                let shard = (0..case.rows).filter(|i| i % case.tokens == t);
                write_shard(&bodies, shard).map_err(|e| e.to_string())?;
                let mut m = measured("xargs", dir.join(format!("usage-{t}")))?;
                m.command
                    .args(["-P2", "-d", "\\n", "-I{}", "curl", "-sS", "-o", "/dev/null"])
                    .args(["-w", "%{http_code}\\n", "-H"])
                    .arg(format!("@{}", header.display()))
                    .args([
                        "-H",
                        "Content-Type: application/json",
                        "--data-binary",
                        "{}",
                    ])
                    .arg(&url)
                    .stdin(fs::File::open(&bodies).map_err(|e| e.to_string())?);
                m.stdout = Some(dir.join(format!("curl-codes-{t}")));
                commands.push(m);
            }
            commands
        }
        Tool::Python => {
            let script = dir.join("peer.py");
            fs::write(&script, PYTHON_PEER).map_err(|e| e.to_string())?;
            let mut m = measured("python3", dir.join("usage-0"))?;
            m.command
                .arg(&script)
                .arg(list)
                .arg(&url)
                .env("WOLKVOX_TOKEN", tokens.join(","));
            vec![m]
        }
    };
    let spawned = Instant::now();
    let (codes, usage) = if tool == Tool::Raw {
        let elapsed = bare_client(fake.addr(), &tokens, case.rows)?;
        let usage = Usage {
            elapsed,
            max_rss_kib: 0,
            cpu: Duration::ZERO,
        };
        (vec![0], usage)
    } else {
        run_all(commands)?
    };
    let exited = Instant::now();
    if tool == Tool::Curl {
        for t in 0..case.tokens {
            let codes = fs::read_to_string(dir.join(format!("curl-codes-{t}"))).unwrap_or_default();
            if let Some(bad) = codes.lines().find(|c| !c.starts_with('2')) {
                return Err(format!("curl got HTTP {bad}"));
            }
        }
    }
    if let Some(code) = codes.iter().find(|&&c| c != 0) {
        return Err(format!("{} exited with {code}", tool.name()));
    }
    // Every row exactly once, never more than 2 in flight per token.
    let sends = fake.send_requests();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in &sends {
        *seen
            .entry(r.telephone.clone().unwrap_or_default())
            .or_default() += 1;
    }
    let missing = (0..case.rows)
        .filter(|&i| !seen.contains_key(&telephone(i)))
        .count();
    let twice = seen.values().filter(|&&n| n > 1).count();
    if missing > 0 || twice > 0 || sends.len() != case.rows {
        return Err(format!(
            "the fake saw {} requests for {} rows: {missing} rows missing, {twice} sent more than once",
            sends.len(),
            case.rows
        ));
    }
    let violations = fake.violations();
    if !violations.is_empty() {
        return Err(format!(
            "{} times more than 2 requests in flight on one token",
            violations.len()
        ));
    }
    let served: Vec<f64> = sends
        .iter()
        .filter_map(|r| r.ended.map(|e| (e - r.started).as_secs_f64() * 1000.0))
        .collect();
    let server_ms = served.iter().sum::<f64>() / served.len().max(1) as f64;
    if std::env::var_os("BENCH_DEBUG").is_some() {
        let mut by_peer: HashMap<std::net::SocketAddr, Vec<&fake_wolkvox::Received>> =
            HashMap::new();
        for r in &sends {
            by_peer.entry(r.peer).or_default().push(r);
        }
        let mut gaps = Vec::new();
        for list in by_peer.values_mut() {
            list.sort_by_key(|r| r.started);
            for w in list.windows(2) {
                if let Some(end) = w[0].ended {
                    gaps.push((w[1].started.saturating_duration_since(end)).as_secs_f64() * 1e6);
                }
            }
        }
        gaps.sort_by(f64::total_cmp);
        let n = gaps.len().max(1);
        eprintln!(
            "  {} connections; turnaround (answer built -> next request handled) us: mean {:.0}, p50 {:.0}, p90 {:.0}, p99 {:.0}",
            by_peer.len(),
            gaps.iter().sum::<f64>() / n as f64,
            gaps.get(n / 2).copied().unwrap_or(0.0),
            gaps.get(n * 9 / 10).copied().unwrap_or(0.0),
            gaps.get(n * 99 / 100).copied().unwrap_or(0.0),
        );
    }
    let first = sends.iter().map(|r| r.started).min().unwrap_or(spawned);
    let last = sends.iter().filter_map(|r| r.ended).max().unwrap_or(exited);
    Ok(Measured {
        usage,
        server_ms,
        lead: first.saturating_duration_since(spawned),
        tail: exited.saturating_duration_since(last),
    })
}

/// The least a client can do: per token, 2 threads each with one keep-alive connection,
/// writing a prepared request and reading the answer, nothing else (no validation, no
/// results, no async runtime). It runs inside this process, so it has no RSS or CPU of
/// its own to show. Its ratio is what this machine and this fake allow any client.
fn bare_client(
    addr: std::net::SocketAddr,
    tokens: &[String],
    rows: usize,
) -> Result<Duration, String> {
    use std::io::Read;
    use std::net::TcpStream;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let worker = |token: &str| -> Result<(), String> {
        let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 4096];
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= rows {
                return Ok(());
            }
            let body = serde_json::json!({
                "connector_id": "1",
                "telephone": telephone(i),
                "message": message(i),
            })
            .to_string();
            let request = format!(
                "POST /api/v2/whatsapp.php?api=send_message_official HTTP/1.1\r\nhost: {addr}\r\nwolkvox-token: {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            stream
                .write_all(request.as_bytes())
                .map_err(|e| e.to_string())?;
            buf.clear();
            // Headers, then as much body as content-length says.
            let (head_end, length) = loop {
                let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("connection closed".into());
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    if !head.starts_with("http/1.1 2") {
                        return Err(format!("answer: {}", head.lines().next().unwrap_or("")));
                    }
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (end + 4, length);
                }
            };
            while buf.len() < head_end + length {
                let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("connection closed".into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    };
    let result: Result<(), String> = std::thread::scope(|scope| {
        let handles: Vec<_> = tokens
            .iter()
            .flat_map(|t| [t, t])
            .map(|t| scope.spawn(|| worker(t)))
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
    });
    result.map(|()| start.elapsed())
}

fn write_shard(path: &Path, rows: impl Iterator<Item = usize>) -> std::io::Result<()> {
    let mut out = BufWriter::new(fs::File::create(path)?);
    for i in rows {
        let body = serde_json::json!({
            "connector_id": "1",
            "telephone": telephone(i),
            "message": message(i),
        });
        writeln!(out, "{body}")?;
    }
    out.flush()
}

fn median_by<T: Clone>(mut items: Vec<T>, key: impl Fn(&T) -> Duration) -> Option<T> {
    items.sort_by_key(|i| key(i));
    items.get(items.len() / 2).cloned()
}

impl Clone for Measured {
    fn clone(&self) -> Self {
        Measured {
            usage: self.usage,
            server_ms: self.server_ms,
            lead: self.lead,
            tail: self.tail,
        }
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!("{cores} cores, {cpu}, {rustc}")
}

/// The cases of a run: `(latency ms, tokens, rows, with peers)`.
///
/// By default, issue 15's targets (10,000 rows at 100 and 300 ms with 1 and 8 tokens;
/// 32 and 128 tokens at 50 ms; 10 ms with 1 token beside the peers), then the older
/// cases (0, 10 and 50 ms with 1 and 4 tokens, about `BENCH_SECONDS` each) as
/// information. `BENCH_QUICK=1`: the same kinds of case, a few seconds each.
/// `BENCH_LATENCIES` / `BENCH_TOKENS`: every combination of those instead.
fn cases(quick: bool) -> Vec<(u64, usize, Option<usize>, bool)> {
    if std::env::var_os("BENCH_LATENCIES").is_some() || std::env::var_os("BENCH_TOKENS").is_some() {
        let mut all = Vec::new();
        for latency in env_list("BENCH_LATENCIES", &LATENCIES_MS) {
            for tokens in env_list("BENCH_TOKENS", &TOKEN_COUNTS.map(|t| t as u64)) {
                all.push((latency, tokens as usize, None, true));
            }
        }
        return all;
    }
    if quick {
        // About 3 s each at the ideal rate.
        return vec![
            (10, 1, Some(600), true),
            (100, 8, Some(480), false),
            (300, 1, Some(20), false),
            (50, 32, Some(3840), false),
            (50, 128, Some(10_000), false),
        ];
    }
    let mut all = vec![
        (100, 1, Some(MAX_ROWS), false),
        (100, 8, Some(MAX_ROWS), false),
        (300, 1, Some(MAX_ROWS), false),
        (300, 8, Some(MAX_ROWS), false),
        (50, 32, Some(MAX_ROWS), false),
        (50, 128, Some(MAX_ROWS), false),
        (10, 1, Some(2_000), true),
    ];
    for latency in LATENCIES_MS {
        for tokens in TOKEN_COUNTS {
            all.push((latency, tokens, None, latency != 10 || tokens != 1));
        }
    }
    all
}

fn send_bench(dir: &Path, out: &mut String) -> Result<(), String> {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v != "0");
    let runs = env_number("BENCH_RUNS", if quick { 1 } else { 3 }).max(1) as usize;
    let peer_runs = env_number("BENCH_PEER_RUNS", 1) as usize;
    let seconds = env_number("BENCH_SECONDS", 6).max(1) as f64;
    let fixed_rows = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    let mut peers = Vec::new();
    if env_on("BENCH_PEERS") {
        peers.push(Tool::Raw);
        if have("curl", "--version") && have("xargs", "--version") {
            peers.push(Tool::Curl);
        } else {
            println!("curl or xargs not found: the curl peer is skipped");
        }
        if have("python3", "--version") {
            peers.push(Tool::Python);
        } else {
            println!("python3 not found: the Python peer is skipped");
        }
    }
    let baseline = std::env::var_os("BENCH_BASELINE").is_some();
    let mut lists: HashMap<usize, PathBuf> = HashMap::new();
    let _ = writeln!(
        out,
        "\n## send: {runs} run(s) of wolkvox-dispatch per case (median shown), {peer_runs} of each peer\n"
    );
    let _ = writeln!(
        out,
        "| latency | tokens | rows | tool | elapsed | msg/s | ideal msg/s | ratio | fake's real latency | before first / after last request (medians) | peak RSS | CPU | CPU/msg |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    print!("{out}");
    let mut shown = out.len();
    for (latency_ms, tokens, case_rows, with_peers) in cases(quick) {
        {
            let ideal_per_s = 2.0 * tokens as f64 * 1000.0 / latency_ms.max(1) as f64;
            let rows = fixed_rows.or(case_rows).unwrap_or(if latency_ms == 0 {
                MAX_ROWS
            } else {
                ((ideal_per_s * seconds) as usize).clamp(100, MAX_ROWS)
            });
            let case = Case {
                latency_ms,
                tokens,
                rows,
            };
            // A case whose ideal takes over a minute (10,000 rows at 100 or 300 ms) runs
            // once, and without the baseline: at 300 ms with 1 token one run is 25 minutes.
            let long = case.ideal().is_some_and(|ideal| rows as f64 / ideal > 60.0);
            let mut tools = vec![Tool::Dispatch];
            if baseline && !long {
                tools.push(Tool::Baseline);
            }
            if with_peers {
                tools.extend(peers.iter().copied());
            }
            let list = match lists.get(&rows) {
                Some(p) => p.clone(),
                None => {
                    let p = dir.join(format!("list-{rows}.csv"));
                    write_list(&p, rows, false).map_err(|e| e.to_string())?;
                    lists.insert(rows, p.clone());
                    p
                }
            };
            for tool in tools {
                let n = if long {
                    1
                } else if matches!(tool, Tool::Dispatch | Tool::Baseline) {
                    runs
                } else {
                    peer_runs
                };
                let mut measured = Vec::new();
                let mut error = None;
                for _ in 0..n {
                    match run_case(tool, &case, dir, &list) {
                        Ok(m) => measured.push(m),
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
                // Start-up and shutdown are a few ms, noisy from run to run: their own medians.
                let lead = median_by(measured.iter().map(|m| m.lead).collect(), |d| *d);
                let tail = median_by(measured.iter().map(|m| m.tail).collect(), |d| *d);
                let row = match (error, median_by(measured, |m| m.usage.elapsed)) {
                    (Some(e), _) => format!(
                        "| {latency_ms} ms | {tokens} | {rows} | {} | failed: {e} | | | | | | | | |",
                        tool.name()
                    ),
                    (None, None) => continue,
                    (None, Some(m)) => {
                        let secs = m.usage.elapsed.as_secs_f64();
                        let rate = rows as f64 / secs;
                        let (ideal, ratio) = match case.ideal() {
                            Some(ideal) => {
                                (format!("{ideal:.0}"), format!("**{:.3}**", rate / ideal))
                            }
                            None => (
                                "(no bound)".to_owned(),
                                format!(
                                    "{:.0}/s per token = {:.2} x 5,000/s",
                                    rate / tokens as f64,
                                    rate / tokens as f64 / TARGET_ZERO_LATENCY
                                ),
                            ),
                        };
                        format!(
                            "| {latency_ms} ms | {tokens} | {rows} | {} | {secs:.2} s | {rate:.0} | {ideal} | {ratio} | {:.2} ms | {:.0} / {:.0} ms | {} | {:.2} s | {} |",
                            tool.name(),
                            m.server_ms,
                            lead.unwrap_or(m.lead).as_secs_f64() * 1000.0,
                            tail.unwrap_or(m.tail).as_secs_f64() * 1000.0,
                            if tool == Tool::Raw {
                                "-".to_owned()
                            } else {
                                mib(m.usage.max_rss_kib)
                            },
                            m.usage.cpu.as_secs_f64(),
                            if tool == Tool::Raw {
                                "-".to_owned()
                            } else {
                                format!("{:.0} us", m.usage.cpu.as_secs_f64() * 1e6 / rows as f64)
                            }
                        )
                    }
                };
                let _ = writeln!(out, "{row}");
                print!("{}", &out[shown..]);
                shown = out.len();
            }
        }
    }
    Ok(())
}

fn validate_bench(dir: &Path, out: &mut String) -> Result<(), String> {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v != "0");
    let runs = env_number("BENCH_RUNS", if quick { 1 } else { 3 }).max(1) as usize * 2 + 1;
    let small = dir.join("validate-10k.csv");
    write_list(&small, MAX_ROWS, true).map_err(|e| e.to_string())?;
    let validate = |path: &Path, extra: &[&str]| -> Result<Usage, String> {
        let mut m = measured(BIN, dir.join("usage-validate"))?;
        m.command
            .arg("validate")
            .arg(path)
            .args(extra)
            .env_remove("RUST_LOG");
        let (codes, usage) = run_all(vec![m])?;
        match codes.first() {
            Some(0) => Ok(usage),
            other => Err(format!("validate exited with {other:?}")),
        }
    };
    let mut times = Vec::new();
    for _ in 0..runs {
        times.push(validate(&small, &[])?);
    }
    let m = median_by(times, |u| u.elapsed).ok_or("no run")?;
    let _ = writeln!(out, "\n## validate\n");
    let _ = writeln!(out, "| file | rows | elapsed | peak RSS | CPU | target |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    let _ = writeln!(
        out,
        "| validate-10k.csv (median of {runs}) | {MAX_ROWS} | {:.1} ms | {} | {:.1} ms | < 60 ms |",
        m.elapsed.as_secs_f64() * 1000.0,
        mib(m.max_rss_kib),
        m.cpu.as_secs_f64() * 1000.0
    );
    let big_rows = env_number("BENCH_BIG_ROWS", if quick { 100_000 } else { 1_000_000 }) as usize;
    let big = dir.join("validate-big.csv");
    write_list(&big, big_rows, true).map_err(|e| e.to_string())?;
    let size = fs::metadata(&big).map(|m| m.len()).unwrap_or(0);
    let max_rows = big_rows.to_string();
    let u = validate(&big, &["--max-rows", &max_rows])?;
    let _ = writeln!(
        out,
        "| validate-big.csv ({:.0} MB) | {big_rows} | {:.2} s | **{}** | {:.2} s | RSS < 64 MB |",
        size as f64 / 1e6,
        u.elapsed.as_secs_f64(),
        mib(u.max_rss_kib),
        u.cpu.as_secs_f64()
    );
    // The same file through `send --dry-run`, with and without the workbook.
    for (label, extra) in [
        ("send --dry-run --no-xlsx", vec!["--no-xlsx"]),
        ("send --dry-run", vec![]),
    ] {
        let results = dir.join("big.results.csv");
        let _ = fs::remove_file(&results);
        let _ = fs::remove_file(dir.join("big.results.xlsx"));
        let mut m = measured(BIN, dir.join("usage-dry"))?;
        m.command
            .args(["send", "--dry-run", "--quiet", "--max-rows", &max_rows])
            .arg(&big)
            .arg("--results")
            .arg(&results)
            .args(&extra)
            .env_remove("RUST_LOG");
        let (codes, u) = run_all(vec![m])?;
        let row = match codes.first() {
            Some(0) => format!(
                "| {label}, validate-big.csv | {big_rows} | {:.2} s | **{}** | {:.2} s | RSS < 128 MB |",
                u.elapsed.as_secs_f64(),
                mib(u.max_rss_kib),
                u.cpu.as_secs_f64()
            ),
            other => {
                format!("| {label}, validate-big.csv | {big_rows} | exited with {other:?} | | | |")
            }
        };
        let _ = writeln!(out, "{row}");
    }
    let _ = fs::remove_file(&big);
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(MEASURE) {
        measure_main(&args[2..]);
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then only check it builds.
    if !std::env::args().any(|a| a == "--bench") {
        println!("throughput bench: run it with `cargo bench --bench throughput`");
        return;
    }
    let dir = match tempfile::Builder::new().prefix("wolkvox-bench-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot create a temporary directory: {e}");
            std::process::exit(1);
        }
    };
    let started = Instant::now();
    let mut out = String::new();
    let date = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let _ = writeln!(out, "# wolkvox-dispatch throughput benchmark\n");
    let _ = writeln!(out, "- date: {date}");
    let _ = writeln!(out, "- machine: {}", machine());
    let _ = writeln!(out, "- binary: {BIN}");
    let _ = writeln!(
        out,
        "- ideal = 2 requests in flight x tokens / latency; ratio = measured / ideal; elapsed is the whole process (start, reading and validating the list, the quota check, sending, writing results)"
    );
    print!("{out}");
    out.clear();
    let mut failed = false;
    if env_on("BENCH_SEND")
        && let Err(e) = send_bench(dir.path(), &mut out)
    {
        eprintln!("send bench failed: {e}");
        failed = true;
    }
    let mark = out.len();
    if env_on("BENCH_VALIDATE")
        && let Err(e) = validate_bench(dir.path(), &mut out)
    {
        eprintln!("validate bench failed: {e}");
        failed = true;
    }
    print!("{}", &out[mark..]);
    println!("\nbench took {:.0} s", started.elapsed().as_secs_f64());
    if failed {
        std::process::exit(1);
    }
}

/// Empties the bench's PostgreSQL ledger (`BENCH_LEDGER_URL`) before a run, as a fresh
/// SQLite file is: its tables truncated if they are there. On a thread of its own (the
/// sync client must not run inside the fake's runtime).
fn empty_pg_ledger(url: &str) -> Result<(), String> {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut config: postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
        if let Ok(password) = std::env::var("PGPASSWORD") {
            config.password(password);
        }
        let mut client = config
            .connect(postgres::NoTls)
            .map_err(|e| format!("BENCH_LEDGER_URL: {e}"))?;
        let exists: bool = client
            .query_one("SELECT to_regclass('wolkvox_claims') IS NOT NULL", &[])
            .map_err(|e| e.to_string())?
            .get(0);
        if exists {
            client
                .batch_execute("TRUNCATE wolkvox_messages, wolkvox_claims")
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
    .join()
    .map_err(|_| "the ledger-emptying thread panicked".to_owned())?
}
