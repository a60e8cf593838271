/*!
`init`: writes a first config file, commented in the reader's language, with the
three settings a first campaign needs: the Wolkvox server, the WhatsApp connector
and the country of numbers written without a country code.

Each setting comes from its flag, else from a line read on stdin after a question on
stderr (a terminal, or answers piped in). An empty answer (or the end of stdin)
leaves the key commented out, with a note. Every value is checked as the config
loader checks it, so the file written always loads. An existing file is never
overwritten, and that is checked before any question is asked.
*/

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::cli::InitArgs;
use crate::config::check_server_id;
use crate::i18n::{self, Lang};
use crate::validate::check_connector_id;
use crate::validate::phone::parse_country;
use crate::{Exit, tr};

/// Why no config file was written (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{}", tr!("init-exists", file = .0))]
    Exists(PathBuf),
    #[error("{}", tr!("init-write", file = .path, error = .source))]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", tr!("init-bad-flag", flag = .flag, reason = .reason))]
    Flag { flag: &'static str, reason: String },
    #[error("{}", tr!("init-bad-answer", key = .key, flag = .flag, reason = .reason))]
    Answer {
        key: &'static str,
        flag: &'static str,
        reason: String,
    },
}

/// One setting `init` asks for.
struct Setting {
    flag: &'static str,
    key: &'static str,
    question: String,
    check: fn(&str) -> Result<String, String>,
}

/// `0042`, `wv0042`, `wv0042.wolkvox.com` or `https://wv0042.wolkvox.com/...`: `0042`.
fn server(answer: &str) -> Result<String, String> {
    let host = answer
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let id = match host.split_once(".wolkvox.com") {
        Some((name, _)) => name.strip_prefix("wv").unwrap_or(name),
        None => host.strip_prefix("wv").unwrap_or(host),
    };
    check_server_id(id).map(|()| id.to_owned())
}

fn connector(answer: &str) -> Result<String, String> {
    let id = answer.trim();
    check_connector_id(id).map(|()| id.to_owned())
}

fn country(answer: &str) -> Result<String, String> {
    let code = answer.trim().to_ascii_uppercase();
    match parse_country(&code) {
        Some(_) => Ok(code),
        None => Err(tr!("config-country", value = format!("{code:?}"))),
    }
}

/// Writes the config file `args.file`.
pub(crate) fn run(args: &InitArgs) -> Result<Exit, crate::Error> {
    if args.file.exists() {
        return Err(InitError::Exists(args.file.clone()).into());
    }
    let settings = [
        (
            args.server.as_deref(),
            Setting {
                flag: "--server",
                key: "api.server",
                question: tr!("init-ask-server"),
                check: server,
            },
        ),
        (
            args.connector_id.as_deref(),
            Setting {
                flag: "--connector-id",
                key: "api.connector_id",
                question: tr!("init-ask-connector"),
                check: connector,
            },
        ),
        (
            args.country.as_deref(),
            Setting {
                flag: "--country",
                key: "phone.default_country",
                question: tr!("init-ask-country"),
                check: country,
            },
        ),
    ];
    // Every flag is checked before the first question.
    let mut values = Vec::new();
    for (flag, setting) in &settings {
        let value = flag
            .map(|v| (setting.check)(v))
            .transpose()
            .map_err(|reason| InitError::Flag {
                flag: setting.flag,
                reason,
            })?;
        values.push(value);
    }
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let mut input = stdin.lock();
    for ((_, setting), value) in settings.iter().zip(values.iter_mut()) {
        if value.is_none() {
            *value = ask(setting, &mut input, interactive)?;
        }
    }
    let [server, connector, country] = [values.remove(0), values.remove(0), values.remove(0)];
    let text = file_text(
        &args.file,
        server.as_deref(),
        connector.as_deref(),
        country.as_deref(),
    );
    write_new(&args.file, &text)?;
    let missing = missing_keys(&[
        ("api.server", server.is_none()),
        ("api.connector_id", connector.is_none()),
        ("phone.default_country", country.is_none()),
    ]);
    println!("{}", tr!("init-written", file = args.file.as_path()));
    if !missing.is_empty() {
        println!("{}", tr!("init-fill-in", missing = missing));
    }
    println!("{}", tr!("init-next", file = args.file.as_path()));
    Ok(Exit::Success)
}

/// The keys left for later, comma-separated ("" when none).
fn missing_keys(keys: &[(&str, bool)]) -> String {
    keys.iter()
        .filter(|(_, missing)| *missing)
        .map(|(key, _)| *key)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Asks `setting`'s question on stderr and reads one line: at a terminal a wrong
/// answer is asked again; piped answers are not (a mistake there is an error).
fn ask(
    setting: &Setting,
    input: &mut impl BufRead,
    interactive: bool,
) -> Result<Option<String>, InitError> {
    let mut question = setting.question.as_str();
    loop {
        eprint!("{question}\n> ");
        // Asked again, only its last line: the explanation was just read.
        question = setting.question.lines().last().unwrap_or(question);
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let read = input.read_line(&mut line).unwrap_or(0);
        if !interactive {
            eprintln!();
        }
        if read == 0 || line.trim().is_empty() {
            return Ok(None);
        }
        match (setting.check)(&line) {
            Ok(value) => return Ok(Some(value)),
            Err(reason) if interactive => eprintln!("{reason}"),
            Err(reason) => {
                return Err(InitError::Answer {
                    key: setting.key,
                    flag: setting.flag,
                    reason,
                });
            }
        }
    }
}

/// `text` as TOML comment lines.
fn comment(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "#\n".to_owned()
            } else {
                format!("# {l}\n")
            }
        })
        .collect()
}

/// `key = "value"`, or the key commented out with a note when there is no value.
fn key_line(key: &str, value: Option<&str>, example: &str) -> String {
    match value {
        Some(v) => format!("{key} = {v:?}\n"),
        None => format!(
            "{}# {key} = {example:?}\n",
            comment(&tr!("init-file-unset"))
        ),
    }
}

/// The whole file, in the current language.
fn file_text(
    file: &Path,
    server: Option<&str>,
    connector: Option<&str>,
    country: Option<&str>,
) -> String {
    let lang = match i18n::current() {
        Lang::Es => "es",
        Lang::En => "en",
    };
    let name = file.file_name().map(Path::new).unwrap_or(file);
    format!(
        "{header}\n[api]\n{server_doc}{server}\n{connector_doc}{connector}\n[phone]\n{country_doc}{country}\n[campaign]\n{tz_doc}# timezone = \"America/Bogota\"\n\n[ui]\n{lang_doc}lang = \"{lang}\"\n",
        header = comment(&tr!("init-file-header", file = name)),
        server_doc = comment(&tr!("init-file-server")),
        server = key_line("server", server, "0042"),
        connector_doc = comment(&tr!("init-file-connector")),
        connector = key_line("connector_id", connector, "1"),
        country_doc = comment(&tr!("init-file-country")),
        country = key_line("default_country", country, "CO"),
        tz_doc = comment(&tr!("init-file-timezone")),
        lang_doc = comment(&tr!("init-file-lang")),
    )
}

/// Creates `path` (never replacing a file, even one created meanwhile) with `text`.
fn write_new(path: &Path, text: &str) -> Result<(), InitError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => InitError::Exists(path.to_owned()),
            _ => InitError::Write {
                path: path.to_owned(),
                source,
            },
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| {
            let _ = std::fs::remove_file(path);
            InitError::Write {
                path: path.to_owned(),
                source,
            }
        })
}
