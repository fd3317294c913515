//! Delivery targets: the files keyctl wrote a key into (`--write`, in any output form),
//! remembered in the key's record so that `rotate` can rewrite every one of them with the
//! successor before the old key's grace period starts. Nobody has to remember where a
//! key was pasted, and no consumer reading one of those files sees a key that stops
//! working.
//!
//! Each form is written the way that keeps the rest of the file: the Soda `soda_cloud`
//! block byte for byte ([`super::deliver`]); other YAML and JSON documents (a clouds.yaml,
//! Helm values) merged as data, keyctl's keys over the file's; shell lines (env, openrc,
//! a `helm install` line) as one block between marker comments, replaced in place or
//! appended. Every write is atomic and refused if the file changed since it was read.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::deliver::{Delivery, Target};
use crate::app::App;
use crate::error::usage;
use crate::key::Kind;
use crate::registry::{DeliveryTarget, KeyRecord};
use crate::render::{self, Choices, KeyParts, OutputFormat, Settings, openstack};
use crate::service::Service;
use crate::store::StoreKind;
use crate::yamlblock::{self, Plan};

/// How a form is put into a file that may hold more than it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// The `soda_cloud` block of a Soda configuration file.
    SodaBlock,
    /// A YAML document (clouds.yaml, Helm values, a Kubernetes Secret).
    Yaml,
    Json,
    /// Shell lines, between marker comments.
    Lines,
}

fn shape(service: &Service, kind: Kind, format: OutputFormat) -> Shape {
    match format {
        OutputFormat::Yaml if kind == Kind::Api && !openstack::is_keystone(Some(service)) => {
            Shape::SodaBlock
        }
        OutputFormat::Yaml | OutputFormat::K8sSecret => Shape::Yaml,
        OutputFormat::Json => Shape::Json,
        OutputFormat::Env | OutputFormat::HelmSet => Shape::Lines,
    }
}

/// Is `--write` of this form the edit of a Soda configuration's `soda_cloud` block (done
/// by [`Delivery`])?
pub(crate) fn is_soda_block(service: &Service, kind: Kind, format: OutputFormat) -> bool {
    shape(service, kind, format) == Shape::SodaBlock
}

/// `path` made absolute (from the working directory), without resolving symlinks: the
/// record names the path the user gave.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The record of a write of `format` to `path` with `choices`.
pub(crate) fn target_of(path: &Path, format: OutputFormat, choices: &Choices) -> DeliveryTarget {
    DeliveryTarget {
        path: absolute(path),
        format,
        host: choices
            .host
            .clone()
            .or_else(|| choices.region.map(|r| r.host().to_string())),
        port: choices.port.clone(),
        scheme: choices.scheme.clone(),
        export: choices.export,
        secret_ref: Some(choices.secret_ref).filter(|r| *r != render::SecretRef::Literal),
        soda_version: choices.soda_version,
        written_at: OffsetDateTime::now_utc(),
    }
}

/// The render choices a recorded target was written with.
fn choices_of(t: &DeliveryTarget) -> Choices {
    Choices {
        output: Some(t.format),
        region: None,
        host: t.host.clone(),
        port: t.port.clone(),
        scheme: t.scheme.clone(),
        export: t.export,
        secret_ref: t.secret_ref.unwrap_or_default(),
        soda_version: t.soda_version,
    }
}

/// Plans writing key `parts` (of `rec`'s kind and service) into target `t`: what the file
/// will hold, checked against what it holds now. Nothing is written.
pub(crate) fn plan(
    app: &App,
    rec: &KeyRecord,
    t: &DeliveryTarget,
    parts: &KeyParts,
) -> anyhow::Result<Plan> {
    let service = super::catalog::service_of(app, rec);
    let remembered = super::keys::soda_endpoint_of(app, rec);
    plan_form(
        &t.path,
        &service,
        &choices_of(t),
        t.format,
        remembered.as_ref(),
        parts,
    )
}

/// Plans writing `parts` into `path` in `format` with `choices`: a Keystone key's own
/// form, the Soda `soda_cloud` block (edited by [`Delivery`]), or another Soda form
/// merged into the file. Nothing is written.
fn plan_form(
    path: &Path,
    service: &Service,
    choices: &Choices,
    format: OutputFormat,
    soda: Option<&crate::service::SodaEndpoint>,
    parts: &KeyParts,
) -> anyhow::Result<Plan> {
    let text = if openstack::is_keystone(Some(service)) {
        openstack::render_chosen(service, choices, parts)?
    } else {
        let settings = Settings::resolve(parts.kind, choices, format, soda)?;
        if shape(service, parts.kind, format) == Shape::SodaBlock {
            let target = Target {
                write: Some(path.to_path_buf()),
                dry_run: false,
            };
            let d = Delivery::prepare(&target, settings, parts)?;
            return Ok(d.write.expect("a --write target").1);
        }
        render::render(&settings, parts)?
    };
    plan_text(path, shape(service, parts.kind, format), parts.name, &text)
}

