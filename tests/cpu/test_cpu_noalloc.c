/* No C-library allocation during inference on cpu-simd, seen from outside the library: this program links
 * the SHARED libalexnet and defines malloc, calloc, realloc, free, posix_memalign, aligned_alloc and
 * memalign itself (forwarding to glibc's __libc_* entry points), so every allocation the library, its
 * thread pool or the C library make on its behalf lands here. Inside a window around alexnet_infer and
 * alexnet_classify_images on a context with num_threads = 2 every call is counted, and the count must
 * be zero. The kernel set is ALEXNET_CPU_ISA's; one this CPU cannot run is skipped (exit 77). */
#include <check.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/alexnet.h"

/* Under AddressSanitizer (or ThreadSanitizer) the sanitizer owns malloc & co.: defining them here would
 * break it, so the test is skipped there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define AN_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define AN_SANITIZED 1
#endif
#endif

#ifndef AN_SANITIZED
/* glibc's own allocator entry points, which its public names normally resolve to. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_memalign(size_t alignment, size_t size);

static atomic_int window_open;
static atomic_size_t window_calls;

static void note_call(void)
{
    if (atomic_load_explicit(&window_open, memory_order_relaxed))
        atomic_fetch_add_explicit(&window_calls, 1, memory_order_relaxed);
}

void *malloc(size_t size)
{
    note_call();
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size)
{
    note_call();
    return __libc_calloc(count, size);
}

void *realloc(void *ptr, size_t size)
{
    note_call();
    return __libc_realloc(ptr, size);
}

void free(void *ptr)
{
    if (ptr != NULL)
        note_call();
    __libc_free(ptr);
}

void *memalign(size_t alignment, size_t size)
{
    note_call();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size)
{
    note_call();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size)
{
    note_call();
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0)
        return 22; /* EINVAL */
    void *ptr = __libc_memalign(alignment, size);
    if (ptr == NULL)
        return 12; /* ENOMEM */
    *out = ptr;
    return 0;
}

#else
static atomic_int window_open;
static atomic_size_t window_calls;
static void *raw_malloc(size_t size) { return malloc(size); }
static void raw_free(void *ptr) { free(ptr); }
#endif

#ifndef AN_SANITIZED
/* the test's own buffers, outside the counting */
static void *raw_malloc(size_t size) { return __libc_malloc(size); }
static void raw_free(void *ptr) { __libc_free(ptr); }
#endif

static void open_window(void)
{
    atomic_store(&window_calls, 0);
    atomic_store(&window_open, 1);
}

static size_t close_window(void)
{
    atomic_store(&window_open, 0);
    return atomic_load(&window_calls);
}

START_TEST(interposition_sees_the_library)
{
    /* the counter must see the library's own allocations, or a zero below would prove nothing */
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.variant = ALEXNET_VARIANT_TORCHVISION;
    alexnet_model *model = NULL;
    open_window();
    ck_assert_int_eq(alexnet_model_create(&options, 1, &model), ALEXNET_OK);
    size_t calls = close_window();
    ck_assert_msg(calls > 0, "model creation made no allocation visible here: the interposition does not work");
    alexnet_model_destroy(model);
}
END_TEST

START_TEST(inference_and_classification_allocate_nothing)
{
    alexnet_model_options model_options;
    alexnet_model_options_init(&model_options);
    model_options.variant = ALEXNET_VARIANT_TORCHVISION;
    alexnet_model *model = NULL;
    ck_assert_int_eq(alexnet_model_create(&model_options, 1, &model), ALEXNET_OK);
    alexnet_context_options options;
    alexnet_context_options_init(&options);
    options.backend = "cpu-simd";
    options.batch = 3;
    options.num_threads = 2;
    alexnet_context *context = NULL;
    ck_assert_msg(alexnet_context_create(model, &options, &context) == ALEXNET_OK, "%s", alexnet_last_error());

    enum { PIXELS = 3 * 224 * 224, W = 320, H = 240 };
    float *input = raw_malloc(3 * PIXELS * sizeof *input);
    for (size_t i = 0; i < 3 * (size_t)PIXELS; i++)
        input[i] = (float)((i * 2654435761u) >> 20) / 4096.0f - 0.5f;
    static float logits[3 * 1000], probs[3 * 1000];
    uint8_t *pixels = raw_malloc(2 * (size_t)W * H * 3);
    for (size_t i = 0; i < 2 * (size_t)W * H * 3; i++)
        pixels[i] = (uint8_t)(i * 7 + (i >> 9));
    alexnet_image images[2] = {{pixels, W, H, W * 3, ALEXNET_PIXEL_RGB8},
                               {pixels + (size_t)W * H * 3, W, H, W * 3, ALEXNET_PIXEL_RGB8}};
    alexnet_class_score top[2 * 5];

    /* warm-up outside the window: the first run wakes the pool's worker for the first time */
    ck_assert_int_eq(alexnet_infer(context, input, 3, logits, probs), ALEXNET_OK);

    open_window();
    alexnet_status infer3 = alexnet_infer(context, input, 3, logits, probs);
    alexnet_status infer1 = alexnet_infer(context, input, 1, logits, NULL);
    alexnet_status classify = alexnet_classify_images(context, images, 2, NULL, 5, top);
    size_t calls = close_window();
    ck_assert_int_eq(infer3, ALEXNET_OK);
    ck_assert_int_eq(infer1, ALEXNET_OK);
    ck_assert_int_eq(classify, ALEXNET_OK);
    ck_assert_msg(calls == 0, "%zu C-library allocation calls during inference and classification", calls);

    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    raw_free(input);
    raw_free(pixels);
}
END_TEST

int main(void)
{
#ifdef AN_SANITIZED
    printf("SKIP: malloc interposition is not possible under a sanitizer, which owns the allocator\n");
    return 77;
#endif
    const char *isa = getenv("ALEXNET_CPU_ISA");
    for (size_t i = 0; i < alexnet_backend_count(); i++) {
        alexnet_backend_info info;
        info.struct_size = sizeof info;
        if (alexnet_backend_get_info(i, &info) == ALEXNET_OK && strcmp(info.name, "cpu-simd") == 0 &&
            !info.available) {
            printf("SKIP: %s kernels not runnable on this CPU (%s)\n", isa ? isa : "selected", info.description);
            return 77;
        }
    }
    Suite *suite = suite_create("cpu_noalloc");
    TCase *tc = tcase_create("noalloc");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, interposition_sees_the_library);
    tcase_add_test(tc, inference_and_classification_allocate_nothing);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? 0 : 1;
}
