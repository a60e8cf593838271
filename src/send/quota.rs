/*!
The pre-flight check of today's quota: before the first message, each token's
`token_info` (one call per token, asked at once) says how many calls it has
left today, and the run is fitted to that.

A token that `token_info` refuses (invalid, missing) or that has nothing left
today is dropped with a warning; if none is left, nothing is sent. If the rows
to send are more than all the tokens have left, the run is refused before any
message, unless `--partial` asks to send what fits. A check that gets no usable
answer (a failed call, fields not found) is only a warning: a campaign is not
held up by a pre-flight check, and a quota that runs out mid-run still retires
its token (`TOKEN LIMIT EXCEEDED`). A check that fails in a way no request can get
past (an untrusted certificate, a proxy that refuses: `setting`) stops the run
before any row is tried.
*/

use crate::send::api::Client;
use crate::send::token::Token;
use crate::tr;
use crate::wolkvox::{SettingProblem, TokenInfo, TokenProblem};

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("{}", tr!("quota-too-small", fits = *.fits, tokens = *.tokens, rows = *.rows))]
    TooSmall {
        rows: usize,
        fits: u64,
        tokens: usize,
    },
    #[error("{}", tr!("quota-no-token", detail = .detail))]
    NoToken { detail: String },
}

/// The tokens that can send today and how many requests they have left in all.
#[derive(Debug)]
pub(crate) struct Fitted {
    pub(crate) tokens: Vec<Token>,
    /// `None` when at least one token's quota could not be read.
    pub(crate) left: Option<u64>,
}

