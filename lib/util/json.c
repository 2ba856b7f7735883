#include "util/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/checked.h"
#include "util/error.h"

/* ---- errors ---- */

/* Fail with ALEXNET_E_FORMAT, naming the byte offset where the problem was found. */
static alexnet_status AN_PRINTF(2, 3) json_fail(size_t at, const char *format, ...)
{
    char detail[256];
    va_list args;
    va_start(args, format);
    vsnprintf(detail, sizeof detail, format, args);
    va_end(args);
    return an_error(ALEXNET_E_FORMAT, "%s (JSON byte %zu)", detail, at);
}

/* ---- UTF-8 ---- */

static int is_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

/* Length of the well-formed UTF-8 sequence at bytes[0..available), or 0 if it is not one. The second-byte
 * ranges exclude overlong forms (C0, C1, E0 80..9F, F0 80..8F), UTF-16 surrogates (ED A0..BF) and code
 * points above U+10FFFF (F4 90.., F5..FF). */
static size_t utf8_sequence_length(const unsigned char *bytes, size_t available)
{
    unsigned char lead = bytes[0];
    size_t length;
    unsigned char second_min = 0x80, second_max = 0xBF;
    if (lead < 0x80)
        return 1;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        if (lead == 0xE0)
            second_min = 0xA0;
        else if (lead == 0xED)
            second_max = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        if (lead == 0xF0)
            second_min = 0x90;
        else if (lead == 0xF4)
            second_max = 0x8F;
    } else {
        return 0;
    }
    if (available < length || bytes[1] < second_min || bytes[1] > second_max)
        return 0;
    for (size_t i = 2; i < length; i++)
        if (!is_continuation(bytes[i]))
            return 0;
    return length;
}

int an_utf8_valid(const void *bytes, size_t length)
{
    const unsigned char *text = bytes;
    size_t position = 0;
    while (position < length) {
        size_t step = utf8_sequence_length(text + position, length - position);
        if (step == 0)
            return 0;
        position += step;
    }
    return 1;
}

static size_t utf8_encoded_length(uint32_t code_point)
{
    if (code_point < 0x80)
        return 1;
    if (code_point < 0x800)
        return 2;
    if (code_point < 0x10000)
        return 3;
    return 4;
}

static char *utf8_encode(char *dst, uint32_t code_point)
{
    unsigned char *out = (unsigned char *)dst;
    if (code_point < 0x80) {
        *out++ = (unsigned char)code_point;
    } else if (code_point < 0x800) {
        *out++ = (unsigned char)(0xC0 | (code_point >> 6));
        *out++ = (unsigned char)(0x80 | (code_point & 0x3F));
    } else if (code_point < 0x10000) {
        *out++ = (unsigned char)(0xE0 | (code_point >> 12));
        *out++ = (unsigned char)(0x80 | ((code_point >> 6) & 0x3F));
        *out++ = (unsigned char)(0x80 | (code_point & 0x3F));
    } else {
        *out++ = (unsigned char)(0xF0 | (code_point >> 18));
        *out++ = (unsigned char)(0x80 | ((code_point >> 12) & 0x3F));
        *out++ = (unsigned char)(0x80 | ((code_point >> 6) & 0x3F));
        *out++ = (unsigned char)(0x80 | (code_point & 0x3F));
    }
    return (char *)out;
}

/* ---- lexical helpers ---- */

void an_json_reader_init(an_json_reader *reader, const void *text, size_t length, const alexnet_allocator *allocator)
{
    memset(reader, 0, sizeof *reader);
    reader->text = text;
    reader->length = length;
    reader->allocator = allocator;
}

