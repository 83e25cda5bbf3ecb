/* CFuse: libfuse3's high-level API for `fbk mount` (Debian's libfuse3-dev).
 * fuse_main is a macro; fuse_main_real is what it calls. */
#ifndef CFUSE_SHIM_H
#define CFUSE_SHIM_H
#define FUSE_USE_VERSION 31
#include <fuse.h>

static inline int CFuse_main(int argc, char *argv[], const struct fuse_operations *op) {
    return fuse_main_real(argc, argv, op, sizeof(*op), NULL);
}
static inline uint64_t CFuse_fh(struct fuse_file_info *fi) { return fi->fh; }
static inline void CFuse_set_fh(struct fuse_file_info *fi, uint64_t fh) { fi->fh = fh; fi->keep_cache = 1; }
static inline int CFuse_fill(fuse_fill_dir_t filler, void *buf, const char *name) { return filler(buf, name, NULL, 0, (enum fuse_fill_dir_flags)0); }
#endif
