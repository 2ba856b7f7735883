/* The struct_size rules of docs/ABI.md, at every public function that takes an options struct:
 *  - struct_size equal to this library's layout: accepted;
 *  - smaller (an uninitialised or truncated struct): ALEXNET_E_INVALID_ARGUMENT, naming the struct;
 *  - larger with every byte beyond the known layout zero (a newer header, no new field used): accepted, and
 *    the library reads nothing beyond struct_size and copies nothing beyond its own layout;
 *  - larger with a non-zero byte beyond the known layout (a new field this library cannot honour):
 *    ALEXNET_E_UNSUPPORTED.
 * Each struct sits at the end of a heap block of exactly struct_size bytes, so AddressSanitizer (the sanitizer
 * build) catches a read beyond it. The training structs: alexnet_dataset_options (alexnet_dataset_create and
 * the IDX loader), alexnet_trainer_options (alexnet_trainer_create) and alexnet_augment_options (through
 * alexnet_trainer_options.augment, freed right after creation: the trainer keeps its own copy). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/alexnet.h"
#include "test_support.h"
#include "tiny_weights.h"

#define EXTRA 24 /* bytes a "newer header" appends */

/* A copy of `object` (known_size bytes) in a block of exactly struct_size bytes, with struct_size set and the
 * bytes beyond known_size zero, or ending in 1 when nonzero_tail. */
static void *sized_copy(const void *object, size_t known_size, size_t struct_size, int nonzero_tail)
{
    unsigned char *block = calloc(1, struct_size > known_size ? struct_size : known_size);
    ck_assert_ptr_nonnull(block);
    memcpy(block, object, known_size < struct_size ? known_size : struct_size);
    if (struct_size >= sizeof(size_t))
        memcpy(block, &struct_size, sizeof struct_size);
    if (nonzero_tail && struct_size > known_size)
        block[struct_size - 1] = 1;
    return block;
}

