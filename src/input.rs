//! Reading what people type: secrets from stdin or a no-echo prompt (never argv), and
//! yes/no confirmations that are never asked of a script.

use std::io::{IsTerminal, Read, Write};

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::context::Ctx;
use crate::error::{Error, usage};

const MAX_SECRET: usize = 4096;

/// Reads one secret: a hidden prompt on a terminal, else all of stdin with one trailing
/// newline removed.
pub fn read_secret(prompt: &str) -> anyhow::Result<SecretString> {
    let raw = if std::io::stdin().is_terminal() {
        Zeroizing::new(rpassword::prompt_password(prompt)?)
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
        return Err(usage("no secret given on stdin"));
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

/// Asks before a destructive step. `--yes` answers for the user; without a terminal
/// there is nobody to ask, so the command fails with its own exit code.
pub fn confirm(ctx: &Ctx, question: &str) -> anyhow::Result<()> {
    if ctx.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Error::ConfirmationRequired(format!(
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
        Err(Error::ConfirmationRequired("not confirmed; nothing was changed".into()).into())
    }
}
