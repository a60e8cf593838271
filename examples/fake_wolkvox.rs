//! A fake Wolkvox endpoint on 127.0.0.1, for trying `send` end to end without a real
//! token or server (the same fake the integration tests use).
//!
//! ```text
//! cargo run --example fake_wolkvox -- --latency-ms 20 --write-list /tmp/list.csv --rows 300
//! cargo run --example fake_wolkvox -- --refuse "connector not found"
//! cargo run --example fake_wolkvox -- --template "cita_recordatorio=Hola {{1}}, su cita es el {{2}}"
//! ```
//!
//! `--slow P:MS` makes P% of the sends take MS milliseconds (a gateway's timeout in front
//! of it, nginx's `proxy_read_timeout`, then answers 504 while the fake goes on).
//! `--answer-after-ms N` delivers each message at once (it shows in the `cdr_3` report)
//! but answers only N ms later: kill the sender meanwhile to get `unknown` rows that
//! `reconcile` settles. `--refuse MSG` answers every message 400 BAD REQUEST with MSG; `--template
//! NAME=BODY` (repeatable) gives connector 1 an approved template for `list_templates`.
//!
//! It prints the `--base-url` to use, serves until Ctrl-C, then prints what it received:
//! requests, messages delivered, telephones delivered more than once (there should be
//! none) and the most requests it ever saw in flight per token (never more than 2).
//!
//! Its few lines for people are in Spanish when the locale is (`LC_ALL`, `LC_MESSAGES`,
//! `LANG`, the first set: `es*`), as `wolkvox-dispatch` reads it; flags, the usage line
//! and the command to copy stay as they are. An example outside the binary: its texts
//! are here, not in the binary's catalogues.

#[path = "../tests/common/fake_wolkvox.rs"]
mod fake_wolkvox;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use fake_wolkvox::{Behavior, FakeWolkvox, Reply, meta_template};

struct Args {
    latency_ms: u64,
    list: Option<PathBuf>,
    rows: usize,
    refuse: Option<String>,
    templates: Vec<(String, String)>,
    answer_after_ms: Option<u64>,
    /// `--slow P:MS`: P% of the sends take MS milliseconds (behind a gateway's timeout).
    slow: Option<(u64, u64)>,
}

const USAGE: &str = "usage: fake_wolkvox [--latency-ms N] [--write-list FILE] [--rows N] [--refuse MSG] [--template NAME=BODY]... [--answer-after-ms N] [--slow PERCENT:MS]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        latency_ms: 20,
        list: None,
        rows: 300,
        refuse: None,
        templates: Vec::new(),
        answer_after_ms: None,
        slow: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next().ok_or(say(
                format!("{flag} needs a value"),
                format!("{flag} necesita un valor"),
            ))
        };
        match flag.as_str() {
            "--latency-ms" => {
                args.latency_ms = value()?.parse().map_err(|e| format!("--latency-ms: {e}"))?
            }
            "--write-list" => args.list = Some(PathBuf::from(value()?)),
            "--rows" => args.rows = value()?.parse().map_err(|e| format!("--rows: {e}"))?,
            "--refuse" => args.refuse = Some(value()?),
            "--answer-after-ms" => {
                args.answer_after_ms = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--answer-after-ms: {e}"))?,
                )
            }
            "--template" => {
                let v = value()?;
                let (name, body) = v.split_once('=').ok_or(say(
                    "--template: write NAME=BODY".into(),
                    "--template: escriba NOMBRE=TEXTO".into(),
                ))?;
                args.templates.push((name.to_owned(), body.to_owned()));
            }
            "--slow" => {
                let v = value()?;
                let (p, ms) = v
                    .split_once(':')
                    .and_then(|(p, ms)| Some((p.parse().ok()?, ms.parse().ok()?)))
                    .ok_or(say(
                        "--slow: write PERCENT:MS".into(),
                        "--slow: escriba PORCENTAJE:MS".into(),
                    ))?;
                args.slow = Some((p, ms));
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => {
                return Err(say(
                    format!("unknown argument {other:?}"),
                    format!("argumento desconocido {other:?}"),
                ));
            }
        }
    }
    if args.rows > 10_000 {
        return Err(say(
            "--rows: at most 10000".into(),
            "--rows: como máximo 10000".into(),
        ));
    }
    Ok(args)
}