static void assert_status(alexnet_status got, alexnet_status want, const char *needle, const char *what)
{
    ck_assert_msg(got == want, "%s: status %d (%s), wanted %d; message: %s", what, (int)got,
                  alexnet_status_string(got), (int)want, alexnet_last_error());
    if (needle != NULL)
        ck_assert_msg(strstr(alexnet_last_error(), needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what,
                      alexnet_last_error(), needle);
}

START_TEST(config_struct_size)
{
    alexnet_config config = tw_tiny_config();
    alexnet_config *c = sized_copy(&config, sizeof config, sizeof config, 0);
    assert_status(alexnet_config_validate(c), ALEXNET_OK, NULL, "exact");
    free(c);
    c = sized_copy(&config, sizeof config, sizeof config + EXTRA, 0);
    assert_status(alexnet_config_validate(c), ALEXNET_OK, NULL, "longer, zero tail");
    uint64_t count = 0;
    assert_status(alexnet_config_parameter_count(c, &count), ALEXNET_OK, NULL, "parameter_count, zero tail");
    ck_assert_uint_eq(count, 239);
    free(c);
    c = sized_copy(&config, sizeof config, sizeof config + EXTRA, 1);
    assert_status(alexnet_config_validate(c), ALEXNET_E_UNSUPPORTED, "alexnet_config", "longer, non-zero tail");
    free(c);
    config.struct_size = sizeof config - 1;
    assert_status(alexnet_config_validate(&config), ALEXNET_E_INVALID_ARGUMENT, "alexnet_config: struct_size",
                  "shorter");
    config.struct_size = 0;
    assert_status(alexnet_config_validate(&config), ALEXNET_E_INVALID_ARGUMENT, "struct_size", "zero");
}
END_TEST

/* A configuration from a newer header given to the model: the model keeps the library's own layout, so what
 * alexnet_model_get_config hands back says sizeof(alexnet_config), not the caller's larger size (a caller
 * passing that copy on would otherwise make the library read beyond it). */
START_TEST(longer_config_through_model_options)
{
    test_counting_allocator counter;
    alexnet_config config = tw_tiny_config();
    alexnet_config *c = sized_copy(&config, sizeof config, sizeof config + EXTRA, 0);
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = c;
    options.allocator = test_counting_allocator_make(&counter);
    alexnet_model *model = NULL;
    assert_status(alexnet_model_create(&options, 1, &model), ALEXNET_OK, NULL, "model from a longer config");
    alexnet_config back;
    memset(&back, 0xA5, sizeof back);
    ck_assert_int_eq(alexnet_model_get_config(model, &back), ALEXNET_OK);
    ck_assert_uint_eq(back.struct_size, sizeof back);
    assert_status(alexnet_config_validate(&back), ALEXNET_OK, NULL, "the model's config");

    size_t size = 0;
    ck_assert_int_eq(alexnet_model_save_memory(model, NULL, 0, &size), ALEXNET_OK);
    unsigned char *saved = malloc(size);
    ck_assert_ptr_nonnull(saved);
    ck_assert_int_eq(alexnet_model_save_memory(model, saved, size, &size), ALEXNET_OK);
    alexnet_model *loaded = NULL;
    assert_status(alexnet_model_load_memory(saved, size, &options, &loaded), ALEXNET_OK, NULL,
                  "load with a longer config");
    ck_assert_int_eq(alexnet_model_get_config(loaded, &back), ALEXNET_OK);
    ck_assert_uint_eq(back.struct_size, sizeof back);
    alexnet_model_destroy(loaded);
    alexnet_model_destroy(model);
    free(saved);
    free(c);
    ck_assert_uint_eq(counter.live_blocks, 0);
}
END_TEST

START_TEST(model_options_struct_size)
{
    alexnet_config config = tw_tiny_config();
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = &config;
    const struct { size_t size; int nonzero; alexnet_status want; } cases[] = {
        {sizeof options, 0, ALEXNET_OK},
        {sizeof options + EXTRA, 0, ALEXNET_OK},
        {sizeof options + EXTRA, 1, ALEXNET_E_UNSUPPORTED},
        {sizeof options - 1, 0, ALEXNET_E_INVALID_ARGUMENT},
        {sizeof(size_t), 0, ALEXNET_E_INVALID_ARGUMENT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        alexnet_model_options *o = sized_copy(&options, sizeof options, cases[i].size, cases[i].nonzero);
        alexnet_model *model = (alexnet_model *)(uintptr_t)0x1;
        assert_status(alexnet_model_create(o, 1, &model), cases[i].want,
                      cases[i].want == ALEXNET_OK ? NULL : "alexnet_model_options", "alexnet_model_create");
        if (cases[i].want == ALEXNET_OK)
            alexnet_model_destroy(model);
        else
            ck_assert_ptr_eq(model, (alexnet_model *)(uintptr_t)0x1);
        free(o);
    }
}
END_TEST

START_TEST(context_options_struct_size)
{
    alexnet_config config = tw_tiny_config();
    alexnet_model_options model_options;
    alexnet_model_options_init(&model_options);
    model_options.config = &config;
    alexnet_model *model = NULL;
    ck_assert_int_eq(alexnet_model_create(&model_options, 1, &model), ALEXNET_OK);
    alexnet_context_options options;
    alexnet_context_options_init(&options);
    options.backend = "reference";
    const struct { size_t size; int nonzero; alexnet_status want; } cases[] = {
        {sizeof options, 0, ALEXNET_OK},
        {sizeof options + EXTRA, 0, ALEXNET_OK},
        {sizeof options + EXTRA, 1, ALEXNET_E_UNSUPPORTED},
        {sizeof options - 1, 0, ALEXNET_E_INVALID_ARGUMENT},
        {sizeof(size_t), 0, ALEXNET_E_INVALID_ARGUMENT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        alexnet_context_options *o = sized_copy(&options, sizeof options, cases[i].size, cases[i].nonzero);
        alexnet_context *context = (alexnet_context *)(uintptr_t)0x1;
        assert_status(alexnet_context_create(model, o, &context), cases[i].want,
                      cases[i].want == ALEXNET_OK ? NULL : "alexnet_context_options", "alexnet_context_create");
        if (cases[i].want == ALEXNET_OK)
            alexnet_context_destroy(context);
        else
            ck_assert_ptr_eq(context, (alexnet_context *)(uintptr_t)0x1);
        free(o);
    }
    alexnet_model_destroy(model);
}
END_TEST

START_TEST(image_options_struct_size)
{
    uint8_t pixels[6 * 5 * 3] = {0};
    alexnet_image image = {pixels, 6, 5, 18, ALEXNET_PIXEL_RGB8};
    alexnet_image_options options;
    alexnet_image_options_init(&options);
    options.resize_size = 4;
    float out[3 * 4 * 4];
    const struct { size_t size; int nonzero; alexnet_status want; } cases[] = {
        {sizeof options, 0, ALEXNET_OK},
        {sizeof options + EXTRA, 0, ALEXNET_OK},
        {sizeof options + EXTRA, 1, ALEXNET_E_UNSUPPORTED},
        {sizeof options - 1, 0, ALEXNET_E_INVALID_ARGUMENT},
        {sizeof(size_t), 0, ALEXNET_E_INVALID_ARGUMENT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        alexnet_image_options *o = sized_copy(&options, sizeof options, cases[i].size, cases[i].nonzero);
        assert_status(alexnet_preprocess_image(&image, o, 3, 4, 4, out, 48), cases[i].want,
                      cases[i].want == ALEXNET_OK ? NULL : "struct_size", "alexnet_preprocess_image");
        free(o);
    }
}
END_TEST

/* The cases every options struct goes through, with the status each must give. */
typedef struct size_case {
    size_t size;
    int nonzero;
    alexnet_status want;
} size_case;

#define SIZE_CASES(type)                                                                                         \
    {                                                                                                            \
        {sizeof(type), 0, ALEXNET_OK}, {sizeof(type) + EXTRA, 0, ALEXNET_OK},                                    \
            {sizeof(type) + EXTRA, 1, ALEXNET_E_UNSUPPORTED}, {sizeof(type) - 1, 0, ALEXNET_E_INVALID_ARGUMENT}, \
            {sizeof(size_t), 0, ALEXNET_E_INVALID_ARGUMENT},                                                     \
    }

START_TEST(dataset_options_struct_size)
{
    alexnet_dataset_options options;
    alexnet_dataset_options_init(&options);
    options.channels = 3;
    options.height = 4;
    options.width = 5;
    options.num_classes = 2;
    options.capacity = 3;
    const size_case cases[] = SIZE_CASES(alexnet_dataset_options);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        alexnet_dataset_options *o = sized_copy(&options, sizeof options, cases[i].size, cases[i].nonzero);
        alexnet_dataset *dataset = (alexnet_dataset *)(uintptr_t)0x1;
        assert_status(alexnet_dataset_create(o, &dataset), cases[i].want,
                      cases[i].want == ALEXNET_OK ? NULL : "alexnet_dataset_options", "alexnet_dataset_create");
        if (cases[i].want == ALEXNET_OK) {
            uint8_t pixels[4 * 5 * 3] = {0};
            uint32_t label = 1;
            assert_status(alexnet_dataset_add(dataset, pixels, &label, 1), ALEXNET_OK, NULL, "alexnet_dataset_add");
            ck_assert_uint_eq(alexnet_dataset_count(dataset), 1);
            alexnet_dataset_destroy(dataset);
        } else {
            ck_assert_ptr_eq(dataset, (alexnet_dataset *)(uintptr_t)0x1);
        }
        free(o);
    }
}
END_TEST

/* The IDX loaders take the same struct (its zero fields meaning "what the file holds"). */
START_TEST(dataset_options_struct_size_idx)
{
    static const uint8_t images[] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6,
                                     7, 8, 9, 10, 11, 12};
    static const uint8_t labels[] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 0};
    alexnet_dataset_options options;
    alexnet_dataset_options_init(&options);
    const size_case cases[] = SIZE_CASES(alexnet_dataset_options);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        alexnet_dataset_options *o = sized_copy(&options, sizeof options, cases[i].size, cases[i].nonzero);
        alexnet_dataset *dataset = (alexnet_dataset *)(uintptr_t)0x1;
        assert_status(alexnet_dataset_load_idx_memory(images, sizeof images, labels, sizeof labels, o, &dataset),
                      cases[i].want, cases[i].want == ALEXNET_OK ? NULL : "alexnet_dataset_options",
                      "alexnet_dataset_load_idx_memory");
        if (cases[i].want == ALEXNET_OK) {
            ck_assert_uint_eq(alexnet_dataset_count(dataset), 2);
            alexnet_dataset_destroy(dataset);
        } else {
            ck_assert_ptr_eq(dataset, (alexnet_dataset *)(uintptr_t)0x1);
        }
        free(o);
    }
}
END_TEST

