//! `keyctl doctor`: which store is in use, where secrets live, and what is missing. It
//! tells the truth about plain-text storage instead of hiding it (gh's cli/cli#5961).
//! It also finds what an interrupted command can leave: secrets no key owns (a `create`
//! killed between storing the secret and writing the registry) and keys whose secret is
//! gone; `--fix` removes the orphans, after asking.

use serde::Serialize;

use crate::context::Ctx;
use crate::error::Error;
use crate::registry::Registry;
use crate::store::StoreChoice;
use crate::store::{SecretStore, StoreKind, file::FileStore};

#[derive(Serialize)]
struct Report {
    version: &'static str,
    home: String,
    home_source: &'static str,
    config_file: String,
    config_exists: bool,
    registry: String,
    keys: usize,
    keys_in_keyring: usize,
    keys_in_file: usize,
    store_choice: &'static str,
    store_choice_source: &'static str,
    keyring_available: bool,
    keyring_detail: String,
    file_store: String,
    file_store_exists: bool,
    /// Where `keyctl create` would put a secret now, or null when it would fail.
    new_secrets_go_to: Option<&'static str>,
    /// The team store, when selected or configured.
    vault: Option<crate::store::vault::Health>,
    /// Secrets that no key or remote owns: `store:ID`.
    orphans: Vec<String>,
    /// Keys (not revoked) whose secret is missing from their store.
    missing_secrets: Vec<String>,
    /// False when keyctl runs non-dumpable with no core limit (Linux); null elsewhere.
    core_dumps_possible: Option<bool>,
    problems: Vec<String>,
}

