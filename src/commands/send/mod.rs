/*!
`wolkvox-dispatch send LIST`: the whole pipeline. The list is read and judged
(`list`), the results and journal opened (refusing another campaign), the plan
made (`crate::plan`), the quota checked, the rows dispatched (`send`), every
outcome recorded (`journal`), and the summary printed (`report`).
*/

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::list::*;
use crate::cli::{self, SendArgs};
use crate::commands::preflight;
use crate::config::{self, SendSettings};
use crate::i18n::Arg;
use crate::i18n::{self, Localized};
use crate::journal::{self, Recorder};
use crate::ledger;
use crate::outcome::{Outcome, Status, now};
use crate::progress::Progress;
use crate::report::{self, Summary, SummaryJson};
use crate::send::templates::Uses;
use crate::send::{self, api, dispatch};
use crate::tr;
use crate::validate::Job;
use crate::{Error, Exit};

mod finish;
mod held;
mod planning;
mod signals;

use finish::{
    estimate, finished_exit, next_step, print_summary, resume_command, with_changed,
    write_summary_json, write_workbook,
};
use held::{Held, fit_quota, hold_back};
use planning::{Plan, another_lists_results, plan};
use signals::watch_signals;

/// Runs `send`; a run that never got to a summary still writes `--summary-json`, with
/// the error and exit code 2.
pub(crate) fn run(args: &SendArgs) -> Result<Exit, Error> {
    let started_at = now();
    crate::validate::phone::preload();
    let result = send_command(args, &started_at);
    // A summary that would overwrite another file of the run is not written at all
    // (the run may have stopped before it checked its outputs).
    if let (Err(e), Some(path)) = (&result, &args.summary_json)
        && !matches!(e, Error::Output(_))
        && super::outputs::check(
            &[(path.as_path(), "file-role-summary-json")],
            &[
                arg_inputs(args),
                args.results
                    .iter()
                    .map(|r| (r.as_path(), "file-role-results"))
                    .collect(),
            ]
            .concat(),
        )
        .is_ok()
    {
        // The run never got to a summary: the JSON says why, with exit code 2.
        let counts = HashMap::new();
        let results = args.results.as_deref().unwrap_or(Path::new(""));
        let summary = Summary::new("error".to_owned().into(), &counts, results);
        write_summary_json(
            path,
            &SummaryJson {
                summary: &summary,
                exit_code: e.exit().code(),
                dry_run: args.dry_run,
                started_at: &started_at,
                finished_at: &now(),
                error: Some(i18n::with_lang(i18n::Lang::En, || e.to_string())),
            },
        );
    }
    result
}

fn send_command(args: &SendArgs, started_at: &str) -> Result<Exit, Error> {
    if let Some(phone) = &args.test_to {
        return super::test_send::run(args, phone);
    }
    let mut run = open_run(args, started_at)?;
    let ledger = run.ledger.take();
    let results = run.settings.results.clone();
    // A server ledger is watched while the run sends: lost, the run stops.
    let watch = ledger
        .as_ref()
        .filter(|l| l.claimed)
        .and_then(|l| l.store.watch());
    let result = if run.settings.dry_run {
        dry_run(run, started_at)
    } else {
        send_rows(run, started_at, watch)
    };
    if let Some(mut ledger) = ledger.filter(|l| l.claimed) {
        // What the run's journal says became of every message it claimed. No journal:
        // a new run refused before any request removed it, so none left. A journal that
        // cannot be read settles nothing: the claims stay `pending` ("may have gone
        // out"), the safe side, and the next --resume settles them.
        let settled = match journal::Prior::of_results(&results) {
            Ok(Some(prior)) => Ok(ledger::settled_from(&prior)),
            Ok(None) => Ok(ledger::Settled::default()),
            Err(e) => Err(e.to_string()),
        };
        let done = settled.and_then(|settled| {
            ledger
                .store
                .settle(&ledger.campaign.results, &settled)
                .map_err(|e| match e {
                    // Said at the end of a run: it did send, and its claims stay.
                    ledger::LedgerError::Failed { path, problem } => tr!(
                        "ledger-settle-failed",
                        path = path.display(),
                        problem = problem
                    ),
                    other => other.to_string(),
                })
        });
        if let Err(e) = done {
            tracing::warn!("{e}");
        }
    }
    result
}

