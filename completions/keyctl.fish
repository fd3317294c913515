complete --keep-order --exclusive --command keyctl --arguments "(KEYCTL_COMPLETE=fish keyctl -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
