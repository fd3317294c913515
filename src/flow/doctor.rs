//! The `keyctl doctor` workflow: which store is in use, where secrets live, and what is missing. It
//! tells the truth about plain-text storage instead of hiding it (gh's cli/cli#5961).
//! It also finds what an interrupted command can leave: secrets no key owns (a `create`
//! killed between storing the secret and writing the registry) and keys whose secret is
//! gone; `--fix` removes the orphans, after asking. The OS keyring is shared by every
//! keyctl home and other programs, so only this home's items can be orphans (see
//! `store::keyring`); the rest are listed as foreign and never touched. Removal happens
//! under the registry lock, only with a registry that names keys, and only for orphans
//! older than a grace period, since a running command stores its secret first.

use serde::Serialize;

use crate::app::App;
use crate::registry::Registry;
use crate::store::StoreChoice;
use crate::store::{Owner, StoreKind, file::FileStore};

/// What doctor found (also `doctor --json`).
#[derive(Serialize)]
pub(crate) struct Report {
    pub version: &'static str,
    pub home: String,
    pub home_source: &'static str,
    pub config_file: String,
    pub config_exists: bool,
    pub registry: String,
    pub keys: usize,
    pub keys_in_keyring: usize,
    pub keys_in_file: usize,
    pub store_choice: &'static str,
    pub store_choice_source: &'static str,
    pub keyring_available: bool,
    pub keyring_detail: String,
    pub file_store: String,
    pub file_store_exists: bool,
    /// Where `keyctl create` would put a secret now, or null when it would fail.
    pub new_secrets_go_to: Option<&'static str>,
    /// The team store, when selected or configured.
    pub vault: Option<crate::store::vault::Health>,
    /// Secrets of this home that no key or remote owns: `store:ID`.
    pub orphans: Vec<String>,
    /// Items under service `keyctl` in the OS keyring that belong to another keyctl home
    /// or another program: `keyring:ID`. Never removed.
    pub foreign: Vec<String>,
    /// Keys (not revoked) whose secret is missing from their store.
    pub missing_secrets: Vec<String>,
    /// False when keyctl runs non-dumpable with no core limit (Linux); null elsewhere.
    pub core_dumps_possible: Option<bool>,
    pub problems: Vec<String>,
}

/// What doctor is asked to do, and what only the command line knows.
pub(crate) struct DoctorRequest {
    /// Remove this home's orphaned secrets (`--fix`).
    pub fix: bool,
    /// Confirmations are answered yes (`--yes`).
    pub assume_yes: bool,
    /// How old an orphan must be before `--fix` removes it (seconds): a `create`,
    /// `rotate` or `remote add` stores its secret before the record that owns it, and may
    /// wait on a remote meanwhile (git gc keeps unreachable objects two weeks for the
    /// same reason).
    pub orphan_grace: u64,
    /// Another program named keyctl on PATH, if any.
    pub clashing_keyctl: Option<String>,
}

