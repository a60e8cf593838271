/*!
The ledger in PostgreSQL, shared by every host and person of a team (`[ledger] url`).

The same two tables as the SQLite store (`wolkvox_messages`: settled; `wolkvox_claims`:
what runs may be sending now), the same rules, behind the same `Store` trait.

Invariants:
- The check and the claim of a plan are one transaction that first takes a
  transaction-scoped advisory lock (`pg_advisory_xact_lock`): claims of all hosts are
  serialized as SQLite's `BEGIN IMMEDIATE` serializes them on one machine, so two runs
  claiming the same message (or the last message a frequency cap allows) at once
  cannot both find it free: one commits first, the other then sees its claim. The
  isolation is READ COMMITTED, so each statement after the lock sees that commit.
- Every statement is set-based (arrays, `unnest`): a plan of 10,000 rows is a handful
  of round trips before the first request, and none while sending.
- A campaign (results file) is named with the host it runs on (`host:/path`): two
  hosts with the same path are two campaigns, never settling each other's claims.
- The schema's version is in `wolkvox_schema`; `migrate` brings it up to date under
  another advisory lock (first use, or `ledger migrate`); a newer one is refused.
- No password in the url (refused by `check_url`): it comes from `PGPASSWORD` or the
  password file (`PGPASSFILE`, else `~/.pgpass`), as libpq reads them, and is never
  shown. `sslmode=require` verifies the server's certificate with the API's rules:
  the system's roots, or `SSL_CERT_FILE` / `SSL_CERT_DIR`. Any other sslmode is plain.
- The sync client runs its own small runtime: called from inside tokio it would
  panic, so there each call runs on a scoped thread.
*/

use std::collections::HashSet;

use postgres::types::ToSql;
use postgres::{Client, Row};

#[cfg(test)]
pub(crate) use super::pg_connect::pgpass_lookup;
pub(crate) use super::pg_connect::{Target, check_url};
use super::pg_connect::{host_name, off_runtime};
use super::{Entry, LedgerError, Mark, Seen, Settled, Store};
use crate::tr;

/// The schema this version writes: every step, in order (`wolkvox_schema.version` is
/// the number of steps applied).
const MIGRATIONS: &[&str] = &["
CREATE TABLE wolkvox_messages (
    id BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL,
    telephone TEXT NOT NULL,
    kind TEXT NOT NULL,
    excerpt TEXT NOT NULL,
    connector TEXT NOT NULL,
    at BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    campaign TEXT NOT NULL,
    list TEXT NOT NULL,
    row BIGINT NOT NULL,
    UNIQUE (campaign, key)
);
CREATE INDEX wolkvox_messages_by_key ON wolkvox_messages (key, at);
CREATE INDEX wolkvox_messages_by_phone ON wolkvox_messages (telephone, at);
CREATE INDEX wolkvox_messages_by_time ON wolkvox_messages (at);
CREATE TABLE wolkvox_claims (
    id BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL,
    telephone TEXT NOT NULL,
    kind TEXT NOT NULL,
    excerpt TEXT NOT NULL,
    connector TEXT NOT NULL,
    at BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    campaign TEXT NOT NULL,
    list TEXT NOT NULL,
    row BIGINT NOT NULL,
    UNIQUE (campaign, key)
);
CREATE INDEX wolkvox_claims_by_key ON wolkvox_claims (key);
CREATE INDEX wolkvox_claims_by_phone ON wolkvox_claims (telephone);
"];

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Advisory lock keys ("wolkvox" in ASCII, then 1 and 2): the claim, the migration.
const CLAIM_LOCK: i64 = 0x776f_6c6b_766f_7801;
const MIGRATE_LOCK: i64 = 0x776f_6c6b_766f_7802;

const COLUMNS: &str = "key, telephone, kind, excerpt, connector, at, campaign, outcome, list, row";

/// The PostgreSQL store: one connection.
pub(crate) struct Postgres {
    client: Client,
    target: Target,
    host: String,
    /// Inside `begin`'s transaction.
    in_tx: bool,
}

/// Columns of a batch of entries, for `unnest`.
#[derive(Default)]
struct Columns {
    key: Vec<String>,
    telephone: Vec<String>,
    kind: Vec<String>,
    excerpt: Vec<String>,
    connector: Vec<String>,
    at: Vec<i64>,
    outcome: Vec<String>,
    campaign: Vec<String>,
    list: Vec<String>,
    row: Vec<i64>,
}

const UNNEST: &str = "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
     $5::text[], $6::int8[], $7::text[], $8::text[], $9::text[], $10::int8[])";

