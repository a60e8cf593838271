/*!
Replacing a file whole or not at all: the new content goes to `<path>.tmp`
(any file or link already there is removed first, never written through), is
synced to disk, then renamed over `path`. A failure leaves no temporary file
behind and the old file as it was. Used for the results file's final rewrite
and the `--summary-json` file.
*/

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The directory `path` is in: `.` for a bare file name, `None` for a root.
pub(crate) fn directory_of(path: &Path) -> Option<&Path> {
    path.parent().map(|dir| {
        if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }
    })
}

/// The temporary file `replace` writes before renaming it over `path`.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Replaces `path` with what `write` writes. On failure, the path that failed (the
/// temporary file, or `path` for the rename) and why.
pub(crate) fn replace(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), (PathBuf, std::io::Error)> {
    let tmp = tmp_path(path);
    let written = write_new(&tmp, write);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err((tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        (path.to_owned(), e)
    })
}

fn write_new(
    tmp: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    match std::fs::remove_file(tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let file = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    let mut out = BufWriter::new(file);
    write(&mut out)?;
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_or_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        std::fs::write(&path, "old").unwrap();
        replace(&path, |w| w.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let failed = replace(&path, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert_eq!(failed.unwrap_err().0, tmp_path(&path));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert!(!tmp_path(&path).exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_link_at_the_temporary_path_is_removed_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, tmp_path(&path)).unwrap();
        replace(&path, |w| w.write_all(b"x")).unwrap();
        assert!(!target.exists());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "x");
    }
}