/// Looks at the home, its stores and what interrupted commands left; with `fix`, removes
/// this home's orphans (after asking).
pub(crate) fn diagnose(app: &App, req: &DoctorRequest) -> anyhow::Result<Report> {
    let fix = req.fix;
    let mut problems = Vec::new();
    let registry = Registry::load(&app.paths.data);
    let (keys, in_keyring, in_file) = match &registry {
        Ok(r) => {
            let n = |s| r.keys().iter().filter(|k| k.store == s).count();
            (r.keys().len(), n(StoreKind::Keyring), n(StoreKind::File))
        }
        Err(e) => {
            problems.push(format!("{e:#}"));
            (0, 0, 0)
        }
    };
    // keys.json is checked like the store: it holds the secrets' salted fingerprints and
    // their salt, so whoever reads it can test guesses offline.
    for path in [
        Registry::path_in(&app.paths.data),
        FileStore::new(&app.paths.data).path().to_path_buf(),
    ] {
        if let Err(e) = crate::fsutil::check_private(&path, true) {
            problems.push(format!("{e:#}"));
        }
    }
    if crate::fsutil::writable_by_others(&app.paths.data) {
        problems.push(format!(
            "the keyctl home {} can be written by group or others: `chmod 700 {}` fixes it",
            app.paths.data.display(),
            app.paths.data.display()
        ));
    }
    let core_dumps_possible = crate::harden::core_dumps_possible();
    if core_dumps_possible == Some(true) {
        problems.push("this keyctl could dump core with a secret in memory".into());
    }
    let probe =
        app.stores
            .get(StoreKind::Keyring)
            .and_then(|s| match s.get("keyctl-doctor-probe") {
                Ok(_) => Ok(s.location()),
                Err(e) if crate::error::kind_of(&e) == Some(crate::error::Kind::NotFound) => {
                    Ok(s.location())
                }
                Err(e) => Err(e),
            });
    let (keyring_available, keyring_detail) = match probe {
        Ok(loc) => (true, format!("answers: {loc}")),
        Err(e) => (false, format!("{e:#}")),
    };
    let fs = FileStore::new(&app.paths.data);
    let file_store_exists = fs.path().exists();
    let vault = app
        .stores
        .vault_enabled()
        .then(|| crate::store::vault::health(&app.stores));
    let vault_ok = vault.as_ref().is_some_and(|v| v.available);
    if let Some(v) = vault.as_ref().filter(|v| !v.available) {
        problems.push(format!("team store: {}", v.detail));
    }
    if vault.as_ref().is_some_and(|v| v.standby == Some(true)) {
        problems.push("the team store address reaches a standby node: unless the cluster sets disable_standby_reads = true, keys another machine created in the last ~100 ms may not be seen here".into());
    }
    let new_secrets_go_to = match (app.store, keyring_available) {
        (StoreChoice::Vault, _) => vault_ok.then_some("vault"),
        (StoreChoice::File, _) | (StoreChoice::Auto, false) => Some("file"),
        (_, true) => Some("keyring"),
        (StoreChoice::Keyring, false) => None,
    };
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("{n} {one}")
        } else {
            format!("{n} {many}")
        }
    };
    if !keyring_available && in_keyring > 0 {
        problems.push(format!(
            "{} the OS keyring, which does not answer here",
            plural(
                in_keyring,
                "key keeps its secret in",
                "keys keep their secret in"
            )
        ));
    }
    if in_file > 0 {
        problems.push(format!(
            "{} plain text in the file store {}: with an OS keyring running (e.g. gnome-keyring on the D-Bus session bus), `keyctl rotate KEY` moves each to it; a team can use --store vault",
            plural(in_file, "key keeps its secret in", "keys keep their secret in"),
            FileStore::new(&app.paths.data).path().display()
        ));
    }
    if app.store == StoreChoice::Keyring && !keyring_available {
        problems.push("--store keyring is selected but no OS keyring answers".into());
    }
    // What interrupted commands left: secrets nobody owns, keys without their secret.
    let mut orphans: Vec<(StoreKind, String)> = Vec::new();
    let mut foreign: Vec<String> = Vec::new();
    let mut missing_secrets: Vec<String> = Vec::new();
    if let Ok(reg) = &registry {
        let owned = |id: &str| named(reg, &app.remotes, id);
        // (store, IDs this home holds there), as each store lists them.
        let mut held: Vec<(StoreKind, Vec<String>)> = Vec::new();
        for kind in StoreKind::ALL {
            // A store that does not answer here was reported above.
            let Ok(store) = app.stores.get(kind) else {
                continue;
            };
            match store.held() {
                Ok(None) => {}
                Ok(Some(items)) => {
                    let mut ids = Vec::new();
                    for item in items {
                        match item.owner {
                            Owner::ThisHome => ids.push(item.id),
                            // An older keyctl's item that this registry names: claimed.
                            Owner::Untagged if owned(&item.id) => ids.push(item.id),
                            // Another home's, or another tool's: never an orphan here.
                            _ => foreign.push(format!("{}:{}", kind.as_str(), item.id)),
                        }
                    }
                    held.push((kind, ids));
                }
                Err(e) => problems.push(format!(
                    "the {} store could not be searched: {e:#}",
                    kind.as_str()
                )),
            }
        }
        for (store, ids) in &held {
            orphans.extend(
                ids.iter()
                    .filter(|id| !owned(id))
                    .map(|id| (*store, id.clone())),
            );
        }
        orphans.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
        orphans.dedup();
        for k in reg.keys().iter().filter(|k| k.revoked_at.is_none()) {
            let Some((_, ids)) = held.iter().find(|(s, _)| *s == k.store) else {
                continue;
            };
            if !ids.contains(&k.id) {
                missing_secrets.push(k.id.clone());
                problems.push(format!(
                    "key '{}' ({}) has no secret in the {} store any more: `keyctl revoke {} --local-only` records that, or `keyctl delete {}` forgets it",
                    k.name,
                    k.id,
                    k.store.as_str(),
                    k.id,
                    k.id
                ));
            }
        }
    }
    foreign.sort();
    foreign.dedup();
    if !foreign.is_empty() {
        problems.push(format!(
            "{} under service keyctl in the OS keyring {} to another keyctl home or another program; doctor leaves {} alone",
            plural(foreign.len(), "item", "items"),
            if foreign.len() == 1 { "belongs" } else { "belong" },
            if foreign.len() == 1 { "it" } else { "them" },
        ));
    }
    if !orphans.is_empty() && !fix {
        problems.push(format!(
            "{} secret{} that no key owns (left by an interrupted create): `keyctl doctor --fix` removes {} once older than {}",
            orphans.len(),
            if orphans.len() == 1 { "" } else { "s" },
            if orphans.len() == 1 { "it" } else { "them" },
            describe_grace(req.orphan_grace)
        ));
    }
    if fix && !orphans.is_empty() {
        let list: Vec<String> = orphans
            .iter()
            .map(|(s, id)| format!("{id} ({})", s.as_str()))
            .collect();
        app.confirm(
            req.assume_yes,
            &format!(
                "remove {} secret{} that no key owns: {}",
                orphans.len(),
                if orphans.len() == 1 { "" } else { "s" },
                list.join(", ")
            ),
        )?;
        let kept = remove_orphans(app, &orphans, req.orphan_grace)?;
        orphans = kept;
    }
    if let Some(other) = &req.clashing_keyctl {
        problems.push(format!(
            "{other} is another program (Debian's keyutils ships a kernel-keyring tool named keyctl); PATH order decides which one runs"
        ));
    }

    problems.dedup();
    Ok(Report {
        version: env!("CARGO_PKG_VERSION"),
        home: app.paths.data.display().to_string(),
        home_source: if app.paths.explicit {
            "--home / KEYCTL_HOME"
        } else {
            "platform default"
        },
        config_file: app.paths.config_file.display().to_string(),
        config_exists: app.paths.config_file.exists(),
        registry: Registry::path_in(&app.paths.data).display().to_string(),
        keys,
        keys_in_keyring: in_keyring,
        keys_in_file: in_file,
        store_choice: match app.store {
            StoreChoice::Auto => "auto",
            StoreChoice::Keyring => "keyring",
            StoreChoice::File => "file",
            StoreChoice::Vault => "vault",
        },
        store_choice_source: app.store_source,
        keyring_available,
        keyring_detail,
        file_store: fs.path().display().to_string(),
        file_store_exists,
        new_secrets_go_to,
        vault,
        orphans: orphans
            .iter()
            .map(|(s, id)| format!("{}:{id}", s.as_str()))
            .collect(),
        foreign,
        missing_secrets,
        core_dumps_possible,
        problems,
    })
}