impl Columns {
    fn params(&self) -> [&(dyn ToSql + Sync); 10] {
        [
            &self.key,
            &self.telephone,
            &self.kind,
            &self.excerpt,
            &self.connector,
            &self.at,
            &self.outcome,
            &self.campaign,
            &self.list,
            &self.row,
        ]
    }
}

impl Postgres {
    /// Connects to `target` and brings the schema up to date (first use).
    pub(crate) fn open(target: &Target) -> Result<Self, LedgerError> {
        let mut store = Self::connect(target)?;
        // Only reads when the schema is current: a user allowed only to read and write
        // the tables (not to create any) uses a ledger someone else migrated.
        match store.version()? {
            v if v > SCHEMA_VERSION => return Err(store.newer(v)),
            v if v < SCHEMA_VERSION => {
                store.migrate()?;
            }
            _ => {}
        }
        Ok(store)
    }

    /// Connects without creating anything; `None` when the schema is not there yet
    /// (`validate`, dry runs and `history` create nothing).
    pub(crate) fn open_existing(target: &Target) -> Result<Option<Self>, LedgerError> {
        let mut store = Self::connect(target)?;
        match store.version()? {
            0 => Ok(None),
            v if v > SCHEMA_VERSION => Err(store.newer(v)),
            v if v < SCHEMA_VERSION => {
                store.migrate()?;
                Ok(Some(store))
            }
            _ => Ok(Some(store)),
        }
    }

    /// Connects and brings the schema up to date: the versions before and after
    /// (`ledger migrate`).
    pub(crate) fn migrate_at(target: &Target) -> Result<(i32, i32), LedgerError> {
        Self::connect(target)?.migrate()
    }

    fn connect(target: &Target) -> Result<Self, LedgerError> {
        Ok(Postgres {
            client: target.connect()?,
            target: target.clone(),
            host: host_name(),
            in_tx: false,
        })
    }

    fn newer(&self, version: i32) -> LedgerError {
        LedgerError::Failed {
            path: self.target.shown().to_owned().into(),
            problem: tr!("ledger-problem-newer", version = version),
        }
    }

    /// Runs `f` with the client (off any tokio runtime), its error in the person's words.
    fn call<R: Send>(
        &mut self,
        f: impl FnOnce(&mut Client) -> Result<R, postgres::Error> + Send,
    ) -> Result<R, LedgerError> {
        let client = &mut self.client;
        match off_runtime(move || f(client)) {
            Some(Ok(r)) => Ok(r),
            Some(Err(e)) => Err(self.target.fail(&e)),
            None => Err(self.target.lost()),
        }
    }

    /// The schema version in the database (0: none).
    fn version(&mut self) -> Result<i32, LedgerError> {
        self.call(|c| {
            let exists: bool = c
                .query_one("SELECT to_regclass('wolkvox_schema') IS NOT NULL", &[])?
                .try_get(0)?;
            if !exists {
                return Ok(0);
            }
            // Cast: a column someone altered is read, not a panic.
            let row = c.query_one("SELECT max(version)::int4 FROM wolkvox_schema", &[])?;
            Ok(row.try_get::<_, Option<i32>>(0)?.unwrap_or(0))
        })
    }

