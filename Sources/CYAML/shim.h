/* CYAML: Debian's libyaml (libyaml-0-2), which reads fbk.conf and
 * check.conf. Every function fbk uses is a plain C function, so nothing
 * needs wrapping; this header only pins the include. */
#ifndef CYAML_SHIM_H
#define CYAML_SHIM_H
#include <yaml.h>
#endif
