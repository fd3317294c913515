//! `keyctl scan [PATH...]`: find leaked keys ([`crate::scan`] does the finding) and say
//! whose each is and whether it still works; `--revoke` then takes the live ones back.
//! Findings go to stdout (text, JSON lines or SARIF), the summary to stderr; nothing
//! printed holds more of a secret than its prefix and last 4 characters.

use std::path::PathBuf;

use secrecy::ExposeSecret;
use time::OffsetDateTime;

use crate::cli::{ScanArgs, ScanFormat};
use crate::context::Ctx;
use crate::error::Error;
use crate::registry::{KeyRecord, Registry, StoreKind};
use crate::scan::report::{self, KeyInfo};
use crate::scan::{self, Finding, Known, walk};

pub fn run(ctx: &Ctx, a: ScanArgs) -> anyhow::Result<()> {
    let first = a
        .paths
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("."));
    if a.install_hook {
        let path = report::install_hook(&first)?;
        ctx.out.note(&format!(
            "{}: commits that add a live keyctl secret are refused (`git commit --no-verify` skips the check)",
            path.display()
        ));
        return Ok(());
    }
    let (known, keys, records) = known_keys(ctx)?;
    let max_size = a.max_size.saturating_mul(1024 * 1024);
    let mut findings: Vec<Finding> = Vec::new();
    let scanned = if a.staged {
        let top = scan::git::toplevel(&first)?;
        findings = scan::git::scan_staged(&top, &known, max_size)?;
        "the staged changes".to_string()
    } else {
        let opts = walk::WalkOptions {
            paths: if a.paths.is_empty() {
                vec![first.clone()]
            } else {
                a.paths.clone()
            },
            hidden: a.hidden,
            no_ignore: a.no_ignore,
            max_size,
        };
        let spinner = ctx.out.wait("scanning files");
        let w = walk::scan_paths(&opts, &known);
        drop(spinner);
        for u in &w.unreadable {
            ctx.out.debug(&format!("not scanned: {u}"));
        }
        findings.extend(w.findings);
        let mut scanned = format!(
            "{} file{}, {} MiB",
            w.files,
            if w.files == 1 { "" } else { "s" },
            w.bytes / (1024 * 1024)
        );
        if a.git {
            let spinner = ctx.out.wait("scanning git history");
            let (h, commits) = scan::git::scan_history(&first, &known, max_size)?;
            drop(spinner);
            findings.extend(h);
            scanned.push_str(&format!(" and {commits} commits"));
        }
        scanned
    };
    print(ctx, a.format, &findings, &keys)?;

    let live: Vec<&Finding> = findings
        .iter()
        .filter(|f| report::is_live(f, &keys))
        .collect();
    let dead = findings.len() - live.len();
    if findings.is_empty() {
        ctx.out.note(&format!("no keyctl secret in {scanned}"));
        return Ok(());
    }
    if a.revoke {
        revoke(ctx, &live, &records)?;
    }
    let files = |fs: &[&Finding]| {
        let mut v: Vec<&str> = fs.iter().map(|f| f.path.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    if live.is_empty() {
        let msg = format!(
            "{dead} revoked or expired secret{} (scanned {scanned}): they no longer work; remove them when convenient",
            if dead == 1 { "" } else { "s" }
        );
        if a.strict {
            return Err(Error::secret_found(msg).into());
        }
        ctx.out.note(&msg);
        return Ok(());
    }
    let next = if a.revoke {
        "revoked; now take them out of the files (`keyctl rotate KEY --write FILE`, or `keyctl config KEY --write FILE --secret-ref env --soda-version N` to keep the secret out)"
    } else {
        "revoke them (`keyctl scan --revoke`, or `keyctl revoke KEY`), then take them out of the files"
    };
    Err(Error::secret_found(format!(
        "{} secret{} that may still work, in {} file{} (scanned {scanned}): {next}",
        live.len(),
        if live.len() == 1 { "" } else { "s" },
        files(&live),
        if files(&live) == 1 { "" } else { "s" },
    ))
    .into())
}

/// Every key this home knows, by fingerprint. Local keys stored before fingerprints
/// existed get theirs now (their secret read once, the fingerprint saved); team keys by
/// the fingerprint on their team record, under the team's salt (no secret read).
fn known_keys(ctx: &Ctx) -> anyhow::Result<(Known, Vec<KeyInfo>, Vec<KeyRecord>)> {
    let now = OffsetDateTime::now_utc();
    let salt = {
        let mut reg = Registry::lock(&ctx.paths.data)?;
        // Written back only when something was added: a scan is otherwise read-only.
        let mut changed = reg.reg.scan_salt().is_none();
        let salt = reg.reg.ensure_scan_salt();
        let missing: Vec<(String, StoreKind)> = reg
            .reg
            .keys()
            .iter()
            .filter(|k| k.fingerprint.is_none() && k.revoked_at.is_none())
            .map(|k| (k.id.clone(), k.store))
            .collect();
        for (id, store) in missing {
            match ctx.stores.get(store).and_then(|s| s.get(&id)) {
                Ok(secret) => {
                    let fp = reg.reg.fingerprint_of(secret.expose_secret());
                    if let Some(k) = reg.get_mut(&id) {
                        k.fingerprint = Some(fp);
                        changed = true;
                    }
                }
                Err(e) => ctx.out.debug(&format!("key {id} not fingerprinted: {e:#}")),
            }
        }
        if changed {
            reg.save()?;
        }
        salt
    };
    let catalog = crate::flow::catalog::load(ctx)?;
    let mut known = Known::new(salt);
    if let Some(team) = crate::flow::catalog::team_salt(ctx) {
        known.add_salt(team);
    }
    let mut keys = Vec::new();
    let mut records = Vec::new();
    for k in catalog.keys() {
        let i = keys.len();
        let status = k.status(now, ctx.warn_window).as_str().to_string();
        match (&k.fingerprint, k.store) {
            (Some(fp), _) => {
                if let Some(h) = scan::from_hex(&fp.hmac) {
                    known.add(h, fp.len, !fp.checksum, i);
                }
            }
            (None, StoreKind::Vault) => {
                ctx.out.debug(&format!(
                    "team key {} has no fingerprint on its record (an older keyctl made it)",
                    k.id
                ));
                continue;
            }
            _ => continue,
        }
        keys.push(KeyInfo {
            id: k.id.clone(),
            name: k.name.clone(),
            status,
        });
        records.push(k.clone());
    }
    Ok((known, keys, records))
}

fn print(
    ctx: &Ctx,
    format: ScanFormat,
    findings: &[Finding],
    keys: &[KeyInfo],
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let format = if ctx.out.json && format == ScanFormat::Text {
        ScanFormat::Json
    } else {
        format
    };
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    match format {
        ScanFormat::Sarif => {
            serde_json::to_writer_pretty(&mut w, &report::sarif(findings, keys))?;
            writeln!(w)?;
        }
        ScanFormat::Json => {
            for f in findings {
                serde_json::to_writer(&mut w, &report::finding_json(f, keys))?;
                writeln!(w)?;
            }
        }
        ScanFormat::Text => {
            for f in findings {
                let whose = match f.key.and_then(|i| keys.get(i)) {
                    Some(k) => format!("key '{}' ({}) {}", k.name, k.id, k.status),
                    None => "unknown keyctl key (not in this home)".into(),
                };
                let at = match &f.commit {
                    Some(c) => format!("{}:{}", &c[..c.len().min(12)], f.path),
                    None => f.path.clone(),
                };
                writeln!(
                    w,
                    "{}:{}:{}: {} {whose}",
                    crate::output::sanitize(&at),
                    f.line,
                    f.col,
                    f.masked
                )?;
            }
        }
    }
    w.flush()?;
    Ok(())
}

/// `--revoke`: the live keys found, remotes first, asking on a terminal.
fn revoke(ctx: &Ctx, live: &[&Finding], records: &[KeyRecord]) -> anyhow::Result<()> {
    let mut ids: Vec<String> = live
        .iter()
        .filter_map(|f| f.key.and_then(|i| records.get(i)))
        .filter(|k| k.revoked_at.is_none())
        .map(|k| k.id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    let unknown = live.iter().filter(|f| f.key.is_none()).count();
    if unknown > 0 {
        ctx.out.warn(&format!(
            "{unknown} secret{} found belong{} to no key of this home: revoke {} where {} made",
            if unknown == 1 { "" } else { "s" },
            if unknown == 1 { "s" } else { "" },
            if unknown == 1 { "it" } else { "them" },
            if unknown == 1 { "it was" } else { "they were" },
        ));
    }
    if ids.is_empty() {
        return Ok(());
    }
    let req = crate::flow::revoke::RevokeRequest {
        keys: ids,
        remote: None,
        all_expired: false,
        local_only: false,
        jobs: 8,
        assume_yes: ctx.yes,
    };
    match crate::flow::revoke::revoke(ctx, &req)? {
        Some(r) => r.result,
        None => Ok(()),
    }
}
