//! A throwaway PostgreSQL cluster for the tests of the PostgreSQL ledger (issue 32).
//!
//! `shared()` starts one cluster per test binary (a `OnceLock`), in a temp folder the
//! tests own, listening on 127.0.0.1 on a free port; each test takes a fresh database
//! (`database()`). A watchdog process stops the cluster and removes its folder when
//! the test binary ends, however it ends (statics are never dropped). `Cluster::start`
//! gives a test its own cluster, stopped by `Drop` (also when the test fails), for
//! tests that stop the server mid-run.
//!
//! initdb refuses to run as root: as root, the folder is given to the `postgres` user
//! (Debian's package makes it; else `nobody`) and the server runs as that user. When
//! the server binaries cannot be found, `shared()` prints why and returns `None`: the
//! caller skips. `.ci/run` installs them (`apt-get install postgresql`).
//!
//! Shared by `src/ledger/tests.rs` (through `#[path]`) and `tests/integration`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The superuser of the test clusters, and its password (host connections need it:
/// the tests exercise `PGPASSWORD`).
pub const USER: &str = "wolkvox";
pub const PASSWORD: &str = "s3cret-test-only";

/// A running throwaway cluster.
pub struct Cluster {
    bin: PathBuf,
    /// Holds `data/` and the socket; removed on drop (or by the watchdog).
    dir: PathBuf,
    pub port: u16,
    /// Run the server as this user (when the tests run as root).
    run_as: Option<String>,
    /// Removed on drop (a cluster of one test); the shared one is the watchdog's.
    owned: bool,
    /// More server options (`-c ssl=on`).
    extra: String,
}

static SHARED: OnceLock<Option<Cluster>> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The binary's shared cluster, started at first use; `None` (with the reason printed)
/// when there are no PostgreSQL server binaries here.
pub fn shared() -> Option<&'static Cluster> {
    SHARED
        .get_or_init(|| match Cluster::start_inner(false, None) {
            Ok(c) => {
                c.watchdog();
                Some(c)
            }
            Err(why) => {
                eprintln!("skipping the PostgreSQL ledger tests: {why}");
                None
            }
        })
        .as_ref()
}

/// The server binaries: `PG_BIN`, else Debian's newest `/usr/lib/postgresql/N/bin`,
/// else the `PATH`.
fn find_bin() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
        .ok_or_else(|| {
            "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or \
             the PATH; install them with `apt-get install postgresql`"
                .to_owned()
        })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl Cluster {
    /// A cluster of its own for one test, stopped when dropped.
    pub fn start() -> Option<Cluster> {
        Self::start_with_tls(None)
    }

    /// A cluster of its own that speaks TLS with this certificate and key (PEM), also
    /// plain; stopped when dropped.
    pub fn start_with_tls(tls: Option<(&str, &str)>) -> Option<Cluster> {
        match Self::start_inner(true, tls) {
            Ok(c) => Some(c),
            Err(why) => {
                eprintln!("skipping: {why}");
                None
            }
        }
    }

    fn start_inner(owned: bool, tls: Option<(&str, &str)>) -> Result<Cluster, String> {
        let bin = find_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("wolkvox-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?
            .keep();
        let run_as = if is_root() {
            let user = ["postgres", "nobody"]
                .into_iter()
                .find(|u| {
                    Command::new("id")
                        .arg("-u")
                        .arg(u)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
                })
                .ok_or("running as root, and there is no `postgres` or `nobody` user to run the server as")?;
            let ok = Command::new("chown")
                .arg(format!("{user}:"))
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!("could not give {} to {user}", dir.display()));
            }
            Some(user.to_owned())
        } else {
            None
        };
        let cluster = Cluster {
            bin,
            dir,
            port: free_port(),
            run_as,
            owned,
            extra: String::new(),
        };
        let mut cluster = cluster;
        let pwfile = cluster.dir.join("pw");
        std::fs::write(&pwfile, PASSWORD).map_err(|e| e.to_string())?;
        if let Some(user) = &cluster.run_as {
            let _ = Command::new("chown")
                .arg(format!("{user}:"))
                .arg(&pwfile)
                .status();
        }
        let data = cluster.dir.join("data");
        let out = cluster
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["--no-sync", "-E", "UTF8", "--locale=C"])
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if let Some((cert, key)) = tls {
            // In the data folder, the server's own, the key private (it refuses it else).
            for (name, text) in [("server.crt", cert), ("server.key", key)] {
                let path = data.join(name);
                std::fs::write(&path, text).map_err(|e| e.to_string())?;
                let _ = Command::new("chmod").arg("600").arg(&path).status();
                if let Some(user) = &cluster.run_as {
                    let _ = Command::new("chown")
                        .arg(format!("{user}:"))
                        .arg(&path)
                        .status();
                }
            }
            cluster.extra = "-c ssl=on".to_owned();
        }
        cluster.pg_ctl_start()?;
        Ok(cluster)
    }

    /// A command for a server binary, as the server's user when the tests are root.
    fn command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories='{}' \
             -c fsync=off -c full_page_writes=off \
             -c max_connections=60 -c shared_buffers=16MB {}",
            self.port,
            self.dir.display(),
            self.extra
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            return Err(format!(
                "the server did not start: {}{log}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// Stops the server at once (as a crash would look to its clients).
    pub fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// A fresh empty database; its url (no password: the tool takes it from
    /// `PGPASSWORD`).
    pub fn database(&self) -> String {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs `sql` in `db` through the socket (trusted); its output, unaligned, no header.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .arg("-h")
            .arg(&self.dir)
            .args(["-p", &self.port.to_string(), "-U", USER, "-d", db])
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env_remove("PGPASSWORD")
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A process that stops the cluster and removes its folder once this test binary
    /// has ended (passed, failed or killed).
    fn watchdog(&self) {
        let stop = self.command_line("pg_ctl");
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {stop} -D '{data}' -m immediate -w stop >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            data = self.dir.join("data").display(),
            dir = self.dir.display(),
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }

    fn command_line(&self, name: &str) -> String {
        let program = self.bin.join(name).display().to_string();
        match &self.run_as {
            Some(user) => format!("runuser -u {user} -- '{program}'"),
            None => format!("'{program}'"),
        }
    }

    /// Waits until the server accepts connections again after `restart`.
    pub fn restart(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.pg_ctl_start().is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.owned {
            self.stop();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
