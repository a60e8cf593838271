/*!
The plan: for each verdict, what this run does with the row, given what earlier
runs recorded (`journal::Prior`) and the `--resume` flags. This is the resume
decision table, pure so that every line of it is unit-tested; the caller
records what it says (`journal`) and sends the rows it keeps (`send`).

| earlier outcome | `--resume` | `--retry-failed` | `--retry-unknown` |
|---|---|---|---|
| `sent`, `suppressed` | carried | carried | carried |
| `failed` | carried | sent again | carried |
| `unknown`, or in flight at a kill | carried | carried | sent again |
| `not_sent`, none | sent | sent | sent |

A row sent again keeps its earlier outcome in reserve (`Decision::earlier`): if
the run ends without attempting it, that outcome stays (statuses only move
forward). An opted-out number is never sent, but what an earlier run may have
delivered stays its outcome.

Then the send ledger's rules (`Planner`), for a row the table would send:
1. **A changed text in the same campaign** (`--resume`): a number this campaign
   already sent (or may have sent) a message that no row of the list has any more
   is not sent a new text: the row keeps that earlier outcome, its `msg` saying it
   is held, unless `--resend-changed` (then the earlier outcome is kept in reserve).
2. **The same message again**: the same message (content key) that may have gone
   out in another campaign within `repeat_window` is `held`, unless `--allow-repeat`.
   This campaign's own attempts are the journal's business (rows retried by
   `--retry-unknown` / `--retry-failed` are not held by their own earlier attempt):
   only those its journal knows (`ledger::known_keys`, applied by the ledger's `seen`).
3. **A list already sent**: most valid rows held by rule 2 refuses the whole first run
   (`Planner::already_sent`; the caller does not ask on `--resume`).
4. **A frequency cap** (`max_per_phone`): beyond it, `held`, unless `--allow-repeat`.

And the record never forgets what went out: a row of a number this campaign sent a
message that no row has any more (its text changed, it is now invalid, duplicate or
held) keeps that `sent` / `unknown` outcome; what this run decided goes in `msg`.
*/

use std::collections::{HashMap, HashSet};

use crate::i18n::{Arg, Said};
use crate::journal::Prior;
use crate::ledger::{self, Cap, Entry, Seen};
use crate::outcome::{Outcome, Status};
use crate::validate::{Job, Problem, Verdict};

/// The `--resume` flags (and `--dry-run`) that change the decisions.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Flags {
    pub(crate) dry_run: bool,
    /// `--resume` (a dry run of a resume plans against the real run's record).
    pub(crate) resume: bool,
    pub(crate) retry_failed: bool,
    pub(crate) retry_unknown: bool,
    pub(crate) resend_changed: bool,
    pub(crate) allow_repeat: bool,
}

/// What the ledger knows, for rules 2 and 4 (empty with `--no-ledger`).
#[derive(Debug)]
pub(crate) struct LedgerView<'a> {
    pub(crate) seen: &'a Seen,
    pub(crate) cap: Option<Cap>,
    /// Unix seconds now, for the cap's period.
    pub(crate) now: i64,
    /// Times in `msg`.
    pub(crate) tz: &'a jiff::tz::TimeZone,
}

/// Why a row is held, for the results and for `validate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hold {
    /// Rule 2: the same message, already out.
    Repeat(Entry),
    /// Rule 4: the number reached the cap; the last message to it.
    Cap { count: u32, cap: Cap, last: Entry },
}

impl Hold {
    /// The reason in the current language.
    pub(crate) fn text(&self, tz: &jiff::tz::TimeZone) -> String {
        self.said(tz).shown()
    }

