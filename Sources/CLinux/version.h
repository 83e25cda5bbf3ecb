/* fbk's version. A release changes FBK_BASE_VERSION here and tags the
 * commit v + it. `make` passes the whole version of a build with
 * -Xcc -DFBK_VERSION='"…"' (scripts/version.sh: the base version, and
 * after it +gitCOUNT.HASH when the commit is not the release's tag);
 * a plain `swift build` says BASE+dev. */
#ifndef CLINUX_VERSION_H
#define CLINUX_VERSION_H
#define FBK_BASE_VERSION "0.5.0"
#ifndef FBK_VERSION
#define FBK_VERSION FBK_BASE_VERSION "+dev"
#endif
static inline const char *CLinux_fbk_version(void) { return FBK_VERSION; }
#endif
