/*!
The pre-flight check of HSM templates: before the first template is sent, each
connector's templates are asked once (`list_templates`) and every template the list
uses is checked against them: it exists, it is approved (when the answer says), it
takes as many variables as the rows give, and a media header gets a `url_attach` on
every row. A mismatch refuses the run before anything is sent; an answer that cannot
be read is a warning, since its shape is only partly documented.

The answer is Meta's description of each template (`name`, `status`, `components`
with `type`, `format` and `text`), nested in a way Wolkvox does not document: the
templates are looked up wherever they are.
*/

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::send::api::Client;
use crate::send::token::Token;
use crate::tr;
use crate::validate::{Job, Message};

/// How many row numbers a problem names.
const ROWS_SHOWN: usize = 5;
/// How many approved names a "not found" lists.
const NAMES_SHOWN: usize = 8;

/// One template as the account describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Known {
    name: String,
    /// `APPROVED`, `PENDING`, `REJECTED`…, when the answer says.
    status: Option<String>,
    /// Distinct placeholders of the text header and the body, in order of appearance.
    variables: Vec<String>,
    /// `IMAGE`, `VIDEO` or `DOCUMENT` for a media header.
    media: Option<String>,
    /// The header's and body's text, for previews.
    text: String,
}

impl Known {
    fn approved(&self) -> bool {
        self.status
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case("APPROVED"))
    }

    /// The template's text with `vars` (joined with `;`) in place of its placeholders.
    pub(crate) fn fill(&self, vars: &str) -> String {
        let values: Vec<&str> = split_vars(vars);
        let mut text = self.text.clone();
        for (i, name) in self.variables.iter().enumerate() {
            let value = values.get(i).copied().unwrap_or("");
            text = text.replace(&format!("{{{{{name}}}}}"), value);
        }
        text
    }
}

/// What one connector's `list_templates` gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Listing {
    Templates(Vec<Known>),
    /// No list could be read from the answer: why.
    Unreadable(String),
}

/// The templates the list uses, as the account describes them, keyed by connector and
/// name; those of connectors whose answer could not be read are absent.
pub(crate) type Checked = HashMap<(String, String), Known>;

#[derive(Debug, thiserror::Error)]
#[error("{}", tr!("templates-mismatch", problems = .problems))]
pub struct TemplateCheckError {
    problems: String,
}

/// Asks each connector the jobs use for its templates (one call each, with the first
/// token) and checks the jobs against them. `Ok` with the templates found, after
/// warning about any connector whose answer could not be read.
pub(crate) async fn check(
    client: &Client,
    token: &Token,
    uses: &Uses,
) -> Result<Checked, TemplateCheckError> {
    let mut listings = HashMap::new();
    for connector in uses.0.keys().map(|(connector, _)| connector.clone()) {
        if listings.contains_key(&connector) {
            continue;
        }
        let listing = match client.list_templates(token, &connector).await {
            Ok((status, body)) => parse(status, &body),
            Err(why) => Listing::Unreadable(why),
        };
        listings.insert(connector, listing);
    }
    judge(uses, &listings)
}

/// How the jobs use one template.
#[derive(Debug, Default)]
struct Use {
    /// Rows by the number of variables they give.
    by_count: BTreeMap<usize, Vec<u64>>,
    /// Rows without a `url_attach`.
    without_attach: Vec<u64>,
    rows: u64,
}

/// Every (connector, template) the template jobs use, gathered row by row.
#[derive(Debug, Default)]
pub(crate) struct Uses(BTreeMap<(String, String), Use>);

impl Uses {
    /// Counts a job that will be sent (free messages are left out).
    pub(crate) fn add(&mut self, job: &Job) {
        let Message::Template {
            name,
            vars,
            url_attach,
            ..
        } = &job.message
        else {
            return;
        };
        let entry = self
            .0
            .entry((job.connector_id.clone(), name.clone()))
            .or_default();
        entry.rows += 1;
        entry
            .by_count
            .entry(split_vars(vars).len())
            .or_default()
            .push(job.row);
        if url_attach.trim().is_empty() {
            entry.without_attach.push(job.row);
        }
    }

