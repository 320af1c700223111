// The Kotlin suite of comfywire's uniffi bindings, run against the mock
// server by scripts/test-kotlin.sh. A plain main (no JUnit, no Gradle) so it
// needs only kotlinc, kotlinx-coroutines and JNA; it prints
// "N passed, N failed", the line CI looks for.
import comfywire.*
import comfywire.host.*
import java.io.File
import java.lang.ref.WeakReference
import java.net.HttpURLConnection
import java.net.URI
import java.time.Duration
import java.util.Collections
import java.util.UUID
import java.util.concurrent.ArrayBlockingQueue
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong
import java.util.concurrent.atomic.AtomicReference
import kotlin.concurrent.thread
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout

val mockUrl: String = System.getenv("COMFYWIRE_MOCK_URL") ?: error("COMFYWIRE_MOCK_URL is not set")
const val WORKFLOW = """{"1": {"class_type": "EmptyImage", "inputs": {}}}"""

fun scenario(name: String, promptId: String? = null, stall: Duration? = null, queue: Duration? = null, detach: Boolean = false) =
    JobOptions(promptId = promptId, extraData = """{"mock_scenario": "$name"}""", stallTimeout = stall, queueTimeout = queue, detach = detach)

/** POSTs a control request to the mock (faults, playback speed, firehose); answers its body. */
fun mock(path: String, body: String): String {
    val c = URI("$mockUrl/mock/$path").toURL().openConnection() as HttpURLConnection
    c.requestMethod = "POST"
    c.doOutput = true
    c.setRequestProperty("Content-Type", "application/json")
    c.outputStream.use { it.write(body.toByteArray()) }
    check(c.responseCode == 200) { "mock $path answered ${c.responseCode}" }
    val answer = c.inputStream.use { String(it.readBytes()) }
    c.disconnect()
    return answer
}

/** A call back into the client that must return at once takes at most this. */
const val AT_ONCE_MS = 2_000L
/** Frames a firehose sends: far more than a client reads before a listener closes it. */
const val FLOOD = 100_000L

/** A connected client that makes every progress step and preview an event. */
suspend fun unthrottled(): Client =
    Client.fromSettingsJson("""{"url": "$mockUrl", "progress_interval_ms": 0, "preview_interval_ms": 0}""")
        .also { it.waitConnected(10_000u) }

/** Starts the mock's firehose at a client's socket on a thread of its own (the
 *  request answers when the firehose ends); `sent` gets the frames it sent. */
fun firehose(clientId: String, frames: Long, sent: AtomicLong = AtomicLong(-1)): Thread = thread(isDaemon = true) {
    val answer = mock("firehose", """{"client_id": "$clientId", "frames": $frames, "scenario": "long_run"}""")
    sent.set(Regex("\"frames_sent\":\\s*(\\d+)").find(answer)?.groupValues?.get(1)?.toLong() ?: -1)
}

/** Waits (boundedly) for `condition`. */
fun until(limitMs: Long = 10_000, condition: () -> Boolean): Boolean {
    val end = System.nanoTime() + limitMs * 1_000_000
    while (System.nanoTime() < end) {
        if (condition()) return true
        Thread.sleep(5)
    }
    return condition()
}

/** Until the client read `more` frames past `base`: the socket kept delivering
 *  while a listener held the dispatcher, so the hand-off to it is full. */
fun framesPast(client: Client, base: ULong, more: ULong) = until { client.stats().frames >= base + more }

/** A listener that holds its client and its own subscription, like a view model. */
class Owner(val client: Client) : EventListener {
    var subscription: Subscription? = null
    override fun onEvent(event: Event) { client.clientId() }
}

/** Subscribes an [Owner] of `client`; only a weak reference to it stays here. */
fun ownedBy(client: Client): WeakReference<Owner> {
    val owner = Owner(client)
    owner.subscription = client.subscribe(listOf(), null, owner)
    return WeakReference(owner)
}

/** True once the garbage collector let `ref` go (bounded). */
fun collected(ref: WeakReference<*>) = until { System.gc(); ref.get() == null }

/** A client whose socket is open: the client does not yet settle a prompt
 *  that ends before its first connection, so no test races that. */
suspend fun newClient(): Client = Client(ClientOptions(url = mockUrl)).also { it.waitConnected(10_000u) }

/** Collects events (and the threads they came on) from a listener. */
class Recorder(private val throwOn: String? = null) : EventListener {
    val events: MutableList<Event> = Collections.synchronizedList(mutableListOf())
    val threads: MutableSet<Thread> = Collections.synchronizedSet(mutableSetOf())
    val finished = CountDownLatch(1)
    val progressed = CountDownLatch(1)

    override fun onEvent(event: Event) {
        events.add(event)
        threads.add(Thread.currentThread())
        if (event.kind == "progress") progressed.countDown()
        if (event.kind == "finished") finished.countDown()
        if (event.kind == throwOn) throw RuntimeException("listener refuses $throwOn")
    }

