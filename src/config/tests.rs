/*!
Unit tests of `config`: precedence of flags, keys and defaults, and the refusals
(each naming its flag, or its key and file).
*/

use std::io::Write;
use std::path::PathBuf;

use super::file::*;
use super::*;
use crate::cli::{InputArgs, SendArgs, ValidateArgs};
use crate::input::Encoding;
use crate::send::dispatch::RetryPolicy;
use crate::validate::Columns;

fn send_args(extra: &[&str]) -> SendArgs {
    use clap::Parser;
    let mut argv = vec!["wolkvox-dispatch", "send", "dir/list.csv"];
    argv.extend_from_slice(extra);
    match crate::cli::Cli::parse_from(argv).command {
        crate::cli::Command::Send(a) => a,
        _ => unreachable!(),
    }
}

fn config_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

#[test]
fn defaults_apply_without_a_file() {
    let s = send_settings(&send_args(&["--base-url", "http://127.0.0.1:9/"])).unwrap();
    assert_eq!(s.pool.rate, DEFAULT_RATE);
    assert_eq!(s.pool.max_in_flight, 2);
    assert_eq!(s.list.max_rows, 10_000);
    assert_eq!(s.timeout, Duration::from_secs(60));
    assert_eq!(s.origin.as_deref(), Some("http://127.0.0.1:9"));
    assert_eq!(s.results, PathBuf::from("dir/list.results.csv"));
    assert_eq!(s.pool.retry, RetryPolicy::default());
}

#[test]
fn flags_override_the_file_and_the_file_overrides_defaults() {
    let f = config_file(
        "[api]\nserver = \"0042\"\ntimeout = \"5s\"\n[limits]\nrequests_per_second = 3\nmax_rows = 50\n[columns]\ntelephone = \"Celular\"\n",
    );
    let path = f.path().to_str().unwrap();
    let s = send_settings(&send_args(&["--config", path, "--rate", "7"])).unwrap();
    assert_eq!(s.pool.rate, 7.0);
    assert_eq!(s.list.max_rows, 50);
    assert_eq!(s.timeout, Duration::from_secs(5));
    assert_eq!(s.list.columns.telephone, "Celular");
    assert_eq!(s.origin.as_deref(), Some("https://wv0042.wolkvox.com"));
    let s = send_settings(&send_args(&["--config", path, "--max-rows", "9"])).unwrap();
    assert_eq!(s.list.max_rows, 9);
    assert_eq!(s.pool.rate, 3.0);
}

#[test]
fn the_dispatchers_settings_are_built_here_from_flags_and_keys() {
    let f = config_file(
        "[campaign]\nhours = \"mon-fri 08:00-18:00\"\ntimezone = \"America/Bogota\"\nmax_failures = 4\n[limits]\nmax_in_flight_per_token = 1\n[retry]\nmax_attempts = 5\n",
    );
    let path = f.path().to_str().unwrap();
    let s = send_settings(&send_args(&["--config", path, "--dry-run"])).unwrap();
    assert_eq!(s.pool.max_failures, 4);
    assert_eq!(s.pool.max_in_flight, 1);
    assert_eq!(s.pool.retry.max_attempts, 5);
    assert!(s.pool.hours.as_ref().is_some_and(|h| !h.wait));
    let s = send_settings(&send_args(&[
        "--config",
        path,
        "--dry-run",
        "--max-failures",
        "0",
        "--wait-for-window",
    ]))
    .unwrap();
    assert_eq!(s.pool.max_failures, 0);
    assert!(s.pool.hours.as_ref().is_some_and(|h| h.wait));
    let s = send_settings(&send_args(&["--dry-run"])).unwrap();
    assert!(s.pool.hours.is_none() && s.window.is_none());
    assert_eq!(s.pool.max_failures, DEFAULT_MAX_FAILURES);
}

