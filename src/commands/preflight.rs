/*!
The HSM template check as each command runs it: before a real run's first
request, and in `validate` and `send --dry-run` whenever a token and the API's
address are at hand (they need neither, so they say when they skipped it).
*/

use crate::Error;
use crate::config::PreflightCheck;
use crate::send::api;
use crate::send::templates::{self, Checked, Uses};
use crate::send::token::{self, Token, TokenError};
use crate::tr;
use crate::validate::{Job, Message};

/// What came of the template check.
#[derive(Debug)]
pub(crate) enum TemplateCheck {
    /// Turned off, or no row is sent as a template.
    NotNeeded,
    /// Could not run: why.
    Skipped(String),
    /// Every template matched (those of unreadable answers were warned about).
    Passed(Checked),
}

/// An HSM job's text as the account's template fills it, when the check found it.
pub(crate) fn filled_text(check: &TemplateCheck, job: &Job) -> Option<String> {
    let (TemplateCheck::Passed(found), Message::Template { name, vars, .. }) =
        (check, &job.message)
    else {
        return None;
    };
    found
        .get(&(job.connector_id.clone(), name.clone()))
        .map(|known| known.fill(vars))
}

/// A real run, before its first request (with its first token).
pub(crate) fn before_sending(
    runtime: &tokio::runtime::Runtime,
    client: &api::Client,
    tokens: &[Token],
    uses: &Uses,
    enabled: bool,
) -> Result<TemplateCheck, templates::TemplateCheckError> {
    let Some(token) = tokens.first().filter(|_| enabled && !uses.is_empty()) else {
        return Ok(TemplateCheck::NotNeeded);
    };
    tracing::info!("{}", tr!("preflight-checking", uses = uses.describe()));
    runtime
        .block_on(templates::check(client, token, uses))
        .map(TemplateCheck::Passed)
}

/// `validate` and dry runs: the check when `WOLKVOX_TOKEN` and an origin are known.
pub(crate) fn if_possible(check: &PreflightCheck, uses: &Uses) -> Result<TemplateCheck, Error> {
    if !check.templates || uses.is_empty() {
        return Ok(TemplateCheck::NotNeeded);
    }
    let tokens = match token::tokens_from_env() {
        Ok(tokens) => tokens,
        Err(TokenError::NoToken) => {
            return Ok(TemplateCheck::Skipped(tr!("preflight-no-token")));
        }
        Err(e) => return Err(e.into()),
    };
    let Some(origin) = &check.origin else {
        return Ok(TemplateCheck::Skipped(tr!("preflight-no-server")));
    };
    let client = api::Client::new(origin, check.timeout, 1)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let enabled = true;
    Ok(before_sending(&runtime, &client, &tokens, uses, enabled)?)
}

/// The line that says how the check went, for `validate` and the dry-run log.
pub(crate) fn describe(check: &TemplateCheck, uses: &Uses) -> Option<String> {
    match check {
        TemplateCheck::NotNeeded => None,
        TemplateCheck::Skipped(why) => Some(tr!("preflight-skipped", why = why)),
        TemplateCheck::Passed(found) => Some(tr!(
            "preflight-passed",
            uses = uses.describe(),
            confirmed = found.len()
        )),
    }
}
