/* CLinux: libc headers the Swift Glibc module does not export.
 * <sys/xattr.h> (extended attributes) and <malloc.h> (mallopt) are not
 * part of Glibc's module map. */
#ifndef CLINUX_SHIM_H
#define CLINUX_SHIM_H
#include <sys/types.h>
#include <sys/xattr.h>
#include <sys/sysmacros.h>
#include <sys/file.h>
#include <crypt.h>
#include <malloc.h>
/* makedev/major/minor are macros. */
static inline dev_t CLinux_makedev(unsigned int ma, unsigned int mi) { return makedev(ma, mi); }
#endif
