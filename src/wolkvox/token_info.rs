/*!
What Wolkvox's `token_info` says of a token: today's quota, or why it cannot be used.
Pure, so every shape of answer is unit-tested.
*/

use super::answer::{Answer, Reply, SettingProblem, TokenProblem, classify};
use super::{excerpt, find_count};
use crate::tr;

/// Today's quota of one token, as `token_info` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenQuota {
    /// Calls allowed a day (licences x 1000).
    pub(crate) limit: u64,
    /// Calls made today.
    pub(crate) used_today: u64,
}

impl TokenQuota {
    /// Calls left today. The `token_info` call itself costs one; whether the reported
    /// use already counts it is not documented, so it is taken off again: at worst one
    /// call of the day is left unused.
    pub(crate) fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used_today).saturating_sub(1)
    }
}

/// What `token_info` said about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenInfo {
    Quota(TokenQuota),
    /// The token cannot be used today: invalid, missing, or its quota already spent.
    Rejected(TokenProblem, Reply),
    /// No usable answer (the call failed, or the fields are not in it): why.
    Unknown(String),
    /// The call failed in a way no request can get past (see `SettingProblem`): why.
    Setting(SettingProblem, String),
}

/// Reads a `token_info` answer. Pure, so every shape is unit-tested. The nesting of
/// `token_limit` and `token_use_today` is not documented: they are looked up at any
/// depth, as numbers or strings of digits.
pub(crate) fn parse_token_info(status: u16, body: &[u8]) -> TokenInfo {
    match classify(status, body, None) {
        Answer::TokenRejected(problem, reply) => return TokenInfo::Rejected(problem, reply),
        Answer::Setting(problem, reply) => {
            return TokenInfo::Setting(problem, format!("HTTP {status} {}", reply.msg));
        }
        _ => {}
    }
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    if !(200..300).contains(&status) {
        let said = parsed
            .as_ref()
            .and_then(|v| v.get("msg"))
            .map(|m| excerpt(&m.to_string()))
            .unwrap_or_else(|| excerpt(&String::from_utf8_lossy(body)));
        return TokenInfo::Unknown(format!("HTTP {status} {said}").trim().to_owned());
    }
    let Some(value) = parsed else {
        return TokenInfo::Unknown(tr!("api-answer-not-json"));
    };
    match (
        find_count(&value, "token_limit"),
        find_count(&value, "token_use_today"),
    ) {
        (Some(limit), Some(used_today)) => TokenInfo::Quota(TokenQuota { limit, used_today }),
        _ => TokenInfo::Unknown(tr!("api-no-token-limit")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wolkvox::test_body as body;

    #[test]
    fn token_info_fields_are_found_wherever_they_are() {
        let quota = |limit, used_today| TokenInfo::Quota(TokenQuota { limit, used_today });
        let shapes: [(&str, TokenInfo); 6] = [
            // As the fake answers: nested under data.
            (
                r#"{"code":200,"error":null,"msg":"ok","data":{"token_limit":1000,"token_use_today":40,"all_token_today":90}}"#,
                quota(1000, 40),
            ),
            // Flat, numbers as strings.
            (
                r#"{"token_limit":"3000","token_use_today":" 7 "}"#,
                quota(3000, 7),
            ),
            // In an array, floats that are whole numbers, a code given as a string.
            (
                r#"{"code":"200","data":[{"token":{"token_limit":2000.0,"token_use_today":0}}]}"#,
                quota(2000, 0),
            ),
            // The fields are missing.
            (
                r#"{"code":200,"data":{"limit":1000}}"#,
                TokenInfo::Unknown(
                    "the answer has no token_limit and token_use_today (as whole numbers)".into(),
                ),
            ),
            // Not JSON.
            (
                "<html>maintenance</html>",
                TokenInfo::Unknown("the answer is not JSON".into()),
            ),
            // Not a number.
            (
                r#"{"token_limit":"many","token_use_today":1}"#,
                TokenInfo::Unknown(
                    "the answer has no token_limit and token_use_today (as whole numbers)".into(),
                ),
            ),
        ];
        for (body, want) in shapes {
            assert_eq!(parse_token_info(200, body.as_bytes()), want, "{body}");
        }
    }

    #[test]
    fn token_info_refusals_and_failures() {
        assert!(matches!(
            parse_token_info(403, &body("403", "\"FORBIDDEN\"", "PLEASE VALIDATE TOKEN")),
            TokenInfo::Rejected(TokenProblem::Invalid, _)
        ));
        assert!(matches!(
            parse_token_info(200, &body("403", "\"FORBIDDEN\"", "TOKEN LIMIT EXCEEDED")),
            TokenInfo::Rejected(TokenProblem::QuotaSpent, _)
        ));
        let TokenInfo::Unknown(why) = parse_token_info(503, b"busy") else {
            panic!()
        };
        assert_eq!(why, "HTTP 503 busy");
    }

    #[test]
    fn remaining_takes_off_the_check_itself() {
        let q = TokenQuota {
            limit: 1000,
            used_today: 40,
        };
        assert_eq!(q.remaining(), 959);
        let spent = TokenQuota {
            limit: 1000,
            used_today: 1000,
        };
        assert_eq!(spent.remaining(), 0);
        let over = TokenQuota {
            limit: 10,
            used_today: 12,
        };
        assert_eq!(over.remaining(), 0);
    }
}