    /// No template is sent: nothing to check.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many templates on how many connectors, for the log.
    pub(crate) fn describe(&self) -> String {
        let connectors: BTreeSet<&String> = self.0.keys().map(|(c, _)| c).collect();
        tr!(
            "templates-uses",
            templates = self.0.len(),
            connectors = connectors.len()
        )
    }
}

fn split_vars(vars: &str) -> Vec<&str> {
    if vars.is_empty() {
        Vec::new()
    } else {
        vars.split(';').collect()
    }
}

/// Checks the uses against the listings: every problem, or the templates found.
fn judge(uses: &Uses, listings: &HashMap<String, Listing>) -> Result<Checked, TemplateCheckError> {
    let mut problems = Vec::new();
    let mut found = Checked::new();
    let mut warned = BTreeSet::new();
    for ((connector, name), using) in &uses.0 {
        let templates = match listings.get(connector) {
            Some(Listing::Templates(t)) => t,
            Some(Listing::Unreadable(why)) => {
                if warned.insert(connector.clone()) {
                    tracing::warn!(
                        "{}",
                        tr!("templates-unchecked", connector = connector, why = why)
                    );
                }
                continue;
            }
            None => continue,
        };
        let what = tr!(
            "templates-what",
            name = format!("{name:?}"),
            connector = connector,
            rows = using.rows
        );
        let Some(known) = templates.iter().find(|t| t.name == *name) else {
            problems.push(tr!(
                "templates-not-found",
                what = what,
                approved = closest(name, templates)
            ));
            continue;
        };
        if !known.approved() {
            problems.push(tr!(
                "templates-not-approved",
                what = what,
                status = known.status.as_deref().unwrap_or_default()
            ));
        }
        for (count, rows) in &using.by_count {
            if *count != known.variables.len() {
                problems.push(tr!(
                    "templates-variables",
                    what = what,
                    takes = known.variables.len(),
                    placeholders = placeholders(&known.variables),
                    rows = row_list(rows),
                    count = *count
                ));
            }
        }
        if let Some(media) = &known.media
            && !using.without_attach.is_empty()
        {
            problems.push(tr!(
                "templates-media",
                what = what,
                media = media,
                rows = row_list(&using.without_attach)
            ));
        }
        found.insert((connector.clone(), name.clone()), known.clone());
    }
    if problems.is_empty() {
        Ok(found)
    } else {
        Err(TemplateCheckError {
            problems: problems
                .iter()
                .map(|p| format!("  - {p}"))
                .collect::<Vec<_>>()
                .join("\n"),
        })
    }
}

/// The connector's approved template names, the closest to `name` first.
fn closest(name: &str, templates: &[Known]) -> String {
    let mut names: Vec<&str> = templates
        .iter()
        .filter(|t| t.approved())
        .map(|t| t.name.as_str())
        .collect();
    if names.is_empty() {
        return tr!("templates-none");
    }
    names.sort_by(|a, b| {
        strsim::jaro_winkler(name, b)
            .total_cmp(&strsim::jaro_winkler(name, a))
            .then(a.cmp(b))
    });
    let more = names.len().saturating_sub(NAMES_SHOWN);
    let mut out = names
        .iter()
        .take(NAMES_SHOWN)
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if more > 0 {
        out.push_str(&tr!("templates-and-more", more = more));
    }
    out
}

