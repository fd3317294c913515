//! clap's parse errors, said the keyctl way: one line that names what is wrong and the
//! next step ("keyctl show needs KEY, a key ID or name: keyctl show KEY"), the closest
//! suggestion first, and a usage line built from the definitions, so an option that
//! came from the environment (`KEYCTL_HOME`) is never shown as if it were required.

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// What a bare placeholder means, for "needs KEY, a key ID or name".
fn meaning(arg: &str) -> (&'static str, &'static str) {
    match arg {
        "KEY" => (", a key ID or name", "; `keyctl list` shows them"),
        "NAME" => (", a name", ""),
        "CMD" => (
            ", the command to run after --",
            "; e.g. keyctl run KEY -- env",
        ),
        "SHELL" => (", a shell (bash, zsh, fish, powershell, elvish)", ""),
        _ => ("", ""),
    }
}

fn strings(e: &clap::Error, kind: ContextKind) -> Vec<String> {
    match e.get(kind) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        Some(ContextValue::StyledStr(s)) => vec![s.to_string()],
        Some(ContextValue::StyledStrs(v)) => v.iter().map(ToString::to_string).collect(),
        _ => Vec::new(),
    }
}

/// `<KEY>`, `--kind <KIND>` -> `KEY`, `--kind`.
fn bare(arg: &str) -> String {
    let a = arg.trim();
    let a = a.split_whitespace().next().unwrap_or(a);
    a.trim_start_matches('<')
        .trim_end_matches('>')
        .trim_end_matches("...")
        .trim_end_matches('>')
        .to_string()
}

/// The subcommand path the command line names (`["remote", "add"]`): words that are
/// subcommands (or their aliases) of the one before, flags skipped.
fn path_of(root: &clap::Command, args: &[std::ffi::OsString]) -> Vec<String> {
    let mut cmd = root;
    let mut path = Vec::new();
    for a in args.iter().skip(1) {
        let a = a.to_string_lossy();
        if a == "--" {
            break;
        }
        if a.starts_with('-') {
            continue;
        }
        match cmd.find_subcommand(a.as_ref()) {
            Some(sub) => {
                path.push(sub.get_name().to_string());
                cmd = sub;
            }
            None if cmd.has_subcommands() && path.is_empty() => continue,
            None => break,
        }
    }
    path
}

/// The usage line of `path`, from the definitions alone: `keyctl show [OPTIONS] <KEY>`.
pub(crate) fn usage(root: &clap::Command, path: &[String]) -> String {
    let mut cmd = root.clone();
    let mut names = vec![cmd.get_name().to_string()];
    for p in path {
        let Some(sub) = cmd.find_subcommand(p).cloned() else {
            break;
        };
        names.push(sub.get_name().to_string());
        cmd = sub;
    }
    let mut cmd = cmd.bin_name(names.join(" "));
    let text = cmd.render_usage().to_string();
    text.trim()
        .strip_prefix("Usage:")
        .unwrap_or(&text)
        .trim()
        .to_string()
}

/// The one line for a clap error (without the `keyctl: error: ` prefix).
pub(crate) fn explain(
    e: &clap::Error,
    root: &clap::Command,
    args: &[std::ffi::OsString],
) -> String {
    let path = path_of(root, args);
    let cmd = std::iter::once("keyctl".to_string())
        .chain(path.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let usage = usage(root, &path);
    match e.kind() {
        ErrorKind::MissingRequiredArgument => {
            let missing: Vec<String> = strings(e, ContextKind::InvalidArg)
                .iter()
                .map(|a| bare(a))
                .collect();
            match missing.as_slice() {
                [one] => {
                    let (what, next) = meaning(one);
                    format!("{cmd} needs {one}{what}: {usage}{next}")
                }
                many => format!("{cmd} needs {}: {usage}", many.join(" and ")),
            }
        }
        ErrorKind::InvalidSubcommand => {
            let given = strings(e, ContextKind::InvalidSubcommand).join(" ");
            // clap lists suggestions closest last.
            let mut near = strings(e, ContextKind::SuggestedSubcommand);
            near.reverse();
            match near.first() {
                Some(best) => format!(
                    "unknown command '{given}': did you mean {best}? (`{cmd} --help` lists the commands)"
                ),
                None => format!("unknown command '{given}' (`{cmd} --help` lists the commands)"),
            }
        }
        ErrorKind::UnknownArgument => {
            let given = strings(e, ContextKind::InvalidArg).join(" ");
            let near = strings(e, ContextKind::SuggestedArg);
            if path.first().is_some_and(|p| p == "run") && !given.starts_with('-') {
                return format!(
                    "{cmd}: the command to run goes after --: {usage} (e.g. keyctl run KEY -- env)"
                );
            }
            match near.last() {
                Some(best) => {
                    format!("{cmd} does not take '{given}': did you mean {best}? {usage}")
                }
                None => format!("{cmd} does not take '{given}': {usage}"),
            }
        }
        _ => {
            // clap's own words, squeezed to one line, with our usage line.
            let text = e.render().to_string();
            let mut parts: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| {
                    !l.is_empty()
                        && !l.starts_with("For more information")
                        && !l.starts_with("Usage:")
                })
                .map(|l| l.strip_prefix("error: ").unwrap_or(l).to_string())
                .collect();
            parts.push(usage);
            parts.join("; ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn line(args: &[&str]) -> String {
        let root = crate::cli::Cli::command();
        let e = root.clone().try_get_matches_from(args).unwrap_err();
        let args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
        explain(&e, &root, &args)
    }

    #[test]
    fn a_missing_key_names_what_it_is_and_where_to_find_one() {
        assert_eq!(
            line(&["keyctl", "show"]),
            "keyctl show needs KEY, a key ID or name: keyctl show <KEY>; `keyctl list` shows them"
        );
    }

    #[test]
    fn the_closest_command_comes_first() {
        assert_eq!(
            line(&["keyctl", "--home", "h", "crate"]),
            "unknown command 'crate': did you mean create? (`keyctl --help` lists the commands)"
        );
    }

    #[test]
    fn run_without_the_double_dash_says_where_the_command_goes() {
        let l = line(&["keyctl", "run", "ci", "env"]);
        assert!(
            l.starts_with("keyctl run: the command to run goes after --: keyctl run"),
            "{l}"
        );
    }

    #[test]
    fn an_unknown_flag_gets_a_suggestion() {
        let l = line(&["keyctl", "list", "--al"]);
        assert!(
            l.starts_with("keyctl list does not take '--al': did you mean --all?"),
            "{l}"
        );
    }
}