static int is_whitespace(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static void skip_whitespace(an_json_reader *reader)
{
    while (reader->position < reader->length && is_whitespace(reader->text[reader->position]))
        reader->position++;
}

static int at_end(const an_json_reader *reader) { return reader->position >= reader->length; }

static unsigned char current(const an_json_reader *reader) { return reader->text[reader->position]; }

/* Describe the byte at `at` for a message: printable ASCII as itself, anything else in hex. */
static void describe_byte(const an_json_reader *reader, size_t at, char *out, size_t size)
{
    if (at >= reader->length) {
        snprintf(out, size, "end of input");
        return;
    }
    unsigned char c = reader->text[at];
    if (c >= 0x20 && c < 0x7F)
        snprintf(out, size, "'%c'", (char)c);
    else
        snprintf(out, size, "byte 0x%02x", (unsigned)c);
}

static alexnet_status fail_unexpected(const an_json_reader *reader, const char *expected)
{
    char found[32];
    describe_byte(reader, reader->position, found, sizeof found);
    return json_fail(reader->position, "expected %s, found %s", expected, found);
}

/* The value of four hex digits at text[at..at+4), or -1. */
static long parse_hex4(const an_json_reader *reader, size_t at)
{
    if (at > reader->length || reader->length - at < 4)
        return -1;
    long value = 0;
    for (size_t i = 0; i < 4; i++) {
        unsigned char c = reader->text[at + i];
        int digit;
        if (c >= '0' && c <= '9')
            digit = c - '0';
        else if (c >= 'a' && c <= 'f')
            digit = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            digit = c - 'A' + 10;
        else
            return -1;
        value = value * 16 + digit;
    }
    return value;
}

static int is_high_surrogate(long unit) { return unit >= 0xD800 && unit <= 0xDBFF; }
static int is_low_surrogate(long unit) { return unit >= 0xDC00 && unit <= 0xDFFF; }

/* ---- strings ---- */

/* Decode the \u escape (or surrogate pair) at text[at] == '\\', text[at + 1] == 'u'. Sets the code point
 * and the escape's length in bytes (6 or 12). */
static alexnet_status scan_unicode_escape(const an_json_reader *reader, size_t at, uint32_t *out_code_point,
                                          size_t *out_length)
{
    long unit = parse_hex4(reader, at + 2);
    if (unit < 0)
        return json_fail(at, "invalid \\u escape: four hex digits must follow");
    if (is_low_surrogate(unit))
        return json_fail(at, "unpaired low surrogate \\u%04lX in string", unit);
    if (!is_high_surrogate(unit)) {
        *out_code_point = (uint32_t)unit;
        *out_length = 6;
        return ALEXNET_OK;
    }
    size_t next = at + 6;
    long low = -1;
    if (reader->length - next >= 6 && reader->text[next] == '\\' && reader->text[next + 1] == 'u')
        low = parse_hex4(reader, next + 2);
    if (!is_low_surrogate(low))
        return json_fail(at, "unpaired high surrogate \\u%04lX in string", unit);
    *out_code_point = 0x10000 + (((uint32_t)unit - 0xD800) << 10) + ((uint32_t)low - 0xDC00);
    *out_length = 12;
    return ALEXNET_OK;
}

/* Validate the string starting at the '"' at reader->position without consuming it. Sets the offset just
 * past the closing quote and the length of the decoded UTF-8 (never more than the raw length). */
static alexnet_status scan_string(const an_json_reader *reader, size_t *out_end, size_t *out_decoded_length)
{
    size_t start = reader->position;
    size_t at = start + 1;
    size_t decoded = 0;
    for (;;) {
        if (at >= reader->length)
            return json_fail(start, "unterminated string");
        unsigned char c = reader->text[at];
        if (c == '"')
            break;
        if (c == '\\') {
            if (at + 1 >= reader->length)
                return json_fail(start, "unterminated string");
            unsigned char escape = reader->text[at + 1];
            if (escape == 'u') {
                uint32_t code_point = 0;
                size_t escape_length = 0;
                alexnet_status status = scan_unicode_escape(reader, at, &code_point, &escape_length);
                if (status != ALEXNET_OK)
                    return status;
                decoded += utf8_encoded_length(code_point);
                at += escape_length;
            } else if (escape != '\0' && strchr("\"\\/bfnrt", escape) != NULL) {
                decoded += 1;
                at += 2;
            } else {
                char what[32];
                describe_byte(reader, at + 1, what, sizeof what);
                return json_fail(at, "invalid escape: backslash followed by %s", what);
            }
        } else if (c < 0x20) {
            return json_fail(at, "control character 0x%02x in string must be escaped", (unsigned)c);
        } else {
            size_t step = utf8_sequence_length(reader->text + at, reader->length - at);
            if (step == 0)
                return json_fail(at, "invalid UTF-8 in string");
            decoded += step;
            at += step;
        }
    }
    *out_end = at + 1;
    *out_decoded_length = decoded;
    return ALEXNET_OK;
}

static char simple_escape_value(unsigned char escape)
{
    switch (escape) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    default: return (char)escape; /* '"', '\\', '/' stand for themselves */
    }
}

