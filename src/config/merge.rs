/*!
One setting at a time: the flag, else the config key, else the default, checked
the same way whichever gave it; a refusal names the flag or the key (and file)
that was used.
*/

use std::path::Path;
use std::time::Duration;

use super::file::{
    ApiSection, CampaignSection, FileConfig, HsmSection, InputSection, MessageSection, RetrySection,
};
use super::{
    API_MAX_IN_FLIGHT, ConfigError, DEFAULT_MAX_ROWS, DEFAULT_RATE, DEFAULT_TIMEOUT, MIN_RATE,
    MIN_TIMEOUT, duration, key_error,
};
use crate::cli::InputArgs;
use crate::input::{Encoding, ReadOptions};
use crate::send::dispatch::RetryPolicy;
use crate::send::window::{ContactWindow, Week};
use crate::tr;
use crate::validate::template::TemplateSource;
use crate::validate::{Columns, HsmSettings, ListSettings, check_connector_id};

/// A setting given by a flag or a config key (the flag wins), checked the same way
/// whichever gave it; a refusal names the one that was used.
pub(super) fn flag_or_key<T, U>(
    flag: (&'static str, Option<T>),
    key: (&'static str, Option<T>),
    path: Option<&Path>,
    check: impl Fn(T) -> Result<U, String>,
) -> Result<Option<U>, ConfigError> {
    match (flag.1, key.1) {
        (Some(value), _) => check(value).map(Some).map_err(|reason| ConfigError::Flag {
            flag: flag.0,
            reason,
        }),
        (None, Some(value)) => check(value)
            .map(Some)
            .map_err(|reason| key_error(path, key.0, reason)),
        (None, None) => Ok(None),
    }
}

/// A text setting that must not be blank.
pub(super) fn not_blank(value: String) -> Result<String, String> {
    if value.trim().is_empty() {
        Err(tr!("config-not-empty"))
    } else {
        Ok(value)
    }
}

pub(super) fn non_empty_name(
    path: Option<&Path>,
    key: &'static str,
    value: Option<String>,
    default: String,
) -> Result<String, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if v.trim().is_empty() => Err(key_error(path, key, tr!("config-not-empty"))),
        Some(v) => Ok(v.trim().to_owned()),
    }
}

pub(super) fn list_settings(
    args: &InputArgs,
    file: &mut FileConfig,
    path: Option<&Path>,
) -> Result<ListSettings, ConfigError> {
    let defaults = Columns::default();
    let columns = Columns {
        telephone: non_empty_name(
            path,
            "columns.telephone",
            file.columns.telephone.take(),
            defaults.telephone,
        )?,
        message: non_empty_name(
            path,
            "columns.message",
            file.columns.message.take(),
            defaults.message,
        )?,
        connector_id: non_empty_name(
            path,
            "columns.connector_id",
            file.columns.connector_id.take(),
            defaults.connector_id,
        )?,
    };
    let max_rows = flag_or_key(
        ("--max-rows", args.max_rows),
        ("limits.max_rows", file.limits.max_rows),
        path,
        |n| {
            if n == 0 {
                Err(tr!("config-at-least-one"))
            } else {
                Ok(n)
            }
        },
    )?
    .unwrap_or(DEFAULT_MAX_ROWS);
    let connector_id = match file.api.connector_id.take() {
        Some(c) if c.trim().is_empty() => {
            return Err(key_error(
                path,
                "api.connector_id",
                tr!("config-connector-empty"),
            ));
        }
        Some(c) => {
            let c = c.trim().to_owned();
            check_connector_id(&c).map_err(|reason| key_error(path, "api.connector_id", reason))?;
            Some(c)
        }
        None => None,
    };
    let base = path.and_then(Path::parent).unwrap_or(Path::new(""));
    let suppress = args
        .suppress
        .iter()
        .cloned()
        .chain(
            file.campaign
                .suppress
                .take()
                .unwrap_or_default()
                .into_iter()
                .map(|p| base.join(p)),
        )
        .collect();
    let hsm = hsm_settings(args, &mut file.hsm, path)?;
    let mut read = read_options(args, &mut file.input, path)?;
    read.header_row = flag_or_key(
        ("--header-row", args.header_row),
        ("columns.header_row", file.columns.header_row.take()),
        path,
        |n| {
            if n == 0 {
                Err(tr!("config-at-least-one"))
            } else {
                Ok(n)
            }
        },
    )?;
    read.telephone = Some(columns.telephone.clone());
    Ok(ListSettings {
        input: args.input.clone(),
        max_rows,
        columns,
        connector_id,
        read,
        allow_duplicates: args.allow_duplicates || file.input.allow_duplicates.unwrap_or(false),
        default_country: default_country(file.phone.default_country.take(), path)?,
        template: template(args, &mut file.message, path)?,
        suppress,
        hsm,
    })
}

