#include "alexnet/alexnet.h"

unsigned alexnet_version_number(void) { return ALEXNET_VERSION_NUMBER; }

const char *alexnet_version_string(void) { return ALEXNET_VERSION_STRING; }
