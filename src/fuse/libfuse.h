// The one place that includes libfuse's low-level API, so every file of the
// adapter compiles against the same API version: 3.14 (Debian 12), whose
// fuse_session_loop_mt takes the opaque fuse_loop_config of 3.12 and whose
// ioctl handler takes an unsigned command (API 35 and later).
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif

#include <fuse_lowlevel.h>
