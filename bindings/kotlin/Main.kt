// The Kotlin suite of comfywire's uniffi bindings, run against the mock
// server by scripts/test-kotlin.sh. A plain main (no JUnit, no Gradle) so it
// needs only kotlinc, kotlinx-coroutines and JNA; it prints
// "N passed, N failed", the line CI looks for.
import comfywire.*
import comfywire.host.*
import java.io.File
import java.net.HttpURLConnection
import java.net.URI
import java.time.Duration
import java.util.Collections
import java.util.UUID
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout

val mockUrl: String = System.getenv("COMFYWIRE_MOCK_URL") ?: error("COMFYWIRE_MOCK_URL is not set")
const val WORKFLOW = """{"1": {"class_type": "EmptyImage", "inputs": {}}}"""

fun scenario(name: String, promptId: String? = null, stall: Duration? = null, queue: Duration? = null) =
    JobOptions(promptId = promptId, extraData = """{"mock_scenario": "$name"}""", stallTimeout = stall, queueTimeout = queue)

/** POSTs a control request to the mock (faults, playback speed). */
fun mock(path: String, body: String) {
    val c = URI("$mockUrl/mock/$path").toURL().openConnection() as HttpURLConnection
    c.requestMethod = "POST"
    c.doOutput = true
    c.setRequestProperty("Content-Type", "application/json")
    c.outputStream.use { it.write(body.toByteArray()) }
    check(c.responseCode == 200) { "mock $path answered ${c.responseCode}" }
    c.disconnect()
}

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
                client.run(WORKFLOW, scenario("success_single", promptId = waiting, queue = Duration.ofMillis(200)))
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
                client.run(WORKFLOW, scenario("long_run", promptId = id, stall = Duration.ofMillis(1)))
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
