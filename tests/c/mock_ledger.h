/* The mock's own ledger (GET URL/mock/ledger, read with curl), the truth
 * the C tests check the client against. Included by each test program.
 * Needs _POSIX_C_SOURCE (popen) and <stdio.h>, <stdlib.h>, <string.h>. */
#ifndef COMFYWIRE_TESTS_MOCK_LEDGER_H
#define COMFYWIRE_TESTS_MOCK_LEDGER_H

/* The body of GET URL/mock/ledger (malloc'ed; NULL when curl failed). */
static inline char *ledger_of(const char *url) {
    char command[512];
    snprintf(command, sizeof command, "curl -fsS '%s/mock/ledger'", url);
    FILE *pipe = popen(command, "r");
    if (pipe == NULL) {
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    size_t got;
    while (text != NULL && (got = fread(text + len, 1, cap - len - 1, pipe)) > 0) {
        len += got;
        if (cap - len < 4096) {
            char *bigger = realloc(text, cap * 2);
            if (bigger == NULL) {
                free(text);
                text = NULL;
                break;
            }
            text = bigger;
            cap *= 2;
        }
    }
    if (pclose(pipe) != 0 || text == NULL) {
        free(text);
        return NULL;
    }
    text[len] = '\0';
    return text;
}

/* The ledger entry of `id` on this server: enqueued entries (0 or 1 for a
 * prompt submitted once there) and its runs, read from the mock's JSON
 * (`{"seq": 0, ..., "prompt_id": "ID", ..., "enqueued": true, ...,
 * "runs": 1, ...}`). */
static inline void entry_of(const char *ledger, const char *id, int *enqueued, long *runs) {
    char key[160];
    snprintf(key, sizeof key, "\"prompt_id\": \"%s\"", id);
    *enqueued = 0;
    *runs = 0;
    for (const char *at = strstr(ledger, key); at != NULL; at = strstr(at + 1, key)) {
        const char *end = strchr(at, '}');
        const char *yes = strstr(at, "\"enqueued\": true");
        const char *run = strstr(at, "\"runs\": ");
        if (end != NULL && yes != NULL && yes < end) {
            *enqueued += 1;
        }
        if (end != NULL && run != NULL && run < end) {
            *runs += strtol(run + strlen("\"runs\": "), NULL, 10);
        }
    }
}

/* How the last entry of `id` left the server (`"end": "deleted"`, ...)
 * into `out` (size `cap`): the empty string while it is pending or
 * running, or when the ledger has no such entry. */
static inline void end_of(const char *ledger, const char *id, char *out, size_t cap) {
    char key[160];
    snprintf(key, sizeof key, "\"prompt_id\": \"%s\"", id);
    out[0] = '\0';
    for (const char *at = strstr(ledger, key); at != NULL; at = strstr(at + 1, key)) {
        const char *close = strchr(at, '}');
        const char *end = strstr(at, "\"end\": \"");
        out[0] = '\0';
        if (close != NULL && end != NULL && end < close) {
            end += strlen("\"end\": \"");
            size_t len = strcspn(end, "\"");
            if (len < cap) {
                memcpy(out, end, len);
                out[len] = '\0';
            }
        }
    }
}

#endif
