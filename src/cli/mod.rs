//! The command line, declared with clap's derive API and nothing else: the doc comments
//! here are the `--help` text, and completions and the man page are generated from these
//! types. Logic lives in `commands/`.

pub(crate) mod errors;
pub(crate) mod examples;
pub(crate) mod reference;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::ArgValueCandidates;

use crate::complete::Shell;
use crate::output::ColorChoice;
use crate::render::{OutputFormat, Region, SecretRef, SodaVersion};
use crate::store::StoreChoice;

/// Mint API keys, keep their secrets in the OS keyring, render ready-to-paste
/// configuration, and push keys to or revoke them on remote services.
#[derive(Debug, Parser)]
#[command(
    name = "keyctl",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = examples::TOP
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct GlobalArgs {
    /// Directory for all local state (config.yaml, the key registry, the file store)
    #[arg(
        long,
        global = true,
        env = "KEYCTL_HOME",
        hide_env_values = true,
        value_name = "DIR"
    )]
    pub home: Option<PathBuf>,
    /// Where new secrets go: the OS keyring when one answers, else a file (auto)
    #[arg(
        long,
        global = true,
        env = "KEYCTL_STORE",
        hide_env_values = true,
        value_enum
    )]
    pub store: Option<StoreChoice>,
    /// Print machine-readable JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// Print no notes or warnings on stderr (errors still are)
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Explain what happens on stderr (never secrets)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// When to color stderr (NO_COLOR is honored under auto)
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Answer yes to confirmations (needed for destructive commands without a terminal)
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum KindArg {
    /// A Soda Cloud API key (Soda Core, Soda Library)
    Api,
    /// The API key of a self-hosted Soda Runner
    Runner,
    /// Old name of `runner`
    #[value(hide = true)]
    Agent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum FormatArg {
    /// Prefixed 256-bit secret with a checksum
    Standard,
    /// 16-character access key and 32-character secret (SODA Multicloud)
    Aksk,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Mint a key, store its secret, print its configuration snippet once
    #[command(after_help = examples::CREATE)]
    Create(CreateArgs),
    /// Store a key that a service minted (secret from stdin or a no-echo prompt)
    #[command(after_help = examples::IMPORT)]
    Import(ImportArgs),
    /// Table of keys with their status
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Metadata of one key, never its secret
    Show(KeyArg),
    /// Print a key's raw secret on stdout, for scripts
    Secret(SecretArgs),
    /// Render a key's configuration snippet again from its stored secret
    #[command(after_help = examples::CONFIG)]
    Config(ConfigArgs),
    /// Forget a key locally: its secret and its registry entry
    #[command(visible_alias = "rm")]
    Delete(KeyArg),
    /// Validate a secret read from stdin, offline (prefix and checksum)
    Check,
    /// Which store is in use, where secrets live, and what is missing or left over
    Doctor(DoctorArgs),
    /// Run CMD with the key's ID and secret in its environment
    #[command(after_help = examples::RUN)]
    Run(RunArgs),
    /// Print a shell completion script; key names complete from the registry
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write every page into a directory
    #[command(hide = true)]
    Manpage(ManpageArgs),
    /// Configure remote services that keys are pushed to
    #[command(subcommand)]
    Remote(RemoteCmd),
    /// Register a key with a remote
    Push(PushArgs),
    /// Revoke keys: on their remotes first, then locally (the secret is deleted)
    #[command(after_help = examples::REVOKE)]
    Revoke(RevokeArgs),
    /// Exchange a key and its secret for a short-lived token from a remote
    Token(TokenArgs),
    /// Prove that stored keys still work against their services (exit 7 when refused)
    Verify(VerifyArgs),
    /// Replace a key: mint a successor, push and verify it, re-render; the old key is
    /// revoked after a grace period
    #[command(after_help = examples::ROTATE)]
    Rotate(RotateArgs),
    /// Revoke rotated keys whose grace period is over (as `rotate --finish`)
    Gc(GcArgs),
    /// Find leaked keys in files and git history: which key each is, and whether it
    /// still works (exit 12 when one may)
    #[command(after_help = examples::SCAN)]
    Scan(ScanArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum RemoteCmd {
    /// Add a remote (its password or application-credential secret from stdin or a
    /// no-echo prompt; kept in the secret store, never in config.yaml)
    #[command(after_help = examples::REMOTE_ADD)]
    Add(Box<RemoteAddArgs>),
    /// The configured remotes
    #[command(visible_alias = "ls")]
    List,
    /// Forget a remote and its stored credential and token
    #[command(visible_alias = "rm")]
    Remove(RemoteNameArg),
    /// Log in afresh and say as whom
    Test(RemoteNameArg),
}

#[derive(Debug, Args)]
pub(crate) struct RemoteAddArgs {
    /// A name for the remote
    pub name: String,
    /// What kind of service it is
    #[arg(long = "type", value_enum, default_value_t = crate::remote::RemoteType::Keystone)]
    pub kind: crate::remote::RemoteType,
    /// Base URL (https, or http on loopback only), e.g. https://keystone.example:5000/v3
    #[arg(long, required_unless_present_any = ["region", "from_env", "os_cloud"])]
    pub url: Option<String>,
    /// keystone: take the URL, user, project, domain, password and CA from the OS_*
    /// variables of an openrc file (flags given here win)
    #[arg(long, conflicts_with = "os_cloud")]
    pub from_env: bool,
    /// keystone: take them from cloud NAME of clouds.yaml (+ secure.yaml), where the
    /// openstack CLI finds it
    #[arg(long, value_name = "NAME")]
    pub os_cloud: Option<String>,
    /// http: a template variable of the remote, NAME=VALUE (repeatable), e.g. app_id=forepaas
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Soda Cloud region, instead of --url
    #[arg(long, value_enum, conflicts_with = "url")]
    pub region: Option<Region>,
    /// User name (keystone password auth; soda: the admin API key ID; http: Basic user)
    #[arg(long)]
    pub user: Option<String>,
    /// keystone: project name to scope tokens to (password auth)
    #[arg(long, conflicts_with = "project_id")]
    pub project: Option<String>,
    /// keystone: project ID to scope tokens to, instead of --project
    #[arg(long, value_name = "ID")]
    pub project_id: Option<String>,
    /// keystone: domain name of both the user and the project (default: the domain ID
    /// `default`, as the openstack CLI assumes)
    #[arg(long, value_name = "NAME")]
    pub domain: Option<String>,
    /// keystone: the user's domain by name (Horizon's OS_USER_DOMAIN_NAME)
    #[arg(long, value_name = "NAME", conflicts_with = "user_domain_id")]
    pub user_domain: Option<String>,
    /// keystone: the user's domain by ID
    #[arg(long, value_name = "ID")]
    pub user_domain_id: Option<String>,
    /// keystone: the project's domain by name
    #[arg(long, value_name = "NAME", conflicts_with = "project_domain_id")]
    pub project_domain: Option<String>,
    /// keystone: the project's domain by ID (Horizon's OS_PROJECT_DOMAIN_ID)
    #[arg(long, value_name = "ID")]
    pub project_domain_id: Option<String>,
    /// Authenticate with this Keystone application credential ID instead of a password
    #[arg(long, value_name = "ID", conflicts_with_all = ["user", "project", "project_id"])]
    pub application_credential: Option<String>,
    /// http: a shipped endpoint profile (multicloud, ovh); otherwise describe the
    /// endpoints under `http:` in config.yaml
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// http: how requests authenticate with the stored secret
    #[arg(long, value_enum)]
    pub auth: Option<HttpAuthArg>,
    /// http: authenticate with the token of this keystone remote (SODA Multicloud)
    #[arg(long, value_name = "NAME")]
    pub auth_remote: Option<String>,
    /// PEM file of a private CA to trust for this remote
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// How long to wait for a connection (e.g. 5s)
    #[arg(long, value_name = "DURATION")]
    pub connect_timeout: Option<String>,
    /// How long a whole request may take (e.g. 30s)
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Save without logging in first
    #[arg(long)]
    pub no_verify: bool,
    /// Replace a remote of the same name
    #[arg(long)]
    pub force: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum HttpAuthArg {
    /// HTTP Basic with --user and the secret
    Basic,
    /// Authorization: Bearer SECRET
    Bearer,
    /// X-Auth-Token: SECRET
    XAuthToken,
    /// No credential
    None,
}

#[derive(Debug, Args)]
pub(crate) struct RemoteNameArg {
    /// Remote name
    pub name: String,
}

#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    /// Key ID or unique name
    #[arg(value_name = "KEY", add = ArgValueCandidates::new(crate::complete::key_candidates))]
    pub key: String,
    /// The remote to register it with (default: `default_remote` in config.yaml, or the
    /// only remote configured)
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
    /// Make the credential belong to this user (needs an admin's remote)
    #[arg(long, value_name = "USER")]
    pub for_user: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    /// Key IDs or unique names
    #[arg(value_name = "KEY", required_unless_present = "all_expired", add = ArgValueCandidates::new(crate::complete::key_candidates))]
    pub keys: Vec<String>,
    /// Only this remote (default: every remote the key was pushed to)
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
    /// Every expired key that is not revoked yet
    #[arg(long)]
    pub all_expired: bool,
    /// Revoke locally without asking the remotes (when a remote is gone for good)
    #[arg(long)]
    pub local_only: bool,
    /// How many remote requests at once
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub jobs: usize,
}

#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// Key ID or unique name
    #[arg(
        value_name = "KEY",
        required_unless_present_any = ["finish", "due"],
        conflicts_with_all = ["finish", "due"],
        add = ArgValueCandidates::new(crate::complete::key_candidates)
    )]
    pub key: Option<String>,
    /// How long the old key keeps working after the rotation: 24h, 7d, 0s (at once); units
    /// s, min, h, d, w, mo, y
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub grace: String,
    /// Do not check the new key with a token exchange on its remotes
    #[arg(long)]
    pub no_verify: bool,
    /// Revoke the rotated keys whose grace period is over, instead of rotating
    #[arg(long)]
    pub finish: bool,
    /// With --finish: revoke a rotated key even when its successor was never verified
    #[arg(long)]
    pub unverified: bool,
    /// Rotate every key whose rotation policy (--rotate-every) says it is due; quiet when
    /// none is (for cron and CI)
    #[arg(long, conflicts_with = "finish")]
    pub due: bool,
    /// Set KEY's rotation policy instead of rotating it (90d, 12w, 1y), or clear it (never)
    #[arg(long, value_name = "DURATION")]
    pub every: Option<String>,
    #[command(flatten)]
    pub render: RenderArgs,
}

