/* CZstd: libzstd for Swift. Every function fbk uses is a plain C function,
 * so nothing needs wrapping; this header only pins the include. */
#ifndef CZSTD_SHIM_H
#define CZSTD_SHIM_H
#include <zstd.h>
#include <zstd_errors.h>
#endif
