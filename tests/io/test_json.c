/* Tests for the strict JSON pull reader (lib/util/json.c). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_check.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/json.h"

/* ---- the shared counting allocator (tests/support/test_support.h), reset by each test ---- */

static test_counting_allocator counter;
static alexnet_allocator test_allocator;

static void reset_counter(void)
{
    test_allocator = test_counting_allocator_make(&counter);
    an_error_clear();
}

static an_json_reader reader;

static void start(const char *text) { an_json_reader_init(&reader, text, strlen(text), &test_allocator); }

static void start_bytes(const char *text, size_t length)
{
    an_json_reader_init(&reader, text, length, &test_allocator);
}

/* Skip one whole value and require end of input. */
static alexnet_status parse_whole(const char *text, size_t length)
{
    start_bytes(text, length);
    alexnet_status status = an_json_skip_value(&reader);
    if (status == ALEXNET_OK)
        status = an_json_finish(&reader);
    return status;
}

static alexnet_status parse_text(const char *text) { return parse_whole(text, strlen(text)); }

/* ---- walking documents ---- */

START_TEST(test_walk_document)
{
    reset_counter();
    start(" {\"a\" : [1, 22 ,{\"b\":true}], \"c\":\"x\",\"d\":null,\"e\":false, \"f\": {}, \"g\": []}\n");
    an_json_type type;
    ck_assert_int_eq(an_json_peek(&reader, &type), ALEXNET_OK);
    ck_assert_int_eq(type, AN_JSON_OBJECT);
    ck_assert_int_eq(an_json_begin_object(&reader), ALEXNET_OK);

    an_json_string key = {0};
    int has = 0;
    ck_assert_int_eq(an_json_next_member(&reader, &key, &has), ALEXNET_OK);
    ck_assert_int_eq(has, 1);
    ck_assert_str_eq(key.data, "a");
    ck_assert_uint_eq(key.length, 1);
    an_json_string_free(&test_allocator, &key);
    ck_assert_int_eq(an_json_begin_array(&reader), ALEXNET_OK);
    uint64_t value = 0;
    ck_assert_int_eq(an_json_next_element(&reader, &has), ALEXNET_OK);
    ck_assert_int_eq(has, 1);
    ck_assert_int_eq(an_json_read_u64(&reader, &value), ALEXNET_OK);
    ck_assert_uint_eq(value, 1);
    ck_assert_int_eq(an_json_next_element(&reader, &has), ALEXNET_OK);
    ck_assert_int_eq(an_json_read_u64(&reader, &value), ALEXNET_OK);
    ck_assert_uint_eq(value, 22);
    ck_assert_int_eq(an_json_next_element(&reader, &has), ALEXNET_OK);
    ck_assert_int_eq(an_json_peek(&reader, &type), ALEXNET_OK);
    ck_assert_int_eq(type, AN_JSON_OBJECT);
    ck_assert_int_eq(an_json_begin_object(&reader), ALEXNET_OK);
    ck_assert_int_eq(an_json_next_member(&reader, NULL, &has), ALEXNET_OK); /* key checked, not kept */
    ck_assert_int_eq(has, 1);
    int flag = 0;
    ck_assert_int_eq(an_json_read_bool(&reader, &flag), ALEXNET_OK);
    ck_assert_int_eq(flag, 1);
    ck_assert_int_eq(an_json_next_member(&reader, NULL, &has), ALEXNET_OK);
    ck_assert_int_eq(has, 0);
    ck_assert_int_eq(an_json_next_element(&reader, &has), ALEXNET_OK);
    ck_assert_int_eq(has, 0);

    ck_assert_int_eq(an_json_next_member(&reader, &key, &has), ALEXNET_OK);
    ck_assert_str_eq(key.data, "c");
    an_json_string_free(&test_allocator, &key);
    an_json_string text = {0};
    ck_assert_int_eq(an_json_read_string(&reader, &text), ALEXNET_OK);
    ck_assert_str_eq(text.data, "x");
    an_json_string_free(&test_allocator, &text);

    ck_assert_int_eq(an_json_next_member(&reader, NULL, &has), ALEXNET_OK);
    ck_assert_int_eq(an_json_peek(&reader, &type), ALEXNET_OK);
    ck_assert_int_eq(type, AN_JSON_NULL);
    ck_assert_int_eq(an_json_read_null(&reader), ALEXNET_OK);

    ck_assert_int_eq(an_json_next_member(&reader, NULL, &has), ALEXNET_OK);
    flag = 1;
    ck_assert_int_eq(an_json_read_bool(&reader, &flag), ALEXNET_OK);
    ck_assert_int_eq(flag, 0);

    ck_assert_int_eq(an_json_next_member(&reader, NULL, &has), ALEXNET_OK);
    ck_assert_int_eq(an_json_skip_value(&reader), ALEXNET_OK); /* {} */
    ck_assert_int_eq(an_json_next_member(&reader, NULL, &has), ALEXNET_OK);
    ck_assert_int_eq(an_json_begin_array(&reader), ALEXNET_OK); /* [] */
    ck_assert_int_eq(an_json_next_element(&reader, &has), ALEXNET_OK);
    ck_assert_int_eq(has, 0);

    ck_assert_int_eq(an_json_next_member(&reader, NULL, &has), ALEXNET_OK);
    ck_assert_int_eq(has, 0);
    ck_assert_int_eq(an_json_finish(&reader), ALEXNET_OK);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_finish_requires_closed_containers)
{
    reset_counter();
    start("[1]");
    ck_assert_int_eq(an_json_begin_array(&reader), ALEXNET_OK);
    test_assert_fails_with(an_json_finish(&reader), ALEXNET_E_FORMAT, "open");
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_misuse_outside_container)
{
    reset_counter();
    int has = 0;
    start("{}");
    test_assert_fails_with(an_json_next_member(&reader, NULL, &has), ALEXNET_E_INVALID_ARGUMENT, "object");
    ck_assert_int_eq(an_json_begin_object(&reader), ALEXNET_OK);
    test_assert_fails_with(an_json_next_element(&reader, &has), ALEXNET_E_INVALID_ARGUMENT, "array");
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_type_mismatch_messages)
{
    reset_counter();
    start("[]");
    test_assert_fails_with(an_json_begin_object(&reader), ALEXNET_E_FORMAT, "expected an object, found an array");
    an_json_string text = {0};
    start("5");
    test_assert_fails_with(an_json_read_string(&reader, &text), ALEXNET_E_FORMAT, "expected a string, found a number");
    ck_assert_ptr_null(text.data);
    int flag;
    start("null");
    test_assert_fails_with(an_json_read_bool(&reader, &flag), ALEXNET_E_FORMAT, "expected a boolean, found null");
    start("false");
    test_assert_fails_with(an_json_read_null(&reader), ALEXNET_E_FORMAT, "expected null, found false");
    start("{}");
    test_assert_fails_with(an_json_begin_array(&reader), ALEXNET_E_FORMAT, "expected an array, found an object");
    /* Messages say where: byte 3 is the '5'. */
    start("   5");
    test_assert_fails_with(an_json_read_string(&reader, &text), ALEXNET_E_FORMAT, "(JSON byte 3)");
    test_assert_no_leaks(&counter);
}
END_TEST

