/*!
Tokens: read from `WOLKVOX_TOKEN` only (never a flag, never the config file),
kept secret (`Debug` and `Display` name a token by its position, never its
value) and exposed only to build the request header.
*/

use std::collections::HashSet;

use secrecy::{ExposeSecret, SecretString};

/// The environment variable tokens are read from.
pub(crate) const TOKEN_ENV: &str = "WOLKVOX_TOKEN";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{}", crate::tr!("token-none", variable = TOKEN_ENV))]
    NoToken,
    #[error("{}", crate::tr!(
        "token-bad",
        index = *.index,
        variable = TOKEN_ENV,
        reason = crate::i18n::message(.reason, &[])
    ))]
    BadToken { index: usize, reason: &'static str },
}

/// A Wolkvox token. `Debug` never shows it; only `api` exposes it, to build the header.
#[derive(Clone)]
pub(crate) struct Token {
    /// 1-based position in WOLKVOX_TOKEN: how logs and errors name a token.
    pub(crate) index: usize,
    secret: SecretString,
}

impl Token {
    pub(crate) fn expose(&self) -> &str {
        self.secret.expose_secret()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(#{}, [REDACTED])", self.index)
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::tr!("token-name", index = self.index))
    }
}

/// Parses `WOLKVOX_TOKEN`'s value: comma-separated, blanks ignored, repeats merged
/// (a repeated token would otherwise get twice the API's in-flight allowance).
pub(crate) fn parse_tokens(value: Option<&str>) -> Result<Vec<Token>, TokenError> {
    let Some(value) = value else {
        return Err(TokenError::NoToken);
    };
    let mut seen = HashSet::new();
    let mut tokens = Vec::new();
    for (i, raw) in value.split(',').enumerate() {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::BadToken {
                index: i + 1,
                // A catalogue id: the error is shown in the current language.
                reason: "token-bad-characters",
            });
        }
        if seen.insert(raw.to_owned()) {
            tokens.push(Token {
                index: i + 1,
                secret: SecretString::from(raw.to_owned()),
            });
        }
    }
    if tokens.is_empty() {
        return Err(TokenError::NoToken);
    }
    Ok(tokens)
}

/// Reads the tokens from the environment.
pub(crate) fn tokens_from_env() -> Result<Vec<Token>, TokenError> {
    match std::env::var(TOKEN_ENV) {
        Ok(v) => parse_tokens(Some(&v)),
        Err(std::env::VarError::NotPresent) => parse_tokens(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(TokenError::BadToken {
            index: 1,
            reason: "token-not-utf8",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_split_deduplicated_and_hidden() {
        let tokens = parse_tokens(Some(" abc , def,,abc ")).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[0].expose(), "abc");
        assert_eq!(tokens[1].index, 2);
        let shown = format!("{:?} {}", tokens, tokens[0]);
        assert!(!shown.contains("abc") && !shown.contains("def"), "{shown}");
        assert!(matches!(
            parse_tokens(Some(" , ")),
            Err(TokenError::NoToken)
        ));
        assert!(matches!(parse_tokens(None), Err(TokenError::NoToken)));
        let err = parse_tokens(Some("good,bad token")).unwrap_err();
        assert!(!err.to_string().contains("bad token"), "{err}");
    }
}
