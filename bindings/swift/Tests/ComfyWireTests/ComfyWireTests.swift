// The Swift suite of comfywire's uniffi bindings, run against the mock
// server by scripts/test-swift.sh (COMFYWIRE_MOCK_URL names it).
import ComfyWire
import Foundation
import XCTest

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

let workflow = #"{"1": {"class_type": "EmptyImage", "inputs": {}}}"#

func mockUrl() throws -> String {
    guard let url = ProcessInfo.processInfo.environment["COMFYWIRE_MOCK_URL"] else {
        throw XCTSkip("COMFYWIRE_MOCK_URL is not set")
    }
    return url
}

func scenario(
    _ name: String, promptId: String? = nil, stallTimeout: TimeInterval? = nil,
    queueTimeout: TimeInterval? = nil, detach: Bool = false
) -> JobOptions {
    JobOptions(
        promptId: promptId, extraData: #"{"mock_scenario": "\#(name)"}"#,
        stallTimeout: stallTimeout, queueTimeout: queueTimeout, detach: detach)
}

/// Which deadline a `Deadline` error's detail names.
func deadlineKind(_ detail: String?) throws -> String? {
    let object = try JSONSerialization.jsonObject(with: Data((detail ?? "{}").utf8))
    return (object as? [String: Any])?["deadline"] as? String
}

/// POSTs a control request to the mock (faults, playback speed).
func mock(_ path: String, _ body: String) async throws {
    var request = URLRequest(url: URL(string: "\(try mockUrl())/mock/\(path)")!)
    request.httpMethod = "POST"
    request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    request.httpBody = body.data(using: .utf8)
    let status: Int = try await withCheckedThrowingContinuation { done in
        URLSession.shared.dataTask(with: request) { _, response, error in
            if let error { return done.resume(throwing: error) }
            done.resume(returning: (response as? HTTPURLResponse)?.statusCode ?? 0)
        }.resume()
    }
    XCTAssertEqual(status, 200, "mock \(path)")
}

struct Refused: Error {}

/// Collects events and the threads they came on; thread-safe because the
/// dispatcher thread writes while the test reads.
final class Recorder: EventListener, @unchecked Sendable {
    private let lock = NSLock()
    private var seen: [Event] = []
    private var onMain = false
    private let throwOn: String?

    init(throwOn: String? = nil) { self.throwOn = throwOn }

    func onEvent(event: Event) throws {
        lock.lock()
        seen.append(event)
        if Thread.isMainThread { onMain = true }
        lock.unlock()
        if event.kind == throwOn {
            // Not a ListenerError: exercises the unexpected-error path.
            throw Refused()
        }
    }

    var events: [Event] { lock.lock(); defer { lock.unlock() }; return seen }
    var kinds: [String] { events.map(\.kind) }
    var sawMainThread: Bool { lock.lock(); defer { lock.unlock() }; return onMain }

    /// Waits (without blocking the cooperative pool for long) until `kind` arrived.
    func wait(for kind: String, seconds: Double = 20) async -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if kinds.contains(kind) { return true }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return false
    }
}

final class States: StateListener, @unchecked Sendable {
    private let lock = NSLock()
    private var seen: [String] = []
    func onState(status: ConnectionStatus) throws {
        lock.lock(); seen.append(status.state); lock.unlock()
    }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return seen }
}


/// A call back into the client that must return at once takes at most this.
let atOnce: TimeInterval = 2
/// Frames a firehose sends: far more than a client reads before a listener closes it.
let flood = 100_000

/// A connected client that makes every progress step and preview an event.
func unthrottled() async throws -> Client {
    let client = try Client.fromSettingsJson(
        json: #"{"url": "\#(try mockUrl())", "progress_interval_ms": 0, "preview_interval_ms": 0}"#)
    try await client.waitConnected(timeoutMs: 10_000)
    return client
}

/// Starts the mock's firehose at a client's socket; the task answers the
/// frames sent (the request answers when the firehose ends).
func firehose(_ clientId: String, _ frames: Int) throws -> Task<Int, Error> {
    var request = URLRequest(url: URL(string: "\(try mockUrl())/mock/firehose")!)
    request.httpMethod = "POST"
    request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    request.httpBody = Data(#"{"client_id": "\#(clientId)", "frames": \#(frames), "scenario": "long_run"}"#.utf8)
    request.timeoutInterval = 120
    return Task.detached {
        let data: Data = try await withCheckedThrowingContinuation { done in
            URLSession.shared.dataTask(with: request) { data, _, error in
                if let error { return done.resume(throwing: error) }
                done.resume(returning: data ?? Data())
            }.resume()
        }
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        return (object?["frames_sent"] as? Int) ?? -1
    }
}

/// Waits (boundedly, blocking the calling thread) for `condition`: for
/// listeners, which run on the dispatcher thread.
func waitUntil(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.005)
    }
    return condition()
}

/// Waits (boundedly, without blocking the cooperative pool) for `condition`.
func eventually(seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        try? await Task.sleep(nanoseconds: 5_000_000)
    }
    return condition()
}

