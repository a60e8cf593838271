/*!
Message templates: each row's message rendered from its columns with a
Jinja-style template (minijinja), `Hola {{ nombre }}, su cita es el {{ fecha }}`.

Columns are the template's variables under their identifiers (see `header`:
`Fecha de la cita` is `fecha_de_la_cita`). The template is checked against the
header before any row is read: a variable that names no column is an error
that lists the variables the file offers, so nothing is sent with a hole in it.
Undefined values are errors (`UndefinedBehavior::Strict`), never blanks. Per
row, an empty value for a column the template uses makes the row invalid, and
so does any rendering error: a row, never the run.
*/

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior, Value};

use crate::input::header::identifier;
use crate::tr;
use crate::validate::Problem;

/// The name the template is stored under: no extension, so no auto-escaping.
const NAME: &str = "message";

/// A template's text and where it came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateSource {
    pub(crate) text: String,
    /// "--template cita.j2" or "message.template in wolkvox.toml".
    pub(crate) origin: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{}", tr!("template-syntax", origin = .origin, detail = .detail))]
    Syntax { origin: String, detail: String },
    #[error("{}", tr!(
        "template-missing-column",
        origin = .origin,
        variable = .variable,
        path = .path,
        available = .available
    ))]
    MissingColumn {
        origin: String,
        variable: String,
        path: PathBuf,
        available: String,
    },
    #[error("{}", tr!(
        "template-ambiguous",
        origin = .origin,
        variable = .variable,
        path = .path,
        first = format!("{:?}", .first),
        second = format!("{:?}", .second)
    ))]
    Ambiguous {
        origin: String,
        variable: String,
        path: PathBuf,
        first: String,
        second: String,
    },
}

/// A column the template uses.
#[derive(Debug, Clone)]
struct Used {
    variable: String,
    column: usize,
    header: String,
}

/// A template compiled and bound to one file's header.
#[derive(Debug)]
pub(crate) struct MessageTemplate {
    env: Environment<'static>,
    used: Vec<Used>,
    origin: String,
}

impl MessageTemplate {
    /// Compiles `source` and binds its variables to the columns of `header`.
    pub(crate) fn new(
        source: &TemplateSource,
        header: &[String],
        path: &Path,
    ) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_template_owned(NAME, source.text.clone())
            .map_err(|e| TemplateError::Syntax {
                origin: source.origin.clone(),
                detail: describe(&e),
            })?;
        let globals: HashSet<String> = env.globals().map(|(name, _)| name.to_owned()).collect();
        let variables = env
            .get_template(NAME)
            .map_err(|e| TemplateError::Syntax {
                origin: source.origin.clone(),
                detail: describe(&e),
            })?
            .undeclared_variables(false);
        let mut variables: Vec<String> = variables.into_iter().collect();
        variables.sort();

        let ids: Vec<String> = header.iter().map(|h| identifier(h)).collect();
        let mut used = Vec::new();
        for variable in variables {
            let mut hits = ids.iter().enumerate().filter(|(_, id)| **id == variable);
            match (hits.next(), hits.next()) {
                (Some((column, _)), None) => used.push(Used {
                    variable,
                    column,
                    header: header.get(column).cloned().unwrap_or_default(),
                }),
                (Some((first, _)), Some((second, _))) => {
                    return Err(TemplateError::Ambiguous {
                        origin: source.origin.clone(),
                        variable,
                        path: path.to_owned(),
                        first: header.get(first).cloned().unwrap_or_default(),
                        second: header.get(second).cloned().unwrap_or_default(),
                    });
                }
                // `range`, `dict`, `namespace`...: the engine's own functions.
                (None, _) if globals.contains(&variable) => {}
                (None, _) => {
                    let available: Vec<String> = header
                        .iter()
                        .zip(&ids)
                        .filter(|(_, id)| !id.is_empty())
                        .map(|(h, id)| {
                            if h == id {
                                id.clone()
                            } else {
                                format!("{id} ({h:?})")
                            }
                        })
                        .collect();
                    return Err(TemplateError::MissingColumn {
                        origin: source.origin.clone(),
                        variable,
                        path: path.to_owned(),
                        available: available.join(", "),
                    });
                }
            }
        }
        Ok(Self {
            env,
            used,
            origin: source.origin.clone(),
        })
    }

    /// Where the template came from.
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// Header names of the columns the template uses, in variable order.
    /// The positions of the columns the template uses.
    pub(crate) fn positions(&self) -> impl Iterator<Item = usize> + '_ {
        self.used.iter().map(|u| u.column)
    }

    pub(crate) fn columns(&self) -> impl Iterator<Item = &str> {
        self.used.iter().map(|u| u.header.as_str())
    }

    /// The message for one row, or what is wrong with the row.
    pub(crate) fn render(&self, fields: &[String]) -> Result<String, Vec<Problem>> {
        let mut context = BTreeMap::new();
        let mut problems = Vec::new();
        for u in &self.used {
            let value = fields.get(u.column).map(|f| f.trim()).unwrap_or("");
            if value.is_empty() {
                problems.push(Problem::new(
                    &u.header,
                    tr!(
                        "row-template-uses-empty",
                        variable = format!("{{{{ {} }}}}", u.variable)
                    ),
                ));
            }
            context.insert(u.variable.clone(), Value::from(value));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        self.env
            .get_template(NAME)
            .and_then(|t| t.render(Value::from(context)))
            .map_err(|e| {
                vec![Problem::new(
                    "(template)",
                    tr!("row-template-render", error = describe(&e)),
                )]
            })
    }
}

