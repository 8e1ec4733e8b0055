#ifndef SUTRA_CUV_SHIM_H
#define SUTRA_CUV_SHIM_H
#include <uv.h>
#endif