    /// Brings the schema up to date; returns the versions before and after. One
    /// transaction under an advisory lock: hosts starting at once migrate once.
    pub(crate) fn migrate(&mut self) -> Result<(i32, i32), LedgerError> {
        let from = self.call(|c| {
            // The lock before the transaction: a transaction begun before another host's
            // migration committed would still see the catalog without its tables.
            c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK])?;
            let done = Self::migrate_locked(c);
            let unlocked = c.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK]);
            let from = done?;
            unlocked?;
            Ok(from)
        })?;
        if from > SCHEMA_VERSION {
            return Err(self.newer(from));
        }
        Ok((from, from.max(SCHEMA_VERSION)))
    }

    /// The migration, under `MIGRATE_LOCK`: the version found.
    fn migrate_locked(c: &mut Client) -> Result<i32, postgres::Error> {
        {
            let mut tx = c.transaction()?;
            let exists: bool = tx
                .query_one("SELECT to_regclass('wolkvox_schema') IS NOT NULL", &[])?
                .try_get(0)?;
            if !exists {
                tx.batch_execute("CREATE TABLE wolkvox_schema (version INTEGER NOT NULL)")?;
            }
            let from: i32 = tx
                .query_one(
                    "SELECT COALESCE(max(version), 0)::int4 FROM wolkvox_schema",
                    &[],
                )?
                .try_get(0)?;
            if from >= SCHEMA_VERSION {
                tx.commit()?;
                return Ok(from);
            }
            for step in &MIGRATIONS[usize::try_from(from).unwrap_or(0)..] {
                tx.batch_execute(step)?;
            }
            tx.execute("DELETE FROM wolkvox_schema", &[])?;
            tx.execute(
                "INSERT INTO wolkvox_schema (version) VALUES ($1)",
                &[&SCHEMA_VERSION],
            )?;
            tx.commit()?;
            Ok(from)
        }
    }

    /// A campaign as this store files it: with the host it runs on.
    fn here(&self, campaign: &str) -> String {
        if campaign.is_empty() {
            String::new()
        } else {
            format!("{}:{campaign}", self.host)
        }
    }

    fn columns(&self, entries: &[Entry], mark: Option<Mark>) -> Columns {
        let mut c = Columns::default();
        for e in entries {
            c.key.push(e.key.clone());
            c.telephone.push(e.telephone.clone());
            c.kind.push(e.kind.clone());
            c.excerpt.push(e.excerpt.clone());
            c.connector.push(e.connector.clone());
            c.at.push(e.at);
            c.outcome.push(mark.unwrap_or(e.mark).as_str().to_owned());
            c.campaign.push(self.here(&e.campaign));
            c.list.push(e.list.clone());
            c.row.push(i64::try_from(e.row).unwrap_or(i64::MAX));
        }
        c
    }

    /// An entry from a row of `COLUMNS`; a column of another type (a table altered by
    /// hand) is an error, not a panic.
    fn entry(row: &Row) -> Result<Entry, postgres::Error> {
        let mark: String = row.try_get(7)?;
        Ok(Entry {
            key: row.try_get(0)?,
            telephone: row.try_get(1)?,
            kind: row.try_get(2)?,
            excerpt: row.try_get(3)?,
            connector: row.try_get(4)?,
            at: row.try_get(5)?,
            campaign: row.try_get(6)?,
            mark: Mark::parse(&mark).unwrap_or(Mark::Unknown),
            list: row.try_get(8)?,
            row: u64::try_from(row.try_get::<_, i64>(9)?).unwrap_or(0),
        })
    }

    /// Adds entries to the settled table, keeping any already there; how many added.
    fn insert_settled(&mut self, entries: &[Entry]) -> Result<u64, LedgerError> {
        let cols = self.columns(entries, None);
        self.call(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO wolkvox_messages ({COLUMNS_IN}) {UNNEST} \
                     ON CONFLICT (campaign, key) DO NOTHING"
                ),
                &cols.params(),
            )
        })
    }

    /// A connection the server or a firewall closed (idle while a long run sent) is made
    /// again, before a transaction starts; never inside one.
    fn revive(&mut self) -> Result<(), LedgerError> {
        if !self.in_tx && self.probe().is_err() {
            self.client = self.target.connect()?;
        }
        Ok(())
    }

    /// Is the server still there? (A cheap query, for the watch during a run.)
    fn probe(&mut self) -> Result<(), LedgerError> {
        self.call(|c| c.simple_query("SELECT 1").map(drop))
    }
}

/// The insert order of `Columns`.
const COLUMNS_IN: &str =
    "key, telephone, kind, excerpt, connector, at, outcome, campaign, list, row";

impl Store for Postgres {
    fn begin(&mut self) -> Result<(), LedgerError> {
        self.revive()?;
        self.call(|c| {
            // A committed claim is on the server's disk (whatever its default), as
            // SQLite's `synchronous=FULL`: a crash of the server never forgets it.
            c.batch_execute(
                "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit TO on",
            )?;
            c.execute("SELECT pg_advisory_xact_lock($1)", &[&CLAIM_LOCK])
                .map(drop)
        })?;
        self.in_tx = true;
        Ok(())
    }