#[test]
fn more_than_two_in_flight_is_refused_naming_key_and_file() {
    let f = config_file("[limits]\nmax_in_flight_per_token = 3\n");
    let path = f.path().to_str().unwrap();
    let err = send_settings(&send_args(&["--config", path, "--dry-run"])).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("limits.max_in_flight_per_token"), "{text}");
    assert!(text.contains(path), "{text}");
}

#[test]
fn unknown_keys_are_refused() {
    let f = config_file("[limits]\nrequest_per_second = 3\n");
    let err = send_settings(&send_args(&[
        "--config",
        f.path().to_str().unwrap(),
        "--dry-run",
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("request_per_second"), "{err}");
}

#[test]
fn toml_mistakes_are_explained_in_spanish_too() {
    use crate::i18n::{Lang, with_lang};
    let load = |text: &str| {
        let f = config_file(text);
        with_lang(Lang::Es, || {
            FileConfig::load(f.path()).unwrap_err().to_string()
        })
    };
    let typo = load("[limits]\nrequest_per_second = 3\n");
    assert!(
        typo.contains("error de TOML en la línea 2, columna 1"),
        "{typo}"
    );
    assert!(
        typo.contains(
            "clave desconocida `request_per_second`; las claves posibles son: `requests_per_second`"
        ),
        "{typo}"
    );
    let quoted = load("[limits]\nmax_rows = \"tres\"\n");
    assert!(quoted.contains("tipo de valor equivocado"), "{quoted}");
    let lang = load("[ui]\nlang = \"fr\"\n");
    assert!(
        lang.contains("valor desconocido `fr`; se esperaba `en` o `es`"),
        "{lang}"
    );
    // Anything else keeps the crate's words, with the place in Spanish.
    let broken = load("[limits\n");
    assert!(broken.contains("error de TOML en la línea 1"), "{broken}");
    // English is the crate's own text.
    let f = config_file("[limits]\nrequest_per_second = 3\n");
    let english = FileConfig::load(f.path()).unwrap_err().to_string();
    assert!(
        english.contains("TOML parse error at line 2, column 1"),
        "{english}"
    );
    assert!(
        english.contains("unknown field `request_per_second`"),
        "{english}"
    );
}

#[test]
fn server_ids_cannot_change_the_host() {
    for bad in ["0042.evil.com/", "a b", "x@y", "", "00/42"] {
        let f = config_file(&format!("[api]\nserver = {bad:?}\n"));
        let err = send_settings(&send_args(&["--config", f.path().to_str().unwrap()])).unwrap_err();
        assert!(err.to_string().contains("api.server"), "{bad}: {err}");
    }
}

#[test]
fn base_urls_are_origins_only() {
    for bad in ["ftp://x", "http://h/?api=x", "not a url", "https://u:p@h"] {
        assert!(
            send_settings(&send_args(&["--base-url", bad])).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn real_runs_need_an_endpoint_dry_runs_do_not() {
    assert!(matches!(
        send_settings(&send_args(&[])),
        Err(ConfigError::NoEndpoint)
    ));
    let s = send_settings(&send_args(&["--dry-run"])).unwrap();
    assert_eq!(s.results, PathBuf::from("dir/list.dry-run.csv"));
}

#[test]
fn bad_rates_and_durations_are_refused() {
    assert!(send_settings(&send_args(&["--dry-run", "--rate", "0"])).is_err());
    assert!(send_settings(&send_args(&["--dry-run", "--rate", "NaN"])).is_err());
    let f = config_file("[api]\ntimeout = \"soon\"\n");
    let err = send_settings(&send_args(&[
        "--config",
        f.path().to_str().unwrap(),
        "--dry-run",
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("api.timeout"), "{err}");
}

/// config.example.toml with every commented `# key = value` line uncommented.
fn uncommented_example() -> String {
    include_str!("../../config.example.toml")
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                }) =>
            {
                rest
            }
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn the_example_config_is_valid_as_is_and_with_every_key_uncommented() {
    let f = config_file(include_str!("../../config.example.toml"));
    let s = send_settings(&send_args(&["--config", f.path().to_str().unwrap()])).unwrap();
    assert_eq!(s.list.default_country, None);
    assert_eq!(s.list.template, None);
    let f = config_file(&uncommented_example());
    let s = send_settings(&send_args(&["--config", f.path().to_str().unwrap()])).unwrap();
    assert_eq!(s.list.columns, Columns::default());
    assert_eq!(
        s.list.default_country,
        crate::validate::phone::parse_country("CO")
    );
    assert_eq!(s.list.read.sheet.as_deref(), Some("Contactos"));
    assert_eq!(s.list.read.delimiter, Some(b','));
    assert!(!s.list.allow_duplicates);
    assert!(s.list.template.is_some());
}

#[test]
fn the_spanish_example_config_has_the_same_keys_and_loads_as_is_and_uncommented() {
    let spanish = include_str!("../../config.example.es.toml");
    let keys = |text: &str| -> Vec<String> {
        let mut section = "";
        let mut out = Vec::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name;
            }
            let line = line.strip_prefix("# ").unwrap_or(line);
            if let Some((key, _)) = line.split_once(" = ")
                && !key.is_empty()
                && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            {
                out.push(format!("{section}.{key}"));
            }
        }
        out
    };
    assert_eq!(
        keys(spanish),
        keys(include_str!("../../config.example.toml"))
    );
    let f = config_file(spanish);
    send_settings(&send_args(&["--config", f.path().to_str().unwrap()])).unwrap();
    let uncommented: String = spanish
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                }) =>
            {
                format!("{rest}\n")
            }
            _ => format!("{l}\n"),
        })
        .collect();
    let f = config_file(&uncommented);
    let s = send_settings(&send_args(&["--config", f.path().to_str().unwrap()])).unwrap();
    assert_eq!(
        s.list.default_country,
        crate::validate::phone::parse_country("CO")
    );
}