/// A minijinja error in one line, with its line number when it has one.
fn describe(e: &minijinja::Error) -> String {
    let mut text = e.to_string();
    if let Some(line) = e.line()
        && !text.contains("line")
    {
        text.push_str(&tr!("template-line", line = line));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> TemplateSource {
        TemplateSource {
            text: text.into(),
            origin: "--template t.j2".into(),
        }
    }

    /// A header row, or a data row.
    fn fields(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    /// The template `text` for a list named `l.csv` with these header names.
    fn template(text: &str, names: &[&str]) -> Result<MessageTemplate, TemplateError> {
        MessageTemplate::new(&source(text), &fields(names), Path::new("l.csv"))
    }

    #[test]
    fn renders_rows_by_normalized_column_names() {
        let t = template(
            "Hola {{ nombre }}, su cita es el {{ fecha_cita }} a las {{ hora }}.\n",
            &["Nombre", "Celular", "Fecha cita", "HORA"],
        )
        .unwrap();
        assert_eq!(
            t.columns().collect::<Vec<_>>(),
            ["Fecha cita", "HORA", "Nombre"]
        );
        let text = t
            .render(&fields(&[" Señora Núñez ", "x", "2025-03-14", "10:30"]))
            .unwrap();
        // Values are trimmed; the template's final newline is dropped, as in Jinja.
        assert_eq!(
            text,
            "Hola Señora Núñez, su cita es el 2025-03-14 a las 10:30."
        );
    }

    #[test]
    fn a_variable_without_a_column_is_refused_listing_the_header() {
        let err = template(
            "Hola {{ nombre }}, {{ fecha }}",
            &["Nombre", "Teléfono", "Fecha de la cita"],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, TemplateError::MissingColumn { ref variable, .. } if variable == "fecha")
        );
        assert!(text.contains("fecha_de_la_cita"), "{text}");
        assert!(text.contains("telefono (\"Teléfono\")"), "{text}");
        assert!(text.contains("--template t.j2"), "{text}");
    }

    #[test]
    fn syntax_errors_and_ambiguous_columns_are_refused() {
        let err = template("Hola {{ nombre", &["nombre"]).unwrap_err();
        assert!(matches!(err, TemplateError::Syntax { .. }), "{err}");
        let err = template("{{ nombre }}", &["Nombre", "NOMBRE "]).unwrap_err();
        assert!(matches!(err, TemplateError::Ambiguous { .. }), "{err}");
    }

    #[test]
    fn engine_functions_are_not_columns() {
        let t = template(
            "{% for i in range(2) %}{{ nombre }}{% endfor %}",
            &["nombre"],
        )
        .unwrap();
        assert_eq!(t.render(&fields(&["a"])).unwrap(), "aa");
    }

    #[test]
    fn empty_values_and_render_errors_are_row_problems() {
        let t = template("{{ nombre }} {{ fecha }}", &["nombre", "fecha"]).unwrap();
        let problems = t.render(&fields(&["Ana", "  "])).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].column, "fecha");
        // A short row: the missing cell is empty.
        assert_eq!(t.render(&fields(&["Ana"])).unwrap_err()[0].column, "fecha");

        let t = template("{{ nombre.apellido.x }}", &["nombre"]).unwrap();
        let problems = t.render(&fields(&["Ana"])).unwrap_err();
        assert_eq!(problems[0].column, "(template)");
    }
}