static alexnet_model *tiny_model(void)
{
    alexnet_config config = tw_tiny_config();
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = &config;
    alexnet_model *model = NULL;
    ck_assert_int_eq(alexnet_model_create(&options, 1, &model), ALEXNET_OK);
    return model;
}

/* A trainer from these options works: one step on the tiny network. */
static void train_one_step(alexnet_trainer *trainer)
{
    float input[2 * 3 * 8 * 8];
    test_fill_input(input, sizeof input / sizeof input[0], 1);
    uint32_t labels[2] = {0, 2};
    assert_status(alexnet_trainer_step(trainer, input, labels, 2, NULL, NULL), ALEXNET_OK, NULL,
                  "alexnet_trainer_step");
}

START_TEST(trainer_options_struct_size)
{
    alexnet_model *model = tiny_model();
    alexnet_trainer_options options;
    alexnet_trainer_options_init(&options);
    options.backend = "reference";
    options.batch = 2;
    const size_case cases[] = SIZE_CASES(alexnet_trainer_options);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        alexnet_trainer_options *o = sized_copy(&options, sizeof options, cases[i].size, cases[i].nonzero);
        alexnet_trainer *trainer = (alexnet_trainer *)(uintptr_t)0x1;
        assert_status(alexnet_trainer_create(model, o, &trainer), cases[i].want,
                      cases[i].want == ALEXNET_OK ? NULL : "alexnet_trainer_options", "alexnet_trainer_create");
        if (cases[i].want == ALEXNET_OK) {
            train_one_step(trainer);
            alexnet_trainer_destroy(trainer);
        } else {
            ck_assert_ptr_eq(trainer, (alexnet_trainer *)(uintptr_t)0x1);
        }
        free(o);
    }
    alexnet_model_destroy(model);
}
END_TEST

