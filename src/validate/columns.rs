/*!
Reading the header, once, before any row: which column plays which role
(telephone, message, connector, an HSM template's name and variables), the
`HeaderError` when one is missing, ambiguous or repeated, which columns a row
uses, and the summary of all that for the log and `validate`.
*/

use std::path::{Path, PathBuf};

use super::template::{MessageTemplate, TemplateError};
use super::{
    CUSTOMER_ID_COLUMN, Columns, ListSettings, TEMPLATE_NAME_COLUMN, TEMPLATE_VARS_COLUMN,
    URL_ATTACH_COLUMN, excerpt,
};
use crate::input::header::{self, Found};
use crate::tr;

/// The columns' positions in the header.
#[derive(Debug, Clone)]
pub(super) struct Positions {
    pub(super) telephone: usize,
    pub(super) kind: Kind,
    pub(super) connector_id: Option<usize>,
    pub(super) width: usize,
}

/// Which message kind the list is sent as, with the columns that kind reads.
#[derive(Debug, Clone)]
pub(super) enum Kind {
    Free {
        message: usize,
    },
    /// Free messages rendered from `Validator::template` (`--template`, `message.template`).
    Rendered,
    Template(TemplateColumns),
}

/// The columns an HSM template's call is made from.
#[derive(Debug, Clone)]
pub(super) struct TemplateColumns {
    /// The `template_name` column, if any; its empty cells use `default_name`.
    pub(super) name: Option<usize>,
    pub(super) default_name: Option<String>,
    pub(super) vars: Vars,
    pub(super) customer_id: Option<usize>,
    pub(super) url_attach: Option<usize>,
}

/// Where a row's `template_vars` comes from.
#[derive(Debug, Clone)]
pub(super) enum Vars {
    /// `--hsm-vars`/`hsm.vars`: these columns (name as configured, position), in order.
    Named(Vec<(String, usize)>),
    /// A `template_vars` column, already joined with `;`.
    Joined(usize),
    /// A template without variables.
    None,
}

/// Why the header cannot be read as a contact list: nothing is judged then.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("{}", tr!("header-missing", path = .path, column = .column, header = .header, key = *.key))]
    Missing {
        path: PathBuf,
        column: String,
        header: String,
        key: &'static str,
    },
    #[error("{}", tr!(
        "header-ambiguous",
        path = .path,
        role = *.role,
        first = format!("{:?}", .first),
        first_index = *.first_index,
        second = format!("{:?}", .second),
        second_index = *.second_index,
        key = *.key
    ))]
    Ambiguous {
        path: PathBuf,
        role: &'static str,
        key: &'static str,
        first: String,
        first_index: usize,
        second: String,
        second_index: usize,
    },
    #[error("{}", tr!("header-no-connector", path = .path, column = .column))]
    NoConnector { path: PathBuf, column: String },
    #[error("{}", tr!(
        "header-repeated",
        path = .path,
        column = .column,
        first = *.first,
        second = *.second
    ))]
    Repeated {
        path: PathBuf,
        column: String,
        first: usize,
        second: usize,
    },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{}", tr!("header-no-message", path = .path, column = .column, header = .header))]
    NoMessage {
        path: PathBuf,
        column: String,
        header: String,
    },
    #[error("{}", tr!(
        "header-missing-var",
        path = .path,
        column = .column,
        index = *.index,
        setting = *.setting,
        header = .header
    ))]
    MissingVar {
        path: PathBuf,
        column: String,
        index: usize,
        setting: &'static str,
        header: String,
    },
    #[error("{}", tr!(
        "header-no-template-name",
        path = .path,
        setting = *.setting,
        column = TEMPLATE_NAME_COLUMN
    ))]
    NoTemplateName {
        path: PathBuf,
        setting: &'static str,
    },
    #[error("{}", tr!("header-template-and-hsm", path = .path))]
    TemplateAndHsm { path: PathBuf },
}

