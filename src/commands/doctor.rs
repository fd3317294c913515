//! `keyctl doctor`: the command line of the doctor workflow (`flow::doctor`): it reads
//! what only the environment says (`KEYCTL_ORPHAN_GRACE`, other keyctls on PATH), prints
//! the report, and fails when no store would take a new secret.

use crate::context::Ctx;
use crate::error::Error;
use crate::flow::doctor::{DoctorRequest, diagnose};
use crate::store::StoreChoice;

pub(crate) fn run(ctx: &Ctx, fix: bool) -> anyhow::Result<()> {
    let report = diagnose(
        ctx,
        &DoctorRequest {
            fix,
            assume_yes: ctx.yes,
            orphan_grace: orphan_grace(),
            clashing_keyctl: clashing_keyctl(),
        },
    )?;
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

/// How old an orphan must be before `doctor --fix` removes it: one day;
/// `KEYCTL_ORPHAN_GRACE` (seconds) changes it.
fn orphan_grace() -> u64 {
    std::env::var("KEYCTL_ORPHAN_GRACE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24 * 60 * 60)
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
