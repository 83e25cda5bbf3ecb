// fbk's version: the one constant that `fbk --version`, the `version`
// field of every `--json` summary and the HTTP User-Agent all read.
// A release changes it here (and tags the commit `v` + this).

/// The version of this build of fbk.
public let fbkVersion = "0.4.0"
