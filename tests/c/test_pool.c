/* C tests of comfywire_pool against three comfywire-mock servers.
 *
 * usage: test_pool URL0 URL1 URL2
 * The script starts `comfywire-mock --count 3 --port 0`, which prints the
 * three URLs. Each mock's own ledger (GET /mock/ledger, read with curl) is
 * the truth: every prompt of the batch enqueued and run exactly once, on
 * the server its outcome names.
 * Last line: "N passed, N failed"; exit status 0 only when nothing failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <comfywire.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_ledger.h"

static int passed;
static int failed;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (cond) {                                                            \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            const char *err_ = comfywire_last_error_message();                 \
            fprintf(stderr, "FAIL %s:%d: %s (last error: %s)\n", __FILE__,     \
                    __LINE__, #cond, err_ ? err_ : "none");                    \
        }                                                                      \
    } while (0)

#define SERVERS 3
#define BATCH 24

/* Any graph the mock does not know plays its default recording. */
static const char *WORKFLOW =
    "{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": 64}},"
    " \"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"1\", 0]}}}";

static const char *urls[SERVERS];

/* Counts the non-overlapping occurrences of `needle` in `text`. */
static int count_of(const char *text, const char *needle) {
    int n = 0;
    size_t len = strlen(needle);
    for (const char *at = strstr(text, needle); at != NULL; at = strstr(at + len, needle)) {
        n++;
    }
    return n;
}

static int label_index(const char *label) {
    for (int i = 0; i < SERVERS; i++) {
        char name[8];
        snprintf(name, sizeof name, "gpu%d", i);
        if (label != NULL && strcmp(label, name) == 0) {
            return i;
        }
    }
    return -1;
}