/// A value set on one thread and read on another.
final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var held: T?
    func set(_ value: T) { lock.lock(); held = value; lock.unlock() }
    func take() -> T? { lock.lock(); defer { lock.unlock() }; let value = held; held = nil; return value }
    var value: T? { lock.lock(); defer { lock.unlock() }; return held }
}

/// Runs `act` on its first event only; counts every call.
final class Once: EventListener, @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    private let act: () -> Void
    init(_ act: @escaping () -> Void) { self.act = act }
    func onEvent(event: Event) throws {
        lock.lock()
        count += 1
        let first = count == 1
        lock.unlock()
        if first { act() }
    }
    var calls: Int { lock.lock(); defer { lock.unlock() }; return count }
}

/// Holds its client and its own subscription, like a view model.
final class Owner: EventListener, @unchecked Sendable {
    let client: Client
    var subscription: Subscription?
    init(client: Client) { self.client = client }
    func onEvent(event: Event) throws { _ = client.clientId() }
}

/// The three servers of the pool tests (scripts/test-swift.sh starts
/// `comfywire-mock --count 3` and passes their URLs space-separated).
func poolUrls() throws -> [String] {
    guard let urls = ProcessInfo.processInfo.environment["COMFYWIRE_POOL_URLS"] else {
        throw XCTSkip("COMFYWIRE_POOL_URLS is not set")
    }
    let list = urls.split(separator: " ").map(String.init)
    XCTAssertEqual(list.count, 3, "three pool URLs")
    return list
}

/// Any graph the mock does not know plays its default recording.
let poolWorkflow =
    #"{"1": {"class_type": "EmptyImage", "inputs": {"width": 64}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}"#

/// Sends a request; answers its status and body.
func http(_ request: URLRequest) async throws -> (Int, Data) {
    try await withCheckedThrowingContinuation { done in
        URLSession.shared.dataTask(with: request) { data, response, error in
            if let error { return done.resume(throwing: error) }
            done.resume(returning: ((response as? HTTPURLResponse)?.statusCode ?? 0, data ?? Data()))
        }.resume()
    }
}

/// True when the server at `url` has `promptId` in its `/history` (the
/// server's own view, not the client's).
func inServerHistory(_ url: String, _ promptId: String) async throws -> Bool {
    let (status, data) = try await http(URLRequest(url: URL(string: "\(url)/history/\(promptId)")!))
    XCTAssertEqual(status, 200)
    let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
    return object?[promptId] != nil
}