    fn settle(&mut self, campaign: &str, settled: &Settled) -> Result<(), LedgerError> {
        let campaign = self.here(campaign);
        let mut keys = Vec::new();
        let mut outcomes = Vec::new();
        let mut ats: Vec<Option<i64>> = Vec::new();
        for key in &settled.in_flight {
            if !settled.outcomes.contains_key(key) {
                keys.push(key.clone());
                outcomes.push(Mark::Unknown.as_str().to_owned());
                ats.push(None);
            }
        }
        for (key, (mark, at)) in &settled.outcomes {
            keys.push(key.clone());
            outcomes.push(mark.as_str().to_owned());
            ats.push(Some(*at));
        }
        // Inside `begin`'s transaction when there is one (a resume's plan); else its own.
        let outer = !self.in_tx;
        self.revive()?;
        self.call(move |c| {
            let sql = "WITH s (key, outcome, at) AS \
                 (SELECT * FROM unnest($2::text[], $3::text[], $4::int8[])) \
                 INSERT INTO wolkvox_messages (key, telephone, kind, excerpt, connector, at, \
                 outcome, campaign, list, row) \
                 SELECT c.key, c.telephone, c.kind, c.excerpt, c.connector, \
                 COALESCE(s.at, c.at), s.outcome, c.campaign, c.list, c.row \
                 FROM wolkvox_claims c JOIN s ON s.key = c.key \
                 WHERE c.campaign = $1 \
                 ON CONFLICT (campaign, key) DO UPDATE SET outcome = excluded.outcome, \
                 at = excluded.at, row = excluded.row, list = excluded.list, \
                 excerpt = excluded.excerpt";
            if outer {
                c.batch_execute("BEGIN")?;
            }
            let done = c
                .execute(sql, &[&campaign, &keys, &outcomes, &ats])
                .and_then(|_| {
                    c.execute(
                        "DELETE FROM wolkvox_claims WHERE campaign = $1",
                        &[&campaign],
                    )
                });
            match done {
                Ok(_) if outer => c.batch_execute("COMMIT"),
                Ok(_) => Ok(()),
                Err(e) => {
                    if outer {
                        let _ = c.batch_execute("ROLLBACK");
                    }
                    Err(e)
                }
            }
        })
    }

    fn seen(
        &mut self,
        campaign: &str,
        known: &HashSet<String>,
        keys: &[&str],
        phones: &[&str],
        since_key: i64,
        since_phone: Option<i64>,
    ) -> Result<Seen, LedgerError> {
        let campaign = self.here(campaign);
        let mut keys: Vec<&str> = keys.to_vec();
        keys.sort_unstable();
        keys.dedup();
        // A key this campaign's journal does not know: its own entries hold it too.
        let (exempt, held): (Vec<&str>, Vec<&str>) = keys.iter().partition(|k| known.contains(**k));
        let mut phones: Vec<&str> = phones.to_vec();
        phones.sort_unstable();
        phones.dedup();
        let rows = self.call(move |c| {
            let by_key = c.query(
                &format!(
                    "SELECT DISTINCT ON (key) {COLUMNS} FROM ( \
                     SELECT {COLUMNS} FROM wolkvox_claims WHERE at >= $2 AND \
                     ((key = ANY($3) AND campaign <> $1) OR key = ANY($4)) \
                     UNION ALL \
                     SELECT {COLUMNS} FROM wolkvox_messages WHERE at >= $2 AND \
                     outcome <> 'failed' AND \
                     ((key = ANY($3) AND campaign <> $1) OR key = ANY($4)) \
                     ) e ORDER BY key, at DESC, outcome = 'pending' DESC"
                ),
                &[&campaign, &since_key, &exempt, &held],
            )?;
            let own = c.query(
                &format!(
                    "SELECT {COLUMNS} FROM wolkvox_messages WHERE campaign = $1 \
                     UNION ALL SELECT {COLUMNS} FROM wolkvox_claims WHERE campaign = $1"
                ),
                &[&campaign],
            )?;
            let by_phone = match since_phone {
                Some(since) => c.query(
                    &format!(
                        "SELECT {COLUMNS} FROM wolkvox_messages WHERE telephone = ANY($2) \
                         AND at >= $3 AND outcome <> 'failed' \
                         UNION ALL SELECT {COLUMNS} FROM wolkvox_claims \
                         WHERE telephone = ANY($2) AND at >= $3 AND campaign <> $1"
                    ),
                    &[&campaign, &phones, &since],
                )?,
                None => Vec::new(),
            };
            let entries =
                |rows: Vec<Row>| rows.iter().map(Self::entry).collect::<Result<Vec<_>, _>>();
            Ok((entries(by_key)?, entries(own)?, entries(by_phone)?))
        })?;
        let (by_key, own, by_phone) = rows;
        let mut seen = Seen::default();
        for e in by_key {
            seen.by_key.insert(e.key.clone(), e);
        }
        for e in own {
            seen.own.insert(e.key.clone(), e);
        }
        for e in by_phone {
            seen.by_phone
                .entry(e.telephone.clone())
                .or_default()
                .push(e);
        }
        Ok(seen)
    }

