// C++17 tests of libcomfywire through include/comfywire.hpp, against
// comfywire-mock. usage: test_capi_cpp MOCK_URL
// Last line: "N passed, N failed".
#include <comfywire.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

using namespace std::chrono_literals;

static int passed = 0;
static int failed = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            ++passed;                                                                \
        } else {                                                                     \
            ++failed;                                                                \
            std::cerr << "FAIL " << __FILE__ << ":" << __LINE__ << ": " #cond "\n"; \
        }                                                                            \
    } while (0)

static const std::string WORKFLOW =
    R"({"1": {"class_type": "EmptyImage", "inputs": {"width": 64}},)"
    R"( "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}})";

static std::string mock_url;

static bool inject_fault(const std::string &fault) {
    std::string command = "curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' -d "
                          "'{\"fault\":\"" + fault + "\"}' '" + mock_url + "/mock/fault'";
    return std::system(command.c_str()) == 0;
}

template <typename F>
static comfywire_status status_of(F &&f) {
    try {
        f();
        return COMFYWIRE_OK;
    } catch (const comfywire::Error &e) {
        return e.status();
    }
}

struct Tally {
    std::atomic<int> progress{0};
    std::atomic<int> finished{0};
};

static void test_bad_inputs() {
    CHECK(status_of([] { comfywire::Client::from_json("{oops"); }) == COMFYWIRE_INVALID_ARGUMENT);
    CHECK(status_of([] {
              comfywire_options options = comfywire_options_default();
              comfywire::Client client(options);  // url missing
          }) == COMFYWIRE_INVALID_ARGUMENT);
    try {
        comfywire::Client::from_json("42");
        CHECK(false);
    } catch (const comfywire::Error &e) {
        CHECK(e.status() == COMFYWIRE_INVALID_ARGUMENT);
        CHECK(std::string(e.what()).size() > 0);
    }
}

static void test_run_callbacks_and_errors() {
    auto client = comfywire::Client::connect_to(mock_url);
    client.connect(10s);
    CHECK(client.state() == "connected");

    auto tally = std::make_shared<Tally>();
    std::weak_ptr<Tally> watch = tally;
    uint64_t id = client.subscribe("progress,finished", [tally](const comfywire::EventView &e) {
        if (e.kind() == "progress") ++tally->progress;
        if (e.kind() == "finished") ++tally->finished;
    });
    CHECK(id != 0);
    auto *raw = tally.get();
    tally.reset();  // the subscription now holds the only reference
    CHECK(!watch.expired());

    auto outcome = client.run(WORKFLOW, 60s);
    CHECK(outcome.succeeded());
    CHECK(outcome.status() == "succeeded");
    CHECK(outcome.outputs_json().find("images") != std::string_view::npos);
    CHECK(!outcome.error_message());
    for (int i = 0; i < 250 && raw->finished.load() < 1; ++i) std::this_thread::sleep_for(20ms);
    CHECK(raw->finished.load() == 1);
    CHECK(raw->progress.load() >= 1);

    client.unsubscribe(id);
    CHECK(watch.expired());  // the std::function (and its capture) was deleted once
    CHECK(status_of([&] { client.unsubscribe(id); }) == COMFYWIRE_INVALID_ARGUMENT);

    // An unknown kind is refused, and the callback copy is still released.
    auto probe = std::make_shared<int>(0);
    std::weak_ptr<int> probe_watch = probe;
    CHECK(status_of([&] { client.subscribe("not_a_kind", [probe](const comfywire::EventView &) {}); }) ==
          COMFYWIRE_INVALID_ARGUMENT);
    probe.reset();
    CHECK(probe_watch.expired());

    CHECK(inject_fault("fail_next_prompt"));
    try {
        client.run(WORKFLOW, 60s);
        CHECK(false);
    } catch (const comfywire::Error &e) {
        CHECK(e.status() == COMFYWIRE_EXECUTION_FAILED);
        CHECK(e.outcome() != nullptr);
        if (e.outcome() != nullptr) {
            CHECK(e.outcome()->status() == "failed");
            CHECK(e.outcome()->error_message().has_value());
        }
    }

    CHECK(status_of([&] { client.submit("{\"1\":"); }) == COMFYWIRE_INVALID_ARGUMENT);

    auto queue = client.queue_json();
    CHECK(queue.find("\"pending\"") != std::string::npos);
    client.clear_queue();
    client.remove({});
    client.remove({"00000000-0000-0000-0000-000000000000"});
    CHECK(!client.interrupt("not-running"));

    // A callback kept until the client goes is released by the destructor.
    auto last = std::make_shared<int>(0);
    std::weak_ptr<int> last_watch = last;
    client.subscribe("", [last](const comfywire::EventView &) {});
    last.reset();
    CHECK(!last_watch.expired());
    { auto gone = std::move(client); }
    CHECK(last_watch.expired());
}

