/*!
The ledger in a SQLite file (rusqlite, SQLite compiled in).

WAL mode so readers never block the one writer; `synchronous=FULL` so a committed
claim survives a power cut; a busy timeout so a run waits for another's short
transaction, and fails clearly (not silently) past it. The schema's version is
`PRAGMA user_version`: a ledger of a newer version is refused, not guessed at.
The file and its folder are made owner-only (0600, 0700) on Unix.
*/

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags, params};

use super::{Entry, LedgerError, Mark, Seen, Settled, Store};
use crate::tr;

const SCHEMA_VERSION: i64 = 1;

/// `messages` holds what is settled; `claims` what runs may be sending now (`pending`),
/// kept apart so that a run's claims are a small, quick write (10,000 claims into a
/// table of a million messages touched a page of each index per claim).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    telephone TEXT NOT NULL,
    kind TEXT NOT NULL,
    excerpt TEXT NOT NULL,
    connector TEXT NOT NULL,
    at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    campaign TEXT NOT NULL,
    list TEXT NOT NULL,
    row INTEGER NOT NULL,
    UNIQUE (campaign, key)
);
CREATE INDEX IF NOT EXISTS messages_by_key ON messages (key, at);
CREATE INDEX IF NOT EXISTS messages_by_phone ON messages (telephone, at);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (at);
CREATE TABLE IF NOT EXISTS claims (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    telephone TEXT NOT NULL,
    kind TEXT NOT NULL,
    excerpt TEXT NOT NULL,
    connector TEXT NOT NULL,
    at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    campaign TEXT NOT NULL,
    list TEXT NOT NULL,
    row INTEGER NOT NULL,
    UNIQUE (campaign, key)
);
CREATE INDEX IF NOT EXISTS claims_by_key ON claims (key);
CREATE INDEX IF NOT EXISTS claims_by_phone ON claims (telephone);
";

/// The SQLite store.
pub(crate) struct Sqlite {
    conn: Connection,
    path: PathBuf,
}

/// The person's words for what went wrong, from SQLite's error.
fn problem(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => tr!(
            "ledger-problem-locked",
            seconds = super::BUSY_TIMEOUT.as_secs()
        ),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            tr!("ledger-problem-corrupt")
        }
        Some(ErrorCode::DiskFull) => tr!("ledger-problem-full"),
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
            tr!("ledger-problem-cannot-open", error = e.to_string())
        }
        _ => tr!("ledger-problem-other", error = e.to_string()),
    }
}

impl Sqlite {
    fn fail(&self, e: &rusqlite::Error) -> LedgerError {
        LedgerError::Failed {
            path: self.path.clone(),
            problem: problem(e),
        }
    }

    /// Opens (creating) the ledger at `path`.
    pub(crate) fn open(path: &Path) -> Result<Self, LedgerError> {
        let fail = |problem: String| LedgerError::Failed {
            path: path.to_owned(),
            problem,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(|e| {
                fail(tr!(
                    "ledger-problem-cannot-open",
                    error = format!("{}: {e}", dir.display())
                ))
            })?;
        }
        match std::fs::metadata(path) {
            // Made whole, then put in place: a ledger is never seen half made, so an
            // empty file where one was expected was emptied (truncated), not new.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(path)?,
            Ok(meta) if meta.len() == 0 && !has_wal(path) => {
                return Err(fail(tr!("ledger-problem-empty")));
            }
            _ => {}
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| fail(problem(&e)))?;
        let store = Sqlite {
            conn,
            path: path.to_owned(),
        };
        store
            .conn
            .busy_timeout(super::BUSY_TIMEOUT)
            .map_err(|e| store.fail(&e))?;
        store.prepare_schema()?;
        Ok(store)
    }