/// The ledger during one run.
struct LedgerRun {
    store: Box<dyn ledger::Store>,
    campaign: ledger::Campaign,
    /// This run claimed messages: they are settled when it ends.
    claimed: bool,
}

/// Refuses an output of the run (the results, their journal and workbook, the summary
/// JSON) that is one of its inputs (the list, the config, the template, a suppression
/// list) or another output. Before any file is written.
fn check_outputs(args: &SendArgs, settings: &SendSettings) -> Result<(), Error> {
    let journal = journal::journal_path(&settings.results);
    let workbook = super::workbook::path_for(&settings.results);
    let mut outputs = vec![
        (settings.results.as_path(), "file-role-results"),
        (journal.as_path(), "file-role-journal"),
    ];
    if settings.xlsx {
        outputs.push((workbook.as_path(), "file-role-workbook"));
    }
    if let Some(path) = &settings.summary_json {
        outputs.push((path.as_path(), "file-role-summary-json"));
    }
    let mut inputs = arg_inputs(args);
    // The opt-out lists of the config too, and the ledger wherever it is.
    for suppress in &settings.list.suppress {
        inputs.push((suppress.as_path(), "file-role-suppress"));
    }
    if let Some(ledger) = &settings.ledger {
        inputs.push((ledger.path.as_path(), "file-role-ledger"));
    }
    Ok(super::outputs::check(&outputs, &inputs)?)
}

/// The files the command line names as inputs of the run.
fn arg_inputs(args: &SendArgs) -> Vec<(&Path, super::outputs::Role)> {
    let mut inputs = vec![(args.input.input.as_path(), "file-role-list")];
    if let Some(config) = &args.input.config {
        inputs.push((config.as_path(), "file-role-config"));
    }
    if let Some(template) = &args.input.template {
        inputs.push((template.as_path(), "file-role-template"));
    }
    for suppress in &args.input.suppress {
        inputs.push((suppress.as_path(), "file-role-suppress"));
    }
    if let Some(ledger) = &args.ledger {
        inputs.push((ledger.as_path(), "file-role-ledger"));
    }
    inputs
}

/// A run ready to send: its settings, its tokens, the results and journal open (and,
/// for a real run, the campaign checked against the recorded one), and its plan.
struct OpenRun {
    settings: SendSettings,
    progress: Progress,
    tokens: Vec<send::token::Token>,
    started: Instant,
    recorder: Recorder,
    plan: Plan,
    /// The HTTP client, made on a thread while the list is read (see `open_run`).
    client: Option<std::thread::JoinHandle<Result<api::Client, api::ClientError>>>,
    /// The send ledger (none with `--no-ledger`, or for a dry run before any ledger).
    ledger: Option<LedgerRun>,
}