/// The locale's language is Spanish: the first of `LC_ALL`, `LC_MESSAGES`, `LANG` that
/// is set and not empty starts with `es`.
fn spanish() -> bool {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.is_empty())
        .is_some_and(|v| v.starts_with("es"))
}

/// `en`, or `es` when the locale is Spanish.
fn say(en: String, es: String) -> String {
    if spanish() { es } else { en }
}

/// A list of `rows` contacts with realistic Colombian mobile numbers.
fn write_list(path: &PathBuf, rows: usize) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "nombre,telephone,message,connector_id")?;
    for i in 0..rows {
        writeln!(
            out,
            "Cliente {i},+57 300 123 {i:04},\"Hola, cliente {i}: su pedido está listo. ¡Gracias!\",1"
        )?;
    }
    out.flush()
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Some(path) = &args.list {
        if let Err(e) = write_list(path, args.rows) {
            eprintln!(
                "{}",
                say(
                    format!("cannot write {}: {e}", path.display()),
                    format!("no se puede escribir {}: {e}", path.display()),
                )
            );
            std::process::exit(2);
        }
        println!(
            "{}",
            say(
                format!("wrote {} contacts to {}", args.rows, path.display()),
                format!("{} contactos escritos en {}", args.rows, path.display()),
            )
        );
    }
    let mut behavior = Behavior::ok().latency(args.latency_ms);
    if !args.templates.is_empty() {
        let templates = args
            .templates
            .iter()
            .map(|(name, body)| meta_template(name, "APPROVED", body, None))
            .collect();
        behavior = behavior.templates("1", templates);
    }
    if let Some(msg) = args.refuse.clone() {
        behavior = behavior.hook(move |req| {
            req.telephone
                .is_some()
                .then(|| Reply::api_error(400, "BAD REQUEST", &msg))
        });
    }
    if let Some(ms) = args.answer_after_ms {
        behavior = behavior.hook(move |req| {
            (req.telephone.is_some() && req.attempt == 0)
                .then_some(Reply::DeliverThenHang(Duration::from_millis(ms)))
        });
    }
    if let Some((percent, ms)) = args.slow {
        // Spread evenly over the requests (the same ones on every run).
        behavior = behavior.hook(move |req| {
            (req.telephone.is_some() && (req.index as u64 * 37) % 100 < percent)
                .then_some(Reply::Hang(Duration::from_millis(ms)))
        });
    }
    let fake = FakeWolkvox::start(behavior);
    let (latency, url) = (args.latency_ms, fake.base_url());
    println!(
        "{}",
        say(
            format!(
                "fake Wolkvox listening with {latency} ms latency; send to it with:\n  WOLKVOX_TOKEN=any-token wolkvox-dispatch send LIST --base-url {url}\nPress Ctrl-C to stop and print what it received."
            ),
            format!(
                "Wolkvox falso escuchando con {latency} ms de latencia; envíele con:\n  WOLKVOX_TOKEN=cualquier-token wolkvox-dispatch send LISTA --base-url {url}\nOprima Ctrl-C para detenerlo y ver lo que recibió."
            ),
        )
    );
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!(
                "{}",
                say(
                    format!("cannot start: {e}"),
                    format!("no se puede iniciar: {e}"),
                )
            );
            std::process::exit(2);
        }
    };
    runtime.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    // Let answers in flight finish before reading the log.
    std::thread::sleep(Duration::from_millis(100));
    let requests = fake.send_requests();
    let delivered = fake.delivered_telephones();
    let mut per_phone: HashMap<&str, usize> = HashMap::new();
    for t in &delivered {
        *per_phone.entry(t.as_str()).or_default() += 1;
    }
    let twice = per_phone.values().filter(|&&n| n > 1).count();
    let max_in_flight = fake.max_in_flight().values().copied().max().unwrap_or(0);
    let (requests, messages, phones, violations) = (
        requests.len(),
        delivered.len(),
        per_phone.len(),
        fake.violations().len(),
    );
    println!(
        "\n{}",
        say(
            format!(
                "received {requests} send requests; delivered {messages} messages to {phones} telephones; telephones delivered more than once: {twice}; most requests in flight on one token: {max_in_flight}; violations: {violations}"
            ),
            format!(
                "recibió {requests} solicitudes de envío; entregó {messages} mensajes a {phones} teléfonos; teléfonos con más de una entrega: {twice}; máximo de solicitudes a la vez en un token: {max_in_flight}; violaciones: {violations}"
            ),
        )
    );
}
