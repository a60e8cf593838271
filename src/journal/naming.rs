/*!
File names, both ways: the results file a list gets by default (`contacts.csv`
-> `contacts.results.csv`, `.dry-run.csv`, `.hsm.results.csv` for templates),
the list a results file came from (for results of earlier versions, whose
journal does not say), and the files beside the results: its `.journal` and
the temporary file of the final rewrite.
*/

use std::path::{Path, PathBuf};

/// Extensions tried, in order, for the contact list beside a results file.
const INPUT_EXTENSIONS: [&str; 5] = ["csv", "xlsx", "xls", "ods", "txt"];

/// The results path when `--results` is not given: `<stem>.results.csv` (`.dry-run.csv`),
/// or `<stem>.hsm.results.csv` (`.hsm.dry-run.csv`) for templates, so the template step
/// and the free-message step of a campaign on the same list never share a results file.
pub(crate) fn default_results(input: &Path, dry_run: bool, template: bool) -> PathBuf {
    let suffix = match (template, dry_run) {
        (false, false) => "results.csv",
        (false, true) => "dry-run.csv",
        (true, false) => "hsm.results.csv",
        (true, true) => "hsm.dry-run.csv",
    };
    sibling(input, suffix)
}

/// `dir/contacts.csv` + "results.csv" -> `dir/contacts.results.csv`.
pub(crate) fn sibling(input: &Path, suffix: &str) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "contacts".into());
    input.with_file_name(format!("{stem}.{suffix}"))
}

/// A results name of `input`'s own when `results` (a default name) belongs to another
/// list with the same stem: the extension joins the stem, so `contacts.txt` with
/// `contacts.results.csv` gets `contacts.txt.results.csv`.
pub(crate) fn own_results(input: &Path, results: &Path) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suffix = results
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix(stem.as_str()))
        .and_then(|n| n.strip_prefix('.'))
        .unwrap_or("results.csv");
    let ext = input
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "list".into());
    sibling(input, &format!("{ext}.{suffix}"))
}

/// The contact list a results file came from, when its journal does not say:
/// `X.results.csv`, `X.hsm.results.csv`, `X.dry-run.csv` or `X.hsm.dry-run.csv` -> the
/// first of `X.csv`, `X.xlsx`... that exists beside it.
pub(crate) fn input_for(results: &Path) -> Option<PathBuf> {
    let name = results.file_name()?.to_str()?;
    let stem = [
        ".hsm.results.csv",
        ".hsm.dry-run.csv",
        ".results.csv",
        ".dry-run.csv",
    ]
    .iter()
    .find_map(|suffix| name.strip_suffix(suffix))?;
    INPUT_EXTENSIONS
        .iter()
        .map(|ext| results.with_file_name(format!("{stem}.{ext}")))
        .find(|p| p.is_file())
}

/// The journal of a results file.
pub(crate) fn journal_path(results: &Path) -> PathBuf {
    let mut name = results.as_os_str().to_owned();
    name.push(".journal");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_lists_results_get_a_name_of_their_own() {
        let own = |input: &str, results: &str| own_results(Path::new(input), Path::new(results));
        assert_eq!(
            own("d/contacts.txt", "d/contacts.results.csv"),
            Path::new("d/contacts.txt.results.csv")
        );
        assert_eq!(
            own("my.list.xlsx", "my.list.hsm.results.csv"),
            Path::new("my.list.xlsx.hsm.results.csv")
        );
        assert_eq!(own("a.csv", "other.csv"), Path::new("a.csv.results.csv"));
    }
}
