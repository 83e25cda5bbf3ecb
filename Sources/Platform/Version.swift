// fbk's version: the one constant that `fbk --version`, the `version`
// field of every `--json` summary, the HTTP User-Agent and the Debian
// package all read. It is set at build time: Sources/CLinux/version.h
// holds the base version and `make` passes the whole one
// (scripts/version.sh).

internal import CLinux

/// The version of this build of fbk, e.g. `0.5.0` or `0.5.0+git412.4d157d0`.
public let fbkVersion = String(cString: CLinux_fbk_version())