/// Sets the playback speed of every pool mock.
func poolSpeed(_ speed: Double) async throws {
    for url in try poolUrls() {
        var request = URLRequest(url: URL(string: "\(url)/mock/speed")!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(#"{"speed": \#(speed)}"#.utf8)
        let (status, _) = try await http(request)
        XCTAssertEqual(status, 200, "speed")
    }
}

/// A pool over the three mocks labelled gpu0, gpu1, gpu2, every server taking work.
func threeServerPool() async throws -> Pool {
    let servers = try poolUrls().enumerated().map { PoolServer(url: $1, label: "gpu\($0)") }
    let pool = try Pool(servers: servers, options: PoolOptions(graceMs: 10_000))
    let healthy = try await pool.waitHealthy(count: 3, timeoutMs: 30_000)
    XCTAssertEqual(healthy, 3)
    return pool
}

/// Waits (boundedly, without blocking the cooperative pool) for an async
/// `condition`, such as one read from the mock over HTTP.
func eventuallyAsync(seconds: Double = 10, _ condition: () async throws -> Bool) async throws -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if try await condition() { return true }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    return try await condition()
}

/// GETs a path of the mock; answers its body as JSON.
func mockJson(_ path: String) async throws -> Any {
    let (status, data) = try await http(URLRequest(url: URL(string: "\(try mockUrl())\(path)")!))
    XCTAssertEqual(status, 200, path)
    return try JSONSerialization.jsonObject(with: data)
}

/// What the mock's ledger (the server's own record, not the client's) says
/// of a prompt: how many times it started, and how it left the server
/// (`nil` while pending or running); `nil` when it never enqueued it.
func ledger(_ promptId: String) async throws -> (runs: Int, end: String?)? {
    let ledger = try await mockJson("/mock/ledger") as? [String: Any]
    let entries = ledger?["entries"] as? [[String: Any]] ?? []
    guard let entry = entries.first(where: { $0["prompt_id"] as? String == promptId }) else { return nil }
    return (entry["runs"] as? Int ?? 0, entry["end"] as? String)
}

/// The mock's `/history` entry of a prompt (`nil` when it has none).
func serverHistoryEntry(_ promptId: String) async throws -> [String: Any]? {
    let history = try await mockJson("/history/\(promptId)") as? [String: Any]
    return history?[promptId] as? [String: Any]
}

/// Reads a job's events one at a time up to its `finished`; the stream must
/// then have ended for good (`Closed`).
func readToTheEnd(_ events: JobEvents) throws -> [Event] {
    var read: [Event] = []
    while read.last?.kind != "finished" {
        guard let event = try events.nextEvent(timeoutMs: 20_000) else {
            XCTFail("nothing in 20 s after \(read.map(\.kind))")
            return read
        }
        read.append(event)
    }
    for _ in 0..<2 {
        do {
            let after = try events.nextEvent(timeoutMs: 1_000)
            XCTFail("read after finished: \(String(describing: after?.kind))")
        } catch ComfyError.Closed {
        }
    }
    return read
}

final class ComfyWireTests: XCTestCase {
    /// A client whose socket is open: the client does not yet settle a
    /// prompt that ends before its first connection, so no test races that.
    func client() async throws -> Client {
        let client = try Client(options: ClientOptions(url: try mockUrl()))
        try await client.waitConnected(timeoutMs: 10_000)
        return client
    }

    func testRunSucceedsWithOutputs() async throws {
        let client = try await client()
        try await client.waitConnected(timeoutMs: 10_000)
        let outcome = try await client.run(workflowJson: workflow, options: scenario("success_single"))
        XCTAssertEqual(outcome.status, "succeeded")
        XCTAssertNotEqual(outcome.outputs, "{}")
        let files = try await client.outputFiles(promptId: outcome.promptId)
        XCTAssertFalse(files.isEmpty)
        let bytes = try await client.view(file: files[0])
        XCTAssertFalse(bytes.isEmpty)
        let history = try await client.history()
        XCTAssertTrue(history.contains { $0.promptId == outcome.promptId })
    }

    func testExecutionErrorMapsToExecutionFailed() async throws {
        let client = try await client()
        try await client.waitConnected(timeoutMs: 10_000)
        try await mock("fault", #"{"fault": "fail_next_prompt"}"#)
        do {
            _ = try await client.run(workflowJson: workflow, options: scenario("success_single"))
            XCTFail("run should have failed")
        } catch ComfyError.ExecutionFailed(_, _, let outcome) {
            XCTAssertEqual(outcome?.status, "failed")
            XCTAssertFalse(outcome?.error?.exceptionMessage.isEmpty ?? true)
        }
    }

    func testBadWorkflowIsInvalidArgument() async throws {
        let client = try await client()
        do {
            _ = try await client.submit(workflowJson: "{not json", options: JobOptions())
            XCTFail("submit should have failed")
        } catch ComfyError.InvalidArgument(let reason, _, _) {
            XCTAssertTrue(reason.contains("workflow"), reason)
        }
        do {
            _ = try await client.submit(workflowJson: workflow, options: JobOptions(extraData: "{not json"))
            XCTFail("submit should have failed")
        } catch ComfyError.InvalidArgument(let reason, _, _) {
            XCTAssertTrue(reason.contains("extra_data"), reason)
        }
    }

    func testListenerGetsEventsInOrderOffTheMainThread() async throws {
        let client = try await client()
        let recorder = Recorder()
        let subscription = try client.subscribe(kinds: [], promptId: nil, listener: recorder)
        _ = try await client.run(workflowJson: workflow, options: scenario("success_single"))
        let finished = await recorder.wait(for: "finished")
        XCTAssertTrue(finished)
        _ = subscription.cancel()
        let kinds = recorder.kinds
        let started = try XCTUnwrap(kinds.firstIndex(of: "execution_started"))
        XCTAssertLessThan(started, try XCTUnwrap(kinds.firstIndex(of: "finished")))
        XCTAssertFalse(recorder.sawMainThread)
    }

    func testConcurrentAsyncRuns() async throws {
        let client = try await client()
        try await client.waitConnected(timeoutMs: 10_000)
        async let a = client.run(workflowJson: workflow, options: scenario("success_single"))
        async let b = client.run(workflowJson: workflow, options: scenario("success_single"))
        let (ra, rb) = try await (a, b)
        XCTAssertEqual([ra.status, rb.status], ["succeeded", "succeeded"])
        XCTAssertNotEqual(ra.promptId, rb.promptId)
    }

    func testCancelledSubscriptionGetsNothing() async throws {
        let client = try await client()
        let recorder = Recorder()
        let subscription = try client.subscribe(kinds: ["progress", "finished"], promptId: nil, listener: recorder)
        XCTAssertTrue(subscription.isActive())
        XCTAssertTrue(subscription.cancel())
        XCTAssertFalse(subscription.cancel())
        _ = try await client.run(workflowJson: workflow, options: scenario("success_single"))
        try await Task.sleep(nanoseconds: 200_000_000)
        XCTAssertTrue(recorder.events.isEmpty, "\(recorder.kinds)")
    }

    func testReleasedSubscriptionUnsubscribes() async throws {
        let client = try await client()
        let recorder = Recorder()
        do {
            _ = try client.subscribe(kinds: ["finished"], promptId: nil, listener: recorder)
        }
        XCTAssertEqual(client.stats().callbacks, 0)
        _ = try await client.run(workflowJson: workflow, options: scenario("success_single"))
        XCTAssertTrue(recorder.events.isEmpty)
    }

    func testThrowingListenerIsContainedAndReported() async throws {
        let client = try await client()
        let thrower = Recorder(throwOn: "finished")
        let reports = Recorder()
        let a = try client.subscribe(kinds: ["finished"], promptId: nil, listener: thrower)
        let b = try client.subscribe(kinds: [callbackErrorKind()], promptId: nil, listener: reports)
        let outcome = try await client.run(workflowJson: workflow, options: scenario("success_single"))
        XCTAssertEqual(outcome.status, "succeeded")
        let reported = await reports.wait(for: "callback_error", seconds: 5)
        XCTAssertTrue(reported)
        XCTAssertGreaterThanOrEqual(client.stats().callbackFailures, 1)
        _ = a.cancel()
        _ = b.cancel()
    }

    func testInterruptEndsThePromptAsInterrupted() async throws {
        try await mock("speed", #"{"speed": 0.25}"#)
        defer { Task { try? await mock("speed", #"{"speed": 1}"#) } }
        let client = try await client()
        let recorder = Recorder()
        let subscription = try client.subscribe(kinds: ["progress"], promptId: nil, listener: recorder)
        let submission = try await client.submit(workflowJson: workflow, options: scenario("long_run"))
        let progressed = await recorder.wait(for: "progress")
        XCTAssertTrue(progressed)
        let sent = try await client.interrupt(promptId: submission.promptId)
        XCTAssertTrue(sent)
        do {
            _ = try await client.wait(promptId: submission.promptId, options: JobOptions(timeout: 20))
            XCTFail("wait should have failed")
        } catch ComfyError.Interrupted(_, _, let outcome) {
            XCTAssertEqual(outcome?.status, "interrupted")
        }
        _ = subscription.cancel()
        try await mock("speed", #"{"speed": 1}"#)
    }

    func testCancelDeletesAQueuedPromptInterruptsTheRunningOneLeavesAnEndedOne() async throws {
        try await mock("speed", #"{"speed": 0.25}"#)  // long_run: about 8 s, time to act while it runs
        defer { Task { try? await mock("speed", #"{"speed": 1}"#) } }
        let client = try await client()
        let running = try await client.submit(workflowJson: workflow, options: scenario("long_run")).promptId
        let queued = try await client.submit(workflowJson: workflow, options: scenario("long_run")).promptId
        let started = try await eventuallyAsync { try await ledger(running)?.runs == 1 }
        XCTAssertTrue(started, "the first never started")
        let deleted = try await client.cancel(promptId: queued)
        XCTAssertEqual(deleted, .deleted)
        let queuedRow = try await ledger(queued)
        XCTAssertEqual(queuedRow?.runs, 0, "the queued one ran")
        XCTAssertEqual(queuedRow?.end, "deleted")
        let queuedHistory = try await serverHistoryEntry(queued)
        XCTAssertNil(queuedHistory, "the deleted one has a history")
        let interrupted = try await client.cancel(promptId: running)
        XCTAssertEqual(interrupted, .interrupted)
        let historySays = try await eventuallyAsync {
            let status = try await serverHistoryEntry(running)?["status"] as? [String: Any]
            let messages = status?["messages"] as? [[Any]] ?? []
            return messages.contains { $0.first as? String == "execution_interrupted" }
        }
        XCTAssertTrue(historySays, "the server's history does not say interrupted")
        let ledgerSays = try await eventuallyAsync {
            let row = try await ledger(running)
            return row?.runs == 1 && row?.end == "interrupted"
        }
        XCTAssertTrue(ledgerSays, "the ledger does not say interrupted")
        let ended = try await client.cancel(promptId: running)
        XCTAssertEqual(ended, .notActive)
        let unknown = try await client.cancel(promptId: "no-such-prompt")
        XCTAssertEqual(unknown, .notActive)
        client.shutdown()
        try await mock("speed", #"{"speed": 1}"#)
    }

    func testJobEventsRunFromQueuedToFinishedThenClosedAlsoWhenMadeAfterTheEnd() async throws {
        let client = try await client()
        let id = try await client.submit(workflowJson: workflow, options: scenario("success_single")).promptId
        let live = try readToTheEnd(try client.jobEvents(promptId: id))
        let late = try readToTheEnd(try client.jobEvents(promptId: id))
        // The server writes its history entry just after `execution_success`,
        // which ends the streams: wait for the entry.
        var withOutputs = Set<String>()
        let written = try await eventuallyAsync {
            let entry = try await serverHistoryEntry(id)
            withOutputs = Set((entry?["outputs"] as? [String: Any] ?? [:]).keys)
            return !withOutputs.isEmpty
        }
        XCTAssertTrue(written, "no outputs in the server's history")
        for (name, events) in [("live", live), ("after the end", late)] {
            let kinds = events.map(\.kind)
            XCTAssertTrue(events.allSatisfy { $0.promptId == id }, "\(name): another prompt's event")
            XCTAssertEqual(kinds.first, "prompt_queued", "\(name): \(kinds)")
            XCTAssertEqual(kinds.filter { $0 == "finished" }.count, 1, "\(name): \(kinds)")
            let outputs = Set(events.filter { $0.kind == "output" }.compactMap(\.node))
            XCTAssertEqual(outputs, withOutputs, name)
        }
        client.shutdown()
    }

    func testPullAndStateListenerAndLifecycle() async throws {
        let client = try await client()
        let states = States()
        let stateSub = try client.onStateChange(listener: states)
        try await client.waitConnected(timeoutMs: 10_000)
        _ = try client.nextEvent(timeoutMs: 10)  // the pull queue starts with the first call
        _ = try await client.run(workflowJson: workflow, options: scenario("success_single"))
        var pulled: [String] = []
        while let event = try client.nextEvent(timeoutMs: 300) { pulled.append(event.kind) }
        XCTAssertTrue(pulled.contains("finished"), "\(pulled)")
        try client.pause()
        try client.resume()
        try await client.waitConnected(timeoutMs: 10_000)
        for _ in 0..<250 where !(states.all.contains("paused") && states.all.last == "connected") {
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        XCTAssertTrue(states.all.contains("paused"), "\(states.all)")
        XCTAssertEqual(states.all.last, "connected")
        try client.networkChanged()
        _ = stateSub.cancel()
        client.shutdown()
    }

    func testQueueOperations() async throws {
        let client = try await client()
        try await client.waitConnected(timeoutMs: 10_000)
        let queue = try await client.queue()
        XCTAssertTrue(queue.running.isEmpty && queue.pending.isEmpty)
        try await client.clearQueue()
        try await client.delete(promptIds: ["not-a-prompt"])
        let sent = try await client.interrupt(promptId: "not-a-prompt")
        XCTAssertFalse(sent)
        let stats = try await client.systemStats()
        XCTAssertTrue(stats.contains("system"))
    }

    func testUploadedBytesComeBackFromView() async throws {
        let client = try await client()
        let data = Data((0..<3000).map { UInt8($0 % 256) })
        let stored = try await client.upload(
            filename: "swift-input.png", data: data, spec: UploadSpec(subfolder: "swift", overwrite: true))
        XCTAssertEqual(stored.kind, "input")
        XCTAssertEqual(stored.subfolder, "swift")
        let served = try await client.view(file: stored)
        XCTAssertEqual(served, data)
        do {
            _ = try await client.upload(filename: "", data: data, spec: UploadSpec())
            XCTFail("an empty file name should be refused")
        } catch ComfyError.InvalidArgument {
        }
    }

    func testDownloadedOutputsEqualViewOfEachFile() async throws {
        let client = try await client()
        let outcome = try await client.run(workflowJson: workflow, options: scenario("success_single"))
        let files = try await client.outputFiles(promptId: outcome.promptId)
        XCTAssertFalse(files.isEmpty)
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("comfywire-swift-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let paths = try await client.downloadOutputs(promptId: outcome.promptId, dir: dir.path)
        XCTAssertEqual(paths.count, files.count)
        for (path, file) in zip(paths, files) {
            let onDisk = try Data(contentsOf: URL(fileURLWithPath: path))
            let served = try await client.view(file: file)
            XCTAssertEqual(onDisk, served, path)
        }
    }

    func testQueueDeadlineWhileThePromptStaysQueued() async throws {
        let client = try await client()
        let blocker = try await client.submit(workflowJson: workflow, options: scenario("long_run"))
        let waiting = UUID().uuidString.lowercased()
        do {
            _ = try await client.run(
                workflowJson: workflow,
                options: scenario("success_single", promptId: waiting, queueTimeout: 0.2, detach: true))
            XCTFail("run should have hit the queue deadline")
        } catch ComfyError.Deadline(_, let detail, _) {
            XCTAssertEqual(try deadlineKind(detail), "queue")
        }
        let queue = try await client.queue()
        XCTAssertTrue(queue.pending.contains { $0.promptId == waiting }, "not pending on the server")
        try await client.delete(promptIds: [waiting])
        _ = try await client.interrupt(promptId: blocker.promptId)
        _ = try await client.outcome(promptId: blocker.promptId, options: JobOptions())
        let after = try await client.queue()
        XCTAssertTrue(after.pending.isEmpty)
    }

    func testStallDeadlineAndThePromptGoesOn() async throws {
        let client = try await client()
        let id = UUID().uuidString.lowercased()
        do {
            _ = try await client.run(
                workflowJson: workflow, options: scenario("long_run", promptId: id, stallTimeout: 0.001, detach: true))
            XCTFail("run should have hit the stall deadline")
        } catch ComfyError.Deadline(_, let detail, _) {
            XCTAssertEqual(try deadlineKind(detail), "stall")
        }
        let queue = try await client.queue()
        XCTAssertTrue(queue.running.contains { $0.promptId == id }, "not running on the server")
        let sent = try await client.interrupt(promptId: id)
        XCTAssertTrue(sent)
        let outcome = try await client.outcome(promptId: id, options: JobOptions(timeout: 20))
        XCTAssertEqual(outcome.status, "interrupted")
    }

    func testSettingsJsonConstructor() async throws {
        let client = try Client.fromSettingsJson(json: #"{"url": "\#(try mockUrl())"}"#)
        try await client.waitConnected(timeoutMs: 10_000)
        XCTAssertEqual(client.status().state, "connected")
        XCTAssertThrowsError(try Client.fromSettingsJson(json: "[1]"))
    }

    func testShutdownFromAListenerUnderAFirehose() async throws {
        let client = try await unthrottled()
        let base = client.stats().frames
        let took = Box<(Bool, TimeInterval)>()
        let listener = Once {
            let loaded = waitUntil { client.stats().frames >= base + 2000 }
            let started = Date()
            client.shutdown()
            took.set((loaded, Date().timeIntervalSince(started)))
        }
        let subscription = try client.subscribe(kinds: [], promptId: nil, listener: listener)
        let hose = try firehose(client.clientId(), flood)
        let returned = await eventually(seconds: 30) { took.value != nil }
        XCTAssertTrue(returned, "the listener never returned: shutdown from a listener deadlocked")
        guard let answer = took.value else { return }
        let (loaded, seconds) = answer
        XCTAssertTrue(loaded, "the firehose never got ahead of the listener")
        XCTAssertLessThan(seconds, atOnce)
        client.shutdown()  // from here: waits for the rest of the close
        XCTAssertEqual(client.status().state, "closed")
        do {
            _ = try await client.queue()
            XCTFail("queue after shutdown")
        } catch ComfyError.Closed {
        }
        XCTAssertEqual(listener.calls, 1)
        let sent = try await hose.value
        XCTAssertLessThan(sent, flood, "the firehose was not cut short")
        XCTAssertFalse(subscription.cancel())
    }

    func testTheLastReferenceReleasedInAListenerUnderAFirehose() async throws {
        var client: Client? = try await unthrottled()
        weak var released = client
        let base = client!.stats().frames
        let clientId = client!.clientId()
        let held = Box<Client>()
        held.set(client!)
        let took = Box<(Bool, TimeInterval)>()
        let listener = Once {
            var mine = held.take()
            let loaded = waitUntil { (mine?.stats().frames ?? 0) >= base + 2000 }
            let started = Date()
            mine = nil  // the last reference: the client goes on its dispatcher thread
            took.set((loaded, Date().timeIntervalSince(started)))
        }
        let subscription = try client!.subscribe(kinds: [], promptId: nil, listener: listener)
        client = nil
        let hose = try firehose(clientId, flood)
        let returned = await eventually(seconds: 30) { took.value != nil }
        XCTAssertTrue(returned, "the listener never returned: releasing the client in it deadlocked")
        guard let answer = took.value else { return }
        let (loaded, seconds) = answer
        XCTAssertTrue(loaded, "the firehose never got ahead of the listener")
        XCTAssertLessThan(seconds, atOnce)
        XCTAssertNil(released)
        let sent = try await hose.value
        XCTAssertLessThan(sent, flood, "the socket stayed open")
        XCTAssertEqual(listener.calls, 1)
        XCTAssertFalse(subscription.cancel(), "still registered after the client went")
    }

    func testCancelFromAListenerAndFromAnotherThread() async throws {
        let client = try await unthrottled()
        // Progress only: nothing comes before the firehose, so `own` is set
        // before the first call.
        let own = Box<Subscription>()
        let selfCancel = Box<TimeInterval>()
        let once = Once {
            guard let subscription = own.take() else { return }
            let started = Date()
            _ = subscription.cancel()
            selfCancel.set(Date().timeIntervalSince(started))
        }
        own.set(try client.subscribe(kinds: ["progress"], promptId: nil, listener: once))
        let inside = Box<Bool>()
        let entered = Box<Bool>()
        let busyCalls = Once {
            entered.set(true)
            // Not synchronisation: a call that lasts, so that a cancel which
            // did not wait for it would return inside it.
            Thread.sleep(forTimeInterval: 0.3)
        }
        final class Busy: EventListener, @unchecked Sendable {
            let inner: Once
            let inside: Box<Bool>
            init(_ inner: Once, _ inside: Box<Bool>) { self.inner = inner; self.inside = inside }
            func onEvent(event: Event) throws {
                inside.set(true)
                try inner.onEvent(event: event)
                inside.set(false)
            }
        }
        let busy = try client.subscribe(kinds: [], promptId: nil, listener: Busy(busyCalls, inside))
        let base = client.stats().frames
        let hose = try firehose(client.clientId(), 5_000)
        let started = await eventually { entered.value == true }
        XCTAssertTrue(started)
        XCTAssertTrue(busy.cancel())
        XCTAssertEqual(inside.value, false, "cancel returned while the call was still running")
        let seen = busyCalls.calls
        let sent = try await hose.value
        XCTAssertEqual(sent, 5_000)
        let reached = await eventually { client.stats().frames >= base + 4_000 }
        XCTAssertTrue(reached)
        XCTAssertEqual(busyCalls.calls, seen, "a call started after cancel returned")
        let selfCancelled = await eventually { selfCancel.value != nil }
        XCTAssertTrue(selfCancelled)
        XCTAssertLessThan(selfCancel.value ?? .infinity, atOnce)
        XCTAssertEqual(once.calls, 1)
        client.shutdown()
    }

    func testSubmitAndRunFromAListener() async throws {
        let client = try await client()
        let result = Box<Result<(String, String), Error>>()
        let listener = Once {
            let done = DispatchSemaphore(value: 0)
            Task.detached {
                do {
                    let submitted = try await client.submit(workflowJson: workflow, options: scenario("success_single"))
                    let ran = try await client.run(workflowJson: workflow, options: scenario("success_single"))
                    result.set(.success((submitted.promptId, ran.status)))
                } catch {
                    result.set(.failure(error))
                }
                done.signal()
            }
            _ = done.wait(timeout: .now() + 40)
        }
        let subscription = try client.subscribe(kinds: ["finished"], promptId: nil, listener: listener)
        _ = try await client.run(workflowJson: workflow, options: scenario("success_single"))
        let finished = await eventually(seconds: 60) { result.value != nil }
        XCTAssertTrue(finished)
        let (submitted, ran) = try XCTUnwrap(result.value).get()
        XCTAssertEqual(ran, "succeeded")
        let outcome = try await client.outcome(promptId: submitted, options: JobOptions(timeout: 30))
        XCTAssertEqual(outcome.status, "succeeded")
        _ = subscription.cancel()
        client.shutdown()
    }

    func testAListenerHoldingItsClientIsReleasedByShutdown() async throws {
        weak var owner: Owner?
        weak var client: Client?
        do {
            let strong = try await unthrottled()
            let listener = Owner(client: strong)
            listener.subscription = try strong.subscribe(kinds: [], promptId: nil, listener: listener)
            _ = try await strong.run(workflowJson: workflow, options: scenario("success_single"))
            owner = listener
            client = strong
        }
        // The cycle (client -> listener -> client) keeps both alive...
        XCTAssertNotNil(owner)
        XCTAssertNotNil(client)
        // ...until shutdown lets every listener go, and with it the client.
        client?.shutdown()
        let released = await eventually { owner == nil && client == nil }
        XCTAssertTrue(released, "owner \(owner == nil ? "released" : "kept"), client \(client == nil ? "released" : "kept")")
    }

    func testPoolBatchOfTwelveEndsOnceEachWhereTheServersHistoriesSay() async throws {
        let pool = try await threeServerPool()
        defer { pool.shutdown() }
        let urls = try poolUrls()
        XCTAssertEqual(pool.labels(), ["gpu0", "gpu1", "gpu2"])
        // The first pull starts the queue; what a server said since it came
        // up (a late `status`) may be there already: taken until none is left.
        var early = 0
        while try pool.nextEvent(timeoutMs: 0) != nil, early < 100 { early += 1 }
        XCTAssertLessThan(early, 100, "the pull queue never emptied")
        var ids: [String] = []
        for _ in 0..<12 { ids.append(try await pool.submit(workflowJson: poolWorkflow)) }
        XCTAssertEqual(Set(ids).count, 12)
        var ranOn: [String: String] = [:]
        for id in ids {
            let outcome = try await pool.wait(promptId: id, timeout: 60)
            XCTAssertEqual(outcome.status, "succeeded")
            XCTAssertEqual(outcome.promptId, id)
            XCTAssertEqual(outcome.servers, [outcome.server])
            XCTAssertTrue(outcome.moves.isEmpty)
            XCTAssertTrue(outcome.outcome?.outputs.contains("filename") ?? false, "no output files")
            ranOn[id] = outcome.server
        }
        // The servers' own histories: each prompt on exactly one, the one its outcome names.
        var perServer = [0, 0, 0]
        for id in ids {
            var holders: [Int] = []
            for (i, url) in urls.enumerated() {
                if try await inServerHistory(url, id) { holders.append(i) }
            }
            XCTAssertEqual(holders.count, 1, "\(id) in the history of \(holders)")
            guard let holder = holders.first else { continue }
            XCTAssertEqual("gpu\(holder)", ranOn[id])
            perServer[holder] += 1
        }
        XCTAssertTrue(perServer.allSatisfy { $0 > 0 }, "not every server used: \(perServer)")
        // The pull queue: one `finished` per prompt, every event tagged with its server.
        var finished: [String: Int] = [:]
        var tagged = 0
        while finished.count < ids.count, let event = try pool.nextEvent(timeoutMs: 20_000) {
            XCTAssertTrue(pool.labels().contains(event.server), event.server)
            if let outcome = event.outcome {  // the pool's one `finished` of a submission
                XCTAssertEqual(event.kind, "finished")
                XCTAssertEqual(outcome.server, event.server)
                XCTAssertEqual(ranOn[outcome.promptId], event.server)
                finished[outcome.promptId, default: 0] += 1
            } else if event.kind == "moved" {
                XCTFail("nothing should move: \(String(describing: event.moved))")
            } else {
                XCTAssertEqual(event.event?.kind, event.kind)
                if let prompt = event.promptId, let server = ranOn[prompt] {
                    XCTAssertEqual(server, event.server)
                }
                tagged += 1
            }
        }
        XCTAssertEqual(Set(finished.keys), Set(ids))
        XCTAssertTrue(finished.values.allSatisfy { $0 == 1 }, "\(finished)")
        XCTAssertGreaterThan(tagged, 0)
        XCTAssertEqual(pool.skippedEvents(), 0)
        // The figures agree with the histories.
        let stats = pool.stats()
        XCTAssertEqual(stats.map(\.label), pool.labels())
        for (i, server) in stats.enumerated() {
            XCTAssertEqual(server.done, UInt64(perServer[i]), server.label)
            XCTAssertEqual(server.inFlight, 0)
            XCTAssertTrue(server.healthy)
        }
    }

    func testPoolNodeClassNoServerHasIsValidationNamingIt() async throws {
        let pool = try await threeServerPool()
        defer { pool.shutdown() }
        let missing = #"{"1": {"class_type": "NoSuchNodeOnAnyServer", "inputs": {}}}"#
        do {
            _ = try await pool.submit(workflowJson: missing)
            XCTFail("submit should have been refused")
        } catch ComfyError.Validation(let reason, let detail, _) {
            XCTAssertTrue(reason.contains("NoSuchNodeOnAnyServer"), reason)
            let object = try JSONSerialization.jsonObject(with: Data((detail ?? "{}").utf8)) as? [String: Any]
            XCTAssertEqual(object?["missing"] as? [String], ["NoSuchNodeOnAnyServer"])
        }
        do {
            _ = try await pool.run(workflowJson: missing, timeout: 10)
            XCTFail("run should have been refused")
        } catch ComfyError.Validation(_, let detail, _) {
            XCTAssertTrue(detail?.contains("NoSuchNodeOnAnyServer") ?? false)
        }
        XCTAssertTrue(pool.stats().allSatisfy { $0.inFlight == 0 && $0.done == 0 })
        do {
            _ = try await pool.submit(workflowJson: "{not json")
            XCTFail("bad JSON accepted")
        } catch ComfyError.InvalidArgument {
        }
    }

    func testPoolInterruptEndsARunningPromptAsInterruptedOnItsServer() async throws {
        try await poolSpeed(0.25)
        defer { Task { try? await poolSpeed(20) } }
        let pool = try await threeServerPool()
        _ = try pool.nextEvent(timeoutMs: 0)
        let id = try await pool.submit(workflowJson: poolWorkflow)
        var server: String?
        while server == nil {
            guard let event = try pool.nextEvent(timeoutMs: 20_000) else { break }
            if event.kind == "progress" && event.promptId == id { server = event.server }
        }
        let on = try XCTUnwrap(server, "no progress of \(id)")
        let sent = try await pool.interrupt(promptId: id)
        XCTAssertTrue(sent)
        do {
            _ = try await pool.wait(promptId: id, timeout: 30)
            XCTFail("wait should have failed")
        } catch ComfyError.Interrupted(_, let detail, let outcome) {
            XCTAssertEqual(outcome?.status, "interrupted")
            XCTAssertTrue(detail?.contains(#""server":"\#(on)""#) ?? false, detail ?? "no detail")
        }
        let outcome = try await pool.outcome(promptId: id, timeout: nil)
        XCTAssertEqual(outcome.status, "interrupted")
        XCTAssertEqual(outcome.server, on)
        pool.shutdown()
        try await poolSpeed(20)
    }

    func testPoolRunSettingsJsonUnknownIdsTimeLimitsAndShutdown() async throws {
        let urls = try poolUrls()
        let entries = urls.enumerated().map { #"{"url": "\#($1)", "label": "s\#($0)", "weight": \#($0 + 1)}"# }
        let pool = try Pool.fromSettingsJson(
            json: #"{"servers": [\#(entries.joined(separator: ", "))], "pool_grace_s": 5}"#)
        XCTAssertEqual(pool.labels(), ["s0", "s1", "s2"])
        let healthy = try await pool.waitHealthy(count: 3, timeoutMs: 30_000)
        XCTAssertEqual(healthy, 3)
        let outcome = try await pool.run(workflowJson: poolWorkflow, timeout: 60)
        XCTAssertEqual(outcome.status, "succeeded")
        let index = try XCTUnwrap(Int(outcome.server.dropFirst()))
        let inHistory = try await inServerHistory(urls[index], outcome.promptId)
        XCTAssertTrue(inHistory, "not in its server's history")
        do {
            _ = try await pool.wait(promptId: "no-such-id", timeout: nil)
            XCTFail("unknown id accepted")
        } catch ComfyError.InvalidArgument {
        }
        let id = try await pool.submit(workflowJson: poolWorkflow)
        do {
            _ = try await pool.wait(promptId: id, timeout: 0.001)
            XCTFail("no time limit")
        } catch ComfyError.Timeout {
        }
        let later = try await pool.wait(promptId: id, timeout: 60)
        XCTAssertEqual(later.status, "succeeded")
        pool.shutdown()
        pool.shutdown()
        do {
            _ = try await pool.submit(workflowJson: poolWorkflow)
            XCTFail("submit after shutdown")
        } catch ComfyError.Closed {
        }
        XCTAssertThrowsError(try Pool.fromSettingsJson(json: #"{"url": "\#(try mockUrl())"}"#))
        XCTAssertThrowsError(try Pool(servers: [PoolServer(url: try mockUrl(), weight: 0)], options: PoolOptions()))
    }
}
