/* Runs one workflow against a ComfyUI server (or comfywire-mock) and prints
 * progress from a callback and the outcome. usage: comfywire_example URL */
#include <comfywire.h>

#include <stdio.h>

static void on_progress(void *user_data, const comfywire_event *event) {
    (void)user_data;
    printf("progress %s: %.0f/%.0f\n", comfywire_event_node(event), comfywire_event_value(event),
           comfywire_event_max(event));
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    comfywire_options options = comfywire_options_default();
    options.url = argv[1];
    comfywire_client *client = NULL;
    comfywire_status status = comfywire_client_new(&options, &client);
    if (status == COMFYWIRE_OK) status = comfywire_connect(client, 10000);
    uint64_t subscription = 0;
    if (status == COMFYWIRE_OK)
        status = comfywire_subscribe(client, "progress", NULL, on_progress, NULL, NULL, &subscription);
    comfywire_outcome *outcome = NULL;
    if (status == COMFYWIRE_OK)
        status = comfywire_run(client,
                               "{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {}}}",
                               60000, &outcome);
    if (outcome != NULL) {
        printf("outcome: %s\n", comfywire_outcome_status(outcome));
        comfywire_outcome_free(outcome);
    }
    if (status != COMFYWIRE_OK)
        fprintf(stderr, "error %d (%s): %s\n", status, comfywire_status_name(status),
                comfywire_last_error_message());
    comfywire_client_free(client);
    return status == COMFYWIRE_OK ? 0 : 1;
}
