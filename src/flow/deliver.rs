//! The last step of `create`, `config` and `rotate`: a rendered key reaches the user.
//! Printed on stdout, or written into a Soda configuration file (`--write`, the one
//! `soda_cloud` block replaced and every other byte kept), or shown as that change with
//! secrets masked (`--dry-run`). A `--write` target is read and planned before anything
//! is minted, so a bad file leaves nothing behind.

use std::io::Write as _;
use std::path::PathBuf;

use serde_yaml_ng::{Mapping, Value};

use crate::output::Output;
use crate::render::{self, EU_HOST, KeyParts, OutputFormat, Settings};
use crate::yamlblock::{self, Plan};

/// The top-level key `--write` edits.
pub(crate) const BLOCK_KEY: &str = "soda_cloud";

/// Where the user wants the snippet: a file to edit (`--write`), and whether only to
/// show the change (`--dry-run`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Target {
    pub write: Option<PathBuf>,
    pub dry_run: bool,
}

/// Where a rendered key goes, checked before anything is stored or written.
pub(crate) struct Delivery {
    pub settings: Settings,
    /// Where the written block sends the key (`https://host:port`), for the note.
    at: String,
    /// `--write`: the path as given and the planned edit.
    pub write: Option<(PathBuf, Plan)>,
    pub dry_run: bool,
    /// The key ID of the `soda_cloud` block `--write` would replace, when it is another
    /// key's: a working configuration is not replaced without asking.
    pub replaces: Option<String>,
}

impl Delivery {
    /// Reads and plans the `--write` edit, so that a bad FILE fails before `create`
    /// mints anything.
    pub(crate) fn prepare(
        target: &Target,
        settings: Settings,
        parts: &KeyParts,
    ) -> anyhow::Result<Delivery> {
        let mut at = String::new();
        let write = match &target.write {
            None => None,
            Some(path) => {
                let (target, old) = yamlblock::read(path)?;
                let old_block = old.as_deref().and_then(|t| old_block(t));
                let (edit, expected) = merge(&settings, parts, old_block.as_ref());
                at = address_of(&expected);
                let plan = yamlblock::plan(
                    path,
                    target,
                    old,
                    BLOCK_KEY,
                    |eol| render::soda_cloud_block_over(&settings, parts, eol, &edit),
                    &expected,
                )?;
                Some((path.clone(), plan))
            }
        };
        let replaces = write
            .as_ref()
            .and_then(|(_, plan)| block_key_id(plan.old.as_deref()?))
            .filter(|old| old != parts.id);
        Ok(Delivery {
            settings,
            at,
            write,
            dry_run: target.dry_run,
            replaces,
        })
    }

    /// Asks before `--write` replaces the block of another key (on a terminal; `--yes`
    /// otherwise, exit 10). `rotate --write` means the replacement and does not call it.
    pub(crate) fn confirm_replace(
        &self,
        prompter: &dyn crate::input::Prompter,
        assume_yes: bool,
        new: &str,
    ) -> anyhow::Result<()> {
        let (Some(old), Some((path, _)), false) = (&self.replaces, &self.write, self.dry_run)
        else {
            return Ok(());
        };
        if assume_yes {
            return Ok(());
        }
        prompter.confirm(
            &format!(
                "{} holds the {BLOCK_KEY} block of key {} (a working configuration); replacing it with {new}",
                path.display(),
                crate::output::sanitize(old)
            ),
        )
    }

    pub(crate) fn deliver(&self, out: &Output, parts: &KeyParts) -> anyhow::Result<()> {
        match &self.write {
            Some((shown, plan)) if self.dry_run => {
                let diff = yamlblock::masked_diff(plan, shown, &[parts.secret]);
                if plan.changes() {
                    print_stdout(&diff)?;
                }
                out.note(&format!(
                    "dry run: {} {}",
                    shown.display(),
                    if plan.changes() {
                        "would change as shown (secrets masked); nothing written"
                    } else {
                        "already holds this block; nothing to do"
                    }
                ));
                Ok(())
            }
            Some((shown, plan)) => {
                if let Some(why) = render::soda_caveat(&self.settings, parts) {
                    out.warn(why);
                }
                if plan.changes() {
                    yamlblock::commit(plan, shown)?;
                }
                out.note(&format!(
                    "{} {BLOCK_KEY} block of {} ({})",
                    match &plan.old {
                        None => "created the file with the",
                        Some(_) if plan.changes() => "wrote the",
                        Some(_) => "unchanged:",
                    },
                    shown.display(),
                    self.at
                ));
                Ok(())
            }
            None => {
                if self.settings.format == OutputFormat::HelmSet {
                    self.helm_warning(out, parts);
                }
                if let Some(why) = render::soda_caveat(&self.settings, parts) {
                    out.warn(why);
                }
                out.debug(&format!(
                    "rendering {:?} for {} (host {})",
                    self.settings.format, parts.id, self.settings.host
                ));
                let text = render::render(&self.settings, parts)?;
                print_stdout(&text)
            }
        }
    }

