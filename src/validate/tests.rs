/*!
Unit tests of the validator: header matching, verdicts, templates, content keys,
duplicates and opt-out lists, judging in batches.
*/

use super::settle::BATCH;
use super::template::TemplateError;
use super::*;
use sha2::{Digest, Sha256};

fn settings(connector: Option<&str>) -> ListSettings {
    ListSettings {
        input: PathBuf::from("list.csv"),
        max_rows: 100,
        connector_id: connector.map(str::to_owned),
        ..ListSettings::default()
    }
}

fn header(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn record(row: u64, fields: &[&str]) -> Record {
    Record {
        errors: Vec::new(),
        dates: Vec::new(),
        row,
        line: row + 1,
        shown: row + 1,
        fields: fields.iter().map(|s| s.to_string()).collect(),
        too_long: false,
    }
}

#[test]
fn huge_cells_are_cut_in_messages_and_results() {
    let huge = "9".repeat(1_000_000);
    let mut v = Validator::new(&header(&["telephone", "message"]), &settings(Some("1"))).unwrap();
    let Verdict::Invalid {
        telephone,
        problems,
        ..
    } = v.check(&record(1, &[&huge, "Hola"]))
    else {
        panic!("a million digits is no telephone")
    };
    assert_eq!(telephone, format!("{}…", "9".repeat(SHOWN_CHARS)));
    assert!(
        problems.iter().all(|p| p.reason.len() < 200),
        "{problems:?}"
    );
    let names: Vec<String> = (0..10_000).map(|i| format!("c{i}")).collect();
    let err = Validator::new(&names, &settings(Some("1")))
        .unwrap_err()
        .to_string();
    assert!(
        err.len() < 1000 && err.contains("10000 columns in all"),
        "{err}"
    );
}

/// Judging on a second thread gives the verdicts one at a time would, in order:
/// duplicates across batches, invalid rows, and an error that stops the rows.
#[test]
fn judging_rows_in_batches_gives_the_verdicts_of_one_at_a_time() {
    let rows: Vec<Record> = (1..=3 * BATCH as u64 + 7)
        .map(|row| {
            // Every 7th row repeats an earlier one (often in an earlier batch);
            // every 11th has a bad number.
            let n = if row % 7 == 0 { row / 7 } else { row };
            let phone = if row % 11 == 0 {
                "123".to_owned()
            } else {
                format!("57300{n:07}")
            };
            record(row, &[&phone, &format!("hola {n}")])
        })
        .collect();
    let new = || Validator::new(&header(&["telephone", "message"]), &settings(Some("1")));
    // The verdicts one at a time, after checking the batched ones equal them.
    let batched_equals_one_at_a_time = || {
        let mut one = new().unwrap();
        let want: Vec<Verdict> = rows.iter().map(|r| one.check(r)).collect();
        let mut batched = new().unwrap();
        let mut got = Vec::new();
        let ok: Result<(), String> =
            batched.check_all(rows.iter().cloned().map(Ok), |v| got.push(v));
        assert_eq!(ok, Ok(()));
        assert_eq!(got, want);
        (want, batched)
    };
    let (want, mut batched) = batched_equals_one_at_a_time();
    assert!(want.iter().any(|v| matches!(v, Verdict::Duplicate { .. })));
    assert!(want.iter().any(|v| matches!(v, Verdict::Invalid { .. })));
    // The state carries over to rows checked after.
    assert!(matches!(
        batched.check(&rows[0]),
        Verdict::Duplicate { of_row: 1, .. }
    ));

    // An error stops the rows after the verdicts of those before it.
    let stop = 2 * BATCH + 3;
    let mut stopped = new().unwrap();
    let mut got = Vec::new();
    let records = rows.iter().cloned().enumerate().map(|(i, r)| {
        if i == stop {
            Err("broken".to_owned())
        } else {
            Ok(r)
        }
    });
    let err = stopped.check_all(records, |v| got.push(v));
    assert_eq!(err, Err("broken".to_owned()));
    assert_eq!(got, want[..stop]);

    // Problems are worded in the caller's language on the judging thread too.
    crate::i18n::with_lang(Lang::Es, batched_equals_one_at_a_time);
}

#[test]
fn header_columns_are_matched_ignoring_case_accents_and_aliases() {
    let v = Validator::new(
        &header(&["Nombre", " TELEPHONE ", "Message"]),
        &settings(Some("1")),
    );
    assert!(v.is_ok());
    let v = Validator::new(
        &header(&["Nombre", "Teléfono", "MENSAJE"]),
        &settings(Some("1")),
    )
    .unwrap();
    assert_eq!(
        v.columns_summary(),
        "columns: telephone <- \"Teléfono\", message <- \"MENSAJE\", connector_id <- api.connector_id \"1\""
    );
    let err = Validator::new(&header(&["fono", "message"]), &settings(Some("1"))).unwrap_err();
    assert!(err.to_string().contains("columns.telephone"), "{err}");
    let err = Validator::new(&header(&["telephone", "message"]), &settings(None)).unwrap_err();
    assert!(err.to_string().contains("api.connector_id"), "{err}");
    let err = Validator::new(
        &header(&["Teléfono", "Celular", "message"]),
        &settings(Some("1")),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("\"Teléfono\"")
            && text.contains("\"Celular\"")
            && text.contains("columns.telephone"),
        "{text}"
    );
}

#[test]
fn an_explicit_column_name_turns_aliases_off() {
    let mut s = settings(Some("1"));
    s.columns.telephone = "Celular".into();
    let h = header(&["Teléfono", "celular", "Mensaje"]);
    let v = Validator::new(&h, &s).unwrap();
    assert!(
        v.columns_summary()
            .starts_with("columns: telephone <- \"celular\"")
    );
    s.columns.telephone = "whatsapp".into();
    assert!(matches!(
        Validator::new(&h, &s),
        Err(HeaderError::Missing { .. })
    ));
}

#[test]
fn national_numbers_need_the_default_country() {
    let h = header(&["Celular", "Mensaje"]);
    let mut v = Validator::new(&h, &settings(Some("1"))).unwrap();
    let Verdict::Invalid { problems, .. } = v.check(&record(1, &["300 123 4567", "Hola"])) else {
        panic!("a national number without default_country")
    };
    assert_eq!(problems[0].column, "Celular");
    assert!(
        problems[0].reason.contains("phone.default_country"),
        "{problems:?}"
    );

    let mut s = settings(Some("1"));
    s.default_country = crate::validate::phone::parse_country("CO");
    let mut v = Validator::new(&h, &s).unwrap();
    let Verdict::Valid(job) = v.check(&record(1, &["300 123 4567", "Hola"])) else {
        panic!("valid with CO")
    };
    assert_eq!(job.telephone, "573001234567");
}

/// Settings with connector "1" and the message template `text` from `--template file`.
fn with_template(text: &str, file: &str) -> ListSettings {
    ListSettings {
        template: Some(crate::validate::template::TemplateSource {
            text: text.into(),
            origin: format!("--template {file}"),
        }),
        ..settings(Some("1"))
    }
}

#[test]
fn templates_make_the_message_and_the_message_column_optional() {
    let s = with_template("Hola {{ nombre }}, su cita es el {{ fecha }}.", "cita.j2");
    let h = header(&["Nombre", "Celular", "Fecha"]);
    let mut v = Validator::new(&h, &s).unwrap();
    assert_eq!(
        v.columns_summary(),
        "columns: telephone <- \"Celular\", message <- template (--template cita.j2) using \"Fecha\", \"Nombre\", connector_id <- api.connector_id \"1\""
    );
    let Verdict::Valid(job) = v.check(&record(1, &["Señora Núñez", "+57 300 123 4567", "martes"]))
    else {
        panic!("valid")
    };
    assert_eq!(
        job.message,
        Message::Free {
            text: "Hola Señora Núñez, su cita es el martes.".into()
        }
    );
    let Verdict::Invalid { problems, .. } = v.check(&record(2, &["Ana", "+57 300 123 4568", ""]))
    else {
        panic!("empty used column")
    };
    assert_eq!(problems[0].column, "Fecha");
    let long = "x".repeat(MAX_MESSAGE_CHARS);
    let Verdict::Invalid { problems, .. } =
        v.check(&record(3, &[&long, "+57 300 123 4569", "lunes"]))
    else {
        panic!("too long once rendered")
    };
    assert_eq!(problems[0].column, "message (template)");
    assert!(problems[0].reason.contains("4096"), "{problems:?}");

    let err = Validator::new(&header(&["Nombre", "Celular"]), &s).unwrap_err();
    assert!(matches!(
        err,
        HeaderError::Template(TemplateError::MissingColumn { .. })
    ));
}

#[test]
fn a_message_template_and_an_hsm_template_are_not_combined() {
    let mut s = with_template("Hola {{ nombre }}", "t.j2");
    s.hsm.template_name = Some("cita".into());
    let err = Validator::new(&header(&["nombre", "telephone"]), &s).unwrap_err();
    assert!(matches!(err, HeaderError::TemplateAndHsm { .. }), "{err}");
}

#[test]
fn allowed_duplicates_get_keys_of_their_own() {
    let h = header(&["telephone", "message"]);
    let mut s = settings(Some("1"));
    s.allow_duplicates = true;
    let mut v = Validator::new(&h, &s).unwrap();
    let keys: Vec<String> = (1..=3)
        .map(
            |row| match v.check(&record(row, &["+57 300 123 4567", "Hola"])) {
                Verdict::Valid(job) => job.key,
                other => panic!("{other:?}"),
            },
        )
        .collect();
    let plain = content_key(
        "573001234567",
        &Message::Free {
            text: "Hola".into(),
        },
    );
    assert_eq!(
        keys,
        [plain.clone(), format!("{plain}#1"), format!("{plain}#2")]
    );
}

#[test]
fn rows_get_verdicts() {
    let mut v = Validator::new(
        &header(&["telephone", "message", "connector_id"]),
        &settings(None),
    )
    .unwrap();
    let Verdict::Valid(job) = v.check(&record(1, &["+57 300 123 4567", "Hola ñandú 👋", "7"]))
    else {
        panic!("valid row")
    };
    assert_eq!(job.telephone, "573001234567");
    assert_eq!(job.connector_id, "7");
    assert_eq!(
        job.message,
        Message::Free {
            text: "Hola ñandú 👋".into()
        }
    );

    let Verdict::Invalid { problems, .. } = v.check(&record(2, &["5.73E+11", " ", ""])) else {
        panic!("invalid row")
    };
    let columns: Vec<&str> = problems.iter().map(|p| p.column.as_str()).collect();
    assert_eq!(columns, ["telephone", "message", "connector_id"]);

    let long = "a".repeat(MAX_MESSAGE_CHARS + 1);
    assert!(matches!(
        v.check(&record(3, &["573001234567", &long, "1"])),
        Verdict::Invalid { .. }
    ));
    let ragged = v.check(&record(4, &["573001234567", "Hola", "1", "extra"]));
    assert!(matches!(ragged, Verdict::Invalid { .. }));

    assert_eq!(
        v.check(&record(5, &["57 300 123 4567", "Hola ñandú 👋", "9"])),
        Verdict::Duplicate {
            row: 5,
            shown: 6,
            telephone: "573001234567".into(),
            of_row: 1,
            of_shown: 2,
        }
    );
}

#[test]
fn numbers_on_an_opt_out_list_are_suppressed_however_written() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("optout.txt");
    std::fs::write(&list, "+57 300 123 4567\n").unwrap();
    let suppression = Suppression::load(std::slice::from_ref(&list), "telephone", None).unwrap();
    let mut v = Validator::new(&header(&["telephone", "message"]), &settings(Some("1")))
        .unwrap()
        .with_suppression(Arc::new(suppression));
    let Verdict::Suppressed {
        row,
        telephone,
        list: named,
        ..
    } = v.check(&record(1, &["573001234567", "Hola"]))
    else {
        panic!("suppressed")
    };
    assert_eq!((row, telephone.as_str(), named), (1, "573001234567", list));
    // A copy of a suppressed row is suppressed too, not a duplicate of it.
    assert!(matches!(
        v.check(&record(2, &["(57) 300-123-4567", "Hola"])),
        Verdict::Suppressed { row: 2, .. }
    ));
    // An invalid row stays invalid; other numbers are untouched.
    assert!(matches!(
        v.check(&record(3, &["573001234567", " "])),
        Verdict::Invalid { .. }
    ));
    assert!(matches!(
        v.check(&record(4, &["573014567890", "Hola"])),
        Verdict::Valid(_)
    ));
}