    fun kinds(): List<String> = synchronized(events) { events.map { it.kind } }
}

fun expect(condition: Boolean, message: () -> String) {
    if (!condition) throw AssertionError(message())
}

/** The three servers of the pool tests (scripts/test-kotlin.sh starts
 *  `comfywire-mock --count 3` and passes their URLs space-separated). */
val poolUrls: List<String> by lazy {
    (System.getenv("COMFYWIRE_POOL_URLS") ?: error("COMFYWIRE_POOL_URLS is not set"))
        .split(" ").filter { it.isNotBlank() }.also { check(it.size == 3) { "three pool URLs, got $it" } }
}
/** Any graph the mock does not know plays its default recording. */
const val POOL_WORKFLOW = """{"1": {"class_type": "EmptyImage", "inputs": {"width": 64}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}"""

/** A pool over the three mocks labelled gpu0, gpu1, gpu2, every server taking work. */
suspend fun threeServerPool(): Pool {
    val servers = poolUrls.mapIndexed { i, url -> PoolServer(url = url, label = "gpu$i") }
    val pool = Pool(servers, PoolOptions(graceMs = 10_000uL))
    val healthy = pool.waitHealthy(3u, 30_000uL)
    expect(healthy == 3u) { "$healthy of 3 servers healthy" }
    return pool
}

/** GETs a URL; answers its body (the servers' own view, not the client's). */
fun httpGet(url: String): String {
    val c = URI(url).toURL().openConnection() as HttpURLConnection
    check(c.responseCode == 200) { "$url answered ${c.responseCode}" }
    val answer = c.inputStream.use { String(it.readBytes()) }
    c.disconnect()
    return answer
}

/** True when the server at `url` has `promptId` in its `/history`. */
fun inServerHistory(url: String, promptId: String) = httpGet("$url/history/$promptId").contains("\"$promptId\"")

/** Sets the playback speed of every pool mock. */
fun poolSpeed(speed: Double) = poolUrls.forEach { url ->
    val c = URI("$url/mock/speed").toURL().openConnection() as HttpURLConnection
    c.requestMethod = "POST"
    c.doOutput = true
    c.outputStream.use { it.write("""{"speed": $speed}""".toByteArray()) }
    check(c.responseCode == 200) { "speed answered ${c.responseCode}" }
    c.disconnect()
}

/** What the mock's ledger (the server's own record, not the client's) says
 *  of a prompt: how many times it started, and how it left the server
 *  (`null` while pending or running). */
data class LedgerRow(val runs: Int, val end: String?)

/** The ledger row of `promptId`, or null when the mock never enqueued it. Its
 *  entries are flat JSON objects, so each is one `{...}` without braces inside. */
fun ledger(promptId: String): LedgerRow? {
    val entry = Regex("\\{[^{}]*\\}").findAll(httpGet("$mockUrl/mock/ledger")).map { it.value }
        .firstOrNull { Regex("\"prompt_id\":\\s*\"${Regex.escape(promptId)}\"").containsMatchIn(it) } ?: return null
    val runs = Regex("\"runs\":\\s*(\\d+)").find(entry)?.groupValues?.get(1)?.toInt() ?: 0
    return LedgerRow(runs, Regex("\"end\":\\s*\"(\\w+)\"").find(entry)?.groupValues?.get(1))
}

/** The keys of the JSON object that follows the first `"name"` in `json`
 *  (a small scanner: the suite has no JSON library). */
fun keysOf(json: String, name: String): Set<String> {
    val keys = mutableSetOf<String>()
    var i = json.indexOf("\"$name\"").let { if (it < 0) return keys else json.indexOf('{', it) }
    var depth = 0
    while (i in json.indices) {
        when (json[i]) {
            '{', '[' -> depth++
            '}', ']' -> if (--depth == 0) return keys
            '"' -> {
                var end = i + 1
                while (json[end] != '"') end += if (json[end] == '\\') 2 else 1
                if (depth == 1 && json.substring(end + 1).trimStart().startsWith(":")) keys.add(json.substring(i + 1, end))
                i = end
            }
        }
        i++
    }
    return keys
}

/** Reads a job's events one at a time up to its `finished`; the stream must
 *  then have ended for good (`Closed`). */
fun readToTheEnd(events: JobEvents): List<Event> {
    val read = mutableListOf<Event>()
    while (read.lastOrNull()?.kind != "finished") {
        read.add(events.nextEvent(20_000u) ?: throw AssertionError("nothing in 20 s after ${read.map { it.kind }}"))
    }
    repeat(2) {
        try {
            val after = events.nextEvent(1_000u)
            throw AssertionError("read after finished: ${after?.kind}")
        } catch (e: ComfyException.Closed) {
        }
    }
    return read
}

