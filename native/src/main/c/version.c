#include "kvslab.h"
int32_t kvs_abi_version(void) { return 2; }