fn describe_grace(secs: u64) -> String {
    if secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else {
        format!("{secs} s")
    }
}

/// Whether the registry or config.yaml names this store ID: a key, or a remote's
/// credential (`remote:NAME`, `token:NAME`).
fn named(
    reg: &Registry,
    remotes: &std::collections::BTreeMap<String, crate::remote::RemoteConfig>,
    id: &str,
) -> bool {
    reg.keys().iter().any(|k| k.id == id)
        || id
            .strip_prefix("remote:")
            .or_else(|| id.strip_prefix("token:"))
            .is_some_and(|r| remotes.contains_key(r))
}

/// Removes the orphans that are still orphans under the registry lock and older than
/// the grace period; returns those kept. A missing or empty registry removes nothing:
/// it is what a moved-aside or lost registry looks like, not a home without keys.
fn remove_orphans(
    app: &App,
    orphans: &[(StoreKind, String)],
    grace: u64,
) -> anyhow::Result<Vec<(StoreKind, String)>> {
    let locked = Registry::lock(&app.paths.data)?;
    if !locked.reg.path().exists() || locked.reg.keys().is_empty() {
        app.out.note(&format!(
            "the key registry {} is missing or empty: doctor --fix removes nothing (restore it first)",
            locked.reg.path().display()
        ));
        return Ok(orphans.to_vec());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let cutoff = now.saturating_sub(grace);
    let mut kept = Vec::new();
    for (store, id) in orphans {
        if named(&locked.reg, &app.remotes, id) {
            continue;
        }
        let removed = app.stores.get(*store)?.remove_stale(id, cutoff)?;
        if removed {
            app.out.note(&format!(
                "removed orphaned secret {id} from the {} store",
                store.as_str()
            ));
        } else {
            kept.push((*store, id.clone()));
        }
    }
    if !kept.is_empty() {
        app.out.note(&format!(
            "kept {} orphaned secret{} younger than {}: a command may still be writing {} record",
            kept.len(),
            if kept.len() == 1 { "" } else { "s" },
            describe_grace(grace),
            if kept.len() == 1 { "its" } else { "their" }
        ));
    }
    Ok(kept)
}
