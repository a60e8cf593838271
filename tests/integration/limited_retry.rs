//! After `--resume --retry-unknown --limit 2` (issue 26, case 7), the stop message
//! says the rows beyond the limit keep their `unknown` status (they are not recorded
//! `not_sent`), and prints a command that continues the retry: run as printed, it
//! sends each of them once.

use crate::common;

use common::*;

#[test]
fn a_limited_retry_prints_a_command_that_continues_it() {
    let dir = temp_dir();
    let phones = colombian_mobiles(5);
    let rows: Vec<(&str, &str)> = phones.iter().map(|p| (p.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "list.csv", &contacts_csv(&rows, "1"));
    // Every request lost before reaching the fake: 5 unknown rows.
    let lost = FakeWolkvox::start(Behavior::ok().hook(|_| Some(Reply::DropConnection)));
    run(send_cmd(&input, &lost, "tok")).expect_code(1);
    let results = default_results_path(&input);
    assert!(
        statuses_by_row(&read_results(&results))
            .values()
            .all(|s| s == "unknown")
    );

    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, "tok");
    c.args(["--resume", "--retry-unknown", "--limit", "2"]);
    let out = run(c);
    out.expect_code(3);
    assert_eq!(fake.delivered_telephones().len(), 2);
    let st = statuses_by_row(&read_results(&results));
    assert_eq!(st.values().filter(|s| *s == "unknown").count(), 3, "{st:?}");
    assert!(
        !out.stdout.contains("other 3 rows are recorded not_sent"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("3 keep their earlier status"),
        "{}",
        out.stdout
    );
    let line = out
        .stdout
        .lines()
        .find_map(|l| l.split("To continue, run: ").nth(1))
        .unwrap_or_else(|| panic!("{}", out.stdout))
        .to_owned();
    assert!(
        line.contains("--resume") && line.contains("--retry-unknown") && !line.contains("--limit"),
        "{line}"
    );
    // The printed command, run as printed (its base URL is this fake's), sends the 3.
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    let mut c = cmd();
    c.args(&words).env("WOLKVOX_TOKEN", "tok");
    run(c).expect_code(0);
    let mut delivered = fake.delivered_telephones();
    delivered.sort();
    assert_eq!(delivered, phones, "each row delivered exactly once");
}