/* Decode a string that scan_string has accepted; text[begin] is the opening quote. */
static void decode_string(const an_json_reader *reader, size_t begin, char *dst)
{
    size_t at = begin + 1;
    for (;;) {
        unsigned char c = reader->text[at];
        if (c == '"')
            break;
        if (c != '\\') {
            *dst++ = (char)c;
            at++;
        } else if (reader->text[at + 1] == 'u') {
            uint32_t code_point = 0;
            size_t escape_length = 0;
            /* Already validated, so this cannot fail. */
            (void)scan_unicode_escape(reader, at, &code_point, &escape_length);
            dst = utf8_encode(dst, code_point);
            at += escape_length;
        } else {
            *dst++ = simple_escape_value(reader->text[at + 1]);
            at += 2;
        }
    }
    *dst = '\0';
}

/* Read the string at reader->position (which holds '"'): decode it into *out, or only check it when out
 * is NULL. */
static alexnet_status take_string(an_json_reader *reader, an_json_string *out)
{
    size_t end = 0, decoded_length = 0;
    alexnet_status status = scan_string(reader, &end, &decoded_length);
    if (status != ALEXNET_OK)
        return status;
    if (out != NULL) {
        char *data = an_alloc(reader->allocator, decoded_length + 1, "JSON string");
        if (data == NULL)
            return ALEXNET_E_OUT_OF_MEMORY;
        decode_string(reader, reader->position, data);
        out->data = data;
        out->length = decoded_length;
    }
    reader->position = end;
    return ALEXNET_OK;
}

void an_json_string_free(const alexnet_allocator *allocator, an_json_string *string)
{
    if (string->data != NULL)
        an_free(allocator, string->data, string->length + 1);
    string->data = NULL;
    string->length = 0;
}

/* ---- values ---- */

const char *an_json_type_name(an_json_type type)
{
    switch (type) {
    case AN_JSON_OBJECT: return "an object";
    case AN_JSON_ARRAY: return "an array";
    case AN_JSON_STRING: return "a string";
    case AN_JSON_NUMBER: return "a number";
    case AN_JSON_TRUE: return "true";
    case AN_JSON_FALSE: return "false";
    case AN_JSON_NULL: return "null";
    }
    return "an unknown value";
}

alexnet_status an_json_peek(an_json_reader *reader, an_json_type *out_type)
{
    skip_whitespace(reader);
    if (at_end(reader))
        return json_fail(reader->position, "unexpected end of input, expected a value");
    unsigned char c = current(reader);
    switch (c) {
    case '{': *out_type = AN_JSON_OBJECT; return ALEXNET_OK;
    case '[': *out_type = AN_JSON_ARRAY; return ALEXNET_OK;
    case '"': *out_type = AN_JSON_STRING; return ALEXNET_OK;
    case 't': *out_type = AN_JSON_TRUE; return ALEXNET_OK;
    case 'f': *out_type = AN_JSON_FALSE; return ALEXNET_OK;
    case 'n': *out_type = AN_JSON_NULL; return ALEXNET_OK;
    default:
        if (c == '-' || is_digit(c)) {
            *out_type = AN_JSON_NUMBER;
            return ALEXNET_OK;
        }
        return fail_unexpected(reader, "a value");
    }
}

