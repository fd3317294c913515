//! keyctl: mint API keys, keep their secrets in the OS keyring, render ready-to-paste
//! configuration, push keys to and revoke them on remote services.
//!
//! `run` is the whole program: refuse secrets in argv, parse, resolve settings, dispatch
//! to one module per subcommand, print any error once, and map it to an exit code.

mod app;
mod cli;
mod commands;
mod complete;
mod context;
mod error;
mod expiry;
mod flow;
mod fsutil;
mod harden;
mod input;
mod key;
mod mask;
mod net;
mod output;
mod registry;
mod remote;
mod render;
mod scan;
mod service;
pub mod store;
mod yamlblock;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::output::Output;

pub fn run(args: Vec<OsString>) -> ExitCode {
    // Scripts probe `keyctl --version` often; answer it before clap builds the whole
    // command tree (about half of the start-up time). Same text as clap's.
    if args.len() == 2 && (args[1] == "--version" || args[1] == "-V") {
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "keyctl {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    // A shell asking for completions (KEYCTL_COMPLETE=bash keyctl -- ...) is answered here
    // and the process exits; otherwise this costs one environment lookup.
    complete::answer_shell(&args, <Cli as clap::CommandFactory>::command);
    harden::no_core_dumps();
    if let Some(pos) = secret_in_args(&args) {
        eprintln!(
            "keyctl: error: argument {pos} looks like a keyctl secret; secrets are never taken from the command line (shell history, process table): pipe it on stdin"
        );
        return ExitCode::from(error::code::USAGE);
    }
    // Started now, while the command line is parsed: see `context::early_team_check`.
    let team_check = context::early_team_check(&args);
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => return clap_error(e, &args),
    };
    let out = Output::new(
        cli.global.json,
        cli.global.quiet,
        cli.global.verbose,
        cli.global.color,
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
    );
    let result = context::Ctx::new(&cli.global, out.clone()).and_then(|ctx| {
        *ctx.team_check.lock().expect("team check") = team_check;
        commands::dispatch(&ctx, cli.command)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if error::is_broken_pipe(&e) => ExitCode::SUCCESS,
        // `list --expiring`'s exit 11 is an answer, not a failure: a plain note.
        Err(e) if error::kind_of(&e) == Some(error::Kind::Expiring) => {
            out.note(&output::sanitize(&format!("{e:#}")));
            error::exit_code(&e)
        }
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!(
                "{} {}",
                out.paint("keyctl: error:", "31"),
                output::sanitize(&msg.replace('\n', " "))
            );
            error::exit_code(&e)
        }
    }
}

/// Position (1-based) of an argument with a keyctl secret anywhere in it (a whole
/// argument, `--flag=VALUE`, or inside a description or scope).
fn secret_in_args(args: &[OsString]) -> Option<usize> {
    args.iter()
        .skip(1)
        .position(|a| key::contains_secret(&a.to_string_lossy()))
        .map(|i| i + 1)
}

/// clap's errors as one line (see `cli::errors`); help and version go to stdout as usual,
/// and a bare `keyctl` prints the short help on stderr, with or without `KEYCTL_HOME`.
fn clap_error(e: clap::Error, args: &[OsString]) -> ExitCode {
    use clap::CommandFactory as _;
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::from(error::code::OK)
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            // `keyctl remote` alone: the help of that group, not of keyctl.
            let mut cmd = Cli::command();
            cmd.build();
            let group = args
                .iter()
                .skip(1)
                .filter_map(|a| a.to_str())
                .find(|a| !a.starts_with('-'))
                .and_then(|name| cmd.find_subcommand(name).cloned());
            let help = match group {
                Some(mut sub) if sub.has_subcommands() => {
                    let name = sub.get_name().to_string();
                    sub = sub.bin_name(format!("keyctl {name}"));
                    sub.render_help()
                }
                _ => Cli::command().render_help(),
            };
            eprint!("{help}");
            ExitCode::from(error::code::USAGE)
        }
        _ => {
            let line = cli::errors::explain(&e, &Cli::command(), args);
            eprintln!("keyctl: error: {}", output::sanitize(&line));
            ExitCode::from(error::code::USAGE)
        }
    }
}
