/* isa_gate PROGRAM [ARGS...]: run PROGRAM only where the kernel set ALEXNET_CPU_ISA names is runnable (this
 * build compiled it and this CPU has it); otherwise print "SKIP: <isa> kernels not runnable on this CPU"
 * and exit 77, which meson counts as skipped. It lets tests that know nothing of instruction sets (the
 * PyTorch goldens) run once per set on the cpu-simd backend. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cpu/features.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: isa_gate PROGRAM [ARGS...] (with ALEXNET_CPU_ISA set)\n");
        return 2;
    }
    const char *isa = getenv("ALEXNET_CPU_ISA");
    an_cpu_isa selected;
    if (isa != NULL && isa[0] != '\0' && an_cpu_select_isa(&selected) != ALEXNET_OK) {
        printf("SKIP: %s kernels not runnable on this CPU (%s)\n", isa, alexnet_last_error());
        return 77;
    }
    fflush(stdout);
    execv(argv[1], argv + 1);
    perror(argv[1]);
    return 127;
}