/// Everything before the first request: the whole list is judged before the results
/// file is even created, and nothing is sent by a refused run.
fn open_run(args: &SendArgs, started_at: &str) -> Result<OpenRun, Error> {
    let mut settings = config::send_settings(args)?;
    let progress = Progress::new(settings.quiet, settings.progress_interval);
    report::init_logging(
        settings.log_format == cli::LogFormat::Json,
        settings.quiet,
        &progress,
    );
    let tokens = if settings.dry_run {
        Vec::new()
    } else {
        // Before anything is written: a proxy the client cannot read is a setting.
        send::proxy::check_env().map_err(api::ClientError::from)?;
        send::token::tokens_from_env()?
    };
    let started = Instant::now();
    // Making the HTTP client loads the system's root certificates (5 ms or so, more
    // with a large certificate directory): done while the list is read. It sends nothing.
    let client = match (&settings.origin, settings.dry_run) {
        (Some(origin), false) => {
            let (origin, timeout, idle) = (origin.clone(), settings.timeout, settings.idle_timeout);
            let connections = settings.pool.max_in_flight * tokens.len();
            std::thread::Builder::new()
                .name("http-client".into())
                .spawn(move || api::Client::with_idle_timeout(&origin, timeout, connections, idle))
                .ok()
        }
        _ => None,
    };
    let mut verdicts = Vec::new();
    let read = read_list(&settings.list, |v| verdicts.push(v))?;
    if let Some(s) = &read.suppression {
        tracing::info!("{}", suppression_line(s));
    }
    // A dry run speaks for the real run of the same list: its results (and journal)
    // are read, never written. `--dry-run --results REAL` names them: the dry run
    // still writes its own file.
    let mut campaign_results =
        journal::naming::default_results(&settings.list.input, false, read.template);
    if settings.dry_run
        && let Some(named) = &args.results
        && journal::journal_path(named).exists()
    {
        campaign_results = named.clone();
        settings.results =
            journal::naming::default_results(&settings.list.input, true, read.template);
    } else if args.results.is_none() {
        // Only the header tells whether a `template_name` column makes this a template run.
        settings.results =
            journal::naming::default_results(&settings.list.input, settings.dry_run, read.template);
    }
    if !settings.dry_run {
        campaign_results = settings.results.clone();
    }
    journal::check_target(&settings.results, &settings.list.input)?;
    check_outputs(args, &settings)?;
    // Before the results are opened: a ledger that cannot be used leaves no files.
    let store = match &settings.ledger {
        Some(l) if settings.dry_run => ledger::open_existing(l)?,
        Some(l) => Some(ledger::open(l)?),
        None => None,
    };
    // That campaign's own messages are its journal's business, not repeats.
    let mut ledger = store.map(|store| LedgerRun {
        store,
        campaign: ledger::Campaign::new(&campaign_results, &settings.list.input),
        claimed: false,
    });
    let (recorder, prior) = Recorder::open(&journal::RecorderOptions {
        results: settings.results.clone(),
        dry_run: settings.dry_run,
        resume: settings.resume,
    })
    .map_err(|e| another_lists_results(e, &settings))?;
    tracing::info!(
        list = %settings.list.input.display(),
        results = %settings.results.display(),
        "{}",
        tr!(
            "send-start",
            version = env!("CARGO_PKG_VERSION"),
            what = if settings.dry_run {
                tr!("send-start-dry-run")
            } else {
                tr!("send-start-sending")
            },
            list = read.named.as_str(),
            results = settings.results.display(),
            rows = read.rows,
            settings = settings_line(&settings, tokens.len())
        )
    );
    if !settings.dry_run {
        let this_run = run_info(&settings, &read, started_at);
        if let Some(recorded) = &prior.last_run {
            let differences = this_run.differences(recorded);
            if !differences.is_empty() {
                return Err(Error::OtherCampaign {
                    results: settings.results.clone(),
                    differences: differences.join("; "),
                    command: journal::resume_command(
                        recorded.args.iter().map(std::ffi::OsString::from),
                        &settings.results,
                    ),
                });
            }
        }
        recorder.begin_run(&this_run)?;
    }
    // A dry run plans against what the real run recorded (rule 1, and a resume's
    // carried rows); a journal that cannot be read is the real run's business.
    let real_prior = if settings.dry_run {
        journal::Prior::of_results(&campaign_results).ok().flatten()
    } else {
        None
    };
    let planning_prior = real_prior.as_ref().unwrap_or(&prior);
    let plan = match plan(
        verdicts,
        planning_prior,
        &settings,
        &recorder,
        ledger.as_mut(),
    ) {
        Ok(plan) => plan,
        Err(e) => {
            // Refused before any request: a new run leaves no files; a resumed one keeps
            // its files as they were. Claims made before the refusal go back to what the
            // journal says (no request has left since it was read).
            if let Some(run) = ledger.as_mut().filter(|l| l.claimed)
                && let Err(e) = run
                    .store
                    .settle(&run.campaign.results, &ledger::settled_from(&prior))
            {
                tracing::warn!("{e}");
            }
            if recorder.is_new() {
                recorder.discard()?;
            }
            return Err(e);
        }
    };
    Ok(OpenRun {
        settings,
        progress,
        tokens,
        started,
        recorder,
        plan,
        client,
        ledger,
    })
}