pub fn run(ctx: &Ctx, fix: bool) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let registry = Registry::load(&ctx.paths.data);
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
    for (path, secret) in [
        (Registry::path_in(&ctx.paths.data), false),
        (FileStore::new(&ctx.paths.data).path().to_path_buf(), true),
    ] {
        if let Err(e) = crate::fsutil::check_private(&path, secret) {
            problems.push(format!("{e:#}"));
        }
    }
    if crate::fsutil::writable_by_others(&ctx.paths.data) {
        problems.push(format!(
            "the keyctl home {} can be written by group or others: `chmod 700 {}` fixes it",
            ctx.paths.data.display(),
            ctx.paths.data.display()
        ));
    }
    let core_dumps_possible = crate::harden::core_dumps_possible();
    if core_dumps_possible == Some(true) {
        problems.push("this keyctl could dump core with a secret in memory".into());
    }
    let probe = ctx
        .stores
        .keyring()
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
    let fs = FileStore::new(&ctx.paths.data);
    let file_store_exists = fs.path().exists();
    let vault = ctx
        .stores
        .vault_enabled()
        .then(|| crate::store::vault::health(&ctx.stores));
    let vault_ok = vault.as_ref().is_some_and(|v| v.available);
    if let Some(v) = vault.as_ref().filter(|v| !v.available) {
        problems.push(format!("team store: {}", v.detail));
    }
    if vault.as_ref().is_some_and(|v| v.standby == Some(true)) {
        problems.push("the team store address reaches a standby node: unless the cluster sets disable_standby_reads = true, keys another machine created in the last ~100 ms may not be seen here".into());
    }
    let new_secrets_go_to = match (ctx.store, keyring_available) {
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
            FileStore::new(&ctx.paths.data).path().display()
        ));
    }
    if ctx.store == StoreChoice::Keyring && !keyring_available {
        problems.push("--store keyring is selected but no OS keyring answers".into());
    }
    // What interrupted commands left: secrets nobody owns, keys without their secret.
    let mut orphans: Vec<(StoreKind, String)> = Vec::new();
    let mut missing_secrets: Vec<String> = Vec::new();
    if let Ok(reg) = &registry {
        let owned = |id: &str| {
            reg.keys().iter().any(|k| k.id == id)
                || id
                    .strip_prefix("remote:")
                    .or_else(|| id.strip_prefix("token:"))
                    .is_some_and(|r| ctx.remotes.contains_key(r))
        };
        let mut held: Vec<(StoreKind, Vec<String>)> = Vec::new();
        if file_store_exists && crate::fsutil::check_private(fs.path(), true).is_ok() {
            match fs.ids() {
                Ok(ids) => held.push((StoreKind::File, ids)),
                Err(e) => problems.push(format!("{e:#}")),
            }
        }
        if keyring_available {
            match ctx.stores.keyring().and_then(|k| k.ids()) {
                Ok(ids) => held.push((StoreKind::Keyring, ids)),
                Err(e) => problems.push(format!("the keyring could not be searched: {e:#}")),
            }
        }
        for (store, ids) in &held {
            orphans.extend(
                ids.iter()
                    .filter(|id| !owned(id))
                    .map(|id| (*store, id.clone())),
            );
        }
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
    if !orphans.is_empty() && !fix {
        problems.push(format!(
            "{} secret{} that no key owns (left by an interrupted create): `keyctl doctor --fix` removes {}",
            orphans.len(),
            if orphans.len() == 1 { "" } else { "s" },
            if orphans.len() == 1 { "it" } else { "them" }
        ));
    }
    if fix && !orphans.is_empty() {
        let list: Vec<String> = orphans
            .iter()
            .map(|(s, id)| format!("{id} ({})", s.as_str()))
            .collect();
        crate::input::confirm(
            ctx.yes,
            &format!(
                "remove {} secret{} that no key owns: {}",
                orphans.len(),
                if orphans.len() == 1 { "" } else { "s" },
                list.join(", ")
            ),
        )?;
        for (store, id) in &orphans {
            ctx.stores.get(*store)?.delete(id)?;
            ctx.out.note(&format!(
                "removed orphaned secret {id} from the {} store",
                store.as_str()
            ));
        }
        orphans.clear();
    }
    if let Some(other) = clashing_keyctl() {
        problems.push(format!(
            "{other} is another program (Debian's keyutils ships a kernel-keyring tool named keyctl); PATH order decides which one runs"
        ));
    }

    let report = Report {
        version: env!("CARGO_PKG_VERSION"),
        home: ctx.paths.data.display().to_string(),
        home_source: if ctx.paths.explicit {
            "--home / KEYCTL_HOME"
        } else {
            "platform default"
        },
        config_file: ctx.paths.config_file.display().to_string(),
        config_exists: ctx.paths.config_file.exists(),
        registry: Registry::path_in(&ctx.paths.data).display().to_string(),
        keys,
        keys_in_keyring: in_keyring,
        keys_in_file: in_file,
        store_choice: match ctx.store {
            StoreChoice::Auto => "auto",
            StoreChoice::Keyring => "keyring",
            StoreChoice::File => "file",
            StoreChoice::Vault => "vault",
        },
        store_choice_source: ctx.store_source,
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
        missing_secrets,
        core_dumps_possible,
        problems,
    };
    if ctx.out.json {
        crate::output::print_json(&ctx.out, &report)?;
    } else {
        let r = &report;
        let lines = [
            ("keyctl", r.version.to_string()),
            ("home", format!("{} ({})", r.home, r.home_source)),
            (
                "config",
                format!(
                    "{}{}",
                    r.config_file,
                    if r.config_exists { "" } else { " (absent)" }
                ),
            ),
            (
                "registry",
                format!(
                    "{} ({} key{}: {} in keyring, {} in file)",
                    r.registry,
                    r.keys,
                    if r.keys == 1 { "" } else { "s" },
                    r.keys_in_keyring,
                    r.keys_in_file
                ),
            ),
            (
                "store",
                format!("{} (from {})", r.store_choice, r.store_choice_source),
            ),
            ("keyring", r.keyring_detail.clone()),
            (
                "file store",
                format!(
                    "{} (plain text, 0600){}",
                    r.file_store,
                    if r.file_store_exists {
                        ""
                    } else {
                        ", not created yet"
                    }
                ),
            ),
            (
                "new secrets",
                r.new_secrets_go_to
                    .map_or("nowhere: `create` would fail".into(), |s| {
                        format!("go to the {s} store")
                    }),
            ),
        ];
        let mut rows = lines.to_vec();
        if let Some(v) = &r.vault {
            rows.push(("team store", v.detail.clone()));
        }
        rows.extend(report.problems.iter().map(|p| ("problem", p.clone())));
        crate::output::print_fields(&rows)?;
    }
    if report.new_secrets_go_to.is_none() {
        if let Some(v) = report.vault.filter(|_| ctx.store == StoreChoice::Vault) {
            return Err(Error::store_unavailable(v.detail).into());
        }
        return Err(Error::store_unavailable(report.keyring_detail).into());
    }
    Ok(())
}

/// Another `keyctl` earlier or later on PATH that is not this binary.
fn clashing_keyctl() -> Option<String> {
    let me = std::env::current_exe().ok()?.canonicalize().ok()?;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("keyctl"))
        .filter(|p| p.is_file())
        .find(|p| p.canonicalize().ok().as_ref() != Some(&me))
        .map(|p| p.display().to_string())
}
