//! "The same message" has one meaning (issue 26): texts that differ only in
//! whitespace, line endings or Unicode composition are one message to a person, for
//! the duplicate check inside a list and for `--resume` after the list was re-saved.

use crate::common;

use common::*;

const TOKEN: &str = "tok-same-1";

#[test]
fn texts_differing_only_in_invisible_ways_are_duplicates_in_one_list() {
    let dir = temp_dir();
    let tel = "573001234567";
    let rows = [
        (tel, "Hola Ana"),
        (tel, "Hola Ana "),
        (tel, " Hola Ana"),
        (tel, "Hola  Ana"),
        (tel, "Hola Ana\r\n"),
        (tel, "Hola Ana, ¿cómo está?"),
        (tel, "Hola Ana, ¿co\u{301}mo está?"),
        // Invisible marks pasted from web pages and chats: a zero-width space, a
        // direction mark, a byte-order mark.
        (tel, "Hola Ana\u{200b}"),
        (tel, "\u{200e}Hola Ana"),
        (tel, "\u{feff}Hola Ana"),
    ];
    let input = write_csv(dir.path(), "list.csv", &contacts_csv(&rows, "1"));
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&input, &fake, TOKEN));
    let results = read_results(&default_results_path(&input));
    let statuses = statuses_by_row(&results);
    assert_eq!(statuses[&1], "sent");
    for r in 2..=5 {
        assert_eq!(statuses[&r], "duplicate", "row {r}: {results:?}");
    }
    assert_eq!(statuses[&6], "sent");
    assert_eq!(statuses[&7], "duplicate", "NFD form of row 6: {results:?}");
    for r in 8..=10 {
        assert_eq!(
            statuses[&r], "duplicate",
            "row {r}, invisible marks: {results:?}"
        );
    }
    assert_eq!(fake.delivered().len(), 2, "one delivery per message");
    // What is sent is the text as written.
    let texts: Vec<String> = fake
        .delivered()
        .iter()
        .filter_map(|r| r.message().map(str::to_owned))
        .collect();
    assert!(texts.contains(&"Hola Ana".to_owned()), "{texts:?}");
}

#[test]
fn a_list_resaved_with_whitespace_changes_is_not_sent_again_on_resume() {
    let dir = temp_dir();
    let tels = colombian_mobiles(3);
    let first_texts = ["Hola Ana", "Recordatorio", "Línea uno\nLínea dos"];
    let rows: Vec<(&str, &str)> = tels
        .iter()
        .zip(first_texts)
        .map(|(t, m)| (t.as_str(), m))
        .collect();
    let input = write_csv(dir.path(), "list.csv", &contacts_csv(&rows, "1"));
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&input, &fake, TOKEN)).expect_code(0);
    assert_eq!(fake.delivered().len(), 3);

    // Re-saved: a trailing space, a leading space, CRLF inside a quoted cell.
    let resaved = ["Hola Ana ", " Recordatorio", "Línea uno\r\nLínea dos"];
    let rows: Vec<(&str, &str)> = tels
        .iter()
        .zip(resaved)
        .map(|(t, m)| (t.as_str(), m))
        .collect();
    write_csv(dir.path(), "list.csv", &contacts_csv(&rows, "1"));
    let again = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &again, TOKEN);
    c.arg("--resume");
    run(c).expect_code(0);
    assert_eq!(
        again.send_requests().len(),
        0,
        "nobody gets the same message twice"
    );
    let results = read_results(&default_results_path(&input));
    assert!(results.iter().all(|r| r["status"] == "sent"), "{results:?}");
}
