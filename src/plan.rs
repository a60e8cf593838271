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
*/

use crate::journal::{Outcome, Prior, Status};
use crate::validate::{Job, Problem, Verdict};

/// The `--resume` flags (and `--dry-run`) that change the decisions.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Flags {
    pub(crate) dry_run: bool,
    pub(crate) retry_failed: bool,
    pub(crate) retry_unknown: bool,
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
                Outcome::local(
                    row,
                    &telephone,
                    Status::Duplicate,
                    crate::tr_en!("msg-duplicate", row = of_row),
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
                let o = Outcome::local(
                    row,
                    &telephone,
                    Status::Unknown,
                    crate::tr_en!(
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
                let o = Outcome::local(
                    row,
                    &telephone,
                    Status::Suppressed,
                    crate::tr_en!("msg-opted-out", list = list.display()),
                );
                Decision {
                    record: Some((o, Some(key))),
                    ..Decision::default()
                }
            }
        }
        Verdict::Valid(job) if flags.dry_run => Decision {
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
        },
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
        let stopped = crate::tr_en!("msg-interrupted-earlier", row = then);
        return if flags.retry_unknown {
            Decision {
                earlier: Some(Outcome::local(
                    job.row,
                    &job.telephone,
                    Status::Unknown,
                    stopped,
                )),
                job: Some(job),
                ..Decision::default()
            }
        } else {
            let o = Outcome::local(
                job.row,
                &job.telephone,
                Status::Unknown,
                crate::tr_en!("msg-retry-unknown-sends", stopped = stopped),
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
mod tests {
    use super::*;

    fn job(row: u64, key: &str) -> Job {
        Job::for_test(row, key)
    }

    fn prior_with(status: Status) -> Prior {
        let mut prior = Prior::default();
        prior.done.insert(
            "k".into(),
            Outcome::local(9, "573001234569", status, "earlier"),
        );
        prior
    }

    const PLAIN: Flags = Flags {
        dry_run: false,
        retry_failed: false,
        retry_unknown: false,
    };
    const RETRY_FAILED: Flags = Flags {
        retry_failed: true,
        ..PLAIN
    };
    const RETRY_UNKNOWN: Flags = Flags {
        retry_unknown: true,
        ..PLAIN
    };

    /// The table in the module doc, line by line: (earlier, flags) -> sent again?
    #[test]
    fn the_resume_decision_table() {
        use Status::*;
        let cases = [
            (Some(Sent), [false, false, false]),
            (Some(Suppressed), [false, false, false]),
            (Some(Failed), [false, true, false]),
            (Some(Unknown), [false, false, true]),
            (Some(NotSent), [true, true, true]),
            (None, [true, true, true]),
        ];
        for (earlier, sends) in cases {
            for (flags, send) in [PLAIN, RETRY_FAILED, RETRY_UNKNOWN].into_iter().zip(sends) {
                let prior = earlier.map(prior_with).unwrap_or_default();
                let d = decide(Verdict::Valid(job(1, "k")), &prior, flags);
                assert_eq!(d.job.is_some(), send, "{earlier:?} {flags:?}");
                if send {
                    assert!(d.record.is_none() && d.carried.is_none());
                    // A retried failed/unknown row keeps its earlier outcome in reserve.
                    let reserve = matches!(earlier, Some(Failed | Unknown));
                    assert_eq!(d.earlier.is_some(), reserve, "{earlier:?} {flags:?}");
                } else {
                    let (o, key) = d.record.expect("carried rows are recorded");
                    assert_eq!(Some(o.status), earlier, "{flags:?}");
                    assert_eq!(o.row, 1, "carried under this run's row number");
                    assert_eq!(key, None, "carried outcomes are not journaled again");
                    assert_eq!(d.carried, earlier);
                }
            }
        }
    }

    #[test]
    fn a_journal_of_an_earlier_version_is_found_by_the_legacy_key() {
        // Journals written before "the same message" had one meaning recorded a text
        // with a trailing space under the key of its raw bytes.
        let legacy = || Job {
            legacy_key: Some("old".into()),
            ..job(1, "new")
        };
        let mut prior = Prior::default();
        prior.done.insert(
            "old".into(),
            Outcome::local(9, "573001234569", Status::Sent, "earlier"),
        );
        let d = decide(Verdict::Valid(legacy()), &prior, PLAIN);
        assert!(d.job.is_none(), "sent under the old key: not again");
        assert_eq!(d.carried, Some(Status::Sent));
        let mut prior = Prior::default();
        prior.interrupted.insert("old".into(), 4);
        let d = decide(Verdict::Valid(legacy()), &prior, PLAIN);
        assert_eq!(d.carried, Some(Status::Unknown));
    }

    #[test]
    fn a_request_in_flight_at_a_kill_is_unknown_unless_retried() {
        let mut prior = Prior::default();
        prior.interrupted.insert("k".into(), 4);
        let d = decide(Verdict::Valid(job(1, "k")), &prior, PLAIN);
        let (o, key) = d.record.unwrap();
        assert_eq!((o.status, key.as_deref()), (Status::Unknown, Some("k")));
        assert!(o.msg.contains("then row 4") && o.msg.contains("--retry-unknown"));
        let d = decide(Verdict::Valid(job(1, "k")), &prior, RETRY_UNKNOWN);
        assert!(d.job.is_some() && d.record.is_none());
        assert_eq!(d.earlier.map(|o| o.status), Some(Status::Unknown));
    }

    #[test]
    fn opted_out_numbers_are_never_sent_but_keep_what_was_delivered() {
        let verdict = || Verdict::Suppressed {
            row: 2,
            shown: 3,
            telephone: "573001234562".into(),
            key: "k".into(),
            list: "optout.txt".into(),
        };
        let d = decide(verdict(), &Prior::default(), RETRY_FAILED);
        let (o, key) = d.record.unwrap();
        assert_eq!((o.status, key.as_deref()), (Status::Suppressed, Some("k")));
        assert!(d.job.is_none());
        let d = decide(verdict(), &prior_with(Status::Sent), PLAIN);
        assert_eq!(d.record.unwrap().0.status, Status::Sent);
        assert!(d.warning.unwrap().contains("opt-out list"));
        let mut prior = Prior::default();
        prior.interrupted.insert("k".into(), 7);
        let d = decide(verdict(), &prior, RETRY_UNKNOWN);
        assert_eq!(d.record.unwrap().0.status, Status::Unknown);
        assert!(d.job.is_none());
    }

    #[test]
    fn invalid_duplicate_and_dry_run_rows() {
        let d = decide(
            Verdict::Invalid {
                row: 3,
                shown: 4,
                telephone: "x".into(),
                problems: vec![Problem {
                    column: "telephone".into(),
                    reason: "is empty".into(),
                }],
            },
            &Prior::default(),
            PLAIN,
        );
        assert_eq!(d.record.unwrap().0.msg, "telephone: is empty");
        let d = decide(
            Verdict::Duplicate {
                row: 4,
                shown: 5,
                telephone: "573001234564".into(),
                of_row: 1,
                of_shown: 2,
            },
            &Prior::default(),
            PLAIN,
        );
        assert_eq!(d.record.unwrap().0.status, Status::Duplicate);
        let d = decide(
            Verdict::Valid(job(5, "k")),
            &prior_with(Status::Sent),
            Flags {
                dry_run: true,
                ..PLAIN
            },
        );
        assert_eq!(d.record.unwrap().0.status, Status::DryRun);
        assert!(d.job.is_some());
    }
}