/// Position of `name` in `header`, ignoring case, accents and surrounding spaces.
fn find(header: &[String], name: &str, path: &Path) -> Result<Option<usize>, HeaderError> {
    match header::find(header, name, name, &[]) {
        Found::None => Ok(None),
        Found::At(i) => Ok(Some(i)),
        Found::Twice(first, second) => Err(HeaderError::Repeated {
            path: path.to_owned(),
            column: name.to_owned(),
            first: first + 1,
            second: second + 1,
        }),
    }
}

/// Position of the message column (its configured name or, by default, an alias).
fn find_message(header: &[String], settings: &ListSettings) -> Result<Option<usize>, HeaderError> {
    find_role(
        header,
        &settings.columns.message,
        "message",
        header::MESSAGE_ALIASES,
        "columns.message",
        &settings.input,
    )
}

/// Position of a role's column: its configured name, or an alias of its default name.
pub(super) fn find_role(
    header: &[String],
    name: &str,
    role: &'static str,
    aliases: &[&str],
    key: &'static str,
    path: &Path,
) -> Result<Option<usize>, HeaderError> {
    match header::find(header, name, role, aliases) {
        Found::None => Ok(None),
        Found::At(i) => Ok(Some(i)),
        Found::Twice(a, b) => Err(HeaderError::Ambiguous {
            path: path.to_owned(),
            role,
            key,
            first: header.get(a).cloned().unwrap_or_default(),
            first_index: a + 1,
            second: header.get(b).cloned().unwrap_or_default(),
            second_index: b + 1,
        }),
    }
}

/// How the list's messages are made: a template file, an HSM template, or a message column.
pub(super) fn message_kind(
    header: &[String],
    settings: &ListSettings,
    has_template: bool,
) -> Result<Kind, HeaderError> {
    if has_template {
        if settings.hsm.template_name.is_some() || settings.hsm.vars.is_some() {
            return Err(HeaderError::TemplateAndHsm {
                path: settings.input.clone(),
            });
        }
        // A message column, if any, is just another column for the template.
        return Ok(Kind::Rendered);
    }
    Ok(match template_columns(header, settings)? {
        Some(columns) => Kind::Template(columns),
        None => Kind::Free {
            message: find_message(header, settings)?.ok_or_else(|| HeaderError::NoMessage {
                path: settings.input.clone(),
                column: settings.columns.message.clone(),
                header: header_list(header),
            })?,
        },
    })
}

/// Which column is used for what, for the log and `validate`.
pub(super) fn columns_summary(
    header: &[String],
    labels: &Columns,
    kind: &Kind,
    template: Option<&MessageTemplate>,
    connector_id: Option<usize>,
    settings: &ListSettings,
) -> String {
    let mut parts = vec![format!("telephone <- {:?}", labels.telephone)];
    parts.push(match (&template, &kind) {
        (_, Kind::Template(columns)) => {
            let per_row = columns
                .name
                .and_then(|i| header.get(i))
                .map(|h| tr!("columns-per-row", column = format!("{h:?}")))
                .unwrap_or_default();
            match &columns.default_name {
                Some(name) => tr!(
                    "columns-hsm-named",
                    name = format!("{name:?}"),
                    per_row = per_row
                ),
                None => tr!("columns-hsm", per_row = per_row),
            }
        }
        (Some(t), _) => {
            let used: Vec<String> = t.columns().map(|c| format!("{c:?}")).collect();
            tr!(
                "columns-template",
                origin = t.origin(),
                used = if used.is_empty() {
                    tr!("columns-no-column")
                } else {
                    used.join(", ")
                }
            )
        }
        (None, _) => format!("message <- {:?}", labels.message),
    });
    parts.push(match (connector_id, &settings.connector_id) {
        (Some(_), Some(default)) => tr!(
            "columns-connector-default",
            column = format!("{:?}", labels.connector_id),
            default = format!("{default:?}")
        ),
        (Some(_), None) => format!("connector_id <- {:?}", labels.connector_id),
        (None, default) => format!(
            "connector_id <- api.connector_id {:?}",
            default.as_deref().unwrap_or_default()
        ),
    });
    tr!("columns-summary", parts = parts.join(", "))
}

