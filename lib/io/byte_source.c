#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "io/safetensors.h"
#include "util/error.h"

/* A memory source's user pointer is the buffer itself. read() receives no size, so the bounds are checked
 * against source->size by the callers (an_safetensors_* check every read before making it). */
static alexnet_status read_memory(void *user, uint64_t offset, void *dst, size_t size)
{
    if (size != 0)
        memcpy(dst, (const unsigned char *)user + offset, size);
    return ALEXNET_OK;
}

void an_byte_source_from_memory(an_byte_source *source, const void *data, size_t size)
{
    memset(source, 0, sizeof *source);
    source->read = read_memory;
    source->size = size;
    source->user = (void *)data; /* never written through: read_memory only copies from it */
}

/* A file source's user pointer is the FILE, so that copies of the struct read the same stream. */
static alexnet_status read_file(void *user, uint64_t offset, void *dst, size_t size)
{
    FILE *file = user;
    if (size == 0)
        return ALEXNET_OK;
    off_t position = (off_t)offset;
    if (position < 0 || (uint64_t)position != offset) /* off_t may be narrower than 64 bits */
        return an_error(ALEXNET_E_IO, "cannot seek to byte %llu: beyond this platform's file offsets",
                        (unsigned long long)offset);
    if (fseeko(file, position, SEEK_SET) != 0)
        return an_error(ALEXNET_E_IO, "cannot seek to byte %llu: %s", (unsigned long long)offset, strerror(errno));
    size_t got = fread(dst, 1, size, file);
    if (got != size) {
        if (ferror(file))
            return an_error(ALEXNET_E_IO, "reading %zu bytes at byte %llu failed: %s", size,
                            (unsigned long long)offset, strerror(errno));
        return an_error(ALEXNET_E_IO, "unexpected end of file reading %zu bytes at byte %llu (the file shrank?)",
                        size, (unsigned long long)offset);
    }
    return ALEXNET_OK;
}

/* Size of an open regular file; anything else (a directory, a pipe) is refused because it has no size to
 * validate offsets against. */
static alexnet_status measure_file(FILE *file, const char *path, uint64_t *out_size)
{
    struct stat info;
    if (fstat(fileno(file), &info) != 0)
        return an_error(ALEXNET_E_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(info.st_mode))
        return an_error(ALEXNET_E_IO, "%s: not a regular file", path);
    if (fseeko(file, 0, SEEK_END) != 0)
        return an_error(ALEXNET_E_IO, "%s: cannot seek to the end: %s", path, strerror(errno));
    off_t end = ftello(file);
    if (end < 0)
        return an_error(ALEXNET_E_IO, "%s: cannot tell the size: %s", path, strerror(errno));
    *out_size = (uint64_t)end;
    return ALEXNET_OK;
}

alexnet_status an_byte_source_open_file(an_byte_source *source, const char *path)
{
    if (source == NULL || path == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "byte source: source and path must not be NULL");
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return an_error(ALEXNET_E_IO, "%s: cannot open: %s", path, strerror(errno));
    uint64_t size = 0;
    alexnet_status status = measure_file(file, path, &size);
    if (status != ALEXNET_OK) {
        fclose(file);
        return status;
    }
    memset(source, 0, sizeof *source);
    source->read = read_file;
    source->size = size;
    source->user = file;
    source->file = file;
    return ALEXNET_OK;
}

void an_byte_source_close(an_byte_source *source)
{
    if (source == NULL)
        return;
    if (source->file != NULL)
        fclose(source->file); /* opened read-only: nothing buffered can be lost, so the result is moot */
    memset(source, 0, sizeof *source);
}