/* Peek and require a given type. */
static alexnet_status expect_type(an_json_reader *reader, an_json_type wanted, const char *wanted_name)
{
    an_json_type type = AN_JSON_NULL;
    alexnet_status status = an_json_peek(reader, &type);
    if (status != ALEXNET_OK)
        return status;
    if (type != wanted)
        return json_fail(reader->position, "expected %s, found %s", wanted_name, an_json_type_name(type));
    return ALEXNET_OK;
}

alexnet_status an_json_read_string(an_json_reader *reader, an_json_string *out)
{
    alexnet_status status = expect_type(reader, AN_JSON_STRING, "a string");
    if (status != ALEXNET_OK)
        return status;
    return take_string(reader, out);
}

/* The shape of a number token, per the RFC 8259 grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
typedef struct number_token {
    size_t begin, end;
    size_t digits_begin, digits_end; /* the integer part, without sign */
    int negative, has_fraction, has_exponent;
} number_token;

static size_t skip_digits(const an_json_reader *reader, size_t at)
{
    while (at < reader->length && is_digit(reader->text[at]))
        at++;
    return at;
}

static alexnet_status scan_number(const an_json_reader *reader, number_token *token)
{
    size_t at = reader->position;
    memset(token, 0, sizeof *token);
    token->begin = at;
    if (reader->text[at] == '-') {
        token->negative = 1;
        at++;
    }
    token->digits_begin = at;
    if (at >= reader->length || !is_digit(reader->text[at]))
        return json_fail(token->begin, "invalid number: a digit must follow '-'");
    if (reader->text[at] == '0') {
        at++;
        if (at < reader->length && is_digit(reader->text[at]))
            return json_fail(token->begin, "invalid number: leading zeros are not allowed");
    } else {
        at = skip_digits(reader, at);
    }
    token->digits_end = at;
    if (at < reader->length && reader->text[at] == '.') {
        token->has_fraction = 1;
        size_t after = skip_digits(reader, at + 1);
        if (after == at + 1)
            return json_fail(token->begin, "invalid number: a digit must follow '.'");
        at = after;
    }
    if (at < reader->length && (reader->text[at] == 'e' || reader->text[at] == 'E')) {
        token->has_exponent = 1;
        at++;
        if (at < reader->length && (reader->text[at] == '+' || reader->text[at] == '-'))
            at++;
        size_t after = skip_digits(reader, at);
        if (after == at)
            return json_fail(token->begin, "invalid number: a digit must follow the exponent marker");
        at = after;
    }
    token->end = at;
    return ALEXNET_OK;
}