    /// The reason as the tool's text (its `english()` is the results file's `msg`): its
    /// values (a local time, a status, a results file, a row, a count) the same in every
    /// language, the cap's period a text of its own, so it is shown in the reader's
    /// language without reading English back.
    pub(crate) fn said(&self, tz: &jiff::tz::TimeZone) -> Said {
        match self {
            // A claim of a run that did not finish is not "went to this number".
            Hold::Repeat(e) if e.mark == ledger::Mark::Pending => crate::said!(
                "msg-held-claimed",
                when = ledger::local_time(e.at, tz),
                results = e.campaign.as_str(),
                row = e.row
            ),
            Hold::Repeat(e) => crate::said!(
                "msg-held-repeat",
                when = ledger::local_time(e.at, tz),
                status = e.mark.as_str(),
                results = e.campaign.as_str(),
                row = e.row
            ),
            Hold::Cap { count, cap, last } => crate::said!(
                "msg-held-cap",
                count = *count,
                per = period(cap.per),
                when = ledger::local_time(last.at, tz),
                results = last.campaign.as_str()
            ),
        }
    }
}

/// A cap's period for people ("1 day", "12 hours", "90 minutes"), the units of
/// `ledger::period_words`, as the tool's text, shown in the reader's language; a period
/// in none of those units as `period_words` writes it (digits and unit symbols).
fn period(per: std::time::Duration) -> Arg {
    let secs = per.as_secs();
    let said = if secs >= 86_400 && secs.is_multiple_of(86_400) {
        crate::said!("ledger-period-days", n = secs / 86_400)
    } else if secs >= 3_600 && secs.is_multiple_of(3_600) {
        crate::said!("ledger-period-hours", n = secs / 3_600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        crate::said!("ledger-period-minutes", n = secs / 60)
    } else {
        return Arg::Text(crate::i18n::with_lang(crate::i18n::Lang::En, || {
            ledger::period_words(per)
        }));
    };
    Arg::Said(Box::new(said))
}

/// The decisions of one run, with what they need beyond a row's own key: this
/// campaign's messages whose rows changed (rule 1 and the record that never forgets),
/// the ledger (rules 2 to 4), and the messages planned so far (the cap).
pub(crate) struct Planner<'a> {
    prior: &'a Prior,
    ledger: Option<LedgerView<'a>>,
    flags: Flags,
    /// This campaign's `sent` / `unknown` outcomes whose message no row of the list
    /// has now, by telephone (in row order), and the rows they were on.
    orphans: HashMap<String, Vec<Outcome>>,
    orphan_rows: HashMap<u64, String>,
    /// Messages this plan sends, per telephone (the cap).
    planned: HashMap<String, u32>,
    /// Valid rows, and those held by rule 2 (with the latest entry that held one).
    valid: u64,
    repeats: u64,
    latest_repeat: Option<Entry>,
    /// The results files of the entries that held rows by rule 2, latest first.
    repeat_campaigns: Vec<(i64, String)>,
    /// Rows held by rule 1 (a changed text).
    changed: u64,
}

impl<'a> Planner<'a> {
    /// A planner for `verdicts` (read once here, for the keys the list has now).
    pub(crate) fn new(
        verdicts: &[Verdict],
        prior: &'a Prior,
        ledger: Option<LedgerView<'a>>,
        flags: Flags,
    ) -> Self {
        let mut present: HashSet<&str> = HashSet::new();
        for v in verdicts {
            match v {
                Verdict::Valid(job) => {
                    present.insert(&job.key);
                    present.extend(job.legacy_key.as_deref());
                }
                Verdict::Suppressed { key, .. } => {
                    present.insert(key);
                }
                _ => {}
            }
        }
        let mut orphans: HashMap<String, Vec<Outcome>> = HashMap::new();
        for (key, o) in &prior.done {
            if matches!(o.status, Status::Sent | Status::Unknown) && !present.contains(key.as_str())
            {
                orphans
                    .entry(o.telephone.clone())
                    .or_default()
                    .push(o.clone());
            }
        }
        for (key, &row) in &prior.interrupted {
            if present.contains(key.as_str()) {
                continue;
            }
            if let Some(telephone) = prior.intent_telephone(key) {
                let o = Outcome::local_said(
                    row,
                    telephone,
                    Status::Unknown,
                    crate::said!("msg-interrupted-earlier", row = row),
                );
                orphans.entry(telephone.to_owned()).or_default().push(o);
            }
        }
        let mut orphan_rows = HashMap::new();
        for (telephone, list) in &mut orphans {
            list.sort_by_key(|o| o.row);
            for o in list.iter() {
                orphan_rows.insert(o.row, telephone.clone());
            }
        }
        Planner {
            prior,
            ledger,
            flags,
            orphans,
            orphan_rows,
            planned: HashMap::new(),
            valid: 0,
            repeats: 0,
            latest_repeat: None,
            repeat_campaigns: Vec::new(),
            changed: 0,
        }
    }