#[test]
fn input_phone_and_message_settings_are_checked() {
    let bad = [
        ("[input]\nencoding = \"utf-16\"\n", "input.encoding"),
        ("[input]\ndelimiter = \":\"\n", "input.delimiter"),
        ("[input]\nsheet = \" \"\n", "input.sheet"),
        (
            "[phone]\ndefault_country = \"Colombia\"\n",
            "phone.default_country",
        ),
        ("[message]\ntemplate = \"  \"\n", "message.template"),
    ];
    for (text, key) in bad {
        let f = config_file(text);
        let err = send_settings(&send_args(&[
            "--config",
            f.path().to_str().unwrap(),
            "--dry-run",
        ]))
        .unwrap_err();
        assert!(err.to_string().contains(key), "{text}: {err}");
    }
    let f = config_file(
        "[input]\ndelimiter = \";\"\nencoding = \"latin1\"\nallow_duplicates = true\n[phone]\ndefault_country = \"mx\"\n",
    );
    let path = f.path().to_str().unwrap();
    let s = send_settings(&send_args(&["--config", path, "--dry-run"])).unwrap();
    assert_eq!(s.list.read.delimiter, Some(b';'));
    assert_eq!(s.list.read.encoding, Encoding::Windows1252);
    assert!(s.list.allow_duplicates);
    assert_eq!(
        s.list.default_country,
        crate::validate::phone::parse_country("MX")
    );
    // Flags win over the file.
    let s = send_settings(&send_args(&[
        "--config",
        path,
        "--dry-run",
        "--delimiter",
        "tab",
    ]))
    .unwrap();
    assert_eq!(s.list.read.delimiter, Some(b'\t'));
    assert!(send_settings(&send_args(&["--dry-run", "--delimiter", "::"])).is_err());
    let err = send_settings(&send_args(&[
        "--dry-run",
        "--template",
        "/nonexistent/t.j2",
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("--template"), "{err}");
}

#[test]
fn campaign_keys_are_read_and_checked_naming_the_key() {
    let f = config_file(
        "[campaign]\nsuppress = [\"optout.csv\", \"/abs/bajas.txt\"]\nhours = \"mon-fri 07:00-19:00\"\ntimezone = \"America/Bogota\"\nholidays = [\"2026-12-08\"]\n",
    );
    let path = f.path().to_str().unwrap();
    let s = send_settings(&send_args(&[
        "--config",
        path,
        "--dry-run",
        "--suppress",
        "x.txt",
    ]))
    .unwrap();
    let dir = f.path().parent().unwrap();
    assert_eq!(
        s.list.suppress,
        [
            PathBuf::from("x.txt"),
            dir.join("optout.csv"),
            PathBuf::from("/abs/bajas.txt")
        ]
    );
    let window = s.window.expect("a window");
    assert!(window.is_open("2026-12-07T15:00:00Z".parse().unwrap()));
    assert!(!window.is_open("2026-12-08T15:00:00Z".parse().unwrap()));

    for (text, key) in [
        (
            "[campaign]\nhours = \"mon-fri 07:00\"\ntimezone = \"UTC\"\n",
            "campaign.hours",
        ),
        (
            "[campaign]\nhours = \"mon-fri 07:00-19:00\"\n",
            "campaign.timezone",
        ),
        (
            "[campaign]\nhours = \"mon 07:00-19:00\"\ntimezone = \"Bogota\"\n",
            "campaign.timezone",
        ),
        (
            "[campaign]\ntimezone = \"Mars/Olympus\"\n",
            "campaign.timezone",
        ),
        (
            "[campaign]\nholidays = [\"8/12/2026\"]\ntimezone = \"UTC\"\n",
            "campaign.holidays",
        ),
        ("[campaign]\nhour = \"mon 07:00-19:00\"\n", "hour"),
    ] {
        let f = config_file(text);
        let p = f.path().to_str().unwrap();
        let err = send_settings(&send_args(&["--config", p, "--dry-run"])).unwrap_err();
        assert!(err.to_string().contains(key), "{text}: {err}");
        let err = validate_settings(&ValidateArgs {
            input: InputArgs {
                input: "l.csv".into(),
                config: Some(f.path().to_owned()),
                ..InputArgs::default()
            },
            ..ValidateArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains(key), "{text}: {err}");
    }
    // Holidays alone: every hour of every other day.
    let f = config_file("[campaign]\nholidays = [\"2026-12-08\"]\ntimezone = \"UTC\"\n");
    let s = send_settings(&send_args(&[
        "--config",
        f.path().to_str().unwrap(),
        "--dry-run",
    ]))
    .unwrap();
    let window = s.window.unwrap();
    assert!(window.is_open("2026-12-07T03:00:00Z".parse().unwrap()));
    assert!(!window.is_open("2026-12-08T03:00:00Z".parse().unwrap()));
}

#[test]
fn waiting_for_a_window_needs_one() {
    let err = send_settings(&send_args(&["--dry-run", "--wait-for-window"])).unwrap_err();
    assert!(err.to_string().contains("campaign.hours"), "{err}");
}

#[test]
fn hsm_flags_override_the_file_and_change_the_default_results() {
    let f =
        config_file("[hsm]\ntemplate_name = \" bienvenida \"\nvars = [\"nombre\", \" ciudad \"]\n");
    let path = f.path().to_str().unwrap();
    let s = send_settings(&send_args(&["--config", path, "--dry-run"])).unwrap();
    assert_eq!(s.list.hsm.template_name.as_deref(), Some("bienvenida"));
    assert_eq!(
        s.list.hsm.vars,
        Some(vec!["nombre".to_owned(), "ciudad".to_owned()])
    );
    assert!(!s.list.hsm.vars_from_flag);
    assert_eq!(s.results, PathBuf::from("dir/list.hsm.dry-run.csv"));

    let s = send_settings(&send_args(&[
        "--config",
        path,
        "--hsm",
        "cita_recordatorio",
        "--hsm-vars",
        "nombre,fecha,hora",
        "--base-url",
        "http://127.0.0.1:9",
    ]))
    .unwrap();
    assert_eq!(
        s.list.hsm.template_name.as_deref(),
        Some("cita_recordatorio")
    );
    assert_eq!(s.list.hsm.vars.as_ref().map(Vec::len), Some(3));
    assert!(s.list.hsm.vars_from_flag);
    assert_eq!(s.results, PathBuf::from("dir/list.hsm.results.csv"));
    assert_eq!(
        crate::journal::naming::default_results(Path::new("l.csv"), false, false),
        PathBuf::from("l.results.csv")
    );
}

#[test]
fn empty_hsm_names_are_refused_naming_the_flag_or_key() {
    let err = send_settings(&send_args(&["--dry-run", "--hsm", " "])).unwrap_err();
    assert!(err.to_string().starts_with("--hsm:"), "{err}");
    let err = send_settings(&send_args(&["--dry-run", "--hsm-vars", "nombre,,hora"])).unwrap_err();
    assert!(err.to_string().contains("variable 2"), "{err}");
    let dry_run_with = |text: &str| {
        let f = config_file(text);
        send_settings(&send_args(&[
            "--config",
            f.path().to_str().unwrap(),
            "--dry-run",
        ]))
    };
    for text in [
        "[hsm]\ntemplate_name = \"\"\n",
        "[hsm]\nvars = [\"a\", \"\"]\n",
    ] {
        let err = dry_run_with(text).unwrap_err();
        assert!(err.to_string().contains("key `hsm."), "{err}");
    }
    // vars is a TOML array, not the flag's comma-separated string.
    let err = dry_run_with("[hsm]\nvars = \"nombre,fecha\"\n").unwrap_err();
    assert!(err.to_string().contains("vars"), "{err}");
}

#[test]
fn ledger_settings_flag_key_default_and_off() {
    let dry = |extra: &[&str]| {
        let mut args = vec!["--dry-run"];
        args.extend_from_slice(extra);
        send_settings(&send_args(&args))
    };
    let f = config_file(
        "[ledger]\npath = \"state/l.sqlite3\"\nrepeat_window = \"2d\"\nmax_per_phone = \"3/12h\"\nkeep = \"90d\"\n",
    );
    let config = f.path().to_str().unwrap().to_owned();
    let s = dry(&["--config", &config]).unwrap();
    let l = s.ledger.expect("on by default");
    // Relative to the config file's folder.
    assert_eq!(
        l.path,
        f.path().parent().unwrap().join("state/l.sqlite3"),
        "{l:?}"
    );
    assert_eq!(l.repeat_window, Duration::from_secs(2 * 86_400));
    assert_eq!(
        l.cap,
        Some(crate::ledger::Cap {
            count: 3,
            per: Duration::from_secs(12 * 3600)
        })
    );
    assert_eq!(l.keep, Some(Duration::from_secs(90 * 86_400)));
    let s = dry(&["--config", &config, "--ledger", "/x/y.sqlite3"]).unwrap();
    assert_eq!(s.ledger.unwrap().path, PathBuf::from("/x/y.sqlite3"));
    assert!(
        dry(&["--config", &config, "--no-ledger"])
            .unwrap()
            .ledger
            .is_none()
    );
    let s = dry(&[]).unwrap();
    let l = s.ledger.expect("default place");
    assert!(l.path.ends_with("wolkvox-dispatch/ledger.sqlite3"), "{l:?}");
    assert_eq!(l.repeat_window, crate::ledger::DEFAULT_REPEAT_WINDOW);
    assert_eq!((l.cap, l.keep), (None, None));
    // Mistakes name the key, even with --no-ledger.
    let bad = config_file("[ledger]\nmax_per_phone = \"twice\"\n");
    let err = dry(&["--config", bad.path().to_str().unwrap(), "--no-ledger"]).unwrap_err();
    assert!(err.to_string().contains("ledger.max_per_phone"), "{err}");
    let bad = config_file("[ledger]\nrepeat_window = \"a week\"\n");
    let err = dry(&["--config", bad.path().to_str().unwrap()]).unwrap_err();
    assert!(err.to_string().contains("ledger.repeat_window"), "{err}");
}
