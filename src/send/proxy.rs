/*!
The proxy variables (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, upper or lower
case), checked before any request. The HTTP client reads them itself and
silently ignores one it cannot parse, connecting directly around the proxy a
company requires; here such a variable is an error that names it. The check
follows the client's own reading (hyper-util's proxy matcher): the value parses
as an HTTP URI (`http://user:password@host:port`, or without the scheme), its
scheme is `http` or `https`, and it has a host. Never shown: the value itself,
which may hold a password.
*/

use std::ffi::OsString;

use crate::tr;

/// The variables the HTTP client reads, in the order it reads them.
pub(crate) const VARIABLES: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// What is wrong with a proxy variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// Not valid UTF-8.
    NotText,
    /// Not a URL the client can read (a space, a broken host or port).
    NotUrl,
    /// A scheme other than `http` or `https` (`socks5`, `ftp`...).
    Scheme(String),
    /// No host.
    NoHost,
}

/// A proxy variable that cannot be used: its name and why (never its value).
#[derive(Debug, thiserror::Error)]
#[error("{}", tr!("proxy-variable", variable = .variable, reason = .problem.describe()))]
pub struct ProxyError {
    pub(crate) variable: &'static str,
    pub(crate) problem: Problem,
}

impl Problem {
    fn describe(&self) -> String {
        match self {
            Problem::NotText => tr!("proxy-not-text"),
            Problem::NotUrl => tr!("proxy-not-url"),
            Problem::Scheme(scheme) => tr!("proxy-scheme", scheme = scheme),
            Problem::NoHost => tr!("proxy-no-host"),
        }
    }
}

/// Checks the proxy variables of this process.
pub(crate) fn check_env() -> Result<(), ProxyError> {
    check(|name| std::env::var_os(name))
}

/// Checks the proxy variables `get` gives; an empty one means "no proxy".
pub(crate) fn check(get: impl Fn(&str) -> Option<OsString>) -> Result<(), ProxyError> {
    for variable in VARIABLES {
        let Some(raw) = get(variable) else {
            continue;
        };
        let problem = match raw.to_str() {
            None => Some(Problem::NotText),
            Some("") => None,
            Some(value) => problem(value),
        };
        if let Some(problem) = problem {
            return Err(ProxyError { variable, problem });
        }
    }
    Ok(())
}

/// Why the client could not use `value` as a proxy, if it could not.
fn problem(value: &str) -> Option<Problem> {
    let Ok(uri) = value.parse::<http::Uri>() else {
        return Some(Problem::NotUrl);
    };
    if let Some(scheme) = uri.scheme_str()
        && !scheme.eq_ignore_ascii_case("http")
        && !scheme.eq_ignore_ascii_case("https")
    {
        return Some(Problem::Scheme(
            crate::text::excerpt(scheme, 20).into_owned(),
        ));
    }
    let Some(authority) = uri.authority() else {
        return Some(Problem::NoHost);
    };
    // As the client does: the credentials before '@' are taken off, the rest must be a
    // host (and port) of its own.
    let host_port = authority
        .as_str()
        .rsplit_once('@')
        .map_or(authority.as_str(), |(_, host)| host);
    match host_port.parse::<http::uri::Authority>() {
        Ok(host) if host.host().is_empty() => Some(Problem::NoHost),
        // A port beyond 65535 parses, and no connection could ever be made to it.
        Ok(_) if !port_fits(host_port) => Some(Problem::NotUrl),
        Ok(_) => None,
        Err(_) => Some(Problem::NotUrl),
    }
}

/// The port after the host, if any, is a number up to 65535.
fn port_fits(host_port: &str) -> bool {
    let after_host = host_port
        .rsplit_once(']')
        .map_or(host_port, |(_, rest)| rest);
    match after_host.rsplit_once(':') {
        Some((_, port)) => port.is_empty() || port.parse::<u16>().is_ok(),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(pairs: &[(&str, &str)]) -> Result<(), ProxyError> {
        check(|name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn usable_values_pass() {
        for value in [
            "http://proxy.example:3128",
            "http://user:p%20ss@proxy.example:3128",
            "https://proxy.example",
            "proxy.example:3128",
            "http://10.0.0.1:8080/",
            "",
        ] {
            assert!(checked(&[("HTTPS_PROXY", value)]).is_ok(), "{value:?}");
        }
        assert!(checked(&[]).is_ok());
    }

    #[test]
    fn unusable_values_name_the_variable() {
        let cases = [
            (
                "HTTPS_PROXY",
                "http://user:pa ss@proxy:3128",
                Problem::NotUrl,
            ),
            (
                "https_proxy",
                "http://user:pass@[proxy:3128",
                Problem::NotUrl,
            ),
            (
                "ALL_PROXY",
                "socks5://proxy:1080",
                Problem::Scheme("socks5".into()),
            ),
            ("http_proxy", "http://proxy:99999999", Problem::NotUrl),
            ("HTTP_PROXY", "http://", Problem::NotUrl),
        ];
        for (variable, value, want) in cases {
            let err = checked(&[(variable, value)]).expect_err(value);
            assert_eq!(err.variable, variable, "{value:?}");
            assert_eq!(err.problem, want, "{value:?}");
            let text = err.to_string();
            assert!(text.contains(variable), "{text}");
            assert!(!text.contains("pa ss") && !text.contains("pass@"), "{text}");
        }
    }
}