    /// Rule 3: most valid rows held by rule 2. Returns (held, valid, latest entry).
    pub(crate) fn already_sent(&self) -> Option<(u64, u64, &Entry)> {
        let latest = self.latest_repeat.as_ref()?;
        (self.repeats * 2 > self.valid).then_some((self.repeats, self.valid, latest))
    }

    /// Rule 3's error, naming every results file the held rows went out in.
    pub(crate) fn already_sent_error(
        &self,
        tz: &jiff::tz::TimeZone,
    ) -> Option<ledger::LedgerError> {
        let (held, valid, latest) = self.already_sent()?;
        let mut files = self.repeat_campaigns.clone();
        files.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        Some(ledger::LedgerError::ListAlreadySent {
            held,
            valid,
            when: ledger::local_time(latest.at, tz),
            results: files.into_iter().map(|(_, f)| f).collect(),
            pending: latest.mark == ledger::Mark::Pending,
        })
    }

    /// Rows held by rule 1 so far (a changed text, `--resend-changed`).
    pub(crate) fn changed(&self) -> u64 {
        self.changed
    }

    /// Rule 1 alone, for `validate`: why `job` would be held on `--resume`, in the
    /// current language (`None`: it would not).
    pub(crate) fn changed_text(&mut self, job: &Job) -> Option<String> {
        if self.flags.resend_changed {
            return None;
        }
        let earlier = self.take_orphan(&job.telephone, None)?;
        self.changed += 1;
        Some(self.changed_msg(&earlier))
    }

    /// Rule 1's reason, in the current language.
    fn changed_msg(&self, earlier: &Outcome) -> String {
        // The local time people read (the ledger's time zone), else as recorded.
        let when = match (
            earlier.finished_at.parse::<jiff::Timestamp>(),
            self.ledger.as_ref(),
        ) {
            (Ok(at), Some(view)) => ledger::local_time(at.as_second(), view.tz),
            _ => earlier.finished_at.clone(),
        };
        crate::tr!(
            "msg-held-changed",
            row = earlier.row,
            when = when,
            excerpt = self.sent_text(earlier)
        )
    }

    /// Counts a valid row decided outside `decide` (`validate` asks only `hold`).
    pub(crate) fn count_valid(&mut self) {
        self.valid += 1;
    }

    /// Rows held by rules 2 and 4 so far.
    pub(crate) fn repeats(&self) -> u64 {
        self.repeats
    }

    /// Rules 2 and 4 for a row that would be sent; counts it for the cap if not held.
    pub(crate) fn hold(&mut self, job: &Job) -> Option<Hold> {
        let view = self.ledger.as_ref()?;
        if self.flags.allow_repeat {
            return None;
        }
        if let Some(e) = view.seen.by_key.get(ledger::base_key(&job.key)) {
            self.repeats += 1;
            match self
                .repeat_campaigns
                .iter_mut()
                .find(|(_, c)| *c == e.campaign)
            {
                Some((at, _)) => *at = (*at).max(e.at),
                None => self.repeat_campaigns.push((e.at, e.campaign.clone())),
            }
            if self.latest_repeat.as_ref().is_none_or(|l| l.at < e.at) {
                self.latest_repeat = Some(e.clone());
            }
            return Some(Hold::Repeat(e.clone()));
        }
        if let Some(cap) = view.cap {
            let since = view.now - i64::try_from(cap.per.as_secs()).unwrap_or(i64::MAX / 2);
            let earlier: Vec<&Entry> = view
                .seen
                .by_phone
                .get(&job.telephone)
                .map(|v| v.iter().filter(|e| e.at >= since).collect())
                .unwrap_or_default();
            let planned = self.planned.get(&job.telephone).copied().unwrap_or(0);
            let count = u32::try_from(earlier.len()).unwrap_or(u32::MAX) + planned;
            if count >= cap.count {
                let last = earlier.iter().max_by_key(|e| e.at).map(|e| (*e).clone());
                let last = last.unwrap_or_else(|| planned_entry(job, view.now));
                return Some(Hold::Cap { count, cap, last });
            }
        }
        *self.planned.entry(job.telephone.clone()).or_default() += 1;
        None
    }

