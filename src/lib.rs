/*!
wolkvox-dispatch: send a contact list as WhatsApp messages through the Wolkvox
API, safely and as fast as the API allows.

Data flows one way: `input` reads rows, `validate` turns each into a verdict
(with `suppress` marking opted-out numbers), `dispatch` sends the valid ones
through `api` within the contact hours of `window`, and `results` records
every outcome; `report` shows progress and the summary, and `report_cmd`
summarizes any results file afterwards. `run` wires them together
for each command and maps what happened to an `Exit` code that scripts rely on.
*/

pub mod cli;
pub mod config;
pub mod input;
pub mod journal;
pub mod report;
pub mod send;
pub mod text;
pub mod validate;

use crate::send::{api, dispatch, quota, window};
use crate::validate::suppress;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, SendArgs, ValidateArgs};
use crate::config::{ListSettings, SendSettings};
use crate::journal::{Outcome, Prior, Recorder, Status};
use crate::report::{Progress, Summary, SummaryJson, human_duration};
use crate::send::window::ContactWindow;
use crate::validate::suppress::Suppression;
use crate::validate::{Job, Validator, Verdict};

/// Exit codes: a contract with scripts and cron jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every row was sent (dry run, validate: every row is valid).
    Success = 0,
    /// The run finished, but some rows were invalid, failed, unknown or duplicate.
    SomeRowsNotSent = 1,
    /// Nothing was sent: a usage, configuration or input error.
    NothingSent = 2,
    /// The run stopped early; `--resume` continues it.
    Stopped = 3,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Errors that stop a command before anything is sent (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Input(#[from] input::InputError),
    /// Boxed: header errors carry several names and would make every `Result` large.
    #[error(transparent)]
    Header(Box<validate::HeaderError>),
    #[error(transparent)]
    Results(#[from] journal::ResultsError),
    #[error(transparent)]
    Client(#[from] api::ClientError),
    #[error(transparent)]
    Quota(#[from] quota::QuotaError),
    #[error(transparent)]
    Suppress(#[from] suppress::SuppressError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error(
        "{results} records another campaign: {differences}. Nothing was sent. To continue the recorded run, run: {command}\nTo send this one instead, give it its own results file with --results"
    )]
    OtherCampaign {
        results: std::path::PathBuf,
        differences: String,
        command: String,
    },
}

impl From<validate::HeaderError> for Error {
    fn from(e: validate::HeaderError) -> Self {
        Error::Header(Box::new(e))
    }
}

impl Error {
    pub fn exit(&self) -> Exit {
        Exit::NothingSent
    }
}

/// Runs one command.
pub fn run(cli: Cli) -> Result<Exit, Error> {
    match cli.command {
        Command::Validate(args) => validate_command(&args),
        Command::Send(args) => {
            let started_at = journal::now();
            let result = send_command(&args, &started_at);
            if let (Err(e), Some(path)) = (&result, &args.summary_json) {
                // The run never got to a summary: the JSON says why, with exit code 2.
                let counts = HashMap::new();
                let summary = Summary {
                    title: "error",
                    counts: &counts,
                    elapsed: Duration::ZERO,
                    skipped: 0,
                    sent_before: 0,
                    results: args.results.as_deref().unwrap_or(Path::new("")),
                    estimate: None,
                    stopped: None,
                    hours: None,
                };
                write_summary_json(
                    path,
                    &SummaryJson {
                        summary: &summary,
                        exit_code: e.exit().code(),
                        dry_run: args.dry_run,
                        started_at: &started_at,
                        finished_at: &journal::now(),
                        error: Some(e.to_string()),
                    },
                );
            }
            result
        }
        Command::Report(args) => report::analysis::run(&args),
    }
}

/// What reading a list found besides the verdicts.
struct ListRead {
    /// Data rows.
    rows: u64,
    /// The opt-out lists applied, if any were given.
    suppression: Option<Arc<Suppression>>,
    /// Whether the rows are HSM templates (decided from the settings and the header).
    template: bool,
    /// SHA-256 of the header's names, to recognise the list in the journal.
    header_digest: String,
}

/// Reads and judges every row, handing each verdict to `each` as it is made.
/// Fails on an unreadable opt-out list or contact list, a missing column, or more
/// rows than allowed, before any verdict is acted on by a send.
fn read_list(list: &ListSettings, each: impl FnMut(Verdict)) -> Result<ListRead, Error> {
    let opened = open_list(list)?;
    tracing::info!(
        "{}: {}; {}",
        list.input.display(),
        opened.rows.format(),
        opened.validator.columns_summary()
    );
    judge_rows(list, opened, each)
}

/// A list whose header has been checked, ready to be judged row by row.
struct OpenList {
    rows: input::Rows,
    validator: Validator,
    suppression: Option<Arc<Suppression>>,
    header_digest: String,
}

/// Loads the opt-out lists, opens the contact list and checks its header.
fn open_list(list: &ListSettings) -> Result<OpenList, Error> {
    let suppression = if list.suppress.is_empty() {
        None
    } else {
        Some(Arc::new(Suppression::load_for(
            &list.suppress,
            &list.columns.telephone,
            list.default_country,
        )?))
    };
    let rows = input::open_with(&list.input, &list.read)?;
    let header_digest = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(rows.header().join("\u{1f}").as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    };
    let mut validator = Validator::new(rows.header(), list)?;
    if let Some(s) = &suppression {
        validator = validator.with_suppression(Arc::clone(s));
    }
    Ok(OpenList {
        rows,
        validator,
        suppression,
        header_digest,
    })
}

/// The rows of `read_list`, once the header is checked.
fn judge_rows(
    list: &ListSettings,
    opened: OpenList,
    mut each: impl FnMut(Verdict),
) -> Result<ListRead, Error> {
    let OpenList {
        rows,
        mut validator,
        suppression,
        header_digest,
    } = opened;
    let template = validator.is_template();
    let mut count = 0;
    for record in rows {
        let record = record?;
        count = record.row;
        if count > list.max_rows {
            return Err(input::InputError::TooManyRows {
                path: list.input.clone(),
                max_rows: list.max_rows,
            }
            .into());
        }
        each(validator.check(&record));
    }
    if count == 0 {
        return Err(input::InputError::NoRows {
            path: list.input.clone(),
        }
        .into());
    }
    Ok(ListRead {
        rows: count,
        suppression,
        template,
        header_digest,
    })
}

/// The `msg` of an invalid row: every problem, with its column.
fn problems_text(problems: &[validate::Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.column, p.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

fn validate_command(args: &ValidateArgs) -> Result<Exit, Error> {
    report::init_logging(cli::LogFormat::Text, false, &Progress::hidden());
    let settings = config::validate_settings(&args.input)?;
    let list = &settings.list;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut invalid, mut duplicate, mut suppressed) = (0u64, 0u64, 0u64);
    let mut previews = Vec::new();
    let opened = open_list(list)?;
    say(&mut out, opened.validator.columns_summary());
    let read = judge_rows(list, opened, |verdict| match verdict {
        Verdict::Valid(job) => {
            if previews.len() < report::PREVIEW_ROWS {
                previews.extend(report::template_preview(&job));
            }
        }
        Verdict::Invalid { row, problems, .. } => {
            invalid += 1;
            for p in problems {
                say(
                    &mut out,
                    &format!("row {row}, column {:?}: {}", p.column, p.reason),
                );
            }
        }
        Verdict::Duplicate { row, of_row, .. } => {
            duplicate += 1;
            let _ = writeln!(
                out,
                "row {row}: duplicate of row {of_row} (same telephone and message); it would not be sent"
            );
        }
        Verdict::Suppressed {
            row,
            telephone,
            list,
            ..
        } => {
            suppressed += 1;
            say(
                &mut out,
                &format!(
                    "row {row}: {telephone} is on the opt-out list {}; it would not be sent (suppressed)",
                    list.display()
                ),
            );
        }
    })?;
    let rows = read.rows;
    print_previews(&mut out, &previews);
    let valid = rows - invalid - duplicate - suppressed;
    let _ = writeln!(
        out,
        "{invalid} of {rows} rows invalid, {duplicate} duplicate, {suppressed} suppressed, {valid} valid ({})",
        list.input.display()
    );
    if let Some(s) = &read.suppression {
        let _ = writeln!(out, "{}", suppression_line(s));
    }
    if let Some(window) = &settings.window {
        let tokens = token_count_for_estimates();
        let needed = sending_time(valid, settings.rate, tokens);
        let _ = writeln!(
            out,
            "contact hours: {} (at {} requests/s per token with {tokens} token(s))",
            window.fit(jiff::Timestamp::now(), needed).describe(),
            settings.rate
        );
    }
    let _ = out.flush();
    // Suppressed rows are the user's intent, not a problem with the list.
    Ok(if invalid + duplicate == 0 {
        Exit::Success
    } else {
        Exit::SomeRowsNotSent
    })
}

/// Writes a line for a person, with untrusted text in it escaped.
fn say(out: &mut impl Write, line: &str) {
    let _ = writeln!(out, "{}", text::for_terminal(line, false));
}

/// `opt-out lists: 1234 numbers from 2 file(s)[, 3 entries ignored ...]`.
fn suppression_line(s: &Suppression) -> String {
    let mut line = format!(
        "opt-out lists: {} numbers from {} file(s)",
        s.len(),
        s.lists().len()
    );
    if s.skipped() > 0 {
        line.push_str(&format!(
            ", {} entries ignored because they are not telephone numbers (see the warnings)",
            s.skipped()
        ));
    }
    line
}

/// Tokens in WOLKVOX_TOKEN, or 1 when none are set (validate and dry runs need none).
fn token_count_for_estimates() -> usize {
    config::tokens_from_env()
        .map(|t| t.len())
        .unwrap_or(1)
        .max(1)
}

/// The least time `jobs` requests take at `rate` per token with `tokens` tokens.
fn sending_time(jobs: u64, rate: f64, tokens: usize) -> Duration {
    let per_second = rate * tokens.max(1) as f64;
    Duration::try_from_secs_f64(jobs as f64 / per_second).unwrap_or(Duration::MAX)
}

/// The contact-hours line of a summary: does sending `jobs` rows fit in the window?
fn hours_line(
    window: Option<&ContactWindow>,
    jobs: usize,
    rate: f64,
    tokens: usize,
) -> Option<String> {
    let needed = sending_time(jobs as u64, rate, tokens);
    window.map(|w| w.fit(jiff::Timestamp::now(), needed).describe())
}

/// The first template rows as they would be sent, under a heading.
fn print_previews(out: &mut impl Write, previews: &[String]) {
    if previews.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "first {} valid rows, as they would be sent:",
        previews.len()
    );
    for line in previews {
        say(out, line);
    }
}

fn send_command(args: &SendArgs, started_at: &str) -> Result<Exit, Error> {
    let mut settings = config::send_settings(args)?;
    let progress = Progress::new(settings.quiet);
    report::init_logging(settings.log_format, settings.quiet, &progress);
    let tokens = if settings.dry_run {
        Vec::new()
    } else {
        config::tokens_from_env()?
    };
    let started = Instant::now();

    // The whole list is judged before the results file is even created.
    let mut verdicts = Vec::new();
    let read = read_list(&settings.list, |v| verdicts.push(v))?;
    if let Some(s) = &read.suppression {
        tracing::info!("{}", suppression_line(s));
    }
    if args.results.is_none() {
        // Only the header tells whether a `template_name` column makes this a template run.
        settings.results =
            config::default_results(&settings.list.input, settings.dry_run, read.template);
    }

    journal::check_target(&settings.results, &settings.list.input)?;
    let (recorder, prior) = Recorder::open(&journal::OpenOptions2 {
        results: settings.results.clone(),
        dry_run: settings.dry_run,
        resume: settings.resume,
    })
    .map_err(|e| another_lists_results(e, &settings))?;
    if !settings.dry_run {
        let this_run = run_info(&settings, &read, started_at);
        if let Some(recorded) = &prior.last_run {
            let differences = this_run.differences(recorded);
            if !differences.is_empty() {
                return Err(Error::OtherCampaign {
                    results: settings.results.clone(),
                    differences: differences.join("; "),
                    command: resume_command_from(
                        recorded.args.iter().map(std::ffi::OsString::from),
                        &settings.results,
                    ),
                });
            }
        }
        recorder.begin_run(&this_run)?;
    }
    let plan = plan(verdicts, &prior, &settings, &recorder)?;

    if settings.dry_run {
        let counts = recorder.finish()?;
        let previews: Vec<String> = plan
            .jobs
            .iter()
            .filter_map(report::template_preview)
            .take(report::PREVIEW_ROWS)
            .collect();
        print_previews(&mut std::io::stdout().lock(), &previews);
        let estimate = estimate(plan.jobs.len(), &settings);
        let exit = finished_exit(&counts);
        print_summary(
            &Summary {
                title: "dry run: nothing was sent",
                counts: &counts,
                elapsed: started.elapsed(),
                skipped: plan.skipped,
                sent_before: plan.sent_before,
                results: &settings.results,
                estimate: Some(estimate),
                stopped: None,
                hours: hours_line(
                    settings.window.as_ref(),
                    plan.jobs.len(),
                    settings.rate,
                    token_count_for_estimates(),
                ),
            },
            &settings,
            exit,
            started_at,
        );
        return Ok(exit);
    }

    let origin = settings
        .origin
        .clone()
        .ok_or(config::ConfigError::NoEndpoint)?;
    let client = api::Client::new(
        &origin,
        settings.timeout,
        settings.max_in_flight * tokens.len(),
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let mut plan = plan;
    let mut tokens = tokens;
    let mut cut = 0;
    // Nothing to send (all done, invalid or duplicate): no call is spent on the check.
    if settings.quota_check && !plan.jobs.is_empty() {
        let answers = runtime.block_on(quota::ask(&client, tokens));
        let fitted = quota::fit(answers).and_then(|fitted| {
            quota::rows_to_send(plan.jobs.len(), &fitted, settings.partial).map(|n| (fitted, n))
        });
        let (fitted, n) = match fitted {
            Ok(ok) => ok,
            Err(e) => {
                refuse(recorder, plan.jobs, &e)?;
                return Err(e.into());
            }
        };
        tokens = fitted.tokens;
        let rest = plan.jobs.split_off(n.min(plan.jobs.len()));
        cut = rest.len();
        for job in rest {
            recorder.record(
                Outcome::local(
                    job.row,
                    &job.telephone,
                    Status::NotSent,
                    "not sent: today's quota was not enough for this row (--partial); it renews tomorrow (continue with --resume)",
                ),
                Some(&job.key),
            )?;
        }
    }
    let recorder = Arc::new(recorder);
    tracing::info!(
        rows = plan.jobs.len(),
        tokens = tokens.len(),
        rate = settings.rate,
        "sending {} rows through {} token(s)",
        plan.jobs.len(),
        tokens.len()
    );
    if let Some(line) = hours_line(
        settings.window.as_ref(),
        plan.jobs.len(),
        settings.rate,
        tokens.len(),
    ) {
        tracing::info!("contact hours: {line}");
    }
    let hours = settings.window.clone().map(|window| {
        Arc::new(dispatch::Hours {
            gate: window::Gate::new(window, Arc::new(window::SystemClock)),
            wait: settings.wait_for_window,
        })
    });
    let send_started = Instant::now();
    let stop = CancellationToken::new();
    let stopped = runtime.block_on(async {
        let signals = tokio::spawn(watch_signals(
            stop.clone(),
            Arc::clone(&recorder),
            resume_command(&settings),
        ));
        progress.start(plan.jobs.len() as u64, "sending");
        let pool = dispatch::PoolSettings {
            rate: settings.rate,
            max_in_flight: settings.max_in_flight,
            retry: settings.retry.clone(),
            hours,
        };
        let stopped = dispatch::run(
            plan.jobs,
            tokens,
            client,
            &pool,
            Arc::clone(&recorder),
            progress.clone(),
            stop,
        )
        .await;
        // The watcher holds the recorder; end it here, or `try_unwrap` below races
        // `shutdown_background` (which drops tasks on other threads) and loses.
        signals.abort();
        let _ = signals.await;
        stopped
    });
    progress.finish();
    runtime.shutdown_background();
    let recorder = Arc::try_unwrap(recorder).map_err(|_| journal::ResultsError::Write {
        path: settings.results.clone(),
        source: std::io::Error::other("results still in use at the end of the run"),
    })?;
    // Messages went out: a file that cannot be written now (a full disk) stops the run
    // like any other stop (exit 3), with the counts of every outcome received.
    // Counted from every outcome received, written or not (see `Recorder::record`).
    let counts = recorder.final_counts();
    let unwritten = recorder.finish().err();
    let stopped_text = match (&stopped, &unwritten, cut) {
        (Some(reason), _, _) => Some(reason.to_string()),
        (None, Some(e), _) => Some(format!("cannot finish the results file ({e})")),
        (None, None, 0) => None,
        (None, None, cut) => Some(format!(
            "today's quota was not enough for {cut} rows, recorded not_sent (--partial); the quota renews tomorrow"
        )),
    }
    .map(|text| {
        let unwritten = if unwritten.is_some() || matches!(stopped, Some(dispatch::StopReason::RecordFailed { .. })) {
            "\nThe counts above are every outcome received; those that could not be written are `unknown` to the journal, so no row is sent twice. Free some disk space before resuming."
        } else {
            ""
        };
        format!(
            "{text}.{unwritten}\nTo continue, run: {}",
            resume_command(&settings)
        )
    });
    let exit = if stopped_text.is_some() {
        Exit::Stopped
    } else {
        finished_exit(&counts)
    };
    print_summary(
        &Summary {
            title: if stopped_text.is_some() {
                "run stopped"
            } else {
                "run finished"
            },
            counts: &counts,
            elapsed: send_started.elapsed(),
            skipped: plan.skipped,
            sent_before: plan.sent_before,
            results: &settings.results,
            estimate: None,
            stopped: stopped_text,
            hours: None,
        },
        &settings,
        exit,
        started_at,
    );
    Ok(exit)
}

/// A run refused before any request: a new run leaves no files behind (the same
/// command can be run again); a resumed one records the rows `not_sent`.
fn refuse(recorder: Recorder, jobs: Vec<Job>, why: &quota::QuotaError) -> Result<(), Error> {
    if recorder.is_new() {
        return Ok(recorder.discard()?);
    }
    let msg = format!("not sent: {why}");
    for job in jobs {
        recorder.record(
            Outcome::local(job.row, &job.telephone, Status::NotSent, msg.clone()),
            Some(&job.key),
        )?;
    }
    recorder.finish()?;
    Ok(())
}

/// Rows to send, after recording those that need no request.
struct Plan {
    jobs: Vec<Job>,
    /// Rows an earlier run already finished.
    skipped: u64,
    /// Of those, rows an earlier run sent: not part of this run's rate.
    sent_before: u64,
}

/// Records invalid and duplicate rows (and, when resuming, rows already done), and
/// returns the jobs left to send. For a dry run every valid row is recorded `dry_run`.
fn plan(
    verdicts: Vec<Verdict>,
    prior: &Prior,
    settings: &SendSettings,
    recorder: &Recorder,
) -> Result<Plan, Error> {
    let mut jobs = Vec::new();
    let (mut skipped, mut sent_before) = (0, 0);
    for verdict in verdicts {
        match verdict {
            Verdict::Invalid {
                row,
                telephone,
                problems,
            } => recorder.record(
                Outcome::local(row, &telephone, Status::Invalid, problems_text(&problems)),
                None,
            )?,
            Verdict::Duplicate {
                row,
                telephone,
                of_row,
            } => recorder.record(
                Outcome::local(
                    row,
                    &telephone,
                    Status::Duplicate,
                    format!("same telephone and message as row {of_row}"),
                ),
                None,
            )?,
            Verdict::Suppressed {
                row,
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
                    skipped += 1;
                    tracing::warn!(
                        "row {row}: {telephone} is on the opt-out list {}, but an earlier run already recorded this message {}; it is not sent again",
                        list.display(),
                        earlier.status
                    );
                    sent_before += u64::from(earlier.status == Status::Sent);
                    let mut o = earlier.clone();
                    o.row = row;
                    recorder.record(o, None)?;
                } else if let Some(&then) = prior.interrupted.get(&key) {
                    skipped += 1;
                    let o = Outcome::local(
                        row,
                        &telephone,
                        Status::Unknown,
                        format!(
                            "an earlier run was stopped while sending this message (then row {then}): it may have been delivered; the number is now on the opt-out list {}, so it is never sent again",
                            list.display()
                        ),
                    );
                    recorder.record(o, Some(&key))?;
                } else {
                    let o = Outcome::local(
                        row,
                        &telephone,
                        Status::Suppressed,
                        format!("on the opt-out list {}: never sent", list.display()),
                    );
                    recorder.record(o, Some(&key))?;
                }
            }
            Verdict::Valid(job) if settings.dry_run => {
                recorder.record(
                    Outcome::local(job.row, &job.telephone, Status::DryRun, "would be sent"),
                    None,
                )?;
                jobs.push(job);
            }
            Verdict::Valid(job) => {
                if let Some(&row) = prior.interrupted.get(&job.key) {
                    if settings.retry_unknown {
                        recorder.remember_earlier(
                            &job.key,
                            Outcome::local(
                                job.row,
                                &job.telephone,
                                Status::Unknown,
                                format!(
                                    "an earlier run was stopped while sending this message (then row {row}): it may have been delivered"
                                ),
                            ),
                        );
                        jobs.push(job);
                    } else {
                        skipped += 1;
                        let o = Outcome::local(
                            job.row,
                            &job.telephone,
                            Status::Unknown,
                            format!(
                                "an earlier run was stopped while sending this message (then row {row}): it may have been delivered; --resume --retry-unknown sends it again"
                            ),
                        );
                        recorder.record(o, Some(&job.key))?;
                    }
                    continue;
                }
                let carry = prior.done.get(&job.key).filter(|o| match o.status {
                    // Suppressed in an earlier run: stays so even if the list is not given now.
                    Status::Sent | Status::Suppressed => true,
                    Status::Failed => !settings.retry_failed,
                    Status::Unknown => !settings.retry_unknown,
                    _ => false,
                });
                match carry {
                    Some(earlier) => {
                        skipped += 1;
                        sent_before += u64::from(earlier.status == Status::Sent);
                        let mut o = earlier.clone();
                        o.row = job.row;
                        recorder.record(o, None)?;
                    }
                    None => {
                        // A retry: what it had stays unless this run really attempts it.
                        if let Some(earlier) = prior
                            .done
                            .get(&job.key)
                            .filter(|o| matches!(o.status, Status::Failed | Status::Unknown))
                        {
                            recorder.remember_earlier(&job.key, earlier.clone());
                        }
                        jobs.push(job)
                    }
                }
            }
        }
    }
    if skipped > 0 {
        tracing::info!("{skipped} rows were already done in an earlier run and are skipped");
    }
    Ok(Plan {
        jobs,
        skipped,
        sent_before,
    })
}

/// "Already sent" said of a results file whose journal names another list (say
/// `contacts.xlsx` beside `contacts.csv`, which share default names): say whose it is.
fn another_lists_results(
    e: journal::ResultsError,
    settings: &SendSettings,
) -> journal::ResultsError {
    let journal::ResultsError::AlreadyExists { path } = e else {
        return e;
    };
    let recorded = journal::journal_view(&path).and_then(|v| v.last_run);
    let this = std::fs::canonicalize(&settings.list.input).ok();
    match recorded {
        Some(run)
            if this.is_some()
                && !run.input_absolute.as_os_str().is_empty()
                && Some(&run.input_absolute) != this.as_ref() =>
        {
            let ext = settings
                .list
                .input
                .extension()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_else(|| "list".into());
            let suggestion = config::sibling(
                &settings.list.input,
                &format!(
                    "{ext}.{}",
                    path.file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.split_once('.'))
                        .map(|(_, rest)| rest)
                        .unwrap_or("results.csv")
                ),
            );
            journal::ResultsError::OtherList {
                path,
                list: run.input_absolute,
                suggestion,
            }
        }
        _ => journal::ResultsError::AlreadyExists { path },
    }
}

/// What this run is, for the journal (see `journal::RunInfo`).
fn run_info(settings: &SendSettings, read: &ListRead, started_at: &str) -> journal::RunInfo {
    let list = &settings.list;
    let kind = if read.template {
        "hsm"
    } else if list.template.is_some() {
        "rendered"
    } else {
        "free"
    };
    let input_absolute = std::fs::canonicalize(&list.input)
        .or_else(|_| std::path::absolute(&list.input))
        .unwrap_or_else(|_| list.input.clone());
    journal::RunInfo {
        kind: kind.into(),
        hsm_template: list.hsm.template_name.clone().filter(|_| read.template),
        hsm_vars: list
            .hsm
            .vars
            .clone()
            .filter(|_| read.template)
            .unwrap_or_default(),
        template: list
            .template
            .as_ref()
            .filter(|_| !read.template)
            .map(|t| t.origin.clone()),
        connector_id: list.connector_id.clone(),
        input: list.input.clone(),
        input_bytes: std::fs::metadata(&input_absolute)
            .map(|m| m.len())
            .unwrap_or(0),
        input_absolute,
        header_digest: read.header_digest.clone(),
        rows: read.rows,
        args: std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        started_at: started_at.to_owned(),
    }
}

/// Exit code of a run that went to the end.
fn finished_exit(counts: &HashMap<Status, u64>) -> Exit {
    let bad = [
        Status::Failed,
        Status::Unknown,
        Status::Invalid,
        Status::Duplicate,
        Status::NotSent,
    ]
    .iter()
    .any(|s| counts.get(s).copied().unwrap_or(0) > 0);
    if bad {
        Exit::SomeRowsNotSent
    } else {
        Exit::Success
    }
}

/// How long sending `jobs` rows would take at the configured limits.
fn estimate(jobs: usize, settings: &SendSettings) -> String {
    let tokens = token_count_for_estimates();
    format!(
        "{jobs} messages would take at least {} at {} requests/s per token with {tokens} token(s) (each token also carries at most {} requests at once, so a slow server lowers this)",
        human_duration(sending_time(jobs as u64, settings.rate, tokens)),
        settings.rate,
        settings.max_in_flight
    )
}

/// The command that continues this run: the command line it was started with (so every
/// flag, `--base-url` or `--rate` included, carries over), with `--resume` and
/// `--results`, and without `--retry-failed` / `--retry-unknown`: rows this run retried
/// and that came back `failed` or `unknown` again are not re-sent unless asked again.
fn resume_command(settings: &SendSettings) -> String {
    resume_command_from(std::env::args_os().skip(1), &settings.results)
}

pub(crate) fn resume_command_from(
    args: impl IntoIterator<Item = std::ffi::OsString>,
    results: &Path,
) -> String {
    let mut words = vec!["wolkvox-dispatch".to_owned()];
    let (mut resume, mut has_results) = (false, false);
    for arg in args {
        let text = arg.to_string_lossy().into_owned();
        match text.as_str() {
            "--retry-failed" | "--retry-unknown" => continue,
            "--resume" => resume = true,
            t if t == "--results" || t.starts_with("--results=") => has_results = true,
            _ => {}
        }
        words.push(quote_text(&text));
    }
    if !has_results {
        words.push("--results".into());
        words.push(quote(results));
    }
    if !resume {
        words.push("--resume".into());
    }
    words.join(" ")
}

/// A path as a shell word: as is when safe, else single-quoted.
pub(crate) fn quote(path: &Path) -> String {
    quote_text(&path.display().to_string())
}

/// `text` as one shell word.
fn quote_text(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-:=,+@%".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Prints the summary and, with --summary-json, writes it as JSON too.
fn print_summary(summary: &Summary<'_>, settings: &SendSettings, exit: Exit, started_at: &str) {
    let text = summary.render();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    if let Some(path) = &settings.summary_json {
        write_summary_json(
            path,
            &SummaryJson {
                summary,
                exit_code: exit.code(),
                dry_run: settings.dry_run,
                started_at,
                finished_at: &journal::now(),
                error: None,
            },
        );
    }
}

/// A summary file that cannot be written is a warning: the run itself is done.
fn write_summary_json(path: &Path, json: &SummaryJson<'_>) {
    if let Err(e) = json.write(path) {
        tracing::warn!("cannot write the summary to {}: {e}", path.display());
    }
}

/// First Ctrl-C or SIGTERM: stop starting requests and let those in flight finish.
/// Second: exit at once, after taking the results lock so no line is left half-written.
async fn watch_signals(stop: CancellationToken, recorder: Arc<Recorder>, resume: String) {
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot listen for Ctrl-C/SIGTERM: {e}");
            return;
        }
    };
    signals.next().await;
    tracing::warn!(
        "interrupted: no new requests; waiting for those in flight (press Ctrl-C again to exit at once)"
    );
    stop.cancel();
    signals.next().await;
    let _frozen = recorder.freeze();
    eprintln!(
        "interrupted again: exiting now. Every outcome received so far is in {}; the rows that were in flight will be `unknown` (they may have been delivered).\nTo continue, run: {resume}",
        recorder.path().display()
    );
    std::process::exit(i32::from(Exit::Stopped.code()));
}

#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn next(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resume_of(args: &[&str]) -> String {
        resume_command_from(
            args.iter().map(std::ffi::OsString::from),
            Path::new("out/my list.results.csv"),
        )
    }

    #[test]
    fn the_resume_command_keeps_every_flag_but_the_retry_ones() {
        assert_eq!(
            resume_of(&[
                "send",
                "list.csv",
                "--base-url",
                "http://127.0.0.1:9000",
                "--rate",
                "5"
            ]),
            "wolkvox-dispatch send list.csv --base-url http://127.0.0.1:9000 --rate 5 --results 'out/my list.results.csv' --resume"
        );
        assert_eq!(
            resume_of(&[
                "send",
                "it's.csv",
                "--results=r.csv",
                "--resume",
                "--retry-unknown",
                "--retry-failed"
            ]),
            "wolkvox-dispatch send 'it'\\''s.csv' --results=r.csv --resume"
        );
    }
}