/// A dry run: the results say `dry_run`, the first rows are shown as they would be
/// sent, and the summary estimates how long sending would take.
fn dry_run(run: OpenRun, started_at: &str) -> Result<Exit, Error> {
    let uses = template_uses(&run.plan.jobs);
    let check = config::PreflightCheck {
        origin: run.settings.origin.clone(),
        timeout: run.settings.timeout,
        templates: run.settings.template_check,
    };
    let checked = match preflight::if_possible(&check, &uses) {
        Ok(done) => done,
        Err(e) => {
            refuse(
                run.recorder,
                run.plan.jobs,
                Arg::Said(Box::new(crate::said!("msg-templates-refused"))),
            )?;
            return Err(e);
        }
    };
    if let Some(line) = preflight::describe(&checked, &uses) {
        tracing::info!("{line}");
    }
    let counts = run.recorder.finish()?;
    let (settings, mut plan) = (&run.settings, run.plan);
    let previews: Vec<String> = plan
        .jobs
        .iter()
        .take(settings.preview)
        .map(|job| report::preview(job, preflight::filled_text(&checked, job).as_deref()))
        .collect();
    let jobs = plan.jobs.len();
    let changed = plan.changed;
    // What is left needs only their number: the workbook does not wait beside them.
    plan.jobs = Vec::new();
    if settings.log_format == cli::LogFormat::Json {
        for preview in &previews {
            println!("{}", serde_json::json!({ "preview": preview }));
        }
    } else {
        print_previews(&mut std::io::stdout().lock(), &previews);
    }
    let pace = Pace {
        window: settings.window.as_ref(),
        timezone: &settings.timezone,
        jobs,
        rate: settings.pool.rate,
        tokens: token_count_for_estimates(),
    };
    let exit = with_changed(finished_exit(&counts), changed);
    let workbook = write_workbook(settings, &counts, started_at, None);
    print_summary(
        &Summary {
            workbook: workbook.as_deref(),
            elapsed: run.started.elapsed(),
            skipped: plan.skipped,
            sent_before: plan.sent_before,
            held_changed: changed,
            estimate: Some(Localized::new(|| {
                estimate(&pace, settings.pool.max_in_flight)
            })),
            hours: Localized::maybe(|| pace.hours_line()),
            ..Summary::new(
                Localized::new(|| tr!("send-title-dry-run")),
                &counts,
                &settings.results,
            )
        },
        settings,
        exit,
        started_at,
    );
    Ok(exit)
}