    fn helm_warning(&self, out: &Output, parts: &KeyParts) {
        let host = if self.settings.host == EU_HOST {
            String::new()
        } else {
            format!(" --host {}", self.settings.host)
        };
        out.warn(&format!(
            "secrets on a command line end up in shell history and the process table; to read them from a values file instead: helm install {} {} --namespace {} --create-namespace --values <(keyctl config {}{host})",
            render::HELM_RELEASE,
            render::HELM_CHART,
            render::HELM_NAMESPACE,
            crate::output::sanitize(&render::sh_quote(parts.name)),
        ));
    }
}

/// The `soda_cloud` mapping of a configuration file's text: None without one (or when
/// the file does not parse; `yamlblock::plan` says why then).
fn old_block(text: &str) -> Option<Mapping> {
    let doc: Value = serde_yaml_ng::from_str(text.trim_start_matches('\u{feff}')).ok()?;
    match doc.get(BLOCK_KEY)? {
        Value::Mapping(m) => Some(m.clone()),
        _ => Some(Mapping::new()),
    }
}

/// What `--write` keeps of the old block (every key keyctl does not set, see
/// [`Settings::sets`]) and what the `soda_cloud` key must parse to once written: the
/// strings themselves, so the check after the edit also proves the quoting round-trips.
fn merge(
    settings: &Settings,
    parts: &KeyParts,
    old: Option<&Mapping>,
) -> (render::BlockEdit, Value) {
    let old_host = old.map(|m| m.get("host").and_then(Value::as_str));
    let mut edit = render::BlockEdit::default();
    let mut m = Mapping::new();
    let ours = [
        ("host", Some(settings.host.as_str())),
        ("port", settings.port.as_deref()),
        ("scheme", settings.scheme.as_deref()),
    ];
    for (key, value) in ours {
        let kept = old
            .and_then(|o| o.get(key))
            .filter(|_| !settings.sets(key, old_host));
        match (kept, value) {
            (Some(v), _) => {
                edit.endpoint.push((key.to_string(), flow_text(v)));
                m.insert(key.into(), v.clone());
            }
            (None, Some(v)) => {
                m.insert(key.into(), v.into());
            }
            (None, None) => {}
        }
    }
    m.insert("api_key_id".into(), parts.id.into());
    m.insert(
        "api_key_secret".into(),
        render::secret_value(settings, parts).into_owned().into(),
    );
    for (k, v) in old.into_iter().flatten() {
        let owned = k
            .as_str()
            .is_some_and(|k| render::OWNED_KEYS.contains(&k) || render::ENDPOINT_KEYS.contains(&k));
        if !owned {
            edit.others.push((flow_text(k), flow_text(v)));
            m.insert(k.clone(), v.clone());
        }
    }
    (edit, Value::Mapping(m))
}

/// `{scheme}://{host}{:port}` as Soda Core builds it from a `soda_cloud` mapping.
fn address_of(block: &Value) -> String {
    let text = |k: &str| match block.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let host = text("host").unwrap_or_default();
    let scheme = text("scheme").unwrap_or_else(|| "https".into());
    match text("port") {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    }
}

/// A kept value as one line of YAML: JSON, which YAML reads as the same value (the check
/// after the edit proves it did).
fn flow_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// `soda_cloud.api_key_id` of a configuration file's text, when it has one.
fn block_key_id(text: &str) -> Option<String> {
    let doc: Value = serde_yaml_ng::from_str(text.trim_start_matches('\u{feff}')).ok()?;
    match doc.get(BLOCK_KEY)?.get("api_key_id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