/// `--hsm`/`--hsm-vars` over `[hsm]`. Names are trimmed; empty ones are refused.
pub(super) fn hsm_settings(
    args: &InputArgs,
    file: &mut HsmSection,
    path: Option<&Path>,
) -> Result<HsmSettings, ConfigError> {
    let template_name = flag_or_key(
        ("--hsm", args.hsm.clone()),
        ("hsm.template_name", file.template_name.take()),
        path,
        |name: String| {
            let name = name.trim();
            if name.is_empty() {
                Err(tr!("config-template-name-empty"))
            } else {
                Ok(name.to_owned())
            }
        },
    )?;
    let vars = flag_or_key(
        ("--hsm-vars", args.hsm_vars.clone()),
        ("hsm.vars", file.vars.take()),
        path,
        |names: Vec<String>| match names.iter().position(|n| n.trim().is_empty()) {
            Some(i) => Err(tr!("config-variable-no-column", index = i + 1)),
            None => Ok(names.iter().map(|n| n.trim().to_owned()).collect()),
        },
    )?;
    Ok(HsmSettings {
        template_name,
        vars,
        vars_from_flag: args.hsm_vars.is_some(),
    })
}

/// Sheet, encoding and delimiter: flags, then `[input]`, then detection.
pub(super) fn read_options(
    args: &InputArgs,
    section: &mut InputSection,
    path: Option<&Path>,
) -> Result<ReadOptions, ConfigError> {
    let delimiter = flag_or_key(
        ("--delimiter", args.delimiter.clone()),
        ("input.delimiter", section.delimiter.take()),
        path,
        |d| {
            crate::input::parse_delimiter(&d).ok_or_else(|| {
                tr!(
                    "config-not-a-delimiter",
                    value = format!("{d:?}"),
                    delimiters = tr!("config-delimiters")
                )
            })
        },
    )?;
    let encoding = match section.encoding.take() {
        None => Encoding::Auto,
        Some(e) => Encoding::parse(&e).ok_or_else(|| {
            key_error(
                path,
                "input.encoding",
                tr!("config-encoding", value = format!("{e:?}")),
            )
        })?,
    };
    let sheet = flag_or_key(
        ("--sheet", args.sheet.clone()),
        ("input.sheet", section.sheet.take()),
        path,
        not_blank,
    )?;
    let locale = match section.locale.take() {
        None => crate::input::cells::NumberLocale::default(),
        Some(l) => crate::input::cells::NumberLocale::parse(&l).ok_or_else(|| {
            key_error(
                path,
                "input.locale",
                tr!("config-locale", value = format!("{l:?}")),
            )
        })?,
    };
    Ok(ReadOptions {
        sheet,
        encoding,
        delimiter,
        locale,
        header_row: None,
        telephone: None,
        // Set from limits.max_rows where the list is opened.
        max_rows: None,
    })
}

