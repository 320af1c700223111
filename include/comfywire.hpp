// comfywire.hpp: a small header-only C++17 RAII wrapper over comfywire.h.
//
// Every handle is a move-only object that frees itself; every failing call
// throws comfywire::Error (status code, message, and the outcome of a
// failed, interrupted or lost prompt). Callbacks are std::function objects:
// the library owns a heap copy and deletes it (through free_user_data)
// exactly once, when the subscription ends or the client is freed.
#ifndef COMFYWIRE_HPP
#define COMFYWIRE_HPP

#include <comfywire.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace comfywire {

namespace detail {
struct ClientFree {
    void operator()(comfywire_client *c) const noexcept { comfywire_client_free(c); }
};
struct EventFree {
    void operator()(comfywire_event *e) const noexcept { comfywire_event_free(e); }
};
struct OutcomeFree {
    void operator()(comfywire_outcome *o) const noexcept { comfywire_outcome_free(o); }
};
struct JobEventsFree {
    void operator()(comfywire_job_events *j) const noexcept { comfywire_job_events_free(j); }
};

// Copies a library-owned `char *` into a std::string and frees it.
inline std::string take(char *text) {
    std::string copy = text ? text : "";
    comfywire_string_free(text);
    return copy;
}

inline std::optional<std::string_view> view(const char *text) {
    if (text == nullptr) return std::nullopt;
    return std::string_view(text);
}

inline uint32_t millis(std::chrono::milliseconds ms) {
    auto count = ms.count();
    if (count < 0) return 0;
    if (count > static_cast<long long>(UINT32_MAX)) return UINT32_MAX;
    return static_cast<uint32_t>(count);
}
}  // namespace detail

/// How a prompt ended; owns a comfywire_outcome.
class Outcome {
public:
    explicit Outcome(comfywire_outcome *raw) : raw_(raw) {}
    std::string_view prompt_id() const { return comfywire_outcome_prompt_id(raw_.get()); }
    std::string_view status() const { return comfywire_outcome_status(raw_.get()); }
    bool succeeded() const { return comfywire_outcome_succeeded(raw_.get()); }
    std::string_view outputs_json() const { return comfywire_outcome_outputs_json(raw_.get()); }
    std::optional<std::string_view> error_message() const {
        return detail::view(comfywire_outcome_error_message(raw_.get()));
    }
    std::string_view json() const { return comfywire_outcome_json(raw_.get()); }

private:
    std::unique_ptr<comfywire_outcome, detail::OutcomeFree> raw_;
};

/// A failed call: the status, the message, and the outcome when the prompt
/// ran and ended badly.
class Error : public std::runtime_error {
public:
    Error(comfywire_status status, const char *message, comfywire_outcome *outcome = nullptr)
        : std::runtime_error(message ? message : comfywire_status_name(status)),
          status_(status),
          outcome_(outcome ? std::make_shared<Outcome>(outcome) : nullptr) {}
    comfywire_status status() const noexcept { return status_; }
    /// The outcome of a failed, interrupted or lost prompt, or nullptr.
    const Outcome *outcome() const noexcept { return outcome_.get(); }

private:
    comfywire_status status_;
    std::shared_ptr<Outcome> outcome_;  // shared: exceptions must be copyable
};

inline void check(comfywire_status status, comfywire_outcome *outcome = nullptr) {
    if (status != COMFYWIRE_OK) throw Error(status, comfywire_last_error_message(), outcome);
}

/// Read access to an event (owned or lent to a callback).
class EventView {
public:
    explicit EventView(const comfywire_event *raw) : raw_(raw) {}
    std::string_view kind() const { return comfywire_event_kind(raw_); }
    std::optional<std::string_view> prompt_id() const { return detail::view(comfywire_event_prompt_id(raw_)); }
    std::optional<std::string_view> node() const { return detail::view(comfywire_event_node(raw_)); }
    std::optional<std::string_view> text() const { return detail::view(comfywire_event_text(raw_)); }
    std::optional<std::string_view> json() const { return detail::view(comfywire_event_json(raw_)); }
    std::string_view to_json() const { return comfywire_event_to_json(raw_); }
    double value() const { return comfywire_event_value(raw_); }
    double max() const { return comfywire_event_max(raw_); }
    double overall() const { return comfywire_event_overall(raw_); }
    /// Preview bytes, borrowed from the event.
    std::pair<const uint8_t *, size_t> preview() const {
        const uint8_t *data = nullptr;
        size_t len = 0;
        check(comfywire_event_preview(raw_, &data, &len));
        return {data, len};
    }

protected:
    const comfywire_event *raw_;
};

/// An owned event (from Client::next_event).
class Event : public EventView {
public:
    explicit Event(comfywire_event *raw) : EventView(raw), owned_(raw) {}

private:
    std::unique_ptr<comfywire_event, detail::EventFree> owned_;
};

/// What Client::cancel did.
enum class Cancelled {
    NotActive = COMFYWIRE_CANCEL_NOT_ACTIVE,
    Deleted = COMFYWIRE_CANCEL_DELETED,
    Interrupted = COMFYWIRE_CANCEL_INTERRUPTED,
};

/// One prompt's events from its submission to its `finished` (from
/// Client::job_events); owns a comfywire_job_events.
class JobEvents {
public:
    explicit JobEvents(comfywire_job_events *raw) : raw_(raw) {}

