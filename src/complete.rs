//! Shell completion and the man page, both generated from the clap definitions.
//!
//! Completion is clap_complete's dynamic kind: the script a shell loads calls back into
//! `keyctl` (with `KEYCTL_COMPLETE=SHELL`) so that KEY arguments complete to the names and
//! IDs in the registry, not only to subcommands and flags. The scripts are committed under
//! `completions/`, and a test fails when they differ from what the binary prints.

use std::ffi::OsString;
use std::io::Write;

use clap_complete::engine::CompletionCandidate;
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};

use crate::app::Paths;
use crate::registry::Registry;

/// The shells `keyctl completions` writes a registration script for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

/// The variable the registration scripts set when they ask for completions.
pub(crate) const VAR: &str = "KEYCTL_COMPLETE";

/// Answers only when a shell asks: the registration scripts call `keyctl -- WORDS...`
/// with the variable set. A variable merely exported in a shell changes nothing.
/// `command` builds keyctl's clap command (the definitions in `cli`).
pub(crate) fn answer_shell(args: &[OsString], command: fn() -> clap::Command) {
    if std::env::var_os(VAR).is_some() && args.get(1).is_some_and(|a| a == "--") {
        clap_complete::CompleteEnv::with_factory(command)
            .var(VAR)
            .bin("keyctl")
            .completer("keyctl")
            .complete();
    }
}

/// Key names and IDs for KEY arguments, from the registry in KEYCTL_HOME or the default
/// home. Never fails: a missing or broken registry completes to nothing.
pub(crate) fn key_candidates() -> Vec<CompletionCandidate> {
    let home = std::env::var_os("KEYCTL_HOME").filter(|h| !h.is_empty());
    let Ok(paths) = Paths::resolve(home.as_deref().map(std::path::Path::new)) else {
        return Vec::new();
    };
    let Ok(reg) = Registry::load(&paths.data) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(reg.keys().len() * 2);
    for k in reg.keys() {
        let help = format!("{} key {}", k.kind, k.id);
        out.push(CompletionCandidate::new(OsString::from(&k.name)).help(Some(help.into())));
        out.push(CompletionCandidate::new(OsString::from(&k.id)).help(Some(k.name.clone().into())));
    }
    out
}

/// The registration script for `shell`: what `keyctl completions SHELL` prints.
pub(crate) fn script(shell: Shell) -> anyhow::Result<Vec<u8>> {
    let completer: &dyn EnvCompleter = match shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
        Shell::Powershell => &Powershell,
        Shell::Elvish => &Elvish,
    };
    let mut buf = Vec::new();
    completer.write_registration(VAR, "keyctl", "keyctl", "keyctl", &mut buf)?;
    Ok(buf)
}

pub(crate) fn print_script(shell: Shell) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(&script(shell)?)?;
    out.flush()?;
    Ok(())
}

/// The man page of `command` (keyctl's clap command), with `extra` (roff sections)
/// appended.
pub(crate) fn manpage(command: clap::Command, extra: &str) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(command).render(&mut buf)?;
    buf.extend_from_slice(extra.as_bytes());
    Ok(buf)
}

/// Every man page: `keyctl.1` and one per visible subcommand (`keyctl-create.1`,
/// `keyctl-remote-add.1`), so the references in each page's SUBCOMMANDS exist. `extra`
/// goes on the top page.
pub(crate) fn manpages(
    command: clap::Command,
    extra: &str,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut command = for_man(command);
    command.build();
    let mut out = Vec::new();
    walk(&command, "keyctl", extra, &mut out)?;
    Ok(out)
}

/// The command as man pages describe it: without clap's `help` subcommands, which
/// `--help` covers (a page per `keyctl help X` would only repeat the others).
fn for_man(command: clap::Command) -> clap::Command {
    command
        .disable_help_subcommand(true)
        .mut_subcommands(for_man)
}

fn walk(
    cmd: &clap::Command,
    name: &str,
    extra: &str,
    out: &mut Vec<(String, Vec<u8>)>,
) -> anyhow::Result<()> {
    let page = cmd.clone().display_name(name);
    out.push((format!("{name}.1"), manpage(page, extra)?));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        walk(sub, &format!("{name}-{}", sub.get_name()), "", out)?;
    }
    Ok(())
}

/// Prints the top page, or with `dir` writes every page there.
pub(crate) fn print_manpage(
    command: clap::Command,
    extra: &str,
    dir: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let Some(dir) = dir else {
        let mut out = std::io::stdout().lock();
        out.write_all(&manpage(for_man(command), extra)?)?;
        out.flush()?;
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (file, page) in manpages(command, extra)? {
        let path = dir.join(file);
        std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