fn placeholders(names: &[String]) -> String {
    if names.is_empty() {
        return tr!("templates-none");
    }
    names
        .iter()
        .map(|n| format!("{{{{{n}}}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn row_list(rows: &[u64]) -> String {
    let mut out = rows
        .iter()
        .take(ROWS_SHOWN)
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if rows.len() > ROWS_SHOWN {
        out.push_str(&format!(" and {} more", rows.len() - ROWS_SHOWN));
    }
    out
}

/// Reads a `list_templates` answer. The templates are the array under
/// `meta_templates` wherever it is, else the first array of objects with a `name`.
pub(crate) fn parse(status: u16, body: &[u8]) -> Listing {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Listing::Unreadable(tr!(
            "answer-not-json",
            status = status,
            excerpt = crate::wolkvox::excerpt(&String::from_utf8_lossy(body))
        ));
    };
    if !(200..300).contains(&status) {
        let msg = value
            .get("msg")
            .and_then(Value::as_str)
            .map(crate::wolkvox::excerpt)
            .unwrap_or_default();
        return Listing::Unreadable(tr!("templates-answered", status = status, msg = msg));
    }
    let array = find_key(&value, "meta_templates").or_else(|| find_named_array(&value));
    match array {
        Some(items) => Listing::Templates(items.iter().filter_map(known).collect()),
        None => Listing::Unreadable(tr!("templates-no-list")),
    }
}

/// The array under `key`, at any depth.
fn find_key<'a>(value: &'a Value, key: &str) -> Option<&'a Vec<Value>> {
    match value {
        Value::Object(map) => map
            .get(key)
            .and_then(Value::as_array)
            .or_else(|| map.values().find_map(|v| find_key(v, key))),
        Value::Array(items) => items.iter().find_map(|v| find_key(v, key)),
        _ => None,
    }
}

/// The first array whose items are all objects with a string `name`, at any depth.
fn find_named_array(value: &Value) -> Option<&Vec<Value>> {
    crate::wolkvox::find_array(value, &|items| {
        !items.is_empty()
            && items
                .iter()
                .all(|i| i.get("name").is_some_and(Value::is_string))
    })
}

/// One template of the answer; `None` for an item without a name.
fn known(item: &Value) -> Option<Known> {
    let name = item.get("name")?.as_str()?.trim().to_owned();
    let status = item
        .get("status")
        .and_then(Value::as_str)
        .map(|s| s.trim().to_uppercase());
    let mut variables = Vec::new();
    let mut media = None;
    let mut text = Vec::new();
    let components = item
        .get("components")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for component in components {
        let kind = field_upper(component, "type");
        if kind != "HEADER" && kind != "BODY" {
            continue;
        }
        let format = field_upper(component, "format");
        if kind == "HEADER" && matches!(format.as_str(), "IMAGE" | "VIDEO" | "DOCUMENT") {
            media = Some(format);
            continue;
        }
        if let Some(t) = component.get("text").and_then(Value::as_str) {
            for name in placeholder_names(t) {
                if !variables.contains(&name) {
                    variables.push(name);
                }
            }
            text.push(t.to_owned());
        }
    }
    Some(Known {
        name,
        status,
        variables,
        media,
        text: text.join("\n"),
    })
}

fn field_upper(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_uppercase()
}

