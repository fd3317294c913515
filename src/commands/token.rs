//! `keyctl token KEY --remote R`: exchange the key and its secret for a short-lived
//! token. The token goes to stdout alone (for `$(keyctl token ...)`), or with its expiry
//! under `--json` (`expires_at` is null where the service does not say it, as OVH's does
//! not); the secret itself never leaves the machine where the service checks a signature
//! (Keystone). `--logout` ends a token read from stdin. The work is `flow::token`'s.

use secrecy::ExposeSecret;
use serde::Serialize;

use crate::cli::TokenArgs;
use crate::context::Ctx;

pub(crate) fn run(ctx: &Ctx, a: TokenArgs) -> anyhow::Result<()> {
    let remote = ctx.pick_remote(a.remote.as_deref(), "token")?;
    if a.logout {
        // The token is a secret: stdin or a no-echo prompt, never argv.
        let token = crate::input::read_secret("Token to end (input hidden): ")?;
        return crate::flow::token::end(ctx, &remote, &token);
    }
    let key = a.key.as_deref().unwrap_or_default();
    let t = crate::flow::token::issue(ctx, key, &remote)?;
    if ctx.out.json {
        #[derive(Serialize)]
        struct View<'a> {
            token: &'a str,
            #[serde(with = "time::serde::rfc3339::option")]
            expires_at: Option<time::OffsetDateTime>,
        }
        return crate::output::print_json(
            &ctx.out,
            &View {
                token: t.token.expose_secret(),
                expires_at: t.expires_at,
            },
        );
    }
    use std::io::Write as _;
    let mut line = zeroize::Zeroizing::new(t.token.expose_secret().to_string());
    line.push('\n');
    std::io::stdout().write_all(line.as_bytes())?;
    Ok(())
}
