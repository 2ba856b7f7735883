/* run_if_available BACKEND PROGRAM [ARGS...]: exec PROGRAM when BACKEND is available, else print
 * "SKIP: no BACKEND device: <reason>" and exit 77 (meson's "skipped"; 1 with ALEXNET_GPU_TEST_REQUIRE=1). Lets tests that know nothing about
 * skipping (the PyTorch golden test) run on a GPU backend only where there is a device. The check runs in
 * this process and PROGRAM replaces it, so no GPU runtime state crosses a fork. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alexnet/alexnet.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s BACKEND PROGRAM [ARGS...]\n", argv[0]);
        return 2;
    }
    const char *backend = argv[1];
    const char *require_env = getenv("ALEXNET_GPU_TEST_REQUIRE");
    const int require = require_env != NULL && strcmp(require_env, "1") == 0;
    for (size_t i = 0; i < alexnet_backend_count(); i++) {
        alexnet_backend_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        if (alexnet_backend_get_info(i, &info) != ALEXNET_OK || strcmp(info.name, backend) != 0)
            continue;
        if (!info.available) {
            printf("SKIP: no %s device: %s\n", backend, info.description);
            /* On a machine that must have the device (tests/gpu/run-all.sh), its absence is a failure. */
            return require ? 1 : 77;
        }
        fflush(stdout);
        execv(argv[2], argv + 2);
        perror(argv[2]);
        return 1;
    }
    printf("SKIP: no backend named %s\n", backend);
    return 77;
}
