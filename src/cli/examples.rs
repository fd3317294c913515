//! The EXAMPLES sections of `--help`: real commands a user can paste, one set per
//! subcommand that has more than one way to be used. The man pages carry them too.

pub(crate) const TOP: &str = "\
Examples:
  keyctl create --kind api                       # mint a key, print its soda_cloud block
  keyctl create --kind api --write configuration.yml
  keyctl list                                    # every key and its status
  keyctl config ci-key --output env --export     # export lines for a shell
  keyctl run ci-key -- soda scan -d ds -c configuration.yml checks.yml
  keyctl rotate ci-key --write configuration.yml # replace a key without a gap
  keyctl doctor                                  # where secrets live, what is missing";

pub(crate) const CREATE: &str = "\
Examples:
  keyctl create --kind api --name ci --expires 90d
  keyctl create --kind api --write configuration.yml --dry-run
  keyctl create --kind api --secret-ref env --soda-version 3
  keyctl create --kind runner --remote soda        # Soda Cloud mints the runner key
  keyctl create --kind runner --output helm-set
  keyctl --json create --kind api | jq -r .secret";

pub(crate) const IMPORT: &str = "\
Examples:
  keyctl import --kind api --name ui-key --id KEY_ID            # secret at the prompt
  pbpaste | keyctl import --kind api --name ui-key --id KEY_ID  # secret on stdin
  keyctl import --kind api --name ui-key --id KEY_ID --verify soda --expires 1y";

pub(crate) const CONFIG: &str = "\
Examples:
  keyctl config ci                                  # the soda_cloud block again
  keyctl config ci --write configuration.yml
  keyctl config ci --output env --export >> .env
  keyctl config runner-1 --output k8s-secret | kubectl apply -f -
  keyctl config ci --region us --output json";

pub(crate) const REMOTE_ADD: &str = "\
Examples:
  keyctl remote add soda --type soda --region eu --user KEY_ID   # secret at the prompt
  keyctl remote add ks --url https://keystone.example:5000/v3 --user admin --project demo
  keyctl remote add ks --from-env                   # after `source openrc.sh`
  keyctl remote add ks --os-cloud mycloud           # from clouds.yaml
  keyctl remote add ovh --type http --profile ovh --url https://iam.example.ovh --auth none";

pub(crate) const ROTATE: &str = "\
Examples:
  keyctl rotate ci                                  # old key works 24h more
  keyctl rotate ci --grace 7d --write configuration.yml
  keyctl rotate ci --grace 0s                       # revoke the old key at once
  keyctl gc                                         # revoke keys past their grace period";

pub(crate) const RUN: &str = "\
Examples:
  keyctl run ci -- soda scan -d ds -c configuration.yml checks.yml
  keyctl run ci --id-var API_ID --secret-var API_SECRET -- ./deploy.sh
  keyctl run ci -- env                              # see what the command gets";

pub(crate) const REVOKE: &str = "\
Examples:
  keyctl revoke ci                                  # remotes first, then locally
  keyctl revoke ci --remote ks                      # only off remote ks
  keyctl revoke --all-expired --yes                 # for cron
  keyctl revoke ci --local-only                     # the remote is gone for good";

pub(crate) const SCAN: &str = "\
Examples:
  keyctl scan                                       # the current directory, as rg walks it
  keyctl scan --git                                 # and every commit reachable from HEAD
  keyctl scan --install-hook                        # refuse commits that add a live secret
  keyctl scan deploy/ --format sarif > keyctl.sarif # for GitHub code scanning
  keyctl scan --revoke                              # revoke what leaked, then fix the files";

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every example parses: a renamed flag cannot leave a broken example behind.
    #[test]
    fn every_example_parses() {
        for text in [
            super::TOP,
            super::CREATE,
            super::IMPORT,
            super::CONFIG,
            super::REMOTE_ADD,
            super::ROTATE,
            super::RUN,
            super::REVOKE,
            super::SCAN,
        ] {
            for line in text.lines().skip(1) {
                let line = line.split('#').next().unwrap_or(line);
                let Some(cmd) = line.split(['|', '>']).find(|p| p.contains("keyctl")) else {
                    continue;
                };
                let words: Vec<&str> = cmd.split_whitespace().collect();
                let r = crate::cli::Cli::command().try_get_matches_from(&words);
                assert!(r.is_ok(), "{cmd}: {}", r.unwrap_err());
            }
        }
    }
}