static void test_bad_inputs(void) {
    comfywire_pool *pool = (comfywire_pool *)1;
    CHECK(comfywire_pool_new(NULL, &pool) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(pool == NULL);
    CHECK(comfywire_pool_new("{\"url\": \"http://127.0.0.1:9\"}", &pool) == COMFYWIRE_CONFIG);
    CHECK(pool == NULL);
    CHECK(comfywire_pool_new("{\"servers\": [{\"label\": \"no url\"}]}", &pool) ==
          COMFYWIRE_CONFIG);
    CHECK(comfywire_pool_new("{\"servers\": [{\"url\": \"http://127.0.0.1:9\", \"weight\": 0}]}",
                             &pool) == COMFYWIRE_CONFIG);
    CHECK(comfywire_pool_new("not json", &pool) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_pool_new("{}", NULL) == COMFYWIRE_INVALID_ARGUMENT);
    char *text = NULL;
    comfywire_outcome *outcome = NULL;
    CHECK(comfywire_pool_submit(NULL, WORKFLOW, &text) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_pool_wait(NULL, "x", 0, &outcome) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_pool_run(NULL, WORKFLOW, 0, &outcome) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_pool_stats_json(NULL, &text) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_pool_next_event_json(NULL, 0, &text) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_pool_close(NULL) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_outcome_server(NULL) == NULL);
    CHECK(comfywire_outcome_pool_json(NULL) == NULL);
    comfywire_pool_free(NULL);
}

static comfywire_pool *start_pool(void) {
    char settings[1024];
    snprintf(settings, sizeof settings,
             "{\"servers\": [{\"url\": \"%s\", \"label\": \"gpu0\"},"
             " {\"url\": \"%s\", \"label\": \"gpu1\"},"
             " {\"url\": \"%s\", \"label\": \"gpu2\"}], \"pool_grace_s\": 10}",
             urls[0], urls[1], urls[2]);
    comfywire_pool *pool = NULL;
    CHECK(comfywire_pool_new(settings, &pool) == COMFYWIRE_OK);
    if (pool == NULL) {
        return NULL;
    }
    size_t healthy = 0;
    CHECK(comfywire_pool_wait_healthy(pool, SERVERS, 60000, &healthy) == COMFYWIRE_OK);
    CHECK(healthy == SERVERS);
    return pool;
}

static void test_batch(comfywire_pool *pool) {
    /* The pull queue starts with its first call: before any submission.
     * What the servers said since they came up (a late `status` under
     * valgrind) may be there already: it is taken until none is left. */
    int pulled = 1, drained = 0;
    for (int pulls = 0; pulls < 100 && !drained; pulls++) {
        char *event = NULL;
        pulled &= comfywire_pool_next_event_json(pool, 0, &event) == COMFYWIRE_OK;
        drained = event == NULL;
        comfywire_string_free(event);
    }
    CHECK(pulled && drained);

    char *ids[BATCH] = {0};
    int server_of[BATCH];
    int per_server[SERVERS] = {0};
    for (int i = 0; i < BATCH; i++) {
        CHECK(comfywire_pool_submit(pool, WORKFLOW, &ids[i]) == COMFYWIRE_OK);
    }
    for (int i = 0; i < BATCH; i++) {
        server_of[i] = -1;
        if (ids[i] == NULL) {
            continue;
        }
        comfywire_outcome *outcome = NULL;
        CHECK(comfywire_pool_wait(pool, ids[i], 60000, &outcome) == COMFYWIRE_OK);
        CHECK(outcome != NULL);
        if (outcome == NULL) {
            continue;
        }
        CHECK(comfywire_outcome_succeeded(outcome));
        CHECK(strcmp(comfywire_outcome_prompt_id(outcome), ids[i]) == 0);
        const char *server = comfywire_outcome_server(outcome);
        server_of[i] = label_index(server);
        CHECK(server_of[i] >= 0);
        if (server_of[i] >= 0) {
            per_server[server_of[i]]++;
        }
        const char *pool_json = comfywire_outcome_pool_json(outcome);
        CHECK(pool_json != NULL && strstr(pool_json, "\"moves\":[]") != NULL);
        CHECK(pool_json != NULL && strstr(pool_json, "\"status\":\"succeeded\"") != NULL);
        CHECK(strstr(comfywire_outcome_outputs_json(outcome), "filename") != NULL);
        comfywire_outcome_free(outcome);
    }

    /* Each mock's own ledger: every prompt enqueued and run exactly once
     * across the three, on the server its outcome names; each got some. */
    char *ledgers[SERVERS];
    for (int s = 0; s < SERVERS; s++) {
        ledgers[s] = ledger_of(urls[s]);
        CHECK(ledgers[s] != NULL);
    }
    for (int i = 0; i < BATCH; i++) {
        int enqueued_total = 0;
        long runs_total = 0;
        for (int s = 0; s < SERVERS; s++) {
            int enqueued = 0;
            long runs = 0;
            if (ids[i] != NULL && ledgers[s] != NULL) {
                entry_of(ledgers[s], ids[i], &enqueued, &runs);
            }
            enqueued_total += enqueued;
            runs_total += runs;
            if (enqueued > 0) {
                CHECK(s == server_of[i]);
            }
        }
        CHECK(enqueued_total == 1);
        CHECK(runs_total == 1);
    }
    for (int s = 0; s < SERVERS; s++) {
        CHECK(per_server[s] > 0);
        printf("gpu%d ran %d of %d\n", s, per_server[s], BATCH);
        free(ledgers[s]);
    }

    /* The pull queue: one `finished` per submission, each with its server. */
    int finished = 0, tagged = 0;
    for (int round = 0; round < 100000 && finished < BATCH; round++) {
        char *json = NULL;
        if (comfywire_pool_next_event_json(pool, 20000, &json) != COMFYWIRE_OK || json == NULL) {
            break;
        }
        if (strstr(json, "\"server\":\"gpu") != NULL) {
            tagged++;
        }
        if (strncmp(json, "{\"event\":\"finished\"", 19) == 0) {
            finished++;
        }
        comfywire_string_free(json);
    }
    CHECK(finished == BATCH);
    CHECK(tagged >= finished);

    char *stats = NULL;
    CHECK(comfywire_pool_stats_json(pool, &stats) == COMFYWIRE_OK);
    CHECK(stats != NULL && count_of(stats, "\"in_flight\":0") == SERVERS);
    CHECK(stats != NULL && count_of(stats, "\"healthy\":true") == SERVERS);
    CHECK(stats != NULL && strstr(stats, "\"label\":\"gpu2\"") != NULL);
    comfywire_string_free(stats);
    for (int i = 0; i < BATCH; i++) {
        comfywire_string_free(ids[i]);
    }
}

static void test_run_wait_and_close(comfywire_pool *pool) {
    comfywire_outcome *outcome = NULL;
    CHECK(comfywire_pool_run(pool, WORKFLOW, 60000, &outcome) == COMFYWIRE_OK);
    CHECK(outcome != NULL && comfywire_outcome_succeeded(outcome));
    CHECK(outcome != NULL && label_index(comfywire_outcome_server(outcome)) >= 0);
    comfywire_outcome_free(outcome);

    /* An unknown submission, a bad workflow, a wait's own time limit. */
    CHECK(comfywire_pool_wait(pool, "no-such-id", 1000, &outcome) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(outcome == NULL);
    char *id = NULL;
    CHECK(comfywire_pool_submit(pool, "{not json", &id) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(id == NULL);
    CHECK(comfywire_pool_submit(pool, WORKFLOW, &id) == COMFYWIRE_OK);
    CHECK(comfywire_pool_wait(pool, id, 1, &outcome) == COMFYWIRE_TIMEOUT);
    CHECK(outcome == NULL);
    CHECK(comfywire_pool_wait(pool, id, 60000, &outcome) == COMFYWIRE_OK);
    comfywire_outcome_free(outcome);
    bool sent = true;
    CHECK(comfywire_pool_interrupt(pool, id, &sent) == COMFYWIRE_OK);
    CHECK(!sent); /* it has ended: nothing to interrupt */
    comfywire_string_free(id);

    CHECK(comfywire_pool_close(pool) == COMFYWIRE_OK);
    CHECK(comfywire_pool_close(pool) == COMFYWIRE_OK);
    CHECK(comfywire_pool_submit(pool, WORKFLOW, &id) == COMFYWIRE_CLOSED);
    CHECK(comfywire_pool_run(pool, WORKFLOW, 1000, &outcome) == COMFYWIRE_CLOSED);
}

int main(int argc, char **argv) {
    if (argc < 1 + SERVERS) {
        fprintf(stderr, "usage: %s URL0 URL1 URL2\n", argv[0]);
        return 2;
    }
    for (int i = 0; i < SERVERS; i++) {
        urls[i] = argv[1 + i];
    }
    printf("comfywire %s: a pool over %s %s %s\n", comfywire_version(), urls[0], urls[1],
           urls[2]);
    test_bad_inputs();
    comfywire_pool *pool = start_pool();
    if (pool != NULL) {
        test_batch(pool);
        test_run_wait_and_close(pool);
        comfywire_pool_free(pool);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