/// A real run: the quota check, the dispatcher, and the summary.
fn send_rows(run: OpenRun, started_at: &str, watch: Option<LedgerProbe>) -> Result<Exit, Error> {
    let OpenRun {
        settings,
        progress,
        tokens,
        recorder,
        mut plan,
        client,
        ..
    } = run;
    let origin = settings
        .origin
        .clone()
        .ok_or(config::ConfigError::NoEndpoint)?;
    let client = match client.map(std::thread::JoinHandle::join) {
        Some(Ok(made)) => made?,
        // No thread, or it panicked: make it here (and see why).
        _ => api::Client::with_idle_timeout(
            &origin,
            settings.timeout,
            settings.pool.max_in_flight * tokens.len(),
            settings.idle_timeout,
        )?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let uses = template_uses(&plan.jobs);
    if let Err(e) =
        preflight::before_sending(&runtime, &client, &tokens, &uses, settings.template_check)
    {
        refuse(
            recorder,
            std::mem::take(&mut plan.jobs),
            Arg::Said(Box::new(crate::said!("msg-templates-refused"))),
        )?;
        return Err(e.into());
    }
    let pilot = hold_back(
        &recorder,
        &mut plan,
        settings.limit,
        &crate::said!("msg-pilot", limit = settings.limit.unwrap_or_default()),
    )?;
    let (tokens, cut, recorder, early) =
        fit_quota(&runtime, &client, tokens, &mut plan, recorder, &settings)?;
    let recorder = Arc::new(recorder);
    let send_started = Instant::now();
    let jobs = std::mem::take(&mut plan.jobs);
    let mut ledger_lost = None;
    let stopped = match early {
        // The quota check met a setting to fix: no row is tried; all stay `not_sent`.
        Some(reason) => {
            let msg = reason.not_sent_msg();
            for job in &jobs {
                recorder.record(
                    Outcome::local_said(job.row, &job.telephone, Status::NotSent, msg.clone()),
                    Some(&job.key),
                )?;
            }
            Some(reason)
        }
        None => {
            announce(&settings, jobs.len(), tokens.len());
            let (stopped, lost) = dispatch_rows(
                &runtime, jobs, tokens, client, &settings, &recorder, &progress, watch,
            );
            ledger_lost = lost;
            stopped
        }
    };
    progress.finish();
    runtime.shutdown_background();
    let recorder = Arc::try_unwrap(recorder).map_err(|_| journal::ResultsError::Write {
        path: settings.results.clone(),
        source: std::io::Error::other("results still in use at the end of the run"),
    })?;
    // Messages went out: a file that cannot be written now (a full disk) stops the run
    // like any other stop (exit 3), with the counts of every outcome received, written
    // or not (see `Recorder::record`).
    let counts = recorder.final_counts();
    let unwritten = recorder.finish().err();
    let held = Held { quota: cut, pilot };
    let stopped_text = Localized::maybe(|| match &ledger_lost {
        // A server ledger lost mid-run stopped it (see `ledger::Watch`).
        Some(lost) => Some(format!(
            "{lost}.\n{}",
            tr!(
                "send-to-continue",
                command = format!("{}{}", resume_command(&settings), held.retry_flags())
            )
        )),
        None => stop_text(&settings, stopped.as_ref(), unwritten.as_ref(), held),
    });
    let resume = stopped_text
        .as_ref()
        .map(|_| format!("{}{}", resume_command(&settings), held.retry_flags()));
    let (exit, title) = if stopped_text.is_some() {
        (Exit::Stopped, Localized::new(|| tr!("send-title-stopped")))
    } else {
        (
            with_changed(finished_exit(&counts), plan.changed),
            Localized::new(|| tr!("send-title-finished")),
        )
    };
    let workbook = write_workbook(&settings, &counts, started_at, resume);
    print_summary(
        &Summary {
            workbook: workbook.as_deref(),
            elapsed: send_started.elapsed(),
            skipped: plan.skipped,
            sent_before: plan.sent_before,
            held_changed: plan.changed,
            stopped: stopped_text,
            this_run: (plan.skipped > 0).then(|| progress.this_run()),
            next: (exit == Exit::SomeRowsNotSent).then(|| next_step(&settings, &counts)),
            ..Summary::new(title, &counts, &settings.results)
        },
        &settings,
        exit,
        started_at,
    );
    Ok(exit)
}

/// The log lines a real run starts sending with: how much, and when it would end.
fn announce(settings: &SendSettings, jobs: usize, tokens: usize) {
    tracing::info!(
        rows = jobs,
        tokens,
        rate = settings.pool.rate,
        "{}",
        tr!("send-sending", rows = jobs, tokens = tokens)
    );
    let pace = Pace {
        window: settings.window.as_ref(),
        timezone: &settings.timezone,
        jobs,
        rate: settings.pool.rate,
        tokens,
    };
    if let Some(line) = pace.hours_line() {
        tracing::info!("{}", tr!("send-contact-hours", line = line));
    }
    if let Some(line) = pace.finish_line() {
        tracing::info!("{}", tr!("validate-estimate", line = line));
    }
}

/// A server ledger's probe (`ledger::Store::watch`).
type LedgerProbe = Box<dyn FnMut() -> Result<(), ledger::LedgerError> + Send>;

/// Runs the dispatcher with the signal watcher (and a server ledger's watch) beside it.
/// Returns why the run stopped early, and what became of a server ledger it lost
/// meanwhile (which stops it: see `ledger::Watch`).
#[allow(clippy::too_many_arguments)]
fn dispatch_rows(
    runtime: &tokio::runtime::Runtime,
    jobs: Vec<Job>,
    tokens: Vec<send::token::Token>,
    client: api::Client,
    settings: &SendSettings,
    recorder: &Arc<Recorder>,
    progress: &Progress,
    watch: Option<LedgerProbe>,
) -> (Option<dispatch::StopReason>, Option<String>) {
    let stop = CancellationToken::new();
    let watch = watch.map(|probe| {
        let stop = stop.clone();
        ledger::Watch::start(probe, move || stop.cancel())
    });
    let stopped = runtime.block_on(async {
        let signals = tokio::spawn(watch_signals(
            stop.clone(),
            Arc::clone(recorder),
            resume_command(settings),
        ));
        progress.start(jobs.len() as u64, &tr!("progress-sending"));
        let stopped = dispatch::run(
            jobs,
            tokens,
            client,
            &settings.pool,
            Arc::clone(recorder),
            progress.clone(),
            stop,
        )
        .await;
        // The watcher holds the recorder; end it here, or `try_unwrap` afterwards races
        // `shutdown_background` (which drops tasks on other threads) and loses.
        signals.abort();
        let _ = signals.await;
        stopped
    });
    (stopped, watch.and_then(ledger::Watch::finish))
}

/// Why the run stopped early, and how to continue; `None` when it went to the end.
fn stop_text(
    settings: &SendSettings,
    stopped: Option<&dispatch::StopReason>,
    unwritten: Option<&journal::ResultsError>,
    held: Held,
) -> Option<String> {
    let text = match (stopped, unwritten) {
        (Some(reason), _) => reason.to_string(),
        (None, Some(e)) => tr!("send-stop-results-unfinished", error = e.to_string()),
        (None, None) if held.quota.kept() > 0 => tr!(
            "send-stop-quota-kept",
            rows = held.quota.rows,
            not_sent = held.quota.rows - held.quota.kept(),
            kept = held.quota.kept()
        ),
        (None, None) if held.quota.rows > 0 => tr!("send-stop-quota", rows = held.quota.rows),
        (None, None) if held.pilot.kept() > 0 => tr!(
            "send-stop-pilot-kept",
            limit = settings.limit.unwrap_or_default(),
            rows = held.pilot.rows,
            not_sent = held.pilot.rows - held.pilot.kept(),
            kept = held.pilot.kept()
        ),
        (None, None) if held.pilot.rows > 0 => tr!(
            "send-stop-pilot",
            limit = settings.limit.unwrap_or_default(),
            rows = held.pilot.rows
        ),
        (None, None) => return None,
    };
    let disk =
        unwritten.is_some() || matches!(stopped, Some(dispatch::StopReason::RecordFailed { .. }));
    let unwritten = if disk {
        format!("\n{}", tr!("send-stop-disk"))
    } else {
        String::new()
    };
    Some(format!(
        "{text}.{unwritten}\n{}",
        tr!(
            "send-to-continue",
            command = format!("{}{}", resume_command(settings), held.retry_flags())
        )
    ))
}

/// A run refused before any request: a new run leaves no files behind (the same
/// command can be run again); a resumed one records the rows `not_sent`.
fn refuse(recorder: Recorder, jobs: Vec<Job>, why: Arg) -> Result<(), Error> {
    if recorder.is_new() {
        return Ok(recorder.discard()?);
    }
    let msg = crate::said!("msg-not-sent-because", why = why);
    for job in jobs {
        recorder.record(
            Outcome::local_said(job.row, &job.telephone, Status::NotSent, msg.clone()),
            Some(&job.key),
        )?;
    }
    recorder.finish()?;
    Ok(())
}

/// The templates the jobs send, for the template check.
fn template_uses(jobs: &[Job]) -> Uses {
    let mut uses = Uses::default();
    jobs.iter().for_each(|job| uses.add(job));
    uses
}

/// The settings that matter, for the first line of a run's log.
fn settings_line(settings: &SendSettings, tokens: usize) -> String {
    let mut parts = Vec::new();
    // A dry run reads no token.
    if !settings.dry_run {
        parts.push(tr!("send-settings-tokens", tokens = tokens));
    }
    parts.push(tr!(
        "send-settings-rate",
        rate = settings.pool.rate,
        in_flight = settings.pool.max_in_flight
    ));
    parts.push(format!("max_failures {}", settings.pool.max_failures));
    if settings.resume {
        parts.push("--resume".into());
    }
    if let Some(limit) = settings.limit {
        parts.push(format!("--limit {limit}"));
    }
    if let Some(connector) = &settings.list.connector_id {
        parts.push(tr!("send-settings-connector", connector = connector));
    }
    if settings.window.is_some() {
        parts.push(tr!("send-settings-hours"));
    }
    parts.join(", ")
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
        boot_id: journal::boot_id(),
    }
}
