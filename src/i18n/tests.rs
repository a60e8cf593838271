use std::collections::{BTreeMap, BTreeSet};

use super::recorded::{Piece, RECORDED};
use super::*;

/// Each message of a catalogue: its id and the names of its placeables (`$name`).
fn messages(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            let (id, _) = line
                .split_once('=')
                .expect("a message line is `id = value`");
            current = Some(id.trim().to_owned());
            out.entry(id.trim().to_owned()).or_default();
        }
        let id = current.clone().expect("a continuation follows a message");
        let mut rest = line;
        while let Some(at) = rest.find('$') {
            rest = &rest[at + 1..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            out.entry(id.clone()).or_default().insert(name);
        }
    }
    out
}

#[test]
fn both_catalogues_parse_without_errors() {
    for (name, text) in [("en.ftl", ENGLISH), ("es.ftl", SPANISH)] {
        if let Err((_, errors)) = FluentResource::try_new(text.to_owned()) {
            panic!("{name}: {errors:?}");
        }
    }
}

#[test]
fn every_message_is_in_both_catalogues_with_the_same_placeables() {
    let en = messages(ENGLISH);
    let es = messages(SPANISH);
    let only_en: Vec<_> = en.keys().filter(|k| !es.contains_key(*k)).collect();
    let only_es: Vec<_> = es.keys().filter(|k| !en.contains_key(*k)).collect();
    assert!(only_en.is_empty(), "missing from es.ftl: {only_en:?}");
    assert!(only_es.is_empty(), "missing from en.ftl: {only_es:?}");
    for (id, names) in &en {
        assert_eq!(
            names, &es[id],
            "placeables of {id} differ between en and es"
        );
    }
    assert!(en.len() > 50, "the parser found the messages");
}

/// Every `tr!("id"` (and `tr_en!`, `said!`) in the source names a message of the
/// catalogues.
#[test]
fn every_id_the_code_uses_exists() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src is readable") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let en = messages(ENGLISH);
    let mut used = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a source file");
        let uses = ["tr!(\"", "tr_en!(\"", "said!(\""]
            .into_iter()
            .flat_map(|call| {
                text.match_indices(call)
                    .map(|(at, m)| (at, at + m.len()))
                    .collect::<Vec<_>>()
            });
        for (at, start) in uses.collect::<Vec<_>>() {
            let id: String = text[start..].chars().take_while(|c| *c != '"').collect();
            let before = text[..at].chars().next_back();
            if id == "id" || before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // the macro's own documentation, include_str!
            }
            assert!(
                en.contains_key(&id),
                "{}: tr!(\"{id}\") is in no catalogue",
                file.display()
            );
            used += 1;
        }
    }
    assert!(used > 10);
}

#[test]
fn the_locale_picks_the_language_and_the_flag_wins() {
    assert_eq!(Lang::from_locale("es_CO.UTF-8"), Lang::Es);
    assert_eq!(Lang::from_locale("es"), Lang::Es);
    assert_eq!(Lang::from_locale("ES_es"), Lang::Es);
    assert_eq!(Lang::from_locale("en_US.UTF-8"), Lang::En);
    assert_eq!(Lang::from_locale("C"), Lang::En);
    assert_eq!(Lang::choose(Some(Lang::En), Some(Lang::Es)), Lang::En);
    assert_eq!(Lang::choose(None, Some(Lang::Es)), Lang::Es);
}

#[test]
fn spanish_messages_fill_placeables_and_plurals() {
    let text = message_in(
        Lang::Es,
        "cli-error-invalid-value",
        &[("value", "xml".to_arg()), ("arg", "--format".to_arg())],
    );
    assert_eq!(text, "el valor 'xml' no es válido para '--format'");
    // English is the fallback, not the id.
    assert_eq!(message_in(Lang::En, "cli-heading-options", &[]), "Options");
}