/* The augmentation options reach the library through alexnet_trainer_options.augment. */
START_TEST(augment_options_struct_size)
{
    alexnet_model *model = tiny_model();
    alexnet_augment_options augment;
    alexnet_augment_options_init(&augment);
    augment.padding = 1;
    alexnet_trainer_options options;
    alexnet_trainer_options_init(&options);
    options.backend = "reference";
    options.batch = 2;
    const size_case cases[] = SIZE_CASES(alexnet_augment_options);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        alexnet_augment_options *a = sized_copy(&augment, sizeof augment, cases[i].size, cases[i].nonzero);
        options.augment = a;
        alexnet_trainer *trainer = (alexnet_trainer *)(uintptr_t)0x1;
        assert_status(alexnet_trainer_create(model, &options, &trainer), cases[i].want,
                      cases[i].want == ALEXNET_OK ? NULL : "alexnet_augment_options", "alexnet_trainer_create");
        free(a); /* the trainer keeps its own copy */
        if (cases[i].want == ALEXNET_OK) {
            /* ... which trains: a short epoch over padded, augmented 8 x 8 images. */
            alexnet_dataset_options dopts;
            alexnet_dataset_options_init(&dopts);
            dopts.channels = 3;
            dopts.height = dopts.width = 8;
            dopts.num_classes = 3;
            alexnet_dataset *dataset = NULL;
            ck_assert_int_eq(alexnet_dataset_create(&dopts, &dataset), ALEXNET_OK);
            uint8_t pixels[3 * 8 * 8 * 3];
            for (size_t k = 0; k < sizeof pixels; k++)
                pixels[k] = (uint8_t)(test_splitmix64(k) >> 56);
            uint32_t labels[3] = {0, 1, 2};
            ck_assert_int_eq(alexnet_dataset_add(dataset, pixels, labels, 3), ALEXNET_OK);
            assert_status(alexnet_trainer_train(trainer, dataset, NULL, 1), ALEXNET_OK, NULL, "alexnet_trainer_train");
            alexnet_dataset_destroy(dataset);
            alexnet_trainer_destroy(trainer);
        } else {
            ck_assert_ptr_eq(trainer, (alexnet_trainer *)(uintptr_t)0x1);
        }
    }
    alexnet_model_destroy(model);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("struct_size");
    TCase *tc = tcase_create("struct_size");
    tcase_add_test(tc, config_struct_size);
    tcase_add_test(tc, longer_config_through_model_options);
    tcase_add_test(tc, model_options_struct_size);
    tcase_add_test(tc, context_options_struct_size);
    tcase_add_test(tc, image_options_struct_size);
    tcase_add_test(tc, dataset_options_struct_size);
    tcase_add_test(tc, dataset_options_struct_size_idx);
    tcase_add_test(tc, trainer_options_struct_size);
    tcase_add_test(tc, augment_options_struct_size);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? 0 : 1;
}