alexnet_status an_json_read_u64(an_json_reader *reader, uint64_t *out)
{
    an_json_type type = AN_JSON_NULL;
    alexnet_status status = an_json_peek(reader, &type);
    if (status != ALEXNET_OK)
        return status;
    if (type != AN_JSON_NUMBER)
        return json_fail(reader->position, "expected a non-negative integer, found %s",
                         an_json_type_name(type));
    number_token token;
    status = scan_number(reader, &token);
    if (status != ALEXNET_OK)
        return status;
    /* Show at most 40 characters of the offending token. */
    int shown = (int)(token.end - token.begin < 40 ? token.end - token.begin : 40);
    const char *token_text = (const char *)reader->text + token.begin;
    if (token.negative || token.has_fraction || token.has_exponent)
        return json_fail(token.begin, "expected a non-negative integer, found '%.*s'", shown, token_text);
    uint64_t value = 0;
    for (size_t at = token.digits_begin; at < token.digits_end; at++) {
        uint64_t digit = (uint64_t)(reader->text[at] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return json_fail(token.begin, "integer '%.*s' does not fit in 64 bits", shown, token_text);
        value = value * 10 + digit;
    }
    reader->position = token.end;
    *out = value;
    return ALEXNET_OK;
}

/* Consume the literal `word` (true/false/null) at the current position. */
static alexnet_status take_literal(an_json_reader *reader, const char *word)
{
    size_t length = strlen(word);
    if (reader->length - reader->position < length || memcmp(reader->text + reader->position, word, length) != 0)
        return json_fail(reader->position, "invalid literal, expected '%s'", word);
    reader->position += length;
    return ALEXNET_OK;
}

alexnet_status an_json_read_bool(an_json_reader *reader, int *out)
{
    an_json_type type = AN_JSON_NULL;
    alexnet_status status = an_json_peek(reader, &type);
    if (status != ALEXNET_OK)
        return status;
    if (type != AN_JSON_TRUE && type != AN_JSON_FALSE)
        return json_fail(reader->position, "expected a boolean, found %s", an_json_type_name(type));
    status = take_literal(reader, type == AN_JSON_TRUE ? "true" : "false");
    if (status == ALEXNET_OK)
        *out = type == AN_JSON_TRUE;
    return status;
}

alexnet_status an_json_read_null(an_json_reader *reader)
{
    alexnet_status status = expect_type(reader, AN_JSON_NULL, "null");
    if (status != ALEXNET_OK)
        return status;
    return take_literal(reader, "null");
}

/* ---- containers ---- */

static alexnet_status open_container(an_json_reader *reader, an_json_type type)
{
    alexnet_status status = expect_type(reader, type, an_json_type_name(type));
    if (status != ALEXNET_OK)
        return status;
    if (reader->depth >= AN_JSON_MAX_DEPTH)
        return json_fail(reader->position, "nesting deeper than %d levels", AN_JSON_MAX_DEPTH);
    reader->depth++;
    reader->container[reader->depth] = type == AN_JSON_OBJECT ? '{' : '[';
    reader->has_items[reader->depth] = 0;
    reader->position++;
    return ALEXNET_OK;
}

alexnet_status an_json_begin_object(an_json_reader *reader) { return open_container(reader, AN_JSON_OBJECT); }

alexnet_status an_json_begin_array(an_json_reader *reader) { return open_container(reader, AN_JSON_ARRAY); }

/* Shared by next_member and next_element: consume the closing bracket (returning 0) or the separating ','
 * before an item that is not the first (returning 1). */
static alexnet_status advance_in_container(an_json_reader *reader, char open, int *out_has_item)
{
    char close = open == '{' ? '}' : ']';
    const char *kind = open == '{' ? "object" : "array";
    if (reader->depth == 0 || reader->container[reader->depth] != open)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "JSON reader: not inside an %s", kind);
    skip_whitespace(reader);
    if (at_end(reader))
        return json_fail(reader->position, "unterminated %s", kind);
    if (current(reader) == close) {
        reader->position++;
        reader->depth--;
        *out_has_item = 0;
        return ALEXNET_OK;
    }
    if (reader->has_items[reader->depth]) {
        if (current(reader) != ',') {
            char expected[24];
            snprintf(expected, sizeof expected, "',' or '%c'", close);
            return fail_unexpected(reader, expected);
        }
        reader->position++;
        skip_whitespace(reader);
    }
    reader->has_items[reader->depth] = 1;
    *out_has_item = 1;
    return ALEXNET_OK;
}

alexnet_status an_json_next_member(an_json_reader *reader, an_json_string *out_key, int *out_has_member)
{
    int has_member = 0;
    alexnet_status status = advance_in_container(reader, '{', &has_member);
    if (status != ALEXNET_OK)
        return status;
    if (!has_member) {
        *out_has_member = 0;
        return ALEXNET_OK;
    }
    if (at_end(reader) || current(reader) != '"')
        return fail_unexpected(reader, "a string key");
    /* Check the key and the ':' before decoding, so that a failure leaves nothing allocated. */
    size_t key_begin = reader->position, key_end = 0, decoded_length = 0;
    status = scan_string(reader, &key_end, &decoded_length);
    if (status != ALEXNET_OK)
        return status;
    reader->position = key_end;
    skip_whitespace(reader);
    if (at_end(reader) || current(reader) != ':')
        return fail_unexpected(reader, "':' after an object key");
    size_t value_position = reader->position + 1;
    if (out_key != NULL) {
        reader->position = key_begin;
        status = take_string(reader, out_key);
        if (status != ALEXNET_OK)
            return status;
    }
    reader->position = value_position;
    *out_has_member = 1;
    return ALEXNET_OK;
}

