//! `keyctl check`: validate a secret from stdin offline, by its prefix and checksum, the
//! way a secret scanner would. The secret is never echoed.

use secrecy::ExposeSecret;
use serde::Serialize;

use crate::context::Ctx;
use crate::error::Error;
use crate::input;
use crate::key::{self, Kind};

pub(crate) fn run(ctx: &Ctx) -> anyhow::Result<()> {
    // Input that cannot be a secret at all (several lines, not UTF-8, too long) is an
    // invalid secret like any other: exit 9, not a usage error.
    let read = input::read_secret("Secret to check (input hidden): ");
    let result = match &read {
        Ok(secret) => key::check(secret.expose_secret()),
        Err(e) if crate::remote::is_usage(e) => Err(format!("{e:#}")),
        Err(_) => return read.map(|_| ()),
    };
    if ctx.out.json {
        #[derive(Serialize)]
        struct Report<'a> {
            valid: bool,
            format: Option<&'a str>,
            prefix: Option<&'a str>,
            kind: Option<Kind>,
            reason: Option<&'a str>,
        }
        let r = match &result {
            Ok(r) => Report {
                valid: true,
                format: Some(r.format.as_str()),
                prefix: Some(&r.prefix),
                kind: r.kind,
                reason: None,
            },
            Err(e) => Report {
                valid: false,
                format: None,
                prefix: None,
                kind: None,
                reason: Some(e),
            },
        };
        crate::output::print_json(&ctx.out, &r)?;
    }
    match result {
        Ok(r) => {
            if !ctx.out.json {
                let what = match (r.format, r.kind) {
                    (key::Format::Aksk, _) => "an aksk secret".to_string(),
                    (_, Some(k)) => format!("a keyctl {k} secret (prefix {})", r.prefix),
                    (_, None) => format!("a keyctl secret with prefix '{}'", r.prefix),
                };
                use std::io::Write;
                writeln!(std::io::stdout(), "valid: {what}")?;
            }
            Ok(())
        }
        Err(reason) => Err(Error::invalid_secret(format!("invalid secret: {reason}")).into()),
    }
}