val tests: List<Pair<String, suspend () -> Unit>> = listOf(
    "run succeeds with outputs" to {
        newClient().use { client ->
            client.waitConnected(10_000u)
            val outcome = client.run(WORKFLOW, scenario("success_single"))
            expect(outcome.status == "succeeded") { "status ${outcome.status}" }
            expect(outcome.outputs != "{}") { "no outputs" }
            val files = client.outputFiles(outcome.promptId)
            expect(files.isNotEmpty()) { "no output files" }
            val bytes = client.view(files[0])
            expect(bytes.isNotEmpty()) { "empty /view answer" }
            expect(client.history().any { it.promptId == outcome.promptId }) { "not in history" }
        }
    },
    "execution error maps to ComfyException.ExecutionFailed" to {
        newClient().use { client ->
            client.waitConnected(10_000u)
            mock("fault", """{"fault": "fail_next_prompt"}""")
            try {
                client.run(WORKFLOW, scenario("success_single"))
                throw AssertionError("run should have failed")
            } catch (e: ComfyException.ExecutionFailed) {
                val outcome = e.outcome ?: throw AssertionError("no outcome")
                expect(outcome.status == "failed") { "status ${outcome.status}" }
                expect(outcome.error?.exceptionMessage?.isNotEmpty() == true) { "no exception message" }
            }
        }
    },
    "bad workflow JSON maps to InvalidArgument" to {
        newClient().use { client ->
            try {
                client.submit("{not json", JobOptions())
                throw AssertionError("submit should have failed")
            } catch (e: ComfyException.InvalidArgument) {
                expect(e.reason.contains("workflow")) { e.reason }
            }
            try {
                client.submit(WORKFLOW, JobOptions(extraData = "{not json"))
                throw AssertionError("submit should have failed")
            } catch (e: ComfyException.InvalidArgument) {
                expect(e.reason.contains("extra_data")) { e.reason }
            }
        }
    },
    "listener gets events in order on a background thread" to {
        newClient().use { client ->
            val recorder = Recorder()
            client.subscribe(listOf(), null, recorder).use {
                client.run(WORKFLOW, scenario("success_single"))
                expect(recorder.finished.await(10, TimeUnit.SECONDS)) { "no finished event" }
            }
            val kinds = recorder.kinds()
            expect(kinds.indexOf("execution_started") in 0 until kinds.indexOf("finished")) { "order: $kinds" }
            val main = Thread.currentThread()
            expect(recorder.threads.none { it == main }) { "listener ran on the caller's thread" }
        }
    },
    "concurrent suspend runs under runBlocking" to {
        newClient().use { client ->
            client.waitConnected(10_000u)
            val outcomes = runBlocking {
                (1..2).map { async { client.run(WORKFLOW, scenario("success_single")) } }.awaitAll()
            }
            expect(outcomes.all { it.status == "succeeded" }) { "statuses ${outcomes.map { it.status }}" }
            expect(outcomes[0].promptId != outcomes[1].promptId) { "same prompt id twice" }
        }
    },
    "cancelled subscription gets nothing more" to {
        newClient().use { client ->
            val recorder = Recorder()
            val subscription = client.subscribe(listOf("progress", "finished"), null, recorder)
            expect(subscription.isActive()) { "inactive at start" }
            expect(subscription.cancel()) { "cancel returned false" }
            expect(!subscription.cancel()) { "second cancel returned true" }
            client.run(WORKFLOW, scenario("success_single"))
            Thread.sleep(200)
            expect(recorder.events.isEmpty()) { "got ${recorder.kinds()} after cancel" }
            subscription.close()
        }
    },
    "throwing listener is contained and reported" to {
        newClient().use { client ->
            val thrower = Recorder(throwOn = "finished")
            val reports = Recorder()
            val a = client.subscribe(listOf("finished"), null, thrower)
            val b = client.subscribe(listOf(callbackErrorKind()), null, reports)
            val outcome = client.run(WORKFLOW, scenario("success_single"))
            expect(outcome.status == "succeeded") { "status ${outcome.status}" }
            var waited = 0
            while (reports.events.isEmpty() && waited < 5000) { Thread.sleep(20); waited += 20 }
            expect(reports.events.isNotEmpty()) { "no callback_error report" }
            expect(reports.events[0].text?.contains("listener refuses") == true) { "${reports.events[0].text}" }
            expect(client.stats().callbackFailures >= 1u) { "failure not counted" }
            a.close(); b.close()
        }
    },
    "interrupt ends the running prompt as Interrupted" to {
        mock("speed", """{"speed": 0.25}""")
        try {
            newClient().use { client ->
                val recorder = Recorder()
                client.subscribe(listOf("progress"), null, recorder).use {
                    val submission = client.submit(WORKFLOW, scenario("long_run"))
                    expect(recorder.progressed.await(20, TimeUnit.SECONDS)) { "no progress" }
                    expect(client.interrupt(submission.promptId)) { "interrupt not sent" }
                    try {
                        client.wait(submission.promptId, JobOptions(timeout = Duration.ofSeconds(20)))
                        throw AssertionError("wait should have failed")
                    } catch (e: ComfyException.Interrupted) {
                        expect(e.outcome?.status == "interrupted") { "status ${e.outcome?.status}" }
                    }
                }
            }
        } finally {
            mock("speed", """{"speed": 1}""")
        }
    },
    "cancel deletes a queued prompt unrun, interrupts the running one, leaves an ended one" to {
        mock("speed", """{"speed": 0.25}""") // long_run: about 8 s, time to act while it runs
        try {
            newClient().use { client ->
                val running = client.submit(WORKFLOW, scenario("long_run")).promptId
                val queued = client.submit(WORKFLOW, scenario("long_run")).promptId
                expect(until { ledger(running)?.runs == 1 }) { "the first never started: ${ledger(running)}" }
                val deleted = client.cancel(queued)
                expect(deleted == Cancelled.DELETED) { "queued: $deleted" }
                expect(ledger(queued) == LedgerRow(0, "deleted")) { "ledger of the queued one: ${ledger(queued)}" }
                expect(!httpGet("$mockUrl/history/$queued").contains(queued)) { "the deleted one has a history" }
                val interrupted = client.cancel(running)
                expect(interrupted == Cancelled.INTERRUPTED) { "running: $interrupted" }
                expect(until { httpGet("$mockUrl/history/$running").contains("execution_interrupted") }) {
                    "history of the running one: ${httpGet("$mockUrl/history/$running")}"
                }
                expect(until { ledger(running) == LedgerRow(1, "interrupted") }) { "ledger of the running one: ${ledger(running)}" }
                val ended = client.cancel(running)
                expect(ended == Cancelled.NOT_ACTIVE) { "ended: $ended" }
                expect(client.cancel("no-such-prompt") == Cancelled.NOT_ACTIVE) { "a prompt the server does not know" }
            }
        } finally {
            mock("speed", """{"speed": 1}""")
        }
    },
    "job events: one prompt's, prompt_queued to finished with the server's outputs, then Closed; replayed after the end" to {
        newClient().use { client ->
            val id = client.submit(WORKFLOW, scenario("success_single")).promptId
            val live = client.jobEvents(id).use { readToTheEnd(it) }
            val late = client.jobEvents(id).use { readToTheEnd(it) }
            // The server writes its history entry just after `execution_success`,
            // which ends the streams: wait for the entry.
            var withOutputs = emptySet<String>()
            val written = until {
                withOutputs = keysOf(httpGet("$mockUrl/history/$id"), "outputs")
                withOutputs.isNotEmpty()
            }
            expect(written) { "no outputs in the server's history" }
            for ((name, events) in listOf("live" to live, "after the end" to late)) {
                val kinds = events.map { it.kind }
                expect(events.all { it.promptId == id }) { "$name: events of ${events.map { it.promptId }.toSet()}" }
                expect(kinds.first() == "prompt_queued") { "$name: $kinds" }
                expect(kinds.count { it == "finished" } == 1) { "$name: $kinds" }
                val outputs = events.filter { it.kind == "output" }.map { it.node }.toSet()
                expect(outputs == withOutputs) { "$name: outputs of $outputs, the server's history $withOutputs" }
            }
        }
    },
    "pull next_event and connection state listener" to {
        newClient().use { client ->
            val states: MutableList<String> = Collections.synchronizedList(mutableListOf())
            val stateSub = client.onStateChange(object : StateListener {
                override fun onState(status: ConnectionStatus) { states.add(status.state) }
            })
            client.waitConnected(10_000u)
            client.nextEvent(10u) // the pull queue starts with the first call
            client.run(WORKFLOW, scenario("success_single"))
            val pulled = mutableListOf<String>()
            while (true) { val e = client.nextEvent(300u) ?: break; pulled.add(e.kind) }
            expect("finished" in pulled) { "pulled $pulled" }
            client.pause()
            client.resume()
            client.waitConnected(10_000u)
            var waited = 0
            while (!(states.contains("paused") && states.last() == "connected") && waited < 5000) {
                Thread.sleep(20); waited += 20
            }
            expect("paused" in states && states.last() == "connected") { "states $states" }
            client.networkChanged()
            stateSub.close()
        }
    },
    "queue operations" to {
        newClient().use { client ->
            client.waitConnected(10_000u)
            val q = client.queue()
            expect(q.running.isEmpty() && q.pending.isEmpty()) { "queue not empty: $q" }
            client.clearQueue()
            client.delete(listOf("not-a-prompt"))
            expect(!client.interrupt("not-a-prompt")) { "interrupted a stranger" }
            expect(client.systemStats().contains("system")) { "system_stats" }
        }
    },
    "uploaded bytes come back from view" to {
        newClient().use { client ->
            val data = ByteArray(3000) { (it % 256).toByte() }
            val stored = client.upload("kotlin-input.png", data, UploadSpec(subfolder = "kotlin", overwrite = true))
            expect(stored.kind == "input" && stored.subfolder == "kotlin") { "stored as $stored" }
            expect(client.view(stored).contentEquals(data)) { "view differs from the upload" }
            try {
                client.upload("", data, UploadSpec())
                throw AssertionError("an empty file name should be refused")
            } catch (e: ComfyException.InvalidArgument) {
            }
        }
    },
    "downloaded outputs equal view of each output file" to {
        newClient().use { client ->
            val outcome = client.run(WORKFLOW, scenario("success_single"))
            val files = client.outputFiles(outcome.promptId)
            expect(files.isNotEmpty()) { "no output files" }
            val dir = kotlin.io.path.createTempDirectory("comfywire-kotlin").toFile()
            try {
                val paths = client.downloadOutputs(outcome.promptId, dir.path)
                expect(paths.size == files.size) { "${paths.size} paths for ${files.size} files" }
                for ((path, file) in paths.zip(files)) {
                    expect(File(path).readBytes().contentEquals(client.view(file))) { "$path differs from /view" }
                }
            } finally {
                dir.deleteRecursively()
            }
        }
    },
    "queue deadline gives Deadline while the prompt stays queued" to {
        newClient().use { client ->
            val blocker = client.submit(WORKFLOW, scenario("long_run"))
            val waiting = UUID.randomUUID().toString()
            try {
                client.run(WORKFLOW, scenario("success_single", promptId = waiting, queue = Duration.ofMillis(200), detach = true))
                throw AssertionError("run should have hit the queue deadline")
            } catch (e: ComfyException.Deadline) {
                expect(e.detail?.contains("\"queue\"") == true) { "detail ${e.detail}" }
            }
            expect(client.queue().pending.any { it.promptId == waiting }) { "not pending on the server" }
            client.delete(listOf(waiting))
            client.interrupt(blocker.promptId)
            client.outcome(blocker.promptId, JobOptions())
            expect(client.queue().pending.isEmpty()) { "queue left behind" }
        }
    },
    "stall deadline gives Deadline and the prompt goes on" to {
        newClient().use { client ->
            val id = UUID.randomUUID().toString()
            try {
                client.run(WORKFLOW, scenario("long_run", promptId = id, stall = Duration.ofMillis(1), detach = true))
                throw AssertionError("run should have hit the stall deadline")
            } catch (e: ComfyException.Deadline) {
                expect(e.detail?.contains("\"stall\"") == true) { "detail ${e.detail}" }
            }
            expect(client.queue().running.any { it.promptId == id }) { "not running on the server" }
            expect(client.interrupt(id)) { "interrupt not sent" }
            val outcome = client.outcome(id, JobOptions(timeout = Duration.ofSeconds(20)))
            expect(outcome.status == "interrupted") { "status ${outcome.status}" }
        }
    },
    "attach, records, server history, retry now and a journal that resumes" to {
        newClient().use { other ->
            val theirs = other.submit(WORKFLOW, scenario("success_single"))
            newClient().use { client ->
                client.attach(theirs.promptId)
                val outcome = client.outcome(theirs.promptId, JobOptions(timeout = Duration.ofSeconds(30)))
                expect(outcome.status == "succeeded") { "status ${outcome.status}" }
                val entry = client.serverHistory(theirs.promptId)
                expect(entry != null && entry.contains(theirs.promptId)) { "server history $entry" }
                expect(client.execution(theirs.promptId)?.status == "succeeded") { "execution record" }
                expect(client.history().any { it.promptId == theirs.promptId }) { "ring" }
                client.retryNow()
                client.waitConnected(10_000u)
            }
        }
        val journal = kotlin.io.path.createTempDirectory("comfywire-kotlin-journal").toFile()
        try {
            val path = File(journal, "journal.jsonl").path
            val id = UUID.randomUUID().toString()
            Client(ClientOptions(url = mockUrl, journalPath = path)).use { first ->
                first.waitConnected(10_000u)
                first.submit(WORKFLOW, scenario("long_run", promptId = id))
            }
            Client(ClientOptions(url = mockUrl, journalPath = path)).use { again ->
                expect(again.resumed() == listOf(id)) { "resumed ${again.resumed()}" }
                val outcome = again.outcome(id, JobOptions(timeout = Duration.ofSeconds(60)))
                expect(outcome.status == "succeeded") { "status ${outcome.status}" }
            }
        } finally {
            journal.deleteRecursively()
        }
    },
    "shutdown from a listener returns at once under a firehose" to {
        unthrottled().use { client ->
            val base = client.stats().frames
            val calls = AtomicInteger()
            val took = ArrayBlockingQueue<Pair<Boolean, Long>>(1)
            val subscription = client.subscribe(listOf(), null, object : EventListener {
                override fun onEvent(event: Event) {
                    if (calls.incrementAndGet() != 1) return
                    val loaded = framesPast(client, base, 2000u)
                    val started = System.nanoTime()
                    client.shutdown()
                    took.offer(loaded to (System.nanoTime() - started) / 1_000_000)
                }
            })
            val sent = AtomicLong(-1)
            val hose = firehose(client.clientId(), FLOOD, sent)
            val (loaded, ms) = took.poll(30, TimeUnit.SECONDS)
                ?: throw AssertionError("the listener never returned: shutdown from a listener deadlocked")
            expect(loaded) { "the firehose never got ahead of the listener" }
            expect(ms < AT_ONCE_MS) { "shutdown from a listener took $ms ms" }
            client.shutdown() // from here: waits for the rest of the close
            expect(client.status().state == "closed") { client.status().state }
            try {
                client.queue()
                throw AssertionError("queue after shutdown")
            } catch (e: ComfyException.Closed) {
            }
            expect(calls.get() == 1) { "${calls.get()} calls" }
            hose.join(30_000)
            expect(sent.get() in 0 until FLOOD) { "the firehose was not cut short: ${sent.get()} sent" }
            subscription.close()
        }
    },
    "the last reference released in a listener under a firehose" to {
        val client = unthrottled()
        val base = client.stats().frames
        val clientId = client.clientId()
        val held = AtomicReference(client)
        val calls = AtomicInteger()
        val took = ArrayBlockingQueue<Pair<Boolean, Long>>(1)
        val subscription = client.subscribe(listOf(), null, object : EventListener {
            override fun onEvent(event: Event) {
                calls.incrementAndGet()
                val mine = held.getAndSet(null) ?: return
                val loaded = framesPast(mine, base, 2000u)
                val started = System.nanoTime()
                mine.close() // the only reference to the native client
                took.offer(loaded to (System.nanoTime() - started) / 1_000_000)
            }
        })
        val sent = AtomicLong(-1)
        val hose = firehose(clientId, FLOOD, sent)
        val (loaded, ms) = took.poll(30, TimeUnit.SECONDS)
            ?: throw AssertionError("the listener never returned: releasing the client in it deadlocked")
        expect(loaded) { "the firehose never got ahead of the listener" }
        expect(ms < AT_ONCE_MS) { "releasing the client in a listener took $ms ms" }
        hose.join(30_000)
        expect(sent.get() in 0 until FLOOD) { "the socket stayed open: ${sent.get()} sent" }
        expect(calls.get() == 1) { "${calls.get()} calls" }
        expect(!subscription.cancel()) { "still registered after the client went" }
        subscription.close()
    },
    "cancel from a listener, and cancel from another thread waits for a running call" to {
        unthrottled().use { client ->
            val own = AtomicReference<Subscription>()
            val selfCalls = AtomicInteger()
            val selfCancelled = ArrayBlockingQueue<Long>(1)
            // Progress only: nothing comes before the firehose, so `own` is set
            // before the first call.
            own.set(client.subscribe(listOf("progress"), null, object : EventListener {
                override fun onEvent(event: Event) {
                    selfCalls.incrementAndGet()
                    val subscription = own.getAndSet(null) ?: return
                    val started = System.nanoTime()
                    subscription.cancel()
                    selfCancelled.offer((System.nanoTime() - started) / 1_000_000)
                }
            }))
            val inside = AtomicBoolean()
            val entered = CountDownLatch(1)
            val calls = AtomicInteger()
            val busy = client.subscribe(listOf(), null, object : EventListener {
                override fun onEvent(event: Event) {
                    inside.set(true)
                    if (calls.incrementAndGet() == 1) {
                        entered.countDown()
                        // Not synchronisation: a call that lasts, so that a cancel
                        // which did not wait for it would return inside it.
                        Thread.sleep(300)
                    }
                    inside.set(false)
                }
            })
            val base = client.stats().frames
            val sent = AtomicLong(-1)
            val hose = firehose(client.clientId(), 5_000, sent)
            expect(entered.await(10, TimeUnit.SECONDS)) { "no event" }
            expect(busy.cancel()) { "cancel returned false" }
            expect(!inside.get()) { "cancel returned while the call was still running" }
            val seen = calls.get()
            hose.join(30_000)
            expect(sent.get() == 5_000L) { "${sent.get()} sent" }
            expect(framesPast(client, base, 4_000u)) { "the firehose did not reach the client" }
            expect(calls.get() == seen) { "a call started after cancel returned" }
            val ms = selfCancelled.poll(10, TimeUnit.SECONDS) ?: throw AssertionError("self-cancel never returned")
            expect(ms < AT_ONCE_MS) { "cancelling itself took $ms ms" }
            expect(selfCalls.get() == 1) { "${selfCalls.get()} calls of the self-cancelled listener" }
            busy.close()
        }
    },
    "submit and run from a listener" to {
        unthrottled().use { client ->
            val results = ArrayBlockingQueue<Result<Pair<String, String>>>(1)
            val calls = AtomicInteger()
            val subscription = client.subscribe(listOf("finished"), null, object : EventListener {
                override fun onEvent(event: Event) {
                    if (calls.incrementAndGet() != 1) return
                    results.offer(runCatching {
                        runBlocking {
                            val submitted = client.submit(WORKFLOW, scenario("success_single"))
                            val ran = client.run(WORKFLOW, scenario("success_single"))
                            submitted.promptId to ran.status
                        }
                    })
                }
            })
            client.run(WORKFLOW, scenario("success_single"))
            val (submitted, ran) = (results.poll(40, TimeUnit.SECONDS) ?: throw AssertionError("no result")).getOrThrow()
            expect(ran == "succeeded") { "run from a listener: $ran" }
            val outcome = client.outcome(submitted, JobOptions(timeout = Duration.ofSeconds(30)))
            expect(outcome.status == "succeeded") { "submitted from a listener: ${outcome.status}" }
            subscription.close()
        }
    },
    "a listener holding its client is released by shutdown, and by close" to {
        val shut = unthrottled()
        val byShutdown = ownedBy(shut)
        shut.shutdown()
        expect(collected(byShutdown)) { "shutdown did not release the listener" }
        shut.close()
        val closed = unthrottled()
        val byClose = ownedBy(closed)
        closed.close() // the Kotlin reference goes, though the listener still holds the object
        expect(collected(byClose)) { "close did not release the listener" }
    },
    "settings JSON constructor" to {
        Client.fromSettingsJson("""{"url": "$mockUrl"}""").use { client ->
            client.waitConnected(10_000u)
            expect(client.status().state == "connected") { client.status().state }
        }
        try {
            Client.fromSettingsJson("[1]")
            throw AssertionError("should have failed")
        } catch (e: ComfyException.InvalidArgument) {
        }
    },
    "pool: a batch of 12 over three servers ends once each, where the servers' histories say" to {
        threeServerPool().use { pool ->
            expect(pool.labels() == listOf("gpu0", "gpu1", "gpu2")) { "labels ${pool.labels()}" }
            // The first pull starts the queue; what a server said since it came
            // up (a late `status`) may be there already: taken until none is left.
            var early = 0
            while (pool.nextEvent(0uL) != null && early < 100) early++
            expect(early < 100) { "the pull queue never emptied" }
            val ids = (1..12).map { pool.submit(POOL_WORKFLOW) }
            expect(ids.toSet().size == 12) { "ids repeat: $ids" }
            val ranOn = mutableMapOf<String, String>()
            for (id in ids) {
                val outcome = pool.wait(id, Duration.ofSeconds(60))
                expect(outcome.status == "succeeded") { "$id: ${outcome.status}" }
                expect(outcome.promptId == id) { "outcome of ${outcome.promptId} for $id" }
                expect(outcome.servers == listOf(outcome.server)) { "servers ${outcome.servers}" }
                expect(outcome.moves.isEmpty()) { "moves ${outcome.moves}" }
                expect(outcome.outcome?.outputs?.contains("filename") == true) { "no output files" }
                ranOn[id] = outcome.server
            }
            // The servers' own histories: each prompt on exactly one, the one its outcome names.
            val perServer = IntArray(3)
            for (id in ids) {
                val holders = poolUrls.indices.filter { inServerHistory(poolUrls[it], id) }
                expect(holders.size == 1) { "$id in the history of ${holders.map { "gpu$it" }}" }
                expect("gpu${holders[0]}" == ranOn[id]) { "$id: history of gpu${holders[0]}, outcome ${ranOn[id]}" }
                perServer[holders[0]]++
            }
            expect(perServer.all { it > 0 }) { "not every server used: ${perServer.toList()}" }
            // The pull queue: one `finished` per prompt, every event tagged with its server.
            val finished = mutableMapOf<String, Int>()
            var tagged = 0
            while (finished.size < ids.size) {
                val event = pool.nextEvent(20_000uL) ?: break
                expect(event.server in pool.labels()) { "event of ${event.server}" }
                val outcome = event.outcome
                when {
                    outcome != null -> { // the pool's one `finished` of a submission
                        expect(event.kind == "finished") { "an outcome in a ${event.kind} event" }
                        expect(outcome.server == event.server) { "finished on ${outcome.server}, tagged ${event.server}" }
                        expect(ranOn[outcome.promptId] == event.server) { "${outcome.promptId} tagged ${event.server}" }
                        finished.merge(outcome.promptId, 1, Int::plus)
                    }
                    event.kind == "moved" -> throw AssertionError("nothing should move: ${event.moved}")
                    else -> {
                        expect(event.event?.kind == event.kind) { "server event ${event.event?.kind} as ${event.kind}" }
                        val prompt = event.promptId
                        if (prompt != null && prompt in ranOn) expect(ranOn[prompt] == event.server) { "$prompt event from ${event.server}" }
                        tagged++
                    }
                }
            }
            expect(finished.keys == ids.toSet() && finished.values.all { it == 1 }) { "finished $finished" }
            expect(tagged > 0) { "no server events" }
            expect(pool.skippedEvents() == 0uL) { "${pool.skippedEvents()} skipped" }
            // The figures agree with the histories.
            val stats = pool.stats()
            expect(stats.map { it.label } == pool.labels()) { "stats of ${stats.map { it.label }}" }
            for ((i, s) in stats.withIndex()) {
                expect(s.done == perServer[i].toULong()) { "${s.label} done ${s.done}, history ${perServer[i]}" }
                expect(s.inFlight == 0uL && s.healthy) { "$s" }
            }
        }
    },
    "pool: a node class no server has is Validation naming it" to {
        threeServerPool().use { pool ->
            val missing = """{"1": {"class_type": "NoSuchNodeOnAnyServer", "inputs": {}}}"""
            for (call in listOf<suspend () -> Unit>({ pool.submit(missing) }, { pool.run(missing, Duration.ofSeconds(10)) })) {
                try {
                    call()
                    throw AssertionError("should have been refused")
                } catch (e: ComfyException.Validation) {
                    val detail = e.detail ?: throw AssertionError("no detail")
                    expect(detail.contains("\"missing\"") && detail.contains("NoSuchNodeOnAnyServer")) { detail }
                    expect(e.reason.contains("NoSuchNodeOnAnyServer")) { e.reason }
                }
            }
            expect(pool.stats().all { it.inFlight == 0uL && it.done == 0uL }) { "${pool.stats()}" }
            try {
                pool.submit("{not json")
                throw AssertionError("bad JSON accepted")
            } catch (e: ComfyException.InvalidArgument) {
            }
        }
    },
    "pool: interrupt ends a running prompt as Interrupted on its server" to {
        poolSpeed(0.25)
        try {
            threeServerPool().use { pool ->
                pool.nextEvent(0uL)
                val id = pool.submit(POOL_WORKFLOW)
                var server: String? = null
                while (server == null) {
                    val event = pool.nextEvent(20_000uL) ?: throw AssertionError("no progress of $id")
                    if (event.kind == "progress" && event.promptId == id) server = event.server
                }
                expect(pool.interrupt(id)) { "no interrupt sent" }
                try {
                    pool.wait(id, Duration.ofSeconds(30))
                    throw AssertionError("wait should have failed")
                } catch (e: ComfyException.Interrupted) {
                    expect(e.outcome?.status == "interrupted") { "${e.outcome?.status}" }
                    expect(e.detail?.contains("\"server\":\"$server\"") == true) { "detail ${e.detail}" }
                }
                val outcome = pool.outcome(id)
                expect(outcome.status == "interrupted" && outcome.server == server) { "${outcome.status} on ${outcome.server}" }
                val stats = pool.stats().single { it.label == server }
                expect(stats.done == 1uL && stats.inFlight == 0uL) { "$stats" }
            }
        } finally {
            poolSpeed(20.0)
        }
    },
    "pool: run, settings JSON, unknown ids, time limits and shutdown" to {
        val entries = poolUrls.mapIndexed { i, url -> """{"url": "$url", "label": "s$i", "weight": ${i + 1}}""" }
        Pool.fromSettingsJson("""{"servers": [${entries.joinToString()}], "pool_grace_s": 5}""").use { pool ->
            expect(pool.labels() == listOf("s0", "s1", "s2")) { "${pool.labels()}" }
            expect(pool.waitHealthy(3u, 30_000uL) == 3u) { "not healthy" }
            val outcome = pool.run(POOL_WORKFLOW, Duration.ofSeconds(60))
            expect(outcome.status == "succeeded" && outcome.server in pool.labels()) { "${outcome.status} on ${outcome.server}" }
            expect(inServerHistory(poolUrls[outcome.server.removePrefix("s").toInt()], outcome.promptId)) { "not in its server's history" }
            try {
                pool.wait("no-such-id")
                throw AssertionError("unknown id accepted")
            } catch (e: ComfyException.InvalidArgument) {
            }
            val id = pool.submit(POOL_WORKFLOW)
            try {
                pool.wait(id, Duration.ofMillis(1))
                throw AssertionError("no time limit")
            } catch (e: ComfyException.Timeout) {
            }
            expect(pool.wait(id, Duration.ofSeconds(60)).status == "succeeded") { "did not go on" }
            pool.shutdown()
            pool.shutdown()
            try {
                pool.submit(POOL_WORKFLOW)
                throw AssertionError("submit after shutdown")
            } catch (e: ComfyException.Closed) {
            }
        }
        for (bad in listOf("""{"url": "$mockUrl"}""", """{"servers": [{"label": "no url"}]}""")) {
            try {
                Pool.fromSettingsJson(bad).close()
                throw AssertionError("accepted $bad")
            } catch (e: ComfyException.Config) {
            }
        }
        try {
            Pool(listOf(PoolServer(url = mockUrl, weight = 0.0)), PoolOptions()).close()
            throw AssertionError("weight 0 accepted")
        } catch (e: ComfyException.Config) {
        }
    },
)

fun main() {
    var passed = 0
    var failed = 0
    for ((name, body) in tests) {
        val started = System.nanoTime()
        try {
            runBlocking { withTimeout(60_000) { body() } }
            passed++
            println("ok   $name (${(System.nanoTime() - started) / 1_000_000} ms)")
        } catch (e: Throwable) {
            failed++
            println("FAIL $name: $e")
            e.printStackTrace(System.out)
        }
    }
    println("$passed passed, $failed failed")
    System.exit(if (failed == 0) 0 else 1)
}