/// Every message the results file records (`msg-*`) is recognised and shown in
/// Spanish with its values in place; anything else (Wolkvox's own answers) as recorded.
#[test]
fn recorded_messages_are_shown_in_the_current_language() {
    let patterns = messages(ENGLISH);
    let mut checked = 0;
    for (id, names) in patterns.iter().filter(|(id, _)| id.starts_with("msg-")) {
        let args: Vec<(&str, FluentValue<'static>)> = names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.as_str(), format!("valor{i}").to_arg()))
            .collect();
        let recorded = message_in(Lang::En, id, &args);
        let expected = message_in(Lang::Es, id, &args);
        assert_eq!(with_lang(Lang::Es, || shown(&recorded)), expected, "{id}");
        assert_eq!(with_lang(Lang::En, || shown(&recorded)), recorded, "{id}");
        checked += 1;
    }
    assert!(checked > 20);
    // Nested: a refusal's reason, and a server answer with the tool's suffix.
    let why = message_in(Lang::En, "msg-templates-refused", &[]);
    let refused = message_in(Lang::En, "msg-not-sent-because", &[("why", why.to_arg())]);
    assert_eq!(
        with_lang(Lang::Es, || shown(&refused)),
        "no enviado: las plantillas HSM no coinciden con la cuenta (vea el error de la ejecución); no se envió nada"
    );
    let gave_up = message_in(
        Lang::En,
        "msg-gave-up",
        &[
            ("msg", "Window closed".to_arg()),
            ("attempts", 3u32.to_arg()),
        ],
    );
    assert_eq!(
        with_lang(Lang::Es, || shown(&gave_up)),
        "Window closed (se desistió después de 3 intentos)"
    );
    // A retried row keeps its earlier outcome, both messages nested, each with its own
    // closing parenthesis.
    let lost = message_in(Lang::En, "msg-answer-dropped", &[]);
    let retried = message_in(
        Lang::En,
        "msg-retried",
        &[("earlier", lost.to_arg()), ("msg", gave_up.to_arg())],
    );
    assert_eq!(
        retried,
        "connection lost (retried: Window closed (gave up after 3 attempts))"
    );
    assert_eq!(
        with_lang(Lang::Es, || shown(&retried)),
        "se perdió la conexión (reintentada: Window closed (se desistió después de 3 intentos))"
    );
    // A row given up on twice, the second time on retry: each `(gave up ...)` is its
    // own, none swallows the other's.
    let twice = message_in(
        Lang::En,
        "msg-retried",
        &[("earlier", gave_up.to_arg()), ("msg", gave_up.to_arg())],
    );
    assert_eq!(
        with_lang(Lang::Es, || shown(&twice)),
        "Window closed (se desistió después de 3 intentos) (reintentada: Window closed (se desistió después de 3 intentos))"
    );
    let late = message_in(Lang::En, "msg-answered-late", &[("msg", "ok".to_arg())]);
    let late_twice = message_in(
        Lang::En,
        "msg-retried",
        &[("earlier", late.to_arg()), ("msg", late.to_arg())],
    );
    assert_eq!(
        with_lang(Lang::Es, || shown(&late_twice)),
        "ok (respondido después del tiempo límite) (reintentada: ok (respondido después del tiempo límite))"
    );
    // A recorded time, inside a recorded message.
    let closed = message_in(
        Lang::En,
        "msg-window-closed",
        &[(
            "opens",
            "Wed 2026-12-02 00:00 -05 (America/Bogota)".to_arg(),
        )],
    );
    assert_eq!(
        with_lang(Lang::Es, || shown(&closed)),
        "no enviado: fuera del horario de contacto; la ventana vuelve a abrir miércoles 2026-12-02 00:00 -05 (America/Bogota)"
    );
    // Wolkvox's usual answers are shown in the reader's language too.
    assert_eq!(
        with_lang(Lang::Es, || shown("Message has been sent successfully")),
        "Wolkvox aceptó el mensaje"
    );
    assert_eq!(
        with_lang(Lang::Es, || shown(
            "HTTP 502 server error: it may have been delivered"
        )),
        "HTTP 502: error del servidor; puede haberse entregado"
    );
    for answer in [
        "Message has been sent successfully.",
        "",
        "not sent",
        "x (gave up",
        "Wed",
    ] {
        assert_eq!(with_lang(Lang::Es, || shown(answer)), answer);
    }
}

#[test]
fn decimals_take_the_languages_mark() {
    assert_eq!(with_lang(Lang::En, || decimal(2.25, 1)), "2.2");
    assert_eq!(with_lang(Lang::Es, || decimal(2.25, 1)), "2,2");
    assert_eq!(
        with_lang(Lang::Es, || 10.5f64.to_arg()),
        FluentValue::from("10,5")
    );
}

/// An invalid row's recorded reasons, as `report` and the workbook show them.
#[test]
fn an_invalid_rows_reasons_are_shown_in_the_current_language() {
    let scientific = message_in(
        Lang::En,
        "phone-scientific",
        &[("shown", "\"5.73E+11\"".to_arg())],
    );
    let hinted = message_in(
        Lang::En,
        "phone-kind-in-hint",
        &[
            ("shown", "\"601 234 5678\"".to_arg()),
            (
                "kind",
                message_in(Lang::En, "phone-kind-fixed-line", &[]).to_arg(),
            ),
            ("country", "CO".to_arg()),
        ],
    );
    let blank = message_in(Lang::En, "row-message-blank", &[]);
    let recorded = format!("telephone: {hinted}; message: {blank}");
    assert_eq!(
        with_lang(Lang::Es, || shown(&recorded)),
        "telephone: \"601 234 5678\" es un número fijo de CO: no puede recibir mensajes de WhatsApp; use un número celular; si es un número nacional (sin indicativo de país), defina phone.default_country (p. ej. \"CO\"); message: está en blanco: no hay nada que enviar"
    );
    assert!(
        with_lang(Lang::Es, || shown(&format!("Teléfono: {scientific}")))
            .contains("notación científica")
    );
    // Not every reason known: the whole text as recorded.
    let odd = format!("telephone: {scientific}; message: something else");
    assert_eq!(with_lang(Lang::Es, || shown(&odd)), odd);
    // A message's own text with a colon is not taken for reasons.
    let text = "Hola José: su pedido 4821 ya está en camino";
    assert_eq!(with_lang(Lang::Es, || shown(text)), text);
    // Every pattern has text of its own: a placeable alone would match anything.
    assert!(
        RECORDED
            .iter()
            .all(|(_, pattern)| pattern.iter().any(|p| matches!(p, Piece::Text(_))))
    );
}

/// `tr_en!` formats its values in English too (a row's `msg` holds a duration).
#[test]
fn tr_en_formats_its_values_in_english() {
    let recorded = with_lang(Lang::Es, || {
        crate::tr_en!("msg-no-answer-within", timeout = decimal(1.5, 1))
    });
    assert_eq!(recorded, "no answer within 1.5 (api.timeout)");
}

/// Reading recorded texts back never panics, whatever pieces of patterns a text is made
/// of (a server's words can hold anything), multi-byte characters included.
#[test]
fn shown_takes_any_mix_of_pattern_pieces() {
    const PIECES: [&str; 8] = [
        " (retried: ",
        ")",
        " (gave up after ",
        " attempts)",
        "é",
        "ñ)",
        "not sent: ",
        "telephone: ",
    ];
    let mut checked = 0;
    for n in 0..PIECES.len().pow(4) {
        let mut text = String::new();
        let mut rest = n;
        for _ in 0..4 {
            text.push_str(PIECES[rest % PIECES.len()]);
            rest /= PIECES.len();
        }
        let _ = with_lang(Lang::Es, || shown(&text));
        checked += 1;
    }
    assert_eq!(checked, 4096);
}

/// Held rows are recorded without a journal entry (they have no key), so their reason
/// is read back from the English: the cap's period too.
#[test]
fn a_recorded_cap_period_is_shown_in_the_current_language() {
    let recorded = "held: this number already got 2 messages within 1 day ([ledger] \
                    max_per_phone), the last on 2026-12-02 08:00 UTC (results a.csv); \
                    --allow-repeat sends it";
    let es = with_lang(Lang::Es, || shown(recorded));
    assert!(es.starts_with("retenida: "), "{es}");
    assert!(es.contains(" en 1 día "), "{es}");
    assert!(!es.contains("day"), "{es}");
    for (english, spanish) in [
        ("2 days", "2 días"),
        ("12 hours", "12 horas"),
        ("90 minutes", "90 minutos"),
        // Not a period of the catalogue: as it is.
        ("1 min 30 s", "1 min 30 s"),
        ("1 week", "1 week"),
        ("x day", "x day"),
    ] {
        assert_eq!(with_lang(Lang::Es, || shown(english)), spanish);
    }
}

/// A stopped run's row as earlier versions recorded it (no id in the journal): read back
/// whole, the reason and "last answer" in the current language, the answer as it is.
#[test]
fn a_recorded_last_answer_is_shown_in_the_current_language() {
    let es = with_lang(Lang::Es, || {
        shown("not sent: the service looked down (last answer: SERVICE UNAVAILABLE)")
    });
    assert_eq!(
        es,
        "no enviado: el servicio parecía caído (última respuesta: SERVICE UNAVAILABLE)"
    );
}