/// Plans putting `text` (the rendered form, of `shape`) into `path`, keeping the rest.
fn plan_text(path: &Path, shape: Shape, name: &str, text: &str) -> anyhow::Result<Plan> {
    let (target, old) = yamlblock::read(path)?;
    let shown = path.display();
    let existing = old.as_deref().map(String::as_str).unwrap_or("");
    let new: Zeroizing<String> = if shape == Shape::Lines {
        let document = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(existing)
            .is_ok_and(|v| v.is_mapping() || v.is_sequence());
        if document {
            return Err(usage(format!(
                "{shown} is a YAML or JSON document, not shell lines; write the lines to a new file"
            )));
        }
        lines_block(existing, name, text)
    } else if existing.trim().is_empty() {
        Zeroizing::new(text.to_string())
    } else {
        match shape {
            Shape::SodaBlock => unreachable!("planned by deliver"),
            Shape::Yaml | Shape::Json => {
                let (kind, parsed) = if shape == Shape::Yaml {
                    (
                        "YAML mapping",
                        serde_yaml_ng::from_str::<serde_json::Value>(existing).ok(),
                    )
                } else {
                    (
                        "JSON object",
                        serde_json::from_str::<serde_json::Value>(existing).ok(),
                    )
                };
                let mut doc = parsed.filter(serde_json::Value::is_object).ok_or_else(|| {
                    usage(format!(
                        "{shown} is not one {kind} keyctl can merge the key into; write to a new file"
                    ))
                })?;
                let ours: serde_json::Value = serde_yaml_ng::from_str(text)?;
                let keys: Vec<String> = ours
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                if !keys.iter().any(|k| doc.get(k).is_some()) {
                    return Err(not_its_kind(&shown, &keys));
                }
                merge(&mut doc, ours);
                Zeroizing::new(if shape == Shape::Yaml {
                    serde_yaml_ng::to_string(&doc)?
                } else {
                    format!("{}\n", serde_json::to_string_pretty(&doc)?)
                })
            }
            Shape::Lines => unreachable!("above"),
        }
    };
    Ok(Plan { target, old, new })
}

/// A file that has none of the rendered form's top-level keys is another kind of file
/// (a Soda configuration, say): keyctl does not merge a clouds.yaml or Helm values into it.
fn not_its_kind(shown: &impl std::fmt::Display, keys: &[String]) -> anyhow::Error {
    usage(format!(
        "{shown} has no {} at its top level, so it is not a file of this form; keyctl merges only into a file of the same kind: write to a new file",
        keys.join("/")
    ))
}

/// Marker comments around keyctl's lines in a shell file, per key name.
fn markers(name: &str) -> (String, String) {
    let name = crate::output::sanitize(name);
    (
        format!("# >>> keyctl key {name} >>>"),
        format!("# <<< keyctl key {name} <<<"),
    )
}

/// `existing` with the lines between key `name`'s markers replaced by `text` (appended,
/// markers and all, when there are none).
fn lines_block(existing: &str, name: &str, text: &str) -> Zeroizing<String> {
    let (begin, end) = markers(name);
    let mut block = Zeroizing::new(format!("{begin}\n{text}"));
    if !block.ends_with('\n') {
        block.push('\n');
    }
    block.push_str(&end);
    block.push('\n');
    let mut out = Zeroizing::new(String::new());
    match (existing.find(&begin), existing.find(&end)) {
        (Some(b), Some(e)) if e > b => {
            let after = existing[e + end.len()..]
                .strip_prefix('\n')
                .unwrap_or(&existing[e + end.len()..]);
            out.push_str(&existing[..b]);
            out.push_str(&block);
            out.push_str(after);
        }
        _ => {
            out.push_str(existing);
            if !existing.is_empty() && !existing.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&block);
        }
    }
    out
}