/* ---- strings ---- */

static void assert_decodes_to(const char *json, const char *expected, size_t expected_length)
{
    an_json_string text = {0};
    start(json);
    ck_assert_msg(an_json_read_string(&reader, &text) == ALEXNET_OK, "%s: %s", json, alexnet_last_error());
    ck_assert_uint_eq(text.length, expected_length);
    ck_assert_int_eq(memcmp(text.data, expected, expected_length), 0);
    ck_assert_int_eq(text.data[text.length], '\0');
    ck_assert_int_eq(an_json_finish(&reader), ALEXNET_OK);
    an_json_string_free(&test_allocator, &text);
    ck_assert_ptr_null(text.data);
}

START_TEST(test_string_escapes)
{
    reset_counter();
    assert_decodes_to("\"\"", "", 0);
    assert_decodes_to("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8);
    assert_decodes_to("\"\\u0041\\u00e9\\u20AC\"", "A\xc3\xa9\xe2\x82\xac", 6);
    assert_decodes_to("\"\\u07ff\\u0800\\uffff\"", "\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 8);
    /* U+1F600 as a surrogate pair, and U+10FFFF, the last code point. */
    assert_decodes_to("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4);
    assert_decodes_to("\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf", 4);
    /* \u0000 is a legal character; the length says where the string really ends. */
    assert_decodes_to("\"a\\u0000b\"", "a\0b", 3);
    /* Raw UTF-8 of every length passes through unchanged. */
    assert_decodes_to("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f\"", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f", 10);
    test_assert_no_leaks(&counter);
}
END_TEST

typedef struct bad_string_case {
    const char *json;
    const char *fragment;
} bad_string_case;

static const bad_string_case bad_strings[] = {
    {"\"\xff\"", "UTF-8"},                      /* never valid */
    {"\"\x80\"", "UTF-8"},                      /* lone continuation byte */
    {"\"\xc0\x80\"", "UTF-8"},                  /* overlong NUL */
    {"\"\xc1\xbf\"", "UTF-8"},                  /* overlong */
    {"\"\xe0\x80\xaf\"", "UTF-8"},              /* overlong 3-byte */
    {"\"\xf0\x80\x80\xaf\"", "UTF-8"},          /* overlong 4-byte */
    {"\"\xed\xa0\x80\"", "UTF-8"},              /* UTF-16 surrogate encoded in UTF-8 */
    {"\"\xf4\x90\x80\x80\"", "UTF-8"},          /* above U+10FFFF */
    {"\"\xf5\x80\x80\x80\"", "UTF-8"},          /* invalid lead byte */
    {"\"\xe2\x82\"", "UTF-8"},                  /* truncated by the closing quote */
    {"\"\xc3", "UTF-8"},                        /* truncated by the end of input */
    {"\"\xc3\x28\"", "UTF-8"},                  /* bad continuation */
    {"\"\\ud83d\"", "unpaired high surrogate"}, /* high surrogate alone */
    {"\"\\ud83dx\"", "unpaired high surrogate"},
    {"\"\\ud83d\\u0041\"", "unpaired high surrogate"}, /* followed by a non-surrogate */
    {"\"\\ud83d\\ud83d\"", "unpaired high surrogate"}, /* followed by another high one */
    {"\"\\ude00\"", "unpaired low surrogate"},
    {"\"\\x41\"", "invalid escape"},
    {"\"\\'\"", "invalid escape"},
    {"\"\\u12G4\"", "\\u escape"},
    {"\"\\u12\"", "\\u escape"},
    {"\"\\u12", "\\u escape"},
    {"\"abc\\", "unterminated string"},
    {"\"abc", "unterminated string"},
    {"\"a\nb\"", "control character 0x0a"},
    {"\"a\tb\"", "control character 0x09"},
    {"\"\x1f\"", "control character 0x1f"},
};

START_TEST(test_bad_strings)
{
    reset_counter();
    const bad_string_case *c = &bad_strings[_i];
    an_json_string text = {0};
    start(c->json);
    alexnet_status status = an_json_read_string(&reader, &text);
    ck_assert_msg(status == ALEXNET_E_FORMAT, "case %d accepted", _i);
    ck_assert_msg(strstr(alexnet_last_error(), c->fragment) != NULL, "case %d: '%s' lacks '%s'", _i,
                  alexnet_last_error(), c->fragment);
    ck_assert_ptr_null(text.data);
    /* The same string as an object key fails the same way and allocates nothing (unless it is unterminated:
     * then the rest of the document becomes part of it). */
    if (strstr(c->fragment, "unterminated") == NULL) {
        char document[64];
        snprintf(document, sizeof document, "{%s:1}", c->json);
        test_assert_fails_with(parse_text(document), ALEXNET_E_FORMAT, c->fragment);
    }
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_keys_with_escapes)
{
    reset_counter();
    start("{\"k\\u00e9y\\n\":1}");
    ck_assert_int_eq(an_json_begin_object(&reader), ALEXNET_OK);
    an_json_string key = {0};
    int has = 0;
    ck_assert_int_eq(an_json_next_member(&reader, &key, &has), ALEXNET_OK);
    ck_assert_str_eq(key.data, "k\xc3\xa9y\n");
    ck_assert_uint_eq(key.length, 5);
    an_json_string_free(&test_allocator, &key);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_string_out_of_memory)
{
    reset_counter();
    counter.fail_at = 1; /* 1-based: the first allocation fails */
    an_json_string text = {0};
    start("\"abc\"");
    test_assert_fails_with(an_json_read_string(&reader, &text), ALEXNET_E_OUT_OF_MEMORY, "JSON string");
    ck_assert_ptr_null(text.data);
    counter.fail_at = 2; /* allocation 1 was the failed one above */
    start("{\"key\":1}");
    ck_assert_int_eq(an_json_begin_object(&reader), ALEXNET_OK);
    int has = 0;
    test_assert_fails_with(an_json_next_member(&reader, &text, &has), ALEXNET_E_OUT_OF_MEMORY, "JSON string");
    ck_assert_ptr_null(text.data);
    test_assert_no_leaks(&counter);
}
END_TEST

/* ---- numbers ---- */

START_TEST(test_u64_values)
{
    reset_counter();
    static const struct {
        const char *json;
        uint64_t value;
    } cases[] = {
        {"0", 0}, {" 7 ", 7}, {"4294967296", 4294967296ull}, {"18446744073709551615", UINT64_MAX},
        {"18446744073709551610", 18446744073709551610ull},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t value = 12345;
        start(cases[i].json);
        ck_assert_int_eq(an_json_read_u64(&reader, &value), ALEXNET_OK);
        ck_assert_uint_eq(value, cases[i].value);
        ck_assert_int_eq(an_json_finish(&reader), ALEXNET_OK);
    }
    test_assert_no_leaks(&counter);
}
END_TEST

static const bad_string_case bad_integers[] = {
    {"18446744073709551616", "does not fit in 64 bits"},
    {"99999999999999999999999", "does not fit in 64 bits"},
    {"-1", "non-negative integer, found '-1'"},
    {"-0", "non-negative integer, found '-0'"},
    {"1.5", "non-negative integer, found '1.5'"},
    {"1.0", "non-negative integer, found '1.0'"},
    {"1e3", "non-negative integer, found '1e3'"},
    {"2E+3", "non-negative integer, found '2E+3'"},
    {"01", "leading zeros"},
    {"-", "digit must follow '-'"},
    {"-a", "digit must follow '-'"},
    {"1.", "digit must follow '.'"},
    {"1.e5", "digit must follow '.'"},
    {"1e", "exponent"},
    {"1e+", "exponent"},
    {"\"1\"", "found a string"},
    {"true", "found true"},
    {"[1]", "found an array"},
    {"", "end of input"},
};

START_TEST(test_u64_rejects)
{
    reset_counter();
    uint64_t value = 42;
    start(bad_integers[_i].json);
    test_assert_fails_with(an_json_read_u64(&reader, &value), ALEXNET_E_FORMAT, bad_integers[_i].fragment);
    ck_assert_uint_eq(value, 42); /* untouched on failure */
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_skip_any_number)
{
    reset_counter();
    static const char *const numbers[] = {"0", "-0", "-1.5e-3", "0.25", "1E10", "3e+2", "[1,-2,3.5e+2,0e0]"};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        ck_assert_msg(parse_text(numbers[i]) == ALEXNET_OK, "%s: %s", numbers[i], alexnet_last_error());
    test_assert_no_leaks(&counter);
}
END_TEST

/* ---- structure ---- */

static const bad_string_case bad_documents[] = {
    {"", "end of input"},
    {"   \n\t ", "end of input"},
    {"[1,]", "expected a value, found ']'"},
    {"[,1]", "expected a value, found ','"},
    {"[1 2]", "expected ',' or ']'"},
    {"{\"a\" 1}", "expected ':'"},
    {"{\"a\":1,}", "expected a string key"},
    {"{,}", "expected a string key"},
    {"{1:2}", "expected a string key"},
    {"{'a':1}", "expected a string key"},
    {"{\"a\":1 \"b\":2}", "expected ',' or '}'"},
    {"{\"a\":}", "expected a value"},
    {"[", "unterminated array"},
    {"[1", "unterminated array"},
    {"{\"a\":1", "unterminated object"},
    {"{", "unterminated object"},
    {"tru", "invalid literal"},
    {"nul", "invalid literal"},
    {"fals", "invalid literal"},
    {"True", "expected a value"},
    {"@", "expected a value, found '@'"},
    {"\x01", "found byte 0x01"},
    {"{} x", "trailing data"},
    {"{}{}", "trailing data"},
    {"1 2", "trailing data"},
    {"truex", "trailing data"},
    {"[] ]", "trailing data"},
};

START_TEST(test_bad_documents)
{
    reset_counter();
    test_assert_fails_with(parse_text(bad_documents[_i].json), ALEXNET_E_FORMAT, bad_documents[_i].fragment);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_whitespace_and_nul_after_value)
{
    reset_counter();
    ck_assert_int_eq(parse_text(" \t\r\n{} \t\r\n"), ALEXNET_OK);
    ck_assert_int_eq(parse_text("{}        "), ALEXNET_OK);
    /* A NUL is not whitespace: the reader never stops early at one. */
    test_assert_fails_with(parse_whole("{} \0", 4), ALEXNET_E_FORMAT, "byte 0x00");
    test_assert_fails_with(parse_whole("[1\0]", 4), ALEXNET_E_FORMAT, "byte 0x00");
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_reads_only_given_length)
{
    reset_counter();
    /* The text need not be NUL-terminated: a length that cuts a document short is an unterminated one. */
    test_assert_fails_with(parse_whole("[1, 2]", 5), ALEXNET_E_FORMAT, "unterminated array");
    test_assert_fails_with(parse_whole("[1, 2]", 4), ALEXNET_E_FORMAT, "end of input");
    test_assert_fails_with(parse_whole("\"\\u0041\"", 5), ALEXNET_E_FORMAT, "\\u escape");
    test_assert_fails_with(parse_whole("true", 3), ALEXNET_E_FORMAT, "invalid literal");
    ck_assert_int_eq(parse_whole("[1, 2]xyz", 6), ALEXNET_OK);
    test_assert_no_leaks(&counter);
}
END_TEST

/* A buffer of `count` copies of `open` (and, when closed, as many of `close`). */
static char *nested(size_t count, const char *open, const char *close, int closed)
{
    size_t open_length = strlen(open), close_length = strlen(close);
    char *text = calloc(1, count * (open_length + close_length) + 1);
    ck_assert_ptr_nonnull(text);
    char *p = text;
    for (size_t i = 0; i < count; i++, p += open_length)
        memcpy(p, open, open_length);
    for (size_t i = 0; closed && i < count; i++, p += close_length)
        memcpy(p, close, close_length);
    return text;
}

START_TEST(test_depth_limit)
{
    reset_counter();
    char *text = nested(AN_JSON_MAX_DEPTH, "[", "]", 1);
    ck_assert_int_eq(parse_text(text), ALEXNET_OK);
    free(text);
    text = nested(AN_JSON_MAX_DEPTH + 1, "[", "]", 1);
    test_assert_fails_with(parse_text(text), ALEXNET_E_FORMAT, "nesting deeper than 64 levels");
    free(text);
    text = nested(AN_JSON_MAX_DEPTH + 1, "{\"k\":", "}", 0);
    test_assert_fails_with(parse_text(text), ALEXNET_E_FORMAT, "nesting deeper");
    free(text);
    /* Far beyond the limit: must fail cleanly, not recurse 100000 levels. */
    text = nested(100000, "[", "]", 0);
    test_assert_fails_with(parse_text(text), ALEXNET_E_FORMAT, "nesting deeper");
    free(text);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_nested_objects_within_limit)
{
    reset_counter();
    /* 64 levels of {"k": ... } around a number. */
    size_t depth = AN_JSON_MAX_DEPTH;
    char *text = calloc(1, depth * 6 + 2);
    ck_assert_ptr_nonnull(text);
    char *p = text;
    for (size_t i = 0; i < depth; i++, p += 5)
        memcpy(p, "{\"k\":", 5);
    *p++ = '1';
    for (size_t i = 0; i < depth; i++)
        *p++ = '}';
    ck_assert_msg(parse_text(text) == ALEXNET_OK, "%s", alexnet_last_error());
    free(text);
    test_assert_no_leaks(&counter);
}
END_TEST

/* ---- UTF-8 check and quoting for writers ---- */

START_TEST(test_utf8_valid)
{
    ck_assert_int_eq(an_utf8_valid("", 0), 1);
    ck_assert_int_eq(an_utf8_valid("plain ascii", 11), 1);
    ck_assert_int_eq(an_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf", 13), 1);
    ck_assert_int_eq(an_utf8_valid("\xff", 1), 0);
    ck_assert_int_eq(an_utf8_valid("\xc0\xaf", 2), 0);
    ck_assert_int_eq(an_utf8_valid("\xed\xbf\xbf", 3), 0);
    ck_assert_int_eq(an_utf8_valid("\xf4\x90\x80\x80", 4), 0);
    ck_assert_int_eq(an_utf8_valid("\xe2\x82", 2), 0); /* truncated */
    ck_assert_int_eq(an_utf8_valid("a\x80", 2), 0);
}
END_TEST

static void assert_quotes_as(const char *text, const char *expected)
{
    size_t length = 0;
    ck_assert_int_eq(an_json_quoted_length(text, &length), 0);
    ck_assert_uint_eq(length, strlen(expected));
    char buffer[128];
    memset(buffer, '#', sizeof buffer);
    char *end = an_json_write_quoted(buffer, text);
    ck_assert_uint_eq((size_t)(end - buffer), length);
    ck_assert_int_eq(memcmp(buffer, expected, length), 0);
    ck_assert_int_eq(buffer[length], '#'); /* nothing written past the end */
}

START_TEST(test_quoting)
{
    assert_quotes_as("", "\"\"");
    assert_quotes_as("a\"b\\c/", "\"a\\\"b\\\\c/\"");
    assert_quotes_as("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
    assert_quotes_as("\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\"");
    assert_quotes_as("\xc3\xa9\xf0\x9f\x98\x80", "\"\xc3\xa9\xf0\x9f\x98\x80\"");
}
END_TEST

START_TEST(test_quoting_round_trips)
{
    reset_counter();
    /* Every byte 0x01..0x7f plus some multi-byte characters survives quote -> read. */
    char original[160];
    size_t n = 0;
    for (int c = 1; c < 0x80; c++)
        original[n++] = (char)c;
    memcpy(original + n, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
    n += 9;
    original[n] = '\0';
    size_t length = 0;
    ck_assert_int_eq(an_json_quoted_length(original, &length), 0);
    char *quoted = malloc(length);
    ck_assert_ptr_nonnull(quoted);
    an_json_write_quoted(quoted, original);
    an_json_string decoded = {0};
    start_bytes(quoted, length);
    ck_assert_msg(an_json_read_string(&reader, &decoded) == ALEXNET_OK, "%s", alexnet_last_error());
    ck_assert_int_eq(an_json_finish(&reader), ALEXNET_OK);
    ck_assert_uint_eq(decoded.length, n);
    ck_assert_int_eq(memcmp(decoded.data, original, n), 0);
    an_json_string_free(&test_allocator, &decoded);
    free(quoted);
    test_assert_no_leaks(&counter);
}
END_TEST

static Suite *json_suite(void)
{
    Suite *suite = suite_create("json");
    TCase *basics = tcase_create("basics");
    tcase_add_test(basics, test_walk_document);
    tcase_add_test(basics, test_finish_requires_closed_containers);
    tcase_add_test(basics, test_misuse_outside_container);
    tcase_add_test(basics, test_type_mismatch_messages);
    suite_add_tcase(suite, basics);

    TCase *strings = tcase_create("strings");
    tcase_add_test(strings, test_string_escapes);
    tcase_add_loop_test(strings, test_bad_strings, 0, (int)(sizeof bad_strings / sizeof bad_strings[0]));
    tcase_add_test(strings, test_keys_with_escapes);
    tcase_add_test(strings, test_string_out_of_memory);
    suite_add_tcase(suite, strings);

    TCase *numbers = tcase_create("numbers");
    tcase_add_test(numbers, test_u64_values);
    tcase_add_loop_test(numbers, test_u64_rejects, 0, (int)(sizeof bad_integers / sizeof bad_integers[0]));
    tcase_add_test(numbers, test_skip_any_number);
    suite_add_tcase(suite, numbers);

    TCase *structure = tcase_create("structure");
    tcase_add_loop_test(structure, test_bad_documents, 0, (int)(sizeof bad_documents / sizeof bad_documents[0]));
    tcase_add_test(structure, test_whitespace_and_nul_after_value);
    tcase_add_test(structure, test_reads_only_given_length);
    tcase_add_test(structure, test_depth_limit);
    tcase_add_test(structure, test_nested_objects_within_limit);
    suite_add_tcase(suite, structure);

    TCase *writing = tcase_create("writing");
    tcase_add_test(writing, test_utf8_valid);
    tcase_add_test(writing, test_quoting);
    tcase_add_test(writing, test_quoting_round_trips);
    suite_add_tcase(suite, writing);
    return suite;
}

int main(void)
{
    return test_run_suite(json_suite());
}
