/*!
What each subcommand gets: its settings struct and the function that builds it
from its flags and the config file (see `merge` for each value). `send`'s include
the dispatcher's own `PoolSettings`, built here and handed to `send::dispatch::run`
as they are.
*/

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::file::load_file;
use super::ledger::ledger_settings;
use super::merge::{
    api_timeout, campaign_timezone, contact_window, default_country, flag_or_key, list_settings,
    max_in_flight, origin, rate, retry_policy,
};
use super::{ConfigError, DEFAULT_MAX_FAILURES, DEFAULT_RATE, MIN_RATE, duration};
use crate::cli::{LogFormat, SendArgs, ValidateArgs};
use crate::send::dispatch::{Hours, PoolSettings};
use crate::send::window::{ContactWindow, Gate, SystemClock};
use crate::tr;
use crate::validate::ListSettings;

/// Everything `send` needs, validated.
#[derive(Debug, Clone)]
pub(crate) struct SendSettings {
    pub(crate) list: ListSettings,
    pub(crate) results: PathBuf,
    pub(crate) dry_run: bool,
    pub(crate) resume: bool,
    pub(crate) retry_failed: bool,
    pub(crate) retry_unknown: bool,
    /// The origin requests go to, without a trailing slash. `None` only for dry runs.
    pub(crate) origin: Option<String>,
    pub(crate) timeout: Duration,
    /// `api.idle_timeout`: a kept-alive connection idle longer is not used again.
    pub(crate) idle_timeout: Duration,
    /// How the dispatcher sends: rate, requests in flight, retries, contact hours,
    /// `--max-failures`. Built here, handed to `send::dispatch::run` as is.
    pub(crate) pool: PoolSettings,
    pub(crate) quiet: bool,
    pub(crate) log_format: LogFormat,
    /// Ask each token's remaining daily quota before sending (not with --no-quota-check).
    pub(crate) quota_check: bool,
    /// Send what today's quota allows instead of refusing a list that does not fit.
    pub(crate) partial: bool,
    /// Where to write the end-of-run summary as JSON.
    pub(crate) summary_json: Option<PathBuf>,
    /// Contact hours, for the estimates; `None` sends at any hour. The dispatcher keeps
    /// to them through `pool.hours`.
    pub(crate) window: Option<ContactWindow>,
    /// Check the HSM templates against the account before sending.
    pub(crate) template_check: bool,
    /// Rows this run sends at most (`--limit`): a pilot batch.
    pub(crate) limit: Option<u64>,
    /// Valid rows a dry run shows as they would be sent (`--preview`).
    pub(crate) preview: usize,
    /// Write the workbook beside the results.
    pub(crate) xlsx: bool,
    /// Times in the workbook: `campaign.timezone`, else the machine's.
    pub(crate) timezone: jiff::tz::TimeZone,
    /// Without a terminal: how often a progress line is logged (zero: never).
    pub(crate) progress_interval: Duration,
    /// The send ledger; `None` with `--no-ledger`.
    pub(crate) ledger: Option<crate::ledger::Settings>,
    /// Send rows the ledger holds (`--allow-repeat`).
    pub(crate) allow_repeat: bool,
    /// With `--resume`: send rows whose text changed (`--resend-changed`).
    pub(crate) resend_changed: bool,
}

/// Everything `validate` needs.
#[derive(Debug, Clone)]
pub struct ValidateSettings {
    pub list: ListSettings,
    pub(crate) window: Option<ContactWindow>,
    /// Requests per second per token from the config, for the contact-hours estimate.
    pub(crate) rate: f64,
    pub(crate) check: PreflightCheck,
    /// `campaign.timezone`, else the machine's: the estimate's clock time.
    pub(crate) timezone: jiff::tz::TimeZone,
    /// The send ledger, to show rows that would be held; `None` with `--no-ledger`.
    pub(crate) ledger: Option<crate::ledger::Settings>,
}

/// What the HSM template check needs: where the API is, and whether to run it.
#[derive(Debug, Clone)]
pub(crate) struct PreflightCheck {
    /// `None` when neither a base URL nor a server id is configured.
    pub(crate) origin: Option<String>,
    pub(crate) timeout: Duration,
    /// Not with `--no-template-check`.
    pub(crate) templates: bool,
}

/// Everything `history` needs.
#[derive(Debug, Clone)]
pub(crate) struct HistorySettings {
    pub(crate) ledger: crate::ledger::Settings,
    pub(crate) timezone: jiff::tz::TimeZone,
    pub(crate) default_country: Option<crate::validate::phone::Country>,
}

pub(crate) fn history_settings(
    args: &crate::cli::HistoryArgs,
) -> Result<HistorySettings, ConfigError> {
    let path = args.config.as_deref();
    let file = load_file(path)?;
    let ledger = ledger_settings(args.ledger.as_deref(), false, &file.ledger, path)?
        .ok_or(ConfigError::NoLedgerPlace)?;
    Ok(HistorySettings {
        ledger,
        timezone: campaign_timezone(&file.campaign, path)?,
        default_country: default_country(file.phone.default_country.clone(), path)?,
    })
}

/// Everything `reconcile` needs.
#[derive(Debug, Clone)]
pub(crate) struct ReconcileSettings {
    pub(crate) results: PathBuf,
    pub(crate) origin: String,
    pub(crate) timeout: Duration,
    pub(crate) default_country: Option<crate::validate::phone::Country>,
    /// The operation's time zone, for the report's dates: `campaign.timezone`, else the
    /// machine's.
    pub(crate) timezone: jiff::tz::TimeZone,
    pub(crate) settle_after: jiff::SignedDuration,
    pub(crate) dry_run: bool,
    /// The send ledger, told what is settled (`[ledger] path`, else the default).
    pub(crate) ledger: Option<crate::ledger::Settings>,
}

