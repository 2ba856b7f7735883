/* Check (libcheck) assertions and the runner shared by the test programs. Header-only, so that the
 * test_support library itself does not depend on Check. The assertions are macros, so a failure names the
 * line of the test that made it. */
#ifndef AN_TEST_CHECK_H
#define AN_TEST_CHECK_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/alexnet.h"
#include "test_support.h"

/* Every block of the test_counting_allocator `counter` (a pointer) was freed, each with the size it was
 * allocated with. `label` (a string) names the case in the failure message. */
#define test_assert_no_leaks_in(counter, label)                                                                 \
    do {                                                                                                         \
        const test_counting_allocator *counter_ = (counter);                                                     \
        ck_assert_msg(counter_->live_blocks == 0, "%s%s%zu blocks (%zu bytes) leaked", (label),                  \
                      (label)[0] != '\0' ? ": " : "", counter_->live_blocks, counter_->live_bytes);              \
        ck_assert_msg(counter_->size_mismatches == 0, "%s%s%zu free() calls with a wrong size", (label),         \
                      (label)[0] != '\0' ? ": " : "", counter_->size_mismatches);                                \
    } while (0)
#define test_assert_no_leaks(counter) test_assert_no_leaks_in((counter), "")

/* `expression` (evaluated once) returned ALEXNET_OK; otherwise the failure shows the status and message. */
#define test_assert_ok(expression)                                                                               \
    do {                                                                                                         \
        alexnet_status status_ = (expression);                                                                   \
        ck_assert_msg(status_ == ALEXNET_OK, "status %d (%s): %s", (int)status_, alexnet_status_string(status_), \
                      alexnet_last_error());                                                                     \
    } while (0)

/* `expression` (evaluated once) failed with `want` and a message containing `needle`. */
#define test_assert_fails_with(expression, want, needle)                                                         \
    do {                                                                                                         \
        alexnet_status status_ = (expression);                                                                   \
        ck_assert_msg(status_ == (want), "status %d (%s), wanted %d; message: %s", (int)status_,                 \
                      alexnet_status_string(status_), (int)(want), alexnet_last_error());                        \
        ck_assert_msg(alexnet_last_error()[0] != '\0', "empty message");                                         \
        ck_assert_msg(strstr(alexnet_last_error(), (needle)) != NULL, "message \"%s\" lacks \"%s\"",             \
                      alexnet_last_error(), (needle));                                                           \
    } while (0)

/* Run every test of `suite` (CK_NORMAL output), free the runner, and return the process exit status. */
static inline int test_run_suite(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
