//! `keyctl scan [PATH...]`: find leaked keys ([`crate::scan`] does the finding) and say
//! whose each is and whether it still works; `--revoke` then takes the live ones back.
//! Findings go to stdout (text, JSON lines or SARIF), the summary to stderr; nothing
//! printed holds more of a secret than its prefix and last 4 characters.

use std::path::PathBuf;

use crate::cli::{ScanArgs, ScanFormat};
use crate::context::Ctx;
use crate::error::Error;
use crate::flow::known_keys;
use crate::registry::KeyRecord;
use crate::scan::report::{self, KeyInfo};
use crate::scan::{self, Finding, Known, Scanned, Skip, walk};
use crate::service::Service;

pub(crate) fn run(ctx: &Ctx, a: ScanArgs) -> anyhow::Result<()> {
    let first = a
        .paths
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("."));
    if a.install_hook {
        let me = std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("cannot tell where this keyctl is: {e}"))?;
        let path = report::install_hook(&first, &me)?;
        ctx.out.note(&format!(
            "{}: commits that add a live keyctl secret are refused (`git commit --no-verify` skips the check)",
            path.display()
        ));
        return Ok(());
    }
    let max_size = a.max_size.saturating_mul(1024 * 1024);
    let run = |known: &Known| -> anyhow::Result<(Scanned, String)> {
        let mut total = Scanned::default();
        if a.staged {
            let top = scan::git::toplevel(&first)?;
            total = scan::git::scan_staged(&top, known, max_size)?;
            let scanned = format!("the staged changes ({})", files_and_mib(&total));
            return Ok((total, scanned));
        }
        let opts = walk::WalkOptions {
            paths: if a.paths.is_empty() {
                vec![first.clone()]
            } else {
                a.paths.clone()
            },
            hidden: !a.no_hidden,
            no_ignore: a.no_ignore,
            max_size,
        };
        let spinner = ctx.out.wait("scanning files");
        total.merge(walk::scan_paths(&opts, known));
        drop(spinner);
        let mut scanned = files_and_mib(&total);
        if a.git {
            let spinner = ctx.out.wait("scanning git history");
            let (h, commits) = scan::git::scan_history(&first, known, max_size, a.all)?;
            drop(spinner);
            scanned.push_str(&format!(
                " and {commits} commit{} ({} blob{})",
                if commits == 1 { "" } else { "s" },
                h.files,
                if h.files == 1 { "" } else { "s" }
            ));
            total.merge(h);
        }
        Ok((total, scanned))
    };
    let ((mut total, mut scanned), kk) =
        known_keys::scan(ctx, ctx.team_check.lock().expect("team check").take(), run)?;
    let (keys, records) = known_keys::name(ctx, &kk, &mut total.findings);
    for (path, why) in &total.skipped {
        let detail = match why {
            Skip::Unreadable(e) => format!(" ({})", crate::output::sanitize(e)),
            _ => String::new(),
        };
        ctx.out.debug(&format!(
            "not scanned ({}{detail}): {}",
            why.reason(),
            crate::output::sanitize(path)
        ));
    }
    if !total.skipped.is_empty() {
        scanned.push_str(&skipped_summary(&total.skipped));
    }
    let findings = total.findings;
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
    let manual = if a.revoke {
        revoke(ctx, &live, &records)?
    } else {
        Vec::new()
    };
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
    let next = if !manual.is_empty() {
        format!(
            "{} not revoked and still working in Soda Cloud, which issued {}: in Soda Cloud's UI create a new API key, `keyctl import` it, then delete the old one there; then take the secrets out of the files",
            manual.join(", "),
            if manual.len() == 1 { "it" } else { "them" }
        )
    } else if a.revoke {
        "revoked; now take them out of the files (`keyctl rotate KEY --write FILE`, or `keyctl config KEY --write FILE --secret-ref env --soda-version N` to keep the secret out)".to_string()
    } else if a.staged {
        // The pre-commit hook: the secret has not entered history yet.
        "the commit was stopped before they entered history: unstage them (`git restore --staged FILE`), keep the secret out of the file (`keyctl config KEY --write FILE --secret-ref env`), then commit again".to_string()
    } else if live.iter().any(|f| f.commit.is_some()) {
        // In history, taking it out of the files is not enough (and a deleted file has
        // nothing left to take out): every clone keeps the commit.
        "they are in git history, which every clone keeps: revoke them (`keyctl scan --git --revoke`, or `keyctl revoke KEY`) or rotate them (`keyctl rotate KEY`); editing the files does not remove them from history".to_string()
    } else {
        "revoke them (`keyctl scan --revoke`, or `keyctl revoke KEY`), then take them out of the files".to_string()
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

fn files_and_mib(s: &Scanned) -> String {
    format!(
        "{} file{}, {} MiB",
        s.files,
        if s.files == 1 { "" } else { "s" },
        s.bytes / (1024 * 1024)
    )
}

/// "; skipped 3 (2 ignored, 1 binary), -v lists them"
fn skipped_summary(skipped: &[(String, Skip)]) -> String {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for (_, why) in skipped {
        match counts.iter_mut().find(|(r, _)| *r == why.reason()) {
            Some((_, n)) => *n += 1,
            None => counts.push((why.reason(), 1)),
        }
    }
    counts.sort_unstable();
    let parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    format!(
        "; skipped {} ({}), -v lists them",
        skipped.len(),
        parts.join(", ")
    )
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
                    Some(k) => format!(
                        "key '{}' ({}) {}",
                        crate::output::sanitize(&k.name),
                        crate::output::sanitize(&k.id),
                        k.status
                    ),
                    None => "unknown keyctl key (not in this home)".into(),
                };
                let how = f
                    .encoding
                    .map(|e| format!(" ({e}-encoded)"))
                    .unwrap_or_default();
                let at = match &f.commit {
                    Some(c) => format!("{}:{}", &c[..c.len().min(12)], f.path),
                    None => f.path.clone(),
                };
                writeln!(
                    w,
                    "{}:{}:{}: {}{how} {whose}",
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

/// A key only the service that issued it can revoke, and keyctl cannot ask it to: an API
/// key made in Soda Cloud's UI and imported (no remote link; Soda Cloud offers no API to
/// delete it). Revoking it here would only forget it while it still works there.
fn issued_elsewhere(k: &KeyRecord) -> Option<String> {
    match &k.service {
        Some(Service::SodaCloud(e)) if k.remotes.is_empty() => Some(format!(
            "key '{}' ({}, Soda Cloud {})",
            crate::output::sanitize(&k.name),
            crate::output::sanitize(&k.id),
            crate::output::sanitize(&e.host)
        )),
        _ => None,
    }
}

/// `--revoke`: the live keys found, remotes first, asking on a terminal. Returns the keys
/// it must leave to the service that issued them (see [`issued_elsewhere`]).
fn revoke(ctx: &Ctx, live: &[&Finding], records: &[KeyRecord]) -> anyhow::Result<Vec<String>> {
    let found: Vec<&KeyRecord> = live
        .iter()
        .filter_map(|f| f.key.and_then(|i| records.get(i)))
        .filter(|k| k.revoked_at.is_none())
        .collect();
    let mut manual: Vec<String> = found.iter().filter_map(|k| issued_elsewhere(k)).collect();
    manual.sort();
    manual.dedup();
    let mut ids: Vec<String> = found
        .iter()
        .filter(|k| issued_elsewhere(k).is_none())
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
        return Ok(manual);
    }
    let req = crate::flow::revoke::RevokeRequest {
        keys: ids,
        remote: None,
        all_expired: false,
        local_only: false,
        jobs: 8,
        assume_yes: ctx.yes,
    };
    if let Some(r) = crate::flow::revoke::revoke(ctx, &req)? {
        r.result?;
    }
    Ok(manual)
}