    /// The earliest outcome of this campaign that no row has now, for `telephone`
    /// (or, when the row is invalid and its telephone is not normalized, at `row`).
    fn take_orphan(&mut self, telephone: &str, row: Option<u64>) -> Option<Outcome> {
        let telephone = match self.orphans.get(telephone) {
            Some(list) if !list.is_empty() => telephone.to_owned(),
            _ => row.and_then(|r| self.orphan_rows.get(&r)).cloned()?,
        };
        let list = self.orphans.get_mut(&telephone)?;
        if list.is_empty() {
            return None;
        }
        let o = list.remove(0);
        self.orphan_rows.remove(&o.row);
        Some(o)
    }

    /// Decides what this run does with one verdict.
    pub(crate) fn decide(&mut self, verdict: Verdict) -> Decision {
        if matches!(verdict, Verdict::Valid(_)) {
            self.valid += 1;
        }
        let invalid_row = match &verdict {
            Verdict::Invalid { row, .. } => Some(*row),
            _ => None,
        };
        let mut decision = match verdict {
            Verdict::Valid(job) => self.decide_send(job),
            other => decide(other, self.prior, self.flags),
        };
        // The record never forgets: a row recorded without a request (invalid,
        // duplicate, held) of a number this campaign sent a message no row has now.
        if let Some((o, _)) = &decision.record
            && matches!(
                o.status,
                Status::Invalid | Status::Duplicate | Status::Held | Status::NotSent
            )
            && let Some(earlier) = self.take_orphan(&o.telephone.clone(), invalid_row)
            && !self.flags.dry_run
        {
            let (row, now) = (o.row, o.msg_arg());
            decision.carried = Some(earlier.status);
            decision.record = Some((kept(earlier, row, now), None));
        }
        decision
    }

    /// A valid row: the resume table, then rule 1, then the ledger's rules.
    fn decide_send(&mut self, job: Job) -> Decision {
        // A dry run plans against the real run's record (the caller's `prior`): a
        // dry run of a resume carries what it would carry; any dry run shows rule 1.
        let mut decision = if self.flags.dry_run && !self.flags.resume {
            Decision {
                job: Some(job),
                ..Decision::default()
            }
        } else {
            decide_valid(job, self.prior, self.flags)
        };
        let Some(job) = &decision.job else {
            return decision;
        };
        // Rule 1: this number got a message of this campaign that no row has now.
        let (telephone, row) = (job.telephone.clone(), job.row);
        if let Some(earlier) = self.take_orphan(&telephone, None) {
            if self.flags.resend_changed {
                decision.earlier = decision.earlier.or(Some(earlier));
            } else {
                self.changed += 1;
                let now =
                    crate::i18n::with_lang(crate::i18n::Lang::En, || self.changed_msg(&earlier));
                if self.flags.dry_run {
                    // The dry run's file says what the resume would do, and holds no
                    // outcome of the real run.
                    return Decision {
                        carried: Some(earlier.status),
                        record: Some((Outcome::local(row, &telephone, Status::Held, now), None)),
                        ..Decision::default()
                    };
                }
                return Decision::keep(earlier, row, Arg::Recorded(now));
            }
        }
        let decision = self.ledger_rules(decision);
        if !self.flags.dry_run {
            return decision;
        }
        match decision.job {
            Some(job) => preview(job),
            None => decision,
        }
    }