alexnet_status an_json_next_element(an_json_reader *reader, int *out_has_element)
{
    return advance_in_container(reader, '[', out_has_element);
}

alexnet_status an_json_skip_value(an_json_reader *reader)
{
    an_json_type type = AN_JSON_NULL;
    alexnet_status status = an_json_peek(reader, &type);
    if (status != ALEXNET_OK)
        return status;
    int has_item = 0;
    number_token token;
    switch (type) {
    case AN_JSON_OBJECT:
        /* Recursion is bounded: open_container refuses more than AN_JSON_MAX_DEPTH levels. */
        status = an_json_begin_object(reader);
        while (status == ALEXNET_OK && (status = an_json_next_member(reader, NULL, &has_item)) == ALEXNET_OK &&
               has_item)
            status = an_json_skip_value(reader);
        return status;
    case AN_JSON_ARRAY:
        status = an_json_begin_array(reader);
        while (status == ALEXNET_OK && (status = an_json_next_element(reader, &has_item)) == ALEXNET_OK &&
               has_item)
            status = an_json_skip_value(reader);
        return status;
    case AN_JSON_STRING:
        return take_string(reader, NULL);
    case AN_JSON_NUMBER:
        status = scan_number(reader, &token);
        if (status == ALEXNET_OK)
            reader->position = token.end;
        return status;
    case AN_JSON_TRUE: return take_literal(reader, "true");
    case AN_JSON_FALSE: return take_literal(reader, "false");
    case AN_JSON_NULL: return take_literal(reader, "null");
    }
    return json_fail(reader->position, "unknown value type");
}

alexnet_status an_json_finish(an_json_reader *reader)
{
    if (reader->depth != 0)
        return json_fail(reader->position, "%u container(s) left open", (unsigned)reader->depth);
    skip_whitespace(reader);
    if (!at_end(reader)) {
        char found[32];
        describe_byte(reader, reader->position, found, sizeof found);
        return json_fail(reader->position, "trailing data after the JSON value: %s", found);
    }
    return ALEXNET_OK;
}

/* ---- quoting for writers ---- */

/* The escape for byte c as written by an_json_write_quoted: 0 when c is copied as is. */
static char short_escape(unsigned char c)
{
    switch (c) {
    case '"': return '"';
    case '\\': return '\\';
    case '\b': return 'b';
    case '\f': return 'f';
    case '\n': return 'n';
    case '\r': return 'r';
    case '\t': return 't';
    default: return 0;
    }
}

static size_t quoted_byte_length(unsigned char c)
{
    if (short_escape(c) != 0)
        return 2;
    return c < 0x20 ? 6 : 1; /* other control characters become \u00XX */
}

int an_json_quoted_length(const char *text, size_t *out_length)
{
    size_t total = 2;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
        if (an_add_overflow_size(total, quoted_byte_length(*p), &total))
            return 1;
    *out_length = total;
    return 0;
}

char *an_json_write_quoted(char *dst, const char *text)
{
    static const char hex[] = "0123456789abcdef";
    *dst++ = '"';
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        char escape = short_escape(*p);
        if (escape != 0) {
            *dst++ = '\\';
            *dst++ = escape;
        } else if (*p < 0x20) {
            memcpy(dst, "\\u00", 4);
            dst[4] = hex[*p >> 4];
            dst[5] = hex[*p & 0xF];
            dst += 6;
        } else {
            *dst++ = (char)*p;
        }
    }
    *dst++ = '"';
    return dst;
}