    fn claim(&mut self, entries: &[Entry]) -> Result<(), LedgerError> {
        let cols = self.columns(entries, Some(Mark::Pending));
        self.call(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO wolkvox_claims ({COLUMNS_IN}) {UNNEST} \
                     ON CONFLICT (campaign, key) DO UPDATE SET outcome = 'pending', \
                     at = excluded.at, row = excluded.row, list = excluded.list"
                ),
                &cols.params(),
            )
            .map(drop)
        })
    }

    fn seed(&mut self, entries: &[Entry]) -> Result<(), LedgerError> {
        self.insert_settled(entries).map(drop)
    }

    fn commit(&mut self) -> Result<(), LedgerError> {
        let done = self.call(|c| c.batch_execute("COMMIT"));
        self.in_tx = false;
        if done.is_err() {
            self.rollback();
        }
        done
    }

    fn rollback(&mut self) {
        if std::mem::take(&mut self.in_tx) {
            let _ = self.call(|c| c.batch_execute("ROLLBACK"));
        }
    }

    fn update(
        &mut self,
        campaign: &str,
        marks: &[(String, Option<Mark>)],
    ) -> Result<(), LedgerError> {
        let campaign = self.here(campaign);
        let (mut set_keys, mut set_marks, mut gone) = (Vec::new(), Vec::new(), Vec::new());
        for (key, mark) in marks {
            let key = super::base_key(key).to_owned();
            match mark {
                Some(m) => {
                    set_keys.push(key);
                    set_marks.push(m.as_str().to_owned());
                }
                None => gone.push(key),
            }
        }
        self.call(move |c| {
            let mut tx = c.transaction()?;
            tx.execute(
                "UPDATE wolkvox_messages m SET outcome = u.outcome \
                 FROM unnest($2::text[], $3::text[]) AS u (key, outcome) \
                 WHERE m.campaign = $1 AND m.key = u.key",
                &[&campaign, &set_keys, &set_marks],
            )?;
            tx.execute(
                "DELETE FROM wolkvox_messages WHERE campaign = $1 AND key = ANY($2)",
                &[&campaign, &gone],
            )?;
            tx.commit()
        })
    }

    fn history(&mut self, telephone: Option<&str>, since: i64) -> Result<Vec<Entry>, LedgerError> {
        let telephone = telephone.map(str::to_owned);
        let rows = self.call(move |c| {
            c.query(
                &format!(
                    "SELECT {COLUMNS} FROM (SELECT {COLUMNS}, id FROM wolkvox_messages \
                     WHERE ($1::text IS NULL OR telephone = $1) AND at >= $2 \
                     UNION ALL SELECT {COLUMNS}, id FROM wolkvox_claims \
                     WHERE ($1::text IS NULL OR telephone = $1) AND at >= $2) e \
                     ORDER BY at DESC, id DESC"
                ),
                &[&telephone, &since],
            )?
            .iter()
            .map(Self::entry)
            .collect()
        })?;
        Ok(rows)
    }

    fn import(&mut self, entries: &[Entry]) -> Result<usize, LedgerError> {
        self.insert_settled(entries)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn forget(&mut self, telephone: &str) -> Result<usize, LedgerError> {
        let telephone = telephone.to_owned();
        let n = self.call(move |c| {
            let mut tx = c.transaction()?;
            let n = tx.execute(
                "DELETE FROM wolkvox_messages WHERE telephone = $1",
                &[&telephone],
            )? + tx.execute(
                "DELETE FROM wolkvox_claims WHERE telephone = $1",
                &[&telephone],
            )?;
            tx.commit()?;
            // The erased rows must not linger in dead tuples (needs the tables' owner:
            // without it they go at the next autovacuum).
            let _ = c.batch_execute("VACUUM wolkvox_messages, wolkvox_claims");
            Ok(n)
        })?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn watch(&self) -> Option<Box<dyn FnMut() -> Result<(), LedgerError> + Send>> {
        // Its own connection, made at the first look (the run's stays for the end).
        let target = self.target.clone();
        let mut conn: Option<Postgres> = None;
        Some(Box::new(move || {
            if let Some(store) = conn.as_mut()
                && store.probe().is_ok()
            {
                return Ok(());
            }
            // No connection yet, or it broke (a server restarted, an idle link cut):
            // one more try on a new one before the run is told.
            conn = None;
            let store = conn.insert(Postgres::connect(&target)?);
            store.probe()
        }))
    }

    fn prune(&mut self, before: i64, claims_before: i64) -> Result<usize, LedgerError> {
        let n = self.call(move |c| {
            let mut tx = c.transaction()?;
            let n = tx.execute("DELETE FROM wolkvox_messages WHERE at < $1", &[&before])?
                + tx.execute(
                    "DELETE FROM wolkvox_claims WHERE at < $1",
                    &[&claims_before],
                )?;
            tx.commit()?;
            Ok(n)
        })?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}