/// The message template: `--template FILE`, then `message.template`.
pub(super) fn template(
    args: &InputArgs,
    section: &mut MessageSection,
    path: Option<&Path>,
) -> Result<Option<TemplateSource>, ConfigError> {
    let source = match (&args.template, section.template.take()) {
        (Some(file), _) => {
            let text =
                std::fs::read_to_string(file).map_err(|source| ConfigError::TemplateFile {
                    path: file.clone(),
                    source,
                })?;
            if text.trim().is_empty() {
                return Err(ConfigError::Flag {
                    flag: "--template",
                    reason: tr!("config-file-empty", file = file.display()),
                });
            }
            TemplateSource {
                text,
                origin: format!("--template {}", file.display()),
            }
        }
        (None, Some(text)) => {
            if text.trim().is_empty() {
                return Err(key_error(path, "message.template", tr!("config-not-empty")));
            }
            TemplateSource {
                text,
                origin: format!(
                    "message.template in {}",
                    path.map(|p| p.display().to_string()).unwrap_or_default()
                ),
            }
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(source))
}

/// `phone.default_country`: a two-letter ISO code.
pub(super) fn default_country(
    code: Option<String>,
    path: Option<&Path>,
) -> Result<Option<crate::validate::phone::Country>, ConfigError> {
    code.map(|code| {
        crate::validate::phone::parse_country(&code).ok_or_else(|| {
            key_error(
                path,
                "phone.default_country",
                tr!("config-country", value = format!("{code:?}")),
            )
        })
    })
    .transpose()
}

/// `campaign.timezone`, else the machine's: the zone times are shown in.
pub(super) fn campaign_timezone(
    campaign: &CampaignSection,
    path: Option<&Path>,
) -> Result<jiff::tz::TimeZone, ConfigError> {
    match &campaign.timezone {
        Some(tz) => crate::send::window::parse_timezone(tz)
            .map_err(|reason| key_error(path, "campaign.timezone", reason)),
        None => Ok(jiff::tz::TimeZone::system()),
    }
}

/// The contact window from `[campaign]`: `None` when neither hours nor holidays are set.
/// A time zone is required with either, so "07:00" is never silently the server's time.
pub(super) fn contact_window(
    campaign: &CampaignSection,
    path: Option<&Path>,
) -> Result<Option<ContactWindow>, ConfigError> {
    if campaign.hours.is_none() && campaign.holidays.is_none() {
        if campaign.timezone.is_some() {
            crate::send::window::parse_timezone(campaign.timezone.as_deref().unwrap_or_default())
                .map_err(|reason| key_error(path, "campaign.timezone", reason))?;
        }
        return Ok(None);
    }
    let week = match &campaign.hours {
        Some(spec) => {
            Week::parse(spec).map_err(|reason| key_error(path, "campaign.hours", reason))?
        }
        None => Week::always(),
    };
    let Some(tz) = &campaign.timezone else {
        return Err(key_error(
            path,
            "campaign.timezone",
            tr!("config-timezone-required"),
        ));
    };
    let tz = crate::send::window::parse_timezone(tz)
        .map_err(|reason| key_error(path, "campaign.timezone", reason))?;
    let mut holidays = std::collections::BTreeSet::new();
    for (i, text) in campaign.holidays.iter().flatten().enumerate() {
        let date = crate::send::window::parse_holiday(text).map_err(|reason| {
            key_error(
                path,
                "campaign.holidays",
                format!("entry {}: {reason}", i + 1),
            )
        })?;
        holidays.insert(date);
    }
    ContactWindow::new(week, tz, holidays)
        .map(Some)
        .map_err(|reason| key_error(path, "campaign.hours", reason))
}

/// The origin the API lives at: `--base-url`, then `api.base_url`, then `api.server`.
/// `api.server` is checked even when a base URL wins, so a bad file never passes silently.
pub(super) fn origin(
    flag: Option<&str>,
    api: &ApiSection,
    path: Option<&Path>,
) -> Result<Option<String>, ConfigError> {
    let server = match &api.server {
        Some(server) => {
            let server = server.trim();
            check_server_id(server).map_err(|reason| key_error(path, "api.server", reason))?;
            Some(format!("https://wv{server}.wolkvox.com"))
        }
        None => None,
    };
    if let Some(url) = flag {
        return check_base_url(url)
            .map(Some)
            .map_err(|reason| ConfigError::Flag {
                flag: "--base-url",
                reason,
            });
    }
    if let Some(url) = &api.base_url {
        return check_base_url(url)
            .map(Some)
            .map_err(|reason| key_error(path, "api.base_url", reason));
    }
    Ok(server)
}

/// `api.server`: letters and digits only, so it can never change the host.
pub(crate) fn check_server_id(server: &str) -> Result<(), String> {
    if server.is_empty() || !server.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(tr!("config-server-id", value = format!("{server:?}")));
    }
    Ok(())
}