    /// What the ledger says of the text sent earlier to this number in this campaign.
    fn sent_text(&self, earlier: &Outcome) -> String {
        self.ledger
            .as_ref()
            .and_then(|view| {
                view.seen
                    .own
                    .values()
                    .find(|e| e.telephone == earlier.telephone && e.row == earlier.row)
            })
            .filter(|e| !e.excerpt.is_empty())
            .map(|e| format!("{:?}", e.excerpt))
            .unwrap_or_else(|| crate::tr!("msg-held-changed-text-unknown"))
    }

    /// Rules 2 and 4 on a decision that sends (or previews) a row.
    fn ledger_rules(&mut self, decision: Decision) -> Decision {
        let Some(job) = &decision.job else {
            return decision;
        };
        let Some(hold) = self.hold(job) else {
            return decision;
        };
        let tz = self
            .ledger
            .as_ref()
            .map(|v| v.tz.clone())
            .unwrap_or(jiff::tz::TimeZone::UTC);
        let o = Outcome::local_said(job.row, &job.telephone, Status::Held, hold.said(&tz));
        match decision.earlier {
            // A retry held: what it had stays (statuses only move forward).
            Some(earlier) => Decision::keep(earlier, o.row, o.msg_arg()),
            None => Decision {
                record: Some((o, None)),
                ..Decision::default()
            },
        }
    }
}

/// An entry for a message this plan sends (the cap's "last message").
fn planned_entry(job: &Job, now: i64) -> Entry {
    Entry {
        key: ledger::base_key(&job.key).to_owned(),
        telephone: job.telephone.clone(),
        kind: String::new(),
        excerpt: String::new(),
        connector: job.connector_id.clone(),
        at: now,
        mark: ledger::Mark::Pending,
        campaign: String::new(),
        list: String::new(),
        row: job.row,
    }
}

/// `earlier`, kept as row `row`'s outcome, with what this run decided in its `msg`.
fn kept(earlier: Outcome, row: u64, now: Arg) -> Outcome {
    let mut o = earlier;
    o.row = row;
    let earlier = o.msg_arg();
    o.say(crate::said!("msg-kept", earlier = earlier, now = now));
    o
}

/// What to do with one row.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    /// An outcome to record now, journaled under the key when one is given.
    pub(crate) record: Option<(Outcome, Option<String>)>,
    /// The row to send (or, in a dry run, to preview).
    pub(crate) job: Option<Job>,
    /// For a row sent again: its earlier outcome, kept if it is not attempted.
    pub(crate) earlier: Option<Outcome>,
    /// An earlier run finished the row, with this outcome: it is skipped.
    pub(crate) carried: Option<Status>,
    /// Something the user should know (at WARN).
    pub(crate) warning: Option<String>,
}

impl Decision {
    /// Skips the row, keeping `earlier` as its outcome with what this run decided in
    /// its `msg` (statuses only move forward).
    fn keep(earlier: Outcome, row: u64, now: Arg) -> Decision {
        Decision {
            carried: Some(earlier.status),
            record: Some((kept(earlier, row, now), None)),
            ..Decision::default()
        }
    }
}

/// The `msg` of an invalid row: every problem, with its column.
pub(crate) fn problems_text(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.column, p.reason.english))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What an earlier run recorded, as this run's row `row`.
fn carried(earlier: &Outcome, row: u64) -> Outcome {
    let mut o = earlier.clone();
    o.row = row;
    o
}

/// A row a dry run would send: previewed, not sent; recorded `dry_run` with what
/// would go out.
fn preview(job: Job) -> Decision {
    Decision {
        record: Some((
            Outcome::local(
                job.row,
                &job.telephone,
                Status::DryRun,
                job.message.as_sent(),
            ),
            None,
        )),
        job: Some(job),
        ..Decision::default()
    }
}

