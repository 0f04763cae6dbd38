/* KVSlab native kernels. Every entry point trusts its arguments: the Java side validates them first. */
#ifndef KVSLAB_H
#define KVSLAB_H
#include <stdint.h>

/* Version of the ABI below; Java checks it at load time. */
int32_t kvs_abi_version(void);

#endif