    /// A new ledger at `path`: made (schema and all) beside it, then linked into
    /// place unless another run made one first.
    fn create(path: &Path) -> Result<(), LedgerError> {
        let fail = |e: std::io::Error| LedgerError::Failed {
            path: path.to_owned(),
            problem: tr!("ledger-problem-cannot-open", error = e.to_string()),
        };
        let mut name = path.file_name().unwrap_or_default().to_owned();
        name.push(format!(".new-{}", std::process::id()));
        let new = path.with_file_name(name);
        let _ = std::fs::remove_file(&new);
        create_private_file(&new).map_err(fail)?;
        let made = Connection::open_with_flags(
            &new,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| LedgerError::Failed {
            path: path.to_owned(),
            problem: problem(&e),
        })
        .and_then(|conn| {
            let store = Sqlite {
                conn,
                path: path.to_owned(),
            };
            store.prepare_schema()?;
            store.conn.close().map_err(|(_, e)| LedgerError::Failed {
                path: path.to_owned(),
                problem: problem(&e),
            })
        });
        let linked = made.and_then(|()| match std::fs::hard_link(&new, path) {
            // A file system without hard links (a USB stick, some shares): copied into a
            // file made only if none is there. Another run may see it empty or short
            // meanwhile: it refuses (damaged), the safe side, and the next run works.
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                copy_new(&new, path).map_err(fail)
            }
            _ => Ok(()),
        });
        let _ = std::fs::remove_file(&new);
        linked
    }

    fn prepare_schema(&self) -> Result<(), LedgerError> {
        let c = &self.conn;
        let mode: String = c
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| self.fail(&e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::debug!("ledger journal mode {mode}");
        }
        c.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.fail(&e))?;
        // Lookups read the indexes through the OS's page cache without a copy.
        c.pragma_update(None, "mmap_size", 256i64 * 1024 * 1024)
            .map_err(|e| self.fail(&e))?;
        let version: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.fail(&e))?;
        if version > SCHEMA_VERSION {
            return Err(LedgerError::Failed {
                path: self.path.clone(),
                problem: tr!("ledger-problem-newer", version = version),
            });
        }
        if version < SCHEMA_VERSION {
            c.execute_batch(&format!(
                "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(|e| {
                let _ = c.execute_batch("ROLLBACK");
                self.fail(&e)
            })?;
        }
        Ok(())
    }

    fn entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
        let mark: String = row.get(7)?;
        Ok(Entry {
            key: row.get(0)?,
            telephone: row.get(1)?,
            kind: row.get(2)?,
            excerpt: row.get(3)?,
            connector: row.get(4)?,
            at: row.get(5)?,
            campaign: row.get(6)?,
            mark: Mark::parse(&mark).unwrap_or(Mark::Unknown),
            list: row.get(8)?,
            row: row
                .get::<_, i64>(9)
                .map(|r| u64::try_from(r).unwrap_or(0))?,
        })
    }
}