pub(crate) fn reconcile_settings(
    args: &crate::cli::ReconcileArgs,
) -> Result<ReconcileSettings, ConfigError> {
    let path = args.config.as_deref();
    let file = load_file(path)?;
    let origin =
        origin(args.base_url.as_deref(), &file.api, path)?.ok_or(ConfigError::NoEndpoint)?;
    let timezone = campaign_timezone(&file.campaign, path)?;
    let settle_after = humantime::parse_duration(&args.settle_after)
        .ok()
        .and_then(|d| jiff::SignedDuration::try_from(d).ok())
        .ok_or_else(|| ConfigError::Flag {
            flag: "--settle-after",
            reason: tr!(
                "config-settle-after",
                value = format!("{:?}", args.settle_after)
            ),
        })?;
    Ok(ReconcileSettings {
        results: args.results.clone(),
        origin,
        timeout: api_timeout(file.api.timeout.as_deref(), path)?,
        default_country: default_country(file.phone.default_country.clone(), path)?,
        timezone,
        settle_after,
        dry_run: args.dry_run,
        ledger: match ledger_settings(None, false, &file.ledger, path) {
            // No place for a ledger: there is none to tell.
            Err(ConfigError::NoLedgerPlace) => None,
            other => other?,
        },
    })
}

/// Settings for `validate`.
pub fn validate_settings(command: &ValidateArgs) -> Result<ValidateSettings, ConfigError> {
    let args = &command.input;
    let path = args.config.as_deref();
    let mut file = load_file(path)?;
    let list = list_settings(args, &mut file, path)?;
    let check = PreflightCheck {
        origin: origin(command.base_url.as_deref(), &file.api, path)?,
        timeout: api_timeout(file.api.timeout.as_deref(), path)?,
        templates: !command.no_template_check,
    };
    let window = contact_window(&file.campaign, path)?;
    // Only for the estimate: `send` reports a bad rate; here the default stands in.
    let rate = file
        .limits
        .requests_per_second
        .filter(|r| r.is_finite() && *r >= MIN_RATE)
        .unwrap_or(DEFAULT_RATE);
    Ok(ValidateSettings {
        list,
        window,
        rate,
        check,
        timezone: campaign_timezone(&file.campaign, path)?,
        ledger: ledger_settings(
            command.ledger.as_deref(),
            command.no_ledger,
            &file.ledger,
            path,
        )?,
    })
}

/// Settings for `send`.
pub(crate) fn send_settings(args: &SendArgs) -> Result<SendSettings, ConfigError> {
    let path = args.input.config.as_deref();
    let mut file = load_file(path)?;
    let list = list_settings(&args.input, &mut file, path)?;

    let window = contact_window(&file.campaign, path)?;
    if args.wait_for_window && window.is_none() {
        return Err(ConfigError::Flag {
            flag: "--wait-for-window",
            reason: tr!("config-no-hours-to-wait"),
        });
    }
    let origin = origin(args.base_url.as_deref(), &file.api, path)?;
    if origin.is_none() && !args.dry_run {
        return Err(ConfigError::NoEndpoint);
    }
    let timeout = api_timeout(file.api.timeout.as_deref(), path)?;
    let rate = rate(args.rate, file.limits.requests_per_second, path)?;
    let max_in_flight = max_in_flight(file.limits.max_in_flight_per_token, path)?;
    let retry = retry_policy(&file.retry, path)?;
    let limit = match args.limit {
        Some(0) => {
            return Err(ConfigError::Flag {
                flag: "--limit",
                reason: tr!("config-limit-zero"),
            });
        }
        limit => limit,
    };
    let max_failures = flag_or_key(
        ("--max-failures", args.max_failures),
        ("campaign.max_failures", file.campaign.max_failures),
        path,
        Ok::<u32, String>,
    )?
    .unwrap_or(DEFAULT_MAX_FAILURES);

    let results = match &args.results {
        Some(p) => p.clone(),
        // A list with a template_name column but no name here is settled from its
        // header, later (see `default_results`).
        None => crate::journal::naming::default_results(
            &list.input,
            args.dry_run,
            list.hsm.template_name.is_some(),
        ),
    };

    Ok(SendSettings {
        list,
        results,
        dry_run: args.dry_run,
        resume: args.resume,
        retry_failed: args.retry_failed,
        retry_unknown: args.retry_unknown,
        origin,
        timeout,
        idle_timeout: duration(
            path,
            "api.idle_timeout",
            file.api.idle_timeout.as_deref(),
            crate::send::api::DEFAULT_IDLE_TIMEOUT,
        )?,
        pool: PoolSettings {
            rate,
            max_in_flight,
            retry,
            hours: window.clone().map(|window| {
                Arc::new(Hours {
                    gate: Gate::new(window, Arc::new(SystemClock)),
                    wait: args.wait_for_window,
                })
            }),
            max_failures,
        },
        quiet: args.quiet,
        log_format: args.log_format,
        quota_check: !args.no_quota_check,
        partial: args.partial,
        summary_json: args.summary_json.clone(),
        window,
        template_check: !args.no_template_check,
        limit,
        preview: args.preview,
        xlsx: !args.no_xlsx && file.results.xlsx.unwrap_or(true),
        timezone: campaign_timezone(&file.campaign, path)?,
        progress_interval: duration(
            path,
            "report.progress_interval",
            file.report.progress_interval.as_deref(),
            crate::progress::DEFAULT_INTERVAL,
        )?,
        ledger: ledger_settings(args.ledger.as_deref(), args.no_ledger, &file.ledger, path)?,
        allow_repeat: args.allow_repeat,
        resend_changed: args.resend_changed,
    })
}