#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// How many remote requests at once
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub jobs: usize,
    /// Revoke a rotated key even when its successor was never verified (`rotate
    /// --no-verify`, and no `keyctl verify` since)
    #[arg(long)]
    pub unverified: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// Key ID or unique name
    #[arg(
        value_name = "KEY",
        required_unless_present = "logout",
        add = ArgValueCandidates::new(crate::complete::key_candidates)
    )]
    pub key: Option<String>,
    /// The remote that issues the token (default: `default_remote` in config.yaml, or the
    /// only remote configured)
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
    /// End a token instead (read from stdin or a no-echo prompt), e.g. OVH's
    /// DELETE /iam/logout
    #[arg(long)]
    pub logout: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// Remove secrets that no key in the registry owns (left by an interrupted create);
    /// asks first on a terminal, needs --yes otherwise
    #[arg(long)]
    pub fix: bool,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Key ID or unique name
    #[arg(
        value_name = "KEY",
        required_unless_present = "all",
        conflicts_with = "all",
        add = ArgValueCandidates::new(crate::complete::key_candidates)
    )]
    pub key: Option<String>,
    /// Every key that is not expired or revoked
    #[arg(long)]
    pub all: bool,
    /// Check on this remote (default: the remotes the key was pushed to, or the only Soda
    /// remote for an imported key)
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// What the key is for
    #[arg(long, value_enum, default_value_t = KindArg::Api)]
    pub kind: KindArg,
    /// A unique name (default: KIND-xxxxxx)
    #[arg(long)]
    pub name: Option<String>,
    /// Free text shown by `show`
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// When the key expires: a duration from now (90d, 12h, 2w, 6mo, 1y, 1h30min; units s,
    /// min, h, d, w, mo, y; a bare m is refused as ambiguous), a date (2027-01-31, end of
    /// that day UTC), an RFC 3339 time (2027-01-31T12:00:00Z), or never
    #[arg(long, value_name = "WHEN", default_value = "never")]
    pub expires: String,
    /// Rotation policy: `keyctl rotate --due` rotates the key once this long has passed
    /// since it was made (90d, 12w, 1y; units as for --expires), or never
    #[arg(long, value_name = "DURATION")]
    pub rotate_every: Option<String>,
    /// A permission the key carries (repeatable)
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Shape of the ID/secret pair
    #[arg(long, value_enum, default_value_t = FormatArg::Standard)]
    pub format: FormatArg,
    /// Secret prefix for services that expect their own, e.g. sk_soika_
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Push the new key to this remote (a failed push leaves the key local only); a Soda
    /// remote mints the key itself, and a runner key uses the only Soda remote by default
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
    /// Let the remote mint the pair and store what it shows once (needs --remote; implied
    /// for Soda Cloud)
    #[arg(long, requires = "remote")]
    pub server_side: bool,
    /// Make the credential belong to this user (needs --remote with an admin's remote)
    #[arg(long, value_name = "USER", requires = "remote")]
    pub for_user: Option<String>,
    /// keystone: have Keystone create an application credential (the key the openstack
    /// CLI and SDKs use) for the remote's user and project; it prints a clouds.yaml entry
    #[arg(
        long,
        requires = "remote",
        help_heading = "Keystone application credential"
    )]
    pub app_credential: bool,
    /// A role the application credential gets (repeatable; default: all of the user's
    /// roles on the project)
    #[arg(
        long = "role",
        value_name = "ROLE",
        requires = "app_credential",
        help_heading = "Keystone application credential"
    )]
    pub roles: Vec<String>,
    /// Let the application credential create and delete application credentials and trusts
    /// (off by default, as in Keystone)
    #[arg(
        long,
        requires = "app_credential",
        help_heading = "Keystone application credential"
    )]
    pub unrestricted: bool,
    /// A JSON or YAML file with the application credential's access rules (a list of
    /// {service, method, path})
    #[arg(
        long,
        value_name = "FILE",
        requires = "app_credential",
        help_heading = "Keystone application credential"
    )]
    pub access_rules: Option<PathBuf>,
    #[command(flatten)]
    pub render: RenderArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    #[command(flatten)]
    pub key: KeyArg,
    /// Render an expired or revoked key too (refused otherwise, exit 8)
    #[arg(long)]
    pub allow_expired: bool,
    #[command(flatten)]
    pub render: RenderArgs,
}