const COLUMNS: &str = "key, telephone, kind, excerpt, connector, at, campaign, outcome, list, row";

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// `from`'s bytes into `to`, made owner-only, unless `to` is already there.
fn copy_new(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let bytes = std::fs::read(from)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(to) {
        Ok(mut file) => {
            file.write_all(&bytes)?;
            file.sync_all()
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// A write-ahead log with something in it beside `path` (a ledger another run has
/// open may be all in its log, its main file still empty).
fn has_wal(path: &Path) -> bool {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    std::fs::metadata(PathBuf::from(name)).is_ok_and(|m| m.len() > 0)
}

/// Creates the file owner-only if it is not there (SQLite gives its WAL files the
/// same permissions).
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map(drop)
}

impl Store for Sqlite {
    fn begin(&mut self) -> Result<(), LedgerError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.fail(&e))
    }

    fn settle(&mut self, campaign: &str, settled: &Settled) -> Result<(), LedgerError> {
        let outer = self.conn.is_autocommit();
        if outer {
            // A settle lost to a power cut leaves the claims `pending` ("may have gone
            // out"): the safe side, settled again by the next --resume. So it need not
            // wait for the disk (in WAL mode, NORMAL does not sync at commit); a claim
            // does.
            self.conn
                .pragma_update(None, "synchronous", "NORMAL")
                .map_err(|e| self.fail(&e))?;
            self.begin()?;
        }
        // Set-based: the outcomes in a temporary table, then one move and one delete
        // (a statement per claim took about 150 ms for 10,000 claims).
        let result = (|| {
            self.conn.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS settling \
                 (key TEXT PRIMARY KEY, outcome TEXT NOT NULL, at INTEGER); \
                 DELETE FROM temp.settling;",
            )?;
            {
                let mut add = self.conn.prepare_cached(
                    "INSERT OR REPLACE INTO temp.settling (key, outcome, at) VALUES (?1, ?2, ?3)",
                )?;
                for key in &settled.in_flight {
                    add.execute(params![key, Mark::Unknown.as_str(), Option::<i64>::None])?;
                }
                for (key, (mark, at)) in &settled.outcomes {
                    add.execute(params![key, mark.as_str(), at])?;
                }
            }
            self.conn
                .prepare_cached(
                    "INSERT INTO messages (key, telephone, kind, excerpt, connector, at, \
                     outcome, campaign, list, row) \
                     SELECT c.key, c.telephone, c.kind, c.excerpt, c.connector, \
                     COALESCE(s.at, c.at), s.outcome, c.campaign, c.list, c.row \
                     FROM claims c JOIN temp.settling s ON s.key = c.key \
                     WHERE c.campaign = ?1 \
                     ON CONFLICT (campaign, key) DO UPDATE SET outcome = excluded.outcome, \
                     at = excluded.at, row = excluded.row, list = excluded.list, \
                     excerpt = excluded.excerpt",
                )?
                .execute(params![campaign])?;
            self.conn
                .prepare_cached("DELETE FROM claims WHERE campaign = ?1")?
                .execute(params![campaign])?;
            self.conn.execute_batch("DELETE FROM temp.settling;")?;
            Ok(())
        })();
        let done = match result {
            Ok(()) if outer => self.commit(),
            Ok(()) => Ok(()),
            Err(e) => {
                if outer {
                    self.rollback();
                }
                Err(self.fail(&e))
            }
        };
        if outer {
            let full = self
                .conn
                .pragma_update(None, "synchronous", "FULL")
                .map_err(|e| self.fail(&e));
            return done.and(full);
        }
        done
    }

    fn seen(
        &mut self,
        campaign: &str,
        known: &std::collections::HashSet<String>,
        keys: &[&str],
        phones: &[&str],
        since_key: i64,
        since_phone: Option<i64>,
    ) -> Result<Seen, LedgerError> {
        let mut seen = Seen::default();
        // In key order: neighbouring lookups share the index's pages.
        let mut keys: Vec<&str> = keys.to_vec();
        keys.sort_unstable();
        keys.dedup();
        let mut phones: Vec<&str> = phones.to_vec();
        phones.sort_unstable();
        phones.dedup();
        let result = (|| {
            let mut settled = self.conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM messages WHERE key = ?1 AND at >= ?2 \
                 AND campaign <> ?3 AND outcome <> 'failed' ORDER BY at DESC LIMIT 1"
            ))?;
            let mut claimed = self.conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM claims WHERE key = ?1 AND at >= ?2 \
                 AND campaign <> ?3 ORDER BY at DESC LIMIT 1"
            ))?;
            for key in &keys {
                let mut found: Option<Entry> = None;
                // A key this campaign's journal does not know: its own entries hold it
                // too (an empty campaign name matches none).
                let exempt = if known.contains(*key) { campaign } else { "" };
                let mut rows = claimed.query(params![key, since_key, exempt])?;
                if let Some(row) = rows.next()? {
                    found = Some(Self::entry(row)?);
                }
                drop(rows);
                let mut rows = settled.query(params![key, since_key, exempt])?;
                if let Some(row) = rows.next()? {
                    let e = Self::entry(row)?;
                    if found.as_ref().is_none_or(|f| f.at < e.at) {
                        found = Some(e);
                    }
                }
                if let Some(e) = found {
                    seen.by_key.insert((*key).to_owned(), e);
                }
            }
            for table in ["messages", "claims"] {
                let mut own = self.conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM {table} WHERE campaign = ?1"
                ))?;
                for entry in own.query_map(params![campaign], Self::entry)? {
                    let entry = entry?;
                    seen.own.insert(entry.key.clone(), entry);
                }
            }
            if let Some(since) = since_phone {
                let mut settled = self.conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM messages WHERE telephone = ?1 AND at >= ?2 \
                     AND outcome <> 'failed'"
                ))?;
                let mut claimed = self.conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM claims WHERE telephone = ?1 AND at >= ?2 \
                     AND campaign <> ?3"
                ))?;
                for phone in &phones {
                    let mut found = settled
                        .query_map(params![phone, since], Self::entry)?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    found.extend(
                        claimed
                            .query_map(params![phone, since, campaign], Self::entry)?
                            .collect::<rusqlite::Result<Vec<_>>>()?,
                    );
                    if !found.is_empty() {
                        seen.by_phone.insert((*phone).to_owned(), found);
                    }
                }
            }
            Ok(())
        })();
        result.map_err(|e: rusqlite::Error| self.fail(&e))?;
        Ok(seen)
    }

    fn claim(&mut self, entries: &[Entry]) -> Result<(), LedgerError> {
        let result = (|| {
            let mut stmt = self.conn.prepare_cached(
                "INSERT INTO claims (key, telephone, kind, excerpt, connector, at, \
                 outcome, campaign, list, row) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9) \
                 ON CONFLICT (campaign, key) DO UPDATE SET outcome = 'pending', \
                 at = excluded.at, row = excluded.row, list = excluded.list",
            )?;
            for e in entries {
                stmt.execute(params![
                    e.key,
                    e.telephone,
                    e.kind,
                    e.excerpt,
                    e.connector,
                    e.at,
                    e.campaign,
                    e.list,
                    i64::try_from(e.row).unwrap_or(i64::MAX)
                ])?;
            }
            Ok(())
        })();
        result.map_err(|e: rusqlite::Error| self.fail(&e))
    }

    fn seed(&mut self, entries: &[Entry]) -> Result<(), LedgerError> {
        let result = (|| {
            let mut stmt = self.conn.prepare_cached(
                "INSERT INTO messages (key, telephone, kind, excerpt, connector, at, \
                 outcome, campaign, list, row) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                 ON CONFLICT (campaign, key) DO NOTHING",
            )?;
            for e in entries {
                stmt.execute(params![
                    e.key,
                    e.telephone,
                    e.kind,
                    e.excerpt,
                    e.connector,
                    e.at,
                    e.mark.as_str(),
                    e.campaign,
                    e.list,
                    i64::try_from(e.row).unwrap_or(i64::MAX)
                ])?;
            }
            Ok(())
        })();
        result.map_err(|e: rusqlite::Error| self.fail(&e))
    }

    fn commit(&mut self) -> Result<(), LedgerError> {
        self.conn.execute_batch("COMMIT").map_err(|e| {
            let err = self.fail(&e);
            self.rollback();
            err
        })
    }

    fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn update(
        &mut self,
        campaign: &str,
        marks: &[(String, Option<Mark>)],
    ) -> Result<(), LedgerError> {
        self.begin()?;
        let result = (|| {
            for (key, mark) in marks {
                let key = super::base_key(key);
                match mark {
                    Some(mark) => self
                        .conn
                        .prepare_cached(
                            "UPDATE messages SET outcome = ?3 WHERE campaign = ?1 AND key = ?2",
                        )?
                        .execute(params![campaign, key, mark.as_str()])?,
                    None => self
                        .conn
                        .prepare_cached("DELETE FROM messages WHERE campaign = ?1 AND key = ?2")?
                        .execute(params![campaign, key])?,
                };
            }
            Ok(())
        })();
        match result {
            Ok(()) => self.commit(),
            Err(e) => {
                self.rollback();
                Err(self.fail(&e))
            }
        }
    }

    fn history(&mut self, telephone: Option<&str>, since: i64) -> Result<Vec<Entry>, LedgerError> {
        let filter = if telephone.is_some() {
            "telephone = ?1 AND at >= ?2"
        } else {
            "?1 IS NULL AND at >= ?2"
        };
        let result = (|| {
            self.conn
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM (SELECT {COLUMNS}, id FROM messages WHERE {filter} \
                     UNION ALL SELECT {COLUMNS}, id FROM claims WHERE {filter}) \
                     ORDER BY at DESC, id DESC"
                ))?
                .query_map(params![telephone, since], Self::entry)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })();
        result.map_err(|e| self.fail(&e))
    }

    fn import(&mut self, entries: &[Entry]) -> Result<usize, LedgerError> {
        self.begin()?;
        let result = (|| {
            let mut stmt = self.conn.prepare_cached(
                "INSERT INTO messages (key, telephone, kind, excerpt, connector, at, \
                 outcome, campaign, list, row) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                 ON CONFLICT (campaign, key) DO NOTHING",
            )?;
            let mut added = 0;
            for e in entries {
                added += stmt.execute(params![
                    e.key,
                    e.telephone,
                    e.kind,
                    e.excerpt,
                    e.connector,
                    e.at,
                    e.mark.as_str(),
                    e.campaign,
                    e.list,
                    i64::try_from(e.row).unwrap_or(i64::MAX)
                ])?;
            }
            Ok(added)
        })();
        match result {
            Ok(n) => self.commit().map(|()| n),
            Err(e) => {
                self.rollback();
                Err(self.fail(&e))
            }
        }
    }

    fn forget(&mut self, telephone: &str) -> Result<usize, LedgerError> {
        let n = self
            .conn
            .execute(
                "DELETE FROM messages WHERE telephone = ?1",
                params![telephone],
            )
            .and_then(|n| {
                self.conn
                    .execute(
                        "DELETE FROM claims WHERE telephone = ?1",
                        params![telephone],
                    )
                    .map(|m| n + m)
            })
            .map_err(|e| self.fail(&e))?;
        // The erased rows must not linger in free pages or the WAL.
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")
            .map_err(|e| self.fail(&e))?;
        Ok(n)
    }

    fn prune(&mut self, before: i64, claims_before: i64) -> Result<usize, LedgerError> {
        // Claims too, later: an old one was left by a run killed and never resumed.
        self.conn
            .execute("DELETE FROM messages WHERE at < ?1", params![before])
            .and_then(|n| {
                self.conn
                    .execute("DELETE FROM claims WHERE at < ?1", params![claims_before])
                    .map(|m| n + m)
            })
            .map_err(|e| self.fail(&e))
    }
}