/// A base URL is an origin (scheme, host, optional port and path prefix), nothing more.
pub(super) fn check_base_url(url: &str) -> Result<String, String> {
    // First, and without repeating it: every later message quotes the URL.
    if crate::text::redact_url(url) != url {
        return Err(tr!("config-url-credentials"));
    }
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| {
        tr!(
            "config-url-invalid",
            url = format!("{url:?}"),
            error = e.to_string()
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(tr!("config-url-scheme", url = format!("{url:?}")));
    }
    if parsed.host_str().is_none() {
        return Err(tr!("row-url-no-host", url = format!("{url:?}")));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(tr!("config-url-query", url = format!("{url:?}")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(tr!("config-url-credentials"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// `api.timeout`: at least 1 s.
pub(super) fn api_timeout(
    value: Option<&str>,
    path: Option<&Path>,
) -> Result<Duration, ConfigError> {
    let timeout = duration(path, "api.timeout", value, DEFAULT_TIMEOUT)?;
    if timeout < MIN_TIMEOUT {
        return Err(key_error(
            path,
            "api.timeout",
            tr!(
                "config-timeout-short",
                value = humantime::format_duration(timeout).to_string()
            ),
        ));
    }
    Ok(timeout)
}

/// `--rate` or `limits.requests_per_second`: requests per second per token.
pub(super) fn rate(
    flag: Option<f64>,
    key: Option<f64>,
    path: Option<&Path>,
) -> Result<f64, ConfigError> {
    let rate = flag_or_key(
        ("--rate", flag),
        ("limits.requests_per_second", key),
        path,
        |r: f64| {
            if r.is_finite() && r >= MIN_RATE {
                Ok(r)
            } else {
                Err(tr!(
                    "config-rate",
                    value = r,
                    min = format!("{MIN_RATE:.6}")
                ))
            }
        },
    )?
    .unwrap_or(DEFAULT_RATE);
    Ok(rate)
}

/// `limits.max_in_flight_per_token`: 1 or 2, what the API accepts.
pub(super) fn max_in_flight(key: Option<usize>, path: Option<&Path>) -> Result<usize, ConfigError> {
    let max_in_flight = match key {
        None => API_MAX_IN_FLIGHT,
        Some(n) if (1..=API_MAX_IN_FLIGHT).contains(&n) => n,
        Some(n) => {
            return Err(key_error(
                path,
                "limits.max_in_flight_per_token",
                tr!("config-in-flight", value = n, max = API_MAX_IN_FLIGHT),
            ));
        }
    };
    Ok(max_in_flight)
}

/// `[retry]`: attempts, back-off and when the service counts as down.
pub(super) fn retry_policy(
    section: &RetrySection,
    path: Option<&Path>,
) -> Result<RetryPolicy, ConfigError> {
    let defaults = RetryPolicy::default();
    let retry = RetryPolicy {
        max_attempts: match section.max_attempts {
            Some(0) => {
                return Err(key_error(
                    path,
                    "retry.max_attempts",
                    tr!("config-at-least-one"),
                ));
            }
            Some(n) => n,
            None => defaults.max_attempts,
        },
        base_delay: duration(
            path,
            "retry.base_delay",
            section.base_delay.as_deref(),
            defaults.base_delay,
        )?,
        max_delay: duration(
            path,
            "retry.max_delay",
            section.max_delay.as_deref(),
            defaults.max_delay,
        )?,
        max_consecutive_failures: match section.max_consecutive_failures {
            Some(0) => {
                return Err(key_error(
                    path,
                    "retry.max_consecutive_failures",
                    tr!("config-at-least-one"),
                ));
            }
            Some(n) => n,
            None => defaults.max_consecutive_failures,
        },
    };
    if retry.max_delay < retry.base_delay {
        return Err(key_error(path, "retry.max_delay", tr!("config-max-delay")));
    }
    Ok(retry)
}
