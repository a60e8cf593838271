/*!
What a run is (`RunInfo`): recorded at its start in the journal, compared with this
run's on `--resume` (another kind of message, connector or list is another campaign),
and read back by `report`.
*/

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::tr;

/// What a run is: recorded at its start, compared on `--resume`, read by `report`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RunInfo {
    /// `free`, `rendered` (a `--template` renders each message) or `hsm`.
    pub(crate) kind: String,
    /// The HSM template given by `--hsm` / `hsm.template_name` (else per row).
    #[serde(default)]
    pub(crate) hsm_template: Option<String>,
    /// The columns of the HSM variables, in order.
    #[serde(default)]
    pub(crate) hsm_vars: Vec<String>,
    /// Where the `--template` of rendered messages came from.
    #[serde(default)]
    pub(crate) template: Option<String>,
    /// `api.connector_id`, the connector of rows without their own.
    #[serde(default)]
    pub(crate) connector_id: Option<String>,
    /// The list as given, and as an absolute path (to tell two lists apart).
    pub(crate) input: PathBuf,
    #[serde(default)]
    pub(crate) input_absolute: PathBuf,
    #[serde(default)]
    pub(crate) input_bytes: u64,
    /// SHA-256 of the header's names, in hex: enough to recognise the list.
    #[serde(default)]
    pub(crate) header_digest: String,
    /// Data rows in the list when the run started.
    pub(crate) rows: u64,
    /// The command line of the run, without the program name (never a token: tokens
    /// are never flags).
    #[serde(default)]
    pub(crate) args: Vec<String>,
    #[serde(default)]
    pub(crate) tool_version: String,
    #[serde(default)]
    pub(crate) started_at: String,
    /// The machine's boot (Linux's boot id) when the run started: within the same boot
    /// a journal line written is on disk for the next run even if not synced (see
    /// `AheadIntents`); after a reboot (a power cut) only synced lines are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) boot_id: Option<String>,
}

/// This boot's id, where the system gives one.
pub(crate) fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
}

impl RunInfo {
    /// What in `self` (this run) differs from `recorded` in a way that makes it another
    /// campaign. Editing the list (rows added, reordered, messages changed) does not.
    pub(crate) fn differences(&self, recorded: &RunInfo) -> Vec<String> {
        let mut out = Vec::new();
        if self.kind != recorded.kind
            || self.hsm_template != recorded.hsm_template
            || self.hsm_vars != recorded.hsm_vars
            || self.template != recorded.template
        {
            out.push(tr!(
                "campaign-differs-kind",
                recorded = recorded.describe_kind(),
                this = self.describe_kind()
            ));
        }
        if self.connector_id != recorded.connector_id {
            out.push(tr!(
                "campaign-differs-connector",
                recorded = show_option(recorded.connector_id.as_deref()),
                this = show_option(self.connector_id.as_deref())
            ));
        }
        if !recorded.input_absolute.as_os_str().is_empty()
            && self.input_absolute != recorded.input_absolute
        {
            out.push(tr!(
                "campaign-differs-list",
                recorded = recorded.input_absolute.display(),
                this = self.input_absolute.display()
            ));
        }
        out
    }

    /// The value the run's command line gave `flag` (`--flag V` or `--flag=V`).
    pub(crate) fn arg_value(&self, flag: &str) -> Option<String> {
        let prefix = format!("{flag}=");
        self.args.iter().enumerate().find_map(|(i, a)| {
            a.strip_prefix(&prefix)
                .map(str::to_owned)
                .or_else(|| (a == flag).then(|| self.args.get(i + 1).cloned()).flatten())
        })
    }

    /// The kind of message, in words.
    pub(crate) fn describe_kind(&self) -> String {
        match self.kind.as_str() {
            "hsm" => {
                let name = self
                    .hsm_template
                    .as_deref()
                    .map(|n| tr!("campaign-hsm-named", name = format!("{n:?}")))
                    .unwrap_or_else(|| tr!("campaign-hsm-column"));
                if self.hsm_vars.is_empty() {
                    name
                } else {
                    tr!(
                        "campaign-with-variables",
                        name = name,
                        vars = self.hsm_vars.join(",")
                    )
                }
            }
            "rendered" => match self.template.as_deref() {
                Some(template) => tr!("campaign-rendered", template = template),
                None => tr!("campaign-rendered-unnamed"),
            },
            _ => tr!("campaign-free"),
        }
    }
}

fn show_option(value: Option<&str>) -> String {
    value
        .map(|v| format!("{v:?}"))
        .unwrap_or_else(|| tr!("campaign-not-set"))
}