    /// The next event, or nullopt when none arrived within `timeout`;
    /// throws Error with COMFYWIRE_CLOSED once the stream has ended (after
    /// its `finished`, or when the client closed).
    std::optional<Event> next(std::chrono::milliseconds timeout) {
        comfywire_event *event = nullptr;
        check(comfywire_job_events_next(raw_.get(), detail::millis(timeout), &event));
        if (event == nullptr) return std::nullopt;
        return Event(event);
    }

private:
    std::unique_ptr<comfywire_job_events, detail::JobEventsFree> raw_;
};

using Callback = std::function<void(const EventView &)>;

/// One client; closes and frees itself on destruction.
class Client {
public:
    /// From a URL with default options.
    static Client connect_to(const std::string &url) {
        comfywire_options options = comfywire_options_default();
        options.url = url.c_str();
        return Client(options);
    }

    explicit Client(const comfywire_options &options) {
        comfywire_client *raw = nullptr;
        check(comfywire_client_new(&options, &raw));
        raw_.reset(raw);
    }

    /// From a JSON settings string.
    static Client from_json(const std::string &settings) {
        comfywire_client *raw = nullptr;
        check(comfywire_client_new_json(settings.c_str(), &raw));
        return Client(raw);
    }

    void connect(std::chrono::milliseconds timeout) {
        check(comfywire_connect(raw_.get(), detail::millis(timeout)));
    }

    std::string state() const {
        char *text = nullptr;
        check(comfywire_connection_state(raw_.get(), &text));
        return detail::take(text);
    }

    std::string submit(const std::string &workflow_json) {
        char *id = nullptr;
        check(comfywire_submit(raw_.get(), workflow_json.c_str(), &id));
        return detail::take(id);
    }

    /// Submits and waits; throws Error (with the outcome) unless it succeeded.
    Outcome run(const std::string &workflow_json, std::chrono::milliseconds timeout = {}) {
        comfywire_outcome *outcome = nullptr;
        // Two statements: the outcome must be read after the call wrote it.
        comfywire_status status =
            comfywire_run(raw_.get(), workflow_json.c_str(), detail::millis(timeout), &outcome);
        check(status, outcome);
        return Outcome(outcome);
    }

    Outcome wait(const std::string &prompt_id, std::chrono::milliseconds timeout) {
        comfywire_outcome *outcome = nullptr;
        comfywire_status status =
            comfywire_wait(raw_.get(), prompt_id.c_str(), detail::millis(timeout), &outcome);
        check(status, outcome);
        return Outcome(outcome);
    }

    /// Registers `callback` for a comma-separated list of kinds ("" for all).
    /// It runs on the dispatcher thread; exceptions it throws are swallowed
    /// (they must not cross the C boundary).
    uint64_t subscribe(const std::string &kinds, Callback callback) {
        auto *owned = new Callback(std::move(callback));
        uint64_t id = 0;
        // On failure the library has already deleted `owned` via free_fn.
        check(comfywire_subscribe(raw_.get(), kinds.c_str(), nullptr, &Client::trampoline, owned,
                                  &Client::free_fn, &id));
        return id;
    }

    void unsubscribe(uint64_t id) { check(comfywire_unsubscribe(raw_.get(), id)); }

    /// The next event, or nullopt when none arrived within `timeout`.
    std::optional<Event> next_event(std::chrono::milliseconds timeout) {
        comfywire_event *event = nullptr;
        check(comfywire_next_event(raw_.get(), detail::millis(timeout), &event));
        if (event == nullptr) return std::nullopt;
        return Event(event);
    }

    bool interrupt(const std::string &prompt_id) {
        bool sent = false;
        check(comfywire_interrupt(raw_.get(), prompt_id.c_str(), &sent));
        return sent;
    }

    /// Removes a prompt from the server: deleted while queued, interrupted
    /// while running.
    Cancelled cancel(const std::string &prompt_id) {
        comfywire_cancelled done = COMFYWIRE_CANCEL_NOT_ACTIVE;
        check(comfywire_cancel(raw_.get(), prompt_id.c_str(), &done));
        return static_cast<Cancelled>(done);
    }

    /// The events of one prompt, replayed from the client's record, then
    /// live, up to its `finished`.
    JobEvents job_events(const std::string &prompt_id) {
        comfywire_job_events *raw = nullptr;
        check(comfywire_job_events_new(raw_.get(), prompt_id.c_str(), &raw));
        return JobEvents(raw);
    }

    std::string queue_json() {
        char *json = nullptr;
        check(comfywire_queue(raw_.get(), &json));
        return detail::take(json);
    }

    void remove(const std::vector<std::string> &prompt_ids) {
        std::vector<const char *> raw;
        raw.reserve(prompt_ids.size());
        for (const auto &id : prompt_ids) raw.push_back(id.c_str());
        check(comfywire_delete(raw_.get(), raw.data(), raw.size()));
    }

    void clear_queue() { check(comfywire_clear_queue(raw_.get())); }
    void close() { check(comfywire_client_close(raw_.get())); }
    comfywire_client *get() const noexcept { return raw_.get(); }

private:
    explicit Client(comfywire_client *raw) : raw_(raw) {}

    static void trampoline(void *user_data, const comfywire_event *event) {
        try {
            (*static_cast<Callback *>(user_data))(EventView(event));
        } catch (...) {
            // Unwinding into the library is undefined; drop the exception.
        }
    }
    static void free_fn(void *user_data) { delete static_cast<Callback *>(user_data); }

    std::unique_ptr<comfywire_client, detail::ClientFree> raw_;
};

}  // namespace comfywire

#endif  // COMFYWIRE_HPP
