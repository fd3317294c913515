//! Reading what people type: secrets from stdin or a no-echo prompt (never argv), and
//! yes/no confirmations that are never asked of a script.

use std::io::{IsTerminal, Read, Write};

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::error::{Error, usage};

const MAX_SECRET: usize = 4096;

/// Reads one secret: a hidden prompt on a terminal, else all of stdin with one trailing
/// newline removed.
pub(crate) fn read_secret(prompt: &str) -> anyhow::Result<SecretString> {
    let at_prompt = std::io::stdin().is_terminal();
    let raw = if at_prompt {
        #[cfg(unix)]
        echo_guard::arm();
        match rpassword::prompt_password(prompt) {
            Ok(s) => Zeroizing::new(s),
            // Ctrl-D: the prompt line has no newline of its own yet.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                eprintln!();
                return Err(usage("no secret typed (the prompt was closed with Ctrl-D)"));
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        let mut buf = Zeroizing::new(Vec::new());
        std::io::stdin()
            .take(MAX_SECRET as u64 + 3)
            .read_to_end(&mut buf)?;
        let text =
            std::str::from_utf8(&buf).map_err(|_| usage("the secret on stdin is not UTF-8"))?;
        Zeroizing::new(text.to_owned())
    };
    let s = raw
        .strip_suffix("\r\n")
        .or_else(|| raw.strip_suffix('\n'))
        .unwrap_or(&raw);
    if s.is_empty() {
        return Err(usage(if at_prompt {
            "no secret typed at the prompt"
        } else {
            "no secret given on stdin"
        }));
    }
    if s.len() > MAX_SECRET {
        return Err(usage(format!(
            "the secret is longer than {MAX_SECRET} bytes"
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(usage(
            "the secret contains control characters or more than one line",
        ));
    }
    Ok(SecretString::from(s.to_owned()))
}

/// The no-echo prompt turns the terminal's echo off; Ctrl-C (or a hang-up, or TERM)
/// there would leave it off for the shell. A handler puts the saved settings back, then
/// lets the signal do what it does by default.
#[cfg(unix)]
mod echo_guard {
    use std::sync::OnceLock;

    static SAVED: OnceLock<(libc::c_int, libc::termios)> = OnceLock::new();

    extern "C" fn restore(sig: libc::c_int) {
        if let Some((fd, t)) = SAVED.get() {
            // SAFETY: tcsetattr, signal and raise are async-signal-safe; `t` is a copy
            // made before the handler was installed and never changed after.
            unsafe {
                libc::tcsetattr(*fd, libc::TCSANOW, t);
                libc::signal(sig, libc::SIG_DFL);
                libc::raise(sig);
            }
        }
    }

    pub(super) fn arm() {
        // SAFETY: plain libc calls on a file descriptor we opened; the termios struct is
        // plain data filled by tcgetattr.
        unsafe {
            let fd = libc::open(c"/dev/tty".as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
            if fd < 0 {
                return;
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 || SAVED.set((fd, t)).is_err() {
                libc::close(fd);
                return;
            }
            let handler = restore as extern "C" fn(libc::c_int) as libc::sighandler_t;
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
                libc::signal(sig, handler);
            }
        }
    }
}

/// Asks a person before a destructive step. Workflows are given one (`App::prompter`), as
/// gh injects its prompter, so they never read the terminal themselves and a test can
/// answer for them. `--yes` is the caller's business: it asks only when it must.
pub(crate) trait Prompter: Send + Sync + std::fmt::Debug {
    /// Ok when the person agreed; else [`Error::confirmation_required`] (exit 10).
    fn confirm(&self, question: &str) -> anyhow::Result<()>;
}

/// Asks on the terminal; without one there is nobody to ask: "pass --yes".
#[derive(Debug)]
pub(crate) struct TerminalPrompter;

impl Prompter for TerminalPrompter {
    fn confirm(&self, question: &str) -> anyhow::Result<()> {
        confirm(false, question)
    }
}

/// Answers every question the same way without a terminal (the in-process tests).
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct FixedAnswer(pub bool);

#[cfg(test)]
impl Prompter for FixedAnswer {
    fn confirm(&self, question: &str) -> anyhow::Result<()> {
        if self.0 {
            Ok(())
        } else {
            Err(Error::confirmation_required(format!(
                "{question}: answered no; nothing was changed"
            ))
            .into())
        }
    }
}

/// Asks before a destructive step. `--yes` answers for the user; without a terminal
/// there is nobody to ask, so the command fails with its own exit code.
pub(crate) fn confirm(yes: bool, question: &str) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Error::confirmation_required(format!(
            "{question} needs confirmation and stdin is not a terminal: pass --yes"
        ))
        .into());
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    if matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Error::confirmation_required("not confirmed; nothing was changed").into())
    }
}
