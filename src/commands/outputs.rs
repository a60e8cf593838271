/*!
No output of a command may be one of its inputs or state files, or another of its
outputs: `report R --xlsx list.csv` would replace the list, `--xlsx R.journal` the
journal a resume needs. Each command names its files with their roles and calls
`check` before it writes anything; a clash is refused naming both files.

Two paths are the same file when they canonicalize to the same path (a file that
does not exist yet: its folder, canonicalized, and its name), or when both exist
and are one file on disk (same device and inode: a hard link).

A file a person names as an output (`--summary-json`, `--xlsx`, `--rows-to-fix`) is
also refused when it already is a state file of any campaign, whichever run it
belongs to: a journal (`*.journal`), a send ledger (an SQLite database) or a config
file (`*.toml`). Replacing one would lose a campaign's memory or its settings.
*/

use std::path::{Path, PathBuf};

/// What a file is to the command, as a catalogue id (`file-role-*`).
pub(crate) type Role = &'static str;

/// An output that would overwrite another file of the run.
#[derive(Debug, thiserror::Error)]
#[error("{}", crate::tr!(
    "output-clash",
    output = .output,
    output_role = crate::i18n::message(.output_role, &[]),
    other = .other,
    other_role = crate::i18n::message(.other_role, &[])
))]
pub struct OutputError {
    output: PathBuf,
    output_role: Role,
    other: PathBuf,
    other_role: Role,
}

/// Refuses any of `outputs` that is the same file as one of `inputs` or another
/// output (see the module doc).
pub(crate) fn check(
    outputs: &[(&Path, Role)],
    inputs: &[(&Path, Role)],
) -> Result<(), OutputError> {
    let ids: Vec<Option<Identity>> = outputs.iter().map(|(p, _)| identity(p)).collect();
    for (output, output_role) in outputs {
        if NAMED_BY_PEOPLE.contains(output_role)
            && let Some(other_role) = state_file(output)
        {
            return Err(OutputError {
                output: output.to_path_buf(),
                output_role,
                other: output.to_path_buf(),
                other_role,
            });
        }
    }
    for (i, ((output, output_role), id)) in outputs.iter().zip(&ids).enumerate() {
        let Some(id) = id else { continue };
        let others = inputs.iter().map(|(p, r)| (*p, *r, identity(p))).chain(
            outputs[..i]
                .iter()
                .zip(&ids[..i])
                .map(|((p, r), id)| (*p, *r, id.clone())),
        );
        for (other, other_role, other_id) in others {
            if other_id.is_some_and(|o| o.same(id)) {
                return Err(OutputError {
                    output: output.to_path_buf(),
                    output_role,
                    other: other.to_path_buf(),
                    other_role,
                });
            }
        }
    }
    Ok(())
}

/// The outputs a person names on the command line (the others are derived from the
/// results file's name).
const NAMED_BY_PEOPLE: [Role; 3] = [
    "file-role-summary-json",
    "file-role-xlsx",
    "file-role-rows-to-fix",
];

/// What an existing file is, when it is a state file of some campaign (see the module
/// doc); `None` for a file that does not exist or is none of them.
fn state_file(path: &Path) -> Option<Role> {
    use std::io::Read;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let name = path.file_name()?.to_string_lossy().to_lowercase();
    if name.ends_with(".journal") {
        return Some("file-role-journal");
    }
    if name.ends_with(".toml") {
        return Some("file-role-config");
    }
    let mut head = [0u8; 16];
    let read = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    (read == head.len() && &head == b"SQLite format 3\0").then_some("file-role-ledger")
}

/// What tells two paths apart.
#[derive(Debug, Clone)]
struct Identity {
    path: PathBuf,
    /// (device, inode), for a file that exists (Unix).
    file: Option<(u64, u64)>,
}

impl Identity {
    fn same(&self, other: &Identity) -> bool {
        self.path == other.path || (self.file.is_some() && self.file == other.file)
    }
}

fn identity(path: &Path) -> Option<Identity> {
    let canonical = std::fs::canonicalize(path).ok().or_else(|| {
        let name = path.file_name()?;
        let dir = crate::atomic::directory_of(path)?;
        Some(std::fs::canonicalize(dir).ok()?.join(name))
    })?;
    Some(Identity {
        file: file_id(&canonical),
        path: canonical,
    })
}

#[cfg(unix)]
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &Path) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_file_by_any_path_is_refused_and_other_files_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("list.csv");
        std::fs::write(&list, "telephone\n").unwrap();
        let linked = dir.path().join("linked.csv");
        std::fs::hard_link(&list, &linked).unwrap();
        let dotted = dir.path().join(".").join("list.csv");
        for output in [&list, &linked, &dotted] {
            let err = check(&[(output, "file-role-xlsx")], &[(&list, "file-role-list")])
                .unwrap_err()
                .to_string();
            assert!(err.contains("list.csv"), "{err}");
        }
        // State files of any campaign, by what they are.
        for (name, bytes) in [
            ("other.results.csv.journal", &b"x"[..]),
            ("w.toml", &b"[api]\n"[..]),
            ("ledger.db", &b"SQLite format 3\0 and pages"[..]),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            assert!(check(&[(&path, "file-role-xlsx")], &[]).is_err(), "{name}");
            assert!(
                check(&[(&path, "file-role-journal")], &[]).is_ok(),
                "{name}"
            );
        }
        let new = dir.path().join("new.xlsx");
        assert!(check(&[(&new, "file-role-xlsx")], &[(&list, "file-role-list")]).is_ok());
        // Two outputs to one new file.
        assert!(
            check(
                &[(&new, "file-role-xlsx"), (&new, "file-role-rows-to-fix")],
                &[]
            )
            .is_err()
        );
    }
}
