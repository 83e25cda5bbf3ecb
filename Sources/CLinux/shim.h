/* CLinux: libc headers the Swift Glibc module does not export.
 * <sys/xattr.h> (extended attributes) and <malloc.h> (mallopt) are not
 * part of Glibc's module map, and <spawn.h> declares its GNU extensions
 * only under _GNU_SOURCE, which the module is not built with. */
#ifndef CLINUX_SHIM_H
#define CLINUX_SHIM_H
#include <sys/types.h>
#include <sys/xattr.h>
#include <sys/sysmacros.h>
#include <sys/file.h>
#include <crypt.h>
#include <malloc.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <spawn.h>
#include "version.h"

/* A spawned program inherits no descriptor from `fd` up: glibc 2.34 has the
 * file action (FreeBSD 13 too); it is declared only under _GNU_SOURCE. */
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int fd);
static inline int CLinux_spawn_close_from(posix_spawn_file_actions_t *actions, int fd) {
    return posix_spawn_file_actions_addclosefrom_np(actions, fd);
}
/* The calling thread's name (top -H, core dumps); prctl is variadic. */
static inline int CLinux_set_thread_name(const char *name) { return prctl(PR_SET_NAME, name, 0, 0, 0); }

/* makedev/major/minor are macros. */
static inline dev_t CLinux_makedev(unsigned int ma, unsigned int mi) { return makedev(ma, mi); }

/* listxattrat(2) and getxattrat(2) (Linux 6.13): extended attributes of a
 * name relative to a directory descriptor, not following a final symbolic
 * link. syscall() is variadic and glibc has no wrappers yet; the numbers
 * are the same on x86-64, i386, arm and arm64. Older kernels: -1, ENOSYS. */
#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || defined(__arm__)
#define CLINUX_NR_GETXATTRAT 464
#define CLINUX_NR_LISTXATTRAT 465
#endif
static inline long CLinux_listxattrat(int dirfd, const char *name, char *list, size_t size) {
#ifdef CLINUX_NR_LISTXATTRAT
    return syscall(CLINUX_NR_LISTXATTRAT, dirfd, name, AT_SYMLINK_NOFOLLOW, list, size);
#else
    errno = ENOSYS;
    return -1;
#endif
}
static inline long CLinux_getxattrat(int dirfd, const char *name, const char *attribute, void *value, size_t size) {
#ifdef CLINUX_NR_GETXATTRAT
    struct { uint64_t value; uint32_t size; uint32_t flags; } args = { (uint64_t)(uintptr_t)value, (uint32_t)size, 0 };
    return syscall(CLINUX_NR_GETXATTRAT, dirfd, name, AT_SYMLINK_NOFOLLOW, attribute, &args, sizeof args);
#else
    errno = ENOSYS;
    return -1;
#endif
}
#endif