/// `ours` over `into`: objects merged key by key, anything else replaced.
fn merge(into: &mut serde_json::Value, ours: serde_json::Value) {
    match (into, ours) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Writes `parts` into `path` as `format` (the non-Soda forms of `--write`; the Soda
/// block goes through [`Delivery`]) and remembers the target in `rec`'s record.
pub(crate) fn write_new(
    app: &App,
    rec: &KeyRecord,
    path: &Path,
    format: OutputFormat,
    choices: &Choices,
    parts: &KeyParts,
) -> anyhow::Result<()> {
    let t = target_of(path, format, choices);
    let p = plan(app, rec, &t, parts)?;
    if p.changes() {
        yamlblock::commit(&p, path)?;
    }
    app.out.note(&format!(
        "{} {} ({})",
        match &p.old {
            None => "created",
            Some(_) if p.changes() => "wrote key into",
            Some(_) => "unchanged:",
        },
        path.display(),
        format.as_str()
    ));
    remember(app, rec, t)
}

/// The form `--write` puts a key of `kind` for `service` in: a Keystone key's own
/// (clouds.yaml, openrc, AWS lines), else the Soda form the choices resolve to.
pub(crate) fn format_for(
    service: &Service,
    kind: Kind,
    choices: &Choices,
) -> anyhow::Result<OutputFormat> {
    if openstack::is_keystone(Some(service)) {
        return openstack::resolve(service, choices, false);
    }
    Ok(Settings::resolve(kind, choices, OutputFormat::Yaml, service.soda())?.format)
}

/// `--write FILE` of a stored key (`config`, `import`) in any form, remembered as a
/// target; replacing another key's `soda_cloud` block asks first (`assume_yes`).
pub(crate) fn write_key(
    app: &App,
    rec: &KeyRecord,
    secret: &str,
    path: &Path,
    choices: &Choices,
    assume_yes: bool,
) -> anyhow::Result<()> {
    let service = super::catalog::service_of(app, rec);
    let parts = KeyParts {
        kind: rec.kind,
        id: &rec.id,
        name: &rec.name,
        secret,
    };
    let format = format_for(&service, rec.kind, choices)?;
    if !is_soda_block(&service, rec.kind, format) {
        return write_new(app, rec, path, format, choices, &parts);
    }
    let remembered = super::keys::soda_endpoint_of(app, rec);
    let settings = Settings::resolve(rec.kind, choices, OutputFormat::Yaml, remembered.as_ref())?;
    let target = Target {
        write: Some(path.to_path_buf()),
        dry_run: false,
    };
    let d = Delivery::prepare(&target, settings, &parts)?;
    d.confirm_replace(
        app.prompter.as_ref(),
        assume_yes,
        &format!("key {}", rec.id),
    )?;
    d.deliver(&app.out, &parts)?;
    remember(app, rec, target_of(path, format, choices))
}

/// Records that `rec` was written to `t` (replacing an earlier record of the same path).
pub(crate) fn remember(app: &App, rec: &KeyRecord, t: DeliveryTarget) -> anyhow::Result<()> {
    super::catalog::update(app, rec.store, &rec.id, |k| {
        k.targets.retain(|o| o.path != t.path);
        k.targets.push(t.clone());
    })?;
    Ok(())
}

/// Checks before anything is minted that `path` can take key `name` as `format` (the
/// directory is writable, an existing file is one keyctl can merge into), with a sample
/// key rendered in its place.
pub(crate) fn precheck(
    path: &Path,
    service: &Service,
    kind: Kind,
    format: OutputFormat,
    name: &str,
) -> anyhow::Result<()> {
    let sample = crate::key::mint(crate::key::Format::Standard, kind.default_prefix());
    let parts = KeyParts {
        kind,
        id: &sample.id,
        name,
        secret: secrecy::ExposeSecret::expose_secret(&sample.secret),
    };
    let choices = Choices {
        output: Some(format),
        ..Choices::default()
    };
    plan_form(path, service, &choices, format, service.soda(), &parts).map(drop)
}

/// One target's fate in a rotation.
pub(crate) enum Fate {
    /// Planned: written with the successor at the rotation's delivery step.
    Rewrite(DeliveryTarget, Plan),
    /// Gone, or no longer holding the old key: reported (why) and forgotten.
    Skipped(String),
    /// Not on this machine (a team key's): reported (why) and kept, not rewritten.
    Kept(DeliveryTarget, String),
}

/// Plans rewriting every target of `old` with the successor `parts` (of record `new`).
/// A file that is gone, or that no longer names the old key, is skipped with a reason;
/// any other problem is an error (nothing written).
pub(crate) fn plan_rotation(
    app: &App,
    old: &KeyRecord,
    new: &KeyRecord,
    parts: &KeyParts,
) -> anyhow::Result<Vec<Fate>> {
    let mut out = Vec::new();
    for t in &old.targets {
        let shown = t.path.display();
        match std::fs::read(&t.path) {
            // A team key's targets are on every machine that wrote one: a file not here
            // may be another machine's, and is kept for it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && old.store == StoreKind::Vault => {
                out.push(Fate::Kept(
                    t.clone(),
                    format!("delivery target {shown} is not on this machine; not rewritten, kept for the machine that wrote it (`keyctl config {} --write FILE` there rewrites it)", old.name),
                ));
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                out.push(Fate::Skipped(format!(
                    "delivery target {shown} is gone; not rewritten, forgotten"
                )));
                continue;
            }
            Ok(bytes) if memchr::memmem::find(&bytes, old.id.as_bytes()).is_none() => {
                out.push(Fate::Skipped(format!(
                    "delivery target {shown} no longer holds key {}; not rewritten, forgotten",
                    old.id
                )));
                continue;
            }
            _ => {}
        }
        let p = plan(app, new, t, parts)
            .map_err(|e| e.context(format!("delivery target {shown} cannot take the new key")))?;
        let mut t = t.clone();
        t.written_at = OffsetDateTime::now_utc();
        out.push(Fate::Rewrite(t, p));
    }
    Ok(out)
}

/// Writes every planned rewrite; on the first failure the files already rewritten get
/// their old bytes back, and the error says which file failed.
pub(crate) fn commit_all(fates: &[Fate]) -> anyhow::Result<()> {
    let mut done: Vec<&Plan> = Vec::new();
    for f in fates {
        let Fate::Rewrite(t, p) = f else { continue };
        let r = if p.changes() {
            yamlblock::commit(p, &t.path)
        } else {
            Ok(())
        };
        if let Err(e) = r {
            restore(&done);
            return Err(e.context(format!("cannot rewrite {}", t.path.display())));
        }
        done.push(p);
    }
    Ok(())
}

/// Puts the files of `plans` back as they were before they were written.
pub(crate) fn restore(plans: &[&Plan]) {
    for p in plans {
        let _ = match &p.old {
            Some(old) => crate::fsutil::write_atomic(&p.target, old.as_bytes()),
            None => std::fs::remove_file(&p.target).map_err(Into::into),
        };
    }
}

/// The plans of `fates` that were written, for [`restore`].
pub(crate) fn written(fates: &[Fate]) -> Vec<&Plan> {
    fates
        .iter()
        .filter_map(|f| match f {
            Fate::Rewrite(_, p) if p.changes() => Some(p),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_lines_replace_their_block_and_keep_the_rest() {
        let first = lines_block("# mine\nexport A=1\n", "ci", "export K=old\n");
        assert_eq!(
            first.as_str(),
            "# mine\nexport A=1\n# >>> keyctl key ci >>>\nexport K=old\n# <<< keyctl key ci <<<\n"
        );
        let second = lines_block(&first, "ci", "export K=new\n");
        assert_eq!(second.replace("new", "old"), first.as_str());
        let other = lines_block(&second, "db", "export D=1\n");
        assert!(other.starts_with(second.as_str()), "{}", other.as_str());
    }

    #[test]
    fn a_failed_rewrite_puts_back_the_files_already_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.env"), dir.path().join("b.env"));
        std::fs::write(&a, "export A=old\n").unwrap();
        std::fs::write(&b, "export B=old\n").unwrap();
        let target = |p: &Path| target_of(p, OutputFormat::Env, &Choices::default());
        let fates: Vec<Fate> = [&a, &b]
            .iter()
            .map(|p| {
                let plan = plan_text(p, Shape::Lines, "k", "export K=new\n").unwrap();
                Fate::Rewrite(target(p), plan)
            })
            .collect();
        // b changes after it was planned: its write is refused, a is put back.
        std::fs::write(&b, "export B=changed\n").unwrap();
        let e = commit_all(&fates).unwrap_err();
        assert!(format!("{e:#}").contains("b.env"), "{e:#}");
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "export A=old\n");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "export B=changed\n");
    }

    #[test]
    fn yaml_merge_keeps_other_clouds() {
        let mut doc: serde_json::Value =
            serde_yaml_ng::from_str("clouds:\n  other: {auth_type: password}\n  ci: {auth: {application_credential_id: old, x: 1}}\n").unwrap();
        let ours =
            serde_yaml_ng::from_str("clouds:\n  ci: {auth: {application_credential_id: new}}\n")
                .unwrap();
        merge(&mut doc, ours);
        assert_eq!(doc["clouds"]["other"]["auth_type"], "password");
        assert_eq!(
            doc["clouds"]["ci"]["auth"]["application_credential_id"],
            "new"
        );
    }
}