/// How a key becomes pasteable text; shared by `create` and `config`.
#[derive(Debug, Args)]
#[command(next_help_heading = "Configuration snippet")]
pub(crate) struct RenderArgs {
    /// What to print (default yaml: the soda_cloud block for api keys, Helm values for runners)
    #[arg(short, long, value_enum, value_name = "FMT")]
    pub output: Option<OutputFormat>,
    /// Soda Cloud region: eu is cloud.soda.io, us is cloud.us.soda.io
    #[arg(long, value_enum, value_name = "REGION")]
    pub region: Option<Region>,
    /// Soda Cloud host name, bare (no https://, path or port), instead of --region
    #[arg(long, value_name = "HOST", conflicts_with = "region")]
    pub host: Option<String>,
    /// Soda Cloud port, written as a quoted string (Soda Core 4 reads no other form)
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,
    /// Soda Cloud URL scheme: https (Soda Core's default) or http
    #[arg(long, value_name = "SCHEME")]
    pub scheme: Option<String>,
    /// Write the snippet into this file, keeping the rest of it (created 0600 if missing):
    /// the soda_cloud block of a Soda configuration (every other byte kept), a clouds.yaml
    /// entry or Helm values merged into a file of that kind, env/openrc lines between
    /// marker comments. The file is remembered: `rotate` rewrites it with the successor
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// With --write: print the change as a diff (secrets masked) and write nothing
    #[arg(long, requires = "write")]
    pub dry_run: bool,
    /// With --output env: `export NAME=value` lines
    #[arg(long)]
    pub export: bool,
    /// literal: the secret itself; env: a reference to $SODA_API_KEY_SECRET, so the file
    /// holds no secret (needs --soda-version)
    #[arg(long, value_enum, value_name = "REF", default_value_t = SecretRef::Literal)]
    pub secret_ref: SecretRef,
    /// Soda Core major version the env reference is written for: 3 reads ${VAR}, 4 reads
    /// ${env.VAR}
    #[arg(long, value_enum, value_name = "N")]
    pub soda_version: Option<SodaVersion>,
}

