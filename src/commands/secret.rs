//! `keyctl secret KEY`: the raw secret on stdout, for scripts (`$(keyctl secret ci)`).

use std::io::Write;

use secrecy::ExposeSecret;

use crate::context::Ctx;

pub(crate) fn run(ctx: &Ctx, key: &str, allow_expired: bool) -> anyhow::Result<()> {
    let (_, secret) = crate::flow::keys::usable_secret(ctx, key, allow_expired)?;
    let mut line = zeroize::Zeroizing::new(String::with_capacity(secret.expose_secret().len() + 1));
    line.push_str(secret.expose_secret());
    line.push('\n');
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(line.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