#[test]
fn connector_falls_back_to_the_config() {
    let mut v = Validator::new(&header(&["telephone", "message"]), &settings(Some("3"))).unwrap();
    let Verdict::Valid(job) = v.check(&record(1, &["573001234567", "x"])) else {
        panic!()
    };
    assert_eq!(job.connector_id, "3");
}

fn hsm_settings(name: Option<&str>, vars: Option<&[&str]>) -> ListSettings {
    let mut s = settings(Some("1"));
    s.hsm.template_name = name.map(str::to_owned);
    s.hsm.vars = vars.map(|v| v.iter().map(|c| c.to_string()).collect());
    s
}

fn template(name: &str, vars: &str, customer_id: &str, url_attach: &str) -> Message {
    Message::Template {
        name: name.into(),
        vars: vars.into(),
        customer_id: customer_id.into(),
        url_attach: url_attach.into(),
    }
}

fn problems(verdict: Verdict) -> Vec<Problem> {
    match verdict {
        Verdict::Invalid { problems, .. } => problems,
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn template_rows_join_the_named_columns_and_need_no_message_column() {
    let mut v = Validator::new(
        &header(&[
            "Nombre",
            "telephone",
            "fecha",
            "hora",
            "Customer_ID",
            "url_attach",
        ]),
        &hsm_settings(
            Some("cita_recordatorio"),
            Some(&["nombre", "fecha", "hora"]),
        ),
    )
    .unwrap();
    assert!(v.is_template());
    let Verdict::Valid(job) = v.check(&record(
        1,
        &[" Ana ", "573001234567", "martes", "10:00", "C-1", ""],
    )) else {
        panic!("valid row")
    };
    assert_eq!(
        job.message,
        template("cita_recordatorio", "Ana;martes;10:00", "C-1", "")
    );
    assert_eq!(job.key, content_key("573001234567", &job.message));
    let Verdict::Valid(job) = v.check(&record(
        2,
        &[
            "Raúl",
            "593987654321",
            "jueves",
            "8:30",
            "",
            "https://cdn.example.com/a.jpg",
        ],
    )) else {
        panic!("valid row")
    };
    assert_eq!(
        job.message,
        template(
            "cita_recordatorio",
            "Raúl;jueves;8:30",
            "",
            "https://cdn.example.com/a.jpg"
        )
    );
    assert!(matches!(
        v.check(&record(
            3,
            &["Ana", "+57 300 123 4567", "martes", "10:00", "C-2", ""]
        )),
        Verdict::Duplicate { of_row: 1, .. }
    ));
}

#[test]
fn a_semicolon_or_an_empty_value_makes_a_template_row_invalid() {
    let mut v = Validator::new(
        &header(&["nombre", "telephone", "fecha", "hora", "url_attach"]),
        &hsm_settings(Some("cita"), Some(&["nombre", "fecha", "hora"])),
    )
    .unwrap();
    let p = problems(v.check(&record(1, &["Ana; Luis", "573001234567", "", "10:00", ""])));
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(p[0].column, "nombre");
    assert!(p[0].reason.contains("`;`"), "{}", p[0].reason);
    assert!(
        p[0].reason.contains("shift every variable after it"),
        "{}",
        p[0].reason
    );
    assert!(
        p[0].reason.starts_with("template variable 1 of 3: "),
        "{}",
        p[0].reason
    );
    assert_eq!(p[1].column, "fecha");
    assert!(p[1].reason.contains("is empty"), "{}", p[1].reason);

    let p = problems(v.check(&record(
        2,
        &["Ana", "573001234567", "mar\ntes", "10:00", ""],
    )));
    assert!(p[0].reason.contains("line break"), "{p:?}");

    for bad in [
        "http://cdn.example.com/a.jpg",
        "cdn.example.com/a.jpg",
        "https://",
    ] {
        let p = problems(v.check(&record(3, &["Ana", "573001234567", "lunes", "9:00", bad])));
        assert_eq!(p[0].column, "url_attach", "{bad}");
    }
}

#[test]
fn template_names_come_from_the_column_or_the_flag() {
    let mut v = Validator::new(
        &header(&["telephone", "template_name", "template_vars"]),
        &hsm_settings(Some("bienvenida"), None),
    )
    .unwrap();
    let Verdict::Valid(job) = v.check(&record(1, &["573001234567", "promo_mayo", "Ana;20 %"]))
    else {
        panic!()
    };
    assert_eq!(job.message, template("promo_mayo", "Ana;20 %", "", ""));
    let Verdict::Valid(job) = v.check(&record(2, &["573001234567", " ", ""])) else {
        panic!()
    };
    assert_eq!(job.message, template("bienvenida", "", "", ""));
    let p = problems(v.check(&record(3, &["573001234568", "x", "Ana;;10:00"])));
    assert_eq!(p[0].column, "template_vars");
    assert!(p[0].reason.contains("variable 2: is empty"), "{p:?}");

    // The column alone makes a template list when there is no message column.
    let mut v = Validator::new(
        &header(&["telephone", "template_name"]),
        &hsm_settings(None, None),
    )
    .unwrap();
    assert!(v.is_template());
    let p = problems(v.check(&record(1, &["573001234567", ""])));
    assert_eq!(p[0].column, "template_name");
    assert!(p[0].reason.contains("--hsm"), "{p:?}");
}

#[test]
fn a_list_with_message_and_template_name_columns_is_free_unless_told() {
    let h = header(&["telephone", "message", "template_name", "nombre"]);
    let v = Validator::new(&h, &hsm_settings(None, None)).unwrap();
    assert!(!v.is_template());
    let v = Validator::new(&h, &hsm_settings(None, Some(&["nombre"]))).unwrap();
    assert!(v.is_template());
    let err = Validator::new(
        &header(&["telephone", "message", "nombre"]),
        &hsm_settings(None, Some(&["nombre"])),
    )
    .unwrap_err();
    assert!(matches!(err, HeaderError::NoTemplateName { .. }), "{err}");
    assert!(err.to_string().contains("--hsm TEMPLATE_NAME"), "{err}");
    let err =
        Validator::new(&header(&["telephone", "nombre"]), &hsm_settings(None, None)).unwrap_err();
    assert!(err.to_string().contains("no `message` column"), "{err}");
    assert!(err.to_string().contains("--hsm TEMPLATE_NAME"), "{err}");
}

#[test]
fn a_missing_variable_column_names_it_and_lists_the_header() {
    let err = Validator::new(
        &header(&["nombre", "telephone", "fecha"]),
        &hsm_settings(Some("cita"), Some(&["nombre", "fecha", "hora"])),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("no `hora` column for template variable 3 of hsm.vars"),
        "{text}"
    );
    assert!(text.contains("nombre, telephone, fecha"), "{text}");
}

#[test]
fn template_keys_cover_kind_name_and_vars_only() {
    let phone = "573001234567";
    let a = content_key(phone, &template("cita", "Ana;martes", "", ""));
    assert_eq!(
        a,
        content_key(
            phone,
            &template("cita", "Ana;martes", "C-1", "https://x.co/a")
        )
    );
    assert_ne!(
        a,
        content_key(phone, &template("cita", "Ana;jueves", "", ""))
    );
    assert_ne!(
        a,
        content_key(phone, &template("cita2", "Ana;martes", "", ""))
    );
    assert_ne!(
        content_key(phone, &template("ab", "c", "", "")),
        content_key(phone, &template("a", "bc", "", ""))
    );
    assert_ne!(
        content_key(phone, &template("cita", "", "", "")),
        content_key(
            phone,
            &Message::Free {
                text: "cita".into()
            }
        )
    );
    assert_ne!(
        a,
        content_key("573001234568", &template("cita", "Ana;martes", "", ""))
    );
    // The kind tag keeps apart a free text that spells out a template's hashed bytes.
    let mut spelled = 4u64.to_le_bytes().to_vec();
    spelled.extend_from_slice(b"citaAna;martes");
    let spelled = String::from_utf8(spelled).unwrap();
    assert_ne!(a, content_key(phone, &Message::Free { text: spelled }));
}

#[test]
fn content_keys_depend_on_telephone_and_text_only() {
    let a = content_key(
        "573001234567",
        &Message::Free {
            text: "hola".into(),
        },
    );
    assert_eq!(
        a,
        content_key(
            "573001234567",
            &Message::Free {
                text: "hola".into()
            }
        )
    );
    assert_ne!(
        a,
        content_key(
            "573001234568",
            &Message::Free {
                text: "hola".into()
            }
        )
    );
    assert_ne!(
        a,
        content_key(
            "573001234567",
            &Message::Free {
                text: "hola!".into()
            }
        )
    );
    assert_eq!(a.len(), 32);
}

#[test]
fn content_keys_keep_their_format_across_versions() {
    // Journals of earlier runs are matched by this key: it must never change.
    let mut hash = Sha256::new();
    hash.update(b"573001234567\0free\0hola");
    let old: String = hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let text = "hola".to_owned();
    assert_eq!(content_key("573001234567", &Message::Free { text }), old);
}

#[test]
fn duplicates_are_found_across_many_rows_and_name_the_first() {
    let mut v = Validator::new(&header(&["telephone", "message"]), &settings(Some("1"))).unwrap();
    for i in 0..5_000u64 {
        let tel = format!("57300{:07}", i);
        assert!(matches!(
            v.check(&record(i + 1, &[&tel, "hola"])),
            Verdict::Valid(_)
        ));
    }
    assert_eq!(
        v.check(&record(5_001, &["573000001234", "hola"])),
        Verdict::Duplicate {
            row: 5_001,
            shown: 5_002,
            telephone: "573000001234".into(),
            of_row: 1_235,
            of_shown: 1_236,
        }
    );
    // Same number, other text: not a duplicate.
    assert!(matches!(
        v.check(&record(5_002, &["573000001234", "chao"])),
        Verdict::Valid(_)
    ));
}

/// A job for tests, used by other modules' tests too (`plan`, `journal`, `send`); it
/// lives here, in test code, not among the validator's own items.
impl Job {
    /// A free message "hola" to a realistic number ending in `row`, with content key `key`.
    pub(crate) fn for_test(row: u64, key: &str) -> Job {
        Job {
            row,
            shown: row + 1,
            telephone: format!("57300123456{row}"),
            connector_id: "1".into(),
            message: Message::Free {
                text: "hola".into(),
            },
            key: key.into(),
            legacy_key: None,
        }
    }
}
