//! `keyctl run KEY -- CMD...`: run CMD with the key in its environment, so the secret
//! never passes through argv, a file or the shell. On Unix keyctl replaces itself with
//! CMD (exec): signals reach CMD directly and its exit status is the process's own.

use std::process::Command;

use secrecy::ExposeSecret;

use crate::cli::RunArgs;
use crate::context::Ctx;
use crate::error::usage;

pub(crate) fn run(ctx: &Ctx, args: RunArgs) -> anyhow::Result<()> {
    for var in [&args.id_var, &args.secret_var] {
        let ok = !var.is_empty()
            && !var.starts_with(|c: char| c.is_ascii_digit())
            && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(usage(format!(
                "invalid environment variable name {}",
                crate::output::quoted(var)
            )));
        }
    }
    if args.id_var == args.secret_var {
        return Err(usage("--id-var and --secret-var must differ"));
    }
    let (rec, secret) = crate::flow::keys::usable_secret(ctx, &args.key.key, args.allow_expired)?;
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| usage("no command given after --"))?;
    let mut cmd = Command::new(program);
    cmd.args(rest)
        .env(&args.id_var, &rec.id)
        .env(&args.secret_var, secret.expose_secret());
    ctx.out.debug(&format!(
        "running {} with {} and {} set",
        crate::output::quoted(&program.to_string_lossy()),
        args.id_var,
        args.secret_var
    ));
    let shown = crate::output::quoted(&program.to_string_lossy());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let err = cmd.exec();
        Err(anyhow::Error::new(
            crate::error::Error::command_not_started(format!("cannot run {shown}: {err}")),
        ))
    }
    #[cfg(not(unix))]
    {
        let status = cmd.status().map_err(|e| {
            anyhow::Error::new(crate::error::Error::command_not_started(format!(
                "cannot run {shown}: {e}"
            )))
        })?;
        drop(secret);
        std::process::exit(status.code().unwrap_or(1));
    }
}
