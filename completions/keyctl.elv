
set edit:completion:arg-completer[keyctl] = { |@words|
    var index = (count $words)
    set index = (- $index 1)

    put (env _CLAP_IFS="\n" _CLAP_COMPLETE_INDEX=(to-string $index) KEYCTL_COMPLETE="elvish" keyctl -- $@words) | to-lines
}