impl RenderArgs {
    /// Where the snippet goes, for [`crate::flow::deliver`].
    pub(crate) fn target(&self) -> crate::flow::deliver::Target {
        crate::flow::deliver::Target {
            write: self.write.clone(),
            dry_run: self.dry_run,
        }
    }

    /// The choices as plain values for `render`.
    pub(crate) fn choices(&self) -> crate::render::Choices {
        crate::render::Choices {
            output: self.output,
            region: self.region,
            host: self.host.clone(),
            port: self.port.clone(),
            scheme: self.scheme.clone(),
            export: self.export,
            secret_ref: self.secret_ref,
            soda_version: self.soda_version,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// What the key is for
    #[arg(long, value_enum, default_value_t = KindArg::Api)]
    pub kind: KindArg,
    /// A unique name
    #[arg(long)]
    pub name: String,
    /// The key ID the service showed
    #[arg(long)]
    pub id: String,
    /// Free text shown by `show`
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// When the key expires: a duration from now (90d, 12h, 2w, 6mo, 1y, 1h30min; units s,
    /// min, h, d, w, mo, y; a bare m is refused as ambiguous), a date (2027-01-31, end of
    /// that day UTC), an RFC 3339 time (2027-01-31T12:00:00Z), or never
    #[arg(long, value_name = "WHEN", default_value = "never")]
    pub expires: String,
    /// A permission the key carries (repeatable)
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Rotation policy: `keyctl rotate --due` rotates the key once this long has passed
    /// since it was made (90d, 12w, 1y; units as for --expires), or never
    #[arg(long, value_name = "DURATION")]
    pub rotate_every: Option<String>,
    /// Check the key on this remote right after storing it (as `keyctl verify`)
    #[arg(long, value_name = "NAME")]
    pub verify: Option<String>,
    /// Soda Cloud region the key was made in: eu is cloud.soda.io, us is cloud.us.soda.io
    #[arg(long, value_enum, value_name = "REGION")]
    pub region: Option<Region>,
    /// Soda Cloud host the key was made on, bare, instead of --region
    #[arg(long, value_name = "HOST", conflicts_with = "region")]
    pub host: Option<String>,
    /// Soda Cloud port (a private installation)
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,
    /// Soda Cloud URL scheme: https (default) or http
    #[arg(long, value_name = "SCHEME")]
    pub scheme: Option<String>,
    /// Write the key's snippet into this file as `keyctl config KEY --write FILE` does
    /// (checked before the key is kept); the file is remembered and `rotate` rewrites it
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// The snippet's form for --write (as `keyctl config --output`)
    #[arg(short = 'o', long, value_enum, value_name = "FMT", requires = "write")]
    pub output: Option<OutputFormat>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only keys of this kind
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// Include revoked keys
    #[arg(long)]
    pub all: bool,
    /// Only keys that expire within WINDOW (7d, 12h, 1mo); exit 11 when there are any
    #[arg(long, value_name = "WINDOW")]
    pub expiring: Option<String>,
    /// Compare with the credentials on this remote
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct KeyArg {
    /// Key ID or unique name
    #[arg(value_name = "KEY", add = ArgValueCandidates::new(crate::complete::key_candidates))]
    pub key: String,
}

#[derive(Debug, Args)]
pub(crate) struct SecretArgs {
    #[command(flatten)]
    pub key: KeyArg,
    /// Print the secret even if the key is expired or revoked
    #[arg(long)]
    pub allow_expired: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub key: KeyArg,
    /// Run even if the key is expired or revoked
    #[arg(long)]
    pub allow_expired: bool,
    /// Environment variable that receives the key ID
    #[arg(long, value_name = "NAME", default_value = "SODA_API_KEY_ID")]
    pub id_var: String,
    /// Environment variable that receives the secret
    #[arg(long, value_name = "NAME", default_value = "SODA_API_KEY_SECRET")]
    pub secret_var: String,
    /// The command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// Files and directories to scan (default: the current directory)
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Also every commit reachable from HEAD, merges included: a secret deleted later is
    /// still leaked
    #[arg(long, conflicts_with = "staged")]
    pub git: bool,
    /// With --git: every ref (branches, tags, the stash), not only HEAD
    #[arg(long, requires = "git")]
    pub all: bool,
    /// Only what the index would commit (for a pre-commit hook)
    #[arg(long)]
    pub staged: bool,
    /// Write a pre-commit hook that runs `keyctl scan --staged` (never over another hook)
    #[arg(long, conflicts_with_all = ["git", "staged", "revoke"])]
    pub install_hook: bool,
    /// Hidden files and directories are scanned by default (.env, .github/); this is
    /// accepted for older scripts
    #[arg(long, hide = true, conflicts_with = "no_hidden")]
    pub hidden: bool,
    /// Do not look into hidden files and directories (the .git directory never is)
    #[arg(long)]
    pub no_hidden: bool,
    /// Do not respect .gitignore and .ignore files
    #[arg(long)]
    pub no_ignore: bool,
    /// Skip files larger than this many MiB
    #[arg(long, value_name = "MIB", default_value_t = 50)]
    pub max_size: u64,
    /// Report format: text (PATH:LINE:COL lines), json (one object per line), sarif
    /// (GitHub code scanning)
    #[arg(long, value_enum, default_value_t = ScanFormat::Text)]
    pub format: ScanFormat,
    /// Also fail (exit 12) when only revoked or expired secrets are found
    #[arg(long)]
    pub strict: bool,
    /// Then revoke the live keys found (remotes first, as `keyctl revoke`)
    #[arg(long)]
    pub revoke: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ScanFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Debug, Args)]
pub(crate) struct ManpageArgs {
    /// Write keyctl.1 and a page per subcommand (keyctl-create.1, ...) here
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: Shell,
}