static void test_pull_loop() {
    auto client = comfywire::Client::from_json(
        "{\"url\": \"" + mock_url + "\", \"preview_interval_ms\": 0, \"progress_interval_ms\": 0}");
    client.connect(10s);
    client.next_event(0ms);  // the first pull starts the queue
    std::string id = client.submit(WORKFLOW);
    CHECK(!id.empty());
    int progress = 0, previews = 0;
    bool finished = false, good_progress = true, good_finish = false;
    for (int i = 0; i < 2000 && !finished; ++i) {
        auto event = client.next_event(500ms);
        if (!event || event->prompt_id() != std::optional<std::string_view>(id)) continue;
        if (event->kind() == "progress") {
            ++progress;
            good_progress = good_progress && event->max() > 0 && event->value() <= event->max();
        } else if (event->kind() == "preview") {
            auto [data, len] = event->preview();
            if (data != nullptr && len > 0) ++previews;
        } else if (event->kind() == "finished") {
            finished = true;
            good_finish = event->text() == std::optional<std::string_view>("succeeded") &&
                          event->to_json().find("\"event\":\"finished\"") != std::string_view::npos;
        }
    }
    CHECK(finished);
    CHECK(good_finish);
    CHECK(good_progress);
    CHECK(progress >= 1);
    CHECK(previews >= 1);
    CHECK(client.wait(id, 10s).succeeded());
    client.close();
    CHECK(status_of([&] { client.next_event(10ms); }) == COMFYWIRE_CLOSED);
}

/* A job's events, read after its end, replay it from queued to finished,
 * then the stream is closed; a cancel of the ended prompt does nothing,
 * as the server's queue (empty of it) says. */
static void test_job_events_and_cancel() {
    auto client = comfywire::Client::connect_to(mock_url);
    client.connect(10s);
    comfywire::Outcome outcome = client.run(WORKFLOW);
    std::string id(outcome.prompt_id());
    auto events = client.job_events(id);
    std::vector<std::string> kinds;
    bool ours = true;
    for (int i = 0; i < 1000; ++i) {
        auto event = events.next(5s);
        if (!event) break;
        ours = ours && event->prompt_id() == std::optional<std::string_view>(id);
        kinds.emplace_back(event->kind());
        if (kinds.back() == "finished") break;
    }
    CHECK(ours);
    CHECK(!kinds.empty() && kinds.front() == "prompt_queued" && kinds.back() == "finished");
    CHECK(status_of([&] { events.next(1s); }) == COMFYWIRE_CLOSED);
    CHECK(client.queue_json().find(id) == std::string::npos);
    CHECK(client.cancel(id) == comfywire::Cancelled::NotActive);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        std::cerr << "usage: " << argv[0] << " MOCK_URL\n";
        return 2;
    }
    mock_url = argv[1];
    try {
        test_bad_inputs();
        test_run_callbacks_and_errors();
        test_pull_loop();
        test_job_events_and_cancel();
    } catch (const comfywire::Error &e) {
        ++failed;
        std::cerr << "FAIL: uncaught comfywire::Error " << e.status() << ": " << e.what() << "\n";
    }
    std::cout << passed << " passed, " << failed << " failed" << std::endl;
    return failed == 0 ? 0 : 1;
}
