/* C tests of libcomfywire against comfywire-mock.
 *
 * usage: test_capi MOCK_URL
 * The script starts the mock; the execution-error case injects its fault
 * with curl (POST /mock/fault), which every CI machine here has.
 * Last line: "N passed, N failed"; exit status 0 only when nothing failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <comfywire.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* Any graph the mock does not know plays its default recording
 * (success_single: 8 progress steps with JPEG previews, one SaveImage). */
static const char *WORKFLOW =
    "{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": 64}},"
    " \"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"1\", 0]}}}";

static const char *mock_url;

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int inject_fault(const char *fault) {
    char command[512];
    snprintf(command, sizeof command,
             "curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' "
             "-d '{\"fault\":\"%s\"}' '%s/mock/fault'",
             fault, mock_url);
    return system(command);
}

static int set_speed(const char *speed) {
    char command[512];
    snprintf(command, sizeof command,
             "curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' "
             "-d '{\"speed\":%s}' '%s/mock/speed'",
             speed, mock_url);
    return system(command);
}

static int str_eq(const char *a, const char *b) {
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* ---- callback bookkeeping (written on the dispatcher thread) ---- */

typedef struct {
    atomic_int progress;
    atomic_int finished;
    atomic_int other;
    atomic_int freed;
} counters;

static void on_event(void *user_data, const comfywire_event *event) {
    counters *c = user_data;
    const char *kind = comfywire_event_kind(event);
    if (str_eq(kind, "progress")) {
        atomic_fetch_add(&c->progress, 1);
    } else if (str_eq(kind, "finished")) {
        atomic_fetch_add(&c->finished, 1);
    } else {
        atomic_fetch_add(&c->other, 1);
    }
}

static void free_counters(void *user_data) {
    counters *c = user_data;
    atomic_fetch_add(&c->freed, 1);
}

static atomic_int heap_frees;

static void free_heap(void *user_data) {
    free(user_data);
    atomic_fetch_add(&heap_frees, 1);
}

static void wait_for(atomic_int *value, int at_least, long timeout_ms) {
    for (long waited = 0; atomic_load(value) < at_least && waited < timeout_ms; waited += 20) {
        sleep_ms(20);
    }
}

/* ---- tests ---- */

/* A callback that calls a blocking function and unsubscribes itself,
 * which the header documents as allowed on the dispatcher thread. */
typedef struct {
    comfywire_client *client;
    _Atomic uint64_t id;
    atomic_int queue_ok;
    atomic_int unsubscribed;
    atomic_int calls;
    atomic_int freed;
} reentrant;

static void on_finished_reenter(void *user_data, const comfywire_event *event) {
    reentrant *r = user_data;
    (void)event;
    atomic_fetch_add(&r->calls, 1);
    char *queue = NULL;
    if (comfywire_queue(r->client, &queue) == COMFYWIRE_OK && queue != NULL) {
        atomic_store(&r->queue_ok, 1);
    }
    comfywire_string_free(queue);
    if (comfywire_unsubscribe(r->client, atomic_load(&r->id)) == COMFYWIRE_OK) {
        atomic_store(&r->unsubscribed, 1);
    }
}

static void free_reentrant(void *user_data) {
    reentrant *r = user_data;
    atomic_fetch_add(&r->freed, 1);
}

static void test_reentrant_callback(comfywire_client *client) {
    reentrant r;
    memset(&r, 0, sizeof r);
    r.client = client;
    uint64_t id = 0;
    CHECK(comfywire_subscribe(client, "finished", NULL, on_finished_reenter, &r, free_reentrant,
                              &id) == COMFYWIRE_OK);
    atomic_store(&r.id, id);
    comfywire_outcome *outcome = NULL;
    CHECK(comfywire_run(client, WORKFLOW, 60000, &outcome) == COMFYWIRE_OK);
    comfywire_outcome_free(outcome);
    wait_for(&r.freed, 1, 5000);
    CHECK(atomic_load(&r.calls) == 1);
    CHECK(atomic_load(&r.queue_ok) == 1);
    CHECK(atomic_load(&r.unsubscribed) == 1);
    CHECK(atomic_load(&r.freed) == 1); /* released once, after the call returned */
    CHECK(comfywire_unsubscribe(client, id) == COMFYWIRE_INVALID_ARGUMENT);
}


/* ---- callbacks that call back: close, free, unsubscribe, submit ---- */

/* A call back into the client that must return at once may take this
 * long at most (generous, for valgrind on a loaded machine). */
#define AT_ONCE_MS 5000
/* Frames a firehose sends: far more than the client reads before a
 * callback closes it. */
#define FLOOD 100000

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Starts the mock sending `frames` frames to the client's socket as fast
 * as it takes them, in the background (curl exits when the firehose ends,
 * which a closed socket cuts short). */
static int start_firehose(comfywire_client *client, long frames) {
    char *id = NULL;
    if (comfywire_client_id(client, &id) != COMFYWIRE_OK) {
        return -1;
    }
    char command[768];
    snprintf(command, sizeof command,
             "curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' "
             "-d '{\"client_id\":\"%s\",\"frames\":%ld,\"scenario\":\"long_run\"}' "
             "'%s/mock/firehose' >/dev/null 2>&1 &",
             id, frames, mock_url);
    comfywire_string_free(id);
    return system(command);
}

/* Frames the client has read so far. */
static unsigned long long frames_read(comfywire_client *client) {
    char *stats = NULL;
    unsigned long long frames = 0;
    if (comfywire_stats_json(client, &stats) == COMFYWIRE_OK && stats != NULL) {
        const char *at = strstr(stats, "\"frames\":");
        if (at != NULL) {
            frames = strtoull(at + strlen("\"frames\":"), NULL, 10);
        }
    }
    comfywire_string_free(stats);
    return frames;
}

/* Waits (boundedly) until the client read `more` frames past `base`: the
 * socket kept delivering while a callback held the dispatcher, so the
 * hand-off to the dispatcher is full. */
static int frames_past(comfywire_client *client, unsigned long long base, unsigned long long more) {
    for (long waited = 0; waited < 20000; waited += 5) {
        if (frames_read(client) >= base + more) {
            return 1;
        }
        sleep_ms(5);
    }
    return 0;
}

/* A client that turns every progress step and preview into an event. */
static comfywire_client *unthrottled_client(void) {
    char settings[512];
    snprintf(settings, sizeof settings,
             "{\"url\": \"%s\", \"preview_interval_ms\": 0, \"progress_interval_ms\": 0}", mock_url);
    comfywire_client *client = NULL;
    if (comfywire_client_new_json(settings, &client) != COMFYWIRE_OK) {
        return NULL;
    }
    CHECK(comfywire_connect(client, 10000) == COMFYWIRE_OK);
    return client;
}

typedef struct {
    comfywire_client *client;
    unsigned long long base;
    int free_it; /* comfywire_client_free instead of comfywire_client_close */
    atomic_int calls;
    atomic_int loaded;
    atomic_long took_ms;
    atomic_int status;
    atomic_int done;
    atomic_int freed;
} closer;

static void on_event_close(void *user_data, const comfywire_event *event) {
    closer *c = user_data;
    (void)event;
    if (atomic_fetch_add(&c->calls, 1) != 0) {
        return;
    }
    atomic_store(&c->loaded, frames_past(c->client, c->base, 2000));
    long started = now_ms();
    if (c->free_it) {
        comfywire_client_free(c->client);
        atomic_store(&c->status, COMFYWIRE_OK);
    } else {
        atomic_store(&c->status, comfywire_client_close(c->client));
    }
    atomic_store(&c->took_ms, now_ms() - started);
    atomic_store(&c->done, 1);
}

static void free_closer(void *user_data) {
    closer *c = user_data;
    atomic_fetch_add(&c->freed, 1);
}

/* comfywire_client_close (free_it = 0) or comfywire_client_free (1) from
 * inside a callback, while a firehose keeps the dispatcher's hand-off
 * full: returns at once, completes after the callback returns. */
static void test_close_or_free_from_a_callback(int free_it) {
    comfywire_client *client = unthrottled_client();
    if (client == NULL) {
        CHECK(client != NULL);
        return;
    }
    closer c;
    memset(&c, 0, sizeof c);
    c.client = client;
    c.base = frames_read(client);
    c.free_it = free_it;
    uint64_t id = 0;
    CHECK(comfywire_subscribe(client, NULL, NULL, on_event_close, &c, free_closer, &id) ==
          COMFYWIRE_OK);
    CHECK(start_firehose(client, FLOOD) == 0);
    wait_for(&c.done, 1, 30000);
    CHECK(atomic_load(&c.done) == 1); /* else the callback deadlocked */
    if (atomic_load(&c.done) != 1) {
        return; /* the client is stuck: leave it */
    }
    CHECK(atomic_load(&c.loaded) == 1);
    CHECK(atomic_load(&c.status) == COMFYWIRE_OK);
    CHECK(atomic_load(&c.took_ms) < AT_ONCE_MS);
    wait_for(&c.freed, 1, 5000);
    CHECK(atomic_load(&c.freed) == 1); /* released after the callback returned */
    if (!free_it) {
        /* Really closed: a close from this thread waits for the rest. */
        CHECK(comfywire_client_close(client) == COMFYWIRE_OK);
        char *state = NULL;
        CHECK(comfywire_connection_state(client, &state) == COMFYWIRE_OK);
        CHECK(str_eq(state, "closed"));
        comfywire_string_free(state);
        char *prompt_id = NULL;
        CHECK(comfywire_submit(client, WORKFLOW, &prompt_id) == COMFYWIRE_CLOSED);
        CHECK(prompt_id == NULL);
        comfywire_client_free(client);
    }
    CHECK(atomic_load(&c.calls) == 1); /* no call after the close */
    CHECK(atomic_load(&c.freed) == 1);
}

typedef struct {
    atomic_int inside;
    atomic_int entered;
    atomic_int calls;
    atomic_int freed;
} busy;

static void on_event_busy(void *user_data, const comfywire_event *event) {
    busy *b = user_data;
    (void)event;
    atomic_store(&b->inside, 1);
    if (atomic_fetch_add(&b->calls, 1) == 0) {
        atomic_store(&b->entered, 1);
        /* Not synchronisation: a call that lasts, so that an unsubscribe
         * which did not wait for it would return inside it. */
        sleep_ms(300);
    }
    atomic_store(&b->inside, 0);
}

static void free_busy(void *user_data) {
    busy *b = user_data;
    atomic_fetch_add(&b->freed, 1);
}

/* comfywire_unsubscribe from another thread while the callback runs waits
 * for that call; no call starts after it returned. */
static void test_no_call_after_unsubscribe_returns(void) {
    comfywire_client *client = unthrottled_client();
    if (client == NULL) {
        CHECK(client != NULL);
        return;
    }
    busy b;
    memset(&b, 0, sizeof b);
    uint64_t id = 0;
    CHECK(comfywire_subscribe(client, NULL, NULL, on_event_busy, &b, free_busy, &id) ==
          COMFYWIRE_OK);
    unsigned long long base = frames_read(client);
    CHECK(start_firehose(client, 5000) == 0);
    wait_for(&b.entered, 1, 10000);
    CHECK(atomic_load(&b.entered) == 1);
    CHECK(comfywire_unsubscribe(client, id) == COMFYWIRE_OK);
    CHECK(atomic_load(&b.inside) == 0); /* the running call had ended */
    CHECK(atomic_load(&b.freed) == 1);  /* and user_data was freed */
    int calls = atomic_load(&b.calls);
    /* The rest of the firehose reaches the client; no call starts. */
    CHECK(frames_past(client, base, 4000));
    CHECK(atomic_load(&b.calls) == calls);
    comfywire_client_free(client);
}

typedef struct {
    comfywire_client *client;
    atomic_int calls;
    atomic_int submit_status;
    atomic_int run_status;
    atomic_int done;
    char submitted[64];
} chain;

static void on_finished_chain(void *user_data, const comfywire_event *event) {
    chain *c = user_data;
    (void)event;
    if (atomic_fetch_add(&c->calls, 1) != 0) {
        return;
    }
    char *prompt_id = NULL;
    atomic_store(&c->submit_status, comfywire_submit(c->client, WORKFLOW, &prompt_id));
    if (prompt_id != NULL) {
        snprintf(c->submitted, sizeof c->submitted, "%s", prompt_id);
    }
    comfywire_string_free(prompt_id);
    comfywire_outcome *outcome = NULL;
    int status = comfywire_run(c->client, WORKFLOW, 30000, &outcome);
    if (status == COMFYWIRE_OK && !comfywire_outcome_succeeded(outcome)) {
        status = -1;
    }
    comfywire_outcome_free(outcome);
    atomic_store(&c->run_status, status);
    atomic_store(&c->done, 1);
}

/* Blocking job calls from inside a callback: submit and run. */
static void test_submit_and_run_from_a_callback(comfywire_client *client) {
    chain c;
    memset(&c, 0, sizeof c);
    c.client = client;
    uint64_t id = 0;
    CHECK(comfywire_subscribe(client, "finished", NULL, on_finished_chain, &c, NULL, &id) ==
          COMFYWIRE_OK);
    comfywire_outcome *outcome = NULL;
    CHECK(comfywire_run(client, WORKFLOW, 60000, &outcome) == COMFYWIRE_OK);
    comfywire_outcome_free(outcome);
    wait_for(&c.done, 1, 60000);
    CHECK(atomic_load(&c.done) == 1);
    CHECK(atomic_load(&c.submit_status) == COMFYWIRE_OK);
    CHECK(atomic_load(&c.run_status) == COMFYWIRE_OK);
    CHECK(comfywire_unsubscribe(client, id) == COMFYWIRE_OK);
    outcome = NULL;
    CHECK(comfywire_wait(client, c.submitted, 60000, &outcome) == COMFYWIRE_OK);
    CHECK(comfywire_outcome_succeeded(outcome));
    comfywire_outcome_free(outcome);
}

static void test_null_and_bad_inputs(void) {
    comfywire_client *client = (comfywire_client *)0x1; /* must be overwritten */
    CHECK(comfywire_client_new(NULL, &client) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(client == NULL);
    CHECK(comfywire_last_error_message() != NULL);

    comfywire_options options = comfywire_options_default();
    CHECK(options.url == NULL && options.connect_timeout_ms == 0);
    CHECK(comfywire_client_new(&options, &client) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_client_new(&options, NULL) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_client_new_json(NULL, &client) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_client_new_json("{not json", &client) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(client == NULL);
    CHECK(strstr(comfywire_last_error_message(), "settings") != NULL);
    CHECK(comfywire_client_new_json("{\"url\": \"not a url\"}", &client) != COMFYWIRE_OK);
    CHECK(client == NULL);

    char *text = NULL;
    comfywire_event *event = NULL;
    comfywire_outcome *outcome = NULL;
    uint64_t id = 0;
    CHECK(comfywire_submit(NULL, WORKFLOW, &text) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_run(NULL, WORKFLOW, 0, &outcome) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_wait(NULL, "p", 0, &outcome) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_next_event(NULL, 0, &event) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_connect(NULL, 10) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_queue(NULL, &text) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_clear_queue(NULL) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_delete(NULL, NULL, 0) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_interrupt(NULL, "p", NULL) == COMFYWIRE_INVALID_ARGUMENT);
    bool sent = true;
    CHECK(comfywire_interrupt(NULL, "p", &sent) == COMFYWIRE_INVALID_ARGUMENT && !sent);
    comfywire_cancelled done = COMFYWIRE_CANCEL_DELETED;
    CHECK(comfywire_cancel(NULL, "p", &done) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(done == COMFYWIRE_CANCEL_NOT_ACTIVE); /* cleared first, as every out-parameter */
    comfywire_job_events *job = (comfywire_job_events *)1;
    CHECK(comfywire_job_events_new(NULL, "p", &job) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(job == NULL);
    comfywire_job_events_free(NULL);
    CHECK(comfywire_unsubscribe(NULL, 1) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_client_close(NULL) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_connection_state(NULL, &text) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(text == NULL && event == NULL && outcome == NULL);

    /* A rejected subscription still releases its user data, exactly once. */
    counters *c = calloc(1, sizeof *c);
    CHECK(comfywire_subscribe(NULL, NULL, NULL, on_event, c, free_counters, &id) ==
          COMFYWIRE_INVALID_ARGUMENT);
    CHECK(atomic_load(&c->freed) == 1);
    CHECK(comfywire_subscribe(NULL, NULL, NULL, NULL, c, free_counters, &id) ==
          COMFYWIRE_INVALID_ARGUMENT);
    CHECK(atomic_load(&c->freed) == 2);
    free(c);

    /* Accessors of NULL give NULL / 0; frees of NULL are no-ops. */
    CHECK(comfywire_event_kind(NULL) == NULL);
    CHECK(comfywire_event_value(NULL) == 0.0);
    CHECK(comfywire_event_clone(NULL) == NULL);
    const uint8_t *data = (const uint8_t *)1;
    size_t len = 7;
    CHECK(comfywire_event_preview(NULL, &data, &len) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(data == NULL && len == 0);
    CHECK(comfywire_outcome_status(NULL) == NULL);
    CHECK(!comfywire_outcome_succeeded(NULL));
    comfywire_event_free(NULL);
    comfywire_outcome_free(NULL);
    comfywire_string_free(NULL);
    comfywire_client_free(NULL);

    CHECK(str_eq(comfywire_status_name(COMFYWIRE_EXECUTION_FAILED), "execution_failed"));
    CHECK(str_eq(comfywire_status_name(12345), "unknown"));
    CHECK(comfywire_version() != NULL && strlen(comfywire_version()) > 0);
}

static comfywire_client *connect_with_options(void) {
    comfywire_options options = comfywire_options_default();
    options.url = mock_url;
    options.client_id = "capi-test-client";
    options.connect_timeout_ms = 5000;
    options.total_timeout_ms = 60000;
    comfywire_client *client = NULL;
    CHECK(comfywire_client_new(&options, &client) == COMFYWIRE_OK);
    if (client == NULL) {
        return NULL;
    }
    CHECK(comfywire_connect(client, 10000) == COMFYWIRE_OK);
    char *state = NULL;
    CHECK(comfywire_connection_state(client, &state) == COMFYWIRE_OK);
    CHECK(str_eq(state, "connected"));
    comfywire_string_free(state);
    char *id = NULL;
    CHECK(comfywire_client_id(client, &id) == COMFYWIRE_OK);
    CHECK(str_eq(id, "capi-test-client"));
    comfywire_string_free(id);
    char *status = NULL;
    CHECK(comfywire_connection_status_json(client, &status) == COMFYWIRE_OK);
    CHECK(status != NULL && strstr(status, "\"state\":\"connected\"") != NULL);
    comfywire_string_free(status);
    return client;
}

static void test_run_success_and_callbacks(comfywire_client *client) {
    counters c;
    memset(&c, 0, sizeof c);
    uint64_t id = 0;
    CHECK(comfywire_subscribe(client, "nonsense_kind", NULL, on_event, &c, free_counters, &id) ==
          COMFYWIRE_INVALID_ARGUMENT);
    CHECK(atomic_load(&c.freed) == 1);
    atomic_store(&c.freed, 0);

    CHECK(comfywire_subscribe(client, "progress, finished", NULL, on_event, &c, free_counters,
                              &id) == COMFYWIRE_OK);
    CHECK(id != 0);

    comfywire_outcome *outcome = NULL;
    CHECK(comfywire_run(client, WORKFLOW, 60000, &outcome) == COMFYWIRE_OK);
    CHECK(outcome != NULL);
    CHECK(comfywire_outcome_succeeded(outcome));
    CHECK(str_eq(comfywire_outcome_status(outcome), "succeeded"));
    const char *outputs = comfywire_outcome_outputs_json(outcome);
    CHECK(outputs != NULL && strstr(outputs, "images") != NULL);
    CHECK(comfywire_outcome_error_message(outcome) == NULL);
    CHECK(comfywire_outcome_prompt_id(outcome) != NULL);
    const char *json = comfywire_outcome_json(outcome);
    CHECK(json != NULL && strstr(json, "\"status\":\"succeeded\"") != NULL);
    CHECK(comfywire_outcome_duration_ms(outcome) >= 0.0);

    /* The server writes its history just after the terminal message
     * (protocol 6.3), so run() may return first: ask again, boundedly. */
    char *history = NULL;
    int asked = 1;
    for (long waited = 0; history == NULL && waited < 5000; waited += 20) {
        asked &= comfywire_server_history(client, comfywire_outcome_prompt_id(outcome),
                                          &history) == COMFYWIRE_OK;
        if (history == NULL) {
            sleep_ms(20);
        }
    }
    CHECK(asked && history != NULL);
    comfywire_string_free(history);
    comfywire_outcome_free(outcome);

    /* The finished callback may trail run()'s return on the dispatcher. */
    wait_for(&c.finished, 1, 5000);
    CHECK(atomic_load(&c.finished) == 1);
    CHECK(atomic_load(&c.progress) >= 1);
    CHECK(atomic_load(&c.other) == 0); /* the kind filter held */

    CHECK(comfywire_unsubscribe(client, id) == COMFYWIRE_OK);
    CHECK(atomic_load(&c.freed) == 1);
    CHECK(comfywire_unsubscribe(client, id) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(atomic_load(&c.freed) == 1);

    char *stats = NULL;
    CHECK(comfywire_stats_json(client, &stats) == COMFYWIRE_OK);
    CHECK(stats != NULL && strstr(stats, "\"callbacks\":0") != NULL);
    comfywire_string_free(stats);
}

static void test_execution_error(comfywire_client *client) {
    CHECK(inject_fault("fail_next_prompt") == 0);
    comfywire_outcome *outcome = NULL;
    comfywire_status status = comfywire_run(client, WORKFLOW, 60000, &outcome);
    CHECK(status == COMFYWIRE_EXECUTION_FAILED);
    CHECK(comfywire_last_error_message() != NULL);
    CHECK(outcome != NULL);
    CHECK(str_eq(comfywire_outcome_status(outcome), "failed"));
    CHECK(!comfywire_outcome_succeeded(outcome));
    CHECK(comfywire_outcome_error_message(outcome) != NULL);
    comfywire_outcome_free(outcome);
}

static void test_bad_json_with_client(comfywire_client *client) {
    char *prompt_id = (char *)"stale";
    CHECK(comfywire_submit(client, "{\"1\": ", &prompt_id) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(prompt_id == NULL);
    CHECK(strstr(comfywire_last_error_message(), "JSON") != NULL);
    CHECK(comfywire_submit(client, NULL, &prompt_id) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_submit(client, WORKFLOW, NULL) == COMFYWIRE_INVALID_ARGUMENT);
    comfywire_outcome *outcome = NULL;
    CHECK(comfywire_run(client, "[1, 2", 1000, &outcome) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(outcome == NULL);
    CHECK(comfywire_subscribe(client, NULL, NULL, on_event, NULL, NULL, NULL) ==
          COMFYWIRE_INVALID_ARGUMENT);
    const char *ids[] = {NULL};
    CHECK(comfywire_delete(client, ids, 1) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_delete(client, NULL, 2) == COMFYWIRE_INVALID_ARGUMENT);
}

static void test_pull_loop(void) {
    char settings[512];
    snprintf(settings, sizeof settings,
             "{\"url\": \"%s\", \"preview_interval_ms\": 0, \"progress_interval_ms\": 0}", mock_url);
    comfywire_client *client = NULL;
    CHECK(comfywire_client_new_json(settings, &client) == COMFYWIRE_OK);
    if (client == NULL) {
        return;
    }
    CHECK(comfywire_connect(client, 10000) == COMFYWIRE_OK);

    /* The first pull starts the queue; nothing is there yet. */
    comfywire_event *event = NULL;
    CHECK(comfywire_next_event(client, 0, &event) == COMFYWIRE_OK);
    comfywire_event_free(event);

    char *prompt_id = NULL;
    CHECK(comfywire_submit(client, WORKFLOW, &prompt_id) == COMFYWIRE_OK);
    CHECK(prompt_id != NULL && strlen(prompt_id) > 0);
    if (prompt_id == NULL) {
        comfywire_client_free(client);
        return;
    }

    /* Checks inside the loop fold into flags, so the pass count does not
     * depend on how many events arrived (coalescing varies with speed). */
    int progress = 0, previews = 0, outputs = 0, finished = 0, good_progress = 1, estimated = 0;
    int good_events = 1, good_previews = 1, good_outputs = 1, good_finish = 1;
    comfywire_event *kept = NULL;
    for (int i = 0; i < 2000 && !finished; i++) {
        event = NULL;
        if (comfywire_next_event(client, 500, &event) != COMFYWIRE_OK) {
            break;
        }
        if (event == NULL) {
            continue;
        }
        const char *kind = comfywire_event_kind(event);
        const char *pid = comfywire_event_prompt_id(event);
        if (kind == NULL) {
            good_events = 0;
        }
        const char *whole = comfywire_event_to_json(event);
        if (whole == NULL || strstr(whole, "\"event\"") == NULL) {
            good_events = 0;
        }
        if (str_eq(pid, prompt_id)) {
            if (str_eq(kind, "progress")) {
                progress++;
                double value = comfywire_event_value(event), max = comfywire_event_max(event);
                double overall = comfywire_event_overall(event);
                if (!(max > 0 && value >= 0 && value <= max && overall >= 0 && overall <= 1 &&
                      comfywire_event_node(event) != NULL)) {
                    good_progress = 0;
                }
                /* An estimate between the first step and the last, none after it. */
                double eta = comfywire_event_eta_s(event);
                if (value > 0 && value < max) {
                    estimated += eta >= 0;
                } else if (value >= max && eta >= 0) {
                    good_progress = 0;
                }
            } else if (str_eq(kind, "preview")) {
                const uint8_t *data = NULL;
                size_t len = 0;
                if (comfywire_event_preview(event, &data, &len) != COMFYWIRE_OK ||
                    !str_eq(comfywire_event_mime(event), "image/jpeg")) {
                    good_previews = 0;
                }
                if (data != NULL && len > 2 && data[0] == 0xFF && data[1] == 0xD8) {
                    previews++; /* a JPEG, as recorded */
                }
                if (kept == NULL) {
                    kept = comfywire_event_clone(event);
                }
            } else if (str_eq(kind, "output")) {
                outputs++;
                if (comfywire_event_json(event) == NULL) {
                    good_outputs = 0;
                }
            } else if (str_eq(kind, "finished")) {
                finished = 1;
                good_finish = str_eq(comfywire_event_text(event), "succeeded") &&
                              comfywire_event_json(event) != NULL;
            }
        }
        comfywire_event_free(event);
    }
    CHECK(finished == 1);
    CHECK(progress >= 1);
    CHECK(estimated >= 1);
    CHECK(good_progress);
    CHECK(good_events);
    CHECK(good_previews);
    CHECK(good_outputs);
    CHECK(good_finish);
    CHECK(previews >= 1);
    CHECK(outputs >= 1);
    /* A cloned event outlives the original and keeps its bytes. */
    CHECK(kept != NULL);
    if (kept != NULL) {
        const uint8_t *data = NULL;
        size_t len = 0;
        CHECK(comfywire_event_preview(kept, &data, &len) == COMFYWIRE_OK && len > 0);
        comfywire_event_free(kept);
    }

    comfywire_outcome *outcome = NULL;
    CHECK(comfywire_wait(client, prompt_id, 10000, &outcome) == COMFYWIRE_OK);
    CHECK(comfywire_outcome_succeeded(outcome));
    comfywire_outcome_free(outcome);
    comfywire_string_free(prompt_id);

    /* A subscription left registered is released by client_free. */
    uint64_t id = 0;
    CHECK(comfywire_subscribe(client, NULL, NULL, on_event, calloc(1, sizeof(counters)), free_heap,
                              &id) == COMFYWIRE_OK);
    atomic_store(&heap_frees, 0);
    comfywire_client_free(client);
    CHECK(atomic_load(&heap_frees) == 1);
}

/* Files: an upload comes back byte for byte from /view (the server's
 * store), and every downloaded output equals /view of that output. */
static void test_files(comfywire_client *client) {
    unsigned char data[3000];
    for (size_t i = 0; i < sizeof data; i++) {
        data[i] = (unsigned char)(i * 7);
    }
    char *stored = NULL;
    CHECK(comfywire_upload(client, "c-test.png", data, sizeof data, "ctests", NULL, true,
                           &stored) == COMFYWIRE_OK);
    CHECK(stored != NULL && strstr(stored, "\"subfolder\":\"ctests\"") &&
          strstr(stored, "\"type\":\"input\""));
    comfywire_string_free(stored);
    uint8_t *back = NULL;
    size_t back_len = 0;
    CHECK(comfywire_view(client, "c-test.png", "ctests", "input", &back, &back_len) ==
          COMFYWIRE_OK);
    CHECK(back != NULL && back_len == sizeof data && memcmp(back, data, sizeof data) == 0);
    comfywire_bytes_free(back, back_len);
    CHECK(comfywire_view(client, "missing.png", NULL, NULL, &back, &back_len) == COMFYWIRE_HTTP);
    CHECK(back == NULL && back_len == 0);
    CHECK(comfywire_upload(client, "x.png", NULL, 5, NULL, NULL, false, &stored) ==
          COMFYWIRE_INVALID_ARGUMENT);

    comfywire_outcome *outcome = NULL;
    CHECK(comfywire_run(client, WORKFLOW, 30000, &outcome) == COMFYWIRE_OK);
    const char *pid = comfywire_outcome_prompt_id(outcome);
    char *files = NULL;
    CHECK(comfywire_output_files(client, pid, &files) == COMFYWIRE_OK);
    CHECK(files != NULL && strstr(files, "\"filename\"") != NULL);
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/comfywire-c-dl-%ld", (long)time(NULL));
    char *paths = NULL;
    CHECK(comfywire_download_outputs(client, pid, dir, &paths) == COMFYWIRE_OK);
    int compared = 0;
    if (paths != NULL && files != NULL) {
        /* One output file in this recording: read its name from the list
         * and compare the file on disk with the server's bytes. */
        const char *name = strstr(files, "\"filename\":\"");
        const char *sub = strstr(files, "\"subfolder\":\"");
        char filename[256] = {0}, subfolder[256] = {0};
        if (sub != NULL) {
            sscanf(sub, "\"subfolder\":\"%255[^\"]", subfolder);
        }
        if (name != NULL && sscanf(name, "\"filename\":\"%255[^\"]", filename) == 1) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s", dir, filename);
            FILE *f = fopen(path, "rb");
            uint8_t *server = NULL;
            size_t server_len = 0;
            if (f != NULL &&
                comfywire_view(client, filename, subfolder, "output", &server, &server_len) ==
                    COMFYWIRE_OK) {
                uint8_t *disk = malloc(server_len + 1);
                size_t got = disk ? fread(disk, 1, server_len + 1, f) : 0;
                compared = got == server_len && server_len > 8 && memcmp(disk, server, got) == 0;
                free(disk);
                remove(path);
            }
            if (f != NULL) {
                fclose(f);
            }
            comfywire_bytes_free(server, server_len);
        }
        rmdir(dir);
    }
    CHECK(compared);
    comfywire_string_free(files);
    comfywire_string_free(paths);
    comfywire_outcome_free(outcome);
}

/* Options: the stall and queue deadlines end a run with
 * COMFYWIRE_DEADLINE and say which; a wait's own timeout is
 * COMFYWIRE_TIMEOUT; the records and the server's stats are readable. */
static void test_job_options(comfywire_client *client) {
    comfywire_job_options options = comfywire_job_options_default();
    options.prompt_id = "c-chosen-id";
    options.extra_data_json = "{\"from\": \"c\"}";
    char *id = NULL;
    CHECK(comfywire_submit_with(client, WORKFLOW, &options, &id) == COMFYWIRE_OK);
    CHECK(str_eq(id, "c-chosen-id"));
    comfywire_string_free(id);
    comfywire_job_options wait = comfywire_job_options_default();
    wait.timeout_ms = 30000;
    comfywire_outcome *outcome = NULL;
    CHECK(comfywire_wait_with(client, "c-chosen-id", &wait, &outcome) == COMFYWIRE_OK);
    comfywire_outcome_free(outcome);
    outcome = NULL;
    CHECK(comfywire_execution(client, "c-chosen-id", &outcome) == COMFYWIRE_OK);
    CHECK(str_eq(comfywire_outcome_status(outcome), "succeeded"));
    comfywire_outcome_free(outcome);
    outcome = NULL;
    CHECK(comfywire_execution(client, "never-seen", &outcome) == COMFYWIRE_OK && outcome == NULL);
    /* The server writes its history just after the terminal message
     * (protocol 6.3): ask again until it has. */
    char *text = NULL;
    int asked = 1;
    for (int i = 0; i < 100 && text == NULL; i++) {
        asked &= comfywire_server_history(client, "c-chosen-id", &text) == COMFYWIRE_OK;
        if (text == NULL) {
            sleep_ms(50);
        }
    }
    CHECK(asked);
    CHECK(text != NULL && strstr(text, "\"from\":\"c\"") != NULL);
    comfywire_string_free(text);
    CHECK(comfywire_history(client, &text) == COMFYWIRE_OK);
    CHECK(text != NULL && strstr(text, "c-chosen-id") != NULL);
    comfywire_string_free(text);
    CHECK(comfywire_system_stats(client, &text) == COMFYWIRE_OK);
    CHECK(text != NULL && strstr(text, "\"system\"") != NULL);
    comfywire_string_free(text);

    /* The mock plays at recorded speed: the long recording takes seconds. */
    CHECK(set_speed("1") == 0);
    comfywire_job_options tight = comfywire_job_options_default();
    tight.stall_timeout_ms = 1;
    tight.queue_timeout_ms = 1;
    int status = comfywire_run_with(client, WORKFLOW, &tight, &outcome);
    const char *detail = comfywire_last_error_detail_json();
    CHECK(status == COMFYWIRE_DEADLINE);
    CHECK(detail != NULL && (strstr(detail, "\"stall\"") || strstr(detail, "\"queue\"")));
    comfywire_outcome_free(outcome);
    CHECK(set_speed("3") == 0);
    /* Lifecycle hints: a pause closes the socket and stays closed, a
     * resume opens a new one; network changes and retry-now reconnect. */
    CHECK(comfywire_pause(client) == COMFYWIRE_OK);
    int paused = 0;
    for (int i = 0; i < 200 && !paused; i++) {
        char *state = NULL;
        paused = comfywire_connection_state(client, &state) == COMFYWIRE_OK && str_eq(state, "paused");
        comfywire_string_free(state);
        if (!paused) {
            sleep_ms(10);
        }
    }
    CHECK(paused);
    CHECK(comfywire_resume(client) == COMFYWIRE_OK);
    CHECK(comfywire_connect(client, 5000) == COMFYWIRE_OK);
    CHECK(comfywire_network_changed(client) == COMFYWIRE_OK);
    CHECK(comfywire_retry_now(client) == COMFYWIRE_OK);
    CHECK(comfywire_connect(client, 5000) == COMFYWIRE_OK);
}

/* How the mock's ledger says `id` left the server, waiting up to 10 s for
 * it to leave: "" when it is still there. */
static void wait_end(const char *id, char *out, size_t cap) {
    out[0] = '\0';
    for (int i = 0; i < 200 && out[0] == '\0'; i++) {
        char *ledger = ledger_of(mock_url);
        if (ledger != NULL) {
            end_of(ledger, id, out, cap);
            free(ledger);
        }
        if (out[0] == '\0') {
            sleep_ms(50);
        }
    }
}

/* Reads a job's stream to its end (COMFYWIRE_CLOSED): how many events, of
 * which outputs, whether each was of `prompt_id`, the first kind and the
 * terminal status (copied out; 0 when none). */
typedef struct {
    int events, outputs, ours, closed;
    char first[32], status[32];
} job_read;

static job_read read_job(comfywire_job_events *events, const char *prompt_id) {
    job_read r;
    memset(&r, 0, sizeof r);
    r.ours = 1;
    for (int i = 0; i < 5000; i++) {
        comfywire_event *event = NULL;
        comfywire_status status = comfywire_job_events_next(events, 200, &event);
        if (status != COMFYWIRE_OK) {
            r.closed = status == COMFYWIRE_CLOSED && event == NULL;
            break;
        }
        if (event == NULL) {
            continue;
        }
        const char *kind = comfywire_event_kind(event);
        if (r.events++ == 0) {
            snprintf(r.first, sizeof r.first, "%s", kind);
        }
        r.ours &= str_eq(comfywire_event_prompt_id(event), prompt_id);
        r.outputs += str_eq(kind, "output");
        if (str_eq(kind, "finished")) {
            snprintf(r.status, sizeof r.status, "%s", comfywire_event_text(event));
        }
        comfywire_event_free(event);
    }
    return r;
}

/* A job's stream, live and replayed, agrees with the server's history;
 * comfywire_cancel deletes a queued prompt and interrupts a running one,
 * and a run out of time removes its prompt unless detached: each checked
 * against the mock's ledger. */
static void test_cancel_detach_and_job_events(comfywire_client *client) {
    char *id = NULL;
    CHECK(comfywire_submit(client, WORKFLOW, &id) == COMFYWIRE_OK);
    comfywire_job_events *events = NULL;
    CHECK(comfywire_job_events_new(client, id, &events) == COMFYWIRE_OK);
    job_read live = read_job(events, id);
    comfywire_job_events_free(events);
    CHECK(live.closed && live.ours && str_eq(live.first, "prompt_queued"));
    CHECK(str_eq(live.status, "succeeded"));
    /* One output event per node the server's history has outputs of. */
    /* The server writes its history just after the terminal message. */
    char *history = NULL;
    int asked = 1;
    for (int i = 0; i < 100 && history == NULL; i++) {
        asked &= comfywire_server_history(client, id, &history) == COMFYWIRE_OK;
        if (history == NULL) {
            sleep_ms(50);
        }
    }
    CHECK(asked);
    const char *outputs = history != NULL ? strstr(history, "\"outputs\":") : NULL;
    CHECK(outputs != NULL && live.outputs >= 1);
    if (outputs != NULL) {
        /* Compact JSON in the server's order: `"outputs":{"9":{"images":
         * [...]}},"status":...`, so each node key is followed by `":{"`. */
        const char *status = strstr(outputs, "\"status\"");
        int nodes = 0;
        for (const char *at = strstr(outputs + strlen("\"outputs\":{"), "\":{\"");
             at != NULL && at < status;
             at = strstr(at + 1, "\":{\"")) {
            nodes++;
        }
        CHECK(nodes == live.outputs);
    }
    comfywire_string_free(history);
    /* Made after the end, the stream replays it from the client's record. */
    CHECK(comfywire_job_events_new(client, id, &events) == COMFYWIRE_OK);
    job_read replay = read_job(events, id);
    comfywire_job_events_free(events);
    CHECK(replay.closed && replay.ours && str_eq(replay.first, "prompt_queued"));
    CHECK(str_eq(replay.status, "succeeded") && replay.outputs == live.outputs);
    comfywire_string_free(id);
    CHECK(comfywire_job_events_new(client, NULL, &events) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(events == NULL);
    comfywire_event *none = (comfywire_event *)1;
    CHECK(comfywire_job_events_next(NULL, 0, &none) == COMFYWIRE_INVALID_ARGUMENT && none == NULL);

    /* Slow enough that the second long prompt waits behind the first. */
    CHECK(set_speed("0.2") == 0);
    comfywire_job_options slow = comfywire_job_options_default();
    slow.extra_data_json = "{\"mock_scenario\": \"long_run\"}";
    char *running = NULL, *queued = NULL;
    CHECK(comfywire_submit_with(client, WORKFLOW, &slow, &running) == COMFYWIRE_OK);
    CHECK(comfywire_submit_with(client, WORKFLOW, &slow, &queued) == COMFYWIRE_OK);
    if (running != NULL && queued != NULL &&
        comfywire_job_events_new(client, running, &events) == COMFYWIRE_OK) {
        int started = 0;
        for (int i = 0; i < 200 && !started; i++) {
            comfywire_event *event = NULL;
            if (comfywire_job_events_next(events, 50, &event) != COMFYWIRE_OK) {
                break;
            }
            started = event != NULL && str_eq(comfywire_event_kind(event), "execution_started");
            comfywire_event_free(event);
        }
        CHECK(started);
        comfywire_cancelled done = -1;
        CHECK(comfywire_cancel(client, queued, &done) == COMFYWIRE_OK);
        CHECK(done == COMFYWIRE_CANCEL_DELETED);
        CHECK(comfywire_cancel(client, running, &done) == COMFYWIRE_OK);
        CHECK(done == COMFYWIRE_CANCEL_INTERRUPTED);
        job_read rest = read_job(events, running);
        comfywire_job_events_free(events);
        CHECK(rest.closed && str_eq(rest.status, "interrupted"));
        CHECK(comfywire_cancel(client, running, &done) == COMFYWIRE_OK);
        CHECK(done == COMFYWIRE_CANCEL_NOT_ACTIVE);
        char end[32];
        wait_end(queued, end, sizeof end);
        CHECK(str_eq(end, "deleted"));
        wait_end(running, end, sizeof end);
        CHECK(str_eq(end, "interrupted"));
    }
    comfywire_string_free(running);
    comfywire_string_free(queued);

    /* Out of time: the owned run's prompt is removed, the detached one's
     * runs on to its end on the server. */
    /* Ids of this process: the suites run one after another on one mock,
     * whose history still has the last suite's. */
    char owned_id[64], detached_id[64];
    snprintf(owned_id, sizeof owned_id, "c-owned-run-%ld", (long)getpid());
    snprintf(detached_id, sizeof detached_id, "c-detached-run-%ld", (long)getpid());
    comfywire_job_options owned = slow, detached = slow;
    owned.prompt_id = owned_id;
    owned.stall_timeout_ms = 1;
    owned.queue_timeout_ms = 1;
    detached.prompt_id = detached_id;
    detached.stall_timeout_ms = 1;
    detached.queue_timeout_ms = 1;
    detached.detach = true;
    comfywire_outcome *outcome = NULL;
    CHECK(comfywire_run_with(client, WORKFLOW, &detached, &outcome) == COMFYWIRE_DEADLINE);
    comfywire_outcome_free(outcome);
    outcome = NULL;
    CHECK(comfywire_run_with(client, WORKFLOW, &owned, &outcome) == COMFYWIRE_DEADLINE);
    comfywire_outcome_free(outcome);
    char end[32];
    wait_end(owned_id, end, sizeof end);
    CHECK(str_eq(end, "deleted") || str_eq(end, "interrupted"));
    CHECK(set_speed("3") == 0);
    wait_end(detached_id, end, sizeof end);
    CHECK(str_eq(end, "succeeded"));
}

static void test_queue_and_close(comfywire_client *client) {
    char *queue = NULL;
    CHECK(comfywire_queue(client, &queue) == COMFYWIRE_OK);
    CHECK(queue != NULL && strstr(queue, "\"running\"") && strstr(queue, "\"pending\""));
    comfywire_string_free(queue);
    CHECK(comfywire_clear_queue(client) == COMFYWIRE_OK);
    CHECK(comfywire_delete(client, NULL, 0) == COMFYWIRE_OK);
    const char *ids[] = {"00000000-0000-0000-0000-000000000000"};
    CHECK(comfywire_delete(client, ids, 1) == COMFYWIRE_OK);
    bool sent = true;
    CHECK(comfywire_interrupt(client, "not-running", &sent) == COMFYWIRE_OK);
    CHECK(!sent);

    counters c;
    memset(&c, 0, sizeof c);
    uint64_t id = 0;
    CHECK(comfywire_subscribe(client, "finished", NULL, on_event, &c, free_counters, &id) ==
          COMFYWIRE_OK);
    CHECK(comfywire_client_close(client) == COMFYWIRE_OK);
    CHECK(atomic_load(&c.freed) == 1); /* close releases every subscription */
    CHECK(comfywire_client_close(client) == COMFYWIRE_OK); /* idempotent */
    CHECK(atomic_load(&c.freed) == 1);
    char *prompt_id = NULL;
    CHECK(comfywire_submit(client, WORKFLOW, &prompt_id) != COMFYWIRE_OK);
    CHECK(prompt_id == NULL);
    comfywire_event *event = NULL;
    comfywire_status pulled = comfywire_next_event(client, 100, &event);
    CHECK(pulled == COMFYWIRE_CLOSED);
    CHECK(event == NULL);
}

/* Attach follows a prompt of another client id to the server's outcome;
 * a journal left by a client freed mid-run is resumed by the next client
 * with the same journal: its id, its prompt, the server's outcome. */
static comfywire_client *new_client(const char *client_id, const char *journal) {
    comfywire_options options = comfywire_options_default();
    options.url = mock_url;
    options.client_id = client_id;
    options.journal_path = journal;
    comfywire_client *client = NULL;
    if (comfywire_client_new(&options, &client) != COMFYWIRE_OK) {
        return NULL;
    }
    CHECK(comfywire_connect(client, 10000) == COMFYWIRE_OK);
    return client;
}

/* The outcome equals the server's history entry (its outputs, verbatim). */
static void check_against_history(comfywire_client *client, const char *prompt_id,
                                  comfywire_outcome *outcome) {
    CHECK(str_eq(comfywire_outcome_status(outcome), "succeeded"));
    char *history = NULL;
    CHECK(comfywire_server_history(client, prompt_id, &history) == COMFYWIRE_OK);
    const char *outputs = comfywire_outcome_outputs_json(outcome);
    CHECK(history != NULL && outputs != NULL && strstr(history, "\"success\"") != NULL);
    CHECK(history != NULL && outputs != NULL && strstr(history, outputs) != NULL);
    comfywire_string_free(history);
}

static void test_attach_and_journal(void) {
    char journal[256];
    snprintf(journal, sizeof journal, "/tmp/comfywire-capi-journal-%ld.jsonl", (long)getpid());
    char lock[300];
    snprintf(lock, sizeof lock, "%s.lock", journal);
    unlink(journal);

    comfywire_client *other = new_client("capi-other", NULL);
    comfywire_client *first = new_client(NULL, journal);
    CHECK(other != NULL && first != NULL);
    if (other == NULL || first == NULL) {
        comfywire_client_free(other);
        comfywire_client_free(first);
        return;
    }
    /* Two prompts of another client id keep the slowed-down server busy
     * (a recorded frame is at most 0.3 s apart: 3 s at this speed)... */
    CHECK(set_speed("0.1") == 0);
    char *theirs = NULL;
    char *blocker = NULL;
    CHECK(comfywire_submit(other, WORKFLOW, &theirs) == COMFYWIRE_OK);
    CHECK(comfywire_submit(other, WORKFLOW, &blocker) == COMFYWIRE_OK);
    /* ...so the journaled one is still queued when its client goes. */
    char *mine = NULL;
    char *first_id = NULL;
    CHECK(comfywire_submit(first, WORKFLOW, &mine) == COMFYWIRE_OK);
    CHECK(comfywire_client_id(first, &first_id) == COMFYWIRE_OK);
    comfywire_client *taken = NULL;
    comfywire_options same = comfywire_options_default();
    same.url = mock_url;
    same.journal_path = journal;
    CHECK(comfywire_client_new(&same, &taken) == COMFYWIRE_CONFIG);
    CHECK(taken == NULL && strstr(comfywire_last_error_message(), "in use") != NULL);
    comfywire_client_free(first);
    CHECK(set_speed("3") == 0);

    /* Attach: a prompt of another client id, settled from the server. */
    comfywire_client *watcher = new_client(NULL, NULL);
    CHECK(comfywire_attach(watcher, NULL) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_attach(watcher, "") == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_attach(NULL, "x") == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(comfywire_attach(watcher, theirs) == COMFYWIRE_OK);
    comfywire_outcome *outcome = NULL;
    CHECK(comfywire_wait(watcher, theirs, 60000, &outcome) == COMFYWIRE_OK);
    check_against_history(watcher, theirs, outcome);
    comfywire_outcome_free(outcome);
    outcome = NULL;
    char *resumed = NULL;
    CHECK(comfywire_resumed_json(watcher, &resumed) == COMFYWIRE_OK);
    CHECK(str_eq(resumed, "[]"));
    comfywire_string_free(resumed);
    comfywire_client_free(watcher);

    /* The journal: same client id, the unfinished prompt resumed. */
    comfywire_client *second = new_client(NULL, journal);
    CHECK(second != NULL);
    if (second != NULL) {
        char *second_id = NULL;
        CHECK(comfywire_client_id(second, &second_id) == COMFYWIRE_OK);
        CHECK(str_eq(second_id, first_id));
        comfywire_string_free(second_id);
        CHECK(comfywire_resumed_json(second, &resumed) == COMFYWIRE_OK);
        char expected[128];
        snprintf(expected, sizeof expected, "[\"%s\"]", mine ? mine : "");
        CHECK(str_eq(resumed, expected));
        comfywire_string_free(resumed);
        CHECK(comfywire_wait(second, mine, 60000, &outcome) == COMFYWIRE_OK);
        check_against_history(second, mine, outcome);
        comfywire_outcome_free(outcome);
        comfywire_client_free(second);
    }
    /* Every prompt ended: nothing is left to resume. */
    comfywire_client *third = new_client(NULL, journal);
    CHECK(third != NULL);
    if (third != NULL) {
        CHECK(comfywire_resumed_json(third, &resumed) == COMFYWIRE_OK);
        CHECK(str_eq(resumed, "[]"));
        comfywire_string_free(resumed);
        comfywire_client_free(third);
    }
    outcome = NULL;
    CHECK(comfywire_wait(other, blocker, 60000, &outcome) == COMFYWIRE_OK);
    comfywire_outcome_free(outcome);
    comfywire_client_free(other);
    comfywire_string_free(theirs);
    comfywire_string_free(blocker);
    comfywire_string_free(mine);
    comfywire_string_free(first_id);
    unlink(journal);
    unlink(lock);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MOCK_URL\n", argv[0]);
        return 2;
    }
    mock_url = argv[1];
    printf("comfywire %s against %s\n", comfywire_version(), mock_url);

    test_null_and_bad_inputs();
    comfywire_client *client = connect_with_options();
    if (client != NULL) {
        test_run_success_and_callbacks(client);
        test_execution_error(client);
        test_reentrant_callback(client);
        test_submit_and_run_from_a_callback(client);
        test_bad_json_with_client(client);
        test_files(client);
        test_job_options(client);
        test_cancel_detach_and_job_events(client);
        test_queue_and_close(client);
        comfywire_client_free(client);
    }
    test_pull_loop();
    test_attach_and_journal();
    test_close_or_free_from_a_callback(0);
    test_close_or_free_from_a_callback(1);
    test_no_call_after_unsubscribe_returns();

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
