//! `keyctl secret KEY`: the raw secret on stdout, for scripts (`$(keyctl secret ci)`).

use std::io::Write;

use secrecy::ExposeSecret;
use time::OffsetDateTime;

use crate::context::Ctx;
use crate::error::Error;
use crate::store;

pub fn run(ctx: &Ctx, key: &str) -> anyhow::Result<()> {
    let reg = crate::catalog::load_for(ctx, key)?;
    let k = reg.resolve(key)?;
    let status = k.status(OffsetDateTime::now_utc());
    if !status.is_usable() {
        return Err(Error::Inactive(format!(
            "key '{}' ({}) is {}",
            k.name,
            k.id,
            status.as_str()
        ))
        .into());
    }
    let secret = store::open(ctx, k.store)?.get(&k.id)?;
    let mut line = zeroize::Zeroizing::new(String::with_capacity(secret.expose_secret().len() + 1));
    line.push_str(secret.expose_secret());
    line.push('\n');
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(line.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