/// Decides what this run does with one verdict.
pub(crate) fn decide(verdict: Verdict, prior: &Prior, flags: Flags) -> Decision {
    match verdict {
        Verdict::Invalid {
            row,
            telephone,
            problems,
            ..
        } => Decision {
            record: Some((
                Outcome::local(row, &telephone, Status::Invalid, problems_text(&problems)),
                None,
            )),
            ..Decision::default()
        },
        // The results file's rows are the list's data rows (a contract): the earlier
        // row is named by its data row too; the workbook shows the sheet's.
        Verdict::Duplicate {
            row,
            telephone,
            of_row,
            ..
        } => Decision {
            record: Some((
                Outcome::local_said(
                    row,
                    &telephone,
                    Status::Duplicate,
                    crate::said!("msg-duplicate", row = of_row),
                ),
                None,
            )),
            ..Decision::default()
        },
        Verdict::Suppressed {
            row,
            shown,
            telephone,
            key,
            list,
        } => {
            // What an earlier run may already have delivered stays the truth; anything
            // else is recorded suppressed, journaled, so no resume ever sends it.
            let earlier = prior
                .done
                .get(&key)
                .filter(|o| matches!(o.status, Status::Sent | Status::Unknown));
            if let Some(earlier) = earlier {
                Decision {
                    record: Some((carried(earlier, row), None)),
                    carried: Some(earlier.status),
                    warning: Some(crate::tr!(
                        "plan-suppressed-after-sent",
                        row = shown,
                        telephone = telephone,
                        list = list.display(),
                        status = earlier.status.as_str()
                    )),
                    ..Decision::default()
                }
            } else if let Some(&then) = prior.interrupted.get(&key) {
                let o = Outcome::local_said(
                    row,
                    &telephone,
                    Status::Unknown,
                    crate::said!(
                        "msg-interrupted-then-opted-out",
                        row = then,
                        list = list.display()
                    ),
                );
                Decision {
                    record: Some((o, Some(key))),
                    carried: Some(Status::Unknown),
                    ..Decision::default()
                }
            } else {
                let o = Outcome::local_said(
                    row,
                    &telephone,
                    Status::Suppressed,
                    crate::said!("msg-opted-out", list = list.display()),
                );
                Decision {
                    record: Some((o, Some(key))),
                    ..Decision::default()
                }
            }
        }
        Verdict::Valid(job) if flags.dry_run => preview(job),
        Verdict::Valid(job) => decide_valid(job, prior, flags),
    }
}

/// What a journal holds for the job: under its key, or under the key an earlier
/// version gave the same row (a text that was not yet in its identifying form).
fn lookup<'a, V>(map: &'a std::collections::HashMap<String, V>, job: &Job) -> Option<&'a V> {
    map.get(&job.key)
        .or_else(|| job.legacy_key.as_ref().and_then(|k| map.get(k)))
}

/// A valid row in a real run: send it, or carry what an earlier run recorded.
fn decide_valid(job: Job, prior: &Prior, flags: Flags) -> Decision {
    if let Some(&then) = lookup(&prior.interrupted, &job) {
        let stopped = crate::said!("msg-interrupted-earlier", row = then);
        return if flags.retry_unknown {
            Decision {
                earlier: Some(Outcome::local_said(
                    job.row,
                    &job.telephone,
                    Status::Unknown,
                    stopped,
                )),
                job: Some(job),
                ..Decision::default()
            }
        } else {
            let o = Outcome::local_said(
                job.row,
                &job.telephone,
                Status::Unknown,
                crate::said!("msg-retry-unknown-sends", stopped = stopped),
            );
            Decision {
                record: Some((o, Some(job.key))),
                carried: Some(Status::Unknown),
                ..Decision::default()
            }
        };
    }
    let earlier = lookup(&prior.done, &job);
    let carry = earlier.filter(|o| match o.status {
        // Suppressed in an earlier run: stays so even if the list is not given now.
        Status::Sent | Status::Suppressed => true,
        Status::Failed => !flags.retry_failed,
        Status::Unknown => !flags.retry_unknown,
        _ => false,
    });
    match carry {
        Some(earlier) => Decision {
            record: Some((carried(earlier, job.row), None)),
            carried: Some(earlier.status),
            ..Decision::default()
        },
        None => Decision {
            // A retry: what it had stays unless this run really attempts it.
            earlier: earlier
                .filter(|o| matches!(o.status, Status::Failed | Status::Unknown))
                .cloned(),
            job: Some(job),
            ..Decision::default()
        },
    }
}

#[cfg(test)]
mod tests;
