/* A main() for the fuzz targets without libFuzzer: runs LLVMFuzzerTestOneInput once on every file named on the
 * command line (directories are walked, one level, in name order). Every build links each target with it, so
 * the seed corpus and every committed crash reproducer are replayed by the ordinary test suite with gcc, and
 * under AddressSanitizer/UBSan in the sanitizer build, even where clang and libFuzzer are absent.
 *
 * Each input is copied into a block of exactly its size, so a read past its end is caught by the sanitizers. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return 1;
    }
    size_t capacity = 4096, size = 0;
    uint8_t *data = malloc(capacity);
    for (;;) {
        if (data == NULL) {
            fprintf(stderr, "out of memory reading %s\n", path);
            fclose(file);
            return 1;
        }
        size += fread(data + size, 1, capacity - size, file);
        if (size < capacity)
            break;
        capacity *= 2;
        uint8_t *grown = realloc(data, capacity);
        if (grown == NULL)
            free(data);
        data = grown;
    }
    int failed = ferror(file);
    fclose(file);
    if (failed) {
        fprintf(stderr, "error reading %s\n", path);
        free(data);
        return 1;
    }
    /* Exactly `size` bytes (one for an empty input, which is then passed with size 0). */
    uint8_t *exact = malloc(size > 0 ? size : 1);
    if (exact == NULL) {
        free(data);
        return 1;
    }
    memcpy(exact, data, size);
    free(data);
    fprintf(stderr, "replay %s (%zu bytes)\n", path, size);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns the number of inputs replayed, or -1 on an error. */
static long replay_path(const char *path)
{
    struct stat info;
    if (stat(path, &info) != 0) {
        fprintf(stderr, "cannot stat %s\n", path);
        return -1;
    }
    if (!S_ISDIR(info.st_mode))
        return replay_file(path) == 0 ? 1 : -1;
    DIR *dir = opendir(path);
    if (dir == NULL) {
        fprintf(stderr, "cannot open directory %s\n", path);
        return -1;
    }
    char **names = NULL;
    size_t count = 0, capacity = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue; /* ".", "..", and hidden files such as .gitkeep */
        if (count == capacity) {
            capacity = capacity ? capacity * 2 : 64;
            char **grown = realloc(names, capacity * sizeof *names);
            if (grown == NULL)
                break;
            names = grown;
        }
        size_t length = strlen(path) + strlen(entry->d_name) + 2;
        names[count] = malloc(length);
        if (names[count] == NULL)
            break;
        snprintf(names[count], length, "%s/%s", path, entry->d_name);
        count++;
    }
    closedir(dir);
    qsort(names, count, sizeof *names, compare_names);
    long replayed = 0;
    for (size_t i = 0; i < count; i++) {
        struct stat child;
        if (replayed >= 0 && stat(names[i], &child) == 0 && S_ISREG(child.st_mode))
            replayed = replay_file(names[i]) == 0 ? replayed + 1 : -1;
        free(names[i]);
    }
    free(names);
    return replayed;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_DIRECTORY...\n", argv[0]);
        return 2;
    }
    long total = 0;
    for (int i = 1; i < argc; i++) {
        long replayed = replay_path(argv[i]);
        if (replayed < 0)
            return 1;
        total += replayed;
    }
    if (total == 0) {
        fprintf(stderr, "no input found: an empty corpus replays nothing\n");
        return 1;
    }
    printf("%s: %ld inputs replayed without a finding\n", argv[0], total);
    return 0;
}