/// The placeholders of a text, `{{1}}` or `{{nombre}}`, in order of appearance.
fn placeholder_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            break;
        };
        let name = after[..end].trim();
        if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            out.push(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(name: &str, status: &str, body: &str, header: Option<Value>) -> Value {
        let mut components = vec![json!({"type": "BODY", "text": body})];
        if let Some(h) = header {
            components.insert(0, h);
        }
        json!({"name": name, "status": status, "language": "es", "components": components})
    }

    fn listing(answer: Value) -> Vec<Known> {
        match parse(200, answer.to_string().as_bytes()) {
            Listing::Templates(t) => t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn templates_are_found_in_any_nesting_with_their_variables() {
        let t = template(
            "cita",
            "APPROVED",
            "Hola {{1}}, su cita es el {{2}} a las {{3}}. {{1}}",
            Some(json!({"type": "HEADER", "format": "TEXT", "text": "Cita {{4}}"})),
        );
        for answer in [
            json!({"code": 200, "data": {"meta_templates": [t.clone()]}}),
            json!({"meta_templates": [t.clone()]}),
            json!({"data": [{"templates": [t.clone()]}]}),
            json!([t.clone()]),
        ] {
            let found = listing(answer);
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].variables, ["4", "1", "2", "3"]);
            assert_eq!(found[0].status.as_deref(), Some("APPROVED"));
        }
        let named = listing(json!({"meta_templates": [template(
            "bienvenida",
            "approved",
            "Hola {{nombre}}, bienvenido a {{ciudad}}",
            Some(json!({"type": "HEADER", "format": "IMAGE"})),
        )]}));
        assert_eq!(named[0].variables, ["nombre", "ciudad"]);
        assert_eq!(named[0].media.as_deref(), Some("IMAGE"));
        assert_eq!(named[0].fill("Ana;Cali"), "Hola Ana, bienvenido a Cali");
    }

    #[test]
    fn unreadable_answers_say_why() {
        assert!(matches!(parse(200, b"<html>"), Listing::Unreadable(w) if w.contains("not JSON")));
        assert!(
            matches!(parse(200, br#"{"code":200,"data":{}}"#), Listing::Unreadable(w) if w.contains("meta_templates"))
        );
        assert!(
            matches!(parse(400, br#"{"code":400,"msg":"THE API YOU WANT TO CONSULT DOES NOT EXIST"}"#), Listing::Unreadable(w) if w.contains("HTTP 400"))
        );
    }

    fn job(row: u64, name: &str, vars: &str, url: &str) -> Job {
        Job {
            message: Message::Template {
                name: name.into(),
                vars: vars.into(),
                customer_id: String::new(),
                url_attach: url.into(),
            },
            ..Job::for_test(row, &format!("k{row}"))
        }
    }

    fn check_against(jobs: &[Job], templates: Vec<Value>) -> Result<Checked, String> {
        let listings = HashMap::from([(
            "1".to_owned(),
            listing(json!({"meta_templates": templates})),
        )])
        .into_iter()
        .map(|(c, t)| (c, Listing::Templates(t)))
        .collect();
        judge(&uses(jobs), &listings).map_err(|e| e.to_string())
    }

    fn uses(jobs: &[Job]) -> Uses {
        let mut uses = Uses::default();
        jobs.iter().for_each(|j| uses.add(j));
        uses
    }

    #[test]
    fn every_mismatch_is_named_with_its_rows() {
        let templates = vec![
            template("cita_recordatorio", "APPROVED", "Hola {{1}}, {{2}}", None),
            template("cita_cancelada", "APPROVED", "Hola {{1}}", None),
            template("promo", "PENDING", "Oferta", None),
            template(
                "factura",
                "APPROVED",
                "Su factura {{1}}",
                Some(json!({"type": "HEADER", "format": "DOCUMENT"})),
            ),
        ];
        let err = check_against(
            &[
                job(1, "cita_recordatorios", "Ana;martes", ""),
                job(2, "promo", "", ""),
                job(3, "cita_recordatorio", "Ana", ""),
                job(4, "factura", "F-1", "https://x.example/f.pdf"),
                job(5, "factura", "F-2", ""),
            ],
            templates.clone(),
        )
        .unwrap_err();
        assert!(
            err.contains("template \"cita_recordatorios\" (connector 1, 1 rows): not found"),
            "{err}"
        );
        assert!(
            err.contains("approved ones: \"cita_recordatorio\", \"cita_cancelada\", \"factura\""),
            "closest first, pending left out: {err}"
        );
        assert!(err.contains("its status is PENDING"), "{err}");
        assert!(
            err.contains("it takes 2 variables ({{1}}, {{2}}) but rows 3 give 1"),
            "{err}"
        );
        assert!(
            err.contains("DOCUMENT header") && err.contains("rows 5 have none"),
            "{err}"
        );
        assert!(err.contains("--no-template-check"), "{err}");

        let ok = check_against(
            &[
                job(1, "cita_recordatorio", "Ana;martes", ""),
                job(2, "factura", "F", "https://x.example/f.pdf"),
            ],
            templates,
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
    }

    #[test]
    fn an_unreadable_connector_is_not_a_refusal() {
        let listings = HashMap::from([(
            "1".to_owned(),
            Listing::Unreadable("the answer is not JSON".into()),
        )]);
        let checked = judge(&uses(&[job(1, "x", "", "")]), &listings).unwrap();
        assert!(checked.is_empty());
    }
}