/// Asks every token's `token_info` at once; answers come back in the tokens' order.
pub(crate) async fn ask(client: &Client, tokens: Vec<Token>) -> Vec<(Token, TokenInfo)> {
    let mut calls = tokio::task::JoinSet::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let client = client.clone();
        calls.spawn(async move {
            let info = client.token_info(&token).await;
            (i, token, info)
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = calls.join_next().await {
        match done {
            Ok(answer) => answers.push(answer),
            // A task can only fail by panicking; its token is then not used.
            Err(e) => tracing::warn!("{}", tr!("quota-check-failed", error = e.to_string())),
        }
    }
    answers.sort_by_key(|(i, _, _)| *i);
    answers.into_iter().map(|(_, t, info)| (t, info)).collect()
}

/// The first answer that failed in a way no request can get past (an untrusted
/// certificate, a proxy that refuses): the run stops before any row is tried.
pub(crate) fn setting(answers: &[(Token, TokenInfo)]) -> Option<(SettingProblem, String)> {
    answers.iter().find_map(|(_, info)| match info {
        TokenInfo::Setting(problem, why) => Some((*problem, why.clone())),
        _ => None,
    })
}

/// Keeps the tokens that can send today and adds up what they have left.
pub(crate) fn fit(answers: Vec<(Token, TokenInfo)>) -> Result<Fitted, QuotaError> {
    let mut tokens = Vec::new();
    let mut left = Some(0u64);
    let mut dropped = Vec::new();
    for (token, info) in answers {
        match info {
            TokenInfo::Quota(q) if q.remaining() == 0 => {
                tracing::warn!(
                    "{}",
                    tr!(
                        "quota-token-spent",
                        token = token.to_string(),
                        limit = q.limit,
                        used = q.used_today
                    )
                );
                dropped.push(format!("{token}: {}", tr!("quota-why-spent")));
            }
            TokenInfo::Quota(q) => {
                tracing::info!(
                    "{}",
                    tr!(
                        "quota-token-left",
                        token = token.to_string(),
                        left = q.remaining(),
                        limit = q.limit,
                        used = q.used_today
                    )
                );
                left = left.map(|n| n.saturating_add(q.remaining()));
                tokens.push(token);
            }
            TokenInfo::Rejected(problem, reply) => {
                let why = match problem {
                    TokenProblem::QuotaSpent => tr!("quota-why-spent"),
                    TokenProblem::Invalid => tr!("quota-why-invalid"),
                    TokenProblem::Missing => tr!("quota-why-missing"),
                };
                tracing::warn!(
                    "{}",
                    tr!(
                        "quota-token-refused",
                        token = token.to_string(),
                        answer = if reply.msg.is_empty() {
                            &reply.error
                        } else {
                            &reply.msg
                        },
                        why = why
                    )
                );
                dropped.push(format!("{token}: {why}"));
            }
            // Stopped before this by the caller (see `setting`); otherwise unknown.
            TokenInfo::Unknown(why) | TokenInfo::Setting(_, why) => {
                tracing::warn!(
                    "{}",
                    tr!("quota-unknown", token = token.to_string(), why = why)
                );
                left = None;
                tokens.push(token);
            }
        }
    }
    if tokens.is_empty() {
        return Err(QuotaError::NoToken {
            detail: dropped.join("; "),
        });
    }
    Ok(Fitted { tokens, left })
}

/// How many of `rows` jobs to send: all of them, the first ones that fit (`partial`),
/// or none (an error that says what fits).
pub(crate) fn rows_to_send(
    rows: usize,
    fitted: &Fitted,
    partial: bool,
) -> Result<usize, QuotaError> {
    let Some(left) = fitted.left else {
        return Ok(rows);
    };
    let fits = usize::try_from(left).unwrap_or(usize::MAX);
    let tokens = fitted.tokens.len();
    if rows <= fits {
        let enough = tr!("quota-enough", left = left, tokens = tokens, rows = rows);
        tracing::info!("{enough}");
        Ok(rows)
    } else if partial {
        let some = tr!(
            "quota-partial",
            left = left,
            tokens = tokens,
            fits = fits,
            rows = rows
        );
        tracing::warn!("{some}");
        Ok(fits)
    } else {
        Err(QuotaError::TooSmall {
            rows,
            fits: left,
            tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::token::parse_tokens;
    use crate::wolkvox::Reply;
    use crate::wolkvox::token_info::TokenQuota;

    fn tokens(n: usize) -> Vec<Token> {
        let list: Vec<String> = (1..=n).map(|i| format!("tok{i}")).collect();
        parse_tokens(Some(&list.join(","))).unwrap()
    }

    fn quota(limit: u64, used_today: u64) -> TokenInfo {
        TokenInfo::Quota(TokenQuota { limit, used_today })
    }

    #[test]
    fn what_is_left_is_summed_over_tokens_that_can_send() {
        let answers = tokens(4).into_iter().zip([
            quota(1000, 100),
            quota(1000, 1000),
            TokenInfo::Rejected(TokenProblem::Invalid, Reply::default()),
            quota(2000, 0),
        ]);
        let fitted = fit(answers.collect()).unwrap();
        let kept: Vec<usize> = fitted.tokens.iter().map(|t| t.index).collect();
        assert_eq!(kept, [1, 4]);
        assert_eq!(fitted.left, Some(899 + 1999));
    }

    #[test]
    fn an_unreadable_quota_keeps_the_token_and_does_not_limit() {
        let answers = tokens(2)
            .into_iter()
            .zip([quota(1000, 990), TokenInfo::Unknown("HTTP 500".into())]);
        let fitted = fit(answers.collect()).unwrap();
        assert_eq!(fitted.tokens.len(), 2);
        assert_eq!(fitted.left, None);
        assert_eq!(rows_to_send(5000, &fitted, false).unwrap(), 5000);
    }

    #[test]
    fn no_usable_token_is_an_error_that_says_why() {
        let answers = tokens(2).into_iter().zip([
            TokenInfo::Rejected(TokenProblem::Invalid, Reply::default()),
            TokenInfo::Rejected(TokenProblem::QuotaSpent, Reply::default()),
        ]);
        let err = fit(answers.collect()).unwrap_err().to_string();
        assert!(err.contains("token #1: invalid"), "{err}");
        assert!(err.contains("token #2: today's quota is spent"), "{err}");
    }

    #[test]
    fn a_list_larger_than_the_quota_is_refused_or_cut() {
        let fitted = Fitted {
            tokens: tokens(2),
            left: Some(150),
        };
        assert_eq!(rows_to_send(150, &fitted, false).unwrap(), 150);
        let err = rows_to_send(151, &fitted, false).unwrap_err().to_string();
        assert!(
            err.contains("allows 150 more requests on 2 tokens") && err.contains("--partial"),
            "{err}"
        );
        assert_eq!(rows_to_send(151, &fitted, true).unwrap(), 150);
    }
}
