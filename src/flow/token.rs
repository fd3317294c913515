//! Short-lived tokens (`keyctl token`): a key and its secret exchanged at a remote, under
//! the rule `secret`, `config` and `run` follow (an expired or revoked key's secret is
//! handed to no one, remotes included); and ending a token the remote issued.

use secrecy::SecretString;

use crate::app::App;
use crate::remote::Token;

/// Exchanges `key`'s secret at remote `remote` for a token.
pub(crate) fn issue(app: &App, key: &str, remote: &str) -> anyhow::Result<Token> {
    let (rec, secret) = super::keys::usable_secret(app, key, false)?;
    app.remote(remote)?.token(&rec.id, &secret)
}

/// Ends `token` at remote `remote` (where the remote has a logout).
pub(crate) fn end(app: &App, remote: &str, token: &SecretString) -> anyhow::Result<()> {
    app.remote(remote)?.logout(token)?;
    app.out
        .note(&format!("remote {remote}: the token was ended"));
    Ok(())
}
