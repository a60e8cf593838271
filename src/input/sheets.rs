/*!
Which sheet of a workbook is read: the one named by `--sheet` (hidden or not; the
exact name, else the same name in another case), else the sheet the workbook opens
on (its active tab, from `xl/workbook.xml` of an .xlsx/.xlsm) when it is a visible
worksheet, else the first visible worksheet. A hidden or very hidden sheet is never
read unless named: people hide the sheets they do not mean to send.
*/

use std::io::Read;
use std::path::Path;

use calamine::{Sheet, SheetType, SheetVisible};

/// The most of `xl/workbook.xml` read to find the active tab (its `bookViews` come
/// before the sheets' list, near the start).
const WORKBOOK_XML_LIMIT: u64 = 4 * 1024 * 1024;

/// The sheet to read without `--sheet`: its index in `sheets`, or `None` when no
/// worksheet is visible.
pub(crate) fn default_sheet(path: &Path, sheets: &[Sheet]) -> Option<usize> {
    let readable = |i: usize| {
        sheets
            .get(i)
            .is_some_and(|s| s.visible == SheetVisible::Visible && s.typ == SheetType::WorkSheet)
    };
    active_tab(path)
        .filter(|&i| readable(i))
        .or_else(|| (0..sheets.len()).find(|&i| readable(i)))
}

/// The other visible worksheets, by name, besides `chosen`.
pub(crate) fn other_visible(sheets: &[Sheet], chosen: &str) -> Vec<String> {
    sheets
        .iter()
        .filter(|s| {
            s.visible == SheetVisible::Visible && s.typ == SheetType::WorkSheet && s.name != chosen
        })
        .map(|s| s.name.clone())
        .collect()
}

/// The active tab of an .xlsx/.xlsm workbook (`<workbookView activeTab="N">`, 0 when
/// absent), or `None` when it cannot be read (another format, or a damaged file:
/// calamine says what is wrong with it).
fn active_tab(path: &Path) -> Option<usize> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    if extension != "xlsx" && extension != "xlsm" {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).ok()?;
    let entry = zip.by_name("xl/workbook.xml").ok()?;
    let mut xml = String::new();
    entry
        .take(WORKBOOK_XML_LIMIT)
        .read_to_string(&mut xml)
        .ok()?;
    Some(active_tab_in(&xml))
}

/// The `activeTab` of the first `workbookView` element in a workbook's XML (0 when absent).
fn active_tab_in(xml: &str) -> usize {
    let Some(start) = xml
        .find("<workbookView")
        .or_else(|| xml.find(":workbookView"))
    else {
        return 0;
    };
    let rest = &xml[start..];
    let element = &rest[..rest.find('>').unwrap_or(rest.len())];
    element
        .split_whitespace()
        .find_map(|attribute| attribute.strip_prefix("activeTab="))
        .map(|value| value.trim_matches(|c| c == '"' || c == '\'' || c == '/'))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_active_tab_is_read_from_the_workbook_view() {
        let xml = r#"<workbook><bookViews><workbookView xWindow="0" activeTab="2"/></bookViews>"#;
        assert_eq!(active_tab_in(xml), 2);
        assert_eq!(active_tab_in("<workbook><bookViews><workbookView/>"), 0);
        assert_eq!(active_tab_in("<workbook>"), 0);
        assert_eq!(active_tab_in(r#"<x:workbookView activeTab='1'>"#), 1);
        assert_eq!(active_tab_in(r#"<workbookView activeTab="junk">"#), 0);
    }
}