/// The columns a row uses, with their header names, in header order.
pub(super) fn used_columns(
    header: &[String],
    telephone: usize,
    connector_id: Option<usize>,
    kind: &Kind,
    template: Option<&MessageTemplate>,
) -> Vec<(usize, String)> {
    let mut used = vec![telephone];
    used.extend(connector_id);
    match kind {
        Kind::Free { message } => used.push(*message),
        Kind::Rendered => used.extend(template.into_iter().flat_map(|t| t.positions())),
        Kind::Template(columns) => {
            used.extend(columns.name);
            used.extend(columns.customer_id);
            used.extend(columns.url_attach);
            match &columns.vars {
                Vars::Named(named) => used.extend(named.iter().map(|(_, i)| *i)),
                Vars::Joined(i) => used.push(*i),
                Vars::None => {}
            }
        }
    }
    used.sort_unstable();
    used.dedup();
    used.into_iter()
        .filter_map(|i| header.get(i).map(|name| (i, name.clone())))
        .collect()
}

/// The template columns, when the list is sent as templates: a name is configured
/// (`--hsm`, `hsm.template_name`), or the list has a `template_name` column and either
/// no message column or a configured variable list. A list with both a message and a
/// `template_name` column is sent as free messages unless told otherwise, so the two
/// steps of a campaign can use the same list.
fn template_columns(
    header: &[String],
    settings: &ListSettings,
) -> Result<Option<TemplateColumns>, HeaderError> {
    let path = settings.input.as_path();
    let hsm = &settings.hsm;
    let name = find(header, TEMPLATE_NAME_COLUMN, path)?;
    let has_message = find_message(header, settings)?.is_some();
    let template =
        hsm.template_name.is_some() || name.is_some() && (!has_message || hsm.vars.is_some());
    if !template {
        if hsm.vars.is_some() {
            return Err(HeaderError::NoTemplateName {
                path: path.to_owned(),
                setting: hsm.vars_source(),
            });
        }
        if name.is_some() {
            tracing::warn!(
                "{}",
                tr!(
                    "columns-template-name-ignored",
                    path = path.display(),
                    column = TEMPLATE_NAME_COLUMN,
                    message = settings.columns.message
                )
            );
        }
        return Ok(None);
    }
    let vars = match &hsm.vars {
        Some(names) => {
            let mut columns = Vec::with_capacity(names.len());
            for (i, column) in names.iter().enumerate() {
                let Some(at) = find(header, column, path)? else {
                    return Err(HeaderError::MissingVar {
                        path: path.to_owned(),
                        column: column.clone(),
                        index: i + 1,
                        setting: hsm.vars_source(),
                        header: header_list(header),
                    });
                };
                columns.push((column.clone(), at));
            }
            Vars::Named(columns)
        }
        None => match find(header, TEMPLATE_VARS_COLUMN, path)? {
            Some(at) => Vars::Joined(at),
            None => Vars::None,
        },
    };
    Ok(Some(TemplateColumns {
        name,
        default_name: hsm.template_name.clone(),
        vars,
        customer_id: find(header, CUSTOMER_ID_COLUMN, path)?,
        url_attach: find(header, URL_ATTACH_COLUMN, path)?,
    }))
}

/// Header names listed in a message.
const SHOWN_COLUMNS: usize = 20;

/// The header's names for a message, cut when there are many or they are long.
pub(super) fn header_list(header: &[String]) -> String {
    let mut list: Vec<String> = header
        .iter()
        .take(SHOWN_COLUMNS)
        .map(|h| excerpt(h))
        .collect();
    if header.len() > SHOWN_COLUMNS {
        list.push(tr!("columns-in-all", count = header.len()));
    }
    list.join(", ")
}
