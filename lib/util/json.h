/* A small, strict JSON (RFC 8259) reader, enough for safetensors headers, plus the string quoting a writer
 * needs.
 *
 * The reader is a pull parser: the caller walks the text value by value and no tree is built, so a header
 * costs no memory beyond the strings the caller asks to decode. It trusts nothing:
 *  - strings must be valid UTF-8 (no overlong forms, no encoded surrogates, nothing above U+10FFFF), control
 *    characters must be escaped, every escape is checked, and \uXXXX surrogates must come in proper pairs;
 *  - integers are read exactly as u64, with overflow, signs, fractions and exponents rejected;
 *  - nesting is limited to AN_JSON_MAX_DEPTH containers, so hostile input cannot exhaust the stack;
 *  - an_json_finish rejects anything but whitespace after the top-level value.
 * All state lives in the reader struct (no globals), so independent readers may run on any threads.
 * Every failure in the text returns ALEXNET_E_FORMAT (or ALEXNET_E_OUT_OF_MEMORY) with a message ending in
 * "(JSON byte N)"; callers add their own context with an_error_prefix. Asking for a member outside an
 * object (or an element outside an array) is a caller bug: ALEXNET_E_INVALID_ARGUMENT.
 *
 * Usage for {"a": [1, 2]}:
 *     an_json_begin_object(&r);
 *     while (an_json_next_member(&r, &key, &has) == ALEXNET_OK && has) {
 *         ... read exactly one value (an_json_read_*, an_json_begin_*, or an_json_skip_value) ...
 *     }
 * Duplicate object keys are not rejected here: what a duplicate means is the caller's decision. */
#ifndef AN_UTIL_JSON_H
#define AN_UTIL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "alexnet/alexnet.h"

/* Deep enough for any sane document; shallow enough that the recursion in an_json_skip_value is harmless. */
#define AN_JSON_MAX_DEPTH 64

typedef enum an_json_type {
    AN_JSON_OBJECT = 0,
    AN_JSON_ARRAY = 1,
    AN_JSON_STRING = 2,
    AN_JSON_NUMBER = 3,
    AN_JSON_TRUE = 4,
    AN_JSON_FALSE = 5,
    AN_JSON_NULL = 6
} an_json_type;

typedef struct an_json_reader {
    const unsigned char *text;
    size_t length;
    size_t position;
    const alexnet_allocator *allocator; /* for decoded strings; must outlive the reader */
    uint32_t depth;                     /* open containers */
    /* Per open container: '{' or '[', and whether a member/element has been read (then a ',' must come
     * before the next one). Index 0 is the top level and is unused. */
    char container[AN_JSON_MAX_DEPTH + 1];
    unsigned char has_items[AN_JSON_MAX_DEPTH + 1];
} an_json_reader;

/* A decoded string: UTF-8, NUL-terminated, allocated with exactly length + 1 bytes. It may contain NUL
 * characters (from \u0000); when it does not, data can be released with an_strfree as well. */
typedef struct an_json_string {
    char *data;
    size_t length;
} an_json_string;

/* allocator must be resolved (non-NULL functions). text need not be NUL-terminated. */
void an_json_reader_init(an_json_reader *reader, const void *text, size_t length, const alexnet_allocator *allocator);

/* The type of the next value, after skipping whitespace; fails at the end of input or on a character that
 * cannot start a value. Consumes nothing but whitespace. */
alexnet_status an_json_peek(an_json_reader *reader, an_json_type *out_type);
/* A phrase for messages: "an object", "a string", "true", "null", ... */
const char *an_json_type_name(an_json_type type);

alexnet_status an_json_begin_object(an_json_reader *reader);
/* Advance to the next member of the innermost object. Sets *out_has_member to 1 and decodes the key into
 * *out_key (NULL: the key is checked but not kept) with the ':' consumed, or sets it to 0 when the closing
 * '}' has been consumed. On failure nothing is left allocated. */
alexnet_status an_json_next_member(an_json_reader *reader, an_json_string *out_key, int *out_has_member);

alexnet_status an_json_begin_array(an_json_reader *reader);
/* Advance to the next element of the innermost array: *out_has_element is 1 when a value follows, 0 when
 * the closing ']' has been consumed. */
alexnet_status an_json_next_element(an_json_reader *reader, int *out_has_element);

alexnet_status an_json_read_string(an_json_reader *reader, an_json_string *out);
/* A non-negative integer without fraction or exponent that fits in 64 bits. */
alexnet_status an_json_read_u64(an_json_reader *reader, uint64_t *out);
alexnet_status an_json_read_bool(an_json_reader *reader, int *out);
alexnet_status an_json_read_null(an_json_reader *reader);
/* Check and step over one value of any type, containers included. */
alexnet_status an_json_skip_value(an_json_reader *reader);
/* Succeeds only if nothing but whitespace remains and every container has been closed. */
alexnet_status an_json_finish(an_json_reader *reader);

/* Release a string from the reader (safe on a zeroed or already released one). */
void an_json_string_free(const alexnet_allocator *allocator, an_json_string *string);

/* ---- helpers shared with writers ---- */

/* Nonzero when bytes[0..length) is well-formed UTF-8 (the same rules the reader applies). */
int an_utf8_valid(const void *bytes, size_t length);
/* The size of text (NUL-terminated) as a quoted JSON string, quotes included. Returns nonzero if that
 * does not fit in size_t. */
int an_json_quoted_length(const char *text, size_t *out_length);
/* Write text as a quoted JSON string (exactly an_json_quoted_length bytes, no NUL) and return the byte
 * after it. '"', '\\' and control characters are escaped; other bytes, UTF-8 included, are copied. */
char *an_json_write_quoted(char *dst, const char *text);

#endif
